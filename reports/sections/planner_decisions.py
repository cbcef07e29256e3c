"""The recommendations' planner decisions: what the planners' overrides and proposal decisions changed, replayed
(ml.planner_decision_value; docs/planner-decisions.md).
"""

from __future__ import annotations

import duckdb
import polars as pl

from reports import theme as th
from reports.context import frame
from reports.html import NoteBlock, Section, TableBlock
from reports.sections.common import Report, col, readable

# ------------------------------------------------------------------------------------------------ query


def planner_decision_value(con: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    """``ml.planner_decision_value`` (what each planner override changed, replayed)."""
    return frame(con, "select * from ml.planner_decision_value")


# ------------------------------------------------------------------------------------------------ block


def add_planner_decisions(report: Report, section: Section) -> None:
    """What the planners' decisions changed, per planner, kind of decision and reason (nothing when none)."""
    values = planner_decision_value(report.con)
    if values.is_empty():
        return
    if "decision_kind" not in values.columns:  # written by an older stockturn: overrides only
        values = values.with_columns(pl.lit("override").alias("decision_kind"))
    measured = values.filter(pl.col("measured"))
    not_measured = values.filter(~pl.col("measured"))
    if measured.is_empty():
        section.blocks.append(NoteBlock(
            f"Planner decisions: {values.height:,}, none replayable yet (" + "; ".join(
                sorted(set(not_measured["not_measured_reason"].drop_nulls().to_list()))) + ").", "info"))
        return
    from ml.simulation.decision_value import summarise

    table = summarise(values)
    kinds = {"override": "override", "rejected_proposal": "rejected proposal",
             "changed_proposal": "changed quantity"}
    waiting = not_measured.filter(pl.col("not_measured_reason").str.starts_with("not measured yet")).height
    section.blocks.append(TableBlock(
        f"What the planners' decisions changed: {measured.height:,} decisions replayed, net "
        f"{th.money(float(measured['net_value'].sum()))}",
        [
            col("author", "Planner"), col("decision_kind", "Decision", lambda v: kinds.get(v, v)),
            col("reason", "Reason", readable),
            col("decisions", "Decisions", th.number, True), col("gains", "Gains", th.number, True),
            col("losses", "Losses", th.number, True),
            col("inventory_value_change", "Inventory value change", th.money, True),
            col("lost_margin_saved", "Lost margin saved", th.money, True),
            col("net_value", "Net value", th.money, True),
        ],
        table.to_dicts(),
        note="Each override of a reorder point or order quantity (seeds/planner_overrides.csv) is replayed on the "
             "last days of demand with the planner's numbers and with the policy's, from the same stock. Each "
             "proposal a planner rejected or approved with another quantity is replayed forward from its day, "
             "on the demand that landed since, with the quantity proposed and with the planner's, under the "
             "policy in force that day. Net value = lost margin saved - extra holding cost; negative: the "
             "policy's own number would have done better. "
             + (f"{waiting:,} proposal decisions are too recent to measure yet. " if waiting else "")
             + (f"{not_measured.height - waiting:,} other decisions are not replayable (facts about the item, "
                "service targets, distribution centres). " if not_measured.height - waiting else "")
             + "Details per item: ml.planner_decision_value; method: docs/planner-decisions.md.",
    ))
