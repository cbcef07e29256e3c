"""Report building blocks without a warehouse build: number formats, escaping, page assembly, and the censored-
demand (lost sales) estimate on a hand-made mart where the answer is known."""

from __future__ import annotations

import base64
import hashlib
import html
import json
import math
import re
from dataclasses import replace
from datetime import date, timedelta

import duckdb
import polars as pl
import pytest

from reports import theme as th
from reports.charts import MAX_TEXT, clip_spec_text
from reports.context import Context, PlanRun
from reports.html import ChartBlock, Column, Kpi, NoteBlock, Section, TableBlock, esc, render_page, script_json
from reports.sections import policy_backtest, recommendations, turnover
from reports.sections.common import Report
from reports.sections.safeguards import add_safeguards, safeguards
from reports.sections.service import LOST_SALES_TABLE, lost_sales_monthly, prepare_lost_sales, service_by_category

# ------------------------------------------------------------------------------------------------ formats


def test_number_formats() -> None:
    assert th.money(1234567.8) == "$1,234,568"
    assert th.money(-1234.4) == "-$1,234"
    assert th.money(None) == th.money(float("nan")) == "n/a"
    assert th.money(3.944, digits=2) == "$3.94"
    assert [th.money_short(v) for v in (950, 1_234, 12_345, 3_400_000, 1.2e9, -45_000)] == [
        "$950", "$1.2k", "$12k", "$3.4m", "$1.2bn", "-$45k"]
    assert th.pct(0.0572) == "5.7%" and th.pct(None) == "n/a"
    assert th.number(12345.678) == "12,346" and th.number(12345.678, 1) == "12,345.7"
    assert th.days(52.4) == "52 days" and th.days(1.2) == "1 day"
    assert th.turns(7.04) == "7.0x"
    assert th.rate(0.036) == "0.04" and th.rate(7.71) == "7.7" and th.rate(1234.5) == "1,234"
    assert th.change(7.0, 6.7) == "+4.5%" and th.change(0.036, 0.039, kind="points") == "-0.3 pts"
    assert th.change(None, 1.0) is None and th.change(1.0, 0.0) is None


def test_currency_applies_to_text_and_charts() -> None:
    with th.currency("£"):
        assert th.money(1500) == "£1,500" and th.money_short(2_500_000) == "£2.5m"
    assert th.money(1500) == "$1,500"
    assert th.format_locale("€")["currency"] == ["€", ""]


# ------------------------------------------------------------------------------------------------ escaping


def test_escaping_helpers() -> None:
    assert esc('<script>alert("x")</script> & \'') == "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &#x27;"
    data = {"name": "</script><script>alert(1)</script>", "amp": "a & b", "sep": "x\u2028y", "n": 1.5}
    text = script_json(data)
    assert "<" not in text and ">" not in text and "&" not in text and "\u2028" not in text
    assert json.loads(text) == data


def test_page_escapes_every_text_and_pins_its_scripts() -> None:
    name = "<script>alert(1)</script>"
    section = Section("s1", f"Section {name}", "ok", [
        NoteBlock(f"note {name}"),
        TableBlock(f"caption {name}", [Column("p", f"head {name}"), Column("v", "value", th.money, True)],
                   [{"p": name, "v": 1234.6}], note=f"foot {name}"),
        ChartBlock("c1", {"mark": "bar", "data": {"values": [{"label": name}]}}, alt_text=f"alt {name}"),
    ], intro=f"intro {name}")
    page = render_page(
        title=f"Report {name}", header_lines=[f"header {name}"], kpis=[Kpi(f"kpi {name}", "1", f"change {name}")],
        sections=[section], definitions=[], footer=f"footer {name}", locale=th.format_locale("$"),
        runtime_js="window.vegaEmbed=function(){return Promise.resolve();};",
    )
    assert name not in page
    shown = "&lt;script&gt;alert(1)&lt;/script&gt;"
    for where in ("Report", "header", "kpi", "change", "Section", "intro", "note", "caption", "head", "foot",
                  "footer", "alt"):
        assert f"{where} {shown}" in page, where
    assert f"<td>{shown}</td>" in page
    assert "\\u003cscript\\u003ealert(1)\\u003c/script\\u003e" in page  # chart data
    assert "$1,235" in page and 'class="num"' in page
    scripts = re.findall(r"<script>(.*?)</script>", page, re.S)
    csp = re.search(r'http-equiv="Content-Security-Policy" content="([^"]+)"', page).group(1)
    for body in scripts:
        digest = base64.b64encode(hashlib.sha256(body.encode()).digest()).decode()
        assert f"sha256-{digest}" in csp


