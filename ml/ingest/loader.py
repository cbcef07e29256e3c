"""Load the landing folder into the warehouse's ``raw`` schema, as text, atomically.

``load_landing(landing_dir, warehouse)`` reads every entity of the landing-zone contract
(:mod:`ml.ingest.contract`) into ``raw.<system>__<name>`` of a DuckDB file. dbt staging models then type,
validate and quarantine the rows; this loader only checks what it must to load safely:

* **Discovery.** An entity ``<system>/<name>`` is read from ``<system>/<name>.csv|.parquet``, from parts
  ``<system>/<name>_*.csv|.parquet`` and from a folder of parts ``<system>/<name>/*.csv|*.parquet`` (extension
  case-insensitive, file names case-sensitive, folders not searched recursively). When a file name fits several
  entities, an exact name beats a part, and a longer entity name beats a shorter one. All files of an entity are
  read in sorted order of their path. Every other file under the landing root is reported as *ignored*.
* **Header checks, before anything is written.** Header names are matched to contract columns case-insensitively
  after trimming whitespace. A missing *required* column, a duplicated column or a header that is not
  comma-separated stops the load (:class:`LandingContractError`, naming file, column and the section of
  ``docs/data-contract.md``). A missing optional column is loaded as NULL, an extra column is ignored; both are
  reported. A required entity without any file stops the load; an optional one gets an empty raw table. An
  empty file (0 bytes, or only a byte-order mark and blank lines: what a nightly export writes on a day without
  rows) counts as zero rows with a warning; only a required entity whose every file is empty stops the load.
* **Everything is text.** CSV is parsed without type sniffing (every column VARCHAR); parquet columns are cast to
  VARCHAR (dates and timestamps become ISO text). Values are not trimmed or changed, with one exception:
  **an empty field is NULL** - in CSV both ``,,`` and ``,"",`` (DuckDB's default), and in parquet an empty string
  is turned into NULL too, so "blank" has one representation in ``raw``.
* **Files that are not CSV text** stop the load with a message naming the file and what it is: gzip, a ZIP (an
  .xlsx workbook), a legacy .xls, parquet saved as ``.csv``, UTF-16/UTF-32 (with a byte-order mark, or a header of
  every-other-byte NULs). A duplicated column the contract knows (``quantity,Quantity``) is ambiguous and stops the
  load too, naming both positions; unknown columns, duplicated or oddly named (empty, padded, unicode), are ignored.
* **Malformed CSV lines are quarantined, not lost.** DuckDB's ``read_csv(store_rejects=true)`` skips records with
  too many or too few fields, or invalid UTF-8, or longer than its 2 MB line limit, and records them; they are
  written to ``raw._load_rejects`` with file, line, reason and the raw text (cut at 10,000 characters; for a line
  that is not UTF-8, its bytes with ``\\xNN`` escapes, and a message showing how it reads in Windows-1252, the usual
  other encoding in a file that mixes them), and count towards the file's ``rows``. The load stops instead (clear
  error naming file and line) when a record could swallow following lines (an unclosed quote: a rejected record that
  spans several physical lines - also what a file cut inside a multi-line quoted value looks like), when a file
  looks mis-formatted as a whole (more than half of its records rejected, or more than ``max_rejected_lines``; with
  a hint when most of them are not UTF-8), or for any rejected line when ``bad_lines="error"``.
* **Line endings.** LF, CRLF and CR-only files load as they are. A file that mixes them (DuckDB's strict parser
  stops at the first line break of another kind) is read from a temporary copy with every run of line breaks as
  one LF (also inside quoted values), with a warning. A file that does not end with a line break gets a warning
  naming its last data row: an export cut off mid-record is quarantined when fields are missing, but a record cut
  inside its last field (``2`` of ``2.50``) cannot be told from a whole one.
* **Row provenance.** Each raw table ends with ``_source_file`` (path relative to the landing root, posix) and
  ``_source_row`` (1-based data-record number within that file, header not counted). For CSV it is derived from
  DuckDB's insertion-order-preserving read into a staging table (``rowid``), shifted past rejected records, so
  ``_source_row`` of a kept row and ``source_row`` of a rejected one number the same sequence of records; for
  parquet it is ``file_row_number + 1``. Blank lines in a CSV are skipped by the reader and not numbered (a
  blank line in a one-column file is a row with a NULL value); only in a file that has both blank lines and
  rejected records can the reject numbers (DuckDB counts blank lines) run ahead of the kept rows' numbers - they
  stay unique either way.
* **Atomic.** Every file is first parsed into connection-local temporary staging tables; only then are all raw
  tables and the bookkeeping tables replaced inside one transaction. Any failure leaves the previous raw tables
  untouched.
* **Incremental.** A nightly export adds files (``sales_lines_2024-06-02.csv`` ...); only those are read.
  ``raw.landing_files`` keeps each loaded file's SHA-256. On the next load a file with the same path, entity and
  checksum is not read again (its rows stay in raw, its counts come from the bookkeeping); a new file is read and
  appended; a file whose checksum changed after it was loaded (a corrected re-export) has its rows replaced, and
  one that disappeared has its rows removed, each with a warning naming it. The raw tables end up with the same
  rows as a full load of the same folder (``tests/test_incremental_load.py``). A load from before checksums were
  kept, or a raw table whose columns are not the contract's, gets a full load; ``full_refresh=True``
  (``stockturn build/run --full-refresh``) forces one. Warnings about a file as a whole (line endings, a missing
  last line break) are given when the file is read, not repeated for an unchanged file.
* **One build at a time.** The loader opens the warehouse with ``ml.warehouse.open_duckdb(claim=True)``: the process
  keeps a claim on the warehouse after the load (until it exits, or ``ml.warehouse.release_warehouse``), so another
  process waiting for the warehouse cannot slip in between the load and the dbt build that follows it. A failed
  load gives the claim up.

Bookkeeping tables (always created): ``raw.landing_files``, ``raw.landing_entities``, ``raw._load_rejects``.
``load_id`` is a hash of the loaded files' relative paths, sizes and modification times, so loading the same files
again gives the same id (and identical raw tables).
"""

from __future__ import annotations

import csv
import hashlib
import io
import logging
import os
import tempfile
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

import duckdb

from ml.ingest.contract import ENTITIES, Entity

log = logging.getLogger("stockturn.ingest")

