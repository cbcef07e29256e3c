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


def test_a_bad_service_level_edit_is_named_at_dbt_seed(tmp_path) -> None:
    """Planner-edited seeds are tested where they load: a target of 97 (for 0.97) and an unknown class fail the
    seed's tests naming the rows' values; a bad override row only warns (the policy reports it and plans the rest)."""
    import os
    import shutil
    import subprocess

    from ml.settings import DBT_PROJECT_DIR, PROJECT_ROOT
    from orchestration.dbt_cli import dbt_executable

    project = tmp_path / "dbt_project"
    shutil.copytree(DBT_PROJECT_DIR, project, ignore=shutil.ignore_patterns("target", "logs"))
    shutil.copytree(PROJECT_ROOT / "seeds", tmp_path / "seeds")
    levels = (tmp_path / "seeds" / "service_levels.csv").read_text().splitlines()
    levels[1] = levels[1].replace(",0.985,", ",97,")
    levels.append("D,X,fill_rate,0.9,a class that does not exist")
    (tmp_path / "seeds" / "service_levels.csv").write_text("\n".join(levels) + "\n")
    (tmp_path / "seeds" / "planner_overrides.csv").write_text(
        "product_id,location_id,field,value,reason,author\nP1,*,reorder_pont,5,typo,\n")
    env = {**os.environ, "STOCKTURN_WAREHOUSE": str(tmp_path / "w.duckdb")}
    proc = subprocess.run([dbt_executable(), "build", "--select", "resource_type:seed", "--project-dir", str(project),
                           "--profiles-dir", str(project)], cwd=project, env=env, capture_output=True, text=True)
    out = proc.stdout
    assert proc.returncode == 1, out[-3000:]
    assert "FAIL 1 accepted_range_service_levels_target" in out  # the 97
    assert "FAIL 1 accepted_values_service_levels_abc_class__A__B__C" in out  # the 'D'
    assert "WARN 1 accepted_values_planner_overrides_field" in out and "WARN 1 not_null_planner_overrides_author" in out