def test_page_without_charts_has_no_scripts() -> None:
    page = render_page(title="t", header_lines=[], kpis=[], sections=[Section("s", "S", "not_available",
                       [NoteBlock("Not available: needs x.", "unavailable")])], definitions=[], footer="",
                       locale={}, runtime_js="")
    assert "<script" not in page and "script-src &#x27;none&#x27;" in page


# ------------------------------------------------------------------------------------------------ lost sales


START = date(2025, 1, 6)  # a Monday
DAYS = 84


@pytest.fixture
def toy_marts() -> duckdb.DuckDBPyConnection:
    """One product selling exactly 2 a day at one store, with a sold-out day (opened with stock, closed empty) and
    an empty-shelf day after it; a second product discontinued half-way whose empty days must not count."""
    con = duckdb.connect()
    con.execute("create schema marts")
    con.execute("""create table marts.dim_product (product_id varchar, category varchar, current_list_price double,
                   discontinued_date date)""")
    con.execute("insert into marts.dim_product values ('P1', 'A', 10.0, null), ('P2', 'A', 5.0, ?)",
                [START + timedelta(days=40)])
    con.execute("create table marts.dim_location as select 'L1' as location_id")
    con.execute("""create table marts.fct_sales_daily (date_day date, product_id varchar, location_id varchar,
                   units_sold double, is_stockout_day boolean, is_on_promotion boolean, on_hand_units double,
                   list_price double, promotion_discount_pct double)""")
    rows = []
    for i in range(DAYS):
        d = START + timedelta(days=i)
        if i == 49:  # opened with 10 (yesterday's close), sold 2, closed empty
            rows.append((d, "P1", "L1", 2.0, True, False, 0.0, 10.0, 0.0))
        elif i == 50:  # opened empty, nothing sold
            rows.append((d, "P1", "L1", 0.0, True, False, 0.0, 10.0, 0.0))
        else:
            rows.append((d, "P1", "L1", 2.0, False, False, 10.0, 10.0, 0.0))
        discontinued = i > 40
        rows.append((d, "P2", "L1", 0.0 if discontinued else 1.0, discontinued, False,
                     0.0 if discontinued else 5.0, 5.0, 0.0))
    con.executemany("insert into marts.fct_sales_daily values (?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
    return con


def toy_context() -> Context:
    end = START + timedelta(days=DAYS - 1)
    return Context(as_of_date=end, history_start=START, last12_start=START, prior12_start=START - timedelta(365),
                   products=2, locations=1, selling_locations=1, has_sales=True, has_on_hand=True,
                   has_unit_costs=True, has_cogs=True, has_stockout_flags=True, has_counts=False)


def test_lost_sales_from_censored_demand(toy_marts: duckdb.DuckDBPyConnection) -> None:
    prepare_lost_sales(toy_marts, toy_context())
    lost = dict(toy_marts.execute(
        f"select date_day - ?::date, lost_units from {LOST_SALES_TABLE} where product_id = 'P1' order by 1",
        [START]).fetchall())
    # empty shelf all day: the usual 2 a day were lost
    assert lost[50] == pytest.approx(2.0)
    # sold out after selling 2: expected excess of Poisson(2) demand above 2, given demand reached 2
    p0, p1 = math.exp(-2), 2 * math.exp(-2)
    assert lost[49] == pytest.approx((2 - 2 + 2 * p0 + p1) / (1 - p0 - p1), rel=1e-6)
    # the discontinued product's empty days are not lost sales
    (n_p2,) = toy_marts.execute(
        f"select count(*) from {LOST_SALES_TABLE} where product_id = 'P2' and date_day > ?",
        [START + timedelta(days=40)]).fetchall()[0]
    assert n_p2 == 0

    service = service_by_category(toy_marts, toy_context()).row(0, named=True)
    assert service["stockout_days"] == 2
    assert service["lost_units"] == pytest.approx(2.0 + lost[49])
    assert service["lost_sales_value"] == pytest.approx(10.0 * (2.0 + lost[49]))
    sold = 2.0 * (DAYS - 1) + 41.0
    assert service["fill_rate_volume"] == pytest.approx(sold / (sold + 2.0 + lost[49]))
    monthly = lost_sales_monthly(toy_marts)
    assert monthly["lost_units"].sum() == pytest.approx(2.0 + lost[49])


# ------------------------------------------------------------------------------------------------ policy backtest


def test_policy_backtest_queries_follow_the_contract_and_tolerate_gaps() -> None:
    """Extra columns are ignored, missing ones read as null, the main study comes first, policies get words."""
    con = duckdb.connect()
    con.execute("create schema ml")
    con.execute("""create table ml.policy_backtest as select * from (values
        ('r', date '2024-01-31', 'lead_time_shock', 'stockturn', 'overall', null, 0.95, 40000.0, 'x'),
        ('r', date '2024-01-31', 'matched_service', 'classical_matched', 'overall', null, 0.96, 52000.0, 'x'),
        ('r', date '2024-01-31', 'matched_service', 'stockturn', 'overall', null, 0.96, 45000.0, 'x'),
        ('r', date '2024-01-31', 'matched_service', 'stockturn', 'category', 'Toys', 0.97, 5000.0, 'x'),
        ('old', date '2023-12-31', 'matched_service', 'stockturn', 'overall', null, 0.50, 1.0, 'x'))
        t(run_id, as_of_date, study, policy, level, category, fill_rate_volume, avg_inventory_value, extra)""")
    con.execute("""create table ml.policy_backtest_comparison as select * from (values
        ('r', date '2024-01-31', 'lead_time_shock', 'NaN'::double), ('r', date '2024-01-31', 'matched_service', 13.5))
        t(run_id, as_of_date, study, inventory_reduction_pct)""")
    comparison = policy_backtest.backtest_comparison(con)
    assert comparison["study"].to_list() == ["matched_service", "lead_time_shock"]
    assert comparison["study_label"].to_list() == ["Main study: same fill rate", "Lead time shock"]
    assert comparison["reduction_ci_low_pct"].null_count() == 2  # not in this table: null, not an error
    assert comparison["inventory_reduction_pct"].to_list() == [13.5, None]  # a failed match (NaN) reads n/a
    assert set(policy_backtest.COMPARISON_COLUMNS) <= set(comparison.columns)
    policies = policy_backtest.backtest_policies(con)
    assert policies.select("study", "policy").rows() == [
        ("matched_service", "stockturn"), ("matched_service", "classical_matched"), ("lead_time_shock", "stockturn")]
    assert policies["avg_inventory_value"].to_list() == [45000.0, 52000.0, 40000.0]  # the latest run only
    assert policies["policy_label"][1] == "Classical, same fill rate" and policies["bullwhip"].null_count() == 3
    by_cat = policy_backtest.backtest_by_category(con)
    assert by_cat.select("category", "policy", "fill_rate_volume").rows() == [("Toys", "stockturn", 0.97)]


# ------------------------------------------------------------------------------------------------ safeguards


def _plan_context(con: duckdb.DuckDBPyConnection) -> Context:
    ml = frozenset(t for (t,) in con.execute(
        "select table_name from information_schema.tables where table_schema = 'ml'").fetchall())
    return replace(toy_context(), ml_tables=ml)


def _plan_report(con: duckdb.DuckDBPyConnection) -> Report:
    """What the sections read, on ml tables alone (build_report reads the company KPIs from the marts, which these
    tests lack)."""
    return Report(con, _plan_context(con), kpis={"last": {}, "prior": {}}, plan=PlanRun(None, None, None))


def _page(section: Section) -> tuple[str, dict[str, list[str]]]:
    """The rendered section as plain text, and its table rows by first cell (the cells as people read them)."""
    page = render_page(title="t", header_lines=[], kpis=[], sections=[section], definitions=[], footer="",
                       locale={}, runtime_js="")
    rows = {}
    for row in re.findall(r"<tr>(.*?)</tr>", page, re.S):
        cells = [html.unescape(c) for c in re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)]
        if cells:
            rows.setdefault(cells[0], cells[1:])  # the first table that has the row
    return html.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", page))), rows


