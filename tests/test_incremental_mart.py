"""The incremental mart (issue 11, section 1): a chain of nightly builds leaves every staging, intermediate and
mart table row for row equal to a full rebuild of the same landing folder, and a night with new days rewrites only
those days. The chain: new data with a duplicate of an earlier line, a line of a product the master lists only
later and a product whose median line moves; a night with nothing new; a late sale, a corrected snapshot,
transfers corrected away and one requested earlier, an open purchase-order line cancelled and a receipt corrected,
a withdrawn ledger file, a withdrawn count that corrected nothing and a corrected count,
a corrected and a back-dated standard cost, a back-dated location price list, a corrected and a withdrawn
promotion."""

from __future__ import annotations

import json
import math
import shutil
from datetime import date, timedelta
from pathlib import Path

import duckdb
import pytest

from orchestration.warehouse_build import build_warehouse

pytestmark = pytest.mark.slow

LAST_QUARTER = "2024q1"
INCREMENTAL_MODEL = "int_stock_positions_daily"


def _tables(wh: Path) -> dict[str, list[tuple]]:
    """Every staging, intermediate and mart table or view, sorted (key columns come first in every model), without
    the build stamp (_built_at: when the build that wrote the row started, which differs by construction)."""
    out = {}
    with duckdb.connect(str(wh), read_only=True) as con:
        tables = con.execute(
            "select schema_name, table_name from duckdb_tables() "
            "where schema_name in ('staging', 'intermediate', 'marts') "
            "union all select schema_name, view_name from duckdb_views() "
            "where schema_name in ('staging', 'intermediate', 'marts') order by all").fetchall()
        for schema, table in tables:
            columns = [c for (c,) in con.execute(
                "select column_name from duckdb_columns() where schema_name = ? and table_name = ? "
                "order by column_index", [schema, table]).fetchall() if c != "_built_at"]
            select = ", ".join(f'"{c}"' for c in columns)
            out[f"{schema}.{table}"] = con.execute(f"select {select} from {schema}.{table} order by all").fetchall()
    return out


def _ran(build) -> set[str]:
    """The dbt nodes a ``build_warehouse`` ran."""
    return {r["unique_id"] for r in json.loads((build.dbt.target_path / "run_results.json").read_text())["results"]}


def _written_by_the_last_build(wh: Path, table: str) -> tuple[int, int]:
    """(rows the latest build wrote, rows in all) of an incremental table."""
    with duckdb.connect(str(wh), read_only=True) as con:
        return con.execute(
            f"select count(*) filter (where _built_at = (select max(_built_at) from {table})), count(*) "
            f"from {table}").fetchall()[0]


def _months_written(wh: Path, table: str, month: str = "cast(date_trunc('month', date_day) as date)") -> set:
    """The months (``month``: the table's month expression) of the rows the latest build wrote to an incremental
    table."""
    with duckdb.connect(str(wh), read_only=True) as con:
        return {m for (m,) in con.execute(
            f"select distinct {month} from {table} where _built_at = (select max(_built_at) from {table})"
        ).fetchall()}


def _same_rows(left: list[tuple], right: list[tuple]) -> int | None:
    """Index of the first row that differs, else None. Floats compare to 1e-9 relative: a running sum restarted
    from a stored close, or DuckDB's parallel sums, add in another order."""
    if len(left) != len(right):
        return min(len(left), len(right))
    for i, (a, b) in enumerate(zip(left, right, strict=True)):
        for x, y in zip(a, b, strict=True):
            if isinstance(x, float) and isinstance(y, float):
                if not math.isclose(x, y, rel_tol=1e-9, abs_tol=1e-9):
                    return i
            elif x != y:
                return i
    return None


def _replace_line(path: Path, old_start: str, new_line: str) -> str:
    lines = path.read_text(encoding="utf-8").splitlines()
    (i,) = [i for i, line in enumerate(lines) if line.startswith(old_start)][:1]
    old = lines[i]
    lines[i] = new_line
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return old


