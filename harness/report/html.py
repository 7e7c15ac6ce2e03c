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
.claim { border-left: 4px solid #4363d8; background: #f4f6fb; padding: .4em .8em; margin: .5em 0; }
.pair { display: grid; grid-template-columns: minmax(18em, 1fr) 3fr; gap: 1em; align-items: start; }
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


def _figure(root: Path, f, claim: str | None) -> str:
    svg = f" (<a href='{html.escape(f.svg.as_posix())}'>SVG</a>)" if f.svg else ""
    img = (f"<figure><img alt='{html.escape(f.title)}' src='{_image(root, f.png)}'>"
           f"<figcaption>{html.escape(f.title)}{svg}</figcaption></figure>")
    if not claim:
        return img
    return f"<div class='pair'><blockquote class='claim'>{html.escape(claim)}</blockquote>{img}</div>"


def render(doc: Document, root: Path, plotly_js: str | None = None) -> str:
    """HTML for ``doc``; PNGs under ``root`` are inlined, SVGs linked by relative path; ``plotly_js`` (the
    bundle) is inlined once when a section has interactive figures, so the page works offline."""
    script = f"<script type='text/javascript'>{plotly_js}</script>" if plotly_js else ""
    parts = [f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>{html.escape(doc.title)}</title>",
             f"<style>{CSS}</style>{script}</head><body>", f"<h1>{html.escape(doc.title)}</h1>"]
    parts += [f"<p>{html.escape(p)}</p>" for p in doc.intro]
    parts.append("<nav>" + "".join(f"<a href='#s{i}'>{html.escape(s.title)}</a>" for i, s in enumerate(doc.sections))
                 + "<a href='#env'>Environment</a></nav>")
    for i, s in enumerate(doc.sections):
        parts.append(f"<h2 id='s{i}'>{html.escape(s.title)}</h2>")
        parts += [f"<p>{html.escape(p)}</p>" for p in s.intro]
        if s.interactive:
            parts.append("<h3>Interactive figures</h3><p class='note'>Click a solver in the legend to hide or "
                         "show it (double-click: only that one); hover a curve for its values; drag to zoom.</p>")
            parts += [div for _, div in s.interactive]
        for f in s.figures:
            parts.append(_figure(root, f, s.statements.get(f.title)))
        parts += [_table(t, "h3") for t in s.tables]
    parts.append(f"<div id='env'>{_table(doc.environment, 'h2')}</div></body></html>")
    return "\n".join(parts)
