"""``index.html``: one self-contained page that opens from disk, offline, and opens with the verdict.

Figures are embedded as PNG (at most ``EMBED_WIDTH`` pixels wide: the width of the page), SVGs linked. The
interactive figures are plotly.js JSON in ``<script type="application/json">`` elements; plotly.js itself is
embedded once, gzip-compressed and base64-encoded (about 2 MB instead of 4.8), and inflated by the browser
(``DecompressionStream``) before the figures are drawn. A static figure the page already shows interactively
is linked, not embedded again.
"""

from __future__ import annotations

import base64
import html
import io
from pathlib import Path

from PIL import Image

from .canvas import COLOURS
from .document import Document, Figure, Table

EMBED_WIDTH = 1500

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
.verdict { font-size: 1.05em; border-left: 4px solid #e6194b; background: #fdf4f5; padding: .5em .9em; }
.verdict-table td { white-space: nowrap; }
.verdict-table td:nth-child(2), .verdict-table td:nth-child(5), .verdict-table td:nth-child(8) { text-align: left; }
details { margin: 1em 0; } summary { cursor: pointer; font-weight: 600; }
"""

LOADER = """
(function () {
  var figures = document.querySelectorAll("script.plotly-figure");
  if (!figures.length) return;
  function fail(why) {
    document.querySelectorAll(".plotly-note").forEach(function (e) {
      e.textContent = "The interactive figures cannot be drawn here (" + why + "); their static PNGs are in " +
        "the report folder, figures/.";
    });
  }
  if (typeof DecompressionStream === "undefined") { fail("this browser has no DecompressionStream"); return; }
  var text = atob(document.getElementById("plotly-js-gz").textContent), bytes = new Uint8Array(text.length);
  for (var i = 0; i < text.length; i++) bytes[i] = text.charCodeAt(i);
  var inflated = new Blob([bytes]).stream().pipeThrough(new DecompressionStream("gzip"));
  new Response(inflated).text().then(function (code) {
    var s = document.createElement("script");
    s.textContent = code;
    document.head.appendChild(s);
    figures.forEach(function (el) {
      var f = JSON.parse(el.textContent);
      Plotly.newPlot(el.getAttribute("data-div"), f.data, f.layout, {displaylogo: false, responsive: true});
    });
  }).catch(function (e) { fail(String(e)); });
})();
"""


def _table(t: Table, level: str, css: str = "") -> str:
    note = f'<p class="note">{html.escape(t.note)}</p>' if t.note else ""
    if t.frame.empty:
        body = "<p><em>(none)</em></p>"
    else:
        body = t.frame.to_html(index=False, escape=True, na_rep="-", border=0, classes=css or None)
    return f"<{level}>{html.escape(t.title)}</{level}>{note}{body}"


def image_data(path: Path) -> str:
    """The PNG as a data: URL; one wider than ``EMBED_WIDTH`` is scaled down to it first."""
    raw = path.read_bytes()
    with Image.open(io.BytesIO(raw)) as im:
        if im.width > EMBED_WIDTH:
            small = im.convert("RGB").resize((EMBED_WIDTH, round(im.height * EMBED_WIDTH / im.width)),
                                             Image.Resampling.LANCZOS)
            buf = io.BytesIO()
            small.quantize(COLOURS, method=Image.Quantize.FASTOCTREE).save(buf, format="PNG", compress_level=6)
            raw = buf.getvalue()
    return "data:image/png;base64," + base64.b64encode(raw).decode("ascii")


def _figure(root: Path, f: Figure, claim: str | None) -> str:
    svg = f" (<a href='{html.escape(f.svg.as_posix())}'>SVG</a>)" if f.svg else ""
    if f.linked:  # shown above as an interactive figure
        link = (f"<p class='note'>{html.escape(f.title)}, static version for papers: "
                f"<a href='{html.escape(f.png.as_posix())}'>PNG</a>{svg}</p>")
        return f"<blockquote class='claim'>{html.escape(claim)}</blockquote>{link}" if claim else link
    img = (f"<figure><img alt='{html.escape(f.title)}' src='{image_data(root / f.png)}'>"
           f"<figcaption>{html.escape(f.title)} (<a href='{html.escape(f.png.as_posix())}'>full size</a>){svg}"
           f"</figcaption></figure>")
    if not claim:
        return img
    return f"<div class='pair'><blockquote class='claim'>{html.escape(claim)}</blockquote>{img}</div>"


def _interactive(title: str, div: str, fig: dict) -> str:
    from .interactive import to_json

    return (f"<div id='{html.escape(div)}' class='plotly-graph' style='height:{fig['layout']['height']}px'>"
            f"</div><script type='application/json' class='plotly-figure' data-div='{html.escape(div)}'>"
            f"{to_json(fig)}</script>")


def render(doc: Document, root: Path, plotly_gz: bytes | None = None) -> str:
    """HTML for ``doc``; PNGs under ``root`` are inlined, SVGs linked by relative path; ``plotly_gz`` (the
    gzip-compressed bundle) is inlined once when a section has interactive figures, so the page works offline."""
    parts = [f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>{html.escape(doc.title)}</title>",
             f"<style>{CSS}</style></head><body>", f"<h1>{html.escape(doc.title)}</h1>"]
    if doc.verdict:
        parts.append("<h2 id='verdict'>Verdict</h2>")
        for v in doc.verdict:
            parts.append(f"<p class='verdict'>{html.escape(v.sentence)}</p>")
            parts.append(_table(v.table, "h3", "verdict-table"))
    parts += [f"<p>{html.escape(p)}</p>" for p in doc.intro]
    if doc.about:
        parts.append("<details><summary>How to read this report: definitions and rules</summary>"
                     + "".join(f"<p>{html.escape(p)}</p>" for p in doc.about) + "</details>")
    parts.append("<nav>" + "".join(f"<a href='#s{i}'>{html.escape(s.title)}</a>" for i, s in enumerate(doc.sections))
                 + "<a href='#env'>Environment</a></nav>")
    for i, s in enumerate(doc.sections):
        parts.append(f"<h2 id='s{i}'>{html.escape(s.title)}</h2>")
        parts += [f"<p>{html.escape(p)}</p>" for p in s.intro]
        if s.interactive:
            parts.append("<h3>Interactive figures</h3><p class='note plotly-note'>Click a solver in the legend to "
                         "hide or show it (double-click: only that one); hover a curve for its values; drag to zoom."
                         "</p>")
            parts += [_interactive(*fig) for fig in s.interactive]
        for f in s.figures:
            parts.append(_figure(root, f, s.statements.get(f.title)))
        parts += [_table(t, "h3") for t in s.tables]
    parts.append(f"<div id='env'>{_table(doc.environment, 'h2')}</div>")
    if plotly_gz is not None and any(s.interactive for s in doc.sections):
        parts.append("<script id='plotly-js-gz' type='application/octet-stream'>"
                     f"{base64.b64encode(plotly_gz).decode('ascii')}</script><script>{LOADER}</script>")
    parts.append("</body></html>")
    return "\n".join(parts)
