"""Hostile landing files (issue 10): what ERP exports, spreadsheets and cut-off transfers really deliver.

Every case is held to three things: no row is lost (each data record of the file is kept or quarantined: the
reconciliation's rows_in is the number of records the test wrote, rows_in = kept + quarantined and rows_unaccounted
= 0), it ends where the documented behaviour says (a quarantine reason, or kept), and the build goes on (`stockturn
build` exits 0, the marts are there) - or, for a file that is structurally ambiguous or not CSV text at all, the
build stops with one clear message naming the file (exit 2, no traceback) and the previous marts stay as they were.

Documented behaviour, per case (see also ``ml/ingest/loader.py``):

* **Very long line.** A record under DuckDB's 2 MB line limit loads whole (a 1.5 MB product name reaches
  ``dim_product``; a 1.5 MB unit price is a kept line with an ``invalid_price`` field issue); a longer one is
  quarantined as ``line_too_long`` (its text cut to 10,000 characters in ``raw._load_rejects``).
* **Truncated file.** A last record cut short so that fields are missing is ``too_few_fields``; cut inside a quoted
  value on its last line, ``bad_quoting``. Cut so that it still parses (``...,2`` of ``...,2.50``) it is kept: no
  reader can tell, so the loader warns that the file does not end with a line break and names the last data row.
  Cut inside a quoted value that already spans lines, the record is indistinguishable from an unclosed quote that
  swallowed the rest of the file: the build stops naming file and line.
* **Mixed encodings.** UTF-8 lines load; a Latin-1 / Windows-1252 line is quarantined as ``invalid_utf8`` with its
  line number, its bytes kept escaped (``caf\\xe9``) and the detail showing how it reads in Windows-1252. A file
  that is mostly Latin-1 stops the build with a hint to save it as UTF-8.
* **Duplicated contract column** (``quantity,Quantity``): ambiguous, so the build stops naming file, column and both
  positions. A duplicated column the contract does not know is just ignored twice.
* **150 extra columns** (empty names, spaces, quotes, commas, unicode, a 300-character name): loaded, the extras
  ignored and listed in ``raw.landing_files.ignored_columns`` and in one capped warning line.
* **Also:** CR-only and mixed LF/CRLF/CR line endings (read with each line break as one, with a warning), a quoted
  header, a header-only file with a trailing delimiter, padded values (kept verbatim in ``raw``, trimmed by
  staging), a NUL byte inside a value (kept verbatim: there is no reason code for it), and files that are not CSV
  text (UTF-16 with or without a byte-order mark, gzip, an .xlsx or .xls workbook, parquet, each saved as ``.csv``):
  a contract error naming each file and what it is.

Not covered here (elsewhere): NaN/inf/implausible numbers and dates (test_build_resilience.py), empty files,
semicolon files, malformed and invalid-UTF-8 lines, unclosed quotes (test_landing_loader.py).
"""

from __future__ import annotations

import csv
import gzip
import io
import shutil
import zipfile
from collections import Counter
from pathlib import Path

import duckdb

from tests.conftest import run_stockturn
from tests.test_build_resilience import mart_fingerprints

SALES_HEADER = "transaction_id,sold_at,product_id,location_id,quantity,unit_price"
LONG_OK = 1_500_000  # under DuckDB's 2,000,000-byte line limit
LONG_TOO_LONG = 3_000_000


def write_landing(landing: Path, files: dict[str, str | bytes]) -> Path:
    for rel, content in files.items():
        path = landing / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content.encode("utf-8") if isinstance(content, str) else content)
    return landing


def build(landing: Path, warehouse: Path, *, check: bool = True):
    return run_stockturn("build", "--landing", str(landing), "--warehouse", str(warehouse), "--quiet", check=check)


def query(warehouse: Path, sql: str) -> list[tuple]:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        return con.execute(sql).fetchall()


def reconciliation(warehouse: Path) -> dict[str, tuple]:
    """file -> (rows_in, kept, quarantined, unaccounted, reasons) for every landing file."""
    rows = query(warehouse, """
        select file, rows_in, coalesce(rows_kept, 0), coalesce(rows_quarantined, 0), rows_unaccounted,
               quarantine_reasons
        from marts.data_quality_reconciliation where is_present""")
    return {r[0]: tuple(r[1:]) for r in rows}


