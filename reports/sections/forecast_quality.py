"""Forecast quality: how good the demand forecast behind the plan is, measured on the rolling-origin backtest the
planning run writes (ml.forecast_backtest): accuracy against the seasonal-naive baseline, bias, interval coverage,
and the external signals the forecast uses where they improve the backtest.
"""

from __future__ import annotations

import re

import altair as alt
import duckdb
import polars as pl

from reports import theme as th
from reports.charts import chart_title, dumbbell, inline_data
from reports.context import frame
from reports.html import NoteBlock, Section, TableBlock
from reports.sections.common import Report, chart_block, col, label, plan_gate, plan_note, signed_pct

SEGMENTS = {
    None: "All series",
    "smooth": "Smooth",
    "erratic": "Erratic",
    "intermittent": "Intermittent",
    "lumpy": "Lumpy",
    "zero": "No recent demand",
}
MODELS = {
    "selected": "Selected model",
    "seasonal_naive": "Seasonal naive",
    "moving_average": "Moving average",
    "croston_sba": "Croston (SBA)",
    "tsb": "TSB",
    "yearly_profile": "Yearly profile (category season x recent level)",
    "lightgbm": "LightGBM",
    "level_guard": "Level guard (robust local method)",
}


# ------------------------------------------------------------------------------------------------ queries


def backtest_split(con: duckdb.DuckDBPyConnection) -> str | None:
    """'holdout' when the backtest has held-out origins, else 'selection' (short history), None when empty."""
    splits = {s for (s,) in con.execute("select distinct split from ml.forecast_backtest").fetchall()}
    return "holdout" if "holdout" in splits else "selection" if "selection" in splits else None


def _pooled(split: str, where: str) -> str:
    """Metric values pooled over the split's origins: the row with origin null when the backtest wrote one, else
    the mean over origins (sums for counts)."""
    return f"""
        select
            level, segment, model, metric,
            coalesce(
                any_value(value) filter (where origin is null),
                case when metric in ('n_series', 'ltd_windows') then sum(value) filter (where origin is not null)
                     else avg(value) filter (where origin is not null) end
            ) as value,
            count(distinct origin) as origins
        from ml.forecast_backtest
        where split = '{split}' and level in ('overall', 'segment') and {where}
        group by level, segment, model, metric
    """


def backtest_accuracy(con: duckdb.DuckDBPyConnection, split: str) -> pl.DataFrame:
    """Selected model vs seasonal naive, overall and per segment: MASE, RMSSE, WAPE, bias and the series
    (x origins) scored, with the candidate model chosen for each segment."""
    df = frame(
        con,
        f"""
        with m as ({_pooled(split, "model in ('selected', 'seasonal_naive') and metric in "
                             "('mase', 'rmsse', 'wape', 'bias', 'n_series')")}),
        chosen as (
            select segment, string_agg(distinct model, ', ' order by model) as chosen_model
            from ml.forecast_backtest
            where level = 'segment' and is_selected_model and model <> 'selected'
            group by segment
        ),
        origins as (
            select count(distinct origin) as origins from ml.forecast_backtest
            where split = '{split}' and origin is not null
        )
        select
            m.level, m.segment, m.model,
            any_value(value) filter (where metric = 'mase') as mase,
            any_value(value) filter (where metric = 'rmsse') as rmsse,
            any_value(value) filter (where metric = 'wape') as wape,
            any_value(value) filter (where metric = 'bias') as bias,
            any_value(value) filter (where metric = 'n_series') as n_series,
            any_value(c.chosen_model) as chosen_model,
            any_value(o.origins) as origins
        from m
        left join chosen c on c.segment is not distinct from m.segment
        cross join origins o
        group by m.level, m.segment, m.model
        order by m.level <> 'overall', m.segment, m.model
        """,
    )
    return df.with_columns(
        pl.col("segment").map_elements(lambda s: label(SEGMENTS, s), return_dtype=pl.String,
                                       skip_nulls=False).alias("segment_label"),
        pl.col("model").map_elements(lambda s: label(MODELS, s), return_dtype=pl.String).alias("model_label"),
    )


