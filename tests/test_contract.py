"""The landing contract, the dbt sources, the staging models and docs/data-contract.md say the same thing."""

from __future__ import annotations

import re

import pytest

from ml.ingest.contract import ENTITIES, FIELD_ISSUES, REJECT_REASONS
from ml.ingest.render_contract import rendered_files
from ml.settings import DBT_PROJECT_DIR


def test_generated_sources_and_contract_document_are_up_to_date() -> None:
    stale = [str(path) for path, text in rendered_files().items() if not path.exists() or path.read_text() != text]
    assert not stale, f"run `python -m ml.ingest.render_contract`; stale: {stale}"


@pytest.mark.parametrize("entity", ENTITIES, ids=lambda e: e.path)
def test_each_staging_model_types_every_contract_column(entity) -> None:
    folder = DBT_PROJECT_DIR / "models" / "staging" / entity.system
    sql = (folder / f"stg_{entity.raw_table}__validated.sql").read_text()
    declared = dict(re.findall(r"\('(\w+)', '(\w+)', (?:true|false)\)", sql))
    assert declared == {c.name: c.type for c in entity.columns}
    required = set(re.findall(r"\('(\w+)', '\w+', true\)", sql))
    assert required == set(entity.required_columns)


def test_quality_models_cover_every_entity() -> None:
    for model in ("data_quality_reconciliation", "data_quality_rejections"):
        sql = (DBT_PROJECT_DIR / "models" / "marts" / "quality" / f"{model}.sql").read_text()
        block = sql.split("set landing_tables = [", 1)[1].split("]", 1)[0]
        listed = set(re.findall(r"\('(\w+)', '(\w+)'\)", block))
        assert listed == {(e.system, e.name) for e in ENTITIES}, model


def test_every_reason_code_staging_can_emit_is_documented() -> None:
    emitted = set()
    for path in (DBT_PROJECT_DIR / "models" / "staging").rglob("*.sql"):
        emitted |= set(re.findall(r"reason := '(\w+)'", path.read_text()))
    emitted |= set(re.findall(r"duplicate_reason='(\w+)'", "".join(
        p.read_text() for p in (DBT_PROJECT_DIR / "models" / "staging").rglob("*.sql"))))
    macro = (DBT_PROJECT_DIR / "macros" / "landing_parsing.sql").read_text()
    emitted |= set(re.findall(r'"(invalid_\w+)"', macro)) | {"missing_value", "duplicate_key"}
    assert emitted <= set(REJECT_REASONS), emitted - set(REJECT_REASONS)


def test_every_field_issue_code_staging_can_emit_is_documented_and_accepted() -> None:
    emitted = set()
    for path in (DBT_PROJECT_DIR / "models" / "staging").rglob("*.sql"):
        emitted |= set(re.findall(r"issue := '(\w+)'", path.read_text()))
    assert emitted and emitted == set(FIELD_ISSUES), emitted ^ set(FIELD_ISSUES)
    quality = (DBT_PROJECT_DIR / "models" / "marts" / "quality" / "_quality__models.yml").read_text()
    block = quality.split("- name: data_quality_field_issues", 1)[1].split("- name: issue\n", 1)[1]
    accepted = set(re.findall(r"'(\w+)'", block.split("values: [", 1)[1].split("]", 1)[0]))
    assert accepted == set(FIELD_ISSUES)
