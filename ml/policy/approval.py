"""Approval rules: routine proposals are approved on their own, planners get the exceptions.

Rules come from the planner-edited seed ``approval_rules`` (``seeds/approval_rules.csv``, loaded by ``dbt seed``
into ``planning.approval_rules`` and tested there; the CSV is read directly when the seed was not loaded). One row
per rule, evaluated in file order:

==========================  =========================================================================================
column                      meaning (an empty cell or ``*`` means "any" / "no bound")
==========================  =========================================================================================
``rule_name``               required, unique; the decision trail records ``rule:<rule_name>`` as the author
``proposal_type``           ``purchase_order`` or ``transfer``
``source_id``               the supplier (purchase orders) or the replenishing location (transfers)
``abc_classes``             the ABC classes the rule covers, ``|``-separated (``B|C``)
``max_value``               the largest proposal value at cost the rule approves
``max_quantity_vs_usual``   the largest quantity as a multiple of the item's usual order (the policy's order
                            quantity): 1.5 approves a routine lot, not a catch-up order three lots big
``note``                    free text
==========================  =========================================================================================

A proposal is approved by the first rule whose scope (type, source, class) covers it and whose bounds it meets.
It is never approved by a rule when:

- its product-location has an exception in ``ml.exceptions`` (any type: exceptions are the planners' work);
- a planner has decided on it (any status, including setting it back to ``proposed``): a rule never overrides a
  person; and a proposal a rule approved that a planner then rejects stays rejected.

Every proposal gets a line saying why it waits (``waiting_reason``) or which rule approved it, written to
``ml.proposal_approval`` (replaced at every evaluation) and shown by ``stockturn proposals list``. Approvals are
appended to the same append-only trail as the planners' decisions (``ml.proposal_decisions``), with the bounds
that held in the reason, in the same transaction that updates ``ml.purchase_proposals``. Re-evaluating is safe: a
proposal already approved by the same rule on the same quantity is not recorded twice.

Plain Python (no Dagster): ``orchestration/defs/orders.py`` runs it as an asset after the plan.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import polars as pl

from ml.policy.inputs import read_seed_table, table_exists
from ml.policy.proposals import DECISIONS_TABLE, ensure_decisions_table
from ml.warehouse import ML_SCHEMA, read_frame, table_columns

log = logging.getLogger("stockturn.orders")

RULE_COLUMNS: tuple[str, ...] = ("rule_name", "proposal_type", "source_id", "abc_classes", "max_value",
                                 "max_quantity_vs_usual", "note")
PROPOSAL_TYPES = ("purchase_order", "transfer")
ABC_CLASSES = ("A", "B", "C")
RULE_AUTHOR_PREFIX = "rule:"
APPROVAL_TABLE = "proposal_approval"
APPROVAL_SCHEMA: dict[str, pl.DataType] = {
    "proposal_id": pl.String(), "product_id": pl.String(), "location_id": pl.String(), "status": pl.String(),
    "approved_by_rule": pl.String(), "waiting_reason": pl.String(), "evaluated_at": pl.Datetime("us"),
}


class ApprovalRulesError(ValueError):
    """A rule row that cannot be read: no proposal is approved until it is fixed."""


@dataclass(frozen=True)
class ApprovalRule:
    name: str
    proposal_type: str | None
    source_id: str | None
    abc_classes: frozenset[str] | None
    max_value: float | None
    max_quantity_vs_usual: float | None
    row: int

    def describe_bounds(self) -> str:
        parts = []
        if self.max_value is not None:
            parts.append(f"value <= {self.max_value:,.2f}")
        if self.max_quantity_vs_usual is not None:
            parts.append(f"quantity <= {self.max_quantity_vs_usual:g}x the usual order")
        return ", ".join(parts) or "no bounds"


def _any(value: str | None) -> bool:
    return value is None or value.strip() in ("", "*")


def _number(value: str | None, *, where: str, column: str, positive: bool) -> float | None:
    if _any(value):
        return None
    try:
        x = float(value)
    except ValueError:
        raise ApprovalRulesError(f"{where}: {column} {value!r} is not a number") from None
    if not x == x or x in (float("inf"), float("-inf")) or x < 0 or (positive and x == 0):
        raise ApprovalRulesError(f"{where}: {column} must be a {'positive' if positive else 'non-negative'} "
                                 f"number, got {value!r}")
    return x


def parse_rules(frame: pl.DataFrame | None) -> list[ApprovalRule]:
    """Rules from the seed rows (``read_seed_table`` output: text columns, ``seed_row``, ``seed_source``); raises
    :class:`ApprovalRulesError` naming the file and row of the first bad rule, or a duplicated name."""
    if frame is None or frame.is_empty():
        return []
    rules: list[ApprovalRule] = []
    seen: dict[str, int] = {}
    for r in frame.iter_rows(named=True):
        where = f"{r['seed_source']} row {r['seed_row']}"
        name = (r["rule_name"] or "").strip()
        if not name:
            raise ApprovalRulesError(f"{where}: rule_name is required")
        if name in seen:
            raise ApprovalRulesError(f"{where}: rule_name {name!r} is already used on row {seen[name]}")
        seen[name] = r["seed_row"]
        ptype = None if _any(r["proposal_type"]) else r["proposal_type"].strip().lower()
        if ptype is not None and ptype not in PROPOSAL_TYPES:
            raise ApprovalRulesError(f"{where}: proposal_type {r['proposal_type']!r} is not one of "
                                     f"{', '.join(PROPOSAL_TYPES)} (or empty for both)")
        classes = None
        if not _any(r["abc_classes"]):
            classes = frozenset(c.strip().upper() for c in r["abc_classes"].split("|") if c.strip())
            bad = sorted(classes - set(ABC_CLASSES))
            if bad or not classes:
                raise ApprovalRulesError(f"{where}: abc_classes {r['abc_classes']!r} must list classes among "
                                         f"{'|'.join(ABC_CLASSES)}, e.g. 'B|C'")
        rules.append(ApprovalRule(
            name=name, proposal_type=ptype, source_id=None if _any(r["source_id"]) else r["source_id"].strip(),
            abc_classes=classes,
            max_value=_number(r["max_value"], where=where, column="max_value", positive=False),
            max_quantity_vs_usual=_number(r["max_quantity_vs_usual"], where=where, column="max_quantity_vs_usual",
                                          positive=True),
            row=int(r["seed_row"])))
    return rules


def read_rules(con: duckdb.DuckDBPyConnection, seeds_dir: Path) -> list[ApprovalRule]:
    """The rules in ``planning.approval_rules`` (else ``<seeds_dir>/approval_rules.csv``); none when neither
    exists."""
    return parse_rules(read_seed_table(con, "approval_rules", RULE_COLUMNS, seeds_dir))


def _decide(p: dict, rules: list[ApprovalRule], exception_types: str | None) -> tuple[str | None, str | None]:
    """(rule that approves the proposal, or None; why it waits, or None)."""
    author = p["decision_author"]
    if author is not None and not author.startswith(RULE_AUTHOR_PREFIX):
        if p["status"] == "proposed":
            return None, f"set back to proposed by {author}: rules never override a planner"
        return None, None if p["status"] == "approved" else f"{p['status']} by {author}"
    if exception_types:
        return None, f"exception on this item: {exception_types}"
    source = p["supplier_id"] if p["proposal_type"] == "purchase_order" else p["source_location_id"]
    first_miss = None
    for rule in rules:
        if rule.proposal_type is not None and rule.proposal_type != p["proposal_type"]:
            continue
        if rule.source_id is not None and rule.source_id != source:
            continue
        if rule.abc_classes is not None and (p["abc_class"] or "") not in rule.abc_classes:
            continue
        value = p["value"]
        if rule.max_value is not None and (value is None or value > rule.max_value):
            first_miss = first_miss or (f"value {'unknown' if value is None else f'{value:,.2f}'} above "
                                        f"{rule.max_value:,.2f} (rule {rule.name})")
            continue
        usual = p["order_quantity"]
        if rule.max_quantity_vs_usual is not None:
            ratio = p["quantity"] / usual if usual and usual > 0 else None
            if ratio is None or ratio > rule.max_quantity_vs_usual + 1e-9:
                first_miss = first_miss or (
                    f"quantity {p['quantity']:,.0f} is {'?' if ratio is None else f'{ratio:.2f}'}x the usual order "
                    f"{usual or 0:,.0f}, above {rule.max_quantity_vs_usual:g}x (rule {rule.name})")
                continue
        return rule.name, None
    if first_miss:
        return None, first_miss
    return None, (f"no approval rule covers a {p['proposal_type'].replace('_', ' ')} from {source or '?'} "
                  f"of class {p['abc_class'] or '?'}")


def evaluate_rules(proposals: pl.DataFrame, exceptions: pl.DataFrame, rules: list[ApprovalRule],
                   decisions: pl.DataFrame) -> pl.DataFrame:
    """Per proposal: ``approved_by_rule`` (the rule that approves it now, or null) and ``waiting_reason``.

    ``proposals``: ``ml.purchase_proposals`` rows; ``exceptions``: ``ml.exceptions`` (product_id, location_id,
    exception_type); ``decisions``: the latest decision per proposal id (``read_latest_decisions``)."""
    ex = (exceptions.group_by("product_id", "location_id")
          .agg(pl.col("exception_type").unique().sort().str.join(", ").alias("exception_types"))
          if exceptions.height else pl.DataFrame(schema={"product_id": pl.String, "location_id": pl.String,
                                                         "exception_types": pl.String}))
    p = (proposals.join(ex, on=["product_id", "location_id"], how="left")
         .join(decisions.select("proposal_id", "decision_author"), on="proposal_id", how="left"))
    approved, waiting = [], []
    for row in p.iter_rows(named=True):
        rule, why = _decide(row, rules, row["exception_types"])
        approved.append(rule)
        waiting.append(why)
    return p.select("proposal_id", "product_id", "location_id", "status").with_columns(
        pl.Series("approved_by_rule", approved, dtype=pl.String), pl.Series("waiting_reason", waiting,
                                                                            dtype=pl.String))


@dataclass(frozen=True)
class ApprovalResult:
    evaluated: int
    approved_now: int
    approved_total: int
    waiting: int
    by_rule: dict[str, int]
    by_reason: dict[str, int]

    def describe(self) -> str:
        rules = ", ".join(f"{k} {v:,}" for k, v in sorted(self.by_rule.items())) or "none"
        return (f"approval rules: {self.approved_now:,} proposals approved now (by rule: {rules}); "
                f"{self.approved_total:,} approved in all, {self.waiting:,} wait for a planner")


def _reason_kind(reason: str | None) -> str:
    if reason is None:
        return "approved"
    for key in ("exception", "above", "no approval rule", "set back", "rejected"):
        if key in reason:
            return key
    return "other"


def apply_approval_rules(con: duckdb.DuckDBPyConnection, rules: list[ApprovalRule], *,
                         decided_at: datetime | None = None) -> ApprovalResult:
    """Evaluate the rules on ``ml.purchase_proposals`` and record the approvals (module docstring), in one
    transaction; ``ml.proposal_approval`` is replaced with every proposal's line."""
    from ml.policy.proposals import read_latest_decisions

    if not table_exists(con, ML_SCHEMA, "purchase_proposals"):
        raise ValueError("ml.purchase_proposals does not exist: run the plan first")
    proposals = read_frame(con, f"""select proposal_id, proposal_type, supplier_id, source_location_id, product_id,
        location_id, quantity, value, order_quantity, abc_class, status from {ML_SCHEMA}.purchase_proposals""")
    exceptions = (read_frame(con, f"select product_id, location_id, exception_type from {ML_SCHEMA}.exceptions")
                  if table_exists(con, ML_SCHEMA, "exceptions") else pl.DataFrame())
    latest = read_latest_decisions(con)
    result = evaluate_rules(proposals, exceptions, rules, latest)
    when = (decided_at or datetime.now(UTC)).replace(tzinfo=None)
    # new approvals: a rule approves and the proposal is not approved yet (a rule's approval on the same quantity
    # is kept by run_policy, so re-evaluating does not record it twice)
    new = result.filter(pl.col("approved_by_rule").is_not_null() & (pl.col("status") != "approved"))
    new = new.join(proposals.select("proposal_id", "quantity", "value", "order_quantity"), on="proposal_id")
    rules_by_name = {r.name: r for r in rules}
    ensure_decisions_table(con)
    con.execute("begin transaction")
    try:
        if new.height:
            seq0 = con.execute(f"select coalesce(max(decision_seq), 0) from {ML_SCHEMA}.{DECISIONS_TABLE}"
                               ).fetchall()[0][0]
            as_of = con.execute(f"select any_value(as_of_date) from {ML_SCHEMA}.purchase_proposals").fetchall()[0][0]
            rows = new.with_columns(
                (pl.int_range(1, pl.len() + 1) + seq0).cast(pl.Int64).alias("decision_seq"),
                pl.lit("approved").alias("status"),
                (pl.lit(RULE_AUTHOR_PREFIX) + pl.col("approved_by_rule")).alias("author"),
                pl.col("approved_by_rule").map_elements(
                    lambda n: f"within rule {n} (row {rules_by_name[n].row}): {rules_by_name[n].describe_bounds()}",
                    return_dtype=pl.String).alias("reason"),
                pl.lit(when).cast(pl.Datetime("us")).alias("decided_at"),
                pl.lit(as_of).cast(pl.Date).alias("proposal_as_of_date"),
                pl.col("quantity").alias("decided_quantity"),
            ).select("decision_seq", "proposal_id", "status", "author", "reason", "decided_at", "product_id",
                     "location_id", "proposal_as_of_date", "quantity", "decided_quantity")
            con.register("__new_decisions", rows.to_arrow())
            set_qty = (", approved_quantity = d.decided_quantity"
                       if "approved_quantity" in table_columns(con, ML_SCHEMA, "purchase_proposals") else "")
            con.execute(f"insert into {ML_SCHEMA}.{DECISIONS_TABLE} by name select * from __new_decisions")
            con.execute(f"""update {ML_SCHEMA}.purchase_proposals p set status = 'approved', status_author = d.author,
                status_reason = d.reason, status_changed_at = d.decided_at{set_qty} from __new_decisions d
                where p.proposal_id = d.proposal_id""")
            con.unregister("__new_decisions")
        table = result.with_columns(
            pl.when(pl.col("approved_by_rule").is_not_null()).then(pl.lit("approved")).otherwise(pl.col("status"))
            .alias("status"), pl.lit(when).cast(pl.Datetime("us")).alias("evaluated_at"))
        con.register("__approval", table.select([pl.col(c).cast(t) for c, t in APPROVAL_SCHEMA.items()]).to_arrow())
        con.execute(f"create or replace table {ML_SCHEMA}.{APPROVAL_TABLE} as select * from __approval")
        con.unregister("__approval")
        con.execute("commit")
    except BaseException:
        con.execute("rollback")
        raise
    by_rule = {k: int(v) for k, v in new.group_by("approved_by_rule").len().iter_rows()}
    status_now = table["status"]
    out = ApprovalResult(evaluated=result.height, approved_now=new.height,
                         approved_total=int((status_now == "approved").sum()),
                         waiting=int((status_now == "proposed").sum()), by_rule=by_rule,
                         by_reason=dict(Counter(_reason_kind(r) for r in result["waiting_reason"].to_list())))
    log.info("%s", out.describe())
    return out