def signal_gating(con: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    """The external-signal gating decisions (``ml.forecasting.signals``): one row per signal group and category
    with the backtest gain, its interval and whether the forecast uses it; empty without signals."""
    return frame(
        con,
        """
        select
            model as signal_group,
            segment as category,
            bool_or(is_selected_model) as kept,
            any_value(value) filter (where metric = 'gain') as gain,
            any_value(value) filter (where metric = 'gain_ci_low') as gain_ci_low,
            any_value(value) filter (where metric = 'gain_ci_high') as gain_ci_high,
            any_value(value) filter (where metric = 'n_blocks') as n_blocks,
            max(origin) as decided_on
        from ml.forecast_backtest
        where level = 'signal_gating'
        group by model, segment
        order by model, segment
        """,
    ).with_columns(
        pl.col("signal_group").str.replace(r"^signal:", "signal ").str.replace(r"^event:", "event ")
        .alias("signal_label"),
    )


_NOMINAL = re.compile(r"^(?:coverage_(\d+)|ltd_coverage_p(\d+))$")


def backtest_coverage(con: duckdb.DuckDBPyConnection, split: str) -> pl.DataFrame:
    """Achieved vs nominal coverage of the selected model: the 80%/95% per-period forecast intervals and the
    lead-time-demand quantiles, overall and per segment."""
    df = frame(
        con,
        f"""
        with m as ({_pooled(split, "model = 'selected' and (metric like 'coverage_%' "
                             "or metric like 'ltd_coverage_p%' or metric in ('ltd_windows', 'n_series'))")})
        select
            c.level, c.segment, c.metric, c.value as achieved,
            any_value(w.value) filter (where w.metric = 'ltd_windows') as ltd_windows,
            any_value(w.value) filter (where w.metric = 'n_series') as n_series
        from m c
        left join m w on w.segment is not distinct from c.segment and w.level = c.level
        where c.metric not in ('ltd_windows', 'n_series')
        group by c.level, c.segment, c.metric, c.value
        order by c.level <> 'overall', c.segment, c.metric
        """,
    )
    nominal, kind = [], []
    for metric in df["metric"].to_list():
        match = _NOMINAL.match(metric)
        if match is None:
            nominal.append(None)
            kind.append(None)
            continue
        interval, quantile = match.groups()
        nominal.append(int(interval or quantile) / 100)
        kind.append("Forecast interval, per day" if interval else "Lead-time demand quantile")
    return df.with_columns(
        pl.Series("nominal", nominal, dtype=pl.Float64), pl.Series("kind", kind, dtype=pl.String),
        pl.col("segment").map_elements(lambda s: label(SEGMENTS, s), return_dtype=pl.String,
                                       skip_nulls=False).alias("segment_label"),
    ).filter(pl.col("nominal").is_not_null() & pl.col("achieved").is_not_null())


def coverage_tolerance(nominal: float) -> float:
    """How far achieved coverage may sit from nominal and still count as on target: a fifth of the nominal miss
    rate (1 - nominal), at least one percentage point (80%: ±4 points, 95% and above: ±1 point)."""
    return max(0.01, 0.2 * (1.0 - nominal))


# ------------------------------------------------------------------------------------------------ charts


def forecast_accuracy_chart(df: pl.DataFrame) -> alt.LayerChart:
    """MASE of the selected model against seasonal naive, overall and per demand segment."""
    df = df.filter(pl.col("segment").ne_missing(pl.lit("zero")))  # nothing to scale by: MASE means little
    wide = df.pivot(on="model", index="segment_label", values="mase", aggregate_function="first") \
        if df.height else pl.DataFrame(schema={"segment_label": pl.String})
    for model in ("selected", "seasonal_naive"):
        if model not in wide.columns:
            wide = wide.with_columns(pl.lit(None, dtype=pl.Float64).alias(model))
    wide = wide.filter(pl.col("selected").is_not_null() | pl.col("seasonal_naive").is_not_null())
    overall = wide.filter(pl.col("segment_label") == "All series")
    title = "Forecast error against the seasonal-naive baseline (MASE, lower is better)"
    if overall.height and overall["selected"][0] is not None and overall["seasonal_naive"][0]:
        sel, naive = overall["selected"][0], overall["seasonal_naive"][0]
        gain = 1 - sel / naive
        title = (f"The forecast's error is {th.pct(abs(gain), 0)} {'below' if gain >= 0 else 'above'} the "
                 f"seasonal-naive baseline (MASE {th.number(sel, 2)} vs {th.number(naive, 2)})")
    order = ["All series", *sorted(s for s in wide["segment_label"].to_list() if s != "All series")]
    layers = dumbbell(
        wide, y="segment_label", order=order, before="seasonal_naive", after="selected",
        labels=("Seasonal naive", "stockturn forecast"), x_title="MASE (error ÷ in-sample naive error)",
        x_axis=alt.Axis(format=th.FMT_2), tooltip_format=th.FMT_2,
    )
    one = alt.Chart().mark_rule(strokeDash=[4, 3], color=th.MUTED).encode(x=alt.datum(1))
    return alt.layer(*layers, one).properties(
        title=chart_title(title, "Held-out backtest origins; every demand segment uses the model chosen for it on "
                          "earlier origins.", "Dashed: the in-sample error of a naive forecast (MASE 1). Series "
                          "without recent demand: see the table."),
        width=th.CHART_WIDTH - 120,
        height=alt.Step(26),
        description="Forecast accuracy against the seasonal-naive baseline by demand segment",
    )


def forecast_bias_chart(df: pl.DataFrame) -> alt.LayerChart:
    """Bias (sum of errors ÷ sum of actuals) of the selected model and seasonal naive, per segment."""
    data = df.filter(pl.col("bias").is_not_null() & pl.col("model").is_in(["selected", "seasonal_naive"])
                     & pl.col("segment").ne_missing(pl.lit("zero")))
    data = data.with_columns(
        pl.when(pl.col("model") == "selected").then(pl.lit("stockturn forecast"))
        .otherwise(pl.lit("Seasonal naive")).alias("which"))
    overall = data.filter((pl.col("segment_label") == "All series") & (pl.col("model") == "selected"))
    title = "Forecast bias by demand segment"
    if overall.height:
        b = overall["bias"][0]
        title = (f"Forecasts run {th.pct(abs(b))} {'above' if b > 0 else 'below'} actual sales overall "
                 "(bias; 0 = unbiased)")
    order = ["All series", *sorted({s for s in data["segment_label"].to_list() if s != "All series"})]
    chart = alt.Chart(inline_data(data)).mark_bar(height={"band": 0.8}).encode(
        y=alt.Y("segment_label:N", title=None, sort=order),
        yOffset=alt.YOffset("which:N", sort=["stockturn forecast", "Seasonal naive"]),
        x=alt.X("bias:Q", title="Sum of errors ÷ sum of actual sales (> 0: forecast too high)",
                axis=alt.Axis(format=".0%")),
        color=alt.Color("which:N", title=None, scale=alt.Scale(domain=["stockturn forecast", "Seasonal naive"],
                                                               range=[th.PRIMARY, th.PRIOR])),
        tooltip=[alt.Tooltip("segment_label:N", title="Segment"), alt.Tooltip("which:N", title="Model"),
                 alt.Tooltip("bias:Q", title="Bias", format=th.FMT_PCT),
                 alt.Tooltip("n_series:Q", title="Series scored", format=th.FMT_INT)],
    )
    zero = alt.Chart().mark_rule(color=th.INK).encode(x=alt.datum(0))
    return alt.layer(chart, zero).properties(
        title=chart_title(title, "Held-out backtest origins; stock-out days are not scored (their sales understate "
                          "demand).", "Series without recent demand are left out (any sale is a 100% miss)."),
        width=th.CHART_WIDTH - 120,
        height=alt.Step(14),
        description="Forecast bias by demand segment",
    )


def interval_coverage_chart(df: pl.DataFrame, *, tolerance) -> alt.LayerChart:
    """Achieved vs nominal coverage of the forecast intervals and lead-time-demand quantiles (all series)."""
    data = df.with_columns(
        pl.when(pl.col("kind").str.starts_with("Forecast"))
        .then(pl.format("Daily forecast, {}% interval", (pl.col("nominal") * 100).round(0).cast(pl.Int64)))
        .otherwise(pl.format("Lead-time demand, p{}", (pl.col("nominal") * 100).round(0).cast(pl.Int64)))
        .alias("item"),
    )
    data = data.with_columns(
        pl.struct("achieved", "nominal").map_elements(
            lambda r: "On target" if abs(r["achieved"] - r["nominal"]) <= tolerance(r["nominal"])
            else ("Too wide (safe side)" if r["achieved"] > r["nominal"] else "Too narrow"),
            return_dtype=pl.String).alias("verdict"),
    )
    on = data.filter(pl.col("verdict") == "On target").height
    worst = data.with_columns((pl.col("achieved") - pl.col("nominal")).abs().alias("gap")).sort(
        "gap", descending=True)
    title = f"{on} of {data.height} uncertainty bands hold the share of actuals they promise"
    if worst.height and worst["verdict"][0] != "On target":
        w = worst.row(0, named=True)
        title += f"; furthest off: {w['item']} ({th.pct(w['achieved'])} vs {th.pct(w['nominal'], 0)})"
    order = data.sort("kind", "nominal")["item"].to_list()
    verdicts = ["On target", "Too wide (safe side)", "Too narrow"]
    y = alt.Y("item:N", title=None, sort=order)
    base = alt.Chart(inline_data(data)).encode(
        y=y,
        tooltip=[alt.Tooltip("item:N", title="Band"), alt.Tooltip("nominal:Q", title="Promised", format=".0%"),
                 alt.Tooltip("achieved:Q", title="Achieved", format=th.FMT_PCT),
                 alt.Tooltip("verdict:N", title="Verdict")],
    )
    nominal = base.mark_tick(color=th.INK, thickness=2, size=18).encode(x="nominal:Q")
    achieved = base.mark_point(filled=True, size=100, opacity=1).encode(
        x=alt.X("achieved:Q", title="Share of actual demand inside the band",
                scale=alt.Scale(zero=False, domainMax=1, nice=False, padding=10), axis=alt.Axis(format=".0%")),
        color=alt.Color("verdict:N", title=None, scale=alt.Scale(domain=verdicts,
                                                                 range=[th.GOOD, th.WARN, th.BAD])),
    )
    return alt.layer(nominal, achieved).properties(
        title=chart_title(title, "Dots: achieved on held-out backtest origins, all series; black tick: what the band "
                          "promises.", "Lead-time demand quantiles set the reorder points: below the tick means more "
                          "stock-outs than planned."),
        width=th.CHART_WIDTH - 120,
        height=alt.Step(22),
        description="Interval coverage of the demand forecast and lead-time demand quantiles",
    )


# ------------------------------------------------------------------------------------------------ section


def build(report: Report) -> Section:
    section = Section("forecast-quality", "Forecast quality", "ok",
                      intro="How good the demand forecast behind the plan is, measured on a rolling-origin "
                      "backtest: each origin replays a past planning day and scores the following weeks. "
                      "Accuracy against the seasonal-naive baseline (the same day a season earlier), bias and "
                      "interval coverage.")
    if not plan_gate(report, section, "Forecast quality", ("forecast_backtest",)):
        return section
    split = backtest_split(report.con)
    if split is None:
        section.status, section.detail = "partial", "ml.forecast_backtest is empty (history too short)"
        section.blocks.append(NoteBlock("The forecast backtest is empty: the history was too short to replay "
                                        "a past planning day.", "info"))
        return section
    plan_note(report, section)
    if split == "selection":
        section.status, section.detail = "partial", "no held-out origins: scores are on the selection origins"
        section.blocks.append(NoteBlock(
            "The history is too short for held-out origins: the scores below are on the origins the models "
            "were chosen on, so they flatter the forecast.", "pending"))
    acc = backtest_accuracy(report.con, split)
    cov = backtest_coverage(report.con, split)
    overall = acc.filter(pl.col("level") == "overall")
    sel = overall.filter(pl.col("model") == "selected")
    naive = overall.filter(pl.col("model") == "seasonal_naive")
    if sel.height:
        report.kpi_values["forecast_mase"] = sel["mase"][0]
        report.kpi_values["forecast_bias"] = sel["bias"][0]
    if naive.height:
        report.kpi_values["seasonal_naive_mase"] = naive["mase"][0]
    section.blocks += [
        chart_block("forecast_accuracy", acc.filter(pl.col("mase").is_not_null()), forecast_accuracy_chart,
                    "Forecast accuracy against the seasonal-naive baseline"),
        chart_block("forecast_bias", acc, forecast_bias_chart, "Forecast bias by demand segment"),
    ]
    cov_overall = cov.filter(pl.col("level") == "overall")
    section.blocks.append(chart_block("interval_coverage", cov_overall,
                                      lambda d: interval_coverage_chart(d, tolerance=coverage_tolerance),
                                      "Interval coverage"))
    wide = _accuracy_table_rows(acc, cov)
    if wide:
        section.blocks.append(TableBlock(
            f"Backtest scores by demand segment ({'held-out' if split == 'holdout' else 'selection'} origins)",
            [
                col("segment_label", "Demand segment"), col("chosen_model", "Model used"),
                col("n_series", "Series × origins", th.number, True),
                col("mase", "MASE", lambda v: th.number(v, 2), True),
                col("mase_naive", "MASE, seasonal naive", lambda v: th.number(v, 2), True),
                col("wape", "WAPE", th.pct, True),
                col("wape_naive", "WAPE, seasonal naive", th.pct, True),
                col("bias", "Bias", lambda v: th.pct(v) if v is None else f"{100 * v:+,.1f}%", True),
                col("coverage_80", "In 80% interval", th.pct, True),
                col("coverage_95", "In 95% interval", th.pct, True),
                col("ltd_p95", "Lead-time demand ≤ p95", th.pct, True),
            ],
            wide,
            note="MASE and WAPE: lower is better. Bias > 0: the forecast is too high. Interval columns: the "
            "share of actual demand that fell inside the band (promised: 80%, 95%, 95%). Stock-out days are "
            "not scored. 'No recent demand' series have nothing to scale MASE by.",
        ))
    gating = signal_gating(report.con)
    if gating.height:
        report.kpi_values["signals_kept"] = int(gating["kept"].sum())
        section.blocks.append(TableBlock(
            "External signals and events: used only where they improve the backtest",
            [
                col("signal_label", "Signal or event type"), col("category", "Category"),
                col("kept", "Used by the forecast", lambda v: "yes" if v else "no"),
                col("gain", "Error cut", signed_pct, True),
                col("interval", "Interval", nowrap=True),
                col("n_blocks", "Store-weeks compared", th.number, True),
            ],
            [r | {"interval": "n/a" if r["gain_ci_low"] is None else
                  f"{signed_pct(r['gain_ci_low'])} .. {signed_pct(r['gain_ci_high'])}"}
             for r in gating.iter_rows(named=True)],
            note="Error cut: how much the signal lowers the squared error of the category's daily totals per "
            "store in the backtest, where its values were known at the forecast date. A signal is used for a "
            "category only when the cut is at least 0.5% and its interval (family-wise 95% over the "
            "categories) is above zero; elsewhere the forecast ignores it (docs/signals.md)."
            + _gate_date_note(gating),
        ))
    return section


def _gate_date_note(gating: pl.DataFrame) -> str:
    decided = gating["decided_on"].drop_nulls()
    if decided.is_empty():
        return ""
    return (f" Decided by the backtest of the forecast as of {decided.max():%d %b %Y}; weekly re-fits re-use a "
            "recent decision (signal_gating_max_age_days, 28 days by default); a re-fit for drift decides "
            "afresh.")


def _accuracy_table_rows(acc: pl.DataFrame, cov: pl.DataFrame) -> list[dict]:
    rows = []
    for seg in acc.filter(pl.col("model") == "selected").iter_rows(named=True):
        key = seg["segment"]
        naive = acc.filter((pl.col("model") == "seasonal_naive") & (pl.col("level") == seg["level"])
                           & pl.col("segment").eq_missing(key))
        c = {r["metric"]: r["achieved"] for r in cov.filter(
            (pl.col("level") == seg["level"]) & pl.col("segment").eq_missing(key)).iter_rows(named=True)}
        rows.append(seg | {
            "chosen_model": "per segment" if key is None else label(MODELS, seg["chosen_model"]),
            "mase_naive": naive["mase"][0] if naive.height else None,
            "wape_naive": naive["wape"][0] if naive.height else None,
            "coverage_80": c.get("coverage_80"), "coverage_95": c.get("coverage_95"),
            "ltd_p95": c.get("ltd_coverage_p95"),
        })
    return rows
