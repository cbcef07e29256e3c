"""The landing loader: discovery, raw layout, header checks, malformed lines, provenance, atomicity."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import duckdb
import pytest

from ml.ingest import loader as loader_mod
from ml.ingest.contract import ENTITIES, entity
from ml.ingest.loader import LandingContractError, discover_landing, load_landing

PRODUCTS = "product_id,product_name,category\nP1,Widget,Tools\nP2,Gadget,\n"
LOCATIONS = "location_id,location_name\nL1,Main store\n"
SALES = (
    "transaction_id,sold_at,product_id,location_id,quantity,unit_price\n"
    "T1,2024-01-02,P1,L1,2,9.99\n"
    "T2,2024-01-03,P2,L1,1,4.50\n"
)


def write(root: Path, rel: str, text: str | bytes) -> Path:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def minimal_landing(root: Path) -> Path:
    write(root, "master/products.csv", PRODUCTS)
    write(root, "master/locations.csv", LOCATIONS)
    write(root, "sales/sales_lines.csv", SALES)
    return root


def rows(wh: Path, sql: str) -> list[tuple]:
    with duckdb.connect(str(wh), read_only=True) as con:
        return con.execute(sql).fetchall()


def columns(wh: Path, table: str) -> list[tuple[str, str]]:
    return [(r[0], r[1]) for r in rows(wh, f"DESCRIBE raw.{table}")]


@pytest.fixture
def landing(tmp_path: Path) -> Path:
    return minimal_landing(tmp_path / "landing")


@pytest.fixture
def wh(tmp_path: Path) -> Path:
    return tmp_path / "wh" / "warehouse.duckdb"


# --------------------------------------------------------------------------------------------- happy path


def test_happy_path_layout_and_bookkeeping(landing: Path, wh: Path) -> None:
    report = load_landing(landing, wh, progress=False)

    # every contract entity has its raw table, every column text in contract order, then provenance
    for ent in ENTITIES:
        expected = [(c.name, "VARCHAR") for c in ent.columns] + [("_source_file", "VARCHAR"), ("_source_row", "BIGINT")]
        assert columns(wh, ent.raw_table) == expected, ent.name
    assert rows(wh, "SELECT * FROM raw.sales__sales_lines ORDER BY _source_row") == [
        ("T1", None, "2024-01-02", "P1", "L1", "2", "9.99", None, None, "sales/sales_lines.csv", 1),
        ("T2", None, "2024-01-03", "P2", "L1", "1", "4.50", None, None, "sales/sales_lines.csv", 2),
    ]
    # empty CSV field -> NULL
    assert rows(wh, "SELECT product_id, category FROM raw.master__products ORDER BY 1") == [
        ("P1", "Tools"),
        ("P2", None),
    ]
    assert report.entity("sales_lines").rows == 2
    assert report.entity("products").missing_optional_columns == [
        "supplier_id",
        "unit_of_measure",
        "product_type",
        "launch_date",
        "discontinued_date",
        "list_price",
        "ordering_cost",
        "annual_holding_rate",
    ]
    assert report.entity("suppliers").present is False
    assert len(report.load_id) == 16

    files = rows(wh, "SELECT system, entity, file, format, rows, bytes, load_id FROM raw.landing_files ORDER BY file")
    assert files == [
        ("master", "locations", "master/locations.csv", "csv", 1, len(LOCATIONS), report.load_id),
        ("master", "products", "master/products.csv", "csv", 2, len(PRODUCTS), report.load_id),
        ("sales", "sales_lines", "sales/sales_lines.csv", "csv", 2, len(SALES), report.load_id),
    ]
    ents = rows(
        wh,
        "SELECT entity, required, present, files, rows, missing_optional_columns, ignored_columns, load_id "
        "FROM raw.landing_entities",
    )
    assert [e[0] for e in ents] == [e.name for e in ENTITIES]
    by_name = {e[0]: e for e in ents}
    assert by_name["products"][1:5] == (True, True, 1, 2)
    assert by_name["promotions"][1:5] == (False, False, 0, 0)
    assert by_name["locations"][5] == ["location_type", "replenished_from", "region"]
    assert {e[7] for e in ents} == {report.load_id}
    assert rows(wh, "SELECT count(*) FROM raw._load_rejects") == [(0,)]
    assert [c for c, _ in columns(wh, "_load_rejects")][:4] == ["file", "line", "reason", "raw_line"]


def test_values_are_text_and_untouched(tmp_path: Path, wh: Path) -> None:
    landing = minimal_landing(tmp_path / "landing")
    write(
        landing,
        "sales/sales_lines.csv",
        "transaction_id,sold_at,product_id,location_id,quantity,unit_price,line_type\n"
        '007, 2024-13-45 ,p1,L1,1e3,"1,50",\n'  # nonsense values must load verbatim
        'T2,2024-01-01,"P ""2""",L1,  ,abc,""\n'
        "T3,2024-01-01,P1,L1,-0.000,,RETURN\n",
    )
    load_landing(landing, wh, progress=False)
    got = rows(
        wh,
        "SELECT transaction_id, sold_at, product_id, quantity, unit_price, line_type "
        "FROM raw.sales__sales_lines ORDER BY _source_row",
    )
    assert got == [
        ("007", " 2024-13-45 ", "p1", "1e3", "1,50", None),
        ("T2", "2024-01-01", 'P "2"', "  ", "abc", None),  # whitespace kept; quoted empty is NULL too
        ("T3", "2024-01-01", "P1", "-0.000", None, "RETURN"),
    ]