RAW_SCHEMA = "raw"
SOURCE_FILE_COLUMN = "_source_file"
SOURCE_ROW_COLUMN = "_source_row"
FORMATS = {".csv": "csv", ".parquet": "parquet"}
CONTRACT_DOC = "docs/data-contract.md"

#: Environment variable for DuckDB's memory_limit during the load (default below).
MEMORY_LIMIT_ENV = "STOCKTURN_DUCKDB_MEMORY_LIMIT"
DEFAULT_MEMORY_LIMIT = "6GB"

#: DuckDB error types of ``read_csv`` rejects -> reason codes in ``raw._load_rejects``.
_REJECT_REASONS = {
    "MISSING COLUMNS": "too_few_fields",
    "TOO MANY COLUMNS": "too_many_fields",
    "UNQUOTED VALUE": "bad_quoting",
    "INVALID ENCODING": "invalid_utf8",
    "INVALID UNICODE": "invalid_utf8",
    "LINE SIZE OVER MAXIMUM": "line_too_long",
}


class LandingContractError(ValueError):
    """The landing folder does not meet the contract (missing file or column, unreadable CSV ...)."""


# --------------------------------------------------------------------------------------------- report objects


@dataclass
class FileLoad:
    """One landing file and what was loaded from it."""

    system: str
    entity: str
    file: str  # relative to the landing root, posix style
    format: str  # 'csv' | 'parquet'
    bytes: int
    modified_at: datetime  # UTC, naive
    rows: int = 0  # records in the file = rows_loaded + rows_rejected
    rows_loaded: int = 0
    rows_rejected: int = 0
    missing_optional_columns: list[str] = field(default_factory=list)
    ignored_columns: list[str] = field(default_factory=list)
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)  # warnings about the file as a whole (line endings, last line)
    sha256: str = ""  # checksum of the file's bytes: an unchanged file is not read again (incremental load)
    reused: bool = False  # its rows were already in raw from an earlier load with the same checksum


@dataclass
class EntityLoad:
    """One contract entity: its files, rows and warnings."""

    system: str
    name: str
    raw_table: str  # schema-qualified, e.g. raw.sales__sales_lines
    required: bool
    files: list[FileLoad] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def present(self) -> bool:
        return bool(self.files)

    @property
    def path(self) -> str:
        return f"{self.system}/{self.name}"

    @property
    def rows(self) -> int:
        return sum(f.rows for f in self.files)

    @property
    def rows_loaded(self) -> int:
        return sum(f.rows_loaded for f in self.files)

    @property
    def rows_rejected(self) -> int:
        return sum(f.rows_rejected for f in self.files)

    @property
    def missing_optional_columns(self) -> list[str]:
        """Optional columns missing from at least one file, in contract order."""
        return _union_ordered(f.missing_optional_columns for f in self.files)

    @property
    def ignored_columns(self) -> list[str]:
        return _union_ordered(f.ignored_columns for f in self.files)


@dataclass
class LoadReport:
    landing_dir: Path
    warehouse: Path
    load_id: str
    entities: dict[str, EntityLoad]  # by entity name, contract order
    ignored_files: list[str]
    warnings: list[str]
    elapsed_seconds: float

    @property
    def files(self) -> list[FileLoad]:
        return [f for e in self.entities.values() for f in e.files]

    @property
    def rows(self) -> int:
        return sum(e.rows for e in self.entities.values())

    @property
    def rows_loaded(self) -> int:
        return sum(e.rows_loaded for e in self.entities.values())

    @property
    def rows_rejected(self) -> int:
        return sum(e.rows_rejected for e in self.entities.values())

    def entity(self, name: str) -> EntityLoad:
        return self.entities[name]

    def format(self) -> str:
        """A human-readable summary (thousands separators)."""
        lines = [
            f"Landing load {self.load_id}: {self.landing_dir} -> {self.warehouse} ({self.elapsed_seconds:,.1f} s)",
            f"  {'entity':<34} {'files':>5} {'rows':>14} {'rejected':>10}  status",
        ]
        for e in self.entities.values():
            status = "loaded" if e.present else "absent (empty table)"
            lines.append(f"  {e.path:<34} {len(e.files):>5,} {e.rows:>14,} {e.rows_rejected:>10,}  {status}")
        lines.append(
            f"  {'total':<34} {len(self.files):>5,} {self.rows:>14,} {self.rows_rejected:>10,}"
            + (f"  ({self.rows / self.elapsed_seconds:,.0f} rows/s)" if self.elapsed_seconds > 0 else "")
        )
        reused = sum(f.reused for f in self.files)
        if reused:
            lines.append(f"  incremental: {reused:,} of {len(self.files):,} files unchanged since the last load were "
                         "not read again (--full-refresh reads every file)")
        if self.ignored_files:
            lines.append(f"Ignored files ({len(self.ignored_files):,}, match no contract entity):")
            lines.extend(f"  - {f}" for f in self.ignored_files)
        if self.warnings:
            lines.append(f"Warnings ({len(self.warnings):,}):")
            lines.extend(f"  - {w}" for w in self.warnings)
        return "\n".join(lines)

    def __str__(self) -> str:  # pragma: no cover - convenience
        return self.format()


def _column_list(names: Sequence[str], limit: int = 20) -> str:
    """Header names for a message: odd ones (empty, padded, with a comma or quote) quoted, at most ``limit``."""
    shown = [repr(n) if not n.strip() or n != n.strip() or any(c in n for c in ',"\'') else n for n in names[:limit]]
    more = f" ... and {len(names) - limit:,} more (raw.landing_files.ignored_columns)" if len(names) > limit else ""
    return ", ".join(shown) + more


def _header_names(header: Sequence[str], limit: int = 30) -> str:
    """A header for an error message: each name quoted (cut at 60 characters), at most ``limit`` of them."""
    names = [repr(h if len(h) <= 60 else h[:60] + "...") for h in header[:limit]]
    return ", ".join(names) + (f" ... ({len(header):,} columns)" if len(header) > limit else "")


def _union_ordered(lists: Iterable[Iterable[str]]) -> list[str]:
    return list(dict.fromkeys(c for cols in lists for c in cols))


# --------------------------------------------------------------------------------------------- discovery


@dataclass
class Discovery:
    """Which landing files belong to which entity, and which match none."""

    files: dict[str, list[Path]]  # entity name -> sorted absolute paths
    ignored: list[str]  # relative posix paths


