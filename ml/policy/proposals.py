"""Purchase and transfer proposals, and the planners' decisions on them (human in the loop).

A proposal is made for every orderable series whose inventory position is at or below its reorder point: order
up to the order-up-to level, rounded up to the MOQ and pack size. Its id is a hash of product, location and as_of,
so re-running the same day gives the same ids and the decisions planners took on them stay attached.

Decisions live in ``ml.proposal_decisions``, an append-only audit table that no run replaces: one row per
decision (decision_seq, proposal_id, status, author, reason, decided_at, product_id, location_id,
proposal_as_of_date, quantity). :func:`set_proposal_status` appends a decision (and updates the status shown in
``ml.purchase_proposals``); :func:`run_policy` joins the latest decision per proposal id. A decision is tied to
the quantity it was taken on: if a re-run proposes a different quantity for the same id, the proposal goes back
to 'proposed' and its status_reason says why.

A planner may approve another quantity than the one proposed (a *changed* proposal): ``decided_quantity`` holds
what the planner approved (0 for a rejection), ``approved_quantity`` in ``ml.purchase_proposals`` what will be
ordered, and the export orders it. Every decision also keeps the policy in force when it was taken (the
*snapshot*: reorder point, order quantity, MOQ, pack size, review period, lead time, unit cost, on hand and
position), because the plan is rebuilt every night and the value of a rejected or changed proposal is measured
later, by replaying the days after it with and without the planner's quantity
(:mod:`ml.simulation.decision_value`).
"""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime

import duckdb
import polars as pl

from ml.policy import inventory_math as im
from ml.policy.inputs import table_exists
from ml.policy.text import dec, units
from ml.warehouse import ML_SCHEMA, read_frame, table_columns

log = logging.getLogger("stockturn.policy")

STATUSES = ("proposed", "approved", "rejected")
DECISIONS_TABLE = "proposal_decisions"
DECISIONS_DDL = f"""
create table if not exists {ML_SCHEMA}.{DECISIONS_TABLE} (
    decision_seq bigint not null,
    proposal_id varchar not null,
    status varchar not null,
    author varchar not null,
    reason varchar,
    decided_at timestamp not null,
    product_id varchar,
    location_id varchar,
    proposal_as_of_date date,
    quantity double
)
"""
#: columns added after the first release (``alter table add column if not exists`` on older tables): the planner's
#: quantity and the policy in force when the decision was taken
SNAPSHOT_COLUMNS: dict[str, str] = {
    "decided_quantity": "double", "proposal_type": "varchar", "reorder_point": "double",
    "order_quantity": "double", "order_up_to_level": "double", "min_order_qty": "double", "pack_size": "double",
    "review_period_days": "double", "lead_time_days": "double", "unit_cost": "double", "on_hand_units": "double",
    "inventory_position_units": "double", "ordering_position_units": "double",
}

PROPOSAL_SCHEMA: dict[str, pl.DataType] = {
    "proposal_id": pl.String(), "proposal_type": pl.String(), "supplier_id": pl.String(),
    "source_location_id": pl.String(), "product_id": pl.String(), "location_id": pl.String(),
    "quantity": pl.Float64(), "unit_cost": pl.Float64(), "value": pl.Float64(), "order_date": pl.Date(),
    "expected_arrival_date": pl.Date(), "lead_time_days": pl.Float64(), "on_hand_units": pl.Float64(),
    "inventory_position_units": pl.Float64(), "ordering_position_units": pl.Float64(),
    "reorder_point": pl.Float64(), "order_up_to_level": pl.Float64(), "order_quantity": pl.Float64(),
    "min_order_qty": pl.Float64(), "pack_size": pl.Float64(),
    "daily_demand_forecast": pl.Float64(), "days_covered": pl.Float64(), "source_on_hand_units": pl.Float64(),
    "abc_class": pl.String(), "xyz_class": pl.String(), "overridden_fields": pl.String(), "reason": pl.String(),
    "status": pl.String(), "status_author": pl.String(), "status_reason": pl.String(),
    "status_changed_at": pl.Datetime("us"), "approved_quantity": pl.Float64(),
}