def test_header_matching_is_case_insensitive_and_trimmed(tmp_path: Path, wh: Path) -> None:
    landing = minimal_landing(tmp_path / "landing")
    write(landing, "master/products.csv", " Product_ID ,PRODUCT_NAME\r\nP1,Widget\r\n")
    write(landing, "master/locations.csv", b"\xef\xbb\xbfLocation_Id\r\nL1\r\n")  # BOM + CRLF
    load_landing(landing, wh, progress=False)
    assert rows(wh, "SELECT product_id, product_name FROM raw.master__products") == [("P1", "Widget")]
    assert rows(wh, "SELECT location_id FROM raw.master__locations") == [("L1",)]


def test_header_only_file_is_fine(tmp_path: Path, wh: Path) -> None:
    landing = minimal_landing(tmp_path / "landing")
    write(landing, "sales/promotions.csv", "promotion_id,product_id,start_date,end_date")  # no newline even
    report = load_landing(landing, wh, progress=False)
    assert report.entity("promotions").present
    assert report.entity("promotions").rows == 0
    assert rows(wh, "SELECT count(*) FROM raw.sales__promotions") == [(0,)]


def test_report_format_and_logging(landing: Path, wh: Path, caplog: pytest.LogCaptureFixture) -> None:
    write(
        landing,
        "sales/sales_lines.csv",
        "transaction_id,sold_at,product_id,location_id,quantity\n"
        + "".join(f"T{i},2024-01-01,P1,L1,1\n" for i in range(1234)),
    )
    with caplog.at_level(logging.INFO, logger="stockturn.ingest"):
        report = load_landing(landing, wh, progress=False)
    text = report.format()
    assert "1,234" in text and "sales/sales_lines" in text and report.load_id in text
    assert "absent (empty table)" in text
    assert any("sales/sales_lines.csv" in r.getMessage() and "1,234" in r.getMessage() for r in caplog.records)


def test_progress_bar_does_not_break(landing: Path, wh: Path) -> None:
    report = load_landing(landing, wh, progress=True)
    assert report.entity("sales_lines").rows == 2


# --------------------------------------------------------------------------------------------- discovery


