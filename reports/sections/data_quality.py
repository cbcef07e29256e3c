"""Data quality: what was loaded. Every row of every landing file is either kept or set aside (quarantined) with a
reason; the section reconciles them per source and lists the data checks of the last build that did not pass.
"""

from __future__ import annotations

import duckdb
import polars as pl

from reports import theme as th
from reports.context import frame
from reports.html import NoteBlock, Section, TableBlock
from reports.sections.common import Report, col, lacks_marts

# ------------------------------------------------------------------------------------------------ queries


def reconciliation(con: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    """Rows landed, kept and quarantined per landing entity, with the quarantine reasons."""
    return frame(
        con,
        """
        with r as (
            select
                source_system, entity,
                bool_or(is_required) as is_required,
                bool_or(is_present) as is_present,
                count(file) as files,
                coalesce(sum(rows_in), 0)::bigint as rows_in,
                coalesce(sum(rows_kept), 0)::bigint as rows_kept,
                coalesce(sum(rows_quarantined), 0)::bigint as rows_quarantined,
                coalesce(sum(rows_unaccounted), 0)::bigint as rows_unaccounted
            from marts.data_quality_reconciliation
            group by all
        ),
        reasons as (
            select source_system, entity,
                   string_agg(reject_reason || ': ' || format('{:,}', n), '; ' order by n desc, reject_reason)
                       as quarantine_reasons
            from (
                select source_system, entity, reject_reason, count(*) as n
                from marts.data_quality_rejections group by all
            )
            group by all
        )
        select r.*, reasons.quarantine_reasons
        from r left join reasons using (source_system, entity)
        order by not r.is_present, not r.is_required, r.source_system, r.entity
        """,
    )


def data_checks(con: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    """The last build's data tests that did not pass (audit.dbt_test_results), warnings first; empty when the
    warehouse has no record (built before the record existed)."""
    ((exists,),) = con.execute(
        "select count(*) from information_schema.tables "
        "where table_schema = 'audit' and table_name = 'dbt_test_results'"
    ).fetchall()
    if not exists:
        return pl.DataFrame()
    return frame(
        con,
        """
        select test_name, model, severity, status, failing_rows, failing_rows_relation, severity_reason, tested_at
        from audit.dbt_test_results
        where status not in ('pass', 'skipped', 'success')
        order by status = 'warn', failing_rows desc nulls last, test_name
        """,
    )


# ------------------------------------------------------------------------------------------------ section


def build(report: Report) -> Section:
    section = Section("data-quality", "Data quality: what was loaded", "ok",
                      intro="Every row of every landing file is either kept or set aside (quarantined) with a "
                      "reason; nothing is dropped silently.")
    if lacks_marts(report.ctx, section, "data_quality_reconciliation", "data_quality_rejections"):
        return section
    rec = reconciliation(report.con)
    present = rec.filter(pl.col("is_present"))
    absent = rec.filter(~pl.col("is_present"))
    rows_in, kept, quarantined = (int(present[c].sum() or 0) for c in ("rows_in", "rows_kept",
                                                                        "rows_quarantined"))
    unaccounted = int(present["rows_unaccounted"].sum() or 0)
    section.blocks.append(NoteBlock(
        f"{rows_in:,} rows landed = {kept:,} kept + {quarantined:,} quarantined "
        f"({th.pct(quarantined / rows_in if rows_in else None, 2)}); {unaccounted:,} unaccounted.",
        "info" if unaccounted == 0 else "error"))
    section.blocks.append(TableBlock(
        "Landing files by source",
        [
            col("source", "Source"), col("files", "Files", th.number, True),
            col("rows_in", "Rows in", th.number, True), col("rows_kept", "Kept", th.number, True),
            col("rows_quarantined", "Quarantined", th.number, True),
            col("quarantine_reasons", "Reasons (rows)"),
        ],
        [r | {"source": f"{r['source_system']}/{r['entity']}"} for r in present.to_dicts()],
    ))
    if absent.height:
        names = ", ".join(f"{r['source_system']}/{r['entity']}" for r in absent.to_dicts())
        section.blocks.append(NoteBlock(f"Optional sources not supplied: {names}.", "info"))
    if unaccounted:
        section.status = "partial"
        section.detail = f"{unaccounted:,} rows unaccounted"
    _add_data_checks(report, section)
    return section


def _add_data_checks(report: Report, section: Section) -> None:
    """The value checks (dbt tests of severity warn) that found rows in the last build: the build went on, the
    rows are kept for review."""
    checks = data_checks(report.con)
    if checks.is_empty():
        return
    failed = checks.filter(pl.col("status") != "warn")
    if failed.height:
        names = ", ".join(f"{r['test_name']} on {r['model']}" for r in failed.head(5).to_dicts())
        more = f" and {failed.height - 5:,} more" if failed.height > 5 else ""
        section.blocks.append(NoteBlock(
            f"The last dbt build stopped at {failed.height:,} failing check{'s' if failed.height != 1 else ''} "
            f"({names}{more}): the tables downstream of them are from the last good build. "
            "audit.dbt_test_results has the detail.", "error"))
        section.status, section.detail = "partial", "the last build stopped at a failing check"
    warned = checks.filter(pl.col("status") == "warn")
    if warned.height:
        section.blocks.append(TableBlock(
            "Data checks that warned: the build went on, the rows that broke the rule are kept for review",
            [
                col("test_name", "Check"), col("model", "Table"),
                col("failing_rows", "Rows", th.number, True),
                col("failing_rows_relation", "Rows kept in"), col("severity_reason", "Why it only warns"),
            ],
            warned.to_dicts(),
            note="A value check (a sign, a range, a balance, a roll-up) never stops the nightly run: one bad row "
            "must not cost every mart. docs/data-tests.md lists every check and why it warns or stops the build.",
        ))
        if section.status == "ok":
            section.status = "partial"
            section.detail = f"{warned.height:,} data check{'s' if warned.height != 1 else ''} warned"
