"""The report as data (a verdict, sections of text, figures and tables), written as Markdown or HTML."""

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
    linked: bool = False         # the page shows it as an interactive figure: the PNG is linked, not embedded


@dataclass
class Section:
    title: str
    intro: list[str] = field(default_factory=list)
    figures: list[Figure] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)
    interactive: list[tuple[str, str, dict]] = field(default_factory=list)  # (title, element id, plotly.js JSON)
    statements: dict[str, str] = field(default_factory=dict)                 # figure title -> the paper's claim


@dataclass
class Verdict:
    sentence: str                # the result in words, generated from the table's numbers
    table: Table


@dataclass
class Document:
    title: str
    intro: list[str]             # what was loaded, warnings
    sections: list[Section]
    environment: Table
    verdict: list[Verdict] = field(default_factory=list)   # one per problem; the page opens with it
    about: list[str] = field(default_factory=list)         # definitions and rules (collapsed on the page)
