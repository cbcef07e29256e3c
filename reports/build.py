"""Build the report: ``build_report(warehouse, out_dir)`` writes report.html plus every chart as PNG/SVG.

Reads the warehouse read-only (marts, and the ml write-back when present). Sections whose sources the warehouse
lacks say "not available: needs ..." instead of showing zeros; the sections fed by forecasts and policy wait for
`stockturn run`. Plain Python: the Dagster asset and the CLI are thin wrappers around :func:`build_report`.
"""

from __future__ import annotations

import logging
import os
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
        if empty:
            section.blocks.append(NoteBlock(
                "No turnover for " + ", ".join(sorted(empty)) + ": these locations have neither sales nor valued "
                "issues to other locations in the marts.", "info"))
            section.status = "partial"
            section.detail = "no turnover for " + ", ".join(sorted(empty))
        return section

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
        section.blocks.append(self._ml_placeholder(
            "Forward-looking days of supply", ("demand_forecast",),
            "Stock and stock on order against the demand forecast, with the products most over- and under-stocked"))
        if section.status == "ok":
            section.status = "partial"
            section.detail = "forward-looking view: " + self._ml_detail(("demand_forecast",))[0].lower() \
                + self._ml_detail(("demand_forecast",))[1:]
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
        return section

    # ---------------------------------------------------------------- ml placeholders
    def _ml_placeholder(self, what: str, needs: tuple[str, ...], describes: str) -> NoteBlock:
        present = [t for t in needs if t in self.ctx.ml_tables]
        if len(present) < len(needs):
            return NoteBlock(f"{what}: {STOCKTURN_RUN_HINT[0].lower()}{STOCKTURN_RUN_HINT[1:]}", "pending")
        return NoteBlock(
            f"{what}: the forecasting run is in the warehouse (ml.{', ml.'.join(present)}); {describes.lower()} "
            "will be charted here in the next version of the report.", "pending")

    def _ml_detail(self, needs: tuple[str, ...]) -> str:
        if all(t in self.ctx.ml_tables for t in needs):
            return "ml tables present; charts not built in this version"
        return STOCKTURN_RUN_HINT

    def forecast_quality(self) -> Section:
        section = Section("forecast-quality", "Forecast quality", "pending",
                          intro="Accuracy against the seasonal-naive baseline, bias and interval coverage, from "
                          "the backtest.")
        section.blocks.append(self._ml_placeholder("Forecast quality", ("forecast_backtest",),
                                                   "Accuracy, bias and interval coverage"))
        section.detail = self._ml_detail(("forecast_backtest",))
        return section

    def recommendations(self) -> Section:
        section = Section("recommendations", "Recommendations and purchase proposals", "pending",
                          intro="Current vs recommended safety stock and reorder points, the inventory value they "
                          "free or add, the expected turnover change, and the purchase proposals awaiting approval.")
        section.blocks.append(self._ml_placeholder("Recommendations", ("inventory_policy", "purchase_proposals"),
                                                   "Policy changes and proposals"))
        section.detail = self._ml_detail(("inventory_policy", "purchase_proposals"))
        return section

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
                block.spec = block.spec.to_dict()
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