def _match_entity(rel_parts: tuple[str, ...], entities: Sequence[Entity]) -> Entity | None:
    """The entity a landing file (relative path parts) belongs to, or None."""
    if len(rel_parts) not in (2, 3):
        return None
    name = rel_parts[-1]
    stem, dot, ext = name.rpartition(".")
    if not dot or f".{ext.lower()}" not in FORMATS or not stem:
        return None
    best: tuple[int, int, Entity] | None = None  # (exact?, len(name), entity)
    for ent in entities:
        if rel_parts[0] != ent.system:
            continue
        if len(rel_parts) == 3:  # <system>/<name>/<part>
            exact = rel_parts[1] == ent.name
            if not exact:
                continue
        else:
            exact = stem == ent.name
            if not exact and not stem.startswith(ent.name + "_"):
                continue
        cand = (int(exact), len(ent.name), ent)
        if best is None or cand[:2] > best[:2]:
            best = cand
    return best[2] if best else None


def discover_landing(landing_dir: Path, entities: Sequence[Entity] = ENTITIES) -> Discovery:
    """Assign every file under ``landing_dir`` to a contract entity (see module docstring for the rules)."""
    landing_dir = Path(landing_dir)
    if not landing_dir.is_dir():
        raise LandingContractError(f"landing folder {landing_dir} does not exist or is not a folder")
    files: dict[str, list[Path]] = {e.name: [] for e in entities}
    ignored: list[str] = []
    for path in sorted(p for p in landing_dir.rglob("*") if p.is_file()):
        rel = path.relative_to(landing_dir)
        ent = _match_entity(rel.parts, entities)
        if ent is None:
            ignored.append(rel.as_posix())
        else:
            files[ent.name].append(path)
    for name in files:
        files[name].sort(key=lambda p: p.relative_to(landing_dir).as_posix())
    return Discovery(files=files, ignored=ignored)


def _expected_paths(ent: Entity) -> str:
    s, n = ent.system, ent.name
    return f"{s}/{n}.csv, {s}/{n}.parquet, {s}/{n}_*.csv|.parquet or {s}/{n}/*.csv|*.parquet"


def _doc_ref(ent: Entity) -> str:
    return f"{CONTRACT_DOC}#{ent.name}"