def test_parts_discovery_and_prefix_trap(tmp_path: Path, wh: Path) -> None:
    landing = minimal_landing(tmp_path / "landing")
    (landing / "sales/sales_lines.csv").unlink()
    sl_header = "transaction_id,sold_at,product_id,location_id,quantity\n"
    write(landing, "sales/sales_lines_2024q2.csv", sl_header + "B1,2024-04-01,P1,L1,1\n")
    write(landing, "sales/sales_lines_2024q1.CSV", sl_header + "A1,2024-01-01,P1,L1,1\nA2,2024-01-01,P1,L1,1\n")
    write(landing, "sales/sales_lines/part-0002.csv", sl_header + "D1,2024-06-01,P1,L1,1\n")
    write(landing, "sales/sales_lines/part-0001.csv", sl_header + "C1,2024-05-01,P1,L1,1\n")
    # the prefix trap: product_suppliers files must not be read as products (and vice versa)
    ps = "product_id,supplier_id\nP1,S1\n"
    write(landing, "master/product_suppliers.csv", ps)
    write(landing, "master/product_suppliers_extra.csv", ps)
    write(landing, "master/products_more.csv", "product_id\nP3\n")
    write(landing, "master/suppliers.csv", "supplier_id\nS1\n")
    # files matching nothing
    write(landing, "master/productsX.csv", "product_id\nPX\n")
    write(landing, "master/notes.txt", "hello")
    write(landing, "readme.csv", "x\n1\n")
    write(landing, "sales/sales_lines/nested/part.csv", sl_header)
    write(landing, "stock/stock_snapshots.csv", "x\n")

    disc = discover_landing(landing)
    rel = {k: [p.relative_to(landing).as_posix() for p in v] for k, v in disc.files.items()}
    assert rel["products"] == ["master/products.csv", "master/products_more.csv"]
    assert rel["product_suppliers"] == ["master/product_suppliers.csv", "master/product_suppliers_extra.csv"]
    assert rel["suppliers"] == ["master/suppliers.csv"]
    assert rel["sales_lines"] == [
        "sales/sales_lines/part-0001.csv",
        "sales/sales_lines/part-0002.csv",
        "sales/sales_lines_2024q1.CSV",
        "sales/sales_lines_2024q2.csv",
    ]
    assert disc.ignored == [
        "master/notes.txt",
        "master/productsX.csv",
        "readme.csv",
        "sales/sales_lines/nested/part.csv",
        "stock/stock_snapshots.csv",
    ]

    report = load_landing(landing, wh, progress=False)
    assert report.ignored_files == disc.ignored
    assert any("master/productsX.csv" in w for w in report.warnings)
    assert rows(wh, "SELECT product_id FROM raw.master__products ORDER BY 1") == [("P1",), ("P2",), ("P3",)]
    assert rows(wh, "SELECT count(*) FROM raw.master__product_suppliers") == [(2,)]
    got = rows(wh, "SELECT transaction_id, _source_file, _source_row FROM raw.sales__sales_lines")
    assert got == [  # table order = sorted file order, then file order
        ("C1", "sales/sales_lines/part-0001.csv", 1),
        ("D1", "sales/sales_lines/part-0002.csv", 1),
        ("A1", "sales/sales_lines_2024q1.CSV", 1),
        ("A2", "sales/sales_lines_2024q1.CSV", 2),
        ("B1", "sales/sales_lines_2024q2.csv", 1),
    ]
    assert report.entity("sales_lines").rows == 5 and len(report.entity("sales_lines").files) == 4


def test_exact_name_beats_longer_prefix_of_another_entity() -> None:
    from ml.ingest.contract import Entity

    short = Entity("s", "sales", "", "", (), ())
    long_ = Entity("s", "sales_lines", "", "", (), ())
    assert loader_mod._match_entity(("s", "sales_lines.csv"), [short, long_]) is long_
    assert loader_mod._match_entity(("s", "sales_lines_1.csv"), [short, long_]) is long_
    assert loader_mod._match_entity(("s", "sales_2024.csv"), [short, long_]) is short
    assert loader_mod._match_entity(("s", "sales.parquet"), [short, long_]) is short
    assert loader_mod._match_entity(("s", "sales.json"), [short, long_]) is None


# --------------------------------------------------------------------------------------------- contract errors


def test_optional_entity_absent_gives_empty_table(landing: Path, wh: Path) -> None:
    report = load_landing(landing, wh, progress=False)
    ent = entity("stock_snapshots")
    assert not report.entity("stock_snapshots").present
    assert rows(wh, f"SELECT count(*) FROM raw.{ent.raw_table}") == [(0,)]
    assert [c for c, _ in columns(wh, ent.raw_table)] == [c.name for c in ent.columns] + ["_source_file", "_source_row"]


def test_missing_required_file_names_the_path(tmp_path: Path, wh: Path) -> None:
    landing = minimal_landing(tmp_path / "landing")
    (landing / "master/locations.csv").unlink()
    write(landing, "master/Locations.csv", LOCATIONS)  # wrong case: ignored, and mentioned
    with pytest.raises(LandingContractError) as err:
        load_landing(landing, wh, progress=False)
    msg = str(err.value)
    assert "master/locations" in msg and "master/locations.csv" in msg and "master/locations/*.csv" in msg
    assert "master/Locations.csv" in msg
    assert "docs/data-contract.md#locations" in msg
    assert not wh.exists()


