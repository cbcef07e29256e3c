"""Forecast drift: is the stored forecast still as good as its backtest said? (issue 11, section 1)

The nightly run re-plans from the last fitted forecast (the weekly run re-fits). ``forecast_drift`` compares the
forecast in ``ml.demand_forecast`` with what was sold since its as-of date, on the days the warehouse now holds
(``marts.fct_sales_daily``, the selling locations' series; stock-out days are left out, their sales understate
demand):

- WAPE = sum |forecast - actual| / sum actual over those series x days, against the WAPE the forecast's own
  backtest measured for the chosen models (``ml.forecast_backtest``: level ``overall``, model ``selected``, the
  mean over its origins);
- bias = sum (forecast - actual) / sum actual.

It has drifted when, after at least ``min_days`` days, the WAPE exceeds ``wape_factor`` x the backtest's or the
bias is beyond ``bias_limit`` either way. The ``forecast_drift_sensor`` (``orchestration/defs/schedules.py``)
then asks for the weekly re-fit early. Plain Python; reads only.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import duckdb

from ml.warehouse import table_exists

MIN_DAYS = 7
WAPE_FACTOR = 1.5
BIAS_LIMIT = 0.25


@dataclass(frozen=True)
class Drift:
    forecast_run_id: str | None
    forecast_as_of: date | None
    days: int  # days of actuals since the forecast's as-of date
    wape: float | None
    expected_wape: float | None
    bias: float | None
    drifted: bool
    reason: str

    def describe(self) -> str:
        if self.wape is None:
            return self.reason
        exp = f"{self.expected_wape:.3f}" if self.expected_wape is not None else "unknown"
        return (f"forecast {self.forecast_run_id} (as of {self.forecast_as_of}), {self.days} days of actuals: WAPE "
                f"{self.wape:.3f} against {exp} in its backtest, bias {self.bias:+.1%}: {self.reason}")


def forecast_drift(con: duckdb.DuckDBPyConnection, *, min_days: int = MIN_DAYS, wape_factor: float = WAPE_FACTOR,
                   bias_limit: float = BIAS_LIMIT) -> Drift:
    """The drift of the stored forecast (module docstring)."""
    if not (table_exists(con, "ml", "demand_forecast") and table_exists(con, "marts", "fct_sales_daily")):
        return Drift(None, None, 0, None, None, None, False, "no stored forecast or sales mart yet")
    run_id, as_of = con.execute("select any_value(run_id), max(as_of_date) from ml.demand_forecast").fetchall()[0]
    if as_of is None:
        return Drift(None, None, 0, None, None, None, False, "the stored forecast is empty")
    as_of = as_of.date() if hasattr(as_of, "date") else as_of
    (latest,) = con.execute("select max(date_day) from marts.fct_sales_daily").fetchall()[0]
    days = (latest - as_of).days if latest is not None else 0
    if days < min_days:
        return Drift(run_id, as_of, max(days, 0), None, None, None, False,
                     f"{max(days, 0)} days of actuals since the forecast's as-of date {as_of}, fewer than {min_days}")
    # forecast periods wholly inside the days now known; actuals summed over each period's days
    err, act, bias = con.execute("""
        with periods as (
            select product_id, location_id, period_start::date as period_start, period_end::date as period_end,
                   forecast
            from ml.demand_forecast
            where period_start::date > ? and period_end::date <= ?
        ),
        actuals as (
            select p.product_id, p.location_id, p.period_start, any_value(p.forecast) as forecast,
                   sum(s.units_sold) as actual, bool_or(coalesce(s.is_stockout_day, false)) as stockout
            from periods as p
            inner join marts.fct_sales_daily as s
                on s.product_id = p.product_id and s.location_id = p.location_id
                and s.date_day between p.period_start and p.period_end
            group by all
        )
        select sum(abs(forecast - actual)), sum(actual), sum(forecast - actual)
        from actuals where not stockout""", [as_of, latest]).fetchall()[0]
    if not act:
        return Drift(run_id, as_of, days, None, None, None, False, "no sales in the days since the forecast")
    wape, bias = float(err) / float(act), float(bias) / float(act)
    expected = None
    if table_exists(con, "ml", "forecast_backtest"):
        (expected,) = con.execute("""select avg(value) from ml.forecast_backtest
            where level = 'overall' and model = 'selected' and metric = 'wape'""").fetchall()[0]
    reasons = []
    if expected is not None and wape > wape_factor * expected:
        reasons.append(f"WAPE above {wape_factor:g}x the backtest's")
    if abs(bias) > bias_limit:
        reasons.append(f"bias beyond ±{bias_limit:.0%}")
    drifted = bool(reasons)
    return Drift(run_id, as_of, days, wape, expected, bias, drifted,
                 "; ".join(reasons) + ": re-fit" if drifted else "within what the backtest measured")