def test_a_chain_of_nightly_builds_equals_a_full_rebuild(small_landing: Path, tmp_path: Path) -> None:
    landing = tmp_path / "landing"
    shutil.copytree(small_landing, landing)
    held = tmp_path / "held"
    held.mkdir()
    parts = sorted(landing.rglob(f"*_{LAST_QUARTER}.csv"))
    assert len(parts) >= 3, "the demo writes quarterly part files"
    for p in parts:  # night 1: everything up to the last quarter
        shutil.move(p, held / p.name)
    products = landing / "master" / "products.csv"
    product_rows = products.read_text(encoding="utf-8").splitlines()
    with open(products, "a", encoding="utf-8") as f:  # a product listed before it sells (its scale moves below)
        f.write(",".join(["P99998", "Slow starter", *product_rows[1].split(",")[2:]]) + "\n")
    counts = landing / "inventory" / "cycle_counts.csv"
    count_rows = counts.read_text(encoding="utf-8").splitlines()
    confirming = [r for r in count_rows[1:] if r.split(",")[4] == r.split(",")[5]]
    assert confirming, "the demo's counts include counts that confirm the book"
    second_count = ",".join(["CC-SECOND", *confirming[0].split(",")[1:]])
    with open(counts, "a", encoding="utf-8") as f:  # a second count of the same day that confirms the book again
        f.write(second_count + "\n")
    wh = tmp_path / "nightly.duckdb"
    build_warehouse(landing, wh, progress=False)
    with duckdb.connect(str(wh), read_only=True) as con:
        night1_rows = con.execute(f"select count(*) from intermediate.{INCREMENTAL_MODEL}").fetchall()[0][0]

    # night 2: the last quarter arrives; the positions model writes the new days (and the product-locations
    # whose history it changes), not the whole history again
    for p in parts:
        shutil.move(held / p.name, p)
    # with a line repeating one of an earlier file (a duplicate, quarantined) and a line of a product the master
    # does not list yet (quarantined tonight, kept on night 3 when the master lists it)
    old_line = (landing / "sales" / "sales_lines_2023q3.csv").read_text(encoding="utf-8").splitlines()[2]
    new_sales = landing / "sales" / f"sales_lines_{LAST_QUARTER}.csv"
    unknown = new_sales.read_text(encoding="utf-8").splitlines()[1].split(",")
    unknown[0], unknown[3] = unknown[0] + "-NEWPRODUCT", "P99999"
    starter = [",".join([f"SCALE-{i}", "1", unknown[2], "P99998", unknown[4], qty, "1.00", "sale", ""])
               for i, qty in enumerate(["1", "1", "2000"])]  # 2000 > 1000 x the median 1: implausible tonight
    with open(new_sales, "a", encoding="utf-8") as f:
        f.write("\n".join([old_line, ",".join(unknown), *starter]) + "\n")
    # and a correction file that sorts before 2023q3 repeats one of its lines: the earlier file's line is now the
    # duplicate (kept on night 1, quarantined from night 2); the file carries a sale of its own (withdrawn on night 3)
    twice = (landing / "sales" / "sales_lines_2023q3.csv").read_text(encoding="utf-8").splitlines()
    own_sale = twice[4].split(",")
    own_sale[0] = own_sale[0] + "-CORRECTION"
    (landing / "sales" / "sales_lines_2023q3-correction.csv").write_text(
        "\n".join([twice[0], twice[3], ",".join(own_sale)]) + "\n", encoding="utf-8")
    build_warehouse(landing, wh, progress=False)
    with duckdb.connect(str(wh), read_only=True) as con:
        where = "where _source_file = 'sales/sales_lines_2023q3.csv' and _source_row = 3"
        assert con.execute(f"select reject_reason from staging.stg_sales__sales_lines__validated {where}"
                           ).fetchall() == [("duplicate_line",)]
        assert con.execute(f"select count(*) from staging.stg_sales__sales_lines {where}").fetchall() == [(0,)]
        assert con.execute("select reject_reason from staging.stg_sales__sales_lines__validated "
                           "where transaction_id = 'SCALE-2'").fetchall() == [("implausible_quantity",)]
    with duckdb.connect(str(wh), read_only=True) as con:
        # rows kept from night 1 keep their row ids (0 .. night1_rows - 1); rows written tonight get new ones
        night2_rows, new_days, written = con.execute(
            f"select count(*), count(*) filter (where date_day >= date '2024-01-01'), "
            f"count(*) filter (where rowid >= {night1_rows}) from intermediate.{INCREMENTAL_MODEL}").fetchall()[0]
    assert night2_rows > night1_rows
    assert new_days <= written < night1_rows / 2, (written, new_days, night1_rows)
    # the daily fact and the days of supply downstream write what the positions wrote, not the history again
    fact_written, fact_rows = _written_by_the_last_build(wh, "marts.fct_inventory_daily")
    assert fact_rows == night2_rows and new_days <= fact_written < fact_rows / 2, (fact_written, fact_rows)
    dos_written, dos_rows = _written_by_the_last_build(wh, "marts.fct_days_of_supply")
    assert 0 < dos_written < dos_rows / 2, (dos_written, dos_rows)
    sales_written, sales_rows = _written_by_the_last_build(wh, "marts.fct_sales_daily")
    assert 0 < sales_written < sales_rows / 2, (sales_written, sales_rows)
    # the daily movements write the new days, not every day again
    movements_written = _written_by_the_last_build(wh, "intermediate.int_stock_movements_daily")
    assert 0 < movements_written[0] < movements_written[1] / 2, movements_written
    order_book_written = _written_by_the_last_build(wh, "intermediate.int_order_book_changes_daily")
    assert 0 < order_book_written[0] < order_book_written[1] / 2, order_book_written
    # the counts on or after a day whose sales changed (their last sale may have moved), not every count again
    counts_written = _written_by_the_last_build(wh, "marts.fct_inventory_discrepancies")
    assert 0 < counts_written[0] < counts_written[1] / 2, counts_written
    # the monthly turnover rewrites (at least) the months of the daily rows written tonight, every grain of each
    assert _months_written(wh, "marts.fct_inventory_daily") <= _months_written(
        wh, "marts.fct_inventory_turnover_monthly", month="month_start_date")
    turnover_written = _written_by_the_last_build(wh, "marts.fct_inventory_turnover_monthly")
    # staging validates the new files' lines (and the earlier lines sharing their transactions), not all lines
    for validated in ("staging.stg_sales__sales_lines__validated", "staging.stg_finance__cogs_ledger__validated",
                      "staging.stg_logistics__transfers__validated", "staging.stg_sales__sales_lines",
                      "staging.stg_finance__cogs_ledger", "staging.stg_logistics__transfers"):
        lines_written, lines = _written_by_the_last_build(wh, validated)
        assert 0 < lines_written < lines / 2, (validated, lines_written, lines)
    with duckdb.connect(str(wh), read_only=True) as con:
        verdicts = dict(con.execute(
            "select transaction_id, reject_reason from staging.stg_sales__sales_lines__validated "
            "where transaction_id in (?, ?) and _source_file like ?",
            [old_line.split(",")[0], unknown[0], f"%{LAST_QUARTER}%"]).fetchall())
    assert verdicts == {old_line.split(",")[0]: "duplicate_line", unknown[0]: "unknown_product"}, verdicts

    # a night with nothing new writes nothing to the daily facts (their latest rows are still night 2's), and runs
    # no model or test at all: their inputs are unchanged since they last succeeded (orchestration.dbt_unchanged)
    idle = build_warehouse(landing, wh, progress=False)
    assert idle.dbt.skipped_unchanged > 100
    ran = _ran(idle)
    assert not [uid for uid in ran if uid.split(".")[0] in ("test", "seed", "unit_test")], sorted(ran)
    # a model stays in the build while a test on it is not fingerprinted: the dimensions the report models on the
    # ml write-back test their keys against
    assert {uid for uid in ran if uid.startswith("model.")} <= {
        "model.stockturn.dim_product", "model.stockturn.dim_location", "model.stockturn.dim_supplier"}, sorted(ran)
    assert _written_by_the_last_build(wh, "marts.fct_inventory_daily") == (fact_written, fact_rows)
    assert _written_by_the_last_build(wh, "marts.fct_sales_daily") == (sales_written, sales_rows)
    assert _written_by_the_last_build(wh, "marts.fct_inventory_turnover_monthly") == turnover_written
    assert _written_by_the_last_build(wh, "intermediate.int_stock_movements_daily") == movements_written
    assert _written_by_the_last_build(wh, "intermediate.int_order_book_changes_daily") == order_book_written
    assert _written_by_the_last_build(wh, "marts.fct_inventory_discrepancies") == counts_written

    # a night with one more sale on the last day: the monthly turnover rewrites that day's month only
    with duckdb.connect(str(wh), read_only=True) as con:
        last_day = con.execute("select max(date_day) from marts.fct_inventory_daily").fetchall()[0][0]
    (landing / "sales" / f"sales_lines_{LAST_QUARTER}-extra.csv").write_text("\n".join(
        [twice[0], ",".join(["EXTRA-1", "1", last_day.isoformat(), own_sale[3], own_sale[4], "1", "1.00", "sale",
                             ""])]) + "\n", encoding="utf-8")
    extra = build_warehouse(landing, wh, progress=False)
    ran = _ran(extra)
    # a sales file: the models reading sales lines ran; the staging of what no sales line refers to did not, nor
    # the unit tests (the project is unchanged)
    assert {"model.stockturn.stg_sales__sales_lines", "model.stockturn.fct_sales_daily"} <= ran
    assert not {"model.stockturn.stg_calendar__events", "model.stockturn.stg_external__signals",
                "model.stockturn.stg_master__suppliers"} & ran, sorted(ran)
    assert not [uid for uid in ran if uid.startswith("unit_test.")]
    with duckdb.connect(str(wh), read_only=True) as con:
        months = con.execute("select count(distinct month_start_date) from marts.fct_inventory_turnover_monthly"
                             ).fetchall()[0][0]
    assert _months_written(wh, "marts.fct_inventory_turnover_monthly", month="month_start_date") == {
        last_day.replace(day=1)} and months > 3

    # night 3: corrections anywhere in the history
    sales = landing / "sales" / "sales_lines_2023q3.csv"
    late = sales.read_text(encoding="utf-8").splitlines()[1].split(",")
    late[0] = late[0] + "-LATE"
    with open(sales, "a", encoding="utf-8") as f:  # a late sale on an old day
        f.write(",".join(late) + "\n")
    snapshots = landing / "inventory" / "stock_snapshots.csv"
    rows = snapshots.read_text(encoding="utf-8").splitlines()
    # a recount at the last location, which the transfer edits below do not touch: only the changed anchor can
    # tell the positions that this product-location changed (checked below)
    last_location = max(r.split(",")[2] for r in rows[1:])
    at_last = [r for r in rows[1:] if r.split(",")[2] == last_location]
    middle = at_last[len(at_last) // 2].split(",")
    _replace_line(snapshots, ",".join(middle), ",".join([*middle[:3], str(int(middle[3]) + 7)]))  # recount
    transfers = sorted((landing / "logistics").glob("transfers_*.csv"))
    lines = transfers[1].read_text(encoding="utf-8").splitlines()
    transfers[1].write_text("\n".join(lines[:-5]) + "\n", encoding="utf-8")  # five transfers corrected away
    # a transfer corrected in place: requested a week earlier (the order book's old and new request days change)
    requested = lines[3].split(",")
    requested[4] = (date.fromisoformat(requested[4]) - timedelta(days=7)).isoformat()
    _replace_line(transfers[1], lines[3], ",".join(requested))
    # the purchase orders: an open line cancelled (its order and receipt days lose it) and a receipt corrected
    order_lines = landing / "procurement" / "purchase_order_lines.csv"
    open_line = next(r for r in order_lines.read_text(encoding="utf-8").splitlines()[1:] if r.endswith(",open"))
    _replace_line(order_lines, open_line, open_line[: -len("open")] + "cancelled")
    receipts = landing / "procurement" / "receipts.csv"
    receipt = receipts.read_text(encoding="utf-8").splitlines()[40].split(",")
    _replace_line(receipts, ",".join(receipt), ",".join([*receipt[:4], str(int(receipt[4]) + 2)]))
    sorted((landing / "finance").glob("cogs_ledger_*.csv"))[0].unlink()  # a withdrawn ledger file
    count_rows = counts.read_text(encoding="utf-8").splitlines()
    unchanged = [r for r in count_rows[1:] if r.split(",")[4] == r.split(",")[5]]
    recounted = [r for r in count_rows[1:] if r.split(",")[4] != r.split(",")[5]]
    assert recounted, "the demo's counts also correct the book"
    # counts that corrected nothing withdrawn: one whose day has no other movement, and the second count of a day
    # (the day's sums stay, its record count falls), and another count corrected
    gone = {unchanged[len(unchanged) // 2], second_count}
    counts.write_text("\n".join(r for r in count_rows if r not in gone) + "\n", encoding="utf-8")
    fields = recounted[len(recounted) // 2].split(",")
    _replace_line(counts, ",".join(fields), ",".join([*fields[:5], str(int(fields[5]) + 3)]))
    (landing / "sales" / "sales_lines_2023q3-correction.csv").unlink()  # a withdrawn sales file: its own sale goes
    moved_file = landing / "sales" / "sales_lines_2023q2.csv"  # a sale corrected to another day: its old day loses it
    moved = moved_file.read_text(encoding="utf-8").splitlines()[7].split(",")
    moved_to = (date.fromisoformat(moved[2][:10]) + timedelta(days=2)).isoformat() + moved[2][10:]
    _replace_line(moved_file, ",".join(moved), ",".join([*moved[:2], moved_to, *moved[3:]]))
    costs = landing / "finance" / "standard_costs.csv"
    cost_rows = costs.read_text(encoding="utf-8").splitlines()
    product, valid_from, unit_cost = cost_rows[2].split(",")  # a standard cost corrected back to its start
    _replace_line(costs, cost_rows[2], f"{product},{valid_from},{float(unit_cost) + 0.07:.2f}")
    with open(costs, "a", encoding="utf-8") as f:  # and a new cost for another product, valid from an old day
        f.write(f"{cost_rows[-1].split(',')[0]},2023-08-14,9.99\n")
    prices = landing / "sales" / "prices.csv"
    with open(prices, "a", encoding="utf-8") as f:  # a location's own price list for one product, back-dated
        f.write(f"{product},S01,2023-09-01,4.44\n")
    promotions = landing / "sales" / "promotions.csv"
    promotion_rows = promotions.read_text(encoding="utf-8").splitlines()
    promotion = promotion_rows[3].split(",")  # a promotion's discount corrected, another withdrawn
    _replace_line(promotions, promotion_rows[3], ",".join([*promotion[:5], "0.33"]))
    promotions.write_text("\n".join(line for line in promotions.read_text(encoding="utf-8").splitlines()
                                     if line != promotion_rows[5]) + "\n", encoding="utf-8")
    # more sales of the slow starter, in a file of their own: its median line is 3 now, so its 2000-unit line of
    # night 2 (a file unchanged tonight) is plausible (<= 1000 x 3) and kept
    (landing / "sales" / f"sales_lines_{LAST_QUARTER}-late.csv").write_text("\n".join(
        [twice[0], *(",".join([f"SCALE-LATE-{i}", "1", unknown[2], "P99998", unknown[4], "3", "1.00", "sale", ""])
                     for i in range(4))]) + "\n", encoding="utf-8")
    with open(products, "a", encoding="utf-8") as f:  # the master now lists the product sold on night 2
        f.write(",".join(["P99999", "Late-listed product", *product_rows[1].split(",")[2:]]) + "\n")
    edited = {(r.split(",")[1], r.split(",")[3]) for r in [*lines[-5:], lines[3]]} | {  # transfers: receiving end
        (r.split(",")[1], r.split(",")[2]) for r in [*lines[-5:], lines[3]]} | {
        (r.split(",")[2], r.split(",")[3]) for r in [*gone, recounted[len(recounted) // 2]]} | {
        (r[3], r[4]) for r in (late, moved, own_sale)}
    assert (middle[1], middle[2]) not in edited, "the recount must be the only change of its product-location"
    build_warehouse(landing, wh, progress=False)
    with duckdb.connect(str(wh), read_only=True) as con:
        assert con.execute("select count(*) from staging.stg_sales__sales_lines where product_id = 'P99999'"
                           ).fetchall()[0][0] == 1
        assert con.execute("select count(*) from staging.stg_sales__sales_lines where transaction_id = 'SCALE-2'"
                           ).fetchall()[0][0] == 1

        # the days that lost lines are on record for the daily facts: the corrected sale's old day, the withdrawn
        # file's own sale, the withdrawn ledger file's postings
        withdrawn = set(con.execute("select product_id, location_id, date_day::varchar "
                                    "from staging.stg_sales__sales_lines__withdrawn").fetchall())
        assert {(moved[3], moved[4], moved[2][:10]), (own_sale[3], own_sale[4], own_sale[2][:10])} <= withdrawn
        assert con.execute("select count(*) from staging.stg_finance__cogs_ledger__withdrawn").fetchall()[0][0] > 0

    full = tmp_path / "full.duckdb"
    build_warehouse(landing, full, progress=False, full_refresh=True)
    nightly, rebuilt = _tables(wh), _tables(full)
    # the logs of what nightly builds withdrew: a full build withdraws nothing (checked above)
    for log in ("staging.stg_sales__sales_lines__withdrawn", "staging.stg_finance__cogs_ledger__withdrawn",
                "staging.stg_logistics__transfers__withdrawn"):
        assert rebuilt.pop(log) == [] and nightly.pop(log)
    assert set(nightly) == set(rebuilt)
    for table in rebuilt:
        differs = _same_rows(nightly[table], rebuilt[table])
        assert differs is None, (table, len(nightly[table]), len(rebuilt[table]),
                                 nightly[table][differs:differs + 1], rebuilt[table][differs:differs + 1])


def test_an_older_positions_table_is_rebuilt_in_full(small_warehouse: Path, tmp_path: Path) -> None:
    """A table written before the model was incremental (integer keys, no change columns) is dropped and written
    whole by the next build, not extended."""
    wh = tmp_path / "old.duckdb"
    shutil.copy(small_warehouse, wh)
    with duckdb.connect(str(wh)) as con:
        before = con.execute(f"select count(*) from intermediate.{INCREMENTAL_MODEL}").fetchall()[0][0]
        con.execute(f"alter table intermediate.{INCREMENTAL_MODEL} drop column in_transit_change_units")
    landing = small_warehouse.parent / "landing"
    build_warehouse(landing, wh, progress=False)
    with duckdb.connect(str(wh), read_only=True) as con:
        cols = {r[0] for r in con.execute(
            "select column_name from duckdb_columns() where schema_name = 'intermediate' and table_name = ?",
            [INCREMENTAL_MODEL]).fetchall()}
        after = con.execute(f"select count(*) from intermediate.{INCREMENTAL_MODEL}").fetchall()[0][0]
    assert "in_transit_change_units" in cols and after == before


def test_staging_rebuilt_whole_rewrites_every_amount_day(small_warehouse: Path, tmp_path: Path) -> None:
    """When the kept postings are written whole (an earlier version's table, dropped by on-run-start), the rows
    withdrawn meanwhile are on no record: the daily sales fact then writes every stored amount day again, so a
    withdrawn ledger file's COGS (which moves no units, so no stock day changes) still leaves the fact."""
    landing = tmp_path / "landing"
    shutil.copytree(small_warehouse.parent / "landing", landing)
    wh = tmp_path / "nightly.duckdb"
    shutil.copy(small_warehouse, wh)
    sorted((landing / "finance").glob("cogs_ledger_*.csv"))[-1].unlink()
    with duckdb.connect(str(wh)) as con:
        con.execute("alter table staging.stg_finance__cogs_ledger drop column _built_at")
    build_warehouse(landing, wh, progress=False)
    with duckdb.connect(str(wh), read_only=True) as con:
        # every ledger-costed day carries the COGS of the postings kept now, and no day keeps a withdrawn one
        stale = con.execute(
            "with posted as (select product_id, location_id, posting_date as date_day, sum(amount) as cogs "
            "from staging.stg_finance__cogs_ledger group by all) "
            "select count(*), count(*) filter (where abs(f.cogs_amount - coalesce(p.cogs, 0)) > 1e-6) "
            "from marts.fct_sales_daily as f left join posted as p using (product_id, location_id, date_day) "
            "where f.cogs_basis = 'ledger'").fetchall()[0]
        withdrawn_days = con.execute(
            "select count(*) from marts.fct_sales_daily where cogs_basis = 'ledger' and cogs_amount <> 0 "
            "and _built_at < (select max(_built_at) from marts.fct_sales_daily)").fetchall()[0][0]
    assert stale[0] > 0 and stale[1] == 0, stale
    assert withdrawn_days == 0  # every amount day was written again


def test_full_refresh_reaches_dbt_through_dagster(small_landing: Path, warehouse_copy: Path, tmp_path: Path) -> None:
    """`stockturn run --full-refresh` (run_pipeline(full_refresh=True)) rebuilds the incremental models from
    scratch: dbt is invoked with --full-refresh, and without the flag it is not."""
    from orchestration.defs.dbt import run_target_path
    from orchestration.runner import run_pipeline

    selection = f'key:"intermediate/{INCREMENTAL_MODEL}"'
    for full_refresh in (False, True):
        report, _ = run_pipeline(small_landing, warehouse_copy, tmp_path / "r", selection=selection, ephemeral=True,
                                 full_refresh=full_refresh)
        assert report.success
        args = json.loads((run_target_path(warehouse_copy) / "run_results.json").read_text())["args"]
        assert args["which"] == "build" and bool(args.get("full_refresh")) is full_refresh


def test_a_dagster_run_with_nothing_new_leaves_the_mart_as_it_is(small_landing: Path, warehouse_copy: Path,
                                                                   tmp_path: Path) -> None:
    """The dbt step of a run with no new file leaves out the models and tests whose inputs are unchanged
    (orchestration.dbt_unchanged) and still gives Dagster their outputs, in the order a multi-asset must yield
    them (a downstream model before its upstream one fails the run), and their tests' last results."""
    from orchestration.defs.dbt import run_target_path
    from orchestration.runner import run_pipeline

    report, _ = run_pipeline(small_landing, warehouse_copy, tmp_path / "r", ephemeral=True,
                             selection="group:staging or group:intermediate or group:marts")
    assert report.success, report.format()
    ran = {r["unique_id"] for r in json.loads((run_target_path(warehouse_copy) / "run_results.json").read_text())[
        "results"]}
    assert not [uid for uid in ran if uid.startswith(("model.stockturn.stg_", "model.stockturn.int_"))], sorted(ran)
    materialized = report.materializations
    for key in ("staging/stg_master__products", "intermediate/int_stock_positions_daily", "marts/fct_sales_daily"):
        assert "stockturn/unchanged" in materialized[key], (key, materialized.get(key))
    assert sum(s.checks.get("passed", 0) for s in report.steps) > 100
