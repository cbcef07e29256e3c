"""Build the report: ``build_report(warehouse, out_dir)`` writes report.html plus every chart as PNG/SVG.

Reads the warehouse read-only (marts, and the ml write-back when present). Sections whose sources the warehouse
lacks say "not available: needs ..." instead of showing zeros; the sections fed by forecasts and policy wait for
`stockturn run`. Plain Python: the Dagster asset and the CLI are thin wrappers around :func:`build_report`.
"""

from __future__ import annotations

import logging
import os
import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path

import altair as alt
import duckdb
import polars as pl
import vl_convert as vlc

from ml.warehouse import connect
from reports import charts
from reports import plan_queries as pq
from reports import queries as q
from reports import theme as th
from reports.definitions import definitions
from reports.html import (
    VL_VERSION,
    ChartBlock,
    Column,
    Kpi,
    NoteBlock,
    Section,
    TableBlock,
    render_page,
    vega_runtime,
)

log = logging.getLogger("stockturn.reports")

REPORT_FILE = "report.html"
CHART_DIR = "charts"
STOCKTURN_RUN_HINT = "Not available yet: run `stockturn run` to produce the forecasts and the replenishment policy."


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


# ------------------------------------------------------------------------------------------------ helpers


def _plural(n: int, word: str) -> str:
    return f"{n:,} {word}" if n == 1 else f"{n:,} {word}s"


def _status_text(section: SectionStatus | Section) -> str:
    """"ok", "partial: ...", "Not available: needs ...", "Not available yet: run ..."."""
    if section.status == "ok" or not section.detail:
        return section.status.replace("_", " ")
    if section.detail.lower().startswith("not available"):
        return section.detail
    return f"{section.status.replace('_', ' ')}: {section.detail}"


def _not_available(needs: Iterable[str]) -> str:
    needs = list(needs)
    text = ", ".join(needs[:-1]) + " and " + needs[-1] if len(needs) > 1 else "".join(needs)
    return f"Not available: needs {text}."


def _name(row: dict, name: str, code: str) -> str:
    value, key = row.get(name), row.get(code)
    if value and key and value != key:
        return f"{value} ({key})"
    return value or key or ""


def _col(key: str, header: str, fmt=None, numeric: bool = False, nowrap: bool = False) -> Column:
    return Column(key, header, fmt or (lambda v: "" if v is None else str(v)), numeric, nowrap)


def _signed_pct(value: float | None) -> str:
    """0.0123 -> "+1.2%"; a value that rounds to zero is "0.0%" (never "-0.0%")."""
    if value is None:
        return "n/a"
    pct = round(100 * value, 1)
    return "0.0%" if pct == 0 else f"{pct:+,.1f}%"


def _arrow(before: float | None, after: float | None) -> str:
    """"47 → 4,415" (classical → recommended)."""
    return f"{th.number(before)} → {th.number(after)}"


_BARE_NUMBER = re.compile(r"(?<![\w.,/-])(\d{4,})(?![\w/-])")


def _readable(text: str | None) -> str:
    """Thousands separators for the bare integers in text written by the planning run ("inventory 53050" ->
    "inventory 53,050"); years (1900-2100) are left alone."""
    if not text:
        return ""
    return _BARE_NUMBER.sub(lambda m: m.group(1) if len(m.group(1)) == 4 and 1900 <= int(m.group(1)) <= 2100
                            else f"{int(m.group(1)):,}", text)


def _pct_points(value: float | None, low: float | None = None, high: float | None = None) -> str:
    """A percentage given in percent (18.3 -> "18.3%"), with its interval when known: "18.3% (14.2% to 22.1%)"."""
    if value is None:
        return "n/a"
    text = f"{value:,.1f}%"
    if low is not None and high is not None:
        text += f" ({low:,.1f}% to {high:,.1f}%)"
    return text


def _long_days(value: float | None) -> str:
    """Days of supply for people: "21,965" reads as noise, "over 2 years" does not."""
    if value is None:
        return "no forecast demand"
    return "over 2 years" if value > 730 else th.number(value)


def _date(value: date | None) -> str:
    return f"{value:%d %b %Y}" if value else ""


def _chart(key: str, data: pl.DataFrame, make: Callable[[pl.DataFrame], alt.TopLevelMixin],
           alt_text: str) -> ChartBlock | NoteBlock:
    """A chart of ``data`` (its Altair object; the spec dict is made at export), or a note when there is none."""
    if data.height == 0:
        return NoteBlock(f"{alt_text}: no data for this period.", "info")
    return ChartBlock(key=key, spec=make(data), alt_text=alt_text)


# ------------------------------------------------------------------------------------------------ sections