def assert_every_row_accounted_for(warehouse: Path, records_written: dict[str, int]) -> dict[str, tuple]:
    recon = reconciliation(warehouse)
    for file, n in records_written.items():
        rows_in, kept, quarantined, unaccounted, _ = recon[file]
        assert (rows_in, unaccounted) == (n, 0), (file, recon[file])
        assert kept + quarantined == rows_in, (file, recon[file])
    assert query(warehouse, "select sum(rows_unaccounted) from marts.data_quality_reconciliation") == [(0,)]
    return recon


def no_traceback(proc) -> str:
    out = proc.stdout + proc.stderr
    assert "Traceback" not in out, out
    return out


# ------------------------------------------------------------------------------------------------ one hostile build

WIDE_EXTRA = (
    [f"ERP_{i:03d}" for i in range(138)]
    + ["", "", " spaced name ", 'quo"ted', "ünïcödé 漢字", "a,b", "product name", "PRODUCT_ID_OLD", "x" * 300,
       "ERP_DUP", "ERP_DUP", "Ω"]
)


def _csv_line(values: list[str]) -> str:
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerow(values)
    return out.getvalue()


def hostile_files() -> tuple[dict[str, str | bytes], dict[str, int]]:
    """The landing of the big case, and the number of data records written per file."""
    products = (
        b"product_id,product_name,category\n"
        + "P1,Café Crème,Drinks\n".encode()  # UTF-8
        + "P2,Müller Brot,Bakery\n".encode()
        + b"P3,Caf\xe9 Cr\xe8me,Drinks\n"  # Latin-1: row 3, invalid_utf8
        + b"P4,\x93Smart\x94 Tea,Drinks\n"  # Windows-1252 smart quotes: row 4, invalid_utf8
        + b" P5 , Padded , Tools \n"  # padded: kept, trimmed by staging
        + b"P6,Wid\x00get,Tools\n"  # a NUL byte in a value: kept verbatim
        + f"P7,{'n' * LONG_OK},Tools\n".encode()  # 1.5 MB name: kept
        + f"P8,{'m' * LONG_TOO_LONG},Tools\n".encode()  # 3 MB line: row 8, line_too_long
        + b"P9,Plain,Tools\n"
    )
    wide = (
        _csv_line(["product_id", "product_name", *WIDE_EXTRA])
        + _csv_line(["P20", "Wide one", *[f"v{i}" for i in range(len(WIDE_EXTRA))]])
        + _csv_line(["P21", "Wide two", *["" for _ in WIDE_EXTRA]])
    )
    sales = (  # LF, CRLF, CR CR LF and CR line endings in one file; a 1.5 MB and a 3 MB line; the last line cut
        f"{SALES_HEADER}\n"
        "T1,2024-01-02,P1,L1,2,3.50\r\n"
        " T2 , 2024-01-02 , P5 , L1 , 3 , 1.00 \r\r\n"  # row 2: padded values, kept
        f"T3,2024-01-03,P9,L1,1,{'9' * LONG_OK}\r"  # row 3: kept, unit_price flagged invalid_price
        f"T4,2024-01-03,P1,L1,1,2.00{' ' * LONG_TOO_LONG}\n"  # row 4: line_too_long
        "T5,2024-01-03,P7,L1,1,2.00\n"
        "T6,2024-01-0"  # row 6: cut mid-field, no line break: too_few_fields
    )
    files: dict[str, str | bytes] = {
        "master/products.csv": products,
        "master/products_erp.csv": wide,
        "master/locations.csv": b'"location_id","location_name",\rL1,Main store,\rL2,"Second, store",\r',  # CR only
        "sales/sales_lines.csv": sales,
        "sales/sales_lines_cut.csv": f"{SALES_HEADER}\nT10,2024-01-04,P1,L1,1,2.00\n" + 'T11,2024-01-04,"P',
        "sales/sales_lines_short.csv": f"{SALES_HEADER}\nT20,2024-01-05,P2,L1,1,2.00\nT21,2024-01-05,P2,L1,4,2",
        "sales/promotions.csv": "promotion_id,product_id,start_date,end_date,",  # header only, trailing comma
    }
    records = {
        "master/products.csv": 9,
        "master/products_erp.csv": 2,
        "master/locations.csv": 2,
        "sales/sales_lines.csv": 6,
        "sales/sales_lines_cut.csv": 2,
        "sales/sales_lines_short.csv": 2,
    }
    return files, records


