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
    interactive: list[tuple[str, str]] = field(default_factory=list)   # (title, plotly <div> + script)
    statements: dict[str, str] = field(default_factory=dict)           # figure title -> the paper's claim it tests


@dataclass
class Document:
    title: str
    intro: list[str]
    sections: list[Section]
    environment: Table
