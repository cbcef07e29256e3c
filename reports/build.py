"""Build the report: ``build_report(warehouse, out_dir)`` writes report.html plus every chart as PNG/SVG.

Reads the warehouse read-only (marts, and the ml write-back when present). Sections whose sources the warehouse
lacks say "not available: needs ..." instead of showing zeros; the sections fed by forecasts and policy wait for
`stockturn run`. Plain Python: the Dagster asset and the CLI are thin wrappers around :func:`build_report`.

Each section is one module of :mod:`reports.sections` (its SQL, its charts and its text); this module opens the
warehouse, builds the sections in order, turns the charts into Vega-Lite specs and static files, and writes the page.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path

import vl_convert as vlc

from ml.warehouse import connect
from reports import theme as th
from reports.charts import clip_spec_text
from reports.context import Context, context, plan_run
from reports.definitions import definitions
from reports.html import VL_VERSION, ChartBlock, Kpi, NoteBlock, Section, render_page, vega_runtime
from reports.sections import (
    data_quality,
    days_of_supply,
    forecast_quality,
    ghost_stock,
    inventory_value,
    kpis,
    policy_backtest,
    recommendations,
    service,
    turnover,
)
from reports.sections.common import Report, plural

log = logging.getLogger("stockturn.reports")

REPORT_FILE = "report.html"
CHART_DIR = "charts"

#: The sections in page order: (key, title, the function that builds it). The title also heads the note of a
#: section that fails.
SECTIONS: tuple[tuple[str, str, Callable[[Report], Section]], ...] = (
    ("turnover", "Inventory turnover and days inventory outstanding", turnover.build),
    ("value", "Inventory value at cost and GMROI", inventory_value.build),
    ("days-of-supply", "Days of supply", days_of_supply.build),
    ("service", "Service: stock-outs, fill rate and lost sales", service.build),
    ("forecast-quality", "Forecast quality", forecast_quality.build),
    ("recommendations", "Recommendations and purchase proposals", recommendations.build),
    ("policy-backtest", "Policy backtest: stockturn against the classical policy", policy_backtest.build),
    ("ghost-stock", "Ghost stock and count discrepancies", ghost_stock.build),
    ("data-quality", "Data quality: what was loaded", data_quality.build),
)


@dataclass(frozen=True)
class SectionStatus:
    key: str
    title: str
    status: str  # ok | partial | not_available | pending | error
    detail: str
    charts: tuple[str, ...]


@dataclass
class ReportResult:
    html_path: Path
    chart_files: dict[str, list[Path]]
    sections: list[SectionStatus]
    preview_markdown: str
    elapsed_seconds: float
    html_bytes: int
    as_of_date: date
    kpis: dict[str, float | None] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)

    def section(self, key: str) -> SectionStatus:
        return next(s for s in self.sections if s.key == key)

    def summary(self) -> str:
        """A few lines for the terminal (`stockturn report`, the end of `stockturn demo`)."""
        lines = [f"Report: {self.html_path.resolve()} ({self.html_bytes / 1e6:,.1f} MB, {len(self.chart_files)} charts"
                 f", built in {self.elapsed_seconds:,.1f} s)"]
        for s in self.sections:
            lines.append(f"  {s.title:<52} {_status_text(s)}")
        return "\n".join(lines)


def _status_text(section: SectionStatus | Section) -> str:
    """"ok", "partial: ...", "Not available: needs ...", "Not available yet: run ..."."""
    if section.status == "ok" or not section.detail:
        return section.status.replace("_", " ")
    if section.detail.lower().startswith("not available"):
        return section.detail
    return f"{section.status.replace('_', ' ')}: {section.detail}"


# ------------------------------------------------------------------------------------------------ export


def _export(sections: list[Section], chart_dir: Path, formats: tuple[str, ...], locale: dict,
            timings: dict[str, float]) -> dict[str, list[Path]]:
    """Turn every chart into its Vega-Lite dict (under the theme) and write the requested static formats."""
    chart_dir.mkdir(parents=True, exist_ok=True)
    files: dict[str, list[Path]] = {}
    t_spec = t_static = 0.0
    for section in sections:
        for block in section.blocks:
            if not isinstance(block, ChartBlock):
                continue
            t0 = time.perf_counter()
            with th.themed():
                block.spec = clip_spec_text(block.spec.to_dict())
            t1 = time.perf_counter()
            paths: list[Path] = []
            if formats:
                svg = vlc.vegalite_to_svg(block.spec, vl_version=VL_VERSION, format_locale=locale,
                                          allowed_base_urls=[])
                if "svg" in formats:
                    path = chart_dir / f"{block.key}.svg"
                    path.write_text(svg, encoding="utf-8")
                    paths.append(path)
                if "png" in formats:
                    path = chart_dir / f"{block.key}.png"
                    path.write_bytes(vlc.svg_to_png(svg, scale=2))
                    paths.append(path)
            t_spec += t1 - t0
            t_static += time.perf_counter() - t1
            files[block.key] = paths
    # charts of an earlier build that this one no longer draws would mislead: remove them
    for stale in chart_dir.glob("*"):
        if stale.suffix in (".svg", ".png") and stale.stem not in files:
            stale.unlink()
    timings["chart_specs"] = t_spec
    timings["static_export"] = t_static
    return files


def _md(text: str) -> str:
    """Escape text for Dagster's markdown (no HTML, no markdown syntax from data)."""
    out = str(text).replace("\\", "\\\\")
    for ch in "`*_[]<>|#":
        out = out.replace(ch, "\\" + ch)
    return out


