"""Assemble the report page: one self-contained HTML file that works offline.

- The Vega runtime (vega, vega-lite, vega-embed: ``vl_convert.javascript_bundle()``) is embedded once; every chart
  is a Vega-Lite spec in one JSON data block, drawn as SVG by a small loader script, one chart after the other.
- Nothing is fetched: no CDN, no fonts, no images. A Content-Security-Policy allows only the two inline scripts
  (by hash) and no network at all (``default-src 'none'``), so even a bug could not make the page phone home.
- Every text that comes from data (product, location, category names, file names) is HTML-escaped in tables and
  headings; inside the JSON block ``<``, ``>`` and ``&`` are written as \\u escapes so a name containing
  ``</script>`` cannot end the block. Vega draws names as SVG text and vega-tooltip escapes tooltips.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import logging
import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import vl_convert as vlc

log = logging.getLogger("stockturn.reports")

VL_VERSION = "6.4"

# ------------------------------------------------------------------------------------------------ runtime


def _cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "stockturn"


@lru_cache(maxsize=2)
def vega_runtime(vl_version: str = VL_VERSION) -> str:
    """The Vega + Vega-Lite + vega-embed bundle as one script (~0.9 MB).

    Building it takes a few seconds, so it is cached in memory and in ``~/.cache/stockturn`` (keyed by the
    vl-convert version, which pins the library versions inside).
    """
    name = f"vega-runtime-vlc{vlc.__version__}-vl{vl_version}.js"
    path = _cache_dir() / name
    try:
        text = path.read_text(encoding="utf-8")
        if "window.vegaEmbed=" in text and "</script" not in text.lower():
            return text
    except OSError:
        pass
    text = vlc.javascript_bundle(vl_version=vl_version)
    # An inline script ends at the first "</script": make sure the bundle never contains one.
    text = re.sub(r"</(script)", r"<\\/\1", text, flags=re.IGNORECASE)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(path)
    except OSError as exc:  # a read-only home is fine: we just rebuild next time
        log.debug("could not cache the Vega runtime in %s: %s", path, exc)
    return text


# ------------------------------------------------------------------------------------------------ escaping


def esc(value: object) -> str:
    """HTML-escape any value (quotes included, so it is safe in attributes too)."""
    return html.escape("" if value is None else str(value), quote=True)


def script_json(obj: object) -> str:
    """JSON that is safe inside <script type="application/json">: no <, >, & or line separators as such."""
    text = json.dumps(obj, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    return (
        text.replace("<", "\\u003c")
        .replace(">", "\\u003e")
        .replace("&", "\\u0026")
        .replace("\u2028", "\\u2028")
        .replace("\u2029", "\\u2029")
    )


def _sha256(text: str) -> str:
    return "sha256-" + base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode("ascii")


# ------------------------------------------------------------------------------------------------ blocks


@dataclass
class ChartBlock:
    key: str
    spec: dict
    alt_text: str = ""


@dataclass
class Column:
    key: str
    header: str
    fmt: Callable[[Any], str] = str
    numeric: bool = False
    nowrap: bool = False


@dataclass
class TableBlock:
    caption: str
    columns: Sequence[Column]
    rows: Sequence[dict]
    note: str = ""


@dataclass
class NoteBlock:
    """Plain text (escaped); ``kind`` is "info", "unavailable", "pending" or "error"."""

    text: str
    kind: str = "info"


@dataclass
class Kpi:
    label: str
    value: str
    change: str | None = None
    hint: str = ""
    #: "good", "bad" or "" — colours the change.
    tone: str = ""


@dataclass
class Definition:
    term: str
    meaning: str
    source: str = ""


@dataclass
class Section:
    key: str
    title: str
    status: str  # ok | partial | not_available | pending | error
    blocks: list = field(default_factory=list)
    intro: str = ""
    detail: str = ""

    @property
    def chart_keys(self) -> list[str]:
        return [b.key for b in self.blocks if isinstance(b, ChartBlock)]


# ------------------------------------------------------------------------------------------------ rendering

CSS = """
:root { --ink:#1f2933; --muted:#6b7785; --line:#e4e7eb; --bg:#f7f8fa; --primary:#1f5fa8; --bad:#c0392b;
        --good:#2f855a; --warn:#d9822b; }
* { box-sizing: border-box; }
body { margin:0; font-family: "Liberation Sans", Arial, Helvetica, sans-serif; color:var(--ink); background:var(--bg);
       font-size:14px; line-height:1.45; }
header.top { background:#fff; border-bottom:1px solid var(--line); padding:20px 32px 12px; }
header.top h1 { margin:0 0 4px; font-size:22px; }
header.top p { margin:2px 0; color:var(--muted); }
nav.toc { padding:8px 32px; background:#fff; border-bottom:1px solid var(--line); font-size:13px; display:flex;
          flex-wrap:wrap; gap:4px 16px; }
nav.toc a { color:var(--primary); text-decoration:none; white-space:nowrap; }
main { padding:16px 32px 40px; max-width:1400px; }
.kpis { display:grid; grid-template-columns:repeat(auto-fill, minmax(190px, 1fr)); gap:10px; margin:8px 0 20px; }
.kpi { background:#fff; border:1px solid var(--line); border-radius:6px; padding:10px 12px; }
.kpi .label { color:var(--muted); font-size:12px; }
.kpi .value { font-size:22px; font-weight:600; margin:2px 0; font-variant-numeric: tabular-nums; }
.kpi .change { font-size:12px; color:var(--muted); }
.kpi .change.good { color:var(--good); } .kpi .change.bad { color:var(--bad); }
.kpi .hint { font-size:11px; color:var(--muted); }
section.report { background:#fff; border:1px solid var(--line); border-radius:6px; padding:14px 20px 18px;
                 margin:0 0 18px; }
section.report h2 { margin:0 0 6px; font-size:18px; }
section.report > p.intro { margin:0 0 10px; color:var(--muted); max-width:980px; }
.grid { display:flex; flex-wrap:wrap; gap:18px 28px; align-items:flex-start; }
figure.chart { margin:6px 0; min-height:60px; }
figure.chart .vega { min-width:200px; }
.note { padding:8px 12px; border-radius:4px; margin:8px 0; max-width:980px; }
.note.info { background:#eef4fb; } .note.unavailable { background:#f4f5f7; color:#3e4c59; }
.note.pending { background:#fdf5ea; } .note.error { background:#fbeaea; color:var(--bad); }
.table-wrap { max-width:100%; overflow-x:auto; }
table.data { border-collapse:collapse; margin:8px 0 4px; font-size:13px; }
table.data caption { text-align:left; font-weight:600; padding:4px 0 6px; }
table.data th, table.data td { padding:4px 10px; border-bottom:1px solid var(--line); text-align:left;
                               vertical-align:top; }
table.data th { color:var(--muted); font-weight:600; background:#fafbfc; }
table.data td.num, table.data th.num { text-align:right; font-variant-numeric: tabular-nums; white-space:nowrap; }
table.data td.nowrap { white-space:nowrap; }
p.table-note { color:var(--muted); font-size:12px; margin:2px 0 10px; }
dl.defs dt { font-weight:600; margin-top:10px; }
dl.defs dd { margin:2px 0 0 0; max-width:980px; }
dl.defs dd.source { color:var(--muted); font-size:12px; }
footer { color:var(--muted); font-size:12px; padding:0 32px 24px; }
@media print { body { background:#fff; } nav.toc { display:none; }
               section.report { break-inside:avoid-page; border:none; } }
"""

LOADER = """(function () {
  "use strict";
  var specs = JSON.parse(document.getElementById("stockturn-specs").textContent);
  var locale = JSON.parse(document.getElementById("stockturn-locale").textContent);
  var figures = Array.prototype.slice.call(document.querySelectorAll("figure[data-chart]"));
  var options = { renderer: "svg", actions: false, formatLocale: locale, tooltip: { theme: "light" } };
  function drawNext(i) {
    if (i >= figures.length) {
      document.body.setAttribute("data-charts-done", String(figures.length));
      return;
    }
    var figure = figures[i];
    var target = figure.querySelector(".vega");
    var spec = specs[figure.getAttribute("data-chart")];
    window.vegaEmbed(target, spec, options).then(function () {
      figure.setAttribute("data-rendered", "ok");
    }).catch(function (err) {
      figure.setAttribute("data-rendered", "error");
      target.textContent = "This chart could not be drawn: " + err;
      console.error(err);
    }).then(function () {
      window.setTimeout(function () { drawNext(i + 1); }, 0);
    });
  }
  drawNext(0);
})();"""


def _render_table(block: TableBlock) -> str:
    def cls(c: Column) -> str:
        return ' class="num"' if c.numeric else ' class="nowrap"' if c.nowrap else ""

    head = "".join(f'<th scope="col"{cls(c)}>{esc(c.header)}</th>' for c in block.columns)
    body = []
    for row in block.rows:
        cells = "".join(f"<td{cls(c)}>{esc(c.fmt(row.get(c.key)))}</td>" for c in block.columns)
        body.append(f"<tr>{cells}</tr>")
    out = (
        f'<div class="table-wrap"><table class="data"><caption>{esc(block.caption)}</caption><thead><tr>{head}</tr>'
        f"</thead><tbody>{''.join(body)}</tbody></table></div>"
    )
    if block.note:
        out += f'<p class="table-note">{esc(block.note)}</p>'
    return out


def _render_block(block: object) -> str:
    if isinstance(block, ChartBlock):
        return (
            f'<figure class="chart" id="chart-{esc(block.key)}" data-chart="{esc(block.key)}" '
            f'role="img" aria-label="{esc(block.alt_text)}"><div class="vega"></div>'
            "<noscript>Charts need JavaScript; the same charts are saved beside this file as PNG and SVG."
            "</noscript></figure>"
        )
    if isinstance(block, TableBlock):
        return _render_table(block)
    if isinstance(block, NoteBlock):
        return f'<p class="note {esc(block.kind)}">{esc(block.text)}</p>'
    raise TypeError(f"unknown block {type(block).__name__}")


def _render_blocks(blocks: list) -> str:
    """Consecutive charts share a flex row (side by side when the page is wide enough)."""
    out: list[str] = []
    run: list[str] = []
    for block in blocks:
        if isinstance(block, ChartBlock):
            run.append(_render_block(block))
            continue
        if run:
            out.append(f'<div class="grid">{"".join(run)}</div>')
            run = []
        out.append(_render_block(block))
    if run:
        out.append(f'<div class="grid">{"".join(run)}</div>')
    return "".join(out)


def _render_kpis(kpis: Sequence[Kpi]) -> str:
    tiles = []
    for k in kpis:
        change = f'<div class="change {esc(k.tone)}">{esc(k.change)}</div>' if k.change else ""
        hint = f'<div class="hint">{esc(k.hint)}</div>' if k.hint else ""
        tiles.append(
            f'<div class="kpi"><div class="label">{esc(k.label)}</div><div class="value">{esc(k.value)}</div>'
            f"{change}{hint}</div>"
        )
    return f'<div class="kpis">{"".join(tiles)}</div>'


def render_page(
    *,
    title: str,
    header_lines: Sequence[str],
    kpis: Sequence[Kpi],
    sections: Sequence[Section],
    definitions: Sequence[Definition],
    footer: str,
    locale: dict,
    runtime_js: str,
) -> str:
    """The whole page as one string."""
    specs = {b.key: b.spec for s in sections for b in s.blocks if isinstance(b, ChartBlock)}
    toc = "".join(f'<a href="#{esc(s.key)}">{esc(s.title)}</a>' for s in sections)
    toc += '<a href="#definitions">Definitions</a>'
    body_sections = []
    for s in sections:
        intro = f'<p class="intro">{esc(s.intro)}</p>' if s.intro else ""
        body_sections.append(
            f'<section class="report" id="{esc(s.key)}" data-status="{esc(s.status)}">'
            f"<h2>{esc(s.title)}</h2>{intro}{_render_blocks(s.blocks)}</section>"
        )
    defs = "".join(
        f"<dt>{esc(d.term)}</dt><dd>{esc(d.meaning)}</dd>"
        + (f'<dd class="source">Source: {esc(d.source)}</dd>' if d.source else "")
        for d in definitions
    )
    body_sections.append(
        f'<section class="report" id="definitions" data-status="ok"><h2>Definitions</h2>'
        f'<dl class="defs">{defs}</dl></section>'
    )
    scripts = [runtime_js, LOADER] if specs else []
    script_src = " ".join(f"'{_sha256(s)}'" for s in scripts) + " 'unsafe-eval'" if scripts else "'none'"
    csp = (
        "default-src 'none'; "
        f"script-src {script_src}; "
        "style-src 'unsafe-inline'; img-src data: blob:; font-src 'none'; connect-src 'none'; "
        "base-uri 'none'; form-action 'none'"
    )
    head_lines = "".join(f"<p>{esc(line)}</p>" for line in header_lines)
    script_tags = ""
    if specs:
        script_tags = (
            f'<script type="application/json" id="stockturn-specs">{script_json(specs)}</script>'
            f'<script type="application/json" id="stockturn-locale">{script_json(locale)}</script>'
            f"<script>{runtime_js}</script><script>{LOADER}</script>"
        )
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{esc(csp)}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<meta name="referrer" content="no-referrer">'
        f"<title>{esc(title)}</title><style>{CSS}</style></head>"
        f'<body><header class="top"><h1>{esc(title)}</h1>{head_lines}</header>'
        f'<nav class="toc">{toc}</nav><main>{_render_kpis(kpis)}{"".join(body_sections)}</main>'
        f"<footer>{esc(footer)}</footer>{script_tags}</body></html>\n"
    )
