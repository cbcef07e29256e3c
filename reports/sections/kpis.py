"""The KPI tiles at the top of the page: the company's turnover, DIO, inventory and GMROI over the last 12 months
against the prior 12, and the headline numbers the sections hand on (service, shrinkage, forecast error, the
recommended policy, proposals, the policy backtest).
"""

from __future__ import annotations

import duckdb

from reports import theme as th
from reports.context import NEEDS_COGS, NEEDS_ON_HAND, NEEDS_UNIT_COSTS, Context, frame
from reports.html import Kpi
from reports.sections.common import Report, plural


def company_kpis(con: duckdb.DuckDBPyConnection, ctx: Context) -> dict[str, dict[str, float | None]]:
    """Company KPIs for the last and the prior 12 months: {"last": {...}, "prior": {...}}."""
    if ctx.missing_marts("fct_inventory_turnover_monthly"):
        return {"last": {}, "prior": {}}
    rows = frame(
        con,
        """
        with m as (
            select
                case when month_start_date >= ?::date then 'last' else 'prior' end as period,
                *
            from marts.fct_inventory_turnover_monthly
            where grain = 'company' and month_start_date >= ?::date
        ),
        s as (
            select
                period,
                sum(period_days)::integer as days,
                sum(net_sales_amount) as net_sales,
                sum(cogs_amount) as cogs,
                sum(gross_margin) as gross_margin,
                sum(avg_inventory_value * period_days) / nullif(sum(period_days), 0) as avg_inventory_value,
                sum(stockout_days)::double / nullif(sum(product_location_days), 0) as stockout_rate_all_locations
            from m
            group by period
        )
        select
            *,
            cogs / nullif(avg_inventory_value, 0) * 365.0 / days as turnover,
            case when cogs > 0 then avg_inventory_value / cogs * days end as dio,
            gross_margin / nullif(avg_inventory_value, 0) * 365.0 / days as gmroi
        from s
        """,
        [ctx.last12_start, ctx.prior12_start],
    )
    out: dict[str, dict[str, float | None]] = {"last": {}, "prior": {}}
    for row in rows.iter_rows(named=True):
        out[row.pop("period")] = row
    return out


# ------------------------------------------------------------------------------------------------ tiles


def kpi_tiles(report: Report) -> list[Kpi]:
    ctx, last, prior = report.ctx, report.kpis["last"], report.kpis["prior"]
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
    needs_value = ctx.missing(NEEDS_ON_HAND, NEEDS_UNIT_COSTS, NEEDS_COGS)
    hint = "not available: needs " + ", ".join(n.split(" (")[0] for n in needs_value) if needs_value else ""
    for key, label, fmt, kind, good_up in (
        ("turnover", "Inventory turnover", th.turns, "relative", True),
        ("dio", "Days inventory outstanding", th.days, "relative", False),
        ("avg_inventory_value", "Average inventory at cost", th.money_short, "relative", False),
        ("gmroi", "GMROI", lambda v: th.number(v, 2), "relative", True),
    ):
        value = last.get(key)
        report.kpi_values[key] = value
        change, tone = vs(value, prior.get(key), kind, good_up)
        tiles.append(Kpi(label, fmt(value), change,
                         (hint or "not available") if value is None else "last 12 months", tone))
    if report.service is not None and report.service.height:
        s = report.service
        days_total = s["product_location_days"].sum()
        rate = s["stockout_days"].sum() / days_total if days_total else None
        prior_rate = None
        if comparable and s["stockout_rate_prior"].null_count() < s.height:
            prior_rate = (s["stockout_rate_prior"] * s["product_location_days"]).sum() / days_total
        sold, lost = s["units_sold"].sum() or 0.0, s["lost_units"].sum() or 0.0
        fill = sold / (sold + lost) if sold + lost else None
        lost_value = s["lost_sales_value"].sum()
        report.kpi_values |= {"stockout_rate": rate, "fill_rate": fill, "lost_sales_value": lost_value}
        change, tone = vs(rate, prior_rate, "points", False)
        tiles += [
            Kpi("Stock-out days", th.pct(rate), change, "share of product-location days, selling locations",
                tone),
            Kpi("Fill rate (estimated)", th.pct(fill), None, "units sold ÷ estimated demand"),
            Kpi("Lost sales (estimated)", th.money_short(lost_value), None, "from stock-outs, last 12 months"),
        ]
    else:
        tiles.append(Kpi("Stock-out days", "n/a", None, "not available: needs stock on hand"))
    shrink = report.kpi_values.get("shrinkage_value_12m")
    if ctx.has_counts and ctx.has_unit_costs:
        tiles.append(Kpi("Shrinkage found by counts", th.money_short(abs(shrink or 0.0)), None,
                         "at cost, last 12 months"))
    v = report.kpi_values
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
                         plural(int(v["proposals_awaiting"]), "proposal") + " at cost"))
    if v.get("backtest_inventory_reduction_pct") is not None:
        red = v["backtest_inventory_reduction_pct"]
        tiles.append(Kpi("Backtest: inventory vs classical", f"{-red:+,.1f}%", None,
                         "same fill rate, replayed history", "good" if red > 0 else "bad"))
    return tiles