def _preview(ctx: Context, tiles: list[Kpi], sections: list[Section], html_path: Path, html_bytes: int,
             n_charts: int, elapsed: float) -> str:
    icon = {"ok": "✅", "partial": "🟡", "pending": "⏳", "not_available": "⛔", "error": "❌"}
    lines = [
        f"**Inventory report** as of {ctx.as_of_date:%d %b %Y} (history from {ctx.history_start:%d %b %Y}): "
        f"{plural(ctx.products, 'product')}, {plural(ctx.locations, 'location')}",
        "",
        "| KPI | Value | Change |",
        "| --- | ---: | --- |",
    ]
    for k in tiles:
        lines.append(f"| {_md(k.label)} | {_md(k.value)} | {_md(k.change or '')} |")
    lines += ["", "| Section | Status |", "| --- | --- |"]
    for s in sections:
        lines.append(f"| {_md(s.title)} | {icon.get(s.status, '')} {_md(_status_text(s))} |")
    lines += ["", f"{n_charts} charts, {html_bytes / 1e6:,.1f} MB, built in {elapsed:,.1f} s: "
                  f"{_md(html_path.as_posix())}"]
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------------ entry point


def build_report(
    warehouse: Path,
    out_dir: Path,
    *,
    formats: tuple[str, ...] = ("png", "svg"),
    currency: str = "$",
    title: str = "Inventory turnover report",
    strict: bool = False,
) -> ReportResult:
    """Build ``out_dir/report.html`` (self-contained, offline) and ``out_dir/charts/<chart>.{png,svg}``.

    ``strict`` re-raises a failing section instead of reporting it in the page (tests use it).
    """
    t0 = time.perf_counter()
    warehouse, out_dir = Path(warehouse), Path(out_dir)
    unknown = set(formats) - {"png", "svg"}
    if unknown:
        raise ValueError(f"unsupported chart formats {sorted(unknown)}: use png and/or svg")
    out_dir.mkdir(parents=True, exist_ok=True)
    timings: dict[str, float] = {}
    locale = th.format_locale(currency)

    with th.currency(currency), connect(warehouse, read_only=True) as con:
        ctx = context(con)
        report = Report(con, ctx, kpis=kpis.company_kpis(con, ctx), plan=plan_run(con, ctx))
        sections: list[Section] = []
        for key, title_text, build in SECTIONS:
            ts = time.perf_counter()
            try:
                sections.append(build(report))
            except Exception as exc:
                if strict:
                    raise
                log.exception("report section %s failed", key)
                sections.append(Section(key, title_text, "error",
                                        [NoteBlock(f"This section could not be built: {exc}", "error")],
                                        detail=str(exc)))
            timings[f"section:{key}"] = time.perf_counter() - ts
        tiles = kpis.kpi_tiles(report)

        chart_files = _export(sections, out_dir / CHART_DIR, tuple(formats), locale, timings)

        ts = time.perf_counter()
        runtime = vega_runtime() if chart_files else ""
        timings["runtime_bundle"] = time.perf_counter() - ts
        header = [
            f"As of {ctx.as_of_date:%d %B %Y}. History from {ctx.history_start:%d %B %Y}. "
            f"{plural(ctx.products, 'product')}, {plural(ctx.locations, 'location')} "
            f"({ctx.selling_locations:,} selling).",
            f"Last 12 months = {ctx.last12_start:%b %Y} to {ctx.as_of_date:%b %Y}; prior 12 months = the 12 "
            "months before. Amounts at standard cost unless stated.",
        ]
        page = render_page(
            title=title,
            header_lines=header,
            kpis=tiles,
            sections=sections,
            definitions=definitions(ctx),
            footer=f"Built by stockturn on {datetime.now():%d %b %Y %H:%M} from {warehouse.name}. "
                   "Charts are also saved as PNG and SVG in the charts folder beside this file.",
            locale=locale,
            runtime_js=runtime,
        )
    html_path = out_dir / REPORT_FILE
    tmp = html_path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(page, encoding="utf-8")
    tmp.replace(html_path)
    elapsed = time.perf_counter() - t0
    html_bytes = html_path.stat().st_size
    statuses = [SectionStatus(s.key, s.title, s.status, s.detail, tuple(s.chart_keys)) for s in sections]
    preview = _preview(ctx, tiles, sections, html_path, html_bytes, len(chart_files), elapsed)
    log.info("report %s: %d charts, %.1f MB, %.1f s", html_path, len(chart_files), html_bytes / 1e6, elapsed)
    return ReportResult(
        html_path=html_path,
        chart_files=chart_files,
        sections=statuses,
        preview_markdown=preview,
        elapsed_seconds=elapsed,
        html_bytes=html_bytes,
        as_of_date=ctx.as_of_date,
        kpis=dict(report.kpi_values),
        timings=timings,
    )