def compute_load_id(landing_dir: Path, paths: Iterable[Path]) -> str:
    """Deterministic id of a set of landing files: hash of relative path, size and mtime (ns) of each."""
    h = hashlib.sha256()
    for p in sorted(paths, key=lambda p: p.relative_to(landing_dir).as_posix()):
        st = p.stat()
        h.update(f"{p.relative_to(landing_dir).as_posix()}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:16]


# --------------------------------------------------------------------------------------------- header checks


@dataclass
class _FilePlan:
    entity: Entity
    path: Path
    rel: str
    format: str
    header: list[str]  # names as in the file
    positions: dict[str, int]  # contract column -> position in file
    load: FileLoad
    stage_table: str = ""
    select_sql: str = ""  # SELECT producing the raw layout from the stage table


def _is_empty_file(path: Path) -> bool:
    """No bytes at all, or only a byte-order mark and line breaks / blanks (what exporters write for "no rows")."""
    size = path.stat().st_size
    if size == 0:
        return True
    if size > 64:
        return False
    return not path.read_bytes().replace(b"\xef\xbb\xbf", b"").strip()


#: What a file that is not CSV text starts with -> what it is and what to do (a ``.csv`` an ERP or a user saved wrong).
_NOT_CSV_SIGNATURES = (
    (b"\x1f\x8b", "gzip-compressed, not CSV text: decompress it (landing files are plain .csv or .parquet)"),
    (b"PK\x03\x04", "a ZIP archive (an Excel .xlsx workbook?), not CSV text: export the sheet as CSV UTF-8"),
    (b"\xd0\xcf\x11\xe0", "a legacy Excel .xls (OLE) file, not CSV text: export the sheet as CSV UTF-8"),
    (b"PAR1", "a Parquet file with a .csv name: rename it to .parquet"),
    (b"\xff\xfe\x00\x00", "UTF-32 encoded (byte-order mark FF FE 00 00): save it as UTF-8"),
    (b"\xff\xfe", "UTF-16 encoded (byte-order mark FF FE): save it as UTF-8 (in Excel: CSV UTF-8)"),
    (b"\xfe\xff", "UTF-16 encoded (byte-order mark FE FF): save it as UTF-8 (in Excel: CSV UTF-8)"),
)


def _not_csv_text(head: bytes, path: Path) -> str | None:
    """Why a file whose first bytes are ``head`` is not UTF-8 CSV text at all, or None."""
    for signature, what in _NOT_CSV_SIGNATURES:
        if head.startswith(signature):
            if signature == b"PAR1":  # a parquet file also ends with PAR1 (a CSV header could start with it)
                with path.open("rb") as fh:
                    fh.seek(max(path.stat().st_size - 4, 0))
                    if fh.read(4) != b"PAR1":
                        continue
            return f"the file is {what}"
    first_line = head.split(b"\n", 1)[0]
    if b"\x00" in first_line:
        zeros = first_line.count(b"\x00")
        if zeros * 3 >= len(first_line):  # every other byte: UTF-16 without a byte-order mark
            return "the header line is mostly NUL bytes: the file looks UTF-16 encoded; save it as UTF-8"
        return "the header line contains NUL bytes: the file looks binary or damaged, not UTF-8 CSV text"
    return None


def _read_csv_header(path: Path, rel: str, ent: Entity) -> list[str]:
    """The header record only (read as bytes, so a bad byte further down is left to the row-level checks)."""
    with path.open("rb") as fh:
        problem = _not_csv_text(fh.read(4096), path)  # before reading "lines" of a binary file
        if problem:
            raise LandingContractError(f"{rel}: {problem}. See {_doc_ref(ent)}")
        fh.seek(0)
        raw = fh.readline(1 << 20)
        while raw.count(b'"') % 2 == 1 and len(raw) < 1 << 20:  # a quoted header name containing a newline
            more = fh.readline(1 << 20)
            if not more:
                break
            raw += more
    if not raw.strip(b"\r\n\xef\xbb\xbf"):
        raise LandingContractError(
            f"{rel}: the file is empty (no header row). Write at least the header line "
            f"({', '.join(c.name for c in ent.columns)}). See {_doc_ref(ent)}"
        )
    # only the first record must be UTF-8: with CR-only line endings readline() returned more than the header
    text = raw.removeprefix(b"\xef\xbb\xbf").decode("utf-8", "surrogateescape")
    try:
        header = next(csv.reader(io.StringIO(text, newline="")))
    except (csv.Error, StopIteration) as exc:
        raise LandingContractError(f"{rel}: cannot parse the header line: {exc}. See {_doc_ref(ent)}") from None
    for name in header:
        bad = next((i for i, ch in enumerate(name) if "\udc80" <= ch <= "\udcff"), None)
        if bad is not None:
            byte = ord(name[bad]) - 0xDC00
            raise LandingContractError(
                f"{rel}: the header line is not valid UTF-8 (byte 0x{byte:02x} in column name "
                f"{name.encode('utf-8', 'surrogateescape').decode('utf-8', 'backslashreplace')!r}); "
                f"save the file as UTF-8. See {_doc_ref(ent)}"
            )
    return header


def _parquet_header(con: duckdb.DuckDBPyConnection, path: Path, rel: str, ent: Entity) -> list[str]:
    try:
        rows = con.execute("DESCRIBE SELECT * FROM read_parquet(?)", [str(path)]).fetchall()
    except duckdb.Error as exc:
        raise LandingContractError(f"{rel}: not a readable parquet file: {_short(exc)}") from None
    return [r[0] for r in rows]


def _match_header(ent: Entity, rel: str, header: list[str], load: FileLoad) -> tuple[dict[str, int], list[str]]:
    """Map contract columns to header positions. Returns (positions, problems)."""
    problems: list[str] = []
    wanted = {c.name.lower(): c.name for c in ent.columns}
    positions: dict[str, int] = {}
    for i, raw_name in enumerate(header):
        key = raw_name.strip().lower()
        if key in wanted:
            col = wanted[key]
            if col in positions:
                first = positions[col]
                problems.append(
                    f"{rel}: column {col!r} appears more than once in the header (columns {first + 1} "
                    f"{header[first]!r} and {i + 1} {raw_name!r}): which one holds the data is ambiguous; "
                    f"remove or rename one. See {_doc_ref(ent)}"
                )
            else:
                positions[col] = i
        else:
            load.ignored_columns.append(raw_name)
    missing_required = [c.name for c in ent.columns if c.required and c.name not in positions]
    if missing_required:
        hint = ""
        if len(header) == 1 and any(d in header[0] for d in ";\t|"):
            delim = next(d for d in ";\t|" if d in header[0])
            hint = (
                f" The header looks {'tab' if delim == chr(9) else repr(delim)}-separated; "
                "the contract requires comma-separated CSV."
            )
        problems.append(
            f"{rel}: missing required column(s) {', '.join(missing_required)} "
            f"(header has: {_header_names(header) or 'nothing'}).{hint} "
            f"See {_doc_ref(ent)}"
        )
    load.missing_optional_columns = [c.name for c in ent.columns if not c.required and c.name not in positions]
    return positions, problems


# --------------------------------------------------------------------------------------------- loading


def _short(exc: BaseException, limit: int = 600) -> str:
    """First meaningful lines of a DuckDB error, without its long parser-settings dump."""
    text = str(exc).strip()
    for marker in ("\n\n  file =", "\nPossible fixes:", "\nPossible Solution:"):
        text = text.split(marker)[0]
    return text if len(text) <= limit else text[:limit] + " ..."


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _lit(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _stage_csv(
    con: duckdb.DuckDBPyConnection,
    plan: _FilePlan,
    idx: int,
    *,
    bad_lines: str,
    max_rejected_lines: int | None,
    scratch: Path,
) -> list[tuple]:
    """Parse one CSV into a temp staging table; return its rejected records. Raises on fatal problems.

    ``scratch``: a folder for a normalised copy of a file with mixed line endings (removed once it is staged)."""
    ent, rel = plan.entity, plan.rel
    stage, rej, scan = f"_stage_{idx}", f"_rej_{idx}", f"_rejscan_{idx}"
    cols = "{" + ", ".join(f"'c{i}': 'VARCHAR'" for i in range(len(plan.header))) + "}"
    sql = (
        f"CREATE OR REPLACE TEMP TABLE {stage} AS SELECT * FROM read_csv(?, columns={cols}, header=true, "
        "auto_detect=false, delim=',', quote='\"', escape='\"', strict_mode=true, encoding='utf-8', "
        f"store_rejects=true, rejects_table='{rej}', rejects_scan='{scan}', rejects_limit=0)"
    )
    read_path = plan.path
    try:
        con.execute(sql, [str(read_path)])
    except duckdb.Error as exc:
        endings = _line_endings(plan.path) if _MIXED_EOL_ERROR in str(exc) else []
        if len(endings) < 2:
            raise LandingContractError(f"{rel}: cannot be read as CSV: {_short(exc)}. See {_doc_ref(ent)}") from None
        # DuckDB's strict parser stops at the first line ending of another kind: read a copy with one kind
        read_path = _normalised_copy(plan.path, scratch, idx)
        plan.load.notes.append(
            f"{rel}: mixed line endings ({' and '.join(endings)}): read with each line break as one "
            "(also inside quoted values)"
        )
        try:
            con.execute(sql, [str(read_path)])
        except duckdb.Error as exc2:
            raise LandingContractError(
                f"{rel}: cannot be read as CSV: {_short(exc2)}. See {_doc_ref(ent)}"
            ) from None
    # one row per rejected record (a record may carry several errors; DuckDB reports a short record once per
    # missing column: keep the first of those messages)
    rejects = con.execute(
        f"SELECT line, string_agg(error_type, '; ' ORDER BY error_type), any_value(csv_line), "
        f"string_agg(message, '; ' ORDER BY error_type), min(line_byte_position) FROM ("
        f"  SELECT line, error_type, any_value(csv_line) AS csv_line, "
        f"  arg_min(error_message, coalesce(column_idx, 0)) AS message, min(line_byte_position) AS line_byte_position"
        f"  FROM {rej} GROUP BY line, error_type"
        f") GROUP BY line ORDER BY line"
    ).fetchall()
    con.execute(f"DROP TABLE IF EXISTS {rej}")
    con.execute(f"DROP TABLE IF EXISTS {scan}")
    # a line that is not UTF-8: DuckDB's copy of it has '?' for the bad bytes; keep the bytes (escaped) and show how
    # the line reads in Windows-1252/Latin-1, the usual culprit in a file that mixes encodings
    rejects = [
        _with_original_bytes(read_path, r) if "INVALID ENCODING" in r[1] or "INVALID UNICODE" in r[1] else r
        for r in rejects
    ]
    rejects = [r[:4] for r in rejects]
    if read_path != plan.path:
        read_path.unlink(missing_ok=True)
    accepted = con.execute(f"SELECT count(*) FROM {stage}").fetchone()[0]
    plan.stage_table = stage
    n_rej = len(rejects)
    total = accepted + n_rej

    def where(r: tuple) -> str:
        text = (r[2] or "").rstrip("\r\n")
        text = text if len(text) <= 200 else text[:200] + " ..."
        return f"line {r[0]:,} ({r[3]}): {text!r}"

    if n_rej:
        spanning = [r for r in rejects if "\n" in (r[2] or "").rstrip("\r\n")]
        if spanning:
            raise LandingContractError(
                f"{rel}: malformed CSV starting at {where(spanning[0])}. The record runs over several lines, "
                "which usually means a quote that is never closed; the following lines cannot be read reliably. "
                f'Fix the quoting (a literal quote inside a quoted field is written ""). See {_doc_ref(ent)}'
            )
        if bad_lines == "error":
            raise LandingContractError(
                f"{rel}: {n_rej:,} malformed CSV record(s); first at {where(rejects[0])}. See {_doc_ref(ent)}"
            )
        if 2 * n_rej > total or (max_rejected_lines is not None and n_rej > max_rejected_lines):
            not_utf8 = sum("INVALID" in r[1] for r in rejects)
            hint = (
                " Most of them are not UTF-8: the file looks Windows-1252/Latin-1 encoded; save it as UTF-8."
                if 2 * not_utf8 > n_rej else ""
            )
            raise LandingContractError(
                f"{rel}: {n_rej:,} of {total:,} records are malformed (first at {where(rejects[0])}); "
                "the file as a whole does not look like comma-separated UTF-8 CSV with "
                f"{len(plan.header)} columns as its header says.{hint} See {_doc_ref(ent)}"
            )
    # data-record number of each kept row: its ordinal k shifted past the rejected records before it
    # (rejected data rows r_1 < r_2 < ...; kept rows before r_j: r_j - j; k comes after r_j iff k > r_j - j)
    base = con.execute(f"SELECT coalesce(min(rowid), 0) FROM {stage}").fetchone()[0]
    ordinal = f"(s.rowid - {base} + 1)"
    if n_rej:
        shift = f"_shift_{idx}"
        # kept_before -> number of rejects up to and including the last reject with that many kept rows before it
        shifts: dict[int, int] = {}
        for j, r in enumerate(rejects, start=1):
            shifts[r[0] - 1 - j] = j
        con.execute(f"CREATE OR REPLACE TEMP TABLE {shift} (kept_before BIGINT PRIMARY KEY, shift BIGINT)")
        con.executemany(f"INSERT INTO {shift} VALUES (?, ?)", list(shifts.items()))
        source_row = f"{ordinal} + coalesce(sh.shift, 0)"
        from_sql = (
            f"FROM {stage} s ASOF LEFT JOIN {shift} sh ON {ordinal} > sh.kept_before ORDER BY {SOURCE_ROW_COLUMN}"
        )
    else:
        source_row = ordinal
        from_sql = f"FROM {stage} s"
    exprs = [
        f"s.c{plan.positions[c.name]}" if c.name in plan.positions else "CAST(NULL AS VARCHAR)" for c in ent.columns
    ]
    plan.select_sql = (
        f"SELECT {', '.join(f'{e} AS {_q(c.name)}' for e, c in zip(exprs, ent.columns, strict=True))}, "
        f"{_lit(rel)} AS {SOURCE_FILE_COLUMN}, CAST({source_row} AS BIGINT) AS {SOURCE_ROW_COLUMN} {from_sql}"
    )
    plan.load.rows_loaded = accepted
    plan.load.rows_rejected = n_rej
    plan.load.rows = total
    if total and not _ends_with_line_break(plan.path):
        plan.load.notes.append(
            f"{rel}: the file does not end with a line break: if the export was cut off, its last record "
            f"(data row {total:,}{', quarantined' if rejects and rejects[-1][0] - 1 >= total else ''}) "
            "may be incomplete"
        )
    return [(rel, r[0], r[1], r[2], r[3]) for r in rejects]


#: DuckDB's error for a line ending of another kind than the file's first one (strict mode)
_MIXED_EOL_ERROR = "state machine reached an invalid state"


def _line_endings(path: Path) -> list[str]:
    """The kinds of line break in a file: some of 'LF', 'CRLF', 'CR' (quoted ones included)."""
    lf = crlf = cr = 0
    carry = b""
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 24):
            data = carry + chunk
            carry = b""
            if data.endswith(b"\r"):
                carry, data = b"\r", data[:-1]
            pairs = data.count(b"\r\n")
            crlf += pairs
            cr += data.count(b"\r") - pairs
            lf += data.count(b"\n") - pairs
    cr += len(carry)
    return [name for name, n in (("LF", lf), ("CRLF", crlf), ("CR", cr)) if n]


def _normalised_copy(path: Path, scratch: Path, idx: int) -> Path:
    """A copy of ``path`` in ``scratch`` with every run of line breaks of any kind (LF, CRLF, CR, CR CR LF) as LF."""
    import re

    out = scratch / f"eol_{idx}.csv"
    pattern = re.compile(rb"\r+\n?")
    carry = b""
    with path.open("rb") as src, out.open("wb") as dst:
        while chunk := src.read(1 << 24):
            data = carry + chunk
            carry = b""
            if data.endswith(b"\r"):  # a CR LF split over two chunks
                stripped = data.rstrip(b"\r")
                carry, data = data[len(stripped):], stripped
            dst.write(pattern.sub(b"\n", data))
        dst.write(pattern.sub(b"\n", carry))
    return out


def _ends_with_line_break(path: Path) -> bool:
    with path.open("rb") as fh:
        fh.seek(-1, os.SEEK_END)
        return fh.read(1) in (b"\n", b"\r")


def _with_original_bytes(path: Path, reject: tuple) -> tuple:
    """A rejected not-UTF-8 line with its bytes as read from the file: raw text with ``\\xNN`` escapes, and a
    message naming the first bad byte and the line as Windows-1252 reads it."""
    line, types, csv_line, message, pos = reject
    if pos is None or "\n" in (csv_line or "").rstrip("\r\n"):  # a record over several lines: leave it as is
        return reject
    try:
        with path.open("rb") as fh:
            start = max(pos - 4, 0)  # DuckDB's position is the line start or one byte after it
            fh.seek(start)
            buf = fh.read(pos - start + 10_000)
    except OSError:
        return reject
    line_start = max(buf.rfind(b"\n", 0, pos - start), buf.rfind(b"\r", 0, pos - start)) + 1
    ends = [i for i in (buf.find(b"\n", line_start), buf.find(b"\r", line_start)) if i >= 0]
    raw = buf[line_start:min(ends)] if ends else buf[line_start:]
    try:
        raw.decode("utf-8")
        return reject  # not this line after all: keep DuckDB's account
    except UnicodeDecodeError as exc:
        bad = f"byte 0x{raw[exc.start]:02x} at position {exc.start + 1} of the line"
    latin = raw.decode("cp1252", "replace")
    latin = latin if len(latin) <= 200 else latin[:200] + " ..."
    text = raw.decode("utf-8", "backslashreplace")
    return (line, types, text, f"not valid UTF-8 ({bad}); as Windows-1252 the line reads {latin!r}", pos)


def _stage_parquet(con: duckdb.DuckDBPyConnection, plan: _FilePlan, idx: int) -> None:
    ent, rel = plan.entity, plan.rel
    stage = f"_stage_{idx}"
    exprs = []
    for c in ent.columns:
        if c.name in plan.positions:
            src = _q(plan.header[plan.positions[c.name]])
            exprs.append(f"NULLIF(CAST({src} AS VARCHAR), '') AS {_q(c.name)}")
        else:
            exprs.append(f"CAST(NULL AS VARCHAR) AS {_q(c.name)}")
    sql = (
        f"CREATE OR REPLACE TEMP TABLE {stage} AS SELECT {', '.join(exprs)}, {_lit(rel)} AS {SOURCE_FILE_COLUMN}, "
        f"CAST(file_row_number + 1 AS BIGINT) AS {SOURCE_ROW_COLUMN} "
        "FROM read_parquet(?, file_row_number=true)"
    )
    try:
        con.execute(sql, [str(plan.path)])
    except duckdb.Error as exc:
        raise LandingContractError(f"{rel}: cannot read parquet: {_short(exc)}. See {_doc_ref(ent)}") from None
    plan.stage_table = stage
    plan.select_sql = f"SELECT * FROM {stage}"
    n = con.execute(f"SELECT count(*) FROM {stage}").fetchone()[0]
    plan.load.rows = plan.load.rows_loaded = n


def _reject_reason(duckdb_error_type: str) -> str:
    return _REJECT_REASONS.get(duckdb_error_type, duckdb_error_type.lower().replace(" ", "_"))


def _raw_table_ddl(ent: Entity) -> str:
    cols = [f"{_q(c.name)} VARCHAR" for c in ent.columns]
    cols += [f"{SOURCE_FILE_COLUMN} VARCHAR", f"{SOURCE_ROW_COLUMN} BIGINT"]
    return f"CREATE OR REPLACE TABLE {RAW_SCHEMA}.{ent.raw_table} ({', '.join(cols)})"


_BOOKKEEPING_DDL = {
    "landing_files": (
        "system VARCHAR, entity VARCHAR, file VARCHAR, format VARCHAR, rows BIGINT, bytes BIGINT, "
        "modified_at TIMESTAMP, load_id VARCHAR, rows_loaded BIGINT, rows_rejected BIGINT, "
        "missing_optional_columns VARCHAR[], ignored_columns VARCHAR[], sha256 VARCHAR"
    ),
    "landing_entities": (
        "system VARCHAR, entity VARCHAR, required BOOLEAN, present BOOLEAN, files INTEGER, rows BIGINT, "
        "missing_optional_columns VARCHAR[], ignored_columns VARCHAR[], load_id VARCHAR, raw_table VARCHAR, "
        "rows_loaded BIGINT, rows_rejected BIGINT"
    ),
    "_load_rejects": (
        "file VARCHAR, line BIGINT, reason VARCHAR, raw_line VARCHAR, system VARCHAR, entity VARCHAR, "
        "source_row BIGINT, error_message VARCHAR, load_id VARCHAR"
    ),
}


def _connect(warehouse: Path) -> duckdb.DuckDBPyConnection:
    from ml.warehouse import open_duckdb

    warehouse.parent.mkdir(parents=True, exist_ok=True)
    try:
        # another writer: waits (--wait-for-warehouse), then WarehouseBusyError; the claim lasts until the process
        # exits, so no other process gets in between this load and the dbt build (and planning) that follow it
        con = open_duckdb(warehouse, claim=True)
    except duckdb.IOException as exc:
        raise RuntimeError(
            f"cannot open the warehouse {warehouse} for writing: {_short(exc)}. DuckDB allows one writing "
            "process: stop the other process (dbt, Dagster, a notebook) that holds it, then load again."
        ) from exc
    con.execute(f"SET memory_limit = {_lit(os.environ.get(MEMORY_LIMIT_ENV, DEFAULT_MEMORY_LIMIT))}")
    con.execute(f"SET threads = {max(1, os.cpu_count() or 1)}")
    con.execute("SET preserve_insertion_order = true")
    return con


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _previous_load(con: duckdb.DuckDBPyConnection) -> dict[str, dict] | None:
    """The files of the last load (path -> its ``raw.landing_files`` row), or None when a full load is needed: no
    earlier load, one from before checksums were kept, or a raw table whose columns are not the contract's (the
    contract changed)."""
    def columns(table: str) -> list[str]:
        return [r[0] for r in con.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_schema = ? AND table_name = ? "
            "ORDER BY ordinal_position", [RAW_SCHEMA, table]).fetchall()]

    have = columns("landing_files")
    if "sha256" not in have or not columns("_load_rejects"):
        return None
    for ent in ENTITIES:
        want = [c.name for c in ent.columns] + [SOURCE_FILE_COLUMN, SOURCE_ROW_COLUMN]
        if columns(ent.raw_table) != want:
            log.info("raw.%s does not have the contract's columns: full load", ent.raw_table)
            return None
    rows = con.execute(f"SELECT * FROM {RAW_SCHEMA}.landing_files").fetchall()
    return {r["file"]: r for r in (dict(zip(have, row, strict=True)) for row in rows)}