@pytest.fixture
def guarded_plan() -> duckdb.DuckDBPyConnection:
    """A planning run whose guards caught known items.

    Safety-stock guard: A (1,500 -> 300 units at $10: $12,000 removed) and B (2,000 -> 500 at $2.50, then a planner
    override to 700 that must not change the money: $3,750). Above both references: C (5,000 vs 1,000 at $4:
    $16,000 excess). Safety stock at cost: plan $30,000, classical $12,000 (2.50x), evidence $40,000 (0.75x).
    Level guard: 1,500 of 2,000 forecast series. No forecast: 3 products."""
    con = duckdb.connect()
    con.execute("create schema ml")
    con.execute("""create table ml.inventory_policy as select * from (values
        ('A', 'L1', 10.0, 300.0, null, 1500.0, 200.0, 100.0, true, false, 1000.0, 800.0),
        ('B', 'L1', 2.5, 700.0, 500.0, 2000.0, 1400.0, 1200.0, true, false, 2000.0, 1200.0),
        ('C', 'L1', 4.0, 5000.0, null, 5000.0, 1000.0, 5000.0, false, true, 20000.0, 6000.0),
        ('D', 'L2', 1.0, 40.0, null, 40.0, 30.0, 16000.0, false, false, 7000.0, 4000.0),
        ('E', 'L2', 5.0, 0.0, null, 0.0, null, null, false, false, 0.0, 0.0))
        t(product_id, location_id, unit_cost, reorder_point, reorder_point_before_override,
          reorder_point_before_guard, guard_reference_reorder_point, guard_reference_safety_stock,
          is_safety_stock_guarded, is_above_references, safety_stock_value, classical_safety_stock_value)""")
    con.execute("""create table ml.demand_forecast as
        select 'P' || s.i as product_id, 'L1' as location_id, h.h as horizon, 1.0 as forecast,
               case when s.i < 1500 then 'level_guard' else 'croston_sba' end as model
        from range(2000) s(i) cross join range(1, 4) h(h)""")
    con.execute("""create table ml.exceptions as
        select row_number() over (order by money_at_stake desc nulls last) as rank, *, 'why' as reason
        from (values
            ('no_forecast', 'N1', null, null, null), ('no_forecast', 'N2', null, null, null),
            ('no_forecast', 'N3', null, null, null), ('no_forecast', 'N4', 'L2', 730.0, null),
            ('safety_stock_guard', 'A', 'L1', 12000.0, 2.0),
            ('safety_stock_guard', 'B', 'L1', 1250.0, 2.0),
            ('reorder_point_above_references', 'C', 'L1', 16000.0, 2.0), ('stockout_risk', 'D', 'L2', 50.0, 0.5))
        t(exception_type, product_id, location_id, money_at_stake, threshold)""")
    return con


