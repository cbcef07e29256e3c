"""Report building blocks without a warehouse build: number formats, escaping, page assembly, and the censored-
demand (lost sales) estimate on a hand-made mart where the answer is known."""

from __future__ import annotations

import base64
import hashlib
import json
import math
import re
from datetime import date, timedelta

import duckdb
import pytest

from reports import queries as q
from reports import theme as th
from reports.html import ChartBlock, Column, Kpi, NoteBlock, Section, TableBlock, esc, render_page, script_json

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


def toy_context() -> q.Context:
    end = START + timedelta(days=DAYS - 1)
    return q.Context(as_of_date=end, history_start=START, last12_start=START, prior12_start=START - timedelta(365),
                     products=2, locations=1, selling_locations=1, has_sales=True, has_on_hand=True,
                     has_unit_costs=True, has_cogs=True, has_stockout_flags=True, has_counts=False)


def test_lost_sales_from_censored_demand(toy_marts: duckdb.DuckDBPyConnection) -> None:
    q.prepare_lost_sales(toy_marts, toy_context())
    lost = dict(toy_marts.execute(
        f"select date_day - ?::date, lost_units from {q.LOST_SALES_TABLE} where product_id = 'P1' order by 1",
        [START]).fetchall())
    # empty shelf all day: the usual 2 a day were lost
    assert lost[50] == pytest.approx(2.0)
    # sold out after selling 2: expected excess of Poisson(2) demand above 2, given demand reached 2
    p0, p1 = math.exp(-2), 2 * math.exp(-2)
    assert lost[49] == pytest.approx((2 - 2 + 2 * p0 + p1) / (1 - p0 - p1), rel=1e-6)
    # the discontinued product's empty days are not lost sales
    (n_p2,) = toy_marts.execute(
        f"select count(*) from {q.LOST_SALES_TABLE} where product_id = 'P2' and date_day > ?",
        [START + timedelta(days=40)]).fetchall()[0]
    assert n_p2 == 0

    service = q.service_by_category(toy_marts, toy_context()).row(0, named=True)
    assert service["stockout_days"] == 2
    assert service["lost_units"] == pytest.approx(2.0 + lost[49])
    assert service["lost_sales_value"] == pytest.approx(10.0 * (2.0 + lost[49]))
    sold = 2.0 * (DAYS - 1) + 41.0
    assert service["fill_rate_volume"] == pytest.approx(sold / (sold + 2.0 + lost[49]))
    monthly = q.lost_sales_monthly(toy_marts)
    assert monthly["lost_units"].sum() == pytest.approx(2.0 + lost[49])


# ------------------------------------------------------------------------------------------------ policy backtest


def test_policy_backtest_queries_follow_the_contract_and_tolerate_gaps() -> None:
    """Extra columns are ignored, missing ones read as null, the main study comes first, policies get words."""
    from reports import plan_queries as pq

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
    comparison = pq.backtest_comparison(con)
    assert comparison["study"].to_list() == ["matched_service", "lead_time_shock"]
    assert comparison["study_label"].to_list() == ["Main study: same fill rate", "Lead time shock"]
    assert comparison["reduction_ci_low_pct"].null_count() == 2  # not in this table: null, not an error
    assert comparison["inventory_reduction_pct"].to_list() == [13.5, None]  # a failed match (NaN) reads n/a
    assert set(pq.COMPARISON_COLUMNS) <= set(comparison.columns)
    policies = pq.backtest_policies(con)
    assert policies.select("study", "policy").rows() == [
        ("matched_service", "stockturn"), ("matched_service", "classical_matched"), ("lead_time_shock", "stockturn")]
    assert policies["avg_inventory_value"].to_list() == [45000.0, 52000.0, 40000.0]  # the latest run only
    assert policies["policy_label"][1] == "Classical, same fill rate" and policies["bullwhip"].null_count() == 3
    by_cat = pq.backtest_by_category(con)
    assert by_cat.select("category", "policy", "fill_rate_volume").rows() == [("Toys", "stockturn", 0.97)]