class _Builder:
    def __init__(self, con: duckdb.DuckDBPyConnection, ctx: q.Context) -> None:
        self.con = con
        self.ctx = ctx
        self.kpis = q.company_kpis(con, ctx)
        self.kpi_values: dict[str, float | None] = {}
        self.tiles: dict[str, Kpi] = {}
        self.service: pl.DataFrame | None = None
        self.plan = pq.plan_run(con, ctx)
        self.lost_monthly: pl.DataFrame | None = None

    @staticmethod
    def _names(row: dict) -> dict:
        """Add display names "Name (code)" for product and location."""
        return row | {
            "product": _name(row, "product_name", "product_id"),
            "location": _name(row, "location_name", "location_id"),
        }

    def _lacks_marts(self, section: Section, *names: str) -> bool:
        """Mark ``section`` not available when the warehouse lacks one of the marts it reads."""
        missing = self.ctx.missing_marts(*names)
        if missing:
            section.status = "not_available"
            section.detail = (f"Not available: the warehouse has no marts.{', marts.'.join(missing)}; "
                              "run `stockturn build` again (the last build stopped before it).")
            section.blocks.append(NoteBlock(section.detail, "unavailable"))
        return bool(missing)

    # ---------------------------------------------------------------- turnover and DIO
    def turnover(self) -> Section:
        ctx = self.ctx
        section = Section("turnover", "Inventory turnover and days inventory outstanding", "ok",
                          intro="How fast stock sells, for the company, each category and each location. "
                          "Solid lines: each month, annualised; dashed: the same month a year earlier.")
        if self._lacks_marts(section, "fct_inventory_turnover_monthly"):
            return section
        missing = ctx.missing(q.NEEDS_ON_HAND, q.NEEDS_UNIT_COSTS, q.NEEDS_COGS)
        if missing:
            section.status = "not_available"
            section.detail = _not_available(missing)
            section.blocks.append(NoteBlock(section.detail, "unavailable"))
            if ctx.has_sales:
                sales = q.sales_monthly(self.con)
                section.blocks.append(_chart("sales_monthly", sales,
                                             lambda d: charts.sales_monthly(d, start=ctx.last12_start),
                                             "Net sales per month"))
            return section
        company = q.turnover_trend(self.con, ctx, "company")
        section.blocks += [
            _chart("turnover_company", company, lambda d: charts.turnover_company(d, self.kpis),
                   "Company inventory turnover"),
            _chart("dio_company", company, lambda d: charts.dio_company(d, self.kpis),
                   "Company days inventory outstanding"),
        ]
        category = q.turnover_trend(self.con, ctx, "category")
        section.blocks.append(_chart(
            "turnover_by_category", category,
            lambda d: charts.turnover_small_multiples(d, start=ctx.last12_start, what="category"),
            "Turnover by category",
        ))
        location = q.turnover_trend(self.con, ctx, "location")
        empty = (
            location.group_by("series").agg(pl.col("turnover").count().alias("n")).filter(pl.col("n") == 0)
        )["series"].to_list()
        location = location.filter(~pl.col("series").is_in(empty))
        if location.height:
            section.blocks.append(_chart(
                "turnover_by_location", location,
                lambda d: charts.turnover_small_multiples(d, start=ctx.last12_start, what="location"),
                "Turnover by location",
            ))
        by_location = q.window_by_location(self.con, ctx)
        if by_location.filter(~pl.col("is_total")).height:
            section.blocks.append(self._location_table(by_location))
        if empty:
            section.blocks.append(NoteBlock(
                "No turnover for " + ", ".join(sorted(empty)) + ": these locations have neither sales nor valued "
                "transfers out to other locations in the marts.", "info"))
            section.status = "partial"
            section.detail = "no turnover for " + ", ".join(sorted(empty))
        return section

    _TURNOVER_BASIS = {
        "sales": "sales",
        "shipments": "shipments to other locations",
        "sales_and_transfers": "sales + transfers out",
        "company": "sales only (transfers between locations cancel out)",
    }

    def _location_table(self, rows: pl.DataFrame) -> TableBlock:
        """Each location's turnover over the last 12 months on what leaves it, and the company's on COGS."""
        data = [
            {**row, "location": "Company" if row["is_total"] else _name(row, "location_name", "location_id"),
             "basis": self._TURNOVER_BASIS.get(row["basis"], row["basis"])}
            for row in rows.iter_rows(named=True)
        ]
        return TableBlock(
            "Locations over the last 12 months: turnover (sales + transfers out at cost)",
            [
                _col("location", "Location"),
                _col("avg_inventory_value", "Average inventory at cost", th.money, True),
                _col("cogs", "COGS (sales)", th.money, True),
                _col("transfers_out_cost", "Transfers out at cost", th.money, True),
                _col("turnover", "Turns a year", th.turns, True),
                _col("dio", "Days inventory outstanding", th.days, True),
                _col("basis", "Turnover on"),
            ],
            data,
            note="A location's turnover = (COGS + transfers out to other locations at cost) ÷ its average "
                 "inventory at cost, so a distribution centre turns on its shipments to stores. The company row "
                 "counts COGS only: a transfer between two own locations does not leave the company, and the "
                 "company's transfers-out figure is that internal flow.",
        )

    # ---------------------------------------------------------------- value and GMROI
    def value(self) -> Section:
        ctx = self.ctx
        section = Section("value", "Inventory value at cost and GMROI", "ok",
                          intro="Where the money sits, and what each category earns on it.")
        if self._lacks_marts(section, "fct_inventory_turnover_monthly"):
            return section
        missing = ctx.missing(q.NEEDS_ON_HAND, q.NEEDS_UNIT_COSTS)
        if missing:
            section.status = "not_available"
            section.detail = _not_available(missing + ctx.missing(q.NEEDS_COGS))
            section.blocks.append(NoteBlock(section.detail, "unavailable"))
            return section
        value = q.inventory_value_by_category(self.con, ctx)
        section.blocks.append(_chart("inventory_value_by_category", value,
                                     lambda d: charts.inventory_value_by_category(d, start=ctx.last12_start),
                                     "Inventory value at cost by category"))
        if ctx.missing(q.NEEDS_COGS):
            section.status = "partial"
            section.detail = "GMROI " + _not_available(ctx.missing(q.NEEDS_COGS)).lower()
            section.blocks.append(NoteBlock("GMROI: " + _not_available(ctx.missing(q.NEEDS_COGS)), "unavailable"))
            return section
        window = q.window_by_category(self.con, ctx)
        section.blocks.append(_chart("gmroi_by_category", window.filter(pl.col("gmroi").is_not_null()),
                                     lambda d: charts.gmroi_by_category(d, self.kpis["last"].get("gmroi")),
                                     "GMROI by category"))
        last = window.filter(pl.col("period") == "last")
        prior = window.filter(pl.col("period") == "prior").select("category", pl.col("turnover").alias("t_prior"),
                                                                   pl.col("gmroi").alias("g_prior"))
        rows = last.join(prior, on="category", how="left").sort("avg_inventory_value", descending=True)
        section.blocks.append(TableBlock(
            "Categories over the last 12 months",
            [
                _col("category", "Category"),
                _col("avg_inventory_value", "Average inventory at cost", th.money, True),
                _col("cogs", "COGS", th.money, True),
                _col("gross_margin", "Gross margin", th.money, True),
                _col("turnover", "Turns a year", th.turns, True),
                _col("t_prior", "Turns, prior 12 months", th.turns, True),
                _col("gmroi", "GMROI", lambda v: th.number(v, 2), True),
                _col("g_prior", "GMROI, prior 12 months", lambda v: th.number(v, 2), True),
            ],
            rows.to_dicts(),
        ))
        return section

    # ---------------------------------------------------------------- days of supply
    def days_of_supply(self) -> Section:
        ctx = self.ctx
        section = Section("days-of-supply", "Days of supply", "ok",
                          intro="How long today's stock lasts at the recent pace of sales (backward-looking). "
                          "The forward-looking view against the demand forecast follows below.")
        missing = ctx.missing(q.NEEDS_ON_HAND)
        if self._lacks_marts(section, "fct_days_of_supply", "fct_inventory_daily"):
            pass
        elif missing:
            section.status = "not_available"
            section.detail = _not_available(missing)
            section.blocks.append(NoteBlock(section.detail, "unavailable"))
        else:
            bands = q.days_of_supply_bands(self.con)
            excess_from = q.DOS_BANDS.index("3-6 months")
            section.blocks.append(_chart(
                "days_of_supply_distribution", bands,
                lambda d: charts.days_of_supply_distribution(d, as_of=ctx.as_of_date, excess_days=q.EXCESS_DAYS,
                                                             bands=q.DOS_BANDS, excess_from=excess_from),
                "Inventory value by days of supply"))
            unavailable = q.days_of_supply_unavailable(self.con)
            if unavailable:
                section.blocks.append(NoteBlock(
                    f"{unavailable:,} product-locations have no known stock on the as-of date and are left out.",
                    "info"))
            excess = q.excess_stock(self.con, limit=10)
            if excess.height:
                section.blocks.append(TableBlock(
                    f"Most value beyond {q.EXCESS_DAYS} days of supply on {ctx.as_of_date:%d %b %Y}",
                    [
                        _col("product", "Product"), _col("category", "Category"), _col("location", "Location"),
                        _col("on_hand_units", "Units on hand", th.number, True),
                        _col("on_hand_value", "On hand at cost", th.money, True),
                        _col("avg_daily_usage_units", "Daily use (units)", th.rate, True),
                        _col("days_of_supply", "Days of supply",
                             lambda v: "no recent sales" if v is None else th.number(v), True),
                        _col("excess_value", f"Value beyond {q.EXCESS_DAYS} days", th.money, True),
                    ],
                    [self._names(r) for r in excess.to_dicts()],
                    note="Backward-looking: today's stock against the last weeks' use. Seasonal items may be "
                    "building up ahead of their season.",
                ))
            oos = q.out_of_stock_now(self.con, limit=10)
            if oos.height:
                section.blocks.append(TableBlock(
                    f"Out of stock on {ctx.as_of_date:%d %b %Y}, by the sales their usual daily use is worth",
                    [
                        _col("product", "Product"), _col("category", "Category"), _col("location", "Location"),
                        _col("avg_daily_usage_units", "Daily use (units)", th.rate, True),
                        _col("daily_usage_at_price", "Daily use at list price", th.money, True),
                        _col("days_out", "Days out of stock", lambda v: "over 365" if v is None else th.number(v),
                             True),
                    ],
                    [self._names(r) for r in oos.to_dicts()],
                ))
        self._forward_days_of_supply(section)
        return section

    # ---------------------------------------------------------------- service
    def service_section(self) -> Section:
        ctx = self.ctx
        section = Section("service", "Service: stock-outs, fill rate and lost sales", "ok",
                          intro="How often shelves were empty at selling locations, and the sales that cost. Demand "
                          "on stock-out days is not recorded, so it is estimated from the days the product was "
                          "in stock (see Definitions).")
        if self._lacks_marts(section, "fct_sales_daily"):
            return section
        missing = ctx.missing(q.NEEDS_SALES, q.NEEDS_ON_HAND)
        if missing or not ctx.has_stockout_flags:
            section.status = "not_available"
            section.detail = _not_available(missing or [q.NEEDS_ON_HAND])
            section.blocks.append(NoteBlock(section.detail, "unavailable"))
            return section
        q.prepare_lost_sales(self.con, ctx)
        service = q.service_by_category(self.con, ctx)
        monthly = q.lost_sales_monthly(self.con)
        self.service, self.lost_monthly = service, monthly
        section.blocks += [
            _chart("stockout_by_category", service, charts.stockout_by_category, "Stock-out rate by category"),
            _chart("fill_rate_by_category", service, charts.fill_rate_by_category, "Estimated fill rate by category"),
            _chart("lost_sales_monthly", monthly, charts.lost_sales_monthly, "Estimated lost sales per month"),
        ]
        unestimated = int(service["unestimated_days"].sum() or 0)
        if service.height:
            section.blocks.append(self._service_table(service, unestimated))
        return section

    @staticmethod
    def _service_table(service: pl.DataFrame, unestimated: int) -> TableBlock:
        return TableBlock(
            "Service by category, last 12 months (selling locations)",
            [
                _col("category", "Category"),
                _col("stockout_rate", "Stock-out days", th.pct, True),
                _col("stockout_rate_prior", "Prior 12 months", th.pct, True),
                _col("fill_rate_volume", "Fill rate (volume)", th.pct, True),
                _col("fill_rate_item_avg", "Fill rate (average item)", th.pct, True),
                _col("units_sold", "Units sold", th.number, True),
                _col("lost_units", "Est. lost units", th.number, True),
                _col("lost_sales_value", "Est. lost sales", th.money, True),
            ],
            service.to_dicts(),
            note=((f"{unestimated:,} stock-out days had too few in-stock days around them to estimate demand and "
                   "count as no loss. ") if unestimated else "")
                 + "Lost sales while the book wrongly shows stock (ghost stock) are not included: read the "
                 "estimate as a floor.",
        )

    # ---------------------------------------------------------------- ghost stock
    def ghost_stock(self) -> Section:
        ctx = self.ctx
        section = Section("ghost-stock", "Ghost stock and count discrepancies", "ok",
                          intro="Cycle counts compare the book with the shelf. Shrinkage costs money; ghost stock "
                          "(the book shows stock, the shelf is empty) also stops reordering, so the item sits "
                          "out of stock.")
        if self._lacks_marts(section, "fct_inventory_discrepancies"):
            return section
        missing = ctx.missing(q.NEEDS_COUNTS)
        if missing:
            section.status = "not_available"
            section.detail = _not_available(missing)
            section.blocks.append(NoteBlock(section.detail, "unavailable"))
            return section
        summary = q.discrepancy_summary(self.con, ctx)
        self.kpi_values["shrinkage_value_12m"] = summary.get("shrinkage_value")
        if not summary["counts"]:
            section.status = "partial"
            section.detail = "no cycle counts in the last 12 months"
            section.blocks.append(NoteBlock("No cycle counts in the last 12 months.", "info"))
            return section
        valued = ctx.has_unit_costs
        section.blocks.append(NoteBlock(
            f"{summary['counts']:,} counts in the last 12 months, {summary['counts_off']:,} with a difference: "
            f"shrinkage {th.money(summary['shrinkage_value'])}, surplus {th.money(summary['surplus_value'])}, "
            f"net {th.money(summary['net_value'])}; {summary['ghost_counts']:,} counts found ghost stock "
            f"({th.money(summary['ghost_value'])} at cost).", "info"))
        top = q.discrepancy_by_product_location(self.con, ctx)
        if top.height:
            section.blocks.append(_chart("discrepancy_top", top,
                                         lambda d: charts.discrepancy_top(d, summary, valued=valued),
                                         "Largest book-versus-count discrepancies"))
        largest = q.largest_discrepancies(self.con, ctx, limit=12)
        if largest.height:
            section.blocks.append(TableBlock(
                "Largest single count discrepancies, last 12 months",
                [
                    _col("count_date", "Count date", _date, nowrap=True),
                    _col("product", "Product"), _col("category", "Category"), _col("location", "Location"),
                    _col("book_qty", "Book", th.number, True),
                    _col("counted_qty", "Counted", th.number, True),
                    _col("discrepancy_units", "Difference (units)", lambda v: th.number(v) if v is None
                         else f"{v:+,.0f}", True),
                    _col("discrepancy_value", "Difference at cost", th.money, True),
                    _col("kind", "Kind"),
                    _col("days_since_last_sale", "Days since last sale", th.number, True),
                ],
                [self._names(r) | {"kind": "ghost stock" if r["is_ghost_stock"] else r["discrepancy_type"]}
                 for r in largest.to_dicts()],
            ))
        ghosts = q.largest_discrepancies(self.con, ctx, limit=10, ghost_only=True)
        if ghosts.height:
            section.blocks.append(TableBlock(
                "Largest ghost stock found: the book showed stock, the shelf was empty",
                [
                    _col("count_date", "Count date", _date, nowrap=True),
                    _col("product", "Product"), _col("location", "Location"),
                    _col("book_qty", "Book (units)", th.number, True),
                    _col("discrepancy_value", "Written off at cost", th.money, True),
                    _col("days_since_last_sale", "Days since last sale", th.number, True),
                ],
                [self._names(r) for r in ghosts.to_dicts()],
                note="A long time since the last sale before the count suggests the shelf was empty for that long "
                "while the system saw stock and did not reorder.",
            ))
        if not valued:
            section.status = "partial"
            section.detail = "values " + _not_available([q.NEEDS_UNIT_COSTS]).lower()
        return section

    # ---------------------------------------------------------------- data quality
    def data_quality(self) -> Section:
        section = Section("data-quality", "Data quality: what was loaded", "ok",
                          intro="Every row of every landing file is either kept or set aside (quarantined) with a "
                          "reason; nothing is dropped silently.")
        if self._lacks_marts(section, "data_quality_reconciliation", "data_quality_rejections"):
            return section
        rec = q.reconciliation(self.con)
        present = rec.filter(pl.col("is_present"))
        absent = rec.filter(~pl.col("is_present"))
        rows_in, kept, quarantined = (int(present[c].sum() or 0) for c in ("rows_in", "rows_kept",
                                                                            "rows_quarantined"))
        unaccounted = int(present["rows_unaccounted"].sum() or 0)
        section.blocks.append(NoteBlock(
            f"{rows_in:,} rows landed = {kept:,} kept + {quarantined:,} quarantined "
            f"({th.pct(quarantined / rows_in if rows_in else None, 2)}); {unaccounted:,} unaccounted.",
            "info" if unaccounted == 0 else "error"))
        section.blocks.append(TableBlock(
            "Landing files by source",
            [
                _col("source", "Source"), _col("files", "Files", th.number, True),
                _col("rows_in", "Rows in", th.number, True), _col("rows_kept", "Kept", th.number, True),
                _col("rows_quarantined", "Quarantined", th.number, True),
                _col("quarantine_reasons", "Reasons (rows)"),
            ],
            [r | {"source": f"{r['source_system']}/{r['entity']}"} for r in present.to_dicts()],
        ))
        if absent.height:
            names = ", ".join(f"{r['source_system']}/{r['entity']}" for r in absent.to_dicts())
            section.blocks.append(NoteBlock(f"Optional sources not supplied: {names}.", "info"))
        if unaccounted:
            section.status = "partial"
            section.detail = f"{unaccounted:,} rows unaccounted"
        self._data_checks(section)
        return section

    def _data_checks(self, section: Section) -> None:
        """The value checks (dbt tests of severity warn) that found rows in the last build: the build went on, the
        rows are kept for review."""
        checks = q.data_checks(self.con)
        if checks.is_empty():
            return
        failed = checks.filter(pl.col("status") != "warn")
        if failed.height:
            names = ", ".join(f"{r['test_name']} on {r['model']}" for r in failed.head(5).to_dicts())
            more = f" and {failed.height - 5:,} more" if failed.height > 5 else ""
            section.blocks.append(NoteBlock(
                f"The last dbt build stopped at {failed.height:,} failing check{'s' if failed.height != 1 else ''} "
                f"({names}{more}): the tables downstream of them are from the last good build. "
                "audit.dbt_test_results has the detail.", "error"))
            section.status, section.detail = "partial", "the last build stopped at a failing check"
        warned = checks.filter(pl.col("status") == "warn")
        if warned.height:
            section.blocks.append(TableBlock(
                "Data checks that warned: the build went on, the rows that broke the rule are kept for review",
                [
                    _col("test_name", "Check"), _col("model", "Table"),
                    _col("failing_rows", "Rows", th.number, True),
                    _col("failing_rows_relation", "Rows kept in"), _col("severity_reason", "Why it only warns"),
                ],
                warned.to_dicts(),
                note="A value check (a sign, a range, a balance, a roll-up) never stops the nightly run: one bad row "
                "must not cost every mart. docs/data-tests.md lists every check and why it warns or stops the build.",
            ))
            if section.status == "ok":
                section.status = "partial"
                section.detail = f"{warned.height:,} data check{'s' if warned.height != 1 else ''} warned"

    # ---------------------------------------------------------------- planning run (ml.* and the marts on it)
    def _plan_gate(self, section: Section, what: str, needs: tuple[str, ...], marts: tuple[str, ...] = ()) -> bool:
        """Add a note and mark ``section`` when the planning tables it reads are missing; True when it can go on.

        Missing ml tables: the planning has not run (pending). ml tables without the dbt models built on them: the
        last `stockturn run` stopped before its second dbt step (not available).
        """
        missing = [t for t in needs if t not in self.ctx.ml_tables]
        if missing:
            text = f"{what}: {STOCKTURN_RUN_HINT[0].lower()}{STOCKTURN_RUN_HINT[1:]}"
            section.blocks.append(NoteBlock(text, "pending"))
            if section.status == "ok":
                section.status, section.detail = "pending", STOCKTURN_RUN_HINT
            return False
        missing_marts = self.ctx.missing_marts(*marts)
        if missing_marts:
            text = (f"{what}: not available: the warehouse has the planning run (ml.{', ml.'.join(needs)}) but not "
                    f"marts.{', marts.'.join(missing_marts)}, which `stockturn run` builds on it; run it again.")
            section.blocks.append(NoteBlock(text, "unavailable"))
            if section.status in ("ok", "pending"):
                section.status, section.detail = "partial", text
            return False
        stale = [m for m in self.plan.stale_marts if m in marts]
        if stale:
            section.blocks.append(NoteBlock(
                f"marts.{', marts.'.join(stale)} comes from an earlier planning run than the ml tables (as of "
                f"{_date(self.plan.as_of_date)}): re-run `stockturn run` to refresh it.",
                "error"))
            if section.status == "ok":
                section.status, section.detail = "partial", "built from an earlier planning run"
        return True

    def _plan_note(self, section: Section) -> None:
        if self.plan.as_of_date is not None:
            version = f", {self.plan.model_version}" if self.plan.model_version else ""
            section.blocks.append(NoteBlock(f"Planning run as of {_date(self.plan.as_of_date)}{version}.", "info"))
        if self.plan.rejected is not None:
            _, as_of, failed = self.plan.rejected
            section.blocks.append(NoteBlock(
                f"The latest planning run (as of {_date(as_of)}) was not written: it failed {failed}. The plan shown "
                "is the previous one; audit.plan_check_results has the detail.", "error"))
            if section.status == "ok":
                section.status, section.detail = "partial", "the latest planning run was rejected by its checks"

    def _forward_days_of_supply(self, section: Section) -> None:
        backward_status, backward_detail = section.status, section.detail
        section.status, section.detail = "ok", ""
        blocks_before = len(section.blocks)
        if not self._plan_gate(section, "Forward-looking days of supply", ("demand_forecast",), (pq.DOS_FORECAST,)):
            if backward_status != "ok":
                section.status, section.detail = backward_status, backward_detail
            elif section.status == "pending":
                section.status = "partial"
                section.detail = "forward-looking view: " + STOCKTURN_RUN_HINT[0].lower() + STOCKTURN_RUN_HINT[1:]
            return
        summary = pq.forward_dos_summary(self.con)
        if not summary["product_locations"] or summary["product_locations"] == summary["unavailable"]:
            section.blocks.append(NoteBlock("Forward-looking days of supply: the planning run has no product-location "
                                            "with a known stock position.", "info"))
            section.status = backward_status if backward_status != "ok" else "partial"
            section.detail = backward_detail or "no forward-looking days of supply"
            return
        section.blocks.insert(blocks_before, NoteBlock(
            f"Forward-looking, as of {_date(summary['as_of_date'])}: stock on hand against the demand forecast for the "
            f"{summary['product_locations']:,} planned product-locations.", "info"))
        bands = pq.forward_dos_bands(self.con)
        section.blocks.append(_chart(
            "forward_days_of_supply", bands,
            lambda d: charts.forward_days_of_supply(d, summary, bands=pq.FORWARD_DOS_BANDS),
            "Product-locations by forward days of supply"))
        if summary["unavailable"]:
            section.blocks.append(NoteBlock(
                f"{summary['unavailable']:,} planned product-locations have no known stock position and are left out.",
                "info"))
        under = pq.forward_understock(self.con, self.ctx, limit=10)
        if under.height:
            section.blocks.append(TableBlock(
                "Most under-stocked: out of stock or running out before an order placed today can arrive, by the "
                "forecast demand at cost they miss per day",
                [
                    _col("product", "Product"), _col("category", "Category"), _col("location", "Location"),
                    _col("status", "Status"),
                    _col("on_hand_units", "On hand", th.number, True),
                    _col("inventory_position_units", "On hand + on order", th.number, True),
                    _col("forecast_daily_units", "Forecast a day (units)", th.rate, True),
                    _col("daily_demand_at_cost", "Forecast a day at cost", lambda v: th.money(v, digits=2), True),
                    _col("forward_days_of_supply", "Days of supply", th.number, True),
                    _col("lead_time_days", "Lead time (days)", th.number, True),
                    _col("proposal", "Proposed now"),
                ],
                [self._names(r) | {
                    "status": pq.label(pq.SUPPLY_STATUS, r["supply_status"]),
                    "proposal": (f"{pq.label(pq.PROPOSAL_TYPES, r['proposal_type']).lower()} of "
                                 f"{th.number(r['proposed_quantity'])} ({r['proposal_status'] or 'proposed'})"
                                 if r["proposal_type"] else "none"),
                } for r in under.to_dicts()],
            ))
        over = pq.forward_overstock(self.con, limit=10)
        if over.height:
            section.blocks.append(TableBlock(
                "Most over-stocked: value above the recommended order-up-to level",
                [
                    _col("product", "Product"), _col("category", "Category"), _col("location", "Location"),
                    _col("on_hand_units", "On hand", th.number, True),
                    _col("on_hand_value", "On hand at cost", th.money, True),
                    _col("forecast_daily_units", "Forecast a day (units)", th.rate, True),
                    _col("forward_days_of_supply", "Days of supply", _long_days, True),
                    _col("target_days_of_supply", "Target days", _long_days, True),
                    _col("excess_units", "Units above target", th.number, True),
                    _col("excess_value_at_cost", "Value above target", th.money, True),
                ],
                [self._names(r) for r in over.to_dicts()],
                note="Target = the recommended order-up-to level (reorder point + order quantity) of stockturn's "
                "policy. Stock above it is cash the forecast says will not be needed before the next order.",
            ))
        self.kpi_values["forward_excess_value"] = summary["excess_value_at_cost"]
        self.kpi_values["forward_short_items"] = summary["out_of_stock"] + summary["stockout_before_receipt"]
        if backward_status != "ok":
            section.status, section.detail = backward_status, backward_detail

    # ---------------------------------------------------------------- forecast quality
    def forecast_quality(self) -> Section:
        section = Section("forecast-quality", "Forecast quality", "ok",
                          intro="How good the demand forecast behind the plan is, measured on a rolling-origin "
                          "backtest: each origin replays a past planning day and scores the following weeks. "
                          "Accuracy against the seasonal-naive baseline (the same day a season earlier), bias and "
                          "interval coverage.")
        if not self._plan_gate(section, "Forecast quality", ("forecast_backtest",)):
            return section
        split = pq.backtest_split(self.con)
        if split is None:
            section.status, section.detail = "partial", "ml.forecast_backtest is empty (history too short)"
            section.blocks.append(NoteBlock("The forecast backtest is empty: the history was too short to replay "
                                            "a past planning day.", "info"))
            return section
        self._plan_note(section)
        if split == "selection":
            section.status, section.detail = "partial", "no held-out origins: scores are on the selection origins"
            section.blocks.append(NoteBlock(
                "The history is too short for held-out origins: the scores below are on the origins the models "
                "were chosen on, so they flatter the forecast.", "pending"))
        acc = pq.backtest_accuracy(self.con, split)
        cov = pq.backtest_coverage(self.con, split)
        overall = acc.filter(pl.col("level") == "overall")
        sel = overall.filter(pl.col("model") == "selected")
        naive = overall.filter(pl.col("model") == "seasonal_naive")
        if sel.height:
            self.kpi_values["forecast_mase"] = sel["mase"][0]
            self.kpi_values["forecast_bias"] = sel["bias"][0]
        if naive.height:
            self.kpi_values["seasonal_naive_mase"] = naive["mase"][0]
        section.blocks += [
            _chart("forecast_accuracy", acc.filter(pl.col("mase").is_not_null()), charts.forecast_accuracy,
                   "Forecast accuracy against the seasonal-naive baseline"),
            _chart("forecast_bias", acc, charts.forecast_bias, "Forecast bias by demand segment"),
        ]
        cov_overall = cov.filter(pl.col("level") == "overall")
        section.blocks.append(_chart("interval_coverage", cov_overall,
                                     lambda d: charts.interval_coverage(d, tolerance=pq.coverage_tolerance),
                                     "Interval coverage"))
        wide = self._accuracy_table_rows(acc, cov)
        if wide:
            section.blocks.append(TableBlock(
                f"Backtest scores by demand segment ({'held-out' if split == 'holdout' else 'selection'} origins)",
                [
                    _col("segment_label", "Demand segment"), _col("chosen_model", "Model used"),
                    _col("n_series", "Series × origins", th.number, True),
                    _col("mase", "MASE", lambda v: th.number(v, 2), True),
                    _col("mase_naive", "MASE, seasonal naive", lambda v: th.number(v, 2), True),
                    _col("wape", "WAPE", th.pct, True),
                    _col("wape_naive", "WAPE, seasonal naive", th.pct, True),
                    _col("bias", "Bias", lambda v: th.pct(v) if v is None else f"{100 * v:+,.1f}%", True),
                    _col("coverage_80", "In 80% interval", th.pct, True),
                    _col("coverage_95", "In 95% interval", th.pct, True),
                    _col("ltd_p95", "Lead-time demand ≤ p95", th.pct, True),
                ],
                wide,
                note="MASE and WAPE: lower is better. Bias > 0: the forecast is too high. Interval columns: the "
                "share of actual demand that fell inside the band (promised: 80%, 95%, 95%). Stock-out days are "
                "not scored. 'No recent demand' series have nothing to scale MASE by.",
            ))
        gating = pq.signal_gating(self.con)
        if gating.height:
            self.kpi_values["signals_kept"] = int(gating["kept"].sum())
            section.blocks.append(TableBlock(
                "External signals and events: used only where they improve the backtest",
                [
                    _col("signal_label", "Signal or event type"), _col("category", "Category"),
                    _col("kept", "Used by the forecast", lambda v: "yes" if v else "no"),
                    _col("gain", "Error cut", _signed_pct, True),
                    _col("interval", "Interval", nowrap=True),
                    _col("n_blocks", "Store-weeks compared", th.number, True),
                ],
                [r | {"interval": "n/a" if r["gain_ci_low"] is None else
                      f"{_signed_pct(r['gain_ci_low'])} .. {_signed_pct(r['gain_ci_high'])}"}
                 for r in gating.iter_rows(named=True)],
                note="Error cut: how much the signal lowers the squared error of the category's daily totals per "
                "store in the backtest, where its values were known at the forecast date. A signal is used for a "
                "category only when the cut is at least 0.5% and its interval (family-wise 95% over the "
                "categories) is above zero; elsewhere the forecast ignores it (docs/signals.md).",
            ))
        return section

    @staticmethod
    def _accuracy_table_rows(acc: pl.DataFrame, cov: pl.DataFrame) -> list[dict]:
        rows = []
        for seg in acc.filter(pl.col("model") == "selected").iter_rows(named=True):
            key = seg["segment"]
            naive = acc.filter((pl.col("model") == "seasonal_naive") & (pl.col("level") == seg["level"])
                               & pl.col("segment").eq_missing(key))
            c = {r["metric"]: r["achieved"] for r in cov.filter(
                (pl.col("level") == seg["level"]) & pl.col("segment").eq_missing(key)).iter_rows(named=True)}
            rows.append(seg | {
                "chosen_model": "per segment" if key is None else pq.label(pq.MODELS, seg["chosen_model"]),
                "mase_naive": naive["mase"][0] if naive.height else None,
                "wape_naive": naive["wape"][0] if naive.height else None,
                "coverage_80": c.get("coverage_80"), "coverage_95": c.get("coverage_95"),
                "ltd_p95": c.get("ltd_coverage_p95"),
            })
        return rows

    # ---------------------------------------------------------------- recommendations
    def recommendations(self) -> Section:
        section = Section("recommendations", "Recommendations and purchase proposals", "ok",
                          intro="stockturn's replenishment policy beside the classical textbook policy at the same "
                          "service targets: safety stock, reorder points, the inventory value each frees or adds, "
                          "the expected turnover, and the orders proposed now for a planner to approve.")
        if self._plan_gate(section, "Recommendations", ("inventory_policy",), (pq.RECOMMENDATIONS,)):
            self._plan_note(section)
            self._policy_changes(section)
        if "inventory_policy" in self.ctx.ml_tables:
            self._safeguards(section)
        if "purchase_proposals" in self.ctx.ml_tables:
            self._proposals(section)
        if "exceptions" in self.ctx.ml_tables:
            self._exceptions(section)
        if "planner_decision_value" in self.ctx.ml_tables:
            self._planner_decisions(section)
        return section

    def _planner_decisions(self, section: Section) -> None:
        values = pq.planner_decision_value(self.con)
        if values.is_empty():
            return
        if "decision_kind" not in values.columns:  # written by an older stockturn: overrides only
            values = values.with_columns(pl.lit("override").alias("decision_kind"))
        measured = values.filter(pl.col("measured"))
        not_measured = values.filter(~pl.col("measured"))
        if measured.is_empty():
            section.blocks.append(NoteBlock(
                f"Planner decisions: {values.height:,}, none replayable yet (" + "; ".join(
                    sorted(set(not_measured["not_measured_reason"].drop_nulls().to_list()))) + ").", "info"))
            return
        from ml.simulation.decision_value import summarise

        table = summarise(values)
        kinds = {"override": "override", "rejected_proposal": "rejected proposal",
                 "changed_proposal": "changed quantity"}
        waiting = not_measured.filter(pl.col("not_measured_reason").str.starts_with("not measured yet")).height
        section.blocks.append(TableBlock(
            f"What the planners' decisions changed: {measured.height:,} decisions replayed, net "
            f"{th.money(float(measured['net_value'].sum()))}",
            [
                _col("author", "Planner"), _col("decision_kind", "Decision", lambda v: kinds.get(v, v)),
                _col("reason", "Reason", _readable),
                _col("decisions", "Decisions", th.number, True), _col("gains", "Gains", th.number, True),
                _col("losses", "Losses", th.number, True),
                _col("inventory_value_change", "Inventory value change", th.money, True),
                _col("lost_margin_saved", "Lost margin saved", th.money, True),
                _col("net_value", "Net value", th.money, True),
            ],
            table.to_dicts(),
            note="Each override of a reorder point or order quantity (seeds/planner_overrides.csv) is replayed on the "
                 "last days of demand with the planner's numbers and with the policy's, from the same stock. Each "
                 "proposal a planner rejected or approved with another quantity is replayed forward from its day, "
                 "on the demand that landed since, with the quantity proposed and with the planner's, under the "
                 "policy in force that day. Net value = lost margin saved - extra holding cost; negative: the "
                 "policy's own number would have done better. "
                 + (f"{waiting:,} proposal decisions are too recent to measure yet. " if waiting else "")
                 + (f"{not_measured.height - waiting:,} other decisions are not replayable (facts about the item, "
                    "service targets, distribution centres). " if not_measured.height - waiting else "")
                 + "Details per item: ml.planner_decision_value; method: docs/planner-decisions.md.",
        ))

    def _policy_changes(self, section: Section) -> None:
        by_cat = pq.recommendation_by_category(self.con)
        if by_cat.filter(~pl.col("is_total")).height == 0:
            section.blocks.append(NoteBlock("The planning run recommends no policy: no product-location had enough "
                                            "history to plan.", "info"))
            section.status, section.detail = "partial", "no product-location planned"
            return
        total = by_cat.filter(pl.col("is_total")).row(0, named=True)
        self.kpi_values |= {
            "recommended_inventory_change": total["net_change"],
            "classical_expected_turnover": total["classical_turnover"],
            "recommended_expected_turnover": total["recommended_turnover"],
        }
        section.blocks.append(NoteBlock(
            f"Across {total['product_locations']:,} product-locations the recommendation frees "
            f"{th.money(total['freed_value'])} of expected average inventory at cost on {total['items_freeing']:,} "
            f"and adds {th.money(total['added_value'])} on {total['items_adding']:,}: net "
            f"{'+' if (total['net_change'] or 0) > 0 else ''}{th.money(total['net_change'])}. Expected turnover "
            f"{th.turns(total['classical_turnover'])} → {th.turns(total['recommended_turnover'])}; expected fill rate "
            f"{th.pct(total['classical_fill_rate'])} → {th.pct(total['recommended_fill_rate'])} (by volume).",
            "info"))
        section.blocks += [
            _chart("recommendation_value", by_cat, lambda d: charts.recommendation_value(d, total),
                   "Inventory value the recommendation frees or adds"),
            _chart("safety_stock_by_category", by_cat, lambda d: charts.safety_stock_by_category(d, total),
                   "Safety stock, classical vs recommended"),
            _chart("expected_turnover_by_category", by_cat.filter(pl.col("classical_turnover").is_not_null()
                                                                  | pl.col("recommended_turnover").is_not_null()),
                   lambda d: charts.expected_turnover_by_category(d, total),
                   "Expected turnover, classical vs recommended"),
        ]
        signed = lambda v: th.money(v) if v is None or v <= 0 else "+" + th.money(v)  # noqa: E731
        section.blocks.append(TableBlock(
            "Classical vs recommended policy by category (expected values at cost)",
            [
                _col("category", "Category"), _col("product_locations", "Items", th.number, True),
                _col("classical_safety_stock_value", "Safety stock, classical", th.money, True),
                _col("recommended_safety_stock_value", "Safety stock, recommended", th.money, True),
                _col("classical_value", "Avg inventory, classical", th.money, True),
                _col("recommended_value", "Avg inventory, recommended", th.money, True),
                _col("net_change", "Change", signed, True),
                _col("classical_turnover", "Turns, classical", th.turns, True),
                _col("recommended_turnover", "Turns, recommended", th.turns, True),
                _col("classical_fill_rate", "Fill rate, classical", th.pct, True),
                _col("recommended_fill_rate", "Fill rate, recommended", th.pct, True),
            ],
            by_cat.to_dicts(),
            note="Expected values come from the policy arithmetic on the forecast's lead-time-demand distribution, "
            "not from history: the policy backtest below checks them by replaying the past.",
        ))
        changes = pq.recommendation_changes(self.con, limit=10)
        if changes.height:
            section.blocks.append(TableBlock(
                "Largest changes: current (classical) → recommended safety stock and reorder point, in units",
                [
                    _col("product", "Product"), _col("location", "Location"), _col("abc_xyz", "Class"),
                    _col("target", "Service target"),
                    _col("daily_demand_forecast", "Forecast a day", th.rate, True),
                    _col("lead_time_days", "Lead time (days)", th.number, True),
                    _col("safety_stock", "Safety stock", numeric=True, nowrap=True),
                    _col("reorder_point", "Reorder point", numeric=True, nowrap=True),
                    _col("inventory_value_change", "Avg inventory at cost", signed, True),
                    _col("overridden_fields", "Planner override"),
                ],
                [self._names(r) | {
                    "abc_xyz": f"{r['abc_class'] or ''}{r['xyz_class'] or ''}",
                    "target": (f"{th.pct(r['service_target'])} "
                               f"{'fill rate' if r['service_metric'] == 'fill_rate' else 'cycle service'}"
                               if r["service_target"] is not None else ""),
                    "safety_stock": _arrow(r["classical_safety_stock"], r["recommended_safety_stock"]),
                    "reorder_point": _arrow(r["classical_reorder_point"], r["recommended_reorder_point"]),
                } for r in changes.to_dicts()],
                note="Safety stock = reorder point − expected demand over lead time and review period. Largest "
                "change in expected average inventory at cost first, either way.",
            ))

    def _safeguards(self, section: Section) -> None:
        """What each guard of the planning run caught, and the plan's safety stock against the classical policy
        and the evidence (docs/plan-safeguards.md); "not available" for a plan made before the guards."""
        g = pq.safeguards(self.con, self.ctx)
        if g is None:
            section.blocks.append(NoteBlock(
                "Safeguards: not available for this plan: it was made before the guards existed (ml.inventory_policy "
                "has no guard columns). Run `stockturn run` again to see what each guard caught.", "unavailable"))
            if section.status == "ok":
                section.status, section.detail = "partial", "safeguards not available for this plan"
            return
        items = int(g["product_locations"] or 0)
        if items == 0 and not g["no_forecast"]:
            return
        plan, classical, evidence = (g["plan_safety_stock_value"], g["classical_safety_stock_value"],
                                     g["evidence_safety_stock_value"])
        self.kpi_values |= {"safety_stock_vs_classical": plan / classical if classical else None,
                            "safety_stock_vs_evidence": plan / evidence if evidence else None}
        if items:
            def times(base: float) -> str:
                return f"{plan / base:,.2f}x " if base > 0 else ""

            section.blocks.append(NoteBlock(
                f"Safeguards: the plan holds {th.money(plan)} of safety stock at cost, {times(classical)}the "
                f"classical policy's {th.money(classical)} and {times(evidence)}the {th.money(evidence)} the evidence "
                "supports (per item the larger of the classical and the item's own-history safety stock, the "
                "reference the safety-stock guard caps to).", "info"))
        factor = g["guard_factor"]
        above = f"more than {factor:g}x" if factor else "far above"
        unavailable = "Not available for this plan: "
        rows = [
            {"guard": "Safety stock capped to the evidence", "items": g["safety_stock_guarded"],
             "money": g["safety_stock_removed_value"],
             "meaning": f"The forecast asked for a buffer {above} the larger of the classical and the item's "
                        "own-history safety stock; it was cut back to that reference. Money: the safety stock "
                        "removed."},
            {"guard": "Reorder point above both references (kept, flagged)", "items": g["above_references"],
             "money": g["above_references_excess_value"],
             "meaning": f"The reorder point is {above} the larger of the classical and the own-history reorder "
                        "point: kept (a launch or a ramp-up can be right) but flagged for a planner. Money: the "
                        "excess over that reference."},
            {"guard": "Forecast level guard", "items": g["level_guard_series"], "money": None,
             "meaning": "A forecast that collapsed far below the series' recent sales was replaced by a robust "
                        "local method (Croston SBA or moving average); counted per product-location."
             if g["level_guard_series"] is not None
             else unavailable + "ml.demand_forecast is missing or has no model column."},
            {"guard": "Products with no forecast", "items": g["no_forecast"], "money": None,
             "meaning": "Active stock products with no sales yet: no forecast, reorder point or proposal; their "
                        "stock is the planner's call until they sell."
             if g["no_forecast"] is not None else unavailable + "the run wrote no ml.exceptions."},
        ]
        section.blocks.append(TableBlock(
            f"Safeguards: what each guard caught among {_plural(items, 'planned product-location')}",
            [
                _col("guard", "Guard"), _col("items", "Items caught", th.number, True),
                _col("money", "Money at stake (at cost)", lambda v: "not valued" if v is None else th.money(v), True),
                _col("meaning", "What it means"),
            ],
            rows,
            note="Money at cost, before planner overrides. The items the first two caught are also in the "
            "exceptions for planners, one by one (unless a planner excluded them). See Safeguards in the "
            "definitions.",
        ))

    def _proposals(self, section: Section) -> None:
        totals = pq.proposal_totals(self.con)
        awaiting = totals.filter(pl.col("status") == "proposed")
        n, value = int(awaiting["proposals"].sum() or 0), float(awaiting["value"].sum() or 0.0)
        self.kpi_values |= {"proposals_awaiting": n, "proposals_awaiting_value": value}
        if totals.height == 0:
            section.blocks.append(NoteBlock("No purchase or transfer proposals: no inventory position is at or "
                                            "below its reorder point.", "info"))
            return
        parts = [f"{int(r['proposals']):,} {r['status']} {pq.label(pq.PROPOSAL_TYPES, r['proposal_type']).lower()}"
                 f"{'s' if r['proposals'] != 1 else ''} ({th.money(r['value'])})" for r in totals.to_dicts()]
        section.blocks.append(NoteBlock("Proposals of this run: " + "; ".join(parts) + ".", "info"))
        approvers = pq.approvals_by_author(self.con)
        if approvers.height:
            by_rule = approvers.filter(pl.col("kind") == "rule")
            by_planner = approvers.filter(pl.col("kind") == "planner")
            text = (f"Approved by the rules in seeds/approval_rules.csv: {int(by_rule['proposals'].sum()):,} "
                    f"({th.money(float(by_rule['value'].sum() or 0.0))})")
            if by_rule.height:
                text += " - " + ", ".join(f"{r['approver'].removeprefix('rule:')} {int(r['proposals']):,}"
                                          for r in by_rule.to_dicts())
            text += f"; by planners: {int(by_planner['proposals'].sum()):,}. Exceptions always wait for a planner."
            section.blocks.append(NoteBlock(text, "info"))
        if n == 0:
            return
        rows = pq.proposals_awaiting(self.con, self.ctx, limit=12)
        section.blocks.append(TableBlock(
            f"Purchase proposals awaiting approval: {n:,} worth {th.money(value)} at cost (largest first)",
            [
                _col("type", "Type"), _col("from", "From"), _col("product", "Product"), _col("location", "To"),
                _col("quantity", "Units", th.number, True), _col("value", "Value at cost", th.money, True),
                _col("order_date", "Order by", _date, nowrap=True),
                _col("expected_arrival_date", "Expected arrival", _date, nowrap=True),
                _col("days_covered", "Days covered", th.number, True),
                _col("reason", "Why", _readable),
                _col("waiting_reason", "Waits because", _readable),
            ],
            [self._names(r) | {
                "type": pq.label(pq.PROPOSAL_TYPES, r["proposal_type"]),
                "from": (_name(r, "supplier_name", "supplier_id") if r["proposal_type"] == "purchase_order"
                         else _name(r, "source_location_name", "source_location_id")),
            } for r in rows.to_dicts()],
            note=(f"Showing the {rows.height} largest of {n:,}. " if n > rows.height else "")
            + "Approve or reject with `stockturn proposals`; decisions are kept across re-runs. Routine proposals are "
              "approved by seeds/approval_rules.csv; \"Waits because\" says why these were not.",
        ))

    def _exceptions(self, section: Section) -> None:
        by_type = pq.exceptions_by_type(self.con)
        if by_type.height == 0:
            return
        top = pq.top_exceptions(self.con, limit=10)
        section.blocks.append(TableBlock(
            "Exceptions for planners, by money at stake",
            [
                _col("type", "Exception"), _col("product", "Product"), _col("location", "Location"),
                _col("money_at_stake", "Money at stake", th.money, True), _col("reason", "Why", _readable),
            ],
            [self._names(r) for r in top.to_dicts()],
            note="All exceptions: " + "; ".join(
                f"{r['type'].lower()} {int(r['exceptions']):,} ({th.money(r['money_at_stake'])})"
                for r in by_type.to_dicts()) + ".",
        ))

    # ---------------------------------------------------------------- policy backtest
    def policy_backtest(self) -> Section:
        section = Section("policy-backtest", "Policy backtest: stockturn against the classical policy", "ok",
                          intro="The proof behind the recommendations: each policy is replayed day by day on the "
                          "recorded demand history (orders, lead times, stock-outs), and stockturn's inventory is "
                          "compared with the classical policy's at the same fill rate.")
        present = [t for t in (pq.POLICY_BACKTEST, pq.POLICY_BACKTEST_COMPARISON) if t in self.ctx.ml_tables]
        if not present:
            section.status = "pending"
            section.detail = "Not available yet: the policy backtest has not been run (`stockturn backtest`)."
            section.blocks.append(NoteBlock(
                "The policy backtest has not been run: run `stockturn backtest` to replay stockturn's and the "
                "classical policy on the history and compare the inventory each needs for the same fill rate.",
                "pending"))
            return section
        comparison = (pq.backtest_comparison(self.con) if pq.POLICY_BACKTEST_COMPARISON in self.ctx.ml_tables
                      else pl.DataFrame())
        policies = pq.backtest_policies(self.con) if pq.POLICY_BACKTEST in self.ctx.ml_tables else pl.DataFrame()
        if comparison.height == 0 and policies.height == 0:
            section.status, section.detail = "partial", "the backtest tables are empty"
            section.blocks.append(NoteBlock("The policy backtest tables are empty: run `stockturn backtest` again.",
                                            "info"))
            return section
        main = comparison.filter(pl.col("study") == pq.MAIN_STUDY) if comparison.height else comparison
        main_row = main.row(0, named=True) if main.height else None
        as_of = (main_row or {}).get("as_of_date")
        if as_of:
            section.blocks.append(NoteBlock(f"Policy backtest as of {_date(as_of)}.", "info"))
        if main_row is not None:
            red = main_row.get("inventory_reduction_pct")
            self.kpi_values["backtest_inventory_reduction_pct"] = red
            low, high = main_row.get("reduction_ci_low_pct"), main_row.get("reduction_ci_high_pct")
            ci = (f" (95% bootstrap interval {th.number(low, 1)}% to {th.number(high, 1)}%"
                  f"{', ' + th.number(main_row['n_bootstrap']) + ' resamples' if main_row.get('n_bootstrap') else ''})"
                  if low is not None and high is not None else "")
            z = main_row.get("baseline_setting")
            setting = "" if z is None else (f" at safety factor z = {z:,.2f}" if isinstance(z, int | float)
                                            else f" at {z}")
            if red is not None:
                section.blocks.append(NoteBlock(
                    f"At a fill rate of {th.pct(main_row.get('stockturn_fill_volume'))} by volume "
                    f"({th.pct(main_row.get('stockturn_fill_item_avg'))} for the average item), stockturn held "
                    f"{th.money(main_row.get('stockturn_inventory_value'))} of inventory at cost on average; the "
                    f"classical policy needed {th.money(main_row.get('baseline_inventory_value'))} for "
                    f"{th.pct(main_row.get('baseline_fill_volume'))} ({th.pct(main_row.get('baseline_fill_item_avg'))}"
                    f" average item){setting}"
                    f": {th.number(abs(red), 1)}% {'less' if red >= 0 else 'more'} inventory for stockturn{ci}. "
                    f"Turnover {th.turns(main_row.get('turnover_baseline'))} → "
                    f"{th.turns(main_row.get('turnover_stockturn'))}.", "info"))
            else:
                section.status = "partial"
                section.detail = "the classical policy could not be matched to stockturn's fill rate"
                section.blocks.append(NoteBlock(
                    f"No like-for-like result: scanning the classical policy's safety factor did not reach "
                    f"stockturn's fill rate of {th.pct(main_row.get('stockturn_fill_volume'))} by volume "
                    f"({th.pct(main_row.get('stockturn_fill_item_avg'))} for the average item), so the inventory "
                    "each needs at the same service cannot be compared. The policies as replayed are below; widen "
                    "the scan or replay more days (`stockturn backtest --days`).", "pending"))
        else:
            section.status, section.detail = "partial", "no main (matched service) study in the comparison"
        main_policies = policies.filter(pl.col("study") == pq.MAIN_STUDY) if policies.height else policies
        if main_policies.height == 0 and policies.height:
            first = policies["study"][0]
            main_policies = policies.filter(pl.col("study") == first)
        if main_policies.height:
            section.blocks.append(_chart(
                "backtest_tradeoff",
                main_policies.filter(pl.col("avg_inventory_value").is_not_null()
                                     & pl.col("fill_rate_volume").is_not_null()),
                lambda d: charts.backtest_tradeoff(d, main_row), "Fill rate against inventory per policy"))
        if comparison.height:
            section.blocks.append(_chart("backtest_reduction", comparison, charts.backtest_reduction,
                                         "Inventory reduction at the same fill rate, per study"))
        if main_policies.height:
            section.blocks.append(TableBlock(
                f"{main_policies['study_label'][0]}: every policy, all product-locations",
                [
                    _col("policy_label", "Policy", nowrap=True),
                    _col("fill_rate_volume", "Fill rate (volume)", th.pct, True),
                    _col("fill_rate_item_avg", "Fill rate (average item)", th.pct, True),
                    _col("cycle_service_level", "Cycle service", th.pct, True),
                    _col("stockout_days", "Stock-out days", th.number, True),
                    _col("lost_units", "Lost units", th.number, True),
                    _col("avg_inventory_value", "Avg inventory at cost", th.money, True),
                    _col("turnover", "Turns a year", th.turns, True),
                    _col("days_of_supply", "Days of supply", th.number, True),
                    _col("orders", "Orders", th.number, True),
                    _col("total_cost", "Holding + ordering + shortage", th.money, True),
                    _col("bullwhip", "Bullwhip", lambda v: th.number(v, 2), True),
                ],
                main_policies.to_dicts(),
                note="Perfect foresight knows the demand in advance: the lower bound no real policy reaches. "
                "Bullwhip = variance of orders ÷ variance of demand (above 1: orders swing more than sales).",
            ))
        if comparison.height > 1:
            section.blocks.append(TableBlock(
                "Every study: stockturn against the classical policy matched to the same fill rate",
                [
                    _col("study_label", "Study"),
                    _col("stockturn_fill_volume", "Fill rate, stockturn", th.pct, True),
                    _col("baseline_fill_volume", "Fill rate, classical", th.pct, True),
                    _col("stockturn_inventory_value", "Avg inventory, stockturn", th.money, True),
                    _col("baseline_inventory_value", "Avg inventory, classical", th.money, True),
                    _col("reduction", "Less inventory", numeric=True, nowrap=True),
                    _col("turnover_stockturn", "Turns, stockturn", th.turns, True),
                    _col("turnover_baseline", "Turns, classical", th.turns, True),
                ],
                [r | {"reduction": _pct_points(r["inventory_reduction_pct"], r["reduction_ci_low_pct"],
                                               r["reduction_ci_high_pct"])} for r in comparison.to_dicts()],
                note="Less inventory: the classical policy's average inventory minus stockturn's, in % of the "
                "classical one, with its 95% bootstrap interval; negative means stockturn needed more.",
            ))
        by_echelon = (pq.backtest_by_echelon(self.con) if pq.POLICY_BACKTEST in self.ctx.ml_tables
                      else pl.DataFrame())
        if by_echelon.height:
            section.blocks.append(TableBlock(
                "Where the stock sits: stores and distribution centre, per policy",
                [
                    _col("echelon", "Echelon"), _col("policy_label", "Policy", nowrap=True),
                    _col("fill_rate_volume", "Fill rate (volume)", th.pct, True),
                    _col("fill_rate_item_avg", "Fill rate (average item)", th.pct, True),
                    _col("avg_inventory_value", "Avg inventory at cost", th.money, True),
                    _col("bullwhip", "Bullwhip", lambda v: th.number(v, 2), True),
                ],
                by_echelon.with_columns(pl.col("echelon").replace({"store": "Stores", "dc": "Distribution centre"}))
                .to_dicts(),
                note="The network replay: the DC ships only what it holds, stores wait when it is short. Store fill "
                "is the customers'; the DC's is the share of store requests shipped the day they were made. "
                "Bullwhip = variance of the echelon's orders ÷ variance of customer demand (stores: their own "
                "customers; DC: all its stores' customers).",
            ))
        by_cat = pq.backtest_by_category(self.con) if pq.POLICY_BACKTEST in self.ctx.ml_tables else pl.DataFrame()
        if by_cat.height:
            section.blocks.append(self._backtest_category_table(by_cat))
        return section

    @staticmethod
    def _backtest_category_table(by_cat: pl.DataFrame) -> TableBlock:
        present = set(by_cat["policy"].to_list())
        baseline = next((p for p in ("classical_matched", "classical") if p in present), None)
        rows = []
        for cat in sorted(set(by_cat["category"].to_list())):
            row: dict = {"category": cat}
            for who, policy in (("st", "stockturn"), ("base", baseline)):
                match = by_cat.filter((pl.col("category") == cat) & (pl.col("policy") == policy))
                r = match.row(0, named=True) if match.height else {}
                for k in ("fill_rate_volume", "fill_rate_item_avg", "avg_inventory_value", "turnover", "lost_units"):
                    row[f"{who}_{k}"] = r.get(k)
            st, base = row["st_avg_inventory_value"], row["base_avg_inventory_value"]
            row["reduction"] = (1 - st / base) if st is not None and base else None
            rows.append(row)
        rows.sort(key=lambda r: -(r["base_avg_inventory_value"] or 0))
        base_name = pq.label(pq.POLICIES, baseline).lower() if baseline else "classical"
        return TableBlock(
            f"Main study by category: stockturn vs {base_name}",
            [
                _col("category", "Category"),
                _col("st_fill_rate_volume", "Fill rate, stockturn", th.pct, True),
                _col("base_fill_rate_volume", "Fill rate, classical", th.pct, True),
                _col("st_fill_rate_item_avg", "Average item, stockturn", th.pct, True),
                _col("base_fill_rate_item_avg", "Average item, classical", th.pct, True),
                _col("st_avg_inventory_value", "Avg inventory, stockturn", th.money, True),
                _col("base_avg_inventory_value", "Avg inventory, classical", th.money, True),
                _col("reduction", "Less inventory", lambda v: th.pct(v) if v is None else f"{100 * v:+,.1f}%", True),
                _col("st_turnover", "Turns, stockturn", th.turns, True),
                _col("base_turnover", "Turns, classical", th.turns, True),
            ],
            rows,
            note="Fill rates by volume unless stated. A category can trade inventory for service: read the fill "
            "rates before the inventory.",
        )

    # ---------------------------------------------------------------- KPI tiles
    def kpi_tiles(self) -> list[Kpi]:
        ctx, last, prior = self.ctx, self.kpis["last"], self.kpis["prior"]
        comparable = bool(prior.get("days")) and prior["days"] >= 0.9 * (last.get("days") or 0)

        def vs(cur, prev, kind="relative", good_up=True):
            if not comparable:
                return None, ""
            text = th.change(cur, prev, kind=kind)
            if text is None:
                return None, ""
            up = cur > prev
            return f"{text} vs prior 12 months", ("good" if up == good_up else "bad") if cur != prev else ""

        tiles: list[Kpi] = []
        needs_value = ctx.missing(q.NEEDS_ON_HAND, q.NEEDS_UNIT_COSTS, q.NEEDS_COGS)
        hint = "not available: needs " + ", ".join(n.split(" (")[0] for n in needs_value) if needs_value else ""
        for key, label, fmt, kind, good_up in (
            ("turnover", "Inventory turnover", th.turns, "relative", True),
            ("dio", "Days inventory outstanding", th.days, "relative", False),
            ("avg_inventory_value", "Average inventory at cost", th.money_short, "relative", False),
            ("gmroi", "GMROI", lambda v: th.number(v, 2), "relative", True),
        ):
            value = last.get(key)
            self.kpi_values[key] = value
            change, tone = vs(value, prior.get(key), kind, good_up)
            tiles.append(Kpi(label, fmt(value), change,
                             (hint or "not available") if value is None else "last 12 months", tone))
        if self.service is not None and self.service.height:
            s = self.service
            days_total = s["product_location_days"].sum()
            rate = s["stockout_days"].sum() / days_total if days_total else None
            prior_rate = None
            if comparable and s["stockout_rate_prior"].null_count() < s.height:
                prior_rate = (s["stockout_rate_prior"] * s["product_location_days"]).sum() / days_total
            sold, lost = s["units_sold"].sum() or 0.0, s["lost_units"].sum() or 0.0
            fill = sold / (sold + lost) if sold + lost else None
            lost_value = s["lost_sales_value"].sum()
            self.kpi_values |= {"stockout_rate": rate, "fill_rate": fill, "lost_sales_value": lost_value}
            change, tone = vs(rate, prior_rate, "points", False)
            tiles += [
                Kpi("Stock-out days", th.pct(rate), change, "share of product-location days, selling locations",
                    tone),
                Kpi("Fill rate (estimated)", th.pct(fill), None, "units sold ÷ estimated demand"),
                Kpi("Lost sales (estimated)", th.money_short(lost_value), None, "from stock-outs, last 12 months"),
            ]
        else:
            tiles.append(Kpi("Stock-out days", "n/a", None, "not available: needs stock on hand"))
        shrink = self.kpi_values.get("shrinkage_value_12m")
        if ctx.has_counts and ctx.has_unit_costs:
            tiles.append(Kpi("Shrinkage found by counts", th.money_short(abs(shrink or 0.0)), None,
                             "at cost, last 12 months"))
        v = self.kpi_values
        if v.get("forecast_mase") is not None:
            naive = v.get("seasonal_naive_mase")
            change, tone = None, ""
            if naive:
                gain = 1 - v["forecast_mase"] / naive
                change = f"{th.pct(abs(gain), 0)} {'better' if gain >= 0 else 'worse'} than seasonal naive"
                tone = "good" if gain >= 0 else "bad"
            tiles.append(Kpi("Forecast error (MASE)", th.number(v["forecast_mase"], 2), change,
                             "backtest, lower is better", tone))
        if v.get("recommended_inventory_change") is not None:
            net = v["recommended_inventory_change"]
            tiles.append(Kpi("Inventory change, recommended policy",
                             ("+" if net > 0 else "") + th.money_short(net), None,
                             "expected average at cost vs classical"))
        if v.get("proposals_awaiting") is not None:
            tiles.append(Kpi("Proposals awaiting approval", th.money_short(v.get("proposals_awaiting_value")), None,
                             _plural(int(v["proposals_awaiting"]), "proposal") + " at cost"))
        if v.get("backtest_inventory_reduction_pct") is not None:
            red = v["backtest_inventory_reduction_pct"]
            tiles.append(Kpi("Backtest: inventory vs classical", f"{-red:+,.1f}%", None,
                             "same fill rate, replayed history", "good" if red > 0 else "bad"))
        return tiles


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
                block.spec = charts.clip_spec_text(block.spec.to_dict())
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


