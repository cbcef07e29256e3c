"""The SQL of the report sections fed by the planning run: the ml.* write-back (forecast backtest, proposals,
exceptions, the policy backtest of `stockturn backtest`) and the dbt models built on it
(marts.fct_days_of_supply_forecast, marts.rpt_reorder_recommendations).

Like :mod:`reports.queries`, every query aggregates inside DuckDB and returns at most a few hundred rows; lists of
items are cut to their top rows by money. Column names follow the dbt documentation of the planning marts
(dbt_project/models/marts/planning/_planning__models.yml) and the ml.forecasting / ml.policy module docstrings.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

import duckdb
import polars as pl

from reports.queries import DOS_BANDS, Context, frame

DOS_FORECAST = "fct_days_of_supply_forecast"
RECOMMENDATIONS = "rpt_reorder_recommendations"
POLICY_BACKTEST = "policy_backtest"

#: Forward days-of-supply bands (index = band_order in :func:`forward_dos_bands`): the backward-looking bands'
#: day ranges, the last one for product-locations without forecast demand.
FORWARD_DOS_BANDS = (*DOS_BANDS[:-1], "No forecast demand")
#: supply_status of marts.fct_days_of_supply_forecast -> words, in the order the charts stack them.
SUPPLY_STATUS = {
    "out_of_stock": "Out of stock",
    "stockout_before_receipt": "Runs out before an order can arrive",
    "in_stock": "In stock",
    "excess": "Over 180 days of forecast demand",
    "no_forecast_demand": "Stock but no forecast demand",
}
EXCEPTION_TYPES = {
    "stockout_risk": "Stock-out risk",
    "excess_stock": "Excess stock",
    "forecast_vs_actual": "Forecast far from recent sales",
    "policy_change_vs_classical": "Big change vs classical policy",
    "policy_change_vs_previous": "Big change vs last run",
    "ghost_stock": "Suspected ghost stock",
    "position_unavailable": "Stock position unknown",
    "override_issue": "Planner override not applied",
    "safety_stock_guard": "Safety stock capped to the evidence",
    "reorder_point_above_references": "Reorder point above both references",
    "no_forecast": "Product with no forecast",
}
PROPOSAL_TYPES = {"purchase_order": "Purchase order", "transfer": "Transfer"}
SEGMENTS = {
    None: "All series",
    "smooth": "Smooth",
    "erratic": "Erratic",
    "intermittent": "Intermittent",
    "lumpy": "Lumpy",
    "zero": "No recent demand",
}
MODELS = {
    "selected": "Selected model",
    "seasonal_naive": "Seasonal naive",
    "moving_average": "Moving average",
    "croston_sba": "Croston (SBA)",
    "tsb": "TSB",
    "yearly_profile": "Yearly profile (category season x recent level)",
    "lightgbm": "LightGBM",
    "level_guard": "Level guard (robust local method)",
}
#: Categories shown one by one in the recommendation charts; the rest are summed into "Other".
TOP_CATEGORIES = 12


def label(mapping: dict, value: str | None) -> str:
    """Words for a code, the code itself (made readable) when the mapping does not know it."""
    if value in mapping:
        return mapping[value]
    return "" if value is None else str(value).replace("_", " ").capitalize()


def columns(con: duckdb.DuckDBPyConnection, schema: str, table: str) -> list[str]:
    return [c for (c,) in con.execute(
        "select column_name from information_schema.columns where table_schema = ? and table_name = ? "
        "order by ordinal_position", [schema, table]).fetchall()]


# ------------------------------------------------------------------------------------------------ the run


@dataclass(frozen=True)
class PlanRun:
    """Which planning run the ml tables hold, and whether the dbt models on it are from the same run."""

    as_of_date: date | None
    run_id: str | None
    model_version: str | None
    #: marts built from another planning run than the ml tables (dbt not re-run after the last `stockturn run`)
    stale_marts: tuple[str, ...] = ()
    #: the latest planning run, when its plan was rejected by a blocking check (never written): (run id, as-of
    #: date, failed checks); the ml tables still hold the previous plan
    rejected: tuple[str, date | None, str] | None = None


def plan_run(con: duckdb.DuckDBPyConnection, ctx: Context) -> PlanRun:
    source = next((t for t in ("inventory_policy", "demand_forecast", "forecast_backtest") if t in ctx.ml_tables),
                  None)
    if source is None:
        return PlanRun(None, None, None)
    cols = set(columns(con, "ml", source))
    select = ", ".join(f"any_value({c})" if c in cols else "null" for c in ("as_of_date", "run_id", "model_version"))
    as_of, run_id, version = con.execute(f"select {select} from ml.{source}").fetchall()[0]
    stale = []
    if RECOMMENDATIONS in ctx.marts and "inventory_policy" in ctx.ml_tables and run_id is not None:
        (mart_run,) = con.execute(f"select any_value(run_id) from marts.{RECOMMENDATIONS}").fetchall()[0]
        if mart_run is not None and mart_run != run_id:
            stale.append(RECOMMENDATIONS)
    if DOS_FORECAST in ctx.marts and as_of is not None:
        (mart_as_of,) = con.execute(f"select max(as_of_date) from marts.{DOS_FORECAST}").fetchall()[0]
        if mart_as_of is not None and mart_as_of != as_of:
            stale.append(DOS_FORECAST)
    return PlanRun(as_of, run_id, version, tuple(stale), rejected_plan(con))


def rejected_plan(con: duckdb.DuckDBPyConnection) -> tuple[str, date | None, str] | None:
    """(run id, as-of date, failed checks) of the latest planning run when a blocking check kept its plan from
    being written (audit.plan_check_results); None when the latest run was written or there is no record."""
    ((exists,),) = con.execute("select count(*) from information_schema.tables "
                               "where table_schema = 'audit' and table_name = 'plan_check_results'").fetchall()
    if not exists:
        return None
    rows = con.execute("""
        with latest as (
            select run_id, as_of_date, plan_written, checked_at
            from audit.plan_check_results
            order by checked_at desc
            limit 1
        )
        select latest.run_id, latest.as_of_date, string_agg(r.check_name, ', ' order by r.check_name)
        from latest
        inner join audit.plan_check_results as r
            on r.run_id = latest.run_id and r.checked_at = latest.checked_at
        where not latest.plan_written and r.blocking and not r.passed
        group by all
        """).fetchall()
    return (rows[0][0], rows[0][1], rows[0][2]) if rows else None


# ------------------------------------------------------------------------------------------------ forward DOS

_PRODUCT_LOCATION_NAMES = """
    left join marts.dim_product p on p.product_id = d.product_id
    left join marts.dim_location l on l.location_id = d.location_id
