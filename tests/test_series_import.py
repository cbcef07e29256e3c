"""The long-format panel importer (`stockturn import-series`): cells in, landing files out, nothing lost.

A small synthetic panel pins the mapping rules (zero and missing write no line, negatives become return lines);
the real car-parts panel (../shared/data/carparts, 2,674 monthly series) must reproduce its README totals and
build into a mart in which every sales line is kept or quarantined.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from ml.ingest import series_panel as mod
from ml.ingest.series_panel import ImportIntegrityError, import_series_panel
from tests.conftest import run_stockturn, shared_data_file
from tests.import_helpers import lossy_connect

CARPARTS = shared_data_file("carparts", "carparts_monthly.csv")
#: The panel's README: 2,674 series x 51 months, sum(y) 66,194, 6,122 empty values in 165 series.
CARPARTS_KNOWN = {"rows": 136_374, "series": 2_674, "periods": 51, "sum_y": 66_194, "missing": 6_122,
                  "series_with_missing": 165}
needs_carparts = pytest.mark.skipif(not CARPARTS.exists(), reason=f"car-parts panel not found at {CARPARTS}")


def _csv(path: Path) -> str:
    # read the written file back as plain text, independently of the importer's own checks
    return f"read_csv('{path}', header=true, all_varchar=true, delim=',', quote='\"')"


def _files(out: Path) -> list[str]:
    return sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())


SMALL_PANEL = """item,month,units
A,2024-01-01,3
A,2024-02-01,
A,2024-03-01,0
A,2024-04-01,-2
B,2024-01-01,1.5
B,2024-02-01,NA
B,2024-03-01,4
007,2024-01-01,0
"""


def test_small_panel(tmp_path: Path) -> None:
    src = tmp_path / "panel.csv"
    src.write_text(SMALL_PANEL)
    out = tmp_path / "landing"
    summary = import_series_panel(src, out, id_column="item", date_column="month", value_column="units")
    assert summary.ok and summary.assumed_defaults == {"location": "MAIN (warehouse, buys from suppliers)"}
    assert (summary.input_rows, summary.series, summary.sales_lines, summary.zero_cells, summary.missing_cells,
            summary.negative_cells, summary.sum_value) == (8, 3, 4, 2, 2, 1, 6.5)
    assert summary.missing_by_position == {"leading": 0, "interior": 2, "trailing": 0, "in all-missing series": 0}
    assert summary.series_without_sales == 1  # '007': only a zero
    # no costs, no supplier terms unless asked for
    assert _files(out) == ["master/locations.csv", "master/products.csv", "sales/sales_lines.csv"]
    with duckdb.connect() as con:
        lines = con.execute(f"SELECT * FROM {_csv(out / 'sales/sales_lines.csv')}").fetchall()
        products = con.execute(f"SELECT product_id, supplier_id, product_type FROM {_csv(out / 'master/products.csv')}"
                               ).fetchall()
        locations = con.execute(f"SELECT location_id, location_type, replenished_from "
                                f"FROM {_csv(out / 'master/locations.csv')}").fetchall()
    assert lines == [
        ("A|MAIN|2024-01-01", None, "2024-01-01", "A", "MAIN", "3", None, "sale", None),
        ("A|MAIN|2024-04-01", None, "2024-04-01", "A", "MAIN", "-2", None, "return", None),
        ("B|MAIN|2024-01-01", None, "2024-01-01", "B", "MAIN", "1.5", None, "sale", None),
        ("B|MAIN|2024-03-01", None, "2024-03-01", "B", "MAIN", "4", None, "sale", None),
    ]
    assert products == [("007", None, "stock"), ("A", None, "stock"), ("B", None, "stock")]  # leading zeros kept
    assert locations == [("MAIN", "warehouse", None)]  # replenished_from blank: buys from a supplier
    text = summary.format()
    assert "2 missing cells" in text and "Assumed defaults" in text

    # the assumed defaults, on request; an overwrite replaces every file of this importer
    with pytest.raises(FileExistsError, match="overwrite"):
        import_series_panel(src, out, id_column="item", date_column="month", value_column="units")
    summary = import_series_panel(src, out, id_column="item", date_column="month", value_column="units",
                                  unit_cost=2.5, lead_time_days=30, pack_size=6, negative_values="quarantine",
                                  fmt="parquet", overwrite=True)
    assert summary.ok and summary.assumed_defaults["nominal_lead_time_days"] == 30
    assert _files(out) == ["finance/standard_costs.parquet", "master/locations.parquet",
                           "master/product_suppliers.parquet", "master/products.parquet",
                           "master/suppliers.parquet", "sales/sales_lines.parquet"]
    with duckdb.connect() as con:
        def rows(rel: str, cols: str, tail: str = "") -> list[tuple]:
            return con.execute(f"SELECT {cols} FROM read_parquet('{out / rel}') {tail}").fetchall()

        assert rows("sales/sales_lines.parquet", "line_type, count(*)", "GROUP BY ALL") == [("sale", 4)]
        assert rows("master/suppliers.parquet", "supplier_id, nominal_lead_time_days") == [("SUPPLIER", "30")]
        assert set(rows("master/product_suppliers.parquet", "supplier_id, min_order_qty, pack_size, "
                        "nominal_lead_time_days, is_primary")) == {("SUPPLIER", None, "6", "30", "true")}
        assert set(rows("master/products.parquet", "supplier_id")) == {("SUPPLIER",)}
        assert set(rows("finance/standard_costs.parquet", "valid_from, unit_cost")) == {("2024-01-01", "2.5")}


def test_location_column_and_unmappable_panels(tmp_path: Path) -> None:
    src = tmp_path / "panel.parquet"
    with duckdb.connect() as con:
        con.execute(f"""COPY (SELECT * FROM (VALUES
            (1, 'S1', DATE '2024-01-01', 2.0), (1, 'S2', DATE '2024-01-01', 'NaN'::DOUBLE),
            (2, 'S2', DATE '2024-01-08', 1.0)) t(sku, store, week, qty)) TO '{src}' (FORMAT parquet)""")
    out = tmp_path / "landing"
    summary = import_series_panel(src, out, id_column="SKU", date_column="week", value_column="qty",
                                  location_column="store", location_type="store")
    assert (summary.series, summary.locations, summary.sales_lines, summary.missing_cells) == (3, 2, 2, 1)
    assert "location" not in summary.assumed_defaults
    with duckdb.connect() as con:
        assert con.execute(f"SELECT location_id, location_type FROM {_csv(out / 'master/locations.csv')}"
                           ).fetchall() == [("S1", "store"), ("S2", "store")]

    bad = tmp_path / "bad.csv"
    bad.write_text("unique_id,ds,y\nA,2024-01-01,1\nA,2024-01-01,2\n,2024-02-01,1\nB,not a date,1\nB,2024-03-01,x\n")
    with pytest.raises(ValueError, match=r"blank series id.*date that does not parse.*not a number.*more than one"):
        import_series_panel(bad, tmp_path / "bad_landing")
    assert not (tmp_path / "bad_landing").exists()  # nothing written
    with pytest.raises(ValueError, match="no value column 'units'"):
        import_series_panel(bad, tmp_path / "bad_landing", value_column="units")


def test_lost_row_raises(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    src = tmp_path / "panel.csv"
    src.write_text(SMALL_PANEL)
    monkeypatch.setattr(mod.duckdb, "connect", lossy_connect(keep_sales_lines=3))
    with pytest.raises(ImportIntegrityError, match=r"sales_lines: input 4 vs output 3; sum_value: input 6.50"):
        import_series_panel(src, tmp_path / "landing", id_column="item", date_column="month", value_column="units")


@needs_carparts
def test_carparts_readme_totals(tmp_path: Path) -> None:
    out = tmp_path / "landing"
    summary = import_series_panel(CARPARTS, out)
    assert summary.ok
    assert (summary.input_rows, summary.series, summary.periods, summary.sum_value, summary.missing_cells,
            summary.series_with_missing) == tuple(CARPARTS_KNOWN.values())
    # the missing months all come after a series' last observed month: series that stopped being observed
    assert summary.missing_by_position["trailing"] == CARPARTS_KNOWN["missing"]
    assert summary.negative_cells == 0 and summary.assumed_defaults == {
        "location": "MAIN (warehouse, buys from suppliers)"}
    with duckdb.connect() as con:
        got = con.execute(f"""SELECT count(*), count(DISTINCT product_id), sum(CAST(quantity AS BIGINT)),
                                     min(sold_at), max(sold_at), count(*) FILTER (WHERE quantity = '0')
                              FROM {_csv(out / 'sales/sales_lines.csv')}""").fetchone()
        zeros = con.execute(f"SELECT count(*) FROM {_csv(CARPARTS)} WHERE y = '0'").fetchone()[0]
    # one line per non-empty, non-zero cell (README: 71.4% of the rows are 0)
    assert got == (CARPARTS_KNOWN["rows"] - CARPARTS_KNOWN["missing"] - zeros, CARPARTS_KNOWN["series"],
                   CARPARTS_KNOWN["sum_y"], "1998-01-01", "2002-03-01", 0)
    assert round(zeros / CARPARTS_KNOWN["rows"], 3) == 0.714


@pytest.fixture(scope="module")
def carparts_warehouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The car-parts panel through the real CLI: import-series with assumed supplier terms and cost, then build."""
    root = tmp_path_factory.mktemp("carparts")
    run_stockturn("import-series", "--source", str(CARPARTS), "--out", str(root / "landing"),
                  "--lead-time-days", "30", "--unit-cost", "1")
    warehouse = root / "warehouse.duckdb"
    run_stockturn("build", "--landing", str(root / "landing"), "--warehouse", str(warehouse), "--quiet")
    return warehouse


