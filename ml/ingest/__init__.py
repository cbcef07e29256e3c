"""Landing zone: the data contract, the loader into the warehouse's ``raw`` schema, and source importers.

Exports are loaded lazily, so ``import ml.ingest.contract`` stays light (no duckdb import).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_EXPORTS = {
    "DEFAULT_MEMORY_LIMIT": "ml.ingest.loader",
    "MEMORY_LIMIT_ENV": "ml.ingest.loader",
    "RAW_SCHEMA": "ml.ingest.loader",
    "Discovery": "ml.ingest.loader",
    "EntityLoad": "ml.ingest.loader",
    "FileLoad": "ml.ingest.loader",
    "LandingContractError": "ml.ingest.loader",
    "LoadReport": "ml.ingest.loader",
    "compute_load_id": "ml.ingest.loader",
    "discover_landing": "ml.ingest.loader",
    "load_landing": "ml.ingest.loader",
    "ImportIntegrityError": "ml.ingest.online_retail",
    "ImportSummary": "ml.ingest.online_retail",
    "import_online_retail": "ml.ingest.online_retail",
}

__all__ = [
    "DEFAULT_MEMORY_LIMIT",
    "MEMORY_LIMIT_ENV",
    "RAW_SCHEMA",
    "Discovery",
    "EntityLoad",
    "FileLoad",
    "ImportIntegrityError",
    "ImportSummary",
    "LandingContractError",
    "LoadReport",
    "compute_load_id",
    "discover_landing",
    "import_online_retail",
    "load_landing",
]

if TYPE_CHECKING:  # pragma: no cover
    from ml.ingest.loader import (
        DEFAULT_MEMORY_LIMIT,
        MEMORY_LIMIT_ENV,
        RAW_SCHEMA,
        Discovery,
        EntityLoad,
        FileLoad,
        LandingContractError,
        LoadReport,
        compute_load_id,
        discover_landing,
        load_landing,
    )
    from ml.ingest.online_retail import ImportIntegrityError, ImportSummary, import_online_retail


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'ml.ingest' has no attribute {name!r}")
