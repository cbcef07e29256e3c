"""A short, human-readable account of what a warehouse holds: mart sizes, data quality, headline KPIs."""

from __future__ import annotations

from pathlib import Path

import duckdb

MART_TABLES = (
    "dim_product",
    "dim_location",
    "dim_supplier",
    "dim_date",
    "fct_sales_daily",
    "fct_inventory_daily",
    "fct_purchase_order_lines",
    "fct_purchase_receipts",
    "fct_inventory_turnover_monthly",
    "fct_days_of_supply",
    "fct_inventory_discrepancies",
    "data_quality_reconciliation",
)


def _fmt_money(value: float | None) -> str:
    return "n/a" if value is None else f"{value:,.0f}"


def _fmt(value: float | None, digits: int = 1, suffix: str = "") -> str:
    return "n/a" if value is None else f"{value:,.{digits}f}{suffix}"


def warehouse_summary(warehouse: Path) -> str:
    """Describe the marts of ``warehouse`` in a few lines a person can read."""
    with duckdb.connect(str(warehouse), read_only=True) as con:
        existing = {
            name
            for (name,) in con.execute(
                "select table_name from information_schema.tables where table_schema = 'marts'"
            ).fetchall()
        }
        lines = [f"Warehouse: {Path(warehouse).resolve()}", "", "Marts (schema marts):"]
        for table in MART_TABLES:
            if table in existing:
                (rows,) = con.execute(f"select count(*) from marts.{table}").fetchone()
                lines.append(f"  {table:<34} {rows:>14,} rows")
            else:
                lines.append(f"  {table:<34} {'missing':>14}")

        if "data_quality_reconciliation" in existing:
            rows_in, kept, quarantined, unaccounted = con.execute(
                "select sum(rows_in), sum(rows_kept), sum(rows_quarantined), sum(rows_unaccounted) "
                "from marts.data_quality_reconciliation"
            ).fetchone()
            lines += [
                "",
                f"Data quality: {rows_in or 0:,} landed rows = {kept or 0:,} kept + {quarantined or 0:,} quarantined"
                f" ({unaccounted or 0:,} unaccounted)",
            ]
            for reason, count in con.execute(
                "select reject_reason, count(*) from marts.data_quality_rejections group by 1 order by 2 desc limit 8"
            ).fetchall():
                lines.append(f"  quarantined {reason:<30} {count:>10,}")
            if "data_quality_field_issues" in existing:  # kept rows whose value in one field was set to null
                for field_name, issue, count in con.execute(
                    "select field_name, issue, count(*) from marts.data_quality_field_issues "
                    "group by all order by 3 desc, 1, 2 limit 8"
                ).fetchall():
                    label = f"{field_name} {issue}"
                    lines.append(f"  kept, {label:<36} {count:>10,}  (value set to null, row kept)")
            absent = [
                f"{system}/{entity}"
                for system, entity in con.execute(
                    "select source_system, entity from marts.data_quality_reconciliation "
                    "where not is_present order by 1, 2"
                ).fetchall()
            ]
            if absent:
                lines.append(f"  optional sources not supplied: {', '.join(absent)}")
            ((audit,),) = con.execute("select count(*) from information_schema.tables "
                                      "where table_schema = 'audit' and table_name = 'dbt_test_results'").fetchall()
            if audit:  # value checks that warned in the last build (the build went on; rows kept for review)
                for name, model, rows, kept_in in con.execute(
                    "select test_name, model, failing_rows, failing_rows_relation from audit.dbt_test_results "
                    "where status = 'warn' order by failing_rows desc nulls last, 1"
                ).fetchall():
                    where = f", rows in {kept_in}" if kept_in else ""
                    lines.append(f"  check warned: {name} on {model} ({rows or 0:,} rows{where})")

        if "fct_inventory_turnover_monthly" in existing:
            row = con.execute(
                """
                with last_year as (
                    select *
                    from marts.fct_inventory_turnover_monthly
                    where grain = 'company'
                    order by month_start_date desc
                    limit 12
                )
                select
                    min(month_start_date),
                    max(month_start_date),
                    sum(cogs_amount),
                    sum(cogs_amount) / nullif(sum(avg_inventory_value * period_days) / sum(period_days), 0)
                        * 365.0 / sum(period_days),
                    sum(avg_inventory_value * period_days) / sum(period_days),
                    sum(gross_margin) / nullif(sum(avg_inventory_value * period_days) / sum(period_days), 0)
                        * 365.0 / sum(period_days),
                    sum(stockout_days) / nullif(sum(product_location_days), 0)
                from last_year
                """
            ).fetchone()
            first, last, cogs, turns, avg_value, gmroi, stockout_rate = row
            lines += [
                "",
                f"Company KPIs, {first:%b %Y} to {last:%b %Y}:",
                f"  COGS {_fmt_money(cogs)}, average inventory at cost {_fmt_money(avg_value)}",
                f"  inventory turnover {_fmt(turns)} per year, days inventory outstanding "
                f"{_fmt(365 / turns if turns else None, 0)}, GMROI {_fmt(gmroi, 2)}",
                f"  stock-out rate {_fmt(None if stockout_rate is None else 100 * stockout_rate, 1, '%')} "
                "of product-location days",
            ]
    return "\n".join(lines)
