"""Approval rules and order export (issue 12, section 2) on a real warehouse: the shared small demo company built by
the CLI (its seeds loaded by dbt into planning.*), planned with the naive test lead-time demand."""

from __future__ import annotations

import re
import shutil
from datetime import datetime
from pathlib import Path

import duckdb
import polars as pl
import pytest

from ml.policy import run_policy, set_proposal_status, write_policy_run
from ml.policy.approval import (
    ApprovalRulesError,
    apply_approval_rules,
    evaluate_rules,
    parse_rules,
    read_rules,
)
from ml.policy.order_export import FILES, export_orders
from ml.policy.proposals import read_latest_decisions
from ml.settings import SEEDS_DIR
from tests.conftest import run_stockturn
from tests.policy_helpers import naive_lead_time_demand

pytestmark = pytest.mark.slow

RULE_COLUMNS = ("rule_name", "proposal_type", "source_id", "abc_classes", "max_value", "max_quantity_vs_usual", "note")


def rules_frame(*rows: tuple) -> pl.DataFrame:
    frame = pl.DataFrame([dict(zip(RULE_COLUMNS, r, strict=True)) for r in rows],
                         schema={c: pl.String for c in RULE_COLUMNS})
    return frame.with_row_index("seed_row", offset=1).with_columns(pl.lit("approval_rules.csv").alias("seed_source"))


@pytest.fixture
def planned_copy(warehouse_copy: Path) -> Path:
    with duckdb.connect(str(warehouse_copy)) as con:
        (as_of,) = con.execute("select max(date_day) from marts.fct_inventory_daily").fetchall()[0]
        run = run_policy(con, naive_lead_time_demand(con, as_of, n_samples=100), None, as_of=as_of)
        write_policy_run(con, run)
    return warehouse_copy


def _frames(con):
    proposals = pl.DataFrame(con.execute(
        "select proposal_id, proposal_type, supplier_id, source_location_id, product_id, location_id, quantity, "
        "value, order_quantity, abc_class, status from ml.purchase_proposals").df())
    exceptions = pl.DataFrame(con.execute("select product_id, location_id, exception_type from ml.exceptions").df())
    return proposals, exceptions


def test_bad_rules_name_their_row_and_approve_nothing() -> None:
    good = ("ok", "transfer", "*", "B|C", "", "1.5", "")
    for bad, message in ((("", "transfer", "", "", "", "", ""), "row 2: rule_name is required"),
                         (("ok", "", "", "", "", "", ""), "rule_name 'ok' is already used on row 1"),
                         (("x", "purchase", "", "", "", "", ""), "proposal_type 'purchase'"),
                         (("x", "", "", "A|D", "", "", ""), "abc_classes 'A|D'"),
                         (("x", "", "", "", "-5", "", ""), "max_value must be a non-negative number"),
                         (("x", "", "", "", "", "0", ""), "max_quantity_vs_usual must be a positive number"),
                         (("x", "", "", "", "lots", "", ""), "max_value 'lots' is not a number")):
        with pytest.raises(ApprovalRulesError, match=message.replace("(", r"\(").replace("|", r"\|")):
            parse_rules(rules_frame(good, bad))
    assert parse_rules(rules_frame(good))[0].abc_classes == frozenset({"B", "C"})


def test_the_shipped_rules_are_loaded_by_dbt_and_read(small_warehouse: Path) -> None:
    with duckdb.connect(str(small_warehouse), read_only=True) as con:
        rules = read_rules(con, Path("/nonexistent"))  # from planning.approval_rules, not the CSV
    assert [r.name for r in rules] == pl.read_csv(SEEDS_DIR / "approval_rules.csv")["rule_name"].to_list()