def test_safeguards_query_counts_and_values_what_each_guard_caught(guarded_plan: duckdb.DuckDBPyConnection) -> None:
    g = safeguards(guarded_plan, _plan_context(guarded_plan))
    assert g is not None
    assert (g["product_locations"], g["safety_stock_guarded"], g["above_references"]) == (5, 2, 1)
    assert g["safety_stock_removed_value"] == pytest.approx(12_000 + 3_750)
    assert g["above_references_excess_value"] == pytest.approx(16_000)
    assert g["plan_safety_stock_value"] == pytest.approx(30_000)
    assert g["classical_safety_stock_value"] == pytest.approx(12_000)
    assert g["evidence_safety_stock_value"] == pytest.approx(40_000)
    assert (g["level_guard_series"], g["forecast_series"], g["no_forecast"]) == (1_500, 2_000, 3)
    assert (g["no_forecast_locations"], g["no_forecast_locations_value"]) == (1, pytest.approx(730.0))
    assert g["guard_factor"] == 2.0


def test_safeguards_block_shows_counts_and_money_for_people(guarded_plan: duckdb.DuckDBPyConnection) -> None:
    report = _plan_report(guarded_plan)
    section = Section("recommendations", "Recommendations", "ok")
    add_safeguards(report, section)
    assert section.status == "ok"
    text, rows = _page(section)
    assert ("Safeguards: the plan holds $30,000 of safety stock at cost, 2.50x the classical policy's $12,000 and "
            "0.75x the $40,000 the evidence supports") in text
    assert "Safeguards: what each guard caught among 5 planned product-locations" in text
    capped = rows["Safety stock capped to the evidence"]
    assert capped[:2] == ["2", "$15,750"] and capped[2].startswith("The forecast asked for a buffer more than 2x")
    assert rows["Reorder point above both references (kept, flagged)"][:2] == ["1", "$16,000"]
    assert rows["Forecast level guard"][:2] == ["1,500", "not valued"]
    assert rows["Products with no forecast"][:2] == ["3", "not valued"]
    assert report.kpi_values["safety_stock_vs_classical"] == pytest.approx(2.5)
    assert report.kpi_values["safety_stock_vs_evidence"] == pytest.approx(0.75)
    # wired into the recommendations section (its marts are missing here: that says so, the block still shows)
    guarded_plan.execute("create schema marts")
    guarded_plan.execute("create table marts.dim_product (product_id varchar, product_name varchar, category varchar)")
    guarded_plan.execute("create table marts.dim_location (location_id varchar, location_name varchar)")
    text, rows = _page(recommendations.build(_plan_report(guarded_plan)))
    assert rows["Safety stock capped to the evidence"][:2] == ["2", "$15,750"]
    assert "Product with no forecast" in text and "Safety stock capped to the evidence" in text  # exception words


