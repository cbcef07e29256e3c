"""The landing folder loaded into schema ``raw``: one multi-asset, a thin wrapper around ``ml.ingest.loader``."""

import dagster as dg

from ml.ingest.contract import ENTITIES
from ml.ingest.loader import RAW_SCHEMA, LoadReport, load_landing
from orchestration.defs.resources import WAREHOUSE_POOL, StockturnPaths

GROUP = "landing"
BOOKKEEPING = {
    "landing_files": "One row per landing file loaded: entity, path, format, rows, bytes, modified time, load id.",
    "landing_entities": "One row per contract entity: present or not, files, rows, column warnings.",
    "_load_rejects": "Malformed CSV records (wrong field count, bad quoting, invalid UTF-8), kept with the raw line.",
}


def raw_key(table: str) -> dg.AssetKey:
    return dg.AssetKey([RAW_SCHEMA, table])


ENTITY_KEYS = {e.name: raw_key(e.raw_table) for e in ENTITIES}
BOOKKEEPING_KEYS = {name: raw_key(name) for name in BOOKKEEPING}
LANDING_KEYS = [*ENTITY_KEYS.values(), *BOOKKEEPING_KEYS.values()]

_SPECS = [
    dg.AssetSpec(
        ENTITY_KEYS[e.name],
        description=f"{e.description} Landing file(s) {e.path}.csv|.parquet, every column as text."
        + ("" if e.required else " Optional: an empty table when absent."),
        group_name=GROUP,
        kinds={"duckdb", "csv"},
        metadata={"landing_path": e.path, "required": e.required},
    )
    for e in ENTITIES
] + [
    dg.AssetSpec(key, description=BOOKKEEPING[name], group_name=GROUP, kinds={"duckdb"})
    for name, key in BOOKKEEPING_KEYS.items()
]


class LandingConfig(dg.Config):
    full_refresh: bool = False
    """Read every landing file again and rebuild every raw table (default: only new and changed files are read)."""


@dg.multi_asset(specs=_SPECS, name="landing", pool=WAREHOUSE_POOL)
def landing(context: dg.AssetExecutionContext, config: LandingConfig, paths: StockturnPaths):
    """Load the landing files into ``raw`` in one transaction (a contract error leaves the warehouse unchanged):
    only files that are new or changed since the last load are read, unless ``full_refresh``."""
    paths.warehouse_path.parent.mkdir(parents=True, exist_ok=True)
    report = load_landing(paths.landing_path, paths.warehouse_path, progress=False, full_refresh=config.full_refresh)
    context.log.info(report.format())
    yield from landing_results(report)


def landing_results(report: LoadReport):
    """One ``MaterializeResult`` per raw table, with rows, files, quarantined lines and the load id."""
    common = {"load_id": report.load_id, "landing_dir": dg.MetadataValue.path(str(report.landing_dir))}
    for name, entity in report.entities.items():
        yield dg.MaterializeResult(
            asset_key=ENTITY_KEYS[name],
            metadata={
                **common,
                "dagster/row_count": entity.rows_loaded,
                "files": len(entity.files),
                "rows_in_files": entity.rows,
                "quarantined_lines": entity.rows_rejected,
                "present": entity.present,
                "warnings": dg.MetadataValue.md("\n".join(f"- {w}" for w in entity.warnings) or "none"),
            },
        )
    file_table = "\n".join(
        f"| {f.file} | {f.rows:,} | {f.rows_rejected:,} | {f.bytes:,} |" for f in report.files
    )
    yield dg.MaterializeResult(
        asset_key=BOOKKEEPING_KEYS["landing_files"],
        metadata={
            **common,
            "dagster/row_count": len(report.files),
            "files_read": sum(not f.reused for f in report.files),
            "files_unchanged_not_read": sum(f.reused for f in report.files),
            "ignored_files": len(report.ignored_files),
            "seconds": round(report.elapsed_seconds, 2),
            "files": dg.MetadataValue.md("| file | rows | quarantined | bytes |\n|---|---:|---:|---:|\n" + file_table),
        },
    )
    yield dg.MaterializeResult(
        asset_key=BOOKKEEPING_KEYS["landing_entities"],
        metadata={
            **common,
            "dagster/row_count": len(report.entities),
            "entities_present": sum(e.present for e in report.entities.values()),
            "rows": report.rows,
        },
    )
    yield dg.MaterializeResult(
        asset_key=BOOKKEEPING_KEYS["_load_rejects"],
        metadata={**common, "dagster/row_count": report.rows_rejected, "quarantined_lines": report.rows_rejected},
    )