def ensure_decisions_table(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(f"create schema if not exists {ML_SCHEMA}")
    con.execute(DECISIONS_DDL)
    have = _columns(con, DECISIONS_TABLE)
    for name, sql_type in SNAPSHOT_COLUMNS.items():
        if name not in have:
            con.execute(f"alter table {ML_SCHEMA}.{DECISIONS_TABLE} add column {name} {sql_type}")


def _columns(con: duckdb.DuckDBPyConnection, table: str) -> set[str]:
    return table_columns(con, ML_SCHEMA, table)


def read_latest_decisions(con: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    """The latest decision per proposal id (empty frame when no decision was ever taken)."""
    schema = {"proposal_id": pl.String, "decision_status": pl.String, "decision_author": pl.String,
              "decision_reason": pl.String, "decided_at": pl.Datetime("us"), "decision_quantity": pl.Float64,
              "decision_decided_quantity": pl.Float64}
    if not table_exists(con, ML_SCHEMA, DECISIONS_TABLE):
        return pl.DataFrame(schema=schema)
    decided = ("arg_max(decided_quantity, decision_seq)" if "decided_quantity" in _columns(con, DECISIONS_TABLE)
               else "null::double")
    frame = read_frame(con, f"""
        select proposal_id, arg_max(status, decision_seq) as decision_status,
               arg_max(author, decision_seq) as decision_author, arg_max(reason, decision_seq) as decision_reason,
               arg_max(decided_at, decision_seq) as decided_at, arg_max(quantity, decision_seq) as decision_quantity,
               {decided} as decision_decided_quantity
        from {ML_SCHEMA}.{DECISIONS_TABLE} group by proposal_id
    """)
    return frame.cast({k: v for k, v in schema.items()}) if frame.height else pl.DataFrame(schema=schema)


def set_proposal_status(
    con: duckdb.DuckDBPyConnection,
    proposal_id: str,
    status: str,
    author: str,
    reason: str | None = None,
    *,
    decided_at: datetime | None = None,
    quantity: float | None = None,
) -> dict:
    """Record a planner's decision on a proposal: append to ``ml.proposal_decisions`` (created if missing, never
    rebuilt) with the policy in force (module docstring) and show it in ``ml.purchase_proposals``, in one
    transaction.

    ``status`` is 'proposed', 'approved' or 'rejected'; ``author`` is required, and so is a ``reason`` for a
    rejection. ``quantity`` (approve only) approves another quantity than the one proposed; it needs a reason too.
    The proposal must exist in the current ``ml.purchase_proposals``. Returns the decision row.
    """
    status = (status or "").strip().lower()
    if status not in STATUSES:
        raise ValueError(f"status must be one of {STATUSES}, got {status!r}")
    if not (author or "").strip():
        raise ValueError("an author is required for the audit trail")
    if status == "rejected" and not (reason or "").strip():
        raise ValueError("a rejection needs a reason")
    if quantity is not None:
        if status != "approved":
            raise ValueError("a quantity can only be given with an approval")
        if not (quantity == quantity and 0 < quantity < float("inf")):  # noqa: PLR0124 - NaN check
            raise ValueError(f"the approved quantity must be a positive number, got {quantity!r} (to order "
                             "nothing, reject the proposal)")
    if not table_exists(con, ML_SCHEMA, "purchase_proposals"):
        raise ValueError("ml.purchase_proposals does not exist: run the policy first")
    found = read_frame(con, f"select * from {ML_SCHEMA}.purchase_proposals where proposal_id = ?", [proposal_id])
    if found.is_empty():
        raise ValueError(f"unknown proposal id {proposal_id!r} (not in ml.purchase_proposals)")
    prop = found.row(0, named=True)
    product_id, location_id, as_of_date, proposed = (prop["product_id"], prop["location_id"], prop["as_of_date"],
                                                     prop["quantity"])
    changed = quantity is not None and abs(float(quantity) - float(proposed)) > 1e-9
    if changed and not (reason or "").strip():
        raise ValueError(f"approving {quantity:,.0f} instead of the proposed {proposed:,.0f} needs a reason")
    decided = {"approved": float(quantity) if quantity is not None else proposed, "rejected": 0.0}.get(status)
    review = None
    if table_exists(con, ML_SCHEMA, "inventory_policy") and "review_period_days" in _columns(con, "inventory_policy"):
        got = con.execute(f"select review_period_days from {ML_SCHEMA}.inventory_policy where product_id = ? and "
                          "location_id = ?", [product_id, location_id]).fetchall()
        review = got[0][0] if got else None
    snapshot = {k: prop[k] for k in SNAPSHOT_COLUMNS if k in prop}  # the proposal row carries all but two
    when = (decided_at or datetime.now(UTC)).replace(tzinfo=None)
    ensure_decisions_table(con)
    con.execute("begin transaction")
    try:
        seq = con.execute(f"select coalesce(max(decision_seq), 0) + 1 from {ML_SCHEMA}.{DECISIONS_TABLE}"
                          ).fetchall()[0][0]
        row = {"decision_seq": seq, "proposal_id": proposal_id, "status": status, "author": author.strip(),
               "reason": (reason or "").strip() or None, "decided_at": when, "product_id": product_id,
               "location_id": location_id, "proposal_as_of_date": as_of_date, "quantity": proposed,
               **snapshot, "decided_quantity": decided, "review_period_days": review}
        con.execute(f"insert into {ML_SCHEMA}.{DECISIONS_TABLE} ({', '.join(row)}) values "
                    f"({', '.join('?' for _ in row)})", list(row.values()))
        cols = _columns(con, "purchase_proposals")
        if {"status", "status_author", "status_reason", "status_changed_at"} <= cols:
            con.execute(f"update {ML_SCHEMA}.purchase_proposals set status = ?, status_author = ?, "
                        "status_reason = ?, status_changed_at = ? where proposal_id = ?",
                        [status, row["author"], row["reason"], when, proposal_id])
        if "approved_quantity" in cols:
            con.execute(f"update {ML_SCHEMA}.purchase_proposals set approved_quantity = ? where proposal_id = ?",
                        [decided if status == "approved" else None, proposal_id])
        con.execute("commit")
    except BaseException:
        con.execute("rollback")
        raise
    log.info("proposal %s (%s at %s): %s by %s%s", proposal_id, product_id, location_id, status, row["author"],
             f" ({decided:,.0f} instead of {proposed:,.0f})" if changed else "")
    return row


def build_proposals(policy: pl.DataFrame, as_of: date, decisions: pl.DataFrame) -> pl.DataFrame:
    """Proposals for the rows of the policy frame with ``needs_order`` (internal columns: proposal_id,
    lead_time_effective_days)."""
    rows = policy.filter(pl.col("needs_order"))
    if rows.height == 0:
        return pl.DataFrame(schema=PROPOSAL_SCHEMA)
    qty = im.round_to_pack(
        (rows["order_up_to_level"] - rows["ordering_position_units"]).to_numpy(),
        rows["min_order_qty"].to_numpy(), rows["pack_size"].to_numpy())
    p = rows.with_columns(pl.Series("quantity", qty, dtype=pl.Float64))
    is_po = pl.col("replenishment_source") == "supplier"
    p = p.with_columns(
        pl.when(is_po).then(pl.lit("purchase_order")).otherwise(pl.lit("transfer")).alias("proposal_type"),
        pl.when(is_po).then(pl.col("supplier_id")).otherwise(None).alias("supplier_id"),
        pl.when(is_po).then(None).otherwise(pl.col("source_location_id")).alias("source_location_id"),
        (pl.col("quantity") * pl.col("unit_cost")).alias("value"),
        pl.lit(as_of).cast(pl.Date).alias("order_date"),
        (pl.lit(as_of).cast(pl.Date) + pl.duration(days=pl.col("lead_time_effective_days").ceil().cast(pl.Int64)))
        .alias("expected_arrival_date"),
        pl.col("lead_time_effective_days").alias("lead_time_days"),
        pl.when(pl.col("daily_demand_forecast") > 0)
        .then(pl.col("quantity") / pl.col("daily_demand_forecast"))
        .otherwise(None).alias("days_covered"),
    )
    # transfers: can the replenishing location supply everything the stores ask for?
    p = p.with_columns(
        pl.col("quantity").filter(pl.col("proposal_type") == "transfer").sum()
        .over(["product_id", "source_location_id"]).alias("__requested_from_source"))
    short_source = (pl.col("proposal_type") == "transfer") & pl.col("source_on_hand_units").is_not_null() & (
        pl.col("__requested_from_source") > pl.col("source_on_hand_units"))
    has_echelon = pl.col("echelon_position_units").is_not_null() & pl.col("echelon_store_target_units").is_not_null()
    echelon_reading = pl.col("echelon_position_units") - pl.col("echelon_store_target_units")
    reason = pl.concat_str([
        # an empty DC reads its own position (ml.policy.echelon.ordering_position)
        pl.when(has_echelon & (pl.col("ordering_position_units") < echelon_reading - 1e-9))
        .then(pl.format("position {} <= reorder point {}: the DC has nothing on hand or on order, so its stores' "
                        "stock (echelon position {} less their planned {} = {}) cannot hold its order back",
                        units(pl.col("ordering_position_units")), units(pl.col("reorder_point")),
                        units(pl.col("echelon_position_units")), units(pl.col("echelon_store_target_units")),
                        units(echelon_reading)))
        .when(has_echelon)
        .then(pl.format("echelon position {} (own {} + its stores' {}) less the stores' planned {} = {} <= reorder "
                        "point {}", units(pl.col("echelon_position_units")), units(pl.col("inventory_position_units")),
                        units(pl.col("echelon_position_units") - pl.col("inventory_position_units")),
                        units(pl.col("echelon_store_target_units")), units(pl.col("ordering_position_units")),
                        units(pl.col("reorder_point"))))
        .otherwise(pl.format("position {} <= reorder point {}", units(pl.col("inventory_position_units")),
                             units(pl.col("reorder_point")))),
        pl.format("; order {} to reach {}", units(pl.col("quantity")), units(pl.col("order_up_to_level"))),
        pl.when(pl.col("pack_size") > 1).then(pl.format(" (packs of {})", units(pl.col("pack_size"))))
        .otherwise(pl.lit("")),
        pl.when(pl.col("days_covered").is_not_null())
        .then(pl.format("; covers {} days at {}/day", units(pl.col("days_covered").round(0)),
                        dec(pl.col("daily_demand_forecast"), 2)))
        .otherwise(pl.lit("")),
        pl.format("; arrives in about {} days", units(pl.col("lead_time_days").ceil())),
        pl.when(short_source).then(pl.format("; {} has only {} on hand for {} requested by all its stores",
                                             pl.col("source_location_id"), units(pl.col("source_on_hand_units")),
                                             units(pl.col("__requested_from_source"))))
        .otherwise(pl.lit("")),
        pl.when(pl.col("overridden_fields").is_not_null())
        .then(pl.format("; planner overrides: {}", pl.col("overridden_fields"))).otherwise(pl.lit("")),
    ])
    p = p.with_columns(reason.alias("reason"), pl.col("proposal_id"))
    # the latest decision, if it was taken on the same quantity
    p = p.join(decisions, on="proposal_id", how="left", maintain_order="left")
    same_qty = (pl.col("decision_quantity") - pl.col("quantity")).abs() < 1e-9
    has = pl.col("decision_status").is_not_null()
    p = p.with_columns(
        pl.when(has & same_qty).then(pl.col("decision_status")).otherwise(pl.lit("proposed")).alias("status"),
        pl.when(has).then(pl.col("decision_author")).otherwise(None).alias("status_author"),
        pl.when(has & same_qty).then(pl.col("decision_reason"))
        .when(has).then(pl.format("quantity changed from {} to {} since it was {} by {}",
                                  units(pl.col("decision_quantity")), units(pl.col("quantity")),
                                  pl.col("decision_status"), pl.col("decision_author")))
        .otherwise(None).alias("status_reason"),
        pl.when(has).then(pl.col("decided_at")).otherwise(None).alias("status_changed_at"),
    ).with_columns(
        pl.when(pl.col("status") == "approved")
        .then(pl.coalesce("decision_decided_quantity", "quantity")).otherwise(None).alias("approved_quantity"))
    return p.select([pl.col(c).cast(t) for c, t in PROPOSAL_SCHEMA.items()]).sort("value", descending=True)
