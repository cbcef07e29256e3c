"""What every section's charts share: inline data, titles, the month axis, the dumbbell, and the text clipping.

Each section module (:mod:`reports.sections`) has one function per chart: an aggregated frame in, an Altair chart
out, titled with what to look at. Charts carry their data inline (a few hundred rows at most: the section's SQL
aggregates). Months are encoded with UTC time units so a reader's time zone never shifts January to December. Text
(product and location names) reaches Vega as data and is drawn as SVG text, never parsed as HTML; tooltips go
through vega-tooltip's escaping.
"""

from __future__ import annotations

import math
from datetime import date, datetime
from typing import Any

import altair as alt
import polars as pl

from reports import theme as th

MONTH = "utcyearmonth(month_start_date):T"


#: Longest text a chart carries (a name, a label): a product name of a megabyte (a broken export) would otherwise
#: make the SVG/PNG export measure it for minutes; the tables beside the charts keep the full text.
MAX_TEXT = 120


def _clip(text: str) -> str:
    return text if len(text) <= MAX_TEXT else text[: MAX_TEXT - 1] + "…"


def clip_spec_text(spec: Any) -> Any:
    """The spec with the text of its data (inline ``values`` and ``datasets``) and of its ``sort`` and ``domain``
    lists clipped to ``MAX_TEXT`` (consistently: a sort order still names the clipped values); expressions, titles
    and the rest are left as they are."""
    def records(rows: Any) -> Any:
        if not isinstance(rows, list):
            return rows
        return [{k: _clip(v) if isinstance(v, str) else v for k, v in r.items()} if isinstance(r, dict) else
                (_clip(r) if isinstance(r, str) else r) for r in rows]

    if isinstance(spec, dict):
        out = {}
        for key, value in spec.items():
            if key in ("values", "sort", "domain") and isinstance(value, list):
                out[key] = records(value)
            elif key == "datasets" and isinstance(value, dict):
                out[key] = {name: records(rows) for name, rows in value.items()}
            else:
                out[key] = clip_spec_text(value)
        return out
    if isinstance(spec, list):
        return [clip_spec_text(v) for v in spec]
    return spec


def inline_data(df: pl.DataFrame) -> alt.Data:
    """Inline data with ISO dates, no NaN (Vega-Lite wants null) and text clipped to ``MAX_TEXT`` characters."""
    rows = []
    for row in df.iter_rows(named=True):
        clean = {}
        for key, value in row.items():
            if isinstance(value, datetime | date):
                clean[key] = value.isoformat()
            elif isinstance(value, float) and math.isnan(value):
                clean[key] = None
            elif isinstance(value, str):
                clean[key] = _clip(value)
            else:
                clean[key] = value
        rows.append(clean)
    return alt.Data(values=rows)


def chart_title(text: str, *subtitle: str) -> alt.TitleParams:
    """A title that says what to look at, with its subtitle lines."""
    return alt.TitleParams(text=text, subtitle=list(subtitle) if subtitle else alt.Undefined)


def month_axis() -> alt.Axis:
    return alt.Axis(title=None, format=th.FMT_MONTH, labelAngle=0, tickCount={"interval": "month", "step": 3})


def direction(current: float | None, previous: float | None, fmt, *, up: str = "up", down: str = "down") -> str:
    """"up from 6.7x" / "down from 6.7x" / "" when there is nothing to compare."""
    if current is None or previous is None:
        return ""
    if round(current, 1) == round(previous, 1):
        return f", level with {fmt(previous)} the year before"
    return f", {up if current > previous else down} from {fmt(previous)} the year before"


def dumbbell(df: pl.DataFrame, *, y: str, order: list[str], before: str, after: str, labels: tuple[str, str],
             x_title: str, x_axis: alt.Axis, tooltip_format: str, extra_tooltip: list | None = None) -> list:
    """Layers of a dumbbell: a grey rule from ``before`` to ``after`` per row, a dot for each end."""
    long = pl.concat([
        df.select(y, pl.col(before).alias("value"), pl.lit(labels[0]).alias("which")),
        df.select(y, pl.col(after).alias("value"), pl.lit(labels[1]).alias("which")),
    ]).filter(pl.col("value").is_not_null())
    y_enc = alt.Y(f"{y}:N", title=None, sort=order)
    rule = alt.Chart(inline_data(df)).mark_rule(color=th.PRIOR, strokeWidth=2).encode(
        y=y_enc, x=alt.X(f"{before}:Q"), x2=f"{after}:Q")
    dots = alt.Chart(inline_data(long)).mark_point(filled=True, size=90, opacity=1).encode(
        y=y_enc,
        x=alt.X("value:Q", title=x_title, axis=x_axis),
        color=alt.Color("which:N", title=None, scale=alt.Scale(domain=list(labels), range=[th.PRIOR, th.PRIMARY])),
        tooltip=[alt.Tooltip(f"{y}:N", title=y.replace("_", " ").capitalize()), alt.Tooltip("which:N", title=" "),
                 alt.Tooltip("value:Q", title=x_title, format=tooltip_format), *(extra_tooltip or [])],
    )
    return [rule, dots]