def test_rules_approve_routine_proposals_only(planned_copy: Path) -> None:
    with duckdb.connect(str(planned_copy)) as con:
        proposals, exceptions = _frames(con)
        assert proposals.height >= 5
        flagged = proposals.join(exceptions.unique(["product_id", "location_id"]), on=["product_id", "location_id"])
        assert flagged.height > 0, "the demo has proposals with exceptions"
        decisions = read_latest_decisions(con)
        rules = parse_rules(rules_frame(("everything", "", "", "", "", "", "")))
        result = evaluate_rules(proposals, exceptions, rules, decisions)
    approved = set(result.filter(pl.col("approved_by_rule").is_not_null())["proposal_id"])
    # an unbounded rule approves everything except the exceptions, whose reason names them
    assert approved == set(proposals["proposal_id"]) - set(flagged["proposal_id"])
    waits = result.filter(pl.col("proposal_id").is_in(flagged["proposal_id"].implode()))["waiting_reason"]
    assert all(w.startswith("exception on this item: ") for w in waits)

    # bounds: the value bound and the quantity-vs-usual bound each hold back what exceeds them, and say so
    clean = proposals.filter(~pl.col("proposal_id").is_in(flagged["proposal_id"].implode()))
    median_value = float(clean["value"].median())
    rules = parse_rules(rules_frame(("cheap", "", "", "", str(median_value), "", "")))
    res = evaluate_rules(clean, exceptions.clear(), rules, decisions)
    by_id = dict(zip(res["proposal_id"], res["approved_by_rule"], strict=True))
    for row in clean.iter_rows(named=True):
        assert (by_id[row["proposal_id"]] == "cheap") == (row["value"] <= median_value)
    assert res.filter(pl.col("approved_by_rule").is_null())["waiting_reason"].str.contains("above").all()
    ratio = clean.with_columns((pl.col("quantity") / pl.col("order_quantity")).alias("r"))
    rules = parse_rules(rules_frame(("lot", "", "", "", "", "1.0", "")))
    res = evaluate_rules(clean, exceptions.clear(), rules, decisions)
    ok = dict(zip(res["proposal_id"], res["approved_by_rule"].is_not_null(), strict=True))
    assert all(ok[r["proposal_id"]] == (r["r"] <= 1.0 + 1e-9) for r in ratio.iter_rows(named=True))

    # scope: a class or type no rule covers waits with that reason; the first matching rule wins
    rules = parse_rules(rules_frame(("a_only", "", "", "A", "", "", ""), ("transfers", "transfer", "", "", "", "", ""),
                                    ("all", "", "", "", "", "", "")))
    res = evaluate_rules(clean, exceptions.clear(), rules, decisions).join(clean, on="proposal_id")
    for r in res.iter_rows(named=True):
        want = "a_only" if r["abc_class"] == "A" else "transfers" if r["proposal_type"] == "transfer" else "all"
        assert r["approved_by_rule"] == want


def test_approvals_are_audited_once_and_never_override_a_planner(planned_copy: Path) -> None:
    rules = parse_rules(rules_frame(("everything", "", "", "", "", "", "")))
    with duckdb.connect(str(planned_copy)) as con:
        proposals, exceptions = _frames(con)
        clean = proposals.join(exceptions, on=["product_id", "location_id"], how="anti")
        rejected, reset = clean["proposal_id"][0], clean["proposal_id"][1]
        set_proposal_status(con, rejected, "rejected", "ann", "supplier is closing")
        set_proposal_status(con, reset, "proposed", "bob", "want to check it")
        first = apply_approval_rules(con, rules, decided_at=datetime(2024, 3, 1))
        assert first.approved_now == clean.height - 2
        second = apply_approval_rules(con, rules, decided_at=datetime(2024, 3, 2))
        assert second.approved_now == 0 and second.approved_total == first.approved_total
        trail = pl.DataFrame(con.execute("select * from ml.proposal_decisions").df())
        by_rule = trail.filter(pl.col("author") == "rule:everything")
        assert by_rule.height == clean.height - 2 and by_rule["proposal_id"].n_unique() == by_rule.height
        assert by_rule["reason"].str.starts_with("within rule everything (row 1)").all()
        status = dict(con.execute("select proposal_id, status from ml.purchase_proposals").fetchall())
        assert status[rejected] == "rejected" and status[reset] == "proposed"
        waits = dict(con.execute("select proposal_id, waiting_reason from ml.proposal_approval").fetchall())
        assert waits[reset] == "set back to proposed by bob: rules never override a planner"
        # a planner's rejection of a rule's approval stands when the rules run again
        victim = by_rule["proposal_id"][0]
        set_proposal_status(con, victim, "rejected", "ann", "too early")
        apply_approval_rules(con, rules)
        assert con.execute("select status from ml.purchase_proposals where proposal_id = ?", [victim]
                           ).fetchall()[0][0] == "rejected"
        # a re-plan keeps the rule's approvals (same quantity), so the trail does not grow
        (as_of,) = con.execute("select max(as_of_date) from ml.purchase_proposals").fetchall()[0]
        again = run_policy(con, naive_lead_time_demand(con, as_of, n_samples=100), None, as_of=as_of)
        write_policy_run(con, again)
        n = con.execute("select count(*) from ml.proposal_decisions").fetchall()[0][0]
        apply_approval_rules(con, rules)
        assert con.execute("select count(*) from ml.proposal_decisions").fetchall()[0][0] == n