"""


def forward_dos_bands(con: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    """Product-locations with a known stock position by forward days-of-supply band and supply status: count,
    units and value on hand at cost, and the value above the recommended order-up-to level."""
    df = frame(
        con,
        f"""
        with d as (
            select
                case
                    when supply_status = 'out_of_stock' then 0
                    when supply_status = 'no_forecast_demand' or forward_days_of_supply is null then 9
                    when forward_days_of_supply < 7 then 1
                    when forward_days_of_supply < 14 then 2
                    when forward_days_of_supply < 28 then 3
                    when forward_days_of_supply < 56 then 4
                    when forward_days_of_supply < 91 then 5
                    when forward_days_of_supply < 182 then 6
                    when forward_days_of_supply < 365 then 7
                    else 8
                end as band_order,
                supply_status, on_hand_units, on_hand_value, excess_value_at_cost
            from marts.{DOS_FORECAST}
            where supply_status <> 'unavailable'
        )
        select
            band_order, supply_status,
            count(*) as product_locations,
            sum(greatest(on_hand_units, 0)) as on_hand_units,
            coalesce(sum(on_hand_value), 0) as on_hand_value,
            coalesce(sum(excess_value_at_cost), 0) as excess_value
        from d
        group by all
        order by band_order, supply_status
        """,
    )
    return df.with_columns(
        pl.col("band_order").map_elements(lambda i: FORWARD_DOS_BANDS[i], return_dtype=pl.String).alias("band"),
        pl.col("supply_status").map_elements(lambda s: label(SUPPLY_STATUS, s), return_dtype=pl.String)
        .alias("status"),
    )


def forward_dos_summary(con: duckdb.DuckDBPyConnection) -> dict:
    return frame(
        con,
        f"""
        select
            max(as_of_date) as as_of_date,
            count(*) as product_locations,
            count(*) filter (where supply_status = 'unavailable') as unavailable,
            count(*) filter (where supply_status = 'out_of_stock') as out_of_stock,
            count(*) filter (where supply_status = 'stockout_before_receipt') as stockout_before_receipt,
            count(*) filter (where supply_status = 'excess') as excess,
            count(*) filter (where supply_status = 'no_forecast_demand') as no_forecast_demand,
            coalesce(sum(on_hand_value), 0) as on_hand_value,
            coalesce(sum(excess_value_at_cost), 0) as excess_value_at_cost,
            count(*) filter (where excess_value_at_cost > 0) as excess_items,
            coalesce(sum(on_hand_value) filter (where supply_status = 'excess'), 0) as excess_status_value,
            coalesce(sum(shortfall_units * unit_cost), 0) as shortfall_value
        from marts.{DOS_FORECAST}
        """,
    ).row(0, named=True)


def forward_overstock(con: duckdb.DuckDBPyConnection, limit: int = 10) -> pl.DataFrame:
    """Product-locations holding the most value above the recommended order-up-to level."""
    return frame(
        con,
        f"""
        select
            d.product_id, p.product_name, p.category, d.location_id, l.location_name,
            d.on_hand_units, d.on_hand_value, d.forecast_daily_units, d.forward_days_of_supply,
            d.target_days_of_supply, d.order_up_to_level, d.excess_units, d.excess_value_at_cost, d.supply_status
        from marts.{DOS_FORECAST} d
        {_PRODUCT_LOCATION_NAMES}
        where d.excess_value_at_cost > 0
        order by d.excess_value_at_cost desc, d.product_id, d.location_id
        limit ?
        """,
        [limit],
    )


def forward_understock(con: duckdb.DuckDBPyConnection, ctx: Context, limit: int = 10) -> pl.DataFrame:
    """Product-locations out of stock or running out before an order placed today can arrive, by the forecast
    demand at cost they are expected to miss per day; with the order proposed for them, if any."""
    proposal = "null::varchar as proposal_type, null::double as proposed_quantity, null::varchar as proposal_status"
    join = ""
    if RECOMMENDATIONS in ctx.marts:
        proposal = "r.proposal_type, r.proposed_quantity, r.proposal_status"
        join = (f"left join marts.{RECOMMENDATIONS} r "
                "on r.product_id = d.product_id and r.location_id = d.location_id")
    return frame(
        con,
        f"""
        select
            d.product_id, p.product_name, p.category, d.location_id, l.location_name, d.supply_status,
            d.on_hand_units, d.inventory_position_units, d.forecast_daily_units,
            d.forecast_daily_units * d.unit_cost as daily_demand_at_cost,
            d.forward_days_of_supply, d.projected_stockout_date, d.lead_time_days, d.reorder_point,
            d.shortfall_units, {proposal}
        from marts.{DOS_FORECAST} d
        {_PRODUCT_LOCATION_NAMES}
        {join}
        where d.supply_status in ('out_of_stock', 'stockout_before_receipt')
        order by daily_demand_at_cost desc nulls last, d.forecast_daily_units desc nulls last, d.product_id,
                 d.location_id
        limit ?
        """,
        [limit],
    )


# ------------------------------------------------------------------------------------------------ forecast quality

#: accuracy metrics of the backtest, in display order
ACCURACY_METRICS = ("mase", "rmsse", "wape")


def backtest_split(con: duckdb.DuckDBPyConnection) -> str | None:
    """'holdout' when the backtest has held-out origins, else 'selection' (short history), None when empty."""
    splits = {s for (s,) in con.execute("select distinct split from ml.forecast_backtest").fetchall()}
    return "holdout" if "holdout" in splits else "selection" if "selection" in splits else None


def _pooled(split: str, where: str) -> str:
    """Metric values pooled over the split's origins: the row with origin null when the backtest wrote one, else
    the mean over origins (sums for counts)."""
    return f"""
        select
            level, segment, model, metric,
            coalesce(
                any_value(value) filter (where origin is null),
                case when metric in ('n_series', 'ltd_windows') then sum(value) filter (where origin is not null)
                     else avg(value) filter (where origin is not null) end
            ) as value,
            count(distinct origin) as origins
        from ml.forecast_backtest
        where split = '{split}' and level in ('overall', 'segment') and {where}
        group by level, segment, model, metric
    """


def backtest_accuracy(con: duckdb.DuckDBPyConnection, split: str) -> pl.DataFrame:
    """Selected model vs seasonal naive, overall and per segment: MASE, RMSSE, WAPE, bias and the series
    (x origins) scored, with the candidate model chosen for each segment."""
    df = frame(
        con,
        f"""
        with m as ({_pooled(split, "model in ('selected', 'seasonal_naive') and metric in "
                             "('mase', 'rmsse', 'wape', 'bias', 'n_series')")}),
        chosen as (
            select segment, string_agg(distinct model, ', ' order by model) as chosen_model
            from ml.forecast_backtest
            where level = 'segment' and is_selected_model and model <> 'selected'
            group by segment
        ),
        origins as (
            select count(distinct origin) as origins from ml.forecast_backtest
            where split = '{split}' and origin is not null
        )
        select
            m.level, m.segment, m.model,
            any_value(value) filter (where metric = 'mase') as mase,
            any_value(value) filter (where metric = 'rmsse') as rmsse,
            any_value(value) filter (where metric = 'wape') as wape,
            any_value(value) filter (where metric = 'bias') as bias,
            any_value(value) filter (where metric = 'n_series') as n_series,
            any_value(c.chosen_model) as chosen_model,
            any_value(o.origins) as origins
        from m
        left join chosen c on c.segment is not distinct from m.segment
        cross join origins o
        group by m.level, m.segment, m.model
        order by m.level <> 'overall', m.segment, m.model
        """,
    )
    return df.with_columns(
        pl.col("segment").map_elements(lambda s: label(SEGMENTS, s), return_dtype=pl.String,
                                       skip_nulls=False).alias("segment_label"),
        pl.col("model").map_elements(lambda s: label(MODELS, s), return_dtype=pl.String).alias("model_label"),
    )


def signal_gating(con: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    """The external-signal gating decisions (``ml.forecasting.signals``): one row per signal group and category
    with the backtest gain, its interval and whether the forecast uses it; empty without signals."""
    return frame(
        con,
        """
        select
            model as signal_group,
            segment as category,
            bool_or(is_selected_model) as kept,
            any_value(value) filter (where metric = 'gain') as gain,
            any_value(value) filter (where metric = 'gain_ci_low') as gain_ci_low,
            any_value(value) filter (where metric = 'gain_ci_high') as gain_ci_high,
            any_value(value) filter (where metric = 'n_blocks') as n_blocks
        from ml.forecast_backtest
        where level = 'signal_gating'
        group by model, segment
        order by model, segment
        """,
    ).with_columns(
        pl.col("signal_group").str.replace(r"^signal:", "signal ").str.replace(r"^event:", "event ")
        .alias("signal_label"),
    )


_NOMINAL = re.compile(r"^(?:coverage_(\d+)|ltd_coverage_p(\d+))$")


def backtest_coverage(con: duckdb.DuckDBPyConnection, split: str) -> pl.DataFrame:
    """Achieved vs nominal coverage of the selected model: the 80%/95% per-period forecast intervals and the
    lead-time-demand quantiles, overall and per segment."""
    df = frame(
        con,
        f"""
        with m as ({_pooled(split, "model = 'selected' and (metric like 'coverage_%' "
                             "or metric like 'ltd_coverage_p%' or metric in ('ltd_windows', 'n_series'))")})
        select
            c.level, c.segment, c.metric, c.value as achieved,
            any_value(w.value) filter (where w.metric = 'ltd_windows') as ltd_windows,
            any_value(w.value) filter (where w.metric = 'n_series') as n_series
        from m c
        left join m w on w.segment is not distinct from c.segment and w.level = c.level
        where c.metric not in ('ltd_windows', 'n_series')
        group by c.level, c.segment, c.metric, c.value
        order by c.level <> 'overall', c.segment, c.metric
        """,
    )
    nominal, kind = [], []
    for metric in df["metric"].to_list():
        match = _NOMINAL.match(metric)
        if match is None:
            nominal.append(None)
            kind.append(None)
            continue
        interval, quantile = match.groups()
        nominal.append(int(interval or quantile) / 100)
        kind.append("Forecast interval, per day" if interval else "Lead-time demand quantile")
    return df.with_columns(
        pl.Series("nominal", nominal, dtype=pl.Float64), pl.Series("kind", kind, dtype=pl.String),
        pl.col("segment").map_elements(lambda s: label(SEGMENTS, s), return_dtype=pl.String,
                                       skip_nulls=False).alias("segment_label"),
    ).filter(pl.col("nominal").is_not_null() & pl.col("achieved").is_not_null())


def coverage_tolerance(nominal: float) -> float:
    """How far achieved coverage may sit from nominal and still count as on target: a fifth of the nominal miss
    rate (1 - nominal), at least one percentage point (80%: ±4 points, 95% and above: ±1 point)."""
    return max(0.01, 0.2 * (1.0 - nominal))


# ------------------------------------------------------------------------------------------------ recommendations


def recommendation_by_category(con: duckdb.DuckDBPyConnection, top: int = TOP_CATEGORIES) -> pl.DataFrame:
    """Per category (top ``top`` by expected inventory value, the rest "Other") and for all categories
    (``is_total``): classical vs recommended safety stock and expected average inventory at cost, the value the
    recommendation frees and adds, expected fill rates and expected turnover.

    Expected turnover here is on a COGS basis, comparable with the turnover of the last 12 months: forecast
    annual demand at selling locations at cost ÷ expected average inventory at cost at all locations (stores and
    distribution centres), so a distribution centre's orders, which are the stores' demand again, are not
    counted twice.
    """
    return frame(
        con,
        f"""
        with r as (
            select
                r.*, coalesce(r.category, '(no category)') as cat,
                coalesce(l.is_selling_location, r.location_type = 'store', true) as selling
            from marts.{RECOMMENDATIONS} r
            left join marts.dim_location l using (location_id)
        ),
        ranked as (
            select cat, row_number() over (
                order by sum(coalesce(classical_expected_avg_inventory_value, 0)
                             + coalesce(recommended_expected_avg_inventory_value, 0)) desc, cat) as rnk
            from r group by cat
        ),
        g as (
            select
                case when k.rnk <= ? then r.cat else 'Other' end as category,
                k.rnk, r.*
            from r join ranked k using (cat)
        )
        select
            grouping(category) = 1 as is_total,
            coalesce(category, 'All categories') as category,
            min(rnk) as category_rank,
            count(*) as product_locations,
            sum(classical_safety_stock * unit_cost) as classical_safety_stock_value,
            sum(recommended_safety_stock * unit_cost) as recommended_safety_stock_value,
            sum(classical_expected_avg_inventory_value) as classical_value,
            sum(recommended_expected_avg_inventory_value) as recommended_value,
            coalesce(-sum(inventory_value_change) filter (where inventory_value_change < 0), 0) as freed_value,
            coalesce(sum(inventory_value_change) filter (where inventory_value_change > 0), 0) as added_value,
            coalesce(sum(inventory_value_change), 0) as net_change,
            count(*) filter (where inventory_value_change < 0) as items_freeing,
            count(*) filter (where inventory_value_change > 0) as items_adding,
            sum(daily_demand_forecast * 365 * unit_cost) filter (where selling) as annual_demand_at_cost,
            sum(daily_demand_forecast * 365 * unit_cost) filter (where selling)
                / nullif(sum(classical_expected_avg_inventory_value), 0) as classical_turnover,
            sum(daily_demand_forecast * 365 * unit_cost) filter (where selling)
                / nullif(sum(recommended_expected_avg_inventory_value), 0) as recommended_turnover,
            sum(classical_expected_fill_rate * daily_demand_forecast)
                / nullif(sum(daily_demand_forecast) filter (where classical_expected_fill_rate is not null), 0)
                as classical_fill_rate,
            sum(recommended_expected_fill_rate * daily_demand_forecast)
                / nullif(sum(daily_demand_forecast) filter (where recommended_expected_fill_rate is not null), 0)
                as recommended_fill_rate,
            avg(classical_expected_fill_rate) as classical_fill_rate_item_avg,
            avg(recommended_expected_fill_rate) as recommended_fill_rate_item_avg
        from g
        group by grouping sets ((category), ())
        order by is_total desc, category_rank
        """,
        [top],
    )


def recommendation_changes(con: duckdb.DuckDBPyConnection, limit: int = 10) -> pl.DataFrame:
    """The product-locations whose expected average inventory changes most (either way)."""
    return frame(
        con,
        f"""
        select
            product_id, product_name, category, location_id, location_name, abc_class, xyz_class,
            service_metric, service_target, daily_demand_forecast, lead_time_days,
            classical_safety_stock, recommended_safety_stock,
            classical_reorder_point, recommended_reorder_point,
            classical_order_quantity, recommended_order_quantity,
            classical_expected_avg_inventory_value, recommended_expected_avg_inventory_value,
            inventory_value_change, inventory_value_effect,
            classical_expected_fill_rate, recommended_expected_fill_rate, overridden_fields
        from marts.{RECOMMENDATIONS}
        where inventory_value_change <> 0
        order by abs(inventory_value_change) desc, product_id, location_id
        limit ?
        """,
        [limit],
    )


def proposal_totals(con: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    """Proposals by status and type: how many, units and value at cost."""
    return frame(
        con,
        """
        select coalesce(status, 'proposed') as status, proposal_type, count(*) as proposals,
               sum(quantity) as units, coalesce(sum(value), 0) as value
        from ml.purchase_proposals
        group by all
        order by status, proposal_type
        """,
    )


def proposals_awaiting(con: duckdb.DuckDBPyConnection, ctx: Context, limit: int = 15) -> pl.DataFrame:
    """Proposals still awaiting a planner's decision (status 'proposed'), largest value first."""
    cols = set(columns(con, "ml", "purchase_proposals"))
    supplier_name = "s.supplier_name" if "dim_supplier" in ctx.marts else "null::varchar"
    supplier_join = ("left join marts.dim_supplier s on s.supplier_id = d.supplier_id"
                     if "dim_supplier" in ctx.marts else "")
    optional = ", ".join(f"d.{c}" if c in cols else f"null as {c}" for c in ("days_covered", "abc_class"))
    approval = "proposal_approval" in ctx.ml_tables
    return frame(
        con,
        f"""
        select
            d.proposal_id, d.proposal_type, d.supplier_id, {supplier_name} as supplier_name,
            d.source_location_id, sl.location_name as source_location_name,
            d.product_id, p.product_name, p.category, d.location_id, l.location_name,
            d.quantity, d.unit_cost, d.value, d.order_date, d.expected_arrival_date, {optional}, d.reason,
            {"a.waiting_reason" if approval else "null::varchar"} as waiting_reason
        from ml.purchase_proposals d
        {_PRODUCT_LOCATION_NAMES}
        left join marts.dim_location sl on sl.location_id = d.source_location_id
        {"left join ml.proposal_approval a on a.proposal_id = d.proposal_id" if approval else ""}
        {supplier_join}
        where coalesce(d.status, 'proposed') = 'proposed'
        order by d.value desc nulls last, d.proposal_id
        limit ?
        """,
        [limit],
    )


