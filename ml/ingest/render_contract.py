"""Render the landing contract into the dbt sources and the data-contract document.

``python -m ml.ingest.render_contract`` rewrites ``dbt_project/models/staging/<system>/__sources.yml`` and the
generated part of ``docs/data-contract.md`` from :mod:`ml.ingest.contract`. The test suite fails when the
committed files differ from what this renders, so edit the contract, then run this module.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ml.ingest.contract import ENTITIES, FIELD_ISSUES, REJECT_REASONS, SYSTEMS, Entity
from ml.settings import DBT_PROJECT_DIR, PROJECT_ROOT

RAW_SCHEMA = "raw"
DOC_PATH = PROJECT_ROOT / "docs" / "data-contract.md"
DOC_BEGIN = "<!-- BEGIN GENERATED: ml/ingest/render_contract.py -->"
DOC_END = "<!-- END GENERATED -->"

SYSTEM_DESCRIPTIONS = {
    "master": "Master data: products, locations, suppliers and purchasing terms.",
    "sales": "Point-of-sale / order lines, promotions and list prices.",
    "procurement": "Purchase-order lines and goods receipts.",
    "logistics": "Stock transfers between locations.",
    "finance": "Standard cost history and the COGS ledger.",
    "inventory": "Book stock snapshots and cycle counts.",
    "calendar": "Holidays, local events, paydays and benefit days (forecast features).",
    "external": "External signals such as weather, macro indicators and marketing, with the date each value "
    "became known (forecast features).",
}


def _yaml_str(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def sources_yaml(system: str) -> str:
    lines = [
        "# Generated from ml/ingest/contract.py by `python -m ml.ingest.render_contract`: edit the contract, not this.",
        "# The loader (ml/ingest/loader.py) lands every file as text in schema raw; staging types and validates it.",
        "sources:",
        f"  - name: {system}",
        f"    description: {_yaml_str(SYSTEM_DESCRIPTIONS[system])}",
        f"    schema: {RAW_SCHEMA}",
        "    tables:",
    ]
    for ent in (e for e in ENTITIES if e.system == system):
        lines += [
            f"      - name: {ent.name}",
            f"        identifier: {ent.raw_table}",
            f"        description: {_yaml_str(ent.description + (' Required.' if ent.required else ' Optional.'))}",
            "        config:",
            "          meta:",
            f"            landing_path: {ent.path}",
            f"            required: {'true' if ent.required else 'false'}",
            "            dagster:",
            f"              asset_key: [\"raw\", \"{ent.raw_table}\"]",
            "        columns:",
        ]
        for col in ent.columns:
            desc = col.description + (f" Unit: {col.unit}." if col.unit else "")
            lines += [
                f"          - name: {col.name}",
                f"            description: {_yaml_str(desc)}",
                "            data_type: varchar",
                "            config:",
                "              meta:",
                f"                contract_type: {col.type}",
                f"                required: {'true' if col.required else 'false'}",
            ]
        lines += [
            "          - name: _source_file",
            "            description: \"Landing file the row came from, relative to the landing root.\"",
            "            data_type: varchar",
            "          - name: _source_row",
            "            description: \"1-based data row within that file (header not counted).\"",
            "            data_type: bigint",
        ]
    return "\n".join(lines) + "\n"


def _entity_doc(ent: Entity) -> str:
    out = [
        f"### {ent.name}",
        "",
        f"`{ent.path}.csv` (or `.parquet`, or parts `{ent.path}_*.csv` / `{ent.path}/*.csv`): "
        f"**{'required' if ent.required else 'optional'}**. {ent.description}",
        "",
        f"- Grain: {ent.grain}.",
        f"- Key: {', '.join(f'`{k}`' for k in ent.key) if ent.key else 'none (see rules)'}.",
        f"- Feeds: {ent.feeds}.",
    ]
    out += [f"- {rule}" for rule in ent.extra]
    out += [
        "",
        "| column | type | required | unit | meaning |",
        "| --- | --- | --- | --- | --- |",
    ]
    for col in ent.columns:
        out.append(
            f"| `{col.name}` | {col.type} | {'yes' if col.required else ''} | {col.unit or ''} | {col.description} |"
        )
    return "\n".join(out) + "\n"


def contract_markdown() -> str:
    parts = [DOC_BEGIN, ""]
    for system in SYSTEMS:
        parts.append(f"## `{system}/`: {SYSTEM_DESCRIPTIONS[system]}\n")
        parts += [_entity_doc(e) for e in ENTITIES if e.system == system]
    parts.append("## Quarantine reason codes\n")
    parts.append("| reason | meaning |\n| --- | --- |")
    parts += [f"| `{code}` | {text} |" for code, text in REJECT_REASONS.items()]
    parts.append("\n## Field issue codes (row kept, value set to null)\n")
    parts.append("| issue | meaning |\n| --- | --- |")
    parts += [f"| `{code}` | {text} |" for code, text in FIELD_ISSUES.items()]
    parts += ["", DOC_END]
    return "\n".join(parts)


def render_doc(existing: str) -> str:
    """Replace the generated block of the document, keeping the hand-written text around it."""
    if DOC_BEGIN in existing and DOC_END in existing:
        head, rest = existing.split(DOC_BEGIN, 1)
        _, tail = rest.split(DOC_END, 1)
        return head + contract_markdown() + tail
    return existing.rstrip("\n") + "\n\n" + contract_markdown() + "\n"


def rendered_files() -> dict[Path, str]:
    files = {
        DBT_PROJECT_DIR / "models" / "staging" / system / "__sources.yml": sources_yaml(system) for system in SYSTEMS
    }
    existing = DOC_PATH.read_text() if DOC_PATH.exists() else "# Landing-zone data contract\n"
    files[DOC_PATH] = render_doc(existing)
    return files


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if any rendered file is out of date")
    args = parser.parse_args(argv)
    stale = []
    for path, text in rendered_files().items():
        current = path.read_text() if path.exists() else None
        if current != text:
            stale.append(path)
            if not args.check:
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(text)
    for path in stale:
        print(f"{'stale' if args.check else 'wrote'}: {path.relative_to(PROJECT_ROOT)}")
    return 1 if (args.check and stale) else 0


if __name__ == "__main__":
    sys.exit(main())