def test_hostile_files_lose_no_row_and_the_build_goes_on(tmp_path: Path) -> None:
    files, records = hostile_files()
    landing = write_landing(tmp_path / "landing", files)
    warehouse = tmp_path / "w.duckdb"
    out = no_traceback(build(landing, warehouse))

    # (1) nothing lost: every record of every file is kept or quarantined
    recon = assert_every_row_accounted_for(warehouse, records)
    assert {f: (r[1], r[2], r[4]) for f, r in recon.items() if f in records} == {
        "master/products.csv": (6, 3, "invalid_utf8: 2; line_too_long: 1"),
        "master/products_erp.csv": (2, 0, None),
        "master/locations.csv": (2, 0, None),
        "sales/sales_lines.csv": (4, 2, "line_too_long: 1; too_few_fields: 1"),
        "sales/sales_lines_cut.csv": (1, 1, "bad_quoting: 1"),
        "sales/sales_lines_short.csv": (2, 0, None),
    }
    assert query(warehouse, "select rows, ignored_columns from raw.landing_files where file = 'sales/promotions.csv'"
                 ) == [(0, [""])]

    # (2) each in its documented place
    assert query(warehouse, """
        select file, file_row, reject_reason from marts.data_quality_rejections
        where quarantine_relation = 'raw._load_rejects' order by 1, 2""") == [
        ("master/products.csv", 3, "invalid_utf8"),
        ("master/products.csv", 4, "invalid_utf8"),
        ("master/products.csv", 8, "line_too_long"),
        ("sales/sales_lines.csv", 4, "line_too_long"),
        ("sales/sales_lines.csv", 6, "too_few_fields"),
        ("sales/sales_lines_cut.csv", 2, "bad_quoting"),
    ]
    latin = query(warehouse, """
        select line, raw_line, error_message from raw._load_rejects
        where file = 'master/products.csv' and reason = 'invalid_utf8' order by line""")
    assert latin[0][:2] == (4, "P3,Caf\\xe9 Cr\\xe8me,Drinks")  # the bytes, escaped, not '?'
    assert "byte 0xe9" in latin[0][2] and "Windows-1252" in latin[0][2] and "Café Crème" in latin[0][2]
    assert latin[1][1] == "P4,\\x93Smart\\x94 Tea,Drinks" and "“Smart” Tea" in latin[1][2]
    assert query(warehouse, "select length(raw_line) from raw._load_rejects where reason = 'line_too_long'"
                 ) == [(10_000,), (10_000,)]

    products = dict(query(warehouse, "select product_id, product_name from marts.dim_product"))
    assert set(products) == {"P1", "P2", "P5", "P6", "P7", "P9", "P20", "P21"}
    assert products["P1"] == "Café Crème" and products["P5"] == "Padded"  # UTF-8 kept; padding trimmed
    assert products["P6"] == "Wid\x00get" and len(products["P7"]) == LONG_OK
    assert query(warehouse, "select product_id, product_name from raw.master__products where _source_row = 5"
                 ) == [(" P5 ", " Padded ")]  # raw keeps values verbatim
    assert query(warehouse, "select location_id, location_name from marts.dim_location order by 1") == [
        ("L1", "Main store"), ("L2", "Second, store")]

    # sales: padded values match their product and location; the 1.5 MB price is a field issue on a kept line
    assert query(warehouse, """
        select product_id, date_day::varchar, units_sold from marts.fct_sales_daily where units_sold > 0
        order by 1, 2""") == [
        ("P1", "2024-01-02", 2.0), ("P1", "2024-01-04", 1.0), ("P2", "2024-01-05", 5.0),
        ("P5", "2024-01-02", 3.0), ("P7", "2024-01-03", 1.0), ("P9", "2024-01-03", 1.0)]
    assert query(warehouse, """
        select file, file_row, field_name, issue from marts.data_quality_field_issues""") == [
        ("sales/sales_lines.csv", 3, "unit_price", "invalid_price")]

    # the extra columns are ignored and listed, every one of them; the warnings say what was odd about each file
    assert query(warehouse, "select ignored_columns from raw.landing_files where file = 'master/products_erp.csv'"
                 ) == [(WIDE_EXTRA,)]
    assert "master/products_erp.csv: 150 ignored column(s) not in the contract: ERP_000" in out
    assert "... and 130 more (raw.landing_files.ignored_columns)" in out
    assert "sales/sales_lines.csv: mixed line endings (LF and CRLF and CR)" in out
    assert "sales/sales_lines_short.csv: the file does not end with a line break" in out
    assert "last record (data row 2) may be incomplete" in out
    assert "sales/sales_lines.csv: the file does not end with a line break" in out  # ... and it was quarantined

    # (3) the build is intact
    assert query(warehouse, "select count(*) from marts.fct_inventory_turnover_monthly")[0][0] > 0


