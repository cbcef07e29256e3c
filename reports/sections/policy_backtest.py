"""Policy backtest: the proof behind the recommendations. `stockturn backtest` replays each policy day by day on the
recorded demand history (ml.policy_backtest, ml.policy_backtest_comparison); the section compares stockturn's
inventory with the classical policy's at the same fill rate, per study, echelon and category.
"""

from __future__ import annotations

import altair as alt
import duckdb
import polars as pl

from reports import theme as th
from reports.charts import chart_title, inline_data
from reports.context import columns, frame
from reports.html import NoteBlock, Section, TableBlock
from reports.sections.common import Report, chart_block, col, date_text, label, pct_points

POLICY_BACKTEST = "policy_backtest"
POLICY_BACKTEST_COMPARISON = "policy_backtest_comparison"
#: The study every headline number comes from; other studies are scenarios.
MAIN_STUDY = "matched_service"
POLICIES = {
    "stockturn": "stockturn",
    "classical": "Classical, textbook settings",
    "classical_matched": "Classical, same fill rate",
    "perfect_foresight": "Perfect foresight (bound)",
}
#: Display order of the policies; unknown ones follow.
POLICY_ORDER = ("stockturn", "classical_matched", "classical", "perfect_foresight")
BACKTEST_MEASURES = (
    "fill_rate_volume", "fill_rate_item_avg", "cycle_service_level", "stockout_days", "lost_units",
    "avg_inventory_value", "turnover", "days_of_supply", "orders", "holding_cost", "ordering_cost", "shortage_cost",
    "total_cost", "bullwhip",
)
COMPARISON_COLUMNS = (
    "run_id", "as_of_date", "study", "target_fill_rate", "stockturn_fill_volume", "stockturn_fill_item_avg",
    "baseline_fill_volume", "baseline_fill_item_avg", "baseline_setting", "stockturn_inventory_value",
    "baseline_inventory_value", "inventory_reduction_pct", "reduction_ci_low_pct", "reduction_ci_high_pct",
    "n_bootstrap", "turnover_stockturn", "turnover_baseline",
)


# ------------------------------------------------------------------------------------------------ queries


def _pick(cols: set[str], wanted: tuple[str, ...], alias: str = "") -> str:
    """Select ``wanted`` columns, null for those the table lacks (the contract's columns, extra ones ignored)."""
    prefix = f"{alias}." if alias else ""
    return ", ".join(f"{prefix}{c}" if c in cols else f"null as {c}" for c in wanted)


def study_label(study: str | None) -> str:
    if study == MAIN_STUDY:
        return "Main study: same fill rate"
    return label({}, study)


def _no_nan(df: pl.DataFrame) -> pl.DataFrame:
    """NaN (a failed match, an empty group) as null: the report then says n/a."""
    return df.with_columns(pl.col(pl.Float32, pl.Float64).fill_nan(None))


def _policy_columns(df: pl.DataFrame) -> pl.DataFrame:
    order = {p: i for i, p in enumerate(POLICY_ORDER)}
    return _no_nan(df).with_columns(
        pl.col("policy").map_elements(lambda s: label(POLICIES, s), return_dtype=pl.String).alias("policy_label"),
        pl.col("policy").map_elements(lambda s: order.get(s, len(order)), return_dtype=pl.Int64)
        .alias("policy_rank"),
    )


