"""The report as data (sections of text, figures and tables), written as Markdown or HTML."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd


@dataclass
class Table:
    title: str
    frame: pd.DataFrame          # strings, ready to print
    note: str = ""


@dataclass
class Figure:
    title: str
    png: Path                    # relative to the report folder
    svg: Path | None = None


@dataclass
class Section:
    title: str
    intro: list[str] = field(default_factory=list)
    figures: list[Figure] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)


@dataclass
class Document:
    title: str
    intro: list[str]
    sections: list[Section]
    environment: Table
