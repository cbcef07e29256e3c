"""The severity of every dbt data test follows the written rules (fail soft on data, fail hard on structure), and
docs/data-tests.md lists them as they are."""

from __future__ import annotations

import json

from orchestration.dbt_manifest import ensure_manifest
from orchestration.dbt_tests import DOCS_PATH, data_tests, policy_for, policy_violations, render_markdown


def _manifest() -> dict:
    return json.loads(ensure_manifest().read_text())


def test_every_data_test_has_the_severity_its_rule_gives() -> None:
    manifest = _manifest()
    assert len(data_tests(manifest)) > 100
    assert policy_violations(manifest) == []
    severities = {policy_for(n).kind: n["config"]["severity"].lower() for n in data_tests(manifest)}
    # keys and grain stop the build; value invariants (and the on-hand balance) only warn
    assert severities["unique_combination_of_columns"] == "error" and severities["relationships"] == "error"
    assert severities["not_negative"] == "warn" and severities["singular"] == "warn"
    by_name = {n["name"]: n for n in data_tests(manifest)}
    assert by_name["every_landed_row_is_kept_or_quarantined"]["config"]["severity"].lower() == "error"
    assert by_name["assert_on_hand_balances"]["config"]["store_failures"] is True


def test_the_reviewed_list_is_current() -> None:
    assert DOCS_PATH.read_text() == render_markdown(_manifest()), (
        "docs/data-tests.md is out of date: run `python -m orchestration.dbt_tests`")