@needs_carparts
@pytest.mark.slow
def test_carparts_builds_and_every_line_is_accounted_for(carparts_warehouse: Path) -> None:
    with duckdb.connect(str(carparts_warehouse), read_only=True) as con:
        lines, units = con.execute(
            "select count(*), sum(cast(quantity as bigint)) from raw.sales__sales_lines").fetchone()
        assert units == CARPARTS_KNOWN["sum_y"]
        recon = con.execute("""
            select sum(rows_in), sum(rows_kept) + sum(rows_quarantined), sum(rows_unaccounted)
            from marts.data_quality_reconciliation where entity = 'sales_lines'""").fetchone()
        assert recon == (lines, lines, 0)
        kept, kept_units = con.execute(
            "select count(*), coalesce(sum(units_sold), 0) from staging.stg_sales__sales_lines").fetchone()
        rejected, rejected_units = con.execute(
            "select count(*), coalesce(sum(cast(quantity as double)), 0) "
            "from staging.stg_sales__sales_lines__rejected").fetchone()
        assert kept + rejected == lines
        assert kept_units + rejected_units == pytest.approx(CARPARTS_KNOWN["sum_y"])
        assert con.execute("select sum(units_sold) from marts.fct_sales_daily").fetchone()[0] == pytest.approx(
            kept_units)
        # the one location buys from the assumed supplier, on the assumed terms
        assert con.execute("select location_id, replenishment_source, is_selling_location "
                           "from marts.dim_location").fetchall() == [("MAIN", "supplier", True)]
        assert con.execute("""select count(*), count(distinct supplier_id), min(nominal_lead_time_days),
                                     max(nominal_lead_time_days), min(current_unit_cost), max(current_unit_cost)
                              from marts.dim_product""").fetchone() == (CARPARTS_KNOWN["series"], 1, 30, 30, 1, 1)
