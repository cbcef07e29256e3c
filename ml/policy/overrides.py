"""Planner overrides (seed ``planner_overrides``): validated, resolved per series and field, with an audit trail.

Columns: product_id, location_id, field, value, reason, author. ``location_id`` empty or ``*`` applies the row to
every planned location of the product; a row for a specific location beats a ``*`` row, and among rows of the
same specificity the last one in the file wins (the others are reported as superseded).

Fields and values:

========================  =========================================================================================
``service_target``        ``0.97`` (keeps the class's metric), ``fill_rate:0.98`` or ``cycle_service_level:0.95``
                          (aliases csl, fr); percentages such as ``97`` are accepted.
``reorder_point``         units >= 0; replaces the computed reorder point (safety stock = it - mean LTD).
``order_quantity``        units > 0; replaces the computed order quantity as given (no pack rounding: the planner's
                          number stands); a fill-rate reorder point is computed for this quantity.
``min_order_qty``         units >= 0; replaces the MOQ before rounding (both policies).
``pack_size``             units > 0; replaces the order multiple before rounding (both policies).
``lead_time_days``        days >= 0; replaces the lead time (both policies). The lead-time demand samples are
                          stretched to (L' + R - 1) / (L + R - 1) intervals (``inventory_math.stretched_interval``):
                          right for the mean, an approximation for the spread.
``exclude``               true/false (yes/no, 1/0): excluded series get no proposal and no exceptions.
========================  =========================================================================================

Facts about the item (service target, MOQ, pack size, lead time) apply to the recommended *and* the classical
policy so the comparison stays like for like; decisions (reorder point, order quantity) apply to the recommended
policy only. Rows that cannot be applied (unknown product, product not planned at the location, unknown field,
invalid value, no author) are returned as issues, which become ``override_issue`` exceptions: never silently
ignored.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import duckdb
import polars as pl

from ml.policy.classify import normalise_metric, parse_target
from ml.policy.config import PolicyConfig
from ml.policy.inputs import read_seed_table

OVERRIDE_COLUMNS = ("product_id", "location_id", "field", "value", "reason", "author")
OVERRIDE_FIELDS = ("service_target", "reorder_point", "order_quantity", "min_order_qty", "pack_size",
                   "lead_time_days", "exclude")
_TRUE = {"true", "yes", "y", "1", "t"}
_FALSE = {"false", "no", "n", "0", "f"}

APPLIED_SCHEMA = {
    "_i": pl.UInt32, "field": pl.String, "value_num": pl.Float64, "value_metric": pl.String,
    "override_reason": pl.String, "override_author": pl.String, "seed_row": pl.UInt32,
}
ISSUE_SCHEMA = {
    "product_id": pl.String, "location_id": pl.String, "field": pl.String, "value": pl.String, "problem": pl.String,
    "override_reason": pl.String, "override_author": pl.String, "seed_row": pl.UInt32,
}


@dataclass(frozen=True)
class Overrides:
    """applied: one row per (series ``_i``, field) that takes effect; issues: rows that could not be applied."""

    applied: pl.DataFrame
    issues: pl.DataFrame
    source: str | None

    def field(self, name: str) -> pl.DataFrame:
        return self.applied.filter(pl.col("field") == name)


def parse_value(field: str, value: str | None) -> tuple[float | None, str | None, str | None]:
    """(number, metric, problem) for one override value; problem is None when valid."""
    text = (value or "").strip()
    if field == "exclude":
        low = text.lower()
        if low in _TRUE:
            return 1.0, None, None
        if low in _FALSE:
            return 0.0, None, None
        return None, None, f"exclude must be true or false, got {text!r}"
    if field == "service_target":
        metric = None
        for sep in (":", "="):
            if sep in text:
                name, text = text.split(sep, 1)
                metric = normalise_metric(name)
                if metric is None:
                    return None, None, f"unknown service metric {name.strip()!r} (cycle_service_level or fill_rate)"
                break
        target = parse_target(text)
        if target is None:
            return None, None, f"service target {value!r} is not a fraction in (0, 1]"
        return target, metric, None
    try:
        x = float(text)
    except ValueError:
        return None, None, f"{field} must be a number, got {text!r}"
    if not math.isfinite(x):
        return None, None, f"{field} must be finite, got {text!r}"
    if field in ("order_quantity", "pack_size") and x <= 0:
        return None, None, f"{field} must be > 0, got {x:g}"
    if x < 0:
        return None, None, f"{field} must be >= 0, got {x:g}"
    return x, None, None


def load_overrides(
    con: duckdb.DuckDBPyConnection, keys: pl.DataFrame, known_products: pl.Series, config: PolicyConfig
) -> Overrides:
    """Read, validate and resolve the overrides for the planned series ``keys`` (_i, product_id, location_id)."""
    seed = read_seed_table(con, "planner_overrides", OVERRIDE_COLUMNS, config.seeds_path())
    if seed is None or seed.height == 0:
        return Overrides(pl.DataFrame(schema=APPLIED_SCHEMA), pl.DataFrame(schema=ISSUE_SCHEMA),
                         None if seed is None else seed["seed_source"][0] if seed.height else None)
    source = seed["seed_source"][0]
    issues: list[dict] = []
    valid: list[dict] = []
    for rec in seed.iter_rows(named=True):  # planner-written rows (a handful to a few thousand), not series
        field = (rec["field"] or "").strip().lower()
        base = {"product_id": rec["product_id"], "location_id": rec["location_id"], "field": rec["field"],
                "value": rec["value"], "override_reason": rec["reason"], "override_author": rec["author"],
                "seed_row": rec["seed_row"]}
        problem = None
        if not rec["product_id"]:
            problem = "no product_id"
        elif field not in OVERRIDE_FIELDS:
            problem = f"unknown field {rec['field']!r} (known: {', '.join(OVERRIDE_FIELDS)})"
        elif not rec["author"]:
            problem = "no author: every override needs one for the audit trail"
        num, metric = None, None
        if problem is None:
            num, metric, problem = parse_value(field, rec["value"])
        if problem is not None:
            issues.append({**base, "problem": problem})
            continue
        loc = rec["location_id"]
        valid.append({**base, "field": field, "location_id": None if loc in (None, "", "*") else loc,
                      "value_num": num, "value_metric": metric})
    applied = pl.DataFrame(schema=APPLIED_SCHEMA)
    if valid:
        v = pl.DataFrame(valid, schema={**ISSUE_SCHEMA, "value_num": pl.Float64, "value_metric": pl.String}
                         ).drop("problem")
        specific = v.filter(pl.col("location_id").is_not_null()).join(
            keys.select("_i", "product_id", "location_id"), on=["product_id", "location_id"], how="left")
        wildcard = v.filter(pl.col("location_id").is_null()).drop("location_id").join(
            keys.select("_i", "product_id", "location_id"), on="product_id", how="left")
        matched = pl.concat([
            specific.with_columns(pl.lit(1).alias("specificity")),
            wildcard.select(specific.columns).with_columns(pl.lit(0).alias("specificity")),
        ])
        unmatched = matched.filter(pl.col("_i").is_null())
        known = set(known_products.to_list())
        for rec in unmatched.iter_rows(named=True):
            where = rec["location_id"] or "any location"
            problem = (f"unknown product {rec['product_id']!r}" if rec["product_id"] not in known
                       else f"product {rec['product_id']} is not planned at {where} (no lead-time demand for it)")
            issues.append({**{k: rec[k] for k in ISSUE_SCHEMA if k != "problem"},
                           "location_id": rec["location_id"] or "*", "problem": problem})
        hits = matched.filter(pl.col("_i").is_not_null()).sort(["_i", "field", "specificity", "seed_row"])
        winners = hits.group_by(["_i", "field"], maintain_order=True).agg(pl.all().last())
        losers = hits.join(winners.select("_i", "field", pl.col("seed_row").alias("winner_row")),
                           on=["_i", "field"]).filter(pl.col("seed_row") != pl.col("winner_row"))
        for rec in losers.unique(subset=["seed_row", "winner_row"], maintain_order=True).iter_rows(named=True):
            issues.append({**{k: rec[k] for k in ISSUE_SCHEMA if k != "problem"},
                           "problem": f"superseded by row {rec['winner_row']} for {rec['field']} "
                                      f"at {rec['location_id']}"})
        applied = winners.select(list(APPLIED_SCHEMA)).cast(APPLIED_SCHEMA)
    issue_frame = pl.DataFrame(issues, schema=ISSUE_SCHEMA) if issues else pl.DataFrame(schema=ISSUE_SCHEMA)
    return Overrides(applied, issue_frame.sort("seed_row"), source)
