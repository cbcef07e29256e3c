"""What the report sections share: the :class:`Report` they read, the words for numbers and codes in their text and
tables, and the notes a section shows when the warehouse lacks what it reads."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date

import altair as alt
import duckdb
import polars as pl

from reports import theme as th
from reports.context import Context, PlanRun
from reports.html import ChartBlock, Column, NoteBlock, Section

STOCKTURN_RUN_HINT = "Not available yet: run `stockturn run` to produce the forecasts and the replenishment policy."


@dataclass
class Report:
    """What every section reads (the open warehouse, its context, the company KPIs of the last and prior 12 months,
    the planning run) and what the sections hand on to the KPI tiles: ``kpi_values`` and the service by category."""

    con: duckdb.DuckDBPyConnection
    ctx: Context
    kpis: dict[str, dict[str, float | None]]
    plan: PlanRun
    kpi_values: dict[str, float | None] = field(default_factory=dict)
    service: pl.DataFrame | None = None


# ------------------------------------------------------------------------------------------------ words


def label(mapping: dict, value: str | None) -> str:
    """Words for a code, the code itself (made readable) when the mapping does not know it."""
    if value in mapping:
        return mapping[value]
    return "" if value is None else str(value).replace("_", " ").capitalize()


def plural(n: int, word: str) -> str:
    return f"{n:,} {word}" if n == 1 else f"{n:,} {word}s"


def not_available(needs: Iterable[str]) -> str:
    needs = list(needs)
    text = ", ".join(needs[:-1]) + " and " + needs[-1] if len(needs) > 1 else "".join(needs)
    return f"Not available: needs {text}."


def display_name(row: dict, name: str, code: str) -> str:
    value, key = row.get(name), row.get(code)
    if value and key and value != key:
        return f"{value} ({key})"
    return value or key or ""


def with_names(row: dict) -> dict:
    """Add display names "Name (code)" for product and location."""
    return row | {
        "product": display_name(row, "product_name", "product_id"),
        "location": display_name(row, "location_name", "location_id"),
    }


def col(key: str, header: str, fmt=None, numeric: bool = False, nowrap: bool = False) -> Column:
    return Column(key, header, fmt or (lambda v: "" if v is None else str(v)), numeric, nowrap)


def signed_pct(value: float | None) -> str:
    """0.0123 -> "+1.2%"; a value that rounds to zero is "0.0%" (never "-0.0%")."""
    if value is None:
        return "n/a"
    pct = round(100 * value, 1)
    return "0.0%" if pct == 0 else f"{pct:+,.1f}%"


def signed_money(value: float | None) -> str:
    """A change of value at cost: an increase carries a "+", a decrease or none is shown as ``theme.money`` does."""
    return th.money(value) if value is None or value <= 0 else "+" + th.money(value)


def arrow(before: float | None, after: float | None) -> str:
    """"47 → 4,415" (classical → recommended)."""
    return f"{th.number(before)} → {th.number(after)}"


_BARE_NUMBER = re.compile(r"(?<![\w.,/-])(\d{4,})(?![\w/-])")


def readable(text: str | None) -> str:
    """Thousands separators for the bare integers in text written by the planning run ("inventory 53050" ->
    "inventory 53,050"); years (1900-2100) are left alone."""
    if not text:
        return ""
    return _BARE_NUMBER.sub(lambda m: m.group(1) if len(m.group(1)) == 4 and 1900 <= int(m.group(1)) <= 2100
                            else f"{int(m.group(1)):,}", text)


def pct_points(value: float | None, low: float | None = None, high: float | None = None) -> str:
    """A percentage given in percent (18.3 -> "18.3%"), with its interval when known: "18.3% (14.2% to 22.1%)"."""
    if value is None:
        return "n/a"
    text = f"{value:,.1f}%"
    if low is not None and high is not None:
        text += f" ({low:,.1f}% to {high:,.1f}%)"
    return text


def long_days(value: float | None) -> str:
    """Days of supply for people: "21,965" reads as noise, "over 2 years" does not."""
    if value is None:
        return "no forecast demand"
    return "over 2 years" if value > 730 else th.number(value)


def date_text(value: date | None) -> str:
    return f"{value:%d %b %Y}" if value else ""


# ------------------------------------------------------------------------------------------------ blocks


def chart_block(key: str, data: pl.DataFrame, make: Callable[[pl.DataFrame], alt.TopLevelMixin],
                alt_text: str) -> ChartBlock | NoteBlock:
    """A chart of ``data`` (its Altair object; the spec dict is made at export), or a note when there is none."""
    if data.height == 0:
        return NoteBlock(f"{alt_text}: no data for this period.", "info")
    return ChartBlock(key=key, spec=make(data), alt_text=alt_text)


# ------------------------------------------------------------------------------------------------ gates


def lacks_marts(ctx: Context, section: Section, *names: str) -> bool:
    """Mark ``section`` not available when the warehouse lacks one of the marts it reads."""
    missing = ctx.missing_marts(*names)
    if missing:
        section.status = "not_available"
        section.detail = (f"Not available: the warehouse has no marts.{', marts.'.join(missing)}; "
                          "run `stockturn build` again (the last build stopped before it).")
        section.blocks.append(NoteBlock(section.detail, "unavailable"))
    return bool(missing)


def plan_gate(report: Report, section: Section, what: str, needs: tuple[str, ...],
              marts: tuple[str, ...] = ()) -> bool:
    """Add a note and mark ``section`` when the planning tables it reads are missing; True when it can go on.

    Missing ml tables: the planning has not run (pending). ml tables without the dbt models built on them: the
    last `stockturn run` stopped before its second dbt step (not available).
    """
    missing = [t for t in needs if t not in report.ctx.ml_tables]
    if missing:
        text = f"{what}: {STOCKTURN_RUN_HINT[0].lower()}{STOCKTURN_RUN_HINT[1:]}"
        section.blocks.append(NoteBlock(text, "pending"))
        if section.status == "ok":
            section.status, section.detail = "pending", STOCKTURN_RUN_HINT
        return False
    missing_marts = report.ctx.missing_marts(*marts)
    if missing_marts:
        text = (f"{what}: not available: the warehouse has the planning run (ml.{', ml.'.join(needs)}) but not "
                f"marts.{', marts.'.join(missing_marts)}, which `stockturn run` builds on it; run it again.")
        section.blocks.append(NoteBlock(text, "unavailable"))
        if section.status in ("ok", "pending"):
            section.status, section.detail = "partial", text
        return False
    stale = [m for m in report.plan.stale_marts if m in marts]
    if stale:
        section.blocks.append(NoteBlock(
            f"marts.{', marts.'.join(stale)} comes from an earlier planning run than the ml tables (as of "
            f"{date_text(report.plan.as_of_date)}): re-run `stockturn run` to refresh it.",
            "error"))
        if section.status == "ok":
            section.status, section.detail = "partial", "built from an earlier planning run"
    return True


def plan_note(report: Report, section: Section) -> None:
    """Say which planning run ``section`` shows, and that the latest one was rejected when it was."""
    plan = report.plan
    if plan.as_of_date is not None:
        version = f", {plan.model_version}" if plan.model_version else ""
        section.blocks.append(NoteBlock(f"Planning run as of {date_text(plan.as_of_date)}{version}.", "info"))
    if plan.rejected is not None:
        _, as_of, failed = plan.rejected
        section.blocks.append(NoteBlock(
            f"The latest planning run (as of {date_text(as_of)}) was not written: it failed {failed}. The plan shown "
            "is the previous one; audit.plan_check_results has the detail.", "error"))
        if section.status == "ok":
            section.status, section.detail = "partial", "the latest planning run was rejected by its checks"
