"""The recommendations' exceptions for planners: the items the planning run flags for a person, by money at stake."""

from __future__ import annotations

import duckdb
import polars as pl

from reports import theme as th
from reports.context import PRODUCT_LOCATION_NAMES, columns, frame
from reports.html import Section, TableBlock
from reports.sections.common import Report, col, label, readable, with_names

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


# ------------------------------------------------------------------------------------------------ queries


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
        {PRODUCT_LOCATION_NAMES}
        order by d.money_at_stake desc nulls last, d.rank nulls last, d.product_id, d.location_id
        limit ?
        """,
        [limit],
    )
    return df.with_columns(pl.col("exception_type").map_elements(lambda s: label(EXCEPTION_TYPES, s),
                                                                  return_dtype=pl.String).alias("type"))


# ------------------------------------------------------------------------------------------------ block


def add_exceptions(report: Report, section: Section) -> None:
    """The largest exceptions by money at stake, and every type's count (nothing when the run raised none)."""
    by_type = exceptions_by_type(report.con)
    if by_type.height == 0:
        return
    top = top_exceptions(report.con, limit=10)
    section.blocks.append(TableBlock(
        "Exceptions for planners, by money at stake",
        [
            col("type", "Exception"), col("product", "Product"), col("location", "Location"),
            col("money_at_stake", "Money at stake", th.money, True), col("reason", "Why", readable),
        ],
        [with_names(r) for r in top.to_dicts()],
        note="All exceptions: " + "; ".join(
            f"{r['type'].lower()} {int(r['exceptions']):,} ({th.money(r['money_at_stake'])})"
            for r in by_type.to_dicts()) + ".",
    ))