def test_missing_required_column_names_file_and_column(landing: Path, wh: Path) -> None:
    write(landing, "sales/sales_lines_2.csv", "transaction_id,sold_at,product_id,qty\nT9,2024-01-01,P1,3\n")
    with pytest.raises(LandingContractError) as err:
        load_landing(landing, wh, progress=False)
    msg = str(err.value)
    assert "sales/sales_lines_2.csv" in msg
    assert "location_id" in msg and "quantity" in msg
    assert "docs/data-contract.md#sales_lines" in msg
    assert "sales/sales_lines.csv" not in msg  # the good part is not blamed
    assert not wh.exists()  # nothing written, not even an empty warehouse


def test_all_header_problems_reported_at_once(landing: Path, wh: Path) -> None:
    write(landing, "master/products.csv", "name\nx\n")
    write(landing, "master/locations.csv", "location_id,LOCATION_ID\nL1,L1\n")
    with pytest.raises(LandingContractError) as err:
        load_landing(landing, wh, progress=False)
    msg = str(err.value)
    assert "master/products.csv" in msg and "product_id" in msg
    assert "master/locations.csv" in msg and "more than once" in msg


def test_extra_column_ignored_and_reported(landing: Path, wh: Path) -> None:
    write(landing, "master/locations.csv", "location_id,Manager,region\nL1,Ann,North\n")
    report = load_landing(landing, wh, progress=False)
    assert report.entity("locations").ignored_columns == ["Manager"]
    assert any("Manager" in w and "master/locations.csv" in w for w in report.warnings)
    assert rows(wh, "SELECT location_id, region FROM raw.master__locations") == [("L1", "North")]
    assert rows(wh, "SELECT ignored_columns FROM raw.landing_files WHERE entity = 'locations'") == [(["Manager"],)]


@pytest.mark.parametrize("content", [b"", b"\xef\xbb\xbf", b"\r\n\r\n"])
def test_an_empty_optional_file_is_zero_rows_with_a_warning(landing: Path, wh: Path, content: bytes) -> None:
    # what a nightly exporter writes on a day without cycle counts (issue 10): the night goes on
    write(landing, "inventory/cycle_counts.csv", content)
    report = load_landing(landing, wh, progress=False)
    assert any("inventory/cycle_counts.csv: the file is empty" in w and "zero rows" in w for w in report.warnings)
    assert rows(wh, f"SELECT count(*) FROM raw.{entity('cycle_counts').raw_table}") == [(0,)]


def test_an_empty_part_of_a_required_entity_is_zero_rows(landing: Path, wh: Path) -> None:
    write(landing, "sales/sales_lines_2099.csv", "")
    report = load_landing(landing, wh, progress=False)
    assert any("sales/sales_lines_2099.csv: the file is empty" in w for w in report.warnings)
    loaded = rows(wh, f"SELECT count(*) FROM raw.{entity('sales_lines').raw_table}")[0][0]
    assert loaded == SALES.strip().count("\n")  # the other file's rows, all of them


def test_a_required_entity_with_only_empty_files_is_an_error(landing: Path, wh: Path) -> None:
    write(landing, "master/locations.csv", "")
    with pytest.raises(LandingContractError, match=r"required file master/locations.*every file is empty"):
        load_landing(landing, wh, progress=False)
    assert not wh.exists()


def test_semicolon_file_gets_a_delimiter_hint(landing: Path, wh: Path) -> None:
    write(landing, "master/locations.csv", "location_id;region\nL1;North\n")
    with pytest.raises(LandingContractError, match=r"master/locations.csv.*';'-separated"):
        load_landing(landing, wh, progress=False)


# --------------------------------------------------------------------------------------------- malformed lines


BAD_SALES = (
    "transaction_id,sold_at,product_id,location_id,quantity\n"
    "T1,2024-01-01,P1,L1,1\n"
    "T2,2024-01-01,P1,L1,1,EXTRA\n"  # data row 2: too many fields
    "T3,2024-01-01,P1,L1,1\n"
    "T4,2024-01-01,P1\n"  # data row 4: too few
    "T5,2024-01-01,P1,L1,1\n"
    'T6,"multi\nline",P1,L1,1\n'  # a legitimate quoted newline
    "T7,2024-01-01,P1,L1,1\n"
)


