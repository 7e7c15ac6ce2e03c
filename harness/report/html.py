"""``index.html``: one self-contained page (figures embedded as base64 PNG) that opens from disk."""

from __future__ import annotations

import base64
import html
from pathlib import Path

from .document import Document, Table

CSS = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1500px; padding: 0 1em; color: #222; }
h1 { font-size: 1.6em; } h2 { border-bottom: 2px solid #ddd; padding-bottom: .2em; margin-top: 2em; }
table { border-collapse: collapse; font-size: .85em; margin: .5em 0 1.5em; }
th, td { border: 1px solid #ccc; padding: .25em .5em; text-align: right; vertical-align: top; }
th { background: #f0f0f0; position: sticky; top: 0; }
td:first-child, th:first-child { text-align: left; }
td:last-child { text-align: left; max-width: 40em; }
figure { margin: 1em 0 2em; } figure img { max-width: 100%; border: 1px solid #eee; }
figcaption { font-size: .9em; color: #555; }
.note { color: #555; font-size: .9em; }
nav a { margin-right: 1em; }
"""


def _table(t: Table, level: str) -> str:
    note = f'<p class="note">{html.escape(t.note)}</p>' if t.note else ""
    if t.frame.empty:
        body = "<p><em>(none)</em></p>"
    else:
        body = t.frame.to_html(index=False, escape=True, na_rep="-", border=0)
    return f"<{level}>{html.escape(t.title)}</{level}>{note}{body}"


def _image(root: Path, rel: Path) -> str:
    data = base64.b64encode((root / rel).read_bytes()).decode("ascii")
    return f"data:image/png;base64,{data}"


def render(doc: Document, root: Path) -> str:
    """HTML for ``doc``; PNGs under ``root`` are inlined, SVGs linked by relative path."""
    parts = [f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>{html.escape(doc.title)}</title>",
             f"<style>{CSS}</style></head><body>", f"<h1>{html.escape(doc.title)}</h1>"]
    parts += [f"<p>{html.escape(p)}</p>" for p in doc.intro]
    parts.append("<nav>" + "".join(f"<a href='#s{i}'>{html.escape(s.title)}</a>" for i, s in enumerate(doc.sections))
                 + "<a href='#env'>Environment</a></nav>")
    for i, s in enumerate(doc.sections):
        parts.append(f"<h2 id='s{i}'>{html.escape(s.title)}</h2>")
        parts += [f"<p>{html.escape(p)}</p>" for p in s.intro]
        parts += [_table(t, "h3") for t in s.tables]
        for f in s.figures:
            svg = f" (<a href='{html.escape(f.svg.as_posix())}'>SVG</a>)" if f.svg else ""
            parts.append(f"<figure><img alt='{html.escape(f.title)}' src='{_image(root, f.png)}'>"
                         f"<figcaption>{html.escape(f.title)}{svg}</figcaption></figure>")
    parts.append(f"<div id='env'>{_table(doc.environment, 'h2')}</div></body></html>")
    return "\n".join(parts)
