"""The incremental landing load (issue 11, section 1): a chain of nightly loads (new files, a corrected re-export, a
late file for an old quarter, a removed file, a malformed line kept in quarantine) leaves raw with exactly the rows a
full load of the same folder gives, reading only what changed."""

from __future__ import annotations

import shutil
from pathlib import Path

import duckdb
import pytest

from ml.ingest.contract import ENTITIES
from ml.ingest.loader import load_landing

pytestmark = pytest.mark.slow

LAST_QUARTER = "2024q1"


def _raw(wh: Path) -> dict[str, list[tuple]]:
    out = {}
    with duckdb.connect(str(wh), read_only=True) as con:
        for ent in ENTITIES:
            out[ent.raw_table] = con.execute(f"select * from raw.{ent.raw_table} order by all").fetchall()
        out["landing_files"] = con.execute(
            "select system, entity, file, format, rows, bytes, rows_loaded, rows_rejected, sha256 "
            "from raw.landing_files order by file").fetchall()
        out["landing_entities"] = con.execute(
            "select system, entity, required, present, files, rows, rows_loaded, rows_rejected "
            "from raw.landing_entities order by all").fetchall()
        out["_load_rejects"] = con.execute(
            "select file, line, reason, raw_line, system, entity, source_row from raw._load_rejects order by all"
        ).fetchall()
    return out


def test_a_chain_of_incremental_loads_equals_a_full_load(small_landing: Path, tmp_path: Path) -> None:
    landing = tmp_path / "landing"
    shutil.copytree(small_landing, landing)
    parts = sorted(landing.rglob(f"*_{LAST_QUARTER}.csv"))
    assert len(parts) >= 3, "the demo writes quarterly part files"
    held = tmp_path / "held"
    held.mkdir()
    for p in parts:  # night 1: everything up to the last quarter
        shutil.move(p, held / p.name)
    transfers = sorted((landing / "logistics").glob("transfers_*.csv"))
    with open(transfers[0], "a", encoding="utf-8") as f:
        f.write("a,malformed,line\n")  # a bad line: quarantined on night 1, kept while its file does not change
    wh = tmp_path / "incremental.duckdb"
    first = load_landing(landing, wh, progress=False)
    assert first.rows_rejected == 1
    assert not any(f.reused for e in first.entities.values() for f in e.files)  # nothing to reuse yet

    # night 2: the last quarter's files arrive; nothing else is read again
    for p in parts:
        shutil.move(held / p.name, p)
    second = load_landing(landing, wh, progress=False)
    read = {f.file for e in second.entities.values() for f in e.files if not f.reused}
    assert read == {p.relative_to(landing).as_posix() for p in parts}
    assert second.rows_rejected == 1  # the unchanged file's quarantined line is still accounted for

    # night 3: a corrected re-export of an earlier quarter, a late file for an old quarter, a file withdrawn
    cogs = sorted((landing / "finance").glob("cogs_ledger_*.csv"))
    lines = transfers[1].read_text(encoding="utf-8").splitlines()
    header, body = lines[0], lines[1:]
    transfers[1].write_text("\n".join([header, *body[:-5]]) + "\n", encoding="utf-8")  # five rows corrected away
    (landing / "logistics" / "transfers_2023q2_late.csv").write_text("\n".join([header, *body[-5:]]) + "\n",
                                                                     encoding="utf-8")
    cogs[0].unlink()
    third = load_landing(landing, wh, progress=False)
    text = "\n".join(third.warnings)
    assert f"{transfers[1].relative_to(landing).as_posix()} changed after it was loaded" in text
    assert f"{cogs[0].relative_to(landing).as_posix()} was loaded before and is no longer" in text
    read = {f.file for e in third.entities.values() for f in e.files if not f.reused}
    assert read == {transfers[1].relative_to(landing).as_posix(), "logistics/transfers_2023q2_late.csv"}

    # the same folder loaded in full: identical raw tables, bookkeeping and quarantine
    full = tmp_path / "full.duckdb"
    report = load_landing(landing, full, progress=False, full_refresh=True)
    assert report.rows == third.rows and report.rows_rejected == third.rows_rejected == 1
    inc, ref = _raw(wh), _raw(full)
    for table in ref:
        assert inc[table] == ref[table], table
    # and a re-run changes nothing (every file unchanged)
    again = load_landing(landing, wh, progress=False)
    assert all(f.reused for e in again.entities.values() for f in e.files) and _raw(wh) == ref


def test_a_warehouse_from_before_checksums_gets_a_full_load(small_landing: Path, tmp_path: Path) -> None:
    wh = tmp_path / "old.duckdb"
    load_landing(small_landing, wh, progress=False)
    with duckdb.connect(str(wh)) as con:
        con.execute("alter table raw.landing_files drop column sha256")  # what an older stockturn wrote
    report = load_landing(small_landing, wh, progress=False)
    assert not any(f.reused for e in report.entities.values() for f in e.files)
    with duckdb.connect(str(wh), read_only=True) as con:
        assert con.execute("select count(*) from raw.landing_files where sha256 is null").fetchall()[0][0] == 0