def test_malformed_lines_are_quarantined(landing: Path, wh: Path) -> None:
    write(landing, "sales/sales_lines.csv", BAD_SALES)
    report = load_landing(landing, wh, progress=False)
    sl = report.entity("sales_lines")
    assert (sl.rows, sl.rows_loaded, sl.rows_rejected) == (7, 5, 2)
    assert rows(wh, "SELECT transaction_id, _source_row FROM raw.sales__sales_lines ORDER BY _source_row") == [
        ("T1", 1),
        ("T3", 3),
        ("T5", 5),
        ("T6", 6),
        ("T7", 7),
    ]
    assert rows(wh, "SELECT file, line, source_row, reason, raw_line FROM raw._load_rejects ORDER BY line") == [
        ("sales/sales_lines.csv", 3, 2, "too_many_fields", "T2,2024-01-01,P1,L1,1,EXTRA"),
        ("sales/sales_lines.csv", 5, 4, "too_few_fields", "T4,2024-01-01,P1"),
    ]
    assert rows(wh, "SELECT rows, rows_loaded, rows_rejected FROM raw.landing_files WHERE entity='sales_lines'") == [
        (7, 5, 2)
    ]
    assert any("2 malformed" in w for w in report.warnings)


def test_malformed_lines_error_mode_names_file_and_line(landing: Path, wh: Path) -> None:
    write(landing, "sales/sales_lines.csv", BAD_SALES)
    with pytest.raises(
        LandingContractError, match=r"sales/sales_lines.csv: 2 malformed CSV record\(s\); first at line 3"
    ):
        load_landing(landing, wh, progress=False, bad_lines="error")


def test_unterminated_quote_is_an_error_naming_the_line(landing: Path, wh: Path) -> None:
    body = "".join(f"T{i},2024-01-01,P1,L1,1\n" for i in range(1, 50))
    write(
        landing,
        "sales/sales_lines.csv",
        "transaction_id,sold_at,product_id,location_id,quantity\n" + body + 'T50,"2024-01-01,P1,L1,1\n' + body,
    )
    with pytest.raises(LandingContractError) as err:
        load_landing(landing, wh, progress=False)
    msg = str(err.value)
    assert "sales/sales_lines.csv" in msg and "line 51" in msg and "quote" in msg
    assert "Traceback" not in msg and "sample_size" not in msg  # no DuckDB settings dump


def test_mostly_malformed_file_is_an_error(landing: Path, wh: Path) -> None:
    # header is comma-separated but the data is not
    write(landing, "master/locations.csv", "location_id,region\nL1;North\nL2;South\n")
    with pytest.raises(LandingContractError, match=r"master/locations.csv: 2 of 2 records are malformed"):
        load_landing(landing, wh, progress=False)


def test_max_rejected_lines(landing: Path, wh: Path) -> None:
    good = "".join(f"T{i},2024-01-01,P1,L1,1\n" for i in range(20))
    bad = "".join(f"X{i},2024-01-01\n" for i in range(3))
    write(landing, "sales/sales_lines.csv", "transaction_id,sold_at,product_id,location_id,quantity\n" + good + bad)
    with pytest.raises(LandingContractError, match="3 of 23 records"):
        load_landing(landing, wh, progress=False, max_rejected_lines=2)
    assert load_landing(landing, wh, progress=False).rows_rejected == 3


def test_invalid_utf8_line_is_quarantined(landing: Path, wh: Path) -> None:
    write(
        landing,
        "master/products.csv",
        b"product_id,product_name\nP1,ok\nP2,bad \xff\xfe name\nP3,caf\xc3\xa9\nP4,x\n",
    )
    report = load_landing(landing, wh, progress=False)
    assert report.entity("products").rows == 4 and report.entity("products").rows_rejected == 1
    assert rows(wh, "SELECT product_id, product_name, _source_row FROM raw.master__products ORDER BY 3") == [
        ("P1", "ok", 1),
        ("P3", "café", 3),
        ("P4", "x", 4),
    ]
    assert rows(wh, "SELECT line, reason FROM raw._load_rejects") == [(3, "invalid_utf8")]


