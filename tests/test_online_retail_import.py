"""The UCI Online Retail importer: the real extract in, landing files out, nothing lost."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from ml.ingest import online_retail as mod
from ml.ingest.loader import load_landing
from ml.ingest.online_retail import ImportIntegrityError, import_online_retail
from tests.conftest import shared_data_file
from tests.import_helpers import lossy_connect

SOURCE = shared_data_file("online_retail", "uci_online_retail_transactions.parquet")

pytestmark = pytest.mark.skipif(not SOURCE.exists(), reason="UCI Online Retail extract not available")


def _csv(path: Path) -> str:
    # read the written file back as plain text, independently of the importer's own checks
    return f"read_csv('{path}', header=true, all_varchar=true, delim=',', quote='\"')"


@pytest.fixture(scope="module")
def imported(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, mod.ImportSummary]:
    out = tmp_path_factory.mktemp("or") / "landing"
    return out, import_online_retail(SOURCE, out)


def test_known_totals_on_the_written_files(imported: tuple[Path, mod.ImportSummary]) -> None:
    out, summary = imported
    sales, products = out / "sales/sales_lines.csv", out / "master/products.csv"
    with duckdb.connect() as con:
        got = con.execute(
            f"""SELECT count(*), count(DISTINCT product_id), count(DISTINCT transaction_id),
                       sum(CAST(quantity AS BIGINT)), count(*) FILTER (WHERE line_type = 'return'),
                       count(*) FILTER (WHERE CAST(quantity AS BIGINT) < 0),
                       count(*) FILTER (WHERE starts_with(transaction_id, 'C')),
                       count(*) FILTER (WHERE line_number IS NOT NULL),
                       count(DISTINCT location_id),
                       count(*) FILTER (WHERE customer_id LIKE '%.%' OR quantity LIKE '%.%')
                FROM {_csv(sales)}"""
        ).fetchone()
        assert got == (541_909, 4_070, 25_900, 5_176_450, 9_288, 10_624, 9_288, 0, 1, 0)
        assert con.execute(f"SELECT count(*), count(DISTINCT product_id) FROM {_csv(products)}").fetchone() == (
            4_070,
            4_070,
        )
        # every sales line's product is in the product master
        assert (
            con.execute(
                f"SELECT count(*) FROM {_csv(sales)} s ANTI JOIN {_csv(products)} p USING (product_id)"
            ).fetchone()[0]
            == 0
        )
        # prices are written exactly: they read back to the input doubles, as a multiset
        diff = con.execute(
            f"""SELECT count(*) FROM (
                    SELECT InvoiceNo, StockCode, UnitPrice, Quantity FROM read_parquet('{SOURCE}')
                    EXCEPT ALL
                    SELECT transaction_id, product_id, CAST(unit_price AS DOUBLE), CAST(quantity AS DOUBLE)
                    FROM {_csv(sales)})"""
        ).fetchone()[0]
        assert diff == 0
        first = con.execute(f"SELECT * FROM {_csv(sales)} LIMIT 1").fetchone()
        assert first == ("536365", None, "2010-12-01 08:26:00", "85123A", "ONLINE", "6", "2.55", "sale", "17850")
        assert con.execute(f"SELECT * FROM {_csv(out / 'master/locations.csv')}").fetchall() == [
            ("ONLINE", "Online shop (UK)", "online", None, "United Kingdom")
        ]
    assert summary.ok and summary.matches_known_totals
    assert summary.input_rows == 541_909
    assert summary.output_rows == {
        "sales/sales_lines.csv": 541_909,
        "master/products.csv": 4_070,
        "master/locations.csv": 1,
    }
    assert "5,176,450" in summary.format()
    # only the three required entities are written
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()) == [
        "master/locations.csv",
        "master/products.csv",
        "sales/sales_lines.csv",
    ]


def test_product_master_rule(imported: tuple[Path, mod.ImportSummary]) -> None:
    out, summary = imported
    assert summary.non_stock_codes == [
        "AMAZONFEE",
        "B",
        "BANK CHARGES",
        "C2",
        "CRUK",
        "D",
        "DOT",
        "M",
        "PADS",
        "POST",
        "S",
        "gift_0001_10",
        "gift_0001_20",
        "gift_0001_30",
        "gift_0001_40",
        "gift_0001_50",
        "m",
    ]
    assert summary.non_stock_lines == 2_950
    with duckdb.connect() as con:
        names = dict(
            con.execute(
                f"SELECT product_id, product_name || '|' || product_type FROM {_csv(out / 'master/products.csv')} "
                "WHERE product_id IN ('85123A', 'POST', 'DCGS0003', 'DCGSSBOY', '15056p', '15056P', 'DCGS0055')"
            ).fetchall()
        )
        assert names["POST"] == "POSTAGE|non_stock"
        assert names["DCGS0003"] == "BOXED GLASS ASHTRAY|stock"  # most frequent description, not 'ebay'
        assert names["DCGSSBOY"] == "BOYS PARTY BAG|stock"
        assert names["15056p"].endswith("|stock") and names["15056P"].endswith("|stock")  # case preserved
        assert names["DCGS0055"] is None  # no description at all -> blank name
        assert names["85123A"].endswith("|stock")


def test_the_output_loads_as_a_sales_only_landing(imported: tuple[Path, mod.ImportSummary], tmp_path: Path) -> None:
    out, _ = imported
    report = load_landing(out, tmp_path / "wh.duckdb", progress=False)
    assert report.entity("sales_lines").rows == 541_909 and report.rows_rejected == 0
    assert [e.name for e in report.entities.values() if e.present] == ["products", "locations", "sales_lines"]


def test_parquet_output_and_small_rules(tmp_path: Path) -> None:
    src = tmp_path / "mini.parquet"
    with duckdb.connect() as con:
        con.execute(
            f"""COPY (SELECT * FROM (VALUES
                ('536365', '85123A', 'HEART', 6.0, TIMESTAMP '2010-12-01 08:26:00', 2.55, 17850.0, 'UK'),
                ('536366', '85123A', 'HEART HOLDER', 1.0, TIMESTAMP '2010-12-01 09:00:00', 0.1, NULL, 'UK'),
                ('C536367', '85123A', 'HEART HOLDER', -2.0, TIMESTAMP '2010-12-02 10:00:00', 2.55, 12345.0, 'FR'),
                ('536368', '85123A', 'HEART', 1.0, TIMESTAMP '2010-12-02 10:00:00', 1e-3, 1.0, 'UK'),
                ('536368', 'POST', 'POSTAGE', 1.0, TIMESTAMP '2010-12-02 10:00:00', 18.0, 1.0, 'UK'),
                ('536368', 'POST', 'POSTAGE', 1.0, TIMESTAMP '2010-12-02 10:00:00', 18.0, 1.0, 'UK')
            ) t(InvoiceNo, StockCode, Description, Quantity, InvoiceDate, UnitPrice, CustomerID, Country))
            TO '{src}' (FORMAT parquet)"""
        )
    out = tmp_path / "landing"
    summary = import_online_retail(src, out, location_id="WEB", fmt="parquet")
    assert summary.ok and not summary.matches_known_totals
    with duckdb.connect() as con:
        lines = con.execute(
            f"SELECT transaction_id, quantity, unit_price, line_type, customer_id, location_id "
            f"FROM read_parquet('{out / 'sales/sales_lines.parquet'}')"
        ).fetchall()
        products = con.execute(
            f"SELECT product_id, product_name, product_type FROM read_parquet('{out / 'master/products.parquet'}')"
        ).fetchall()
    assert lines == [
        ("536365", "6", "2.55", "sale", "17850", "WEB"),
        ("536366", "1", "0.1", "sale", None, "WEB"),
        ("C536367", "-2", "2.55", "return", "12345", "WEB"),
        ("536368", "1", "0.001", "sale", "1", "WEB"),
        ("536368", "1", "18.0", "sale", "1", "WEB"),  # exact duplicates are kept
        ("536368", "1", "18.0", "sale", "1", "WEB"),
    ]
    # 2 x 'HEART' vs 2 x 'HEART HOLDER': tie broken alphabetically
    assert products == [("85123A", "HEART", "stock"), ("POST", "POSTAGE", "non_stock")]

    with pytest.raises(FileExistsError, match="overwrite"):
        import_online_retail(src, out)
    import_online_retail(src, out, overwrite=True)  # csv replaces the parquet files, no double parts
    assert sorted(p.name for p in out.rglob("*") if p.is_file()) == ["locations.csv", "products.csv", "sales_lines.csv"]


def test_lost_rows_raise(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    src = tmp_path / "mini.parquet"
    with duckdb.connect() as con:
        con.execute(
            f"""COPY (SELECT 'I' || i AS InvoiceNo, '1000' || (i % 3) AS StockCode, 'X' AS Description,
                        1.0 AS Quantity, TIMESTAMP '2011-01-01' AS InvoiceDate, 1.5 AS UnitPrice,
                        NULL::DOUBLE AS CustomerID, 'UK' AS Country FROM range(10) r(i)) TO '{src}' (FORMAT parquet)"""
        )

    monkeypatch.setattr(mod.duckdb, "connect", lossy_connect(keep_sales_lines=9))
    with pytest.raises(ImportIntegrityError, match="lines: input 10"):
        import_online_retail(src, tmp_path / "landing")
