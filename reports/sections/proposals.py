"""The recommendations' purchase and transfer proposals: what this run proposed, who approved what, and the largest
proposals still awaiting a planner.
"""

from __future__ import annotations

import duckdb
import polars as pl

from reports import theme as th
from reports.context import PRODUCT_LOCATION_NAMES, Context, columns, frame
from reports.html import NoteBlock, Section, TableBlock
from reports.sections.common import Report, col, date_text, display_name, label, readable, with_names

PROPOSAL_TYPES = {"purchase_order": "Purchase order", "transfer": "Transfer"}


# ------------------------------------------------------------------------------------------------ queries


def proposal_totals(con: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    """Proposals by status and type: how many, units and value at cost."""
    return frame(
        con,
        """
        select coalesce(status, 'proposed') as status, proposal_type, count(*) as proposals,
               sum(quantity) as units, coalesce(sum(value), 0) as value
        from ml.purchase_proposals
        group by all
        order by status, proposal_type
        """,
    )


def proposals_awaiting(con: duckdb.DuckDBPyConnection, ctx: Context, limit: int = 15) -> pl.DataFrame:
    """Proposals still awaiting a planner's decision (status 'proposed'), largest value first."""
    cols = set(columns(con, "ml", "purchase_proposals"))
    supplier_name = "s.supplier_name" if "dim_supplier" in ctx.marts else "null::varchar"
    supplier_join = ("left join marts.dim_supplier s on s.supplier_id = d.supplier_id"
                     if "dim_supplier" in ctx.marts else "")
    optional = ", ".join(f"d.{c}" if c in cols else f"null as {c}" for c in ("days_covered", "abc_class"))
    approval = "proposal_approval" in ctx.ml_tables
    return frame(
        con,
        f"""
        select
            d.proposal_id, d.proposal_type, d.supplier_id, {supplier_name} as supplier_name,
            d.source_location_id, sl.location_name as source_location_name,
            d.product_id, p.product_name, p.category, d.location_id, l.location_name,
            d.quantity, d.unit_cost, d.value, d.order_date, d.expected_arrival_date, {optional}, d.reason,
            {"a.waiting_reason" if approval else "null::varchar"} as waiting_reason
        from ml.purchase_proposals d
        {PRODUCT_LOCATION_NAMES}
        left join marts.dim_location sl on sl.location_id = d.source_location_id
        {"left join ml.proposal_approval a on a.proposal_id = d.proposal_id" if approval else ""}
        {supplier_join}
        where coalesce(d.status, 'proposed') = 'proposed'
        order by d.value desc nulls last, d.proposal_id
        limit ?
        """,
        [limit],
    )


def approvals_by_author(con: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    """Approved proposals of the run by who approved them: ``rule:<name>`` or a planner (``approver``, ``kind``
    'rule' or 'planner', ``proposals``, ``value``)."""
    if "status_author" not in columns(con, "ml", "purchase_proposals"):
        return pl.DataFrame(schema={"approver": pl.String, "kind": pl.String, "proposals": pl.Int64,
                                    "value": pl.Float64})
    return frame(con, """
        select coalesce(status_author, '?') as approver,
               case when status_author like 'rule:%' then 'rule' else 'planner' end as kind,
               count(*) as proposals, sum(value) as value
        from ml.purchase_proposals where status = 'approved'
        group by all order by proposals desc, approver""")


# ------------------------------------------------------------------------------------------------ block


def add_proposals(report: Report, section: Section) -> None:
    """The run's proposals by status and type, who approved them, and the largest still awaiting a planner."""
    totals = proposal_totals(report.con)
    awaiting = totals.filter(pl.col("status") == "proposed")
    n, value = int(awaiting["proposals"].sum() or 0), float(awaiting["value"].sum() or 0.0)
    report.kpi_values |= {"proposals_awaiting": n, "proposals_awaiting_value": value}
    if totals.height == 0:
        section.blocks.append(NoteBlock("No purchase or transfer proposals: no inventory position is at or "
                                        "below its reorder point.", "info"))
        return
    parts = [f"{int(r['proposals']):,} {r['status']} {label(PROPOSAL_TYPES, r['proposal_type']).lower()}"
             f"{'s' if r['proposals'] != 1 else ''} ({th.money(r['value'])})" for r in totals.to_dicts()]
    section.blocks.append(NoteBlock("Proposals of this run: " + "; ".join(parts) + ".", "info"))
    approvers = approvals_by_author(report.con)
    if approvers.height:
        by_rule = approvers.filter(pl.col("kind") == "rule")
        by_planner = approvers.filter(pl.col("kind") == "planner")
        text = (f"Approved by the rules in seeds/approval_rules.csv: {int(by_rule['proposals'].sum()):,} "
                f"({th.money(float(by_rule['value'].sum() or 0.0))})")
        if by_rule.height:
            text += " - " + ", ".join(f"{r['approver'].removeprefix('rule:')} {int(r['proposals']):,}"
                                      for r in by_rule.to_dicts())
        text += f"; by planners: {int(by_planner['proposals'].sum()):,}. Exceptions always wait for a planner."
        section.blocks.append(NoteBlock(text, "info"))
    if n == 0:
        return
    rows = proposals_awaiting(report.con, report.ctx, limit=12)
    section.blocks.append(TableBlock(
        f"Purchase proposals awaiting approval: {n:,} worth {th.money(value)} at cost (largest first)",
        [
            col("type", "Type"), col("from", "From"), col("product", "Product"), col("location", "To"),
            col("quantity", "Units", th.number, True), col("value", "Value at cost", th.money, True),
            col("order_date", "Order by", date_text, nowrap=True),
            col("expected_arrival_date", "Expected arrival", date_text, nowrap=True),
            col("days_covered", "Days covered", th.number, True),
            col("reason", "Why", readable),
            col("waiting_reason", "Waits because", readable),
        ],
        [with_names(r) | {
            "type": label(PROPOSAL_TYPES, r["proposal_type"]),
            "from": (display_name(r, "supplier_name", "supplier_id") if r["proposal_type"] == "purchase_order"
                     else display_name(r, "source_location_name", "source_location_id")),
        } for r in rows.to_dicts()],
        note=(f"Showing the {rows.height} largest of {n:,}. " if n > rows.height else "")
        + "Approve or reject with `stockturn proposals`; decisions are kept across re-runs. Routine proposals are "
          "approved by seeds/approval_rules.csv; \"Waits because\" says why these were not.",
    ))
