"""ABC / XYZ classification and the service target of each class (seed ``service_levels``).

- **ABC** by annual consumption value at cost (usage over the history window, annualised, x unit cost), within
  each location by default: sorted from the largest, an item is A while the cumulative share *before* it is
  below ``abc_a_share`` (so the item crossing 80% is still A), B below ``abc_b_share``, C otherwise. Items with no
  consumption are C.
- **XYZ** by the coefficient of variation of weekly demand (complete 7-day buckets ending at as_of): X if
  CV <= ``xyz_x_max_cv``, Y if CV <= ``xyz_y_max_cv``, Z above, and Z for no demand or fewer than
  ``xyz_min_weeks`` complete weeks.
- **Service targets** come from the planners' seed (``planning.service_levels``, else ``seeds/service_levels.csv``):
  columns abc_class, xyz_class, service_metric ('cycle_service_level' | 'fill_rate'), target, note. A class may be
  ``*`` (any); the most specific row wins. Targets in (1, 100] are read as percentages.
"""

from __future__ import annotations

import logging

import duckdb
import numpy as np
import polars as pl

from ml.policy.config import SERVICE_METRICS, PolicyConfig
from ml.policy.inputs import read_seed_table

log = logging.getLogger("stockturn.policy")

ABC_CLASSES = ("A", "B", "C")
XYZ_CLASSES = ("X", "Y", "Z")
SERVICE_LEVEL_COLUMNS = ("abc_class", "xyz_class", "service_metric", "target", "note")
_METRIC_ALIASES = {
    "cycle_service_level": "cycle_service_level", "csl": "cycle_service_level", "cycle_service": "cycle_service_level",
    "type1": "cycle_service_level", "alpha": "cycle_service_level",
    "fill_rate": "fill_rate", "fr": "fill_rate", "fillrate": "fill_rate", "type2": "fill_rate", "beta": "fill_rate",
}


def normalise_metric(value: str | None) -> str | None:
    """'cycle_service_level' or 'fill_rate' for a metric name or alias (csl, fr, ...), None if unknown."""
    if value is None:
        return None
    return _METRIC_ALIASES.get(value.strip().lower().replace("-", "_").replace(" ", "_"))


def parse_target(value: str | float | None) -> float | None:
    """A service target as a fraction in (0, 1]; values in (1, 100] are percentages; None if invalid."""
    try:
        x = float(str(value).strip().rstrip("%")) if value is not None else float("nan")
    except ValueError:
        return None
    if 1.0 < x <= 100.0:
        x /= 100.0
    return x if 0.0 < x <= 1.0 else None


def classify_abc(frame: pl.DataFrame, config: PolicyConfig) -> pl.Series:
    """ABC class per row of ``frame`` (columns location_id, product_id, annual_consumption_value), in row order."""
    group = ["location_id"] if config.abc_scope == "location" else ["__all"]
    df = frame.select("location_id", "product_id", "annual_consumption_value").with_row_index("__row").with_columns(
        pl.col("annual_consumption_value").fill_null(0.0).fill_nan(0.0).clip(lower_bound=0.0).alias("__v"),
        pl.lit(0).alias("__all"),
    )
    df = df.sort([*group, "__v", "product_id", "location_id"], descending=[False] * len(group) + [True, False, False])
    df = df.with_columns(
        pl.col("__v").sum().over(group).alias("__total"),
        (pl.col("__v").cum_sum().over(group) - pl.col("__v")).alias("__before"),
    ).with_columns((pl.col("__before") / pl.col("__total")).alias("__share_before"))
    abc = (
        pl.when((pl.col("__v") <= 0) | (pl.col("__total") <= 0)).then(pl.lit("C"))
        .when(pl.col("__share_before") < config.abc_a_share - 1e-12).then(pl.lit("A"))
        .when(pl.col("__share_before") < config.abc_b_share - 1e-12).then(pl.lit("B"))
        .otherwise(pl.lit("C"))
    )
    return df.with_columns(abc.alias("abc_class")).sort("__row")["abc_class"]


def classify_xyz(week_cv: np.ndarray, weeks_n: np.ndarray, week_mean: np.ndarray, config: PolicyConfig) -> np.ndarray:
    """XYZ class per series from the CV of weekly demand (NaN CV, no demand or too few weeks: Z)."""
    cv = np.asarray(week_cv, dtype=np.float64)
    ok = (np.asarray(weeks_n) >= config.xyz_min_weeks) & (np.asarray(week_mean, dtype=np.float64) > 0) & np.isfinite(cv)
    out = np.full(cv.shape, "Z", dtype=object)
    out[ok & (cv <= config.xyz_y_max_cv)] = "Y"
    out[ok & (cv <= config.xyz_x_max_cv)] = "X"
    return out


def load_service_levels(con: duckdb.DuckDBPyConnection, config: PolicyConfig) -> pl.DataFrame:
    """The service target of every ABC x XYZ class: abc_class, xyz_class, service_metric, service_target,
    service_target_source ('seed' or 'default'), service_note. Raises ValueError on an invalid seed row."""
    seed = read_seed_table(con, "service_levels", SERVICE_LEVEL_COLUMNS, config.seeds_path())
    rows: list[dict] = []
    problems: list[str] = []
    if seed is not None:
        for rec in seed.iter_rows(named=True):  # a handful of planner-edited rows, not series
            abc = (rec["abc_class"] or "*").upper()
            xyz = (rec["xyz_class"] or "*").upper()
            metric = normalise_metric(rec["service_metric"])
            target = parse_target(rec["target"])
            where = f"{rec['seed_source']} row {rec['seed_row']}"
            if abc not in (*ABC_CLASSES, "*") or xyz not in (*XYZ_CLASSES, "*"):
                problems.append(f"{where}: unknown class {abc}/{xyz}")
            elif metric is None:
                problems.append(f"{where}: service_metric {rec['service_metric']!r} is not one of {SERVICE_METRICS}")
            elif target is None:
                problems.append(f"{where}: target {rec['target']!r} is not a fraction in (0, 1]")
            else:
                rows.append({"abc": abc, "xyz": xyz, "metric": metric, "target": target, "note": rec["note"]})
        seen: dict[tuple[str, str], int] = {}
        for r in rows:
            seen[(r["abc"], r["xyz"])] = seen.get((r["abc"], r["xyz"]), 0) + 1
        problems += [f"service_levels: class {a}/{x} appears {n} times" for (a, x), n in seen.items() if n > 1]
    if problems:
        raise ValueError("invalid service-level seed: " + "; ".join(problems))
    out = []
    for abc in ABC_CLASSES:
        for xyz in XYZ_CLASSES:
            matches = [r for r in rows if r["abc"] in (abc, "*") and r["xyz"] in (xyz, "*")]
            if matches:
                best = max(matches, key=lambda r: (r["abc"] != "*") + (r["xyz"] != "*"))
                out.append((abc, xyz, best["metric"], best["target"], "seed", best["note"]))
            else:
                log.warning("no service level for class %s%s in the seed: default %s %.3f", abc, xyz,
                            config.default_service_metric, config.default_service_target)
                out.append((abc, xyz, config.default_service_metric, config.default_service_target, "default", None))
    return pl.DataFrame(out, schema={
        "abc_class": pl.String, "xyz_class": pl.String, "service_metric": pl.String, "service_target": pl.Float64,
        "service_target_source": pl.String, "service_note": pl.String,
    }, orient="row")
