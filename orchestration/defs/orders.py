"""The order release after the plan: routine proposals approved by the planners' rules, and, when a folder is
set, approved orders exported for the ERP (``ml.policy.approval``, ``ml.policy.order_export``).

``order_release`` materializes ``ml.proposal_approval`` (why each proposal waits, or which rule approved it). It
reads ``ml.purchase_proposals`` and ``ml.exceptions`` from the policy step and the seed ``approval_rules`` (so an
edit of ``seeds/approval_rules.csv`` makes only this step stale). Approvals go to the append-only
``ml.proposal_decisions`` with author ``rule:<name>``. With ``order_export_dir`` set in the policy settings
(``stockturn.toml`` ``[policy]``, or run config), it then exports every approved, never-exported proposal to that
folder; otherwise ``stockturn proposals export --out DIR`` does it on demand. A rules file that cannot be read
fails the step with its file and row, and nothing is approved.
"""

import dagster as dg

from ml.warehouse import ML_SCHEMA, connect
from orchestration.defs.planning import ML_KEYS, PlanningConfig, planning_settings
from orchestration.defs.resources import WAREHOUSE_POOL, StockturnPaths

APPROVAL_KEY = dg.AssetKey([ML_SCHEMA, "proposal_approval"])
DECISION_VALUE_KEY = dg.AssetKey([ML_SCHEMA, "planner_decision_value"])


def build_order_release_asset(seed_keys: list[dg.AssetKey]) -> dg.AssetsDefinition:
    @dg.asset(key=APPROVAL_KEY, deps=[ML_KEYS["purchase_proposals"], ML_KEYS["exceptions"], *seed_keys],
              group_name="planning", pool=WAREHOUSE_POOL, kinds={"python", "duckdb"},
              description="Routine proposals approved by seeds/approval_rules.csv (never an exception, never over "
                          "a planner's decision), and approved orders exported for the ERP when a folder is set.")
    def order_release(context: dg.AssetExecutionContext, config: PlanningConfig, paths: StockturnPaths):
        from ml.policy.approval import ApprovalRulesError, apply_approval_rules, read_rules
        from ml.policy.config import PolicyConfig
        from ml.policy.order_export import export_orders

        policy_config = PolicyConfig.from_dict(dict(planning_settings(config, paths).policy))
        metadata: dict[str, object] = {}
        with connect(paths.warehouse_path, claim=True) as con:
            try:
                rules = read_rules(con, policy_config.seeds_path()) if policy_config.auto_approve else []
            except ApprovalRulesError as exc:
                raise dg.Failure(description=f"approval rules cannot be read, nothing was approved: {exc}") from exc
            result = apply_approval_rules(con, rules)
            context.log.info(result.describe())
            metadata.update({
                "dagster/row_count": result.evaluated, "rules": len(rules), "approved_now": result.approved_now,
                "approved_total": result.approved_total,
                "waiting_for_a_planner": result.waiting,
                "approved_by_rule": dg.MetadataValue.json(result.by_rule),
                "why_proposals_wait": dg.MetadataValue.json(result.by_reason),
            })
            if policy_config.order_export_dir:
                export = export_orders(con, policy_config.order_export_dir)
                context.log.info(export.describe())
                metadata.update({"export": export.describe(), "exported_lines": export.lines,
                                 "export_folder": str(export.folder) if export.folder else ""})
        return dg.MaterializeResult(metadata=metadata)

    return order_release


@dg.asset(key=DECISION_VALUE_KEY, deps=[ML_KEYS["inventory_policy"]], group_name="planning", pool=WAREHOUSE_POOL,
          kinds={"python", "duckdb"},
          description="What each planner decision changed: every override of a reorder point or order quantity "
                      "(the last 91 days of demand replayed with the planner's numbers and with the policy's) and "
                      "every proposal rejected or approved with another quantity (up to 91 days after it, replayed "
                      "from that day's stock with the policy kept with the decision): inventory value, fill, lost "
                      "margin, net value, per planner and reason.")
def planner_decisions(context: dg.AssetExecutionContext, config: PlanningConfig, paths: StockturnPaths):
    from ml.policy.config import PolicyConfig
    from ml.simulation.decision_value import decision_value, summarise, write_decision_value

    policy_config = PolicyConfig.from_dict(dict(planning_settings(config, paths).policy))
    with connect(paths.warehouse_path, claim=True) as con:
        values = decision_value(con, policy_config=policy_config)
        write_decision_value(con, values)
    measured = values.filter(values["measured"]) if values.height else values
    table = summarise(values) if values.height else None
    return dg.MaterializeResult(metadata={
        "dagster/row_count": values.height, "decisions": values.height,
        "overridden_series": int((values["decision_kind"] == "override").sum()) if values.height else 0,
        "proposal_decisions": int((values["decision_kind"] != "override").sum()) if values.height else 0,
        "measured": measured.height,
        "gains": int((values["verdict"] == "gain").sum()) if values.height else 0,
        "losses": int((values["verdict"] == "loss").sum()) if values.height else 0,
        "net_value": float(measured["net_value"].sum()) if measured.height else 0.0,
        "by_planner_and_reason": dg.MetadataValue.md(_markdown(table))
        if table is not None and table.height else "no decisions measured",
    })


def _markdown(table) -> str:
    cols = table.columns
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for row in table.iter_rows():
        lines.append("| " + " | ".join(f"{v:,.2f}" if isinstance(v, float) else str(v) for v in row) + " |")
    return "\n".join(lines)
