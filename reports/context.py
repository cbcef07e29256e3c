"""What the warehouse holds, read once per build: the context every report section reads.

:class:`Context` says which period the report covers and which sources and marts the warehouse had; :class:`PlanRun`
which planning run the ml.* write-back holds and whether the dbt models built on it are from the same run. Windows:
"last 12 months" are the 12 calendar months up to and including the as-of month (the last may be partial),
"prior 12 months" the 12 before them. Ratios over a window are ratios of sums (COGS over the window divided by
the day-weighted average inventory), the same way fct_inventory_turnover_monthly rolls products up.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

import duckdb
import polars as pl

NEEDS_ON_HAND = "stock on hand (inventory/stock_snapshots or inventory/cycle_counts)"
NEEDS_UNIT_COSTS = "unit costs (finance/standard_costs)"
NEEDS_COGS = "cost of goods sold (finance/cogs_ledger or finance/standard_costs)"
NEEDS_COUNTS = "cycle counts (inventory/cycle_counts)"
NEEDS_SALES = "sales lines (sales/sales_lines)"

#: Without these there is no report at all; every other mart only gates the sections that read it.
REQUIRED_MARTS = ("dim_date", "dim_product", "dim_location")


class WarehouseNotBuiltError(RuntimeError):
    """The warehouse lacks the marts the report reads."""


def frame(con: duckdb.DuckDBPyConnection, sql: str, params: list | None = None) -> pl.DataFrame:
    return con.sql(sql, params=params or None).pl()


def _exists(con: duckdb.DuckDBPyConnection, sql: str, table: str | None = None,
            tables: frozenset[str] = frozenset()) -> bool:
    if table is not None and table not in tables:
        return False
    return con.execute(f"select count(*) from ({sql} limit 1)").fetchall()[0][0] > 0


#: Joins the product and location names to the rows of ``d`` (a table with product_id and location_id).
PRODUCT_LOCATION_NAMES = """
    left join marts.dim_product p on p.product_id = d.product_id
    left join marts.dim_location l on l.location_id = d.location_id
"""


def columns(con: duckdb.DuckDBPyConnection, schema: str, table: str) -> list[str]:
    """The columns of ``schema.table`` in table order (the ml tables of older runs lack some)."""
    return [c for (c,) in con.execute(
        "select column_name from information_schema.columns where table_schema = ? and table_name = ? "
        "order by ordinal_position", [schema, table]).fetchall()]


# ------------------------------------------------------------------------------------------------ context


@dataclass(frozen=True)
class Context:
    """What the warehouse covers and which sources it had."""

    as_of_date: date
    history_start: date
    last12_start: date  # first month of the last-12-months window
    prior12_start: date
    products: int
    locations: int
    selling_locations: int
    has_sales: bool
    has_on_hand: bool
    has_unit_costs: bool
    has_cogs: bool
    has_stockout_flags: bool
    has_counts: bool
    ml_tables: frozenset[str] = field(default_factory=frozenset)
    marts: frozenset[str] = field(default_factory=frozenset)

    @property
    def has_valued_inventory(self) -> bool:
        return self.has_on_hand and self.has_unit_costs

    def missing_marts(self, *names: str) -> list[str]:
        """The marts among ``names`` the warehouse lacks (a build that stopped part-way)."""
        return [n for n in names if n not in self.marts]

    def missing(self, *needs: str) -> list[str]:
        """The sources among ``needs`` (the NEEDS_* phrases) this warehouse lacks."""
        have = {
            NEEDS_ON_HAND: self.has_on_hand,
            NEEDS_UNIT_COSTS: self.has_unit_costs,
            NEEDS_COGS: self.has_cogs,
            NEEDS_COUNTS: self.has_counts,
            NEEDS_SALES: self.has_sales,
        }
        return [need for need in needs if not have[need]]


def context(con: duckdb.DuckDBPyConnection) -> Context:
    marts = frozenset(
        name for (name,) in con.execute(
            "select table_name from information_schema.tables where table_schema = 'marts'"
        ).fetchall()
    )
    missing = [t for t in REQUIRED_MARTS if t not in marts]
    if missing:
        raise WarehouseNotBuiltError(
            f"the warehouse has no marts.{', marts.'.join(missing)}: run `stockturn build` (or `stockturn demo`) first"
        )
    ml_tables = frozenset(
        name for (name,) in con.execute(
            "select table_name from information_schema.tables where table_schema = 'ml'"
        ).fetchall()
    )
    as_of, start = con.execute(
        "select max(date_day) filter (where not is_future), min(date_day) from marts.dim_date"
    ).fetchall()[0]
    if as_of is None:
        raise WarehouseNotBuiltError("marts.dim_date is empty: the landing zone had no history")
    last12, prior12 = con.execute(
        "select cast(date_trunc('month', ?::date) - interval 11 month as date), "
        "cast(date_trunc('month', ?::date) - interval 23 month as date)",
        [as_of, as_of],
    ).fetchall()[0]
    products, locations, selling = con.execute(
        "select (select count(*) from marts.dim_product), (select count(*) from marts.dim_location), "
        "(select count(*) from marts.dim_location where is_selling_location)"
    ).fetchall()[0]
    return Context(
        as_of_date=as_of,
        history_start=start,
        last12_start=last12,
        prior12_start=prior12,
        products=products,
        locations=locations,
        selling_locations=selling,
        has_sales=_exists(con, "select 1 from marts.fct_sales_daily where units_sold > 0", "fct_sales_daily", marts),
        has_on_hand=_exists(con, "select 1 from marts.fct_inventory_daily where on_hand_basis <> 'unavailable'",
                            "fct_inventory_daily", marts),
        has_unit_costs=_exists(con, "select 1 from marts.fct_inventory_daily where valuation_basis = 'standard_cost'",
                               "fct_inventory_daily", marts),
        has_cogs=_exists(con, "select 1 from marts.fct_sales_daily where cogs_basis <> 'unavailable'",
                         "fct_sales_daily", marts),
        has_stockout_flags=_exists(con, "select 1 from marts.fct_sales_daily where is_stockout_day is not null",
                                   "fct_sales_daily", marts),
        has_counts=_exists(con, "select 1 from marts.fct_inventory_discrepancies", "fct_inventory_discrepancies",
                           marts),
        ml_tables=ml_tables,
        marts=marts,
    )


# ------------------------------------------------------------------------------------------------ the planning run

#: The dbt models built on the planning run (`stockturn run` builds them after the ml write-back).
DOS_FORECAST = "fct_days_of_supply_forecast"
RECOMMENDATIONS = "rpt_reorder_recommendations"


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