def backtest_comparison(con: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    """ml.policy_backtest_comparison of the latest backtest (one row per study), the main study first.

    ``*_pct`` columns are percentages (18.5 = 18.5%; reduction > 0: stockturn holds less inventory than the
    baseline at the same fill rate); fill rates are fractions.
    """
    cols = set(columns(con, "ml", POLICY_BACKTEST_COMPARISON))
    latest = ("where as_of_date = (select max(as_of_date) from ml.policy_backtest_comparison)"
              if "as_of_date" in cols else "")
    order = "study <> 'matched_service', study" if "study" in cols else "1"
    df = frame(con, f"select {_pick(cols, COMPARISON_COLUMNS)} from ml.{POLICY_BACKTEST_COMPARISON} {latest} "
                    f"order by {order}")
    return _no_nan(df).with_columns(
        pl.col("study").cast(pl.String).map_elements(study_label, return_dtype=pl.String, skip_nulls=False)
        .alias("study_label"),
    )


def backtest_policies(con: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    """Overall result of every policy in every study of the latest backtest."""
    cols = set(columns(con, "ml", POLICY_BACKTEST))
    if not {"policy", "level"} <= cols:
        return pl.DataFrame()
    latest = ("and as_of_date = (select max(as_of_date) from ml.policy_backtest)" if "as_of_date" in cols else "")
    study = "study" if "study" in cols else f"'{MAIN_STUDY}'"
    measures = ", ".join(f"avg({c}) as {c}" if c in cols else f"null::double as {c}" for c in BACKTEST_MEASURES)
    df = frame(
        con,
        f"""
        select * from (
            select coalesce({study}, '{MAIN_STUDY}') as study_key, policy, {measures}
            from ml.{POLICY_BACKTEST}
            where level = 'overall' {latest}
            group by all
        )
        order by study_key <> '{MAIN_STUDY}', study_key, policy
        """,
    )
    return _policy_columns(df.rename({"study_key": "study"})).with_columns(
        pl.col("study").map_elements(study_label, return_dtype=pl.String).alias("study_label"),
    ).sort(pl.col("study") != MAIN_STUDY, "study", "policy_rank")


def backtest_by_echelon(con: duckdb.DuckDBPyConnection, study: str = MAIN_STUDY) -> pl.DataFrame:
    """Network backtests: per echelon ('store', 'dc') and policy of one study: fill, inventory and bullwhip (empty
    for single-echelon replays)."""
    cols = set(columns(con, "ml", POLICY_BACKTEST))
    if not {"policy", "level", "location_id", "study"} <= cols:
        return pl.DataFrame()
    latest = ("and as_of_date = (select max(as_of_date) from ml.policy_backtest)" if "as_of_date" in cols else "")
    df = frame(
        con,
        f"""
        select location_id as echelon, policy, avg(fill_rate_volume) as fill_rate_volume,
               avg(fill_rate_item_avg) as fill_rate_item_avg, avg(avg_inventory_value) as avg_inventory_value,
               avg(bullwhip) as bullwhip
        from ml.{POLICY_BACKTEST}
        where level = 'echelon' and coalesce(study, ?) = ? {latest}
        group by all
        order by echelon desc, policy
        """,
        [MAIN_STUDY, study],
    )
    return _policy_columns(df) if df.height else df


def backtest_by_category(con: duckdb.DuckDBPyConnection, study: str = MAIN_STUDY) -> pl.DataFrame:
    """Per category and policy of one study: fill rates, stock-out days, lost units, inventory and turnover."""
    cols = set(columns(con, "ml", POLICY_BACKTEST))
    if not {"policy", "level", "category"} <= cols:
        return pl.DataFrame()
    latest = ("and as_of_date = (select max(as_of_date) from ml.policy_backtest)" if "as_of_date" in cols else "")
    where_study = "and coalesce(study, ?) = ?" if "study" in cols else "and ? = ?"
    wanted = ("fill_rate_volume", "fill_rate_item_avg", "stockout_days", "lost_units", "avg_inventory_value",
              "turnover")
    measures = ", ".join(f"avg({c}) as {c}" if c in cols else f"null::double as {c}" for c in wanted)
    df = frame(
        con,
        f"""
        select coalesce(category, '(no category)') as category, policy, {measures}
        from ml.{POLICY_BACKTEST}
        where level = 'category' {latest} {where_study}
        group by all
        order by category, policy
        """,
        [MAIN_STUDY, study],
    )
    return _policy_columns(df)


# ------------------------------------------------------------------------------------------------ charts


def backtest_tradeoff_chart(policies: pl.DataFrame, comparison: dict | None) -> alt.LayerChart:
    """Each policy of the main study: average inventory at cost against fill rate (up and left is better)."""
    title = "Policy backtest: fill rate against the inventory it takes"
    if comparison and comparison.get("inventory_reduction_pct") is not None:
        red = comparison["inventory_reduction_pct"] / 100
        low, high = comparison.get("reduction_ci_low_pct"), comparison.get("reduction_ci_high_pct")
        ci = (f" (95% interval {th.pct(low / 100, 0)} to {th.pct(high / 100, 0)})"
              if low is not None and high is not None else "")
        title = (f"At the same fill rate ({th.pct(comparison.get('stockturn_fill_volume'))}), stockturn holds "
                 f"{th.pct(abs(red), 0)} {'less' if red >= 0 else 'more'} inventory than the classical policy{ci}")
    order = policies.sort("policy_rank")["policy_label"].to_list()
    base = alt.Chart(inline_data(policies)).encode(
        x=alt.X("avg_inventory_value:Q", axis=th.money_axis("Average inventory at cost"),
                scale=alt.Scale(zero=False, padding=30)),
        y=alt.Y("fill_rate_volume:Q", title="Fill rate (volume)", axis=alt.Axis(format=".1%"),
                scale=alt.Scale(zero=False, padding=20)),
        tooltip=[
            alt.Tooltip("policy_label:N", title="Policy"),
            alt.Tooltip("fill_rate_volume:Q", title="Fill rate (volume)", format=th.FMT_PCT),
            alt.Tooltip("fill_rate_item_avg:Q", title="Fill rate (average item)", format=th.FMT_PCT),
            alt.Tooltip("avg_inventory_value:Q", title="Average inventory at cost", format=th.FMT_MONEY),
            alt.Tooltip("turnover:Q", title="Turns a year", format=th.FMT_1),
            alt.Tooltip("stockout_days:Q", title="Stock-out days", format=th.FMT_INT),
            alt.Tooltip("total_cost:Q", title="Holding + ordering + shortage cost", format=th.FMT_MONEY),
        ],
    )
    points = base.mark_point(filled=True, size=140, opacity=1).encode(
        color=alt.Color("policy_label:N", title=None, sort=order, legend=None))
    labels = base.mark_text(align="left", dx=10, fontSize=11).encode(text="policy_label:N")
    return alt.layer(points, labels).properties(
        title=chart_title(title, "Each policy replayed day by day on the same demand history. Up and to the left is "
                          "better: more demand served with less stock."),
        width=th.CHART_WIDTH,
        height=th.CHART_HEIGHT,
        description="Policy backtest: fill rate against average inventory per policy",
    )


def backtest_reduction_chart(comparison: pl.DataFrame) -> alt.LayerChart:
    """Inventory reduction at matched fill rate with its bootstrap interval, per study."""
    data = comparison.filter(pl.col("inventory_reduction_pct").is_not_null()).with_columns(
        (pl.col("inventory_reduction_pct") / 100).alias("reduction"),
        (pl.col("reduction_ci_low_pct") / 100).alias("ci_low"),
        (pl.col("reduction_ci_high_pct") / 100).alias("ci_high"),
    )
    better = data.filter(pl.col("reduction") > 0).height
    title = f"stockturn needs less inventory for the same fill rate in {better} of {data.height} studies"
    order = data["study_label"].to_list()
    y = alt.Y("study_label:N", title=None, sort=order, axis=alt.Axis(labelLimit=260))
    tooltip = [
        alt.Tooltip("study_label:N", title="Study"),
        alt.Tooltip("reduction:Q", title="Inventory reduction", format=th.FMT_PCT),
        alt.Tooltip("ci_low:Q", title="95% interval from", format=th.FMT_PCT),
        alt.Tooltip("ci_high:Q", title="95% interval to", format=th.FMT_PCT),
        alt.Tooltip("stockturn_fill_volume:Q", title="Fill rate, stockturn", format=th.FMT_PCT),
        alt.Tooltip("baseline_fill_volume:Q", title="Fill rate, classical", format=th.FMT_PCT),
        alt.Tooltip("stockturn_inventory_value:Q", title="Inventory, stockturn", format=th.FMT_MONEY),
        alt.Tooltip("baseline_inventory_value:Q", title="Inventory, classical", format=th.FMT_MONEY),
    ]
    bars = alt.Chart(inline_data(data)).mark_bar(height={"band": 0.6}).encode(
        y=y, x=alt.X("reduction:Q", title="Less average inventory than the classical policy",
                     axis=alt.Axis(format=".0%")),
        color=alt.condition("datum.reduction >= 0", alt.value(th.GOOD), alt.value(th.BAD)),
        tooltip=tooltip,
    )
    ci = alt.Chart(inline_data(data.filter(pl.col("ci_low").is_not_null()))).mark_rule(
        color=th.INK, strokeWidth=1.5).encode(y=y, x="ci_low:Q", x2="ci_high:Q", tooltip=tooltip)
    zero = alt.Chart().mark_rule(color=th.MUTED).encode(x=alt.datum(0))
    return alt.layer(bars, ci, zero).properties(
        title=chart_title(title, "Main study: classical matched to stockturn's fill rate; black line: 95% "
                          "bootstrap interval over product-locations.", "Scenarios: both plans replayed under the "
                          "stress; read their fill rates in the table below."),
        width=th.CHART_WIDTH - 100,
        height=alt.Step(24),
        description="Inventory reduction at matched fill rate per backtest study",
    )


# ------------------------------------------------------------------------------------------------ section


def build(report: Report) -> Section:
    section = Section("policy-backtest", "Policy backtest: stockturn against the classical policy", "ok",
                      intro="The proof behind the recommendations: each policy is replayed day by day on the "
                      "recorded demand history (orders, lead times, stock-outs), and stockturn's inventory is "
                      "compared with the classical policy's at the same fill rate.")
    present = [t for t in (POLICY_BACKTEST, POLICY_BACKTEST_COMPARISON) if t in report.ctx.ml_tables]
    if not present:
        section.status = "pending"
        section.detail = "Not available yet: the policy backtest has not been run (`stockturn backtest`)."
        section.blocks.append(NoteBlock(
            "The policy backtest has not been run: run `stockturn backtest` to replay stockturn's and the "
            "classical policy on the history and compare the inventory each needs for the same fill rate.",
            "pending"))
        return section
    comparison = (backtest_comparison(report.con) if POLICY_BACKTEST_COMPARISON in report.ctx.ml_tables
                  else pl.DataFrame())
    policies = backtest_policies(report.con) if POLICY_BACKTEST in report.ctx.ml_tables else pl.DataFrame()
    if comparison.height == 0 and policies.height == 0:
        section.status, section.detail = "partial", "the backtest tables are empty"
        section.blocks.append(NoteBlock("The policy backtest tables are empty: run `stockturn backtest` again.",
                                        "info"))
        return section
    main = comparison.filter(pl.col("study") == MAIN_STUDY) if comparison.height else comparison
    main_row = main.row(0, named=True) if main.height else None
    as_of = (main_row or {}).get("as_of_date")
    if as_of:
        section.blocks.append(NoteBlock(f"Policy backtest as of {date_text(as_of)}.", "info"))
    if main_row is not None:
        red = main_row.get("inventory_reduction_pct")
        report.kpi_values["backtest_inventory_reduction_pct"] = red
        low, high = main_row.get("reduction_ci_low_pct"), main_row.get("reduction_ci_high_pct")
        ci = (f" (95% bootstrap interval {th.number(low, 1)}% to {th.number(high, 1)}%"
              f"{', ' + th.number(main_row['n_bootstrap']) + ' resamples' if main_row.get('n_bootstrap') else ''})"
              if low is not None and high is not None else "")
        z = main_row.get("baseline_setting")
        setting = "" if z is None else (f" at safety factor z = {z:,.2f}" if isinstance(z, int | float)
                                        else f" at {z}")
        if red is not None:
            section.blocks.append(NoteBlock(
                f"At a fill rate of {th.pct(main_row.get('stockturn_fill_volume'))} by volume "
                f"({th.pct(main_row.get('stockturn_fill_item_avg'))} for the average item), stockturn held "
                f"{th.money(main_row.get('stockturn_inventory_value'))} of inventory at cost on average; the "
                f"classical policy needed {th.money(main_row.get('baseline_inventory_value'))} for "
                f"{th.pct(main_row.get('baseline_fill_volume'))} ({th.pct(main_row.get('baseline_fill_item_avg'))}"
                f" average item){setting}"
                f": {th.number(abs(red), 1)}% {'less' if red >= 0 else 'more'} inventory for stockturn{ci}. "
                f"Turnover {th.turns(main_row.get('turnover_baseline'))} → "
                f"{th.turns(main_row.get('turnover_stockturn'))}.", "info"))
        else:
            section.status = "partial"
            section.detail = "the classical policy could not be matched to stockturn's fill rate"
            section.blocks.append(NoteBlock(
                f"No like-for-like result: scanning the classical policy's safety factor did not reach "
                f"stockturn's fill rate of {th.pct(main_row.get('stockturn_fill_volume'))} by volume "
                f"({th.pct(main_row.get('stockturn_fill_item_avg'))} for the average item), so the inventory "
                "each needs at the same service cannot be compared. The policies as replayed are below; widen "
                "the scan or replay more days (`stockturn backtest --days`).", "pending"))
    else:
        section.status, section.detail = "partial", "no main (matched service) study in the comparison"
    main_policies = policies.filter(pl.col("study") == MAIN_STUDY) if policies.height else policies
    if main_policies.height == 0 and policies.height:
        first = policies["study"][0]
        main_policies = policies.filter(pl.col("study") == first)
    if main_policies.height:
        section.blocks.append(chart_block(
            "backtest_tradeoff",
            main_policies.filter(pl.col("avg_inventory_value").is_not_null()
                                 & pl.col("fill_rate_volume").is_not_null()),
            lambda d: backtest_tradeoff_chart(d, main_row), "Fill rate against inventory per policy"))
    if comparison.height:
        section.blocks.append(chart_block("backtest_reduction", comparison, backtest_reduction_chart,
                                          "Inventory reduction at the same fill rate, per study"))
    if main_policies.height:
        section.blocks.append(TableBlock(
            f"{main_policies['study_label'][0]}: every policy, all product-locations",
            [
                col("policy_label", "Policy", nowrap=True),
                col("fill_rate_volume", "Fill rate (volume)", th.pct, True),
                col("fill_rate_item_avg", "Fill rate (average item)", th.pct, True),
                col("cycle_service_level", "Cycle service", th.pct, True),
                col("stockout_days", "Stock-out days", th.number, True),
                col("lost_units", "Lost units", th.number, True),
                col("avg_inventory_value", "Avg inventory at cost", th.money, True),
                col("turnover", "Turns a year", th.turns, True),
                col("days_of_supply", "Days of supply", th.number, True),
                col("orders", "Orders", th.number, True),
                col("total_cost", "Holding + ordering + shortage", th.money, True),
                col("bullwhip", "Bullwhip", lambda v: th.number(v, 2), True),
            ],
            main_policies.to_dicts(),
            note="Perfect foresight knows the demand in advance: the lower bound no real policy reaches. "
            "Bullwhip = variance of orders ÷ variance of demand (above 1: orders swing more than sales).",
        ))
    if comparison.height > 1:
        section.blocks.append(TableBlock(
            "Every study: stockturn against the classical policy matched to the same fill rate",
            [
                col("study_label", "Study"),
                col("stockturn_fill_volume", "Fill rate, stockturn", th.pct, True),
                col("baseline_fill_volume", "Fill rate, classical", th.pct, True),
                col("stockturn_inventory_value", "Avg inventory, stockturn", th.money, True),
                col("baseline_inventory_value", "Avg inventory, classical", th.money, True),
                col("reduction", "Less inventory", numeric=True, nowrap=True),
                col("turnover_stockturn", "Turns, stockturn", th.turns, True),
                col("turnover_baseline", "Turns, classical", th.turns, True),
            ],
            [r | {"reduction": pct_points(r["inventory_reduction_pct"], r["reduction_ci_low_pct"],
                                          r["reduction_ci_high_pct"])} for r in comparison.to_dicts()],
            note="Less inventory: the classical policy's average inventory minus stockturn's, in % of the "
            "classical one, with its 95% bootstrap interval; negative means stockturn needed more.",
        ))
    by_echelon = (backtest_by_echelon(report.con) if POLICY_BACKTEST in report.ctx.ml_tables
                  else pl.DataFrame())
    if by_echelon.height:
        section.blocks.append(TableBlock(
            "Where the stock sits: stores and distribution centre, per policy",
            [
                col("echelon", "Echelon"), col("policy_label", "Policy", nowrap=True),
                col("fill_rate_volume", "Fill rate (volume)", th.pct, True),
                col("fill_rate_item_avg", "Fill rate (average item)", th.pct, True),
                col("avg_inventory_value", "Avg inventory at cost", th.money, True),
                col("bullwhip", "Bullwhip", lambda v: th.number(v, 2), True),
            ],
            by_echelon.with_columns(pl.col("echelon").replace({"store": "Stores", "dc": "Distribution centre"}))
            .to_dicts(),
            note="The network replay: the DC ships only what it holds, stores wait when it is short. Store fill "
            "is the customers'; the DC's is the share of store requests shipped the day they were made. "
            "Bullwhip = variance of the echelon's orders ÷ variance of customer demand (stores: their own "
            "customers; DC: all its stores' customers).",
        ))
    by_cat = backtest_by_category(report.con) if POLICY_BACKTEST in report.ctx.ml_tables else pl.DataFrame()
    if by_cat.height:
        section.blocks.append(_category_table(by_cat))
    return section


def _category_table(by_cat: pl.DataFrame) -> TableBlock:
    present = set(by_cat["policy"].to_list())
    baseline = next((p for p in ("classical_matched", "classical") if p in present), None)
    rows = []
    for cat in sorted(set(by_cat["category"].to_list())):
        row: dict = {"category": cat}
        for who, policy in (("st", "stockturn"), ("base", baseline)):
            match = by_cat.filter((pl.col("category") == cat) & (pl.col("policy") == policy))
            r = match.row(0, named=True) if match.height else {}
            for k in ("fill_rate_volume", "fill_rate_item_avg", "avg_inventory_value", "turnover", "lost_units"):
                row[f"{who}_{k}"] = r.get(k)
        st, base = row["st_avg_inventory_value"], row["base_avg_inventory_value"]
        row["reduction"] = (1 - st / base) if st is not None and base else None
        rows.append(row)
    rows.sort(key=lambda r: -(r["base_avg_inventory_value"] or 0))
    base_name = label(POLICIES, baseline).lower() if baseline else "classical"
    return TableBlock(
        f"Main study by category: stockturn vs {base_name}",
        [
            col("category", "Category"),
            col("st_fill_rate_volume", "Fill rate, stockturn", th.pct, True),
            col("base_fill_rate_volume", "Fill rate, classical", th.pct, True),
            col("st_fill_rate_item_avg", "Average item, stockturn", th.pct, True),
            col("base_fill_rate_item_avg", "Average item, classical", th.pct, True),
            col("st_avg_inventory_value", "Avg inventory, stockturn", th.money, True),
            col("base_avg_inventory_value", "Avg inventory, classical", th.money, True),
            col("reduction", "Less inventory", lambda v: th.pct(v) if v is None else f"{100 * v:+,.1f}%", True),
            col("st_turnover", "Turns, stockturn", th.turns, True),
            col("base_turnover", "Turns, classical", th.turns, True),
        ],
        rows,
        note="Fill rates by volume unless stated. A category can trade inventory for service: read the fill "
        "rates before the inventory.",
    )