# --------------------------------------------------------------------------------------------- provenance at size


def _big_sales_csv(path: Path, n: int, *, bad_every: int | None = None) -> int:
    """A multi-MB sales file whose transaction_id is the data-row number; returns the number of bad rows."""
    bad = 0
    with path.open("w", encoding="utf-8", newline="") as fh:
        fh.write("transaction_id,sold_at,product_id,location_id,quantity,unit_price,customer_id\n")
        for i in range(1, n + 1):
            if bad_every and i % bad_every == 0:
                fh.write(f"{i},2024-01-01,P1\n")
                bad += 1
            elif i % 10_007 == 0:
                fh.write(f'{i},2024-01-01,"P\n{i}",L1,{i % 7},1.25,"cust, {i}"\n')  # embedded newline
            else:
                fh.write(f"{i},2024-01-01 10:00:00,P{i % 977},L{i % 13},{i % 7},1.25,C{i % 5000}\n")
    return bad


def test_source_row_preserves_file_order_on_a_multi_mb_file(tmp_path: Path, wh: Path) -> None:
    landing = minimal_landing(tmp_path / "landing")
    n = 250_000
    _big_sales_csv(landing / "sales/sales_lines.csv", n)
    assert (landing / "sales/sales_lines.csv").stat().st_size > 10_000_000  # several parser buffers / threads
    load_landing(landing, wh, progress=False)
    assert rows(
        wh,
        "SELECT count(*), count(*) FILTER (WHERE CAST(transaction_id AS BIGINT) = _source_row), "
        "count(DISTINCT _source_row), min(_source_row), max(_source_row) FROM raw.sales__sales_lines",
    ) == [(n, n, n, 1, n)]
    # the table itself is stored in file order too
    assert rows(
        wh,
        "SELECT count(*) FROM (SELECT _source_row, lag(_source_row) OVER (ORDER BY rowid) AS prev "
        "FROM raw.sales__sales_lines) WHERE prev IS NOT NULL AND _source_row <> prev + 1",
    ) == [(0,)]


def test_source_row_with_rejects_on_a_multi_mb_file(tmp_path: Path, wh: Path) -> None:
    landing = minimal_landing(tmp_path / "landing")
    n = 250_000
    bad = _big_sales_csv(landing / "sales/sales_lines.csv", n, bad_every=997)
    report = load_landing(landing, wh, progress=False, max_rejected_lines=None)
    assert report.entity("sales_lines").rows == n and report.rows_rejected == bad
    assert rows(
        wh,
        "SELECT count(*), count(*) FILTER (WHERE CAST(transaction_id AS BIGINT) = _source_row) "
        "FROM raw.sales__sales_lines",
    ) == [(n - bad, n - bad)]
    assert rows(
        wh,
        "SELECT count(*), count(*) FILTER (WHERE source_row % 997 = 0 AND starts_with(raw_line, source_row::VARCHAR))"
        " FROM raw._load_rejects",
    ) == [(bad, bad)]


# --------------------------------------------------------------------------------------------- parquet


def test_parquet_is_read_as_iso_text(tmp_path: Path, wh: Path) -> None:
    landing = minimal_landing(tmp_path / "landing")
    (landing / "sales/sales_lines.csv").unlink()
    path = landing / "sales/sales_lines/part-1.PARQUET"
    path.parent.mkdir(parents=True)
    with duckdb.connect() as con:
        con.execute(
            f"""COPY (SELECT * FROM (VALUES
                    ('T1', DATE '2024-01-02', TIMESTAMP '2024-01-02 10:11:12', 'P1', 'L1', 2.5::DOUBLE, 7::INTEGER, ''),
                    ('T2', DATE '2024-01-03', TIMESTAMP '2024-01-03 00:00:00', 'P2', 'L1', -1.0::DOUBLE, NULL, 'x')
                ) t("Transaction_ID", some_date, "SOLD_AT", product_id, location_id, quantity, line_number, customer_id)
            ) TO '{path}' (FORMAT parquet)"""
        )
    report = load_landing(landing, wh, progress=False)
    assert report.entity("sales_lines").files[0].format == "parquet"
    assert report.entity("sales_lines").ignored_columns == ["some_date"]
    got = rows(
        wh,
        "SELECT transaction_id, sold_at, quantity, line_number, customer_id, _source_file, _source_row "
        "FROM raw.sales__sales_lines ORDER BY _source_row",
    )
    assert got == [
        ("T1", "2024-01-02 10:11:12", "2.5", "7", None, "sales/sales_lines/part-1.PARQUET", 1),
        ("T2", "2024-01-03 00:00:00", "-1.0", None, "x", "sales/sales_lines/part-1.PARQUET", 2),
    ]