def _preview(ctx: q.Context, tiles: list[Kpi], sections: list[Section], html_path: Path, html_bytes: int,
             n_charts: int, elapsed: float) -> str:
    icon = {"ok": "✅", "partial": "🟡", "pending": "⏳", "not_available": "⛔", "error": "❌"}
    lines = [
        f"**Inventory report** as of {ctx.as_of_date:%d %b %Y} (history from {ctx.history_start:%d %b %Y}): "
        f"{_plural(ctx.products, 'product')}, {_plural(ctx.locations, 'location')}",
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
        ctx = q.context(con)
        builder = _Builder(con, ctx)
        sections: list[Section] = []
        for key, title_text, make in (
            ("turnover", "Inventory turnover and days inventory outstanding", builder.turnover),
            ("value", "Inventory value at cost and GMROI", builder.value),
            ("days-of-supply", "Days of supply", builder.days_of_supply),
            ("service", "Service: stock-outs, fill rate and lost sales", builder.service_section),
            ("forecast-quality", "Forecast quality", builder.forecast_quality),
            ("recommendations", "Recommendations and purchase proposals", builder.recommendations),
            ("policy-backtest", "Policy backtest: stockturn against the classical policy", builder.policy_backtest),
            ("ghost-stock", "Ghost stock and count discrepancies", builder.ghost_stock),
            ("data-quality", "Data quality: what was loaded", builder.data_quality),
        ):
            ts = time.perf_counter()
            try:
                sections.append(make())
            except Exception as exc:
                if strict:
                    raise
                log.exception("report section %s failed", key)
                sections.append(Section(key, title_text, "error",
                                        [NoteBlock(f"This section could not be built: {exc}", "error")],
                                        detail=str(exc)))
            timings[f"section:{key}"] = time.perf_counter() - ts
        tiles = builder.kpi_tiles()

        chart_files = _export(sections, out_dir / CHART_DIR, tuple(formats), locale, timings)

        ts = time.perf_counter()
        runtime = vega_runtime() if chart_files else ""
        timings["runtime_bundle"] = time.perf_counter() - ts
        header = [
            f"As of {ctx.as_of_date:%d %B %Y}. History from {ctx.history_start:%d %B %Y}. "
            f"{_plural(ctx.products, 'product')}, {_plural(ctx.locations, 'location')} "
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
        kpis=dict(builder.kpi_values),
        timings=timings,
    )
