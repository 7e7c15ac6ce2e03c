"""``summary.md``: the report's text and tables as GitHub-flavoured Markdown, verdict first."""

from __future__ import annotations

import pandas as pd

from .document import Document, Table


def _cell(value: object) -> str:
    return str(value).replace("|", "\\|").replace("\n", " ")


def table(frame: pd.DataFrame) -> str:
    if frame.empty:
        return "_(none)_\n"
    head = "| " + " | ".join(_cell(c) for c in frame.columns) + " |"
    rule = "|" + "|".join("---" for _ in frame.columns) + "|"
    body = ["| " + " | ".join(_cell(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join([head, rule, *body]) + "\n"


def _table(t: Table, level: str) -> list[str]:
    out = [f"{level} {t.title}", ""]
    if t.note:
        out += [t.note, ""]
    return out + [table(t.frame)]


def render(doc: Document) -> str:
    lines = [f"# {doc.title}", ""]
    if doc.verdict:
        lines += ["## Verdict", ""]
        for v in doc.verdict:
            lines += [f"**{v.sentence}**", "", f"### {v.table.title}", "", v.table.note, "", table(v.table.frame)]
    for p in doc.intro:
        lines += [p, ""]
    if doc.about:   # GitHub renders <details> collapsed
        lines += ["<details><summary>How to read this report: definitions and rules</summary>", ""]
        for p in doc.about:
            lines += [p, ""]
        lines += ["</details>", ""]
    for s in doc.sections:
        lines += [f"## {s.title}", ""]
        for p in s.intro:
            lines += [p, ""]
        if s.figures:
            lines += ["### Figures", ""]
            if s.interactive:
                lines += ["Interactive versions (hide solvers, hover for values): index.html.", ""]
            for f in s.figures:
                svg = f" ([svg]({f.svg.as_posix()}))" if f.svg else ""
                if f.title in s.statements:
                    lines += [f"> {s.statements[f.title]}", ""]
                lines += [f"![{f.title}]({f.png.as_posix()}){svg}", ""]
        for t in s.tables:
            lines += _table(t, "###")
    lines += _table(doc.environment, "##")
    return "\n".join(lines)