def test_safeguards_degrade_on_a_plan_made_before_the_guards(guarded_plan: duckdb.DuckDBPyConnection) -> None:
    con = guarded_plan
    con.execute("alter table ml.inventory_policy drop column is_above_references")
    assert safeguards(con, _plan_context(con)) is None
    section = Section("recommendations", "Recommendations", "ok")
    add_safeguards(_plan_report(con), section)
    assert section.status == "partial" and "not available for this plan" in section.detail
    text, rows = _page(section)
    assert "Safeguards: not available for this plan" in text
    assert not rows and "$" not in text

    # guard columns present, but no forecast model column and no exceptions table: those rows say so
    con.execute("alter table ml.inventory_policy add column is_above_references boolean default false")
    con.execute("alter table ml.demand_forecast drop column model")
    con.execute("drop table ml.exceptions")
    section = Section("recommendations", "Recommendations", "ok")
    add_safeguards(_plan_report(con), section)
    assert section.status == "ok"
    _, rows = _page(section)
    level, no_forecast = rows["Forecast level guard"], rows["Products with no forecast"]
    assert level[:2] == no_forecast[:2] == ["n/a", "not valued"]
    assert level[2].startswith("Not available for this plan: ml.demand_forecast")
    assert no_forecast[2].startswith("Not available for this plan: the run wrote no ml.exceptions")
    capped = rows["Safety stock capped to the evidence"]
    assert capped[:2] == ["2", "$15,750"] and capped[2].startswith("The forecast asked for a buffer far above")


# ------------------------------------------------------------------------------------------------ location turnover