def exceptions_by_type(con: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    df = frame(
        con,
        """
        select exception_type, count(*) as exceptions, coalesce(sum(money_at_stake), 0) as money_at_stake,
               any_value(money_basis) as money_basis
        from ml.exceptions
        group by all
        order by money_at_stake desc, exception_type
        """,
    ) if "money_basis" in columns(con, "ml", "exceptions") else frame(
        con,
        """
        select exception_type, count(*) as exceptions, coalesce(sum(money_at_stake), 0) as money_at_stake,
               null::varchar as money_basis
        from ml.exceptions
        group by all
        order by money_at_stake desc, exception_type
        """,
    )
    return df.with_columns(pl.col("exception_type").map_elements(lambda s: label(EXCEPTION_TYPES, s),
                                                                  return_dtype=pl.String).alias("type"))


def top_exceptions(con: duckdb.DuckDBPyConnection, limit: int = 10) -> pl.DataFrame:
    df = frame(
        con,
        f"""
        select
            d.rank, d.exception_type, d.product_id, p.product_name, p.category, d.location_id, l.location_name,
            d.money_at_stake, d.reason
        from ml.exceptions d
        {_PRODUCT_LOCATION_NAMES}
        order by d.money_at_stake desc nulls last, d.rank nulls last, d.product_id, d.location_id
        limit ?
        """,
        [limit],
    )
    return df.with_columns(pl.col("exception_type").map_elements(lambda s: label(EXCEPTION_TYPES, s),
                                                                  return_dtype=pl.String).alias("type"))


# ------------------------------------------------------------------------------------------------ safeguards

#: ml.inventory_policy columns the safeguards block reads (written since the guards of ml.policy.guards, issue 8)
GUARD_COLUMNS = (
    "is_safety_stock_guarded", "is_above_references", "reorder_point_before_guard", "guard_reference_reorder_point",
    "guard_reference_safety_stock", "reorder_point", "unit_cost", "safety_stock_value", "classical_safety_stock_value",
)
GUARD_EXCEPTIONS = ("safety_stock_guard", "reorder_point_above_references")


def safeguards(con: duckdb.DuckDBPyConnection, ctx: Context) -> dict | None:
    """What each guard of the planning run caught (docs/plan-safeguards.md), aggregated in DuckDB; None when
    ml.inventory_policy predates the guards (it lacks one of :data:`GUARD_COLUMNS`).

    - ``safety_stock_guarded`` / ``safety_stock_removed_value``: items whose safety stock was capped to
      max(classical, empirical) safety stock, and the buffer removed at cost (reorder point before the guard minus
      the guarded one; a planner override of the reorder point does not change it, while the
      ``safety_stock_guard`` exception measures to the final, overridden reorder point);
    - ``above_references`` / ``above_references_excess_value``: reorder points kept although above ``guard_factor``
      x the larger reference, and their excess over that reference at cost;
    - ``plan_safety_stock_value``, ``classical_safety_stock_value``, ``evidence_safety_stock_value``: the plan's
      total safety stock at cost, the classical total (as the ``safety_stock_vs_classical`` asset check sums them)
      and sum(guard_reference_safety_stock x unit cost), the evidence the guard caps to;
    - ``level_guard_series`` / ``forecast_series``: distinct product-locations of ml.demand_forecast whose model
      is 'level_guard', of all (None without that table or its model column);
    - ``no_forecast``: ``no_forecast`` exceptions (None without ml.exceptions); ``guard_factor``: the threshold the
      guard exceptions carry (None when none was raised).
    """
    cols = set(columns(con, "ml", "inventory_policy"))
    if not set(GUARD_COLUMNS) <= cols:
        return None
    guarded_r = ("coalesce(reorder_point_before_override, reorder_point)"
                 if "reorder_point_before_override" in cols else "reorder_point")
    out = frame(
        con,
        f"""
        select
            count(*) as product_locations,
            count(*) filter (where is_safety_stock_guarded) as safety_stock_guarded,
            coalesce(sum(greatest(reorder_point_before_guard - {guarded_r}, 0) * unit_cost)
                     filter (where is_safety_stock_guarded), 0)::double as safety_stock_removed_value,
            count(*) filter (where is_above_references) as above_references,
            coalesce(sum(greatest({guarded_r} - guard_reference_reorder_point, 0) * unit_cost)
                     filter (where is_above_references), 0)::double as above_references_excess_value,
            coalesce(sum(safety_stock_value), 0)::double as plan_safety_stock_value,
            coalesce(sum(classical_safety_stock_value), 0)::double as classical_safety_stock_value,
            coalesce(sum(guard_reference_safety_stock * unit_cost), 0)::double as evidence_safety_stock_value
        from ml.inventory_policy
        """,
    ).row(0, named=True)
    out |= {"level_guard_series": None, "forecast_series": None, "no_forecast": None, "guard_factor": None}
    if "demand_forecast" in ctx.ml_tables and {"model", "product_id", "location_id"} <= set(
            columns(con, "ml", "demand_forecast")):
        out |= frame(
            con,
            """
            select count(*) filter (where guarded) as level_guard_series, count(*) as forecast_series
            from (
                select product_id, location_id, bool_or(model = 'level_guard') as guarded
                from ml.demand_forecast
                group by all
            )
            """,
        ).row(0, named=True)
    if "exceptions" in ctx.ml_tables:
        guard_types = ", ".join(f"'{t}'" for t in GUARD_EXCEPTIONS)
        factor = (f"max(threshold) filter (where exception_type in ({guard_types}))::double"
                  if "threshold" in columns(con, "ml", "exceptions") else "null::double")
        out |= frame(
            con,
            f"""
            select count(*) filter (where exception_type = 'no_forecast') as no_forecast, {factor} as guard_factor
            from ml.exceptions
            """,
        ).row(0, named=True)
    return out


# ------------------------------------------------------------------------------------------------ policy backtest

POLICY_BACKTEST_COMPARISON = "policy_backtest_comparison"
#: The study every headline number comes from; other studies are scenarios.
MAIN_STUDY = "matched_service"
POLICIES = {
    "stockturn": "stockturn",
    "classical": "Classical, textbook settings",
    "classical_matched": "Classical, same fill rate",
    "perfect_foresight": "Perfect foresight (bound)",
}
#: Display order of the policies; unknown ones follow.
POLICY_ORDER = ("stockturn", "classical_matched", "classical", "perfect_foresight")
BACKTEST_MEASURES = (
    "fill_rate_volume", "fill_rate_item_avg", "cycle_service_level", "stockout_days", "lost_units",
    "avg_inventory_value", "turnover", "days_of_supply", "orders", "holding_cost", "ordering_cost", "shortage_cost",
    "total_cost", "bullwhip",
)
COMPARISON_COLUMNS = (
    "run_id", "as_of_date", "study", "target_fill_rate", "stockturn_fill_volume", "stockturn_fill_item_avg",
    "baseline_fill_volume", "baseline_fill_item_avg", "baseline_setting", "stockturn_inventory_value",
    "baseline_inventory_value", "inventory_reduction_pct", "reduction_ci_low_pct", "reduction_ci_high_pct",
    "n_bootstrap", "turnover_stockturn", "turnover_baseline",
)


def _pick(cols: set[str], wanted: tuple[str, ...], alias: str = "") -> str:
    """Select ``wanted`` columns, null for those the table lacks (the contract's columns, extra ones ignored)."""
    prefix = f"{alias}." if alias else ""
    return ", ".join(f"{prefix}{c}" if c in cols else f"null as {c}" for c in wanted)


def study_label(study: str | None) -> str:
    if study == MAIN_STUDY:
        return "Main study: same fill rate"
    return label({}, study)


def _no_nan(df: pl.DataFrame) -> pl.DataFrame:
    """NaN (a failed match, an empty group) as null: the report then says n/a."""
    return df.with_columns(pl.col(pl.Float32, pl.Float64).fill_nan(None))


def _policy_columns(df: pl.DataFrame) -> pl.DataFrame:
    order = {p: i for i, p in enumerate(POLICY_ORDER)}
    return _no_nan(df).with_columns(
        pl.col("policy").map_elements(lambda s: label(POLICIES, s), return_dtype=pl.String).alias("policy_label"),
        pl.col("policy").map_elements(lambda s: order.get(s, len(order)), return_dtype=pl.Int64)
        .alias("policy_rank"),
    )


def backtest_comparison(con: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    """ml.policy_backtest_comparison of the latest backtest (one row per study), the main study first.

    ``*_pct`` columns are percentages (18.5 = 18.5%; reduction > 0: stockturn holds less inventory than the
    baseline at the same fill rate); fill rates are fractions.
    """
    cols = set(columns(con, "ml", POLICY_BACKTEST_COMPARISON))
    latest = ("where as_of_date = (select max(as_of_date) from ml.policy_backtest_comparison)"
              if "as_of_date" in cols else "")
    order = "study <> 'matched_service', study" if "study" in cols else "1"
    df = frame(con, f"select {_pick(cols, COMPARISON_COLUMNS)} from ml.{POLICY_BACKTEST_COMPARISON} {latest} "
                    f"order by {order}")
    return _no_nan(df).with_columns(
        pl.col("study").cast(pl.String).map_elements(study_label, return_dtype=pl.String, skip_nulls=False)
        .alias("study_label"),
    )


def backtest_policies(con: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    """Overall result of every policy in every study of the latest backtest."""
    cols = set(columns(con, "ml", POLICY_BACKTEST))
    if not {"policy", "level"} <= cols:
        return pl.DataFrame()
    latest = ("and as_of_date = (select max(as_of_date) from ml.policy_backtest)" if "as_of_date" in cols else "")
    study = "study" if "study" in cols else f"'{MAIN_STUDY}'"
    measures = ", ".join(f"avg({c}) as {c}" if c in cols else f"null::double as {c}" for c in BACKTEST_MEASURES)
    df = frame(
        con,
        f"""
        select * from (
            select coalesce({study}, '{MAIN_STUDY}') as study_key, policy, {measures}
            from ml.{POLICY_BACKTEST}
            where level = 'overall' {latest}
            group by all
        )
        order by study_key <> '{MAIN_STUDY}', study_key, policy
        """,
    )
    return _policy_columns(df.rename({"study_key": "study"})).with_columns(
        pl.col("study").map_elements(study_label, return_dtype=pl.String).alias("study_label"),
    ).sort(pl.col("study") != MAIN_STUDY, "study", "policy_rank")


def backtest_by_echelon(con: duckdb.DuckDBPyConnection, study: str = MAIN_STUDY) -> pl.DataFrame:
    """Network backtests: per echelon ('store', 'dc') and policy of one study: fill, inventory and bullwhip (empty
    for single-echelon replays)."""
    cols = set(columns(con, "ml", POLICY_BACKTEST))
    if not {"policy", "level", "location_id", "study"} <= cols:
        return pl.DataFrame()
    latest = ("and as_of_date = (select max(as_of_date) from ml.policy_backtest)" if "as_of_date" in cols else "")
    df = frame(
        con,
        f"""
        select location_id as echelon, policy, avg(fill_rate_volume) as fill_rate_volume,
               avg(fill_rate_item_avg) as fill_rate_item_avg, avg(avg_inventory_value) as avg_inventory_value,
               avg(bullwhip) as bullwhip
        from ml.{POLICY_BACKTEST}
        where level = 'echelon' and coalesce(study, ?) = ? {latest}
        group by all
        order by echelon desc, policy
        """,
        [MAIN_STUDY, study],
    )
    return _policy_columns(df) if df.height else df


def backtest_by_category(con: duckdb.DuckDBPyConnection, study: str = MAIN_STUDY) -> pl.DataFrame:
    """Per category and policy of one study: fill rates, stock-out days, lost units, inventory and turnover."""
    cols = set(columns(con, "ml", POLICY_BACKTEST))
    if not {"policy", "level", "category"} <= cols:
        return pl.DataFrame()
    latest = ("and as_of_date = (select max(as_of_date) from ml.policy_backtest)" if "as_of_date" in cols else "")
    where_study = "and coalesce(study, ?) = ?" if "study" in cols else "and ? = ?"
    wanted = ("fill_rate_volume", "fill_rate_item_avg", "stockout_days", "lost_units", "avg_inventory_value",
              "turnover")
    measures = ", ".join(f"avg({c}) as {c}" if c in cols else f"null::double as {c}" for c in wanted)
    df = frame(
        con,
        f"""
        select coalesce(category, '(no category)') as category, policy, {measures}
        from ml.{POLICY_BACKTEST}
        where level = 'category' {latest} {where_study}
        group by all
        order by category, policy
        """,
        [MAIN_STUDY, study],
    )
    return _policy_columns(df)


def approvals_by_author(con: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    """Approved proposals of the run by who approved them: ``rule:<name>`` or a planner (``approver``, ``kind``
    'rule' or 'planner', ``proposals``, ``value``)."""
    if "status_author" not in columns(con, "ml", "purchase_proposals"):
        return pl.DataFrame(schema={"approver": pl.String, "kind": pl.String, "proposals": pl.Int64,
                                    "value": pl.Float64})
    return frame(con, """
        select coalesce(status_author, '?') as approver,
               case when status_author like 'rule:%' then 'rule' else 'planner' end as kind,
               count(*) as proposals, sum(value) as value
        from ml.purchase_proposals where status = 'approved'
        group by all order by proposals desc, approver""")


def planner_decision_value(con: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    """``ml.planner_decision_value`` (what each planner override changed, replayed)."""
    return frame(con, "select * from ml.planner_decision_value")