# ------------------------------------------------------------------------------------------------ structural stops

GOOD = {
    "master/products.csv": "product_id,product_name\nP1,Widget\nP2,Gadget\n",
    "master/locations.csv": "location_id\nL1\n",
    "sales/sales_lines.csv": f"{SALES_HEADER}\nT1,2024-01-02,P1,L1,2,3.50\nT2,2024-01-03,P2,L1,1,4.00\n",
}


def _xlsx() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("[Content_Types].xml", "<Types/>")
        zf.writestr("xl/worksheets/sheet1.xml", "<worksheet/>")
    return buf.getvalue()


def _parquet(tmp: Path) -> bytes:
    path = tmp / "costs.parquet"
    with duckdb.connect() as con:
        con.execute(f"copy (select 'P1' as product_id, date '2024-01-01' as valid_from, 1.5 as unit_cost) "
                    f"to '{path}' (format parquet)")
    return path.read_bytes()


def test_structural_problems_stop_the_build_with_one_message_and_keep_the_last_marts(tmp_path: Path) -> None:
    landing = write_landing(tmp_path / "landing", GOOD)
    warehouse = tmp_path / "w.duckdb"
    build(landing, warehouse)
    before = mart_fingerprints(warehouse)
    load_id = query(warehouse, "select distinct load_id from raw.landing_files")

    def stops(files: dict[str, str | bytes], *expected: str) -> str:
        trial = tmp_path / f"trial_{len(list(tmp_path.glob('trial_*')))}"
        shutil.copytree(landing, trial)
        write_landing(trial, files)
        proc = build(trial, warehouse, check=False)
        out = no_traceback(proc)
        assert proc.returncode == 2, out
        for text in expected:
            assert text in proc.stderr, (text, proc.stderr)
        assert mart_fingerprints(warehouse) == before
        assert query(warehouse, "select distinct load_id from raw.landing_files") == load_id
        return proc.stderr

    # a duplicated contract column: which one is the quantity?
    stops({"sales/sales_lines.csv": "transaction_id,sold_at,product_id,location_id,quantity,Quantity \n"
                                    "T1,2024-01-02,P1,L1,2,3\n"},
          "sales/sales_lines.csv: column 'quantity' appears more than once in the header (columns 5 'quantity' "
          "and 6 'Quantity ')", "docs/data-contract.md#sales_lines")

    # files that are not CSV text, all reported at once, each with what it is
    text = "product_id,valid_from,list_price\nP1,2024-01-01,2.5\n"
    stops({
        "sales/prices.csv": text.encode("utf-16"),  # with a byte-order mark
        "sales/promotions.csv": "promotion_id,product_id,start_date,end_date\n".encode("utf-16-le"),  # without
        "inventory/cycle_counts.csv": gzip.compress(b"count_id,count_date,product_id,location_id\n"),
        "inventory/stock_snapshots.csv": _xlsx(),
        "master/suppliers.csv": b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(504),  # a legacy .xls
        "finance/standard_costs.csv": _parquet(tmp_path),
    },
        "sales/prices.csv: the file is UTF-16 encoded (byte-order mark FF FE): save it as UTF-8",
        "sales/promotions.csv: the header line is mostly NUL bytes: the file looks UTF-16 encoded",
        "inventory/cycle_counts.csv: the file is gzip-compressed, not CSV text",
        "inventory/stock_snapshots.csv: the file is a ZIP archive (an Excel .xlsx workbook?)",
        "master/suppliers.csv: the file is a legacy Excel .xls (OLE) file",
        "finance/standard_costs.csv: the file is a Parquet file with a .csv name: rename it to .parquet",
    )

    # cut inside a quoted value that already runs over a line: the same as a quote never closed
    stops({"master/products_late.csv": 'product_id,product_name\nP7,ok\nP8,"Widget\nDeluxe edi'},
          "master/products_late.csv: malformed CSV starting at line 3", "quote that is never closed")

    # mostly Latin-1: not quarantined line by line, the file is named with a hint
    stops({"master/products_fr.csv": b"product_id,product_name\nP7,Caf\xe9\nP8,Cr\xe8me\nP9,ok\n"},
          "master/products_fr.csv: 2 of 3 records are malformed",
          "the file looks Windows-1252/Latin-1 encoded; save it as UTF-8")