@pytest.fixture
def dc_and_store() -> duckdb.DuckDBPyConnection:
    """A year of the turnover mart at the location and company grains: a distribution centre DC1 that sells nothing
    and ships 500 a month at cost (average inventory 1,000), a store S1 selling 400 a month at cost (average 100).
    The company counts COGS only (400 a month on 1,100): the 500 shipped is internal."""
    con = duckdb.connect()
    con.execute("create schema marts")
    con.execute("""create table marts.dim_location as
                   select * from (values ('DC1', 'Central DC'), ('S1', 'Main Street')) t(location_id, location_name)""")
    con.execute("""create table marts.fct_inventory_turnover_monthly (grain varchar, month_start_date date,
                   location_id varchar, category varchar, period_days integer, is_partial_month boolean,
                   cogs_amount double, transfers_out_cost double, outflow_at_cost double,
                   avg_inventory_value double)""")
    rows = []
    for month in range(1, 13):
        start = date(2025, month, 1)
        days = ((date(2025, month + 1, 1) if month < 12 else date(2026, 1, 1)) - start).days
        rows += [("location", start, "DC1", None, days, False, 0.0, 500.0, 500.0, 1000.0),
                 ("location", start, "S1", None, days, False, 400.0, 0.0, 400.0, 100.0),
                 ("company", start, None, None, days, False, 400.0, 500.0, 400.0, 1100.0)]
    con.executemany("insert into marts.fct_inventory_turnover_monthly values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
    return con


def test_a_distribution_centre_turns_on_its_shipments_and_the_company_on_sales(
    dc_and_store: duckdb.DuckDBPyConnection,
) -> None:
    ctx = replace(toy_context(), as_of_date=date(2025, 12, 31), history_start=date(2025, 1, 1),
                  last12_start=date(2025, 1, 1), prior12_start=date(2024, 1, 1))
    trend = turnover.turnover_trend(dc_and_store, ctx, "location")
    dc = "Central DC (DC1)" + turnover.SHIPMENTS_SUFFIX
    assert set(zip(trend["series"], trend["basis"], strict=True)) == {
        (dc, "shipments"), ("Main Street (S1)", "sales_and_transfers")}
    assert trend.filter(pl.col("series") == dc)["turnover"].to_list()[0] == pytest.approx(500 / 1000 * 365 / 31)

    chart = turnover.turnover_small_multiples_chart(trend, start=ctx.last12_start, what="location")
    title = chart.to_dict()["title"]
    assert title["text"] == ("Turnover by location: Main Street (S1) turns fastest (48.0x), "
                             "Central DC (DC1) slowest (6.0x on shipments)")
    assert any("sales + transfers out at cost" in line for line in title["subtitle"])

    company = turnover.turnover_trend(dc_and_store, ctx, "company")
    assert set(company["basis"]) == {"cogs"}
    assert company["turnover"].to_list()[0] == pytest.approx(400 / 1100 * 365 / 31)  # no internal transfers

    table = turnover.location_table(turnover.window_by_location(dc_and_store, ctx))
    _, cells = _page(Section("turnover", "Turnover", "ok", blocks=[table]))
    assert cells["Central DC (DC1)"] == ["$1,000", "$0", "$6,000", "6.0x", "61 days", "shipments to other locations"]
    assert cells["Main Street (S1)"] == ["$100", "$4,800", "$0", "48.0x", "8 days", "sales"]
    assert cells["Company"][3:] == ["4.4x", "84 days", "sales only (transfers between locations cancel out)"]


def test_chart_specs_carry_no_megabyte_of_text() -> None:
    """A 1 MB product name (a broken export) would make the static chart export measure it for minutes: the text
    of a spec's data and of its sort/domain lists is clipped, the same way in both, and expressions are not."""
    long = "z" * 1_000_000
    expr = "max(datum.gmroi, isValid(datum.gmroi_prior) ? datum.gmroi_prior : 0) + " * 3
    spec = {"datasets": {"d1": [{"item": long, "v": 1}, {"item": "short", "v": 2}]},
            "encoding": {"y": {"field": "item", "sort": [long, "short"]},
                         "color": {"scale": {"domain": [long]}}},
            "transform": [{"calculate": expr, "as": "x"}], "data": {"values": [{"name": long}]}}
    out = clip_spec_text(spec)
    clipped = out["datasets"]["d1"][0]["item"]
    assert len(clipped) == MAX_TEXT and clipped.endswith("…")
    assert out["encoding"]["y"]["sort"] == [clipped, "short"]
    assert out["encoding"]["color"]["scale"]["domain"] == [clipped]
    assert out["data"]["values"][0]["name"] == clipped
    assert out["transform"][0]["calculate"] == expr  # expressions untouched