def _reuse(fl: FileLoad, old: dict) -> None:
    """A file already in raw with the same checksum: its counts come from the last load's bookkeeping."""
    fl.reused = True
    fl.rows, fl.rows_loaded, fl.rows_rejected = old["rows"], old["rows_loaded"], old["rows_rejected"]
    fl.missing_optional_columns = list(old["missing_optional_columns"] or [])
    fl.ignored_columns = list(old["ignored_columns"] or [])


def load_landing(
    landing_dir: Path,
    warehouse: Path,
    *,
    progress: bool = True,
    bad_lines: Literal["quarantine", "error"] = "quarantine",
    max_rejected_lines: int | None = 10_000,
    full_refresh: bool = False,
) -> LoadReport:
    """Load every contract entity from ``landing_dir`` into schema ``raw`` of the DuckDB file ``warehouse``.

    Incremental by default (module docstring, "Incremental"): a file whose path and checksum match the last load
    is not read again, new files are appended, changed and removed files have their rows replaced or removed, with
    a warning naming them. ``full_refresh=True`` reads every file and rebuilds every raw table.

    ``bad_lines="quarantine"`` (default) keeps CSV records with the wrong number of fields or invalid UTF-8 in
    ``raw._load_rejects``; ``"error"`` stops at the first. ``max_rejected_lines`` per file (None: no limit) guards
    against loading a wholly mis-formatted file as rejects. Raises :class:`LandingContractError` when the landing
    folder breaks the contract; the warehouse is then unchanged.
    """
    t0 = time.perf_counter()
    landing_dir, warehouse = Path(landing_dir), Path(warehouse)
    if bad_lines not in ("quarantine", "error"):
        raise ValueError(f"bad_lines must be 'quarantine' or 'error', not {bad_lines!r}")
    disc = discover_landing(landing_dir)
    warnings: list[str] = []

    # ---- 1. required entities present?
    missing = [e for e in ENTITIES if e.required and not disc.files[e.name]]
    if missing:
        msgs = []
        for e in missing:
            near = [f for f in disc.ignored if f.split("/")[0].lower() == e.system.lower()]
            msgs.append(
                f"required file {e.path} not found in {landing_dir}: expected {_expected_paths(e)}"
                + (f" (ignored files there: {', '.join(near[:5])})" if near else "")
                + f". See {_doc_ref(e)}"
            )
        raise LandingContractError("; ".join(msgs))

    all_paths = [p for paths in disc.files.values() for p in paths]
    load_id = compute_load_id(landing_dir, all_paths)
    log.info("landing load %s: %s files in %s", load_id, f"{len(all_paths):,}", landing_dir)
    for f in disc.ignored:
        warnings.append(f"ignored file {f}: matches no contract entity")

    # ---- 2. header checks for every file, before reading data or opening the warehouse
    entities: dict[str, EntityLoad] = {}
    plans: list[_FilePlan] = []
    problems: list[str] = []
    empty_files: list[tuple[Entity, str]] = []
    with duckdb.connect() as probe:  # in-memory, for parquet schemas
        for ent in ENTITIES:
            el = EntityLoad(ent.system, ent.name, f"{RAW_SCHEMA}.{ent.raw_table}", ent.required)
            entities[ent.name] = el
            for path in disc.files[ent.name]:
                rel = path.relative_to(landing_dir).as_posix()
                st = path.stat()
                fmt = FORMATS[path.suffix.lower()]
                fl = FileLoad(
                    ent.system,
                    ent.name,
                    rel,
                    fmt,
                    st.st_size,
                    datetime.fromtimestamp(st.st_mtime, UTC).replace(tzinfo=None),
                )
                if _is_empty_file(path):
                    # a nightly export writes an empty file on a day without rows: zero rows, not a broken night
                    empty_files.append((ent, rel))
                    warnings.append(f"{rel}: the file is empty (no header, no rows): counted as zero rows")
                    continue
                try:
                    header = (
                        _read_csv_header(path, rel, ent) if fmt == "csv" else _parquet_header(probe, path, rel, ent)
                    )
                except LandingContractError as exc:
                    problems.append(str(exc))
                    continue
                positions, file_problems = _match_header(ent, rel, header, fl)
                problems.extend(file_problems)
                plans.append(_FilePlan(ent, path, rel, fmt, header, positions, fl))
                el.files.append(fl)
    for ent in ENTITIES:
        if ent.required and not entities[ent.name].files and any(e is ent for e, _ in empty_files):
            names = ", ".join(rel for e, rel in empty_files if e is ent)
            problems.append(f"required file {ent.path}: every file is empty ({names}); write at least the header "
                            f"line ({', '.join(c.name for c in ent.columns)}). See {_doc_ref(ent)}")
    if problems:
        raise LandingContractError("the landing folder does not meet the contract:\n  - " + "\n  - ".join(problems))

    for plan in plans:
        plan.load.sha256 = _sha256(plan.path)

    from ml.warehouse import holds_claim, release_warehouse

    claimed_before = holds_claim(warehouse)
    con = _connect(warehouse)  # claims the warehouse for this process: its dbt build follows (ml.warehouse)
    # ---- incremental: which files are already in raw, unchanged (same path, entity and checksum)
    previous = None if full_refresh else _previous_load(con)
    replaced: dict[str, list[str]] = {e.name: [] for e in ENTITIES}  # entity -> files whose old rows go
    if previous is not None:
        seen = set()
        for plan in plans:
            old_file = previous.get(plan.rel)
            seen.add(plan.rel)
            if old_file is None:
                continue
            if old_file["entity"] == plan.entity.name and old_file["sha256"] == plan.load.sha256:
                _reuse(plan.load, old_file)
            else:
                replaced[old_file["entity"]].append(plan.rel)
                warnings.append(f"{plan.rel} changed after it was loaded (its checksum differs): its rows are "
                                "replaced by the file's current content")
        for rel, old_file in previous.items():
            if rel not in seen:
                replaced[old_file["entity"]].append(rel)
                warnings.append(f"{rel} was loaded before and is no longer in the landing folder: its rows are "
                                "removed from raw")
        n_reused = sum(p.load.reused for p in plans)
        log.info("incremental load: %s of %s files unchanged since the last load (not read again), %s new or "
                 "changed, %s removed", f"{n_reused:,}", f"{len(plans):,}", f"{len(plans) - n_reused:,}",
                 f"{sum(1 for r in previous if r not in seen):,}")
    to_read = [p for p in plans if not p.load.reused]
    scratch_dir = tempfile.TemporaryDirectory(prefix="stockturn-load-")
    scratch = Path(scratch_dir.name)
    try:
        # ---- 3. parse every file into temporary staging tables (nothing persistent written yet)
        rejects: list[tuple] = []
        bar = None
        if progress:
            from tqdm.auto import tqdm

            total_bytes = sum(p.load.bytes for p in to_read)
            bar = tqdm(total=total_bytes, unit="B", unit_scale=True, desc="loading landing files", leave=False)
        try:
            for idx, plan in enumerate(to_read):
                t_file = time.perf_counter()
                if plan.format == "csv":
                    file_rejects = _stage_csv(
                        con, plan, idx, bad_lines=bad_lines, max_rejected_lines=max_rejected_lines, scratch=scratch
                    )
                    for rel, line, types, raw_line, message in file_rejects:
                        reason = "; ".join(_reject_reason(t) for t in types.split("; "))
                        rejects.append(
                            (rel, line, reason, raw_line, plan.entity.system, plan.entity.name, line - 1, message)
                        )
                else:
                    _stage_parquet(con, plan, idx)
                fl = plan.load
                fl.seconds = time.perf_counter() - t_file
                log.info(
                    "read %s: %s rows (%s rejected), %s MB in %.1f s",
                    fl.file,
                    f"{fl.rows:,}",
                    f"{fl.rows_rejected:,}",
                    f"{fl.bytes / 1e6:,.1f}",
                    fl.seconds,
                )
                if bar is not None:
                    bar.update(fl.bytes)
                    bar.set_postfix_str(fl.file, refresh=False)
        finally:
            if bar is not None:
                bar.close()

        # ---- warnings
        for el in entities.values():
            ent_warn = el.warnings
            if not el.present:  # expected for optional entities: a note, not a warning
                log.info("%s: no file (optional); %s is created empty", el.path, el.raw_table)
            for fl in el.files:
                ent_warn.extend(fl.notes)
                if fl.ignored_columns:
                    ent_warn.append(
                        f"{fl.file}: {len(fl.ignored_columns):,} ignored column(s) not in the contract: "
                        f"{_column_list(fl.ignored_columns)}"
                    )
                if fl.missing_optional_columns:
                    absent = ", ".join(fl.missing_optional_columns)
                    ent_warn.append(f"{fl.file}: optional column(s) absent, loaded as NULL: {absent}")
                if fl.rows_rejected:
                    ent_warn.append(
                        f"{fl.file}: {fl.rows_rejected:,} malformed CSV record(s) quarantined in "
                        f"{RAW_SCHEMA}._load_rejects"
                    )
            warnings.extend(ent_warn)
        for w in warnings:
            log.warning(w)

        # ---- 4. replace raw tables and bookkeeping in one transaction
        t_write = time.perf_counter()
        con.execute("BEGIN TRANSACTION")
        try:
            con.execute(f"CREATE SCHEMA IF NOT EXISTS {RAW_SCHEMA}")
            gone = sorted(f for files in replaced.values() for f in files)
            if previous is not None:  # incremental: the quarantine of unchanged files stays, in SQL
                keep = f"WHERE file NOT IN ({', '.join('?' for _ in gone)})" if gone else ""
                con.execute(f"CREATE OR REPLACE TEMP TABLE __kept_rejects AS SELECT * FROM {RAW_SCHEMA}._load_rejects "
                            f"{keep}", gone)
            for ent in ENTITIES:
                if previous is None:
                    con.execute(_raw_table_ddl(ent))
                elif replaced[ent.name]:
                    marks = ", ".join("?" for _ in replaced[ent.name])
                    con.execute(f"DELETE FROM {RAW_SCHEMA}.{ent.raw_table} WHERE {SOURCE_FILE_COLUMN} IN ({marks})",
                                replaced[ent.name])
                for plan in (p for p in to_read if p.entity is ent):
                    con.execute(f"INSERT INTO {RAW_SCHEMA}.{ent.raw_table} {plan.select_sql}")
            for name, ddl in _BOOKKEEPING_DDL.items():
                con.execute(f"CREATE OR REPLACE TABLE {RAW_SCHEMA}.{name} ({ddl})")
            if previous is not None:
                con.execute(f"INSERT INTO {RAW_SCHEMA}._load_rejects SELECT * FROM __kept_rejects")
                con.execute("DROP TABLE __kept_rejects")
            file_rows = [
                (
                    fl.system,
                    fl.entity,
                    fl.file,
                    fl.format,
                    fl.rows,
                    fl.bytes,
                    fl.modified_at,
                    load_id,
                    fl.rows_loaded,
                    fl.rows_rejected,
                    fl.missing_optional_columns,
                    fl.ignored_columns,
                    fl.sha256,
                )
                for fl in (p.load for p in plans)
            ]
            if file_rows:
                con.executemany(f"INSERT INTO {RAW_SCHEMA}.landing_files VALUES ({', '.join('?' * 13)})", file_rows)
            con.executemany(
                f"INSERT INTO {RAW_SCHEMA}.landing_entities VALUES ({', '.join('?' * 12)})",
                [
                    (
                        e.system,
                        e.name,
                        e.required,
                        e.present,
                        len(e.files),
                        e.rows,
                        e.missing_optional_columns,
                        e.ignored_columns,
                        load_id,
                        e.raw_table,
                        e.rows_loaded,
                        e.rows_rejected,
                    )
                    for e in entities.values()
                ],
            )
            if rejects:
                con.executemany(
                    f"INSERT INTO {RAW_SCHEMA}._load_rejects VALUES ({', '.join('?' * 9)})",
                    [(*r, load_id) for r in rejects],
                )
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
        log.info("wrote raw tables in %.1f s", time.perf_counter() - t_write)
    except BaseException:
        con.close()
        if not claimed_before:  # no build follows a failed load
            release_warehouse(warehouse)
        raise
    else:
        con.close()
    finally:
        scratch_dir.cleanup()

    report = LoadReport(
        landing_dir=landing_dir,
        warehouse=warehouse,
        load_id=load_id,
        entities=entities,
        ignored_files=disc.ignored,
        warnings=warnings,
        elapsed_seconds=time.perf_counter() - t0,
    )
    log.info(
        "landing load %s done: %s rows (%s rejected) in %.1f s",
        load_id,
        f"{report.rows:,}",
        f"{report.rows_rejected:,}",
        report.elapsed_seconds,
    )
    return report