# ------------------------------------------------------------------------------------------------ the full pipeline


def hostile_copy_of_the_demo(src: Path, dst: Path) -> dict[str, object]:
    """The small demo with a 10x-wide product master (and a 1 MB name, a Latin-1 line and a NUL byte in it) and a
    sales part with mixed line endings, padded values and a cut-off last line."""
    shutil.copytree(src, dst)
    path = dst / "master/products.csv"
    rows = list(csv.reader(io.StringIO(path.read_text(encoding="utf-8"), newline="")))
    header, body = rows[0], rows[1:]
    long_name = "Long name " + "z" * 1_000_000
    # on the best seller, so the report's charts label it (clipped there; the tables keep the full text)
    sold = Counter(line.split(",")[3] for part in sorted((src / "sales").glob("sales_lines*.csv"))
                   for line in part.read_text(encoding="utf-8").splitlines()[1:])
    top = next(i for i, row in enumerate(body) if row[0] == sold.most_common(1)[0][0])
    body[0], body[top] = body[top], body[0]
    body[0] = [body[0][0], long_name, *body[0][2:]]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header + WIDE_EXTRA)
    for i, row in enumerate(body):
        writer.writerow(row + [f"junk{i}-{j}" if j % 7 else "" for j in range(len(WIDE_EXTRA))])
    empty = "," * (len(header) - 2 + len(WIDE_EXTRA))
    path.write_bytes(out.getvalue().encode() + f"P09001,Caf\xe9 Cr\xe8me{empty}\n".encode("latin-1")
                     + f"P09002,Wid\x00get{empty}\n".encode())

    sales = dst / "sales/sales_lines_2024q1.csv"
    lines = sales.read_bytes().split(b"\n")[:-1]
    hostile = []
    for i, line in enumerate(lines):
        if i == 10:
            line = b",".join(b" " + v + b" " for v in line.split(b","))
        hostile.append(line + (b"\r\n" if i % 50 == 25 else b"\r\r\n" if i % 97 == 40 else b"\n"))
    hostile[-1] = hostile[-1][:20]  # the transfer was cut off
    sales.write_bytes(b"".join(hostile))
    return {"products": len(body) + 2, "sales": len(lines) - 1, "long_name": long_name, "first": body[0][0]}


def test_the_full_pipeline_runs_on_a_hostile_copy_of_the_demo(small_landing: Path, tmp_path: Path) -> None:
    landing = tmp_path / "landing"
    facts = hostile_copy_of_the_demo(small_landing, landing)
    warehouse = tmp_path / "w.duckdb"
    proc = run_stockturn("run", "--landing", str(landing), "--warehouse", str(warehouse), "--ephemeral")
    out = no_traceback(proc)
    assert "succeeded" in proc.stdout, out

    recon = assert_every_row_accounted_for(
        warehouse, {"master/products.csv": facts["products"], "sales/sales_lines_2024q1.csv": facts["sales"]})
    assert recon["master/products.csv"][2:5] == (1, 0, "invalid_utf8: 1")
    assert "too_few_fields: 1" in recon["sales/sales_lines_2024q1.csv"][4]
    assert len(query(warehouse, "select ignored_columns from raw.landing_files where file = 'master/products.csv'"
                     )[0][0]) == 150
    assert query(warehouse, f"select product_name from marts.dim_product where product_id = '{facts['first']}'"
                 ) == [(facts["long_name"],)]
    assert query(warehouse, "select count(*) from ml.inventory_policy")[0][0] > 0
    report = warehouse.parent / "report" / "report.html"
    assert report.exists() and report.stat().st_size > 0
    # a chart labels the best seller with its name clipped (the full name would stall the chart export)
    from reports.charts import MAX_TEXT

    assert '"' + facts["long_name"][: MAX_TEXT - 1] + '…"' in report.read_text(encoding="utf-8")