def test_corrupt_parquet_is_a_clear_error(landing: Path, wh: Path) -> None:
    write(landing, "sales/prices.parquet", b"this is not parquet at all")
    with pytest.raises(LandingContractError, match=r"sales/prices.parquet: not a readable parquet file"):
        load_landing(landing, wh, progress=False)


# --------------------------------------------------------------------------------------------- atomicity, determinism


def _snapshot(wh: Path) -> dict[str, list[tuple]]:
    out = {}
    for ent in ENTITIES:
        out[ent.raw_table] = rows(wh, f"SELECT * FROM raw.{ent.raw_table} ORDER BY rowid")
    for t in ("landing_files", "landing_entities", "_load_rejects"):
        out[t] = rows(wh, f"SELECT * FROM raw.{t} ORDER BY ALL")
    return out


def test_failed_load_keeps_previous_tables_bad_file_found_late(landing: Path, wh: Path) -> None:
    first = load_landing(landing, wh, progress=False)
    before = _snapshot(wh)
    # a second delivery: more products and sales, and a corrupt file that is only found when its data is read
    write(landing, "master/products_2.csv", "product_id\nP9\n")
    write(landing, "sales/sales_lines_2.csv", "transaction_id,sold_at,product_id,location_id,quantity\nT9,x,P9,L1,1\n")
    write(
        landing, "inventory/stock_snapshots.csv", 'snapshot_date,product_id,location_id,on_hand_qty\n2024-01-01,"P1\n'
    )
    with pytest.raises(LandingContractError, match="inventory/stock_snapshots.csv"):
        load_landing(landing, wh, progress=False)
    assert _snapshot(wh) == before
    assert rows(wh, "SELECT DISTINCT load_id FROM raw.landing_files") == [(first.load_id,)]


def test_failed_load_inside_the_write_transaction_rolls_back(
    landing: Path, wh: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    load_landing(landing, wh, progress=False)
    before = _snapshot(wh)
    write(landing, "master/products_2.csv", "product_id\nP9\n")
    # break the last statement of the transaction, after every raw table has been replaced
    ddl = dict(loader_mod._BOOKKEEPING_DDL)
    ddl["_load_rejects"] = "file VARCHAR, line NOT_A_TYPE"
    monkeypatch.setattr(loader_mod, "_BOOKKEEPING_DDL", ddl)
    with pytest.raises(duckdb.Error):
        load_landing(landing, wh, progress=False)
    assert _snapshot(wh) == before
    assert ("P9",) not in rows(wh, "SELECT product_id FROM raw.master__products")


def test_rerun_gives_identical_tables_and_load_id(landing: Path, wh: Path) -> None:
    write(landing, "sales/sales_lines_b.csv", BAD_SALES)
    first = load_landing(landing, wh, progress=False)
    snap = _snapshot(wh)
    second = load_landing(landing, wh, progress=False)
    assert second.load_id == first.load_id
    assert _snapshot(wh) == snap
    # touching a file changes the id
    p = landing / "master/products.csv"
    st = p.stat()
    os.utime(p, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
    assert load_landing(landing, wh, progress=False).load_id != first.load_id


def test_memory_limit_and_threads_from_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STOCKTURN_DUCKDB_MEMORY_LIMIT", "512MB")
    con = loader_mod._connect(tmp_path / "x.duckdb")
    try:
        limit = con.execute("SELECT current_setting('memory_limit')").fetchone()[0]
        threads = con.execute("SELECT current_setting('threads')").fetchone()[0]
    finally:
        con.close()
    assert limit.replace(" ", "") in ("488.2MiB", "512.0MB", "512MB")
    assert int(threads) == (os.cpu_count() or 1)


def test_missing_landing_folder(tmp_path: Path, wh: Path) -> None:
    with pytest.raises(LandingContractError, match="does not exist"):
        load_landing(tmp_path / "nope", wh, progress=False)