def test_export_writes_each_approved_proposal_once_and_recovers_a_lost_folder(planned_copy: Path,
                                                                               tmp_path: Path) -> None:
    out = tmp_path / "erp"
    with duckdb.connect(str(planned_copy)) as con:
        assert export_orders(con, out).export_id is None  # nothing approved yet
        ids = [r[0] for r in con.execute("select proposal_id from ml.purchase_proposals order by proposal_id"
                                         ).fetchall()]
        for pid in ids[:3]:
            set_proposal_status(con, pid, "approved", "ann")
        first = export_orders(con, out, exported_at=datetime(2024, 3, 1, 8))
        assert first.lines == 3 and first.folder == out / "20240301T080000-00001"
        assert sorted(p.name for p in first.folder.iterdir()) == sorted(FILES)
        assert export_orders(con, out).export_id is None  # idempotent
        for pid in ids[3:5]:
            set_proposal_status(con, pid, "approved", "ann")
        second = export_orders(con, out, exported_at=datetime(2024, 3, 1, 9))
        assert second.lines == 2
        lines = pl.concat([pl.read_csv(f / name, infer_schema=False) for f in (first.folder, second.folder)
                           for name in ("purchase_order_lines.csv", "transfer_order_lines.csv")], how="diagonal")
        assert sorted(lines["proposal_id"]) == sorted(ids[:5])  # every approved proposal exactly once
        assert lines["order_number"].str.starts_with("PO-00002").sum() + \
            lines["order_number"].str.starts_with("TO-00002").sum() == 2  # numbers never reused
        headers = pl.read_csv(first.folder / "purchase_order_headers.csv")
        if headers.height:
            po_lines = pl.read_csv(first.folder / "purchase_order_lines.csv")
            assert headers["lines"].sum() == po_lines.height
            assert headers["supplier_id"].n_unique() == headers.height  # one order per supplier and date
        # a run killed after the commit and before the rename: the folder is missing; the next export writes it
        # again from the recorded lines, identical, before anything new
        saved = {p.name: p.read_bytes() for p in second.folder.iterdir()}
        shutil.rmtree(second.folder)
        third = export_orders(con, out)
        assert third.export_id is None and third.recovered == [second.export_id]
        assert {p.name: p.read_bytes() for p in second.folder.iterdir()} == saved


def test_cli_lists_why_proposals_wait_and_exports(planned_copy: Path, tmp_path: Path) -> None:
    run_stockturn("proposals", "--warehouse", str(planned_copy), "auto-approve")
    listing = run_stockturn("proposals", "--warehouse", str(planned_copy), "list").stdout
    assert "waits: exception on this item" in listing
    waiting = re.findall(r"^(\w{16})  proposed .* qty\s+([\d,]+)", listing, flags=re.M)
    pid, qty = waiting[0][0], float(waiting[0][1].replace(",", ""))
    no_reason = run_stockturn("proposals", "--warehouse", str(planned_copy), "approve", pid, "--author", "ann",
                              "--quantity", str(qty + 5), check=False)
    assert no_reason.returncode != 0 and "needs a reason" in no_reason.stderr
    changed = run_stockturn("proposals", "--warehouse", str(planned_copy), "approve", pid, "--author", "ann",
                            "--quantity", str(qty + 5), "--reason", "promotion next week").stdout
    assert f"approved by ann, {qty + 5:,.0f} instead of the proposed {qty:,.0f}" in changed
    out = run_stockturn("proposals", "--warehouse", str(planned_copy), "export", "--out", str(tmp_path / "o")).stdout
    assert "exported" in out
    again = run_stockturn("proposals", "--warehouse", str(planned_copy), "export", "--out", str(tmp_path / "o")).stdout
    assert "no approved proposals left to export" in again
