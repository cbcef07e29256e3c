"""``run_policy``: service targets, safety stock, reorder points, order quantities, proposals and exceptions for every
product x location of a :class:`~ml.demand_distribution.LeadTimeDemand`, beside the classical baseline.

What it reads (all bounded by ``as_of``; nothing after it is used, so a simulator can call it at past dates):

- ``ltd`` (from forecasting): the protection-interval demand samples and, from the same draws, the demand before
  an order arrives (``LeadTimeDemand.lead_only``), the forecast mean daily demand, lead-time mean/p90 and review
  period per series. The series planned are exactly its keys.
- ``forecast`` (ml.demand_forecast): only product_id, location_id, a date column (period_start, date, ds, ...),
  a mean column (forecast, forecast_mean, mean, ...) and, if present, period_end; names are detected or set in
  the config. Its mean demand per day over the first ``forecast_window_days`` after as_of (rows weighted by
  their length in days, so weekly or monthly rows work) is the near-term rate for the excess and
  forecast-vs-actual exceptions; series missing from it use the LTD's daily mean.
- the warehouse: marts.dim_product, dim_location, fct_inventory_daily (usage history, costs, the position on
  as_of), fct_sales_daily (list prices), fct_inventory_discrepancies (cycle counts), planning.service_levels and
  planning.planner_overrides (else the seeds' CSV files, logged), ml.inventory_policy (previous run, if its as_of is
  not later) and ml.proposal_decisions.

Fill-rate targets use the periodic-review (R, s, S) fill rate
(``inventory_math.periodic_fill_rate_from_samples``), with the target raised by the sampling optimism of
choosing r on the same draws (``inventory_math.fill_rate_sampling_optimism``); ``expected_fill_rate`` is that
fill rate less the optimism, so it is what independent draws would say (bench/fill_promise.py, docs/backtest.md).

Inventory position = max(on hand, 0) + on order + in transit on as_of (``position_basis``): a negative book means a
movement is missing from the exports, not stock owed, so it counts as zero ('negative_book_as_zero'); missing
on-order/in-transit count as zero; a null on-hand (no snapshot anchors it) leaves the position unknown
('unavailable'): no proposal, a ``position_unavailable`` exception.

Unit cost (``unit_cost_basis``): the standard cost valid on as_of ('standard_cost'), else the latest standard cost
before it ('last_standard_cost'), else list price x (1 - default_margin) ('list_price_less_margin'), else
``default_unit_cost`` ('default'). Unit price: the latest list price at the location within the history window,
else the product's latest anywhere (distribution centres do not sell), else the master's current list price, else
cost / (1 - default_margin).

EOQ costs, for the recommended and the classical order quantity alike: the ordering cost per line of a
supplier-replenished series is the item's from marts.dim_product (the product's, else its supplier's:
``ordering_cost_basis`` 'product' / 'supplier'), else ``ordering_cost_per_line`` ('default'); a transfer series
always costs ``transfer_cost_per_line`` ('transfer'). The holding rate of every series is the item's from
dim_product, else ``annual_holding_rate`` (``holding_rate`` / ``holding_rate_basis``).
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from dataclasses import dataclass, field
from datetime import date

import duckdb
import numpy as np
import polars as pl

from ml.demand_distribution import LeadTimeDemand, exposure_days
from ml.policy import echelon, guards
from ml.policy import inventory_math as im
from ml.policy.classify import classify_abc, classify_xyz, load_service_levels
from ml.policy.config import PolicyConfig
from ml.policy.exceptions import build_exceptions
from ml.policy.inputs import (
    latest_history_date,
    read_counts,
    read_history,
    read_master,
    read_position,
    read_previous_policy,
    read_prices,
    read_silence,
    read_unforecast_locations,
    read_unplanned_products,
    registered_keys,
    table_exists,
)
from ml.policy.overrides import Overrides, load_overrides
from ml.policy.proposals import build_proposals, read_latest_decisions
from ml.policy.text import stable_id
from ml.warehouse import RunInfo, read_frame, write_tables_atomically

log = logging.getLogger("stockturn.policy")

POLICY_MODEL_VERSION = "policy-1.13"
_FORECAST_DATE_COLUMNS = ("date", "ds", "date_day", "forecast_date", "period", "period_start", "target_date")
_FORECAST_MEAN_COLUMNS = ("forecast_mean", "mean", "yhat", "forecast", "demand_mean", "y_hat", "forecast_units")
#: reorder_point_basis of a planner's reorder point (the rules' own: inventory_math.BASIS_*, guards.BASIS_GUARD,
#: echelon.BASIS_PLACEMENT)
BASIS_OVERRIDE = "override"

#: Columns of ml.inventory_policy after run_id, as_of_date, model_version (see the module docs / final report).
POLICY_COLUMNS: dict[str, pl.DataType] = {
    "product_id": pl.String(), "location_id": pl.String(), "location_type": pl.String(),
    "replenishment_source": pl.String(), "supplier_id": pl.String(), "source_location_id": pl.String(),
    "abc_class": pl.String(), "xyz_class": pl.String(), "annual_consumption_value": pl.Float64(),
    "weekly_demand_cv": pl.Float64(), "service_metric": pl.String(), "service_target": pl.Float64(),
    "service_target_source": pl.String(),
    "unit_cost": pl.Float64(), "unit_cost_basis": pl.String(), "unit_price": pl.Float64(),
    "min_order_qty": pl.Float64(), "pack_size": pl.Float64(), "ordering_cost": pl.Float64(),
    "ordering_cost_basis": pl.String(), "holding_rate": pl.Float64(), "holding_rate_basis": pl.String(),
    "daily_demand_forecast": pl.Float64(), "daily_demand_hist_mean": pl.Float64(),
    "daily_demand_hist_std": pl.Float64(), "history_days": pl.Int64(),
    "lead_time_days": pl.Float64(), "lead_time_p90_days": pl.Float64(), "lead_time_source": pl.String(),
    "review_period_days": pl.Float64(), "ltd_mean": pl.Float64(), "ltd_std": pl.Float64(),
    "eoq_units": pl.Float64(), "order_quantity": pl.Float64(), "reorder_point": pl.Float64(),
    "reorder_point_basis": pl.String(), "safety_stock": pl.Float64(), "order_up_to_level": pl.Float64(),
    "safety_stock_value": pl.Float64(), "expected_avg_inventory_units": pl.Float64(),
    "expected_avg_inventory_value": pl.Float64(), "expected_cycle_service_level": pl.Float64(),
    "expected_fill_rate": pl.Float64(), "expected_turnover": pl.Float64(), "safety_stock_days": pl.Float64(),
    "reorder_point_days_of_supply": pl.Float64(), "order_up_to_days_of_supply": pl.Float64(),
    "order_cover_days": pl.Float64(), "order_demand_daily": pl.Float64(), "order_demand_basis": pl.String(),
    "classical_lead_time_days": pl.Float64(), "classical_lead_time_basis": pl.String(),
    "classical_ltd_mean": pl.Float64(), "classical_ltd_std": pl.Float64(), "classical_safety_factor": pl.Float64(),
    "classical_eoq_units": pl.Float64(), "classical_order_quantity": pl.Float64(),
    "classical_reorder_point": pl.Float64(), "classical_safety_stock": pl.Float64(),
    "classical_order_up_to_level": pl.Float64(), "classical_safety_stock_value": pl.Float64(),
    "classical_expected_avg_inventory_value": pl.Float64(), "classical_expected_cycle_service_level": pl.Float64(),
    "classical_expected_fill_rate": pl.Float64(), "classical_expected_turnover": pl.Float64(),
    "delta_safety_stock_units": pl.Float64(), "delta_safety_stock_value": pl.Float64(),
    "delta_reorder_point": pl.Float64(), "delta_order_quantity": pl.Float64(),
    "delta_expected_avg_inventory_value": pl.Float64(), "delta_expected_turnover": pl.Float64(),
    "on_hand_units": pl.Float64(), "inventory_position_units": pl.Float64(), "position_basis": pl.String(),
    "is_orderable": pl.Boolean(), "not_orderable_reason": pl.String(), "needs_order": pl.Boolean(),
    "proposal_id": pl.String(),
    "is_excluded": pl.Boolean(), "overridden_fields": pl.String(), "override_reasons": pl.String(),
    "override_authors": pl.String(), "reorder_point_before_override": pl.Float64(),
    "order_quantity_before_override": pl.Float64(),
    "empirical_reorder_point": pl.Float64(), "empirical_safety_stock": pl.Float64(),
    "guard_reference_reorder_point": pl.Float64(), "guard_reference_safety_stock": pl.Float64(),
    "reorder_point_before_guard": pl.Float64(), "is_safety_stock_guarded": pl.Boolean(),
    "is_above_references": pl.Boolean(),
    "echelon_wait_days": pl.Float64(), "reorder_point_before_placement": pl.Float64(),
    "echelon_store_target_units": pl.Float64(), "echelon_position_units": pl.Float64(),
    "ordering_position_units": pl.Float64(),
}


@dataclass
class PolicyRun:
    """The three write-back frames (already stamped with run_id, as_of_date, model_version) and headline numbers."""

    inventory_policy: pl.DataFrame  # -> ml.inventory_policy
    purchase_proposals: pl.DataFrame  # -> ml.purchase_proposals
    exceptions: pl.DataFrame  # -> ml.exceptions
    summary: dict
    run_info: RunInfo | None = None
    timings: dict[str, float] = field(default_factory=dict)

    def tables(self) -> dict[str, pl.DataFrame]:
        return {"inventory_policy": self.inventory_policy, "purchase_proposals": self.purchase_proposals,
                "exceptions": self.exceptions}


def write_policy_run(con: duckdb.DuckDBPyConnection, run: PolicyRun) -> None:
    """Replace ml.inventory_policy, ml.purchase_proposals and ml.exceptions in one transaction (the append-only
    ml.proposal_decisions is never touched)."""
    write_tables_atomically(con, run.tables())


# ------------------------------------------------------------------------------------------------ helpers


def _arr(frame: pl.DataFrame, name: str, fill: float = np.nan) -> np.ndarray:
    return frame[name].cast(pl.Float64).fill_null(fill).to_numpy().astype(np.float64, copy=True)


def _override_array(ov: Overrides, name: str, n: int) -> np.ndarray:
    out = np.full(n, np.nan)
    rows = ov.field(name)
    if rows.height:
        out[rows["_i"].to_numpy().astype(np.int64)] = rows["value_num"].to_numpy()
    return out


def _forecast_rows(forecast: pl.DataFrame | None, keys: pl.DataFrame, as_of: date,
                   config: PolicyConfig) -> pl.DataFrame | None:
    """The forecast frame's rows after as_of as (_i, d0, len, m): first day (days after as_of, >= 1), length in
    days and mean units over the row. ``len`` is ``period_end`` - date + 1 when the frame has a ``period_end``
    column, else the frame's row spacing (median gap between consecutive dates, 1 for a daily frame). None when
    the frame has no row after as_of."""
    if forecast is None or forecast.height == 0:
        return None
    date_col = config.forecast_date_column or next((c for c in _FORECAST_DATE_COLUMNS if c in forecast.columns), None)
    mean_col = config.forecast_mean_column or next((c for c in _FORECAST_MEAN_COLUMNS if c in forecast.columns), None)
    if date_col is None or mean_col is None or not {"product_id", "location_id"} <= set(forecast.columns):
        raise ValueError(f"forecast frame needs product_id, location_id, a date column {_FORECAST_DATE_COLUMNS} and "
                         f"a mean column {_FORECAST_MEAN_COLUMNS}; got {forecast.columns}")
    f = forecast.select(
        pl.col("product_id").cast(pl.String), pl.col("location_id").cast(pl.String),
        pl.col(date_col).cast(pl.Date).alias("d"), pl.col(mean_col).cast(pl.Float64).clip(lower_bound=0).alias("m"),
        *([pl.col("period_end").cast(pl.Date).alias("e")] if "period_end" in forecast.columns else []),
    ).filter(pl.col("d") > as_of)
    if f.height == 0:
        log.warning("the forecast has no rows after %s", as_of)
        return None
    if "e" in f.columns:
        f = f.with_columns(((pl.col("e") - pl.col("d")).dt.total_days() + 1).clip(lower_bound=1).alias("len"))
    else:
        gaps = f.select(pl.col("d").unique().sort().diff().dt.total_days()).to_series()
        step = float(gaps.filter(gaps > 0).median() or 1.0)
        f = f.with_columns(pl.lit(step).alias("len"))
    f = f.with_columns((pl.col("d") - pl.lit(as_of)).dt.total_days().alias("d0"))
    return keys.select("_i", "product_id", "location_id").join(
        f, on=["product_id", "location_id"], how="inner").select("_i", "d0", pl.col("len").cast(pl.Float64), "m")


def forecast_near_term(forecast: pl.DataFrame | None, keys: pl.DataFrame, as_of: date,
                       config: PolicyConfig) -> pl.DataFrame:
    """Mean forecast demand per day over the ``forecast_window_days`` after as_of per series (_i,
    forecast_daily_near).

    Uses the rows dated after as_of up to as_of + window (always at least the first one, so a monthly forecast
    still counts), each weighted by its length in days (:func:`_forecast_rows`). Rate = sum of means / sum of
    lengths.
    """
    return _near_term(_forecast_rows(forecast, keys, as_of, config), config)


def _near_term(f: pl.DataFrame | None, config: PolicyConfig) -> pl.DataFrame:
    if f is None:
        return pl.DataFrame(schema={"_i": pl.UInt32, "forecast_daily_near": pl.Float64})
    f = f.filter((pl.col("d0") <= config.forecast_window_days) | (pl.col("d0") == pl.col("d0").min().over("_i")))
    return f.group_by("_i").agg((pl.col("m").sum() / pl.col("len").sum()).alias("forecast_daily_near"))


def forecast_rate_between(forecast: pl.DataFrame | None, keys: pl.DataFrame, as_of: date, config: PolicyConfig,
                          start_days: np.ndarray, window_days: np.ndarray) -> np.ndarray:
    """Mean forecast demand per day over days ``start + 1 .. start + window`` after as_of, per row of ``keys``
    (``_i`` = row number; ``start_days`` / ``window_days`` per row); NaN where the forecast covers less than
    half of that window (a horizon shorter than the lead time) or the series has no forecast. A row of the frame
    counts by its overlap with the window, its mean spread evenly over its days."""
    return _rate_between(_forecast_rows(forecast, keys, as_of, config), keys.height, start_days, window_days)


def _rate_between(f: pl.DataFrame | None, n: int, start_days: np.ndarray, window_days: np.ndarray) -> np.ndarray:
    out = np.full(n, np.nan)
    if f is None:
        return out
    win = pl.DataFrame({"_i": np.arange(n, dtype=np.uint32), "__a": np.asarray(start_days, np.float64) + 1.0,
                        "__b": np.asarray(start_days, np.float64) + np.asarray(window_days, np.float64)})
    f = f.join(win, on="_i").with_columns(
        (pl.min_horizontal(pl.col("d0") + pl.col("len") - 1, pl.col("__b"))
         - pl.max_horizontal(pl.col("d0"), pl.col("__a")) + 1).clip(lower_bound=0).alias("__days"))
    rate = f.group_by("_i").agg(
        (pl.col("m") / pl.col("len") * pl.col("__days")).sum().alias("units"), pl.col("__days").sum().alias("days"),
        ((pl.col("__b") - pl.col("__a") + 1).first()).alias("width"))
    rate = rate.filter(pl.col("days") >= 0.5 * pl.col("width"))
    out[rate["_i"].to_numpy().astype(np.int64)] = (rate["units"] / rate["days"]).to_numpy()  # _i = row of keys
    return out


#: a re-plan between forecasts moves a series' draws by at most this factor either way (``forecast_level_shift``):
#: beyond it the forecast's shape over the window has changed too much for a level shift to stand for it
MAX_LEVEL_SHIFT = 4.0


def forecast_level_shift(forecast: pl.DataFrame | None, keys: pl.DataFrame, forecast_as_of: date | None,
                         as_of: date, rows_now: pl.DataFrame | None, window_days: np.ndarray,
                         config: PolicyConfig) -> np.ndarray:
    """Per row of ``keys``: the forecast's mean daily demand over the protection interval starting at ``as_of``
    over its mean over the interval starting at ``forecast_as_of`` (1 where either is unknown or the forecast is
    as of the plan's day).

    The lead-time-demand draws are made for the interval that starts on the day the forecast was made. A re-plan a
    week later (the nightly plan from the weekly forecast, ``stockturn replan``) protects the interval that starts
    on its own day: for a season that rises or ends within the lead time, that interval's demand differs from the
    first one's. The forecast itself says by how much, bounded by ``MAX_LEVEL_SHIFT``; the draws move by it as
    more (or fewer) customers, not larger orders (``inventory_math.level_shifted_interval``).
    ``rows_now``: the forecast rows after ``as_of`` (``_forecast_rows``)."""
    n = keys.height
    out = np.ones(n)
    if forecast is None or forecast_as_of is None or forecast_as_of >= as_of or rows_now is None:
        return out
    window = np.maximum(np.asarray(window_days, dtype=np.float64), 1.0)
    then = _rate_between(_forecast_rows(forecast, keys, forecast_as_of, config), n, np.zeros(n), window)
    now = _rate_between(rows_now, n, np.zeros(n), window)
    ok = np.isfinite(then) & np.isfinite(now) & (then > 0)
    out[ok] = np.clip(now[ok] / then[ok], 1.0 / MAX_LEVEL_SHIFT, MAX_LEVEL_SHIFT)
    moved = np.abs(out - 1.0) > 0.005
    if moved.any():
        log.info("re-plan %d days after the forecast of %s: %d of %d series' draws moved with the forecast's level "
                 "(median x%.2f, %d at the bound of x%g either way)", (as_of - forecast_as_of).days, forecast_as_of,
                 int(moved.sum()), n, float(np.median(out[moved])),
                 int(np.sum(np.isclose(out, MAX_LEVEL_SHIFT) | np.isclose(out, 1.0 / MAX_LEVEL_SHIFT))),
                 MAX_LEVEL_SHIFT)
    return out


def _row_keys(ltd: LeadTimeDemand) -> pl.DataFrame:
    """The series' keys as strings with their row number (``_i``)."""
    return ltd.keys.select(pl.col("product_id").cast(pl.String), pl.col("location_id").cast(pl.String)
                           ).with_row_index("_i")


def _with_cold_start(con: duckdb.DuckDBPyConnection, ltd: LeadTimeDemand, unforecast: pl.DataFrame, as_of: date,
                     forecast_as_of: date | None, c: PolicyConfig) -> tuple[LeadTimeDemand, np.ndarray, bool]:
    """``ltd`` with the cold-start draws (``ml.forecasting.cold_start``) of the product-locations selling without
    a series appended (``unforecast``), and those of the series whose forecast saw no demand but which sold since
    it was made (a re-plan only) replaced; which rows are planned that way; whether ``unforecast`` was appended."""
    is_cold = np.zeros(ltd.n_series, dtype=bool)
    if not c.plan_cold_start:
        return ltd, is_cold, False
    from ml.forecasting.cold_start import (
        cold_start_lead_time_demand,
        concat_lead_time_demand,
        read_woken_series,
        replace_rows,
    )

    widths = {"n_samples": ltd.samples.shape[1],
              "n_empirical": None if ltd.empirical_samples is None else ltd.empirical_samples.shape[1]}
    if forecast_as_of is not None and forecast_as_of < as_of:
        woken = read_woken_series(con, ltd, forecast_as_of, as_of)
        if woken.size:
            fresh = cold_start_lead_time_demand(con, ltd.keys[woken], as_of, **widths)
            if fresh is not None:
                ltd = replace_rows(ltd, woken, fresh)
                is_cold[woken] = True
                log.info("%d series whose forecast of %s saw no demand sold since: planned on their own usage "
                         "since their first sale", woken.size, forecast_as_of)
    if unforecast.height:
        extra = cold_start_lead_time_demand(con, unforecast.select("product_id", "location_id"), as_of, **widths)
        if extra is not None:
            return concat_lead_time_demand(ltd, extra), np.r_[is_cold, np.ones(extra.n_series, dtype=bool)], True
    return ltd, is_cold, False


def _effective_interval(samples: np.ndarray, lead: np.ndarray, scale: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The joint samples over each row's effective interval: stretched by ``scale`` where it is not 1 (a
    planner's lead time, a store's wait at its DC; ``inventory_math.stretched_interval``), as they are elsewhere
    (no copy when no row is stretched)."""
    if not np.any(scale != 1.0):
        return samples, lead
    return im.stretched_interval(samples, lead, scale)  # rows at 1 are copied as they are


def _peak_ratio(f: pl.DataFrame | None, n: int, protection_days: np.ndarray, *, rows: np.ndarray,
                window_days: int = echelon.PEAK_WINDOW_DAYS, step_days: int = 7) -> np.ndarray:
    """Per row (``rows`` only; 1 elsewhere): the busiest ``window_days`` of the forecast that start within the
    row's protection interval P (days 0 .. P, weekly steps), as a rate over the forecast's rate over the interval
    itself, at least 1 (1 where the forecast does not cover them). The demand the plan made today has to meet
    before the next plans' orders can arrive: a season that peaks within it (``echelon.place_safety_stock``)."""
    out = np.ones(n)
    if f is None or rows.size == 0:
        return out
    sub = f.filter(pl.col("_i").is_in(rows.astype(np.int64).tolist()))
    p = np.maximum(np.asarray(protection_days, dtype=np.float64), 1.0)
    base = _rate_between(sub, n, np.zeros(n), p)
    peak = np.full(n, np.nan)
    for start in range(0, int(np.ceil(p[rows].max())) + 1, step_days):
        rate = _rate_between(sub, n, np.full(n, float(start)), np.full(n, float(window_days)))
        rate = np.where(start <= p, rate, np.nan)
        peak = np.fmax(peak, rate)
    ok = (base > 0) & np.isfinite(peak)
    out[ok] = np.maximum(peak[ok] / base[ok], 1.0)
    keep = np.zeros(n, dtype=bool)
    keep[rows] = True
    return np.where(keep, out, 1.0)


def _hash_inputs(ltd: LeadTimeDemand, forecast: pl.DataFrame | None, extra: list[pl.DataFrame]) -> dict[str, str]:
    h = hashlib.sha256()
    h.update(np.ascontiguousarray(ltd.samples).tobytes())
    for a in (ltd.daily_demand_mean, ltd.lead_time_mean_days, ltd.lead_time_p90_days, ltd.review_period_days):
        h.update(np.ascontiguousarray(a, dtype=np.float64).tobytes())
    h.update("|".join(ltd.keys["product_id"].to_list() + ltd.keys["location_id"].to_list()).encode())
    out = {"ltd": h.hexdigest()[:16]}
    frames = ([forecast] if forecast is not None else []) + extra
    fh = hashlib.sha256()
    for frame in frames:
        fh.update(str(frame.shape).encode())
        if frame.height:
            fh.update(str(int(frame.hash_rows(seed=0).sum())).encode())
    out["frames"] = fh.hexdigest()[:16]
    return out


# ------------------------------------------------------------------------------------------------ the run


def run_policy(
    con: duckdb.DuckDBPyConnection,
    ltd: LeadTimeDemand,
    forecast: pl.DataFrame | None,
    config: PolicyConfig = PolicyConfig(),  # noqa: B008 (frozen, immutable default)
    *,
    as_of: date | None = None,
    forecast_as_of: date | None = None,
) -> PolicyRun:
    """Compute the recommended and the classical policy for every series of ``ltd``, the proposals and the
    exceptions, as of ``as_of`` (default: the latest day of marts.fct_inventory_daily). Nothing is written: pass
    the result to :func:`write_policy_run`.

    ``forecast_as_of``: the day ``ltd`` and ``forecast`` were made as of, when the plan is made later from them (a
    re-plan without forecasting again): the draws then move with the forecast's level over the interval that
    starts on ``as_of`` (:func:`forecast_level_shift`). None: the forecast is taken as made on ``as_of``."""
    timings: dict[str, float] = {}
    t_start = t = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal t
        now = time.perf_counter()
        timings[name] = round(now - t, 3)
        t = now

    c = config
    if ltd.keys.select("product_id", "location_id").is_duplicated().any():
        raise ValueError("LeadTimeDemand keys must be unique per product_id x location_id")
    latest = latest_history_date(con)
    if latest is None:
        raise ValueError("marts.fct_inventory_daily is empty: build the warehouse first")
    as_of = as_of or latest
    if as_of > latest:
        raise ValueError(f"as_of {as_of} is after the last day of history {latest}")
    # product-locations selling without a series (they began to sell after the forecast was made): named in the
    # exceptions, and planned on their own usage since their first sale until the next forecast
    unforecast = read_unforecast_locations(con, _row_keys(ltd), as_of, c.forecast_window_days)
    ltd, is_cold, unforecast_planned = _with_cold_start(con, ltd, unforecast, as_of, forecast_as_of, c)
    n = ltd.n_series
    S = np.asarray(ltd.samples, dtype=np.float64)
    S_lead = np.asarray(ltd.lead_only(), dtype=np.float64)  # the demand before an order arrives, same draws
    keys = _row_keys(ltd)

    # ---------------------------------------------------------------- warehouse reads
    with registered_keys(con, keys):
        frames = {
            "master": read_master(con, c), "history": read_history(con, as_of, c),
            "position": read_position(con, as_of), "prices": read_prices(con, as_of, c),
            "counts": read_counts(con, as_of, c),
        }
        previous = read_previous_policy(con, as_of)
        if previous is not None:
            frames["previous"] = previous
    df = keys
    for frame in frames.values():
        df = df.join(frame.with_columns(pl.col("_i").cast(pl.UInt32)), on="_i", how="left", maintain_order="left")
    df = df.sort("_i")
    # days in stock since the last sale: only where a ghost-stock exception is possible
    candidates = df.filter(
        (pl.col("on_hand_units") > 0) & (pl.col("sale_days") >= c.ghost_min_sale_days)
        & ((pl.lit(as_of) - pl.col("last_usage_date")).dt.total_days() > c.ghost_min_silence_days))
    df = df.join(read_silence(con, candidates, as_of), on="_i", how="left", maintain_order="left").sort("_i")
    lap("read_marts")
    products = read_frame(con, "select product_id from marts.dim_product")["product_id"]
    service_levels = load_service_levels(con, c)
    overrides = load_overrides(con, keys, products, c)
    decisions = read_latest_decisions(con)
    lap("read_seeds_and_decisions")
    forecast_rows = _forecast_rows(forecast, keys, as_of, c)  # normalised once: the near term and the order size
    near = _near_term(forecast_rows, c)
    df = df.join(near, on="_i", how="left", maintain_order="left").sort("_i")
    lap("forecast_near_term")

    # ---------------------------------------------------------------- costs, prices, classification, targets
    m = c.default_margin
    cost_today = pl.when(pl.col("unit_cost_as_of") > 0).then(pl.col("unit_cost_as_of"))
    cost_last = pl.when(pl.col("last_unit_cost") > 0).then(pl.col("last_unit_cost"))
    price_raw = pl.coalesce(
        pl.when(pl.col("price_location") > 0).then(pl.col("price_location")),
        pl.when(pl.col("price_product") > 0).then(pl.col("price_product")),
        pl.when(pl.col("current_list_price") > 0).then(pl.col("current_list_price")),
    )
    df = df.with_columns(
        pl.coalesce(cost_today, cost_last, price_raw * (1 - m), pl.lit(c.default_unit_cost)).alias("unit_cost"),
        pl.when(cost_today.is_not_null()).then(pl.lit("standard_cost"))
        .when(cost_last.is_not_null()).then(pl.lit("last_standard_cost"))
        .when(price_raw.is_not_null()).then(pl.lit("list_price_less_margin"))
        .otherwise(pl.lit("default")).alias("unit_cost_basis"),
        price_raw.alias("__price_raw"),
    ).with_columns(
        pl.coalesce(pl.col("__price_raw"), pl.col("unit_cost") / (1 - m)).alias("unit_price"),
        pl.when(pl.col("hist_days") > 0)
        .then(pl.col("hist_units") / pl.col("hist_days") * c.days_per_year * pl.col("unit_cost"))
        .otherwise(0.0).alias("annual_consumption_value"),
        pl.when(pl.col("week_mean") > 0).then(pl.col("week_std") / pl.col("week_mean")).otherwise(None)
        .alias("weekly_demand_cv"),
    )
    abc = classify_abc(df, c)
    xyz = classify_xyz(_arr(df, "weekly_demand_cv"), _arr(df, "weeks_n", 0.0), _arr(df, "week_mean", 0.0), c)
    df = df.with_columns(abc.alias("abc_class"), pl.Series("xyz_class", xyz.tolist(), dtype=pl.String))
    df = df.join(service_levels, on=["abc_class", "xyz_class"], how="left", maintain_order="left").sort("_i")

    # planner overrides of the service target
    st = overrides.field("service_target").select("_i", pl.col("value_num").alias("__ov_target"),
                                                  pl.col("value_metric").alias("__ov_metric"))
    df = df.join(st, on="_i", how="left", maintain_order="left").sort("_i").with_columns(
        pl.coalesce("__ov_target", "service_target").alias("service_target"),
        pl.when(pl.col("__ov_target").is_not_null()).then(pl.coalesce("__ov_metric", "service_metric"))
        .otherwise(pl.col("service_metric")).alias("service_metric"),
        pl.when(pl.col("__ov_target").is_not_null()).then(pl.lit("override"))
        .otherwise(pl.col("service_target_source")).alias("service_target_source"),
    )
    is_fill = (df["service_metric"] == "fill_rate").to_numpy()
    target = _arr(df, "service_target")
    lap("classify")

    # ---------------------------------------------------------------- terms, lead times
    is_supplier = (df["replenishment_source"].fill_null("supplier") == "supplier").to_numpy()
    moq = np.where(is_supplier, _arr(df, "min_order_qty", 0.0), c.transfer_min_order_qty)
    pack = np.where(is_supplier, _arr(df, "pack_size", 1.0), c.transfer_pack_size)
    ov_moq, ov_pack = _override_array(overrides, "min_order_qty", n), _override_array(overrides, "pack_size", n)
    moq = np.where(np.isnan(ov_moq), moq, ov_moq)
    pack = np.where(np.isnan(ov_pack), pack, ov_pack)
    pack = np.where(pack > 0, pack, 1.0)
    # EOQ costs: the item's from the master (product, else supplier) where given, else the settings; a transfer
    # line from the DC always costs transfer_cost_per_line (ordering_cost_basis / holding_rate_basis say which)
    k_item, h_item = _arr(df, "master_ordering_cost"), _arr(df, "master_annual_holding_rate")
    has_k, has_h = is_supplier & (k_item >= 0), h_item > 0
    k_order = np.where(is_supplier, np.where(has_k, k_item, c.ordering_cost_per_line), c.transfer_cost_per_line)
    k_basis = np.where(~is_supplier, "transfer", np.where(
        has_k, df["master_ordering_cost_basis"].fill_null("default").to_numpy().astype(object), "default"))
    holding_rate = np.where(has_h, h_item, c.annual_holding_rate)
    h_basis = np.where(has_h, df["master_holding_rate_basis"].fill_null("default").to_numpy().astype(object),
                       "default")
    unit_cost = _arr(df, "unit_cost")
    lt = np.asarray(ltd.lead_time_mean_days, dtype=np.float64)
    rp = np.asarray(ltd.review_period_days, dtype=np.float64)
    ov_lt = _override_array(overrides, "lead_time_days", n)
    has_lt = ~np.isnan(ov_lt)
    lt_eff = np.where(has_lt, ov_lt, lt)
    # samples are stretched to the planner's lead time, in protection intervals of L + R - 1 days
    # (demand_distribution.exposure_days; not possible for a zero-length interval: kept as they are)
    span, span_eff = exposure_days(lt, rp)[0], exposure_days(lt_eff, rp)[0]
    scale = np.where(has_lt & (span > 0), np.maximum(span_eff / np.where(span > 0, span, 1.0), 1e-9), 1.0)
    nominal = _arr(df, "nominal_lead_time_days")
    use_nominal = is_supplier & np.isfinite(nominal)
    lt_classical = np.where(~np.isnan(ov_lt), ov_lt, np.where(use_nominal, nominal, lt))
    lt_classical_basis = np.where(~np.isnan(ov_lt), "override", np.where(use_nominal, "nominal", "mean"))

    # ---------------------------------------------------------------- a re-plan between forecasts
    level_shift = forecast_level_shift(forecast, keys, forecast_as_of, as_of, forecast_rows, span, c)
    if np.any(level_shift != 1.0):
        S, S_lead = im.level_shifted_interval(S, S_lead, level_shift)

    # ---------------------------------------------------------------- recommended policy
    d_fc = np.maximum(np.asarray(ltd.daily_demand_mean, dtype=np.float64), 0.0)
    d_order, d_order_basis = d_fc, np.full(n, "horizon_mean", dtype=object)
    if c.order_quantity_demand == "after_arrival":
        # the order serves the days after it arrives: size it on the forecast of those days (a season that ends
        # before the order lands is not bought for; one that starts then is), over the cover of the first EOQ
        eoq0, _ = im.order_quantity(
            d_fc, unit_cost, k_order, annual_holding_rate=holding_rate, min_cover_days=c.min_order_cover_days,
            max_cover_days=c.max_order_cover_days, moq=np.zeros(n), pack_size=np.ones(n),
            days_per_year=c.days_per_year)
        cover = np.clip(np.where(d_fc > 0, eoq0 / np.where(d_fc > 0, d_fc, 1.0), rp), np.maximum(rp, 1.0),
                        c.max_order_cover_days)
        after = _rate_between(forecast_rows, n, np.ceil(lt_eff), np.ceil(cover))
        ok = np.isfinite(after) & ~is_cold  # a cold-start row's forecast (if any) saw no demand: its own usage
        d_order = np.where(ok, np.maximum(after, 0.0), d_fc)
        d_order_basis = np.where(ok, "after_arrival", "horizon_mean")
    if is_cold.any():
        from ml.forecasting.cold_start import COLD_START_BASIS

        d_order_basis = np.where(is_cold, COLD_START_BASIS, d_order_basis)
    eoq_units, q = im.order_quantity(
        d_order, unit_cost, k_order, annual_holding_rate=holding_rate, min_cover_days=c.min_order_cover_days,
        max_cover_days=c.max_order_cover_days, moq=moq, pack_size=pack, days_per_year=c.days_per_year)
    ov_q = _override_array(overrides, "order_quantity", n)
    q_before = q.copy()
    q = np.where(np.isnan(ov_q), q, ov_q)
    if c.dc_demand_in_store_lots:  # a DC's requests are its stores' whole order lots, not their customers' units
        # (the rounding of the lots only: where the position sits at a review is the undershoot chain's part)
        in_lots = echelon.with_store_order_lots(df.select("product_id", "location_id", "replenished_from"), S, q)
        S_lead = np.clip(S_lead + (in_lots - S), 0.0, in_lots)  # the same requests shift both windows
        S = in_lots
    undershoot = im.review_undershoot(S - S_lead, q)
    # fill-rate rows: the target raised by what choosing r on these draws overstates (taken off the promise below)
    target_r, optimism = im.raised_fill_targets(S, S_lead, is_fill_rate=is_fill, target=target, q=q,
                                                undershoot=undershoot)
    r, basis = im.reorder_points(S, is_fill_rate=is_fill, target=target_r, q=q, csl_floor=c.min_cycle_service_level,
                                 lead_samples=S_lead, undershoot=undershoot)
    scaled = np.flatnonzero(scale != 1.0)
    if scaled.size:  # planner lead times: rescaled samples for those few rows
        s_s, lead_s = im.stretched_interval(S[scaled], S_lead[scaled], scale[scaled])
        r_s, b_s = im.reorder_points(s_s, is_fill_rate=is_fill[scaled], target=target_r[scaled], q=q[scaled],
                                     csl_floor=c.min_cycle_service_level, lead_samples=lead_s)
        r[scaled], basis[scaled] = r_s, b_s
    ltd_mean = S.mean(axis=1) * scale
    ltd_std = (S.std(axis=1, ddof=1) if S.shape[1] > 1 else np.zeros(n)) * scale
    lap("recommended_policy")

    # ---------------------------------------------------------------- classical baseline
    hist_mean, hist_std = _arr(df, "hist_mean", 0.0), _arr(df, "hist_std", 0.0)
    eoq_cl, q_cl = im.order_quantity(
        hist_mean, unit_cost, k_order, annual_holding_rate=holding_rate,
        min_cover_days=c.min_order_cover_days, max_cover_days=c.max_order_cover_days, moq=moq, pack_size=pack,
        days_per_year=c.days_per_year)
    cl = im.classical_policy(hist_mean, hist_std, lt_classical + rp, is_fill_rate=is_fill, target=target,
                             q=q_cl, k_min=c.classical_k_min, k_max=c.classical_k_max)
    lap("classical_policy")

    # ---------------------------------------------------------------- guards, then planner overrides
    emp, emp_lead = ltd.empirical_samples, ltd.empirical_lead_only()
    if emp is not None and scaled.size:
        emp, emp_lead = np.array(emp, dtype=np.float64), np.array(emp_lead, dtype=np.float64)
        emp[scaled], emp_lead[scaled] = im.stretched_interval(emp[scaled], emp_lead[scaled], scale[scaled])
    guard = guards.apply_guards(r, basis, ltd_mean, emp, is_fill_rate=is_fill, target=target, q=q,
                                csl_floor=c.min_cycle_service_level, classical_reorder_point=cl.reorder_point,
                                classical_safety_stock=cl.safety_stock, factor=c.guard_factor,
                                empirical_lead=emp_lead)
    r, basis = guard.reorder_point, guard.basis
    lap("guards")

    # ---------------------------------------------------------------- DC vs stores (multi-echelon placement)
    r_before_placement = r.copy()
    wait = np.full(n, np.nan)
    if c.multi_echelon:
        s_sc, lead_sc = _effective_interval(S, S_lead, scale)
        placed = echelon.place_safety_stock(
            df.select("product_id", "location_id", "replenished_from"), s_sc, r, q,
            daily_demand=d_fc, protection_days=span_eff, holding_cost=unit_cost * holding_rate,
            is_fill_rate=is_fill, target=target_r, csl_floor=c.min_cycle_service_level,
            min_level=c.echelon_min_dc_level, fixed=guard.safety_stock_capped,
            peak_ratio=_peak_ratio(forecast_rows, n, lt_eff + rp, rows=np.flatnonzero(is_supplier)),
            lead_samples=lead_sc)
        del s_sc, lead_sc
        r = placed.reorder_point
        basis = np.where(placed.changed & ~guard.safety_stock_capped, echelon.BASIS_PLACEMENT, basis)
        scale = scale * placed.stretch  # stores: their samples now cover the expected wait at the DC
        wait = placed.wait_days
        ltd_mean = S.mean(axis=1) * scale
        ltd_std = (S.std(axis=1, ddof=1) if S.shape[1] > 1 else np.zeros(n)) * scale
    lap("multi_echelon")
    ov_r = _override_array(overrides, "reorder_point", n)
    r_before = r.copy()
    r = np.where(np.isnan(ov_r), r, ov_r)
    basis = np.where(np.isnan(ov_r), basis, BASIS_OVERRIDE)

    # ---------------------------------------------------------------- both evaluated on the samples
    S_eff, lead_eff = _effective_interval(S, S_lead, scale)
    csl_model = np.asarray(im.cycle_service_from_samples(S_eff, r), dtype=np.float64)
    csl_cl = np.asarray(im.cycle_service_from_samples(S_eff, cl.reorder_point), dtype=np.float64)
    # the review-period demand (S_eff - lead_eff) is the unstretched one, so the undershoot of q still holds
    fill_model = np.clip(np.asarray(im.periodic_fill_rate_from_samples(S_eff, lead_eff, r, q, undershoot=undershoot),
                                    dtype=np.float64) - optimism, 0.0, 1.0)
    fill_cl = np.asarray(im.periodic_fill_rate_from_samples(S_eff, lead_eff, cl.reorder_point, q_cl),
                         dtype=np.float64)
    on_hand = _arr(df, "on_hand_units")
    position = np.maximum(on_hand, 0.0) + _arr(df, "on_order_units", 0.0) + _arr(df, "in_transit_units", 0.0)
    p_out, short = im.stockout_over_lead_time(lead_eff, position)
    del S_eff, lead_eff
    lap("evaluate_on_samples")

    # ---------------------------------------------------------------- DCs order on their echelon position
    # a store's stock in the echelon: on hand and in transit from its DC (its requests not shipped are still the DC's)
    store_stock = np.maximum(on_hand, 0.0) + _arr(df, "in_transit_units", 0.0)
    ech_target, ech_position = (echelon.echelon_ordering_terms(df.select("product_id", "location_id",
                                                                          "replenished_from"), r, q, position,
                                                               store_stock)
                                if c.echelon_dc_ordering else (np.full(n, np.nan), np.full(n, np.nan)))
    ordering_position = np.where(np.isfinite(ech_target) & np.isfinite(ech_position),
                                 echelon.ordering_position(position, ech_position - ech_target), position)

    # ---------------------------------------------------------------- assemble the policy frame
    ss = r - ltd_mean
    ss_cl = cl.safety_stock
    avg_units = np.maximum(ss + q / 2.0, 0.0)
    avg_units_cl = np.maximum(ss_cl + q_cl / 2.0, 0.0)
    annual_units = d_fc * c.days_per_year
    with np.errstate(divide="ignore", invalid="ignore"):
        turn = np.where(avg_units > 0, annual_units / avg_units, np.nan)
        turn_cl = np.where(avg_units_cl > 0, annual_units / avg_units_cl, np.nan)
        per_day = np.where(d_fc > 0, 1.0 / d_fc, np.nan)
    ov_excl = _override_array(overrides, "exclude", n)
    excluded = ov_excl == 1.0
    applied = overrides.applied.sort(["_i", "field"])
    audit = applied.group_by("_i").agg(
        pl.col("field").str.join(",").alias("overridden_fields"),
        pl.format("{}: {}", pl.col("field"), pl.col("override_reason").fill_null("(no reason given)"))
        .str.join("; ").alias("override_reasons"),
        pl.col("override_author").unique(maintain_order=True).str.join(",").alias("override_authors"),
    ).with_columns(pl.col("_i").cast(pl.UInt32))
    df = df.with_columns(
        pl.Series("min_order_qty", moq), pl.Series("pack_size", pack), pl.Series("ordering_cost", k_order),
        pl.Series("ordering_cost_basis", k_basis.tolist(), dtype=pl.String),
        pl.Series("holding_rate", holding_rate), pl.Series("holding_rate_basis", h_basis.tolist(), dtype=pl.String),
        pl.Series("daily_demand_forecast", d_fc), pl.col("hist_mean").alias("daily_demand_hist_mean"),
        pl.col("hist_std").alias("daily_demand_hist_std"), pl.col("hist_days").cast(pl.Int64).alias("history_days"),
        pl.Series("lead_time_days", lt_eff), pl.Series("lead_time_p90_days",
                                                       np.asarray(ltd.lead_time_p90_days, dtype=np.float64)),
        pl.Series("lead_time_source", np.where(has_lt, "override", np.asarray(ltd.lead_time_source, dtype=object)),
                  dtype=pl.String, strict=False),
        pl.Series("review_period_days", rp), pl.Series("ltd_mean", ltd_mean), pl.Series("ltd_std", ltd_std),
        pl.Series("eoq_units", eoq_units), pl.Series("order_quantity", q), pl.Series("reorder_point", r),
        pl.Series("reorder_point_basis", basis.astype(str).tolist(), dtype=pl.String),
        pl.Series("safety_stock", ss), pl.Series("order_up_to_level", r + q),
        pl.Series("safety_stock_value", ss * unit_cost), pl.Series("expected_avg_inventory_units", avg_units),
        pl.Series("expected_avg_inventory_value", avg_units * unit_cost),
        pl.Series("expected_cycle_service_level", csl_model), pl.Series("expected_fill_rate", fill_model),
        pl.Series("expected_turnover", turn), pl.Series("safety_stock_days", ss * per_day),
        pl.Series("reorder_point_days_of_supply", r * per_day),
        pl.Series("order_up_to_days_of_supply", (r + q) * per_day), pl.Series("order_cover_days", q * per_day),
        pl.Series("classical_lead_time_days", lt_classical),
        pl.Series("classical_lead_time_basis", lt_classical_basis.tolist(), dtype=pl.String),
        pl.Series("classical_ltd_mean", cl.ltd_mean), pl.Series("classical_ltd_std", cl.ltd_std),
        pl.Series("classical_safety_factor", cl.safety_factor), pl.Series("classical_eoq_units", eoq_cl),
        pl.Series("classical_order_quantity", q_cl), pl.Series("classical_reorder_point", cl.reorder_point),
        pl.Series("classical_safety_stock", ss_cl), pl.Series("classical_order_up_to_level", cl.reorder_point + q_cl),
        pl.Series("classical_safety_stock_value", ss_cl * unit_cost),
        pl.Series("classical_expected_avg_inventory_value", avg_units_cl * unit_cost),
        pl.Series("classical_expected_cycle_service_level", csl_cl),
        pl.Series("classical_expected_fill_rate", fill_cl), pl.Series("classical_expected_turnover", turn_cl),
        pl.Series("delta_safety_stock_units", ss - ss_cl),
        pl.Series("delta_safety_stock_value", (ss - ss_cl) * unit_cost),
        pl.Series("delta_reorder_point", r - cl.reorder_point), pl.Series("delta_order_quantity", q - q_cl),
        pl.Series("delta_expected_avg_inventory_value", (avg_units - avg_units_cl) * unit_cost),
        pl.Series("delta_expected_turnover", turn - turn_cl),
        pl.Series("inventory_position_units", position),
        pl.Series("echelon_store_target_units", ech_target), pl.Series("echelon_position_units", ech_position),
        pl.Series("ordering_position_units", ordering_position),
        pl.when(pl.col("on_hand_units").is_null()).then(pl.lit("unavailable"))
        .when(pl.col("on_hand_units") < 0).then(pl.lit("negative_book_as_zero"))
        .otherwise(pl.lit("book")).alias("position_basis"),
        pl.col("replenished_from").alias("source_location_id"),
        pl.Series("is_excluded", excluded),
        pl.Series("reorder_point_before_override", np.where(np.isnan(ov_r), np.nan, r_before)),
        pl.Series("empirical_reorder_point", guard.empirical_reorder_point),
        pl.Series("empirical_safety_stock", guard.empirical_safety_stock),
        pl.Series("guard_reference_reorder_point", guard.reference_reorder_point),
        pl.Series("guard_reference_safety_stock", guard.reference_safety_stock),
        pl.Series("reorder_point_before_guard", guard.reorder_point_before_guard),
        pl.Series("is_safety_stock_guarded", guard.safety_stock_capped),
        pl.Series("is_above_references", guard.above_references),
        pl.Series("echelon_wait_days", wait),
        pl.Series("reorder_point_before_placement", np.where(r_before_placement != r_before, r_before_placement,
                                                             np.nan)),
        pl.Series("order_quantity_before_override", np.where(np.isnan(ov_q), np.nan, q_before)),
        pl.Series("p_stockout_lt", p_out), pl.Series("expected_short_lt", short),
        pl.Series("lead_time_effective_days", lt_eff),
        pl.Series("order_demand_daily", d_order), pl.Series("order_demand_basis", d_order_basis, dtype=pl.String),
        pl.coalesce(pl.col("forecast_daily_near"), pl.lit(pl.Series(d_fc))).alias("forecast_daily_near"),
        ((pl.col("discontinued_date") <= as_of).fill_null(False)).alias("is_discontinued"),
    ).with_columns(pl.col(pl.Float64).fill_nan(None))
    df = df.join(audit, on="_i", how="left", maintain_order="left").sort("_i")
    not_orderable = (
        pl.when(pl.col("is_excluded")).then(pl.lit("excluded_by_planner"))
        .when(pl.col("product_type") == "non_stock").then(pl.lit("non_stock_item"))
        .when(pl.col("is_discontinued")).then(pl.lit("discontinued"))
        .when(pl.col("inventory_position_units").is_null()).then(pl.lit("position_unavailable"))
        .when(~(pl.col("ltd_mean") > 0)).then(pl.lit("no_expected_demand"))
        .otherwise(None)
    )
    df = df.with_columns(not_orderable.alias("not_orderable_reason")).with_columns(
        pl.col("not_orderable_reason").is_null().alias("is_orderable"),
    ).with_columns(
        (pl.col("is_orderable") & (pl.col("ordering_position_units") <= pl.col("reorder_point"))).alias("needs_order"),
    )
    pid = stable_id(zip(df["product_id"], df["location_id"], [as_of.isoformat()] * n, strict=True))
    df = df.with_columns(pl.when(pl.col("needs_order")).then(pl.lit(pl.Series(pid, dtype=pl.String)))
                         .otherwise(None).alias("proposal_id"))
    lap("assemble")

    proposals = build_proposals(df, as_of, decisions)
    # a product selling since the forecast is named at its locations, not as a product that never sold
    unplanned = read_unplanned_products(con, keys, as_of).join(unforecast.select("product_id").unique(),
                                                               on="product_id", how="anti")
    if unplanned.height:
        log.warning("%s active stock products have no sales history and so no forecast or policy (exception "
                    "'no_forecast'), e.g. %s", f"{unplanned.height:,}", ", ".join(unplanned["product_id"][:5]))
    if unforecast.height:
        log.warning("%s product-locations sold in the %d days to %s but have no forecast there (exception "
                    "'no_forecast' with a location; %s at cost): %s, e.g. %s", f"{unforecast.height:,}",
                    c.forecast_window_days, as_of, f"{unforecast['value_at_cost'].sum():,.0f}",
                    "planned on their own usage since their first sale" if unforecast_planned
                    else "not planned (plan_cold_start is off, or their lead times cannot be read)",
                    ", ".join(f"{p}@{loc}" for p, loc in unforecast.select("product_id", "location_id").rows()[:5]))
    exceptions = build_exceptions(df, overrides.issues, as_of, c, unplanned, unforecast,
                                  unforecast_planned=unforecast_planned)
    lap("proposals_exceptions")

    policy = df.select([pl.col(k).cast(v) for k, v in POLICY_COLUMNS.items()])
    inputs = {"config": c.to_dict(), **_hash_inputs(ltd, forecast, [service_levels, overrides.applied,
                                                                   overrides.issues, decisions])}
    if table_exists(con, "raw", "landing_files"):
        inputs["landing_loads"] = sorted(str(x) for x in read_frame(
            con, "select distinct load_id from raw.landing_files")["load_id"].to_list())
    run_info = RunInfo.from_inputs(as_of_date=as_of, model_version=POLICY_MODEL_VERSION, inputs=inputs)
    policy, proposals, exceptions = (run_info.stamp(x) for x in (policy, proposals, exceptions))
    timings["total"] = round(time.perf_counter() - t_start, 3)
    summary = summarise(policy, proposals, exceptions, overrides, run_info, S.shape, timings, c)
    log.info("policy %s as of %s: %s series, %s proposals worth %s, %s exceptions in %.1f s", run_info.run_id,
             as_of, f"{n:,}", f"{proposals.height:,}", f"{summary['proposals']['value']:,.0f}",
             f"{exceptions.height:,}", timings["total"])
    return PolicyRun(policy, proposals, exceptions, summary, run_info, timings)


def summarise(policy: pl.DataFrame, proposals: pl.DataFrame, exceptions: pl.DataFrame, overrides: Overrides,
              run_info: RunInfo, shape: tuple[int, ...], timings: dict[str, float],
              config: PolicyConfig = PolicyConfig()) -> dict:  # noqa: B008 (frozen)
    """Headline numbers for the report, the CLI and the Dagster metadata (plain JSON-serialisable values)."""

    def f(x: object) -> float | None:
        return None if x is None else round(float(x), 6)

    p = policy
    delta = p["delta_expected_avg_inventory_value"].fill_null(0.0)
    w = p["daily_demand_forecast"].fill_null(0.0)
    wsum = float(w.sum())

    def weighted(col: str) -> float | None:
        v = p[col].fill_null(0.0)
        return f((v * w).sum() / wsum) if wsum > 0 else None

    def counts(frame: pl.DataFrame, col: str) -> dict[str, int]:
        return {str(k): int(v) for k, v in frame.group_by(col).len().sort(col).iter_rows()}

    by_type: dict[str, dict] = {}
    for kind, n_rows, value in proposals.group_by("proposal_type").agg(pl.len(), pl.col("value").sum()).iter_rows():
        by_type[kind] = {"count": int(n_rows), "value": f(value)}
    ex_types: dict[str, dict] = {}
    for kind, n_rows, value in exceptions.group_by("exception_type").agg(
            pl.len(), pl.col("money_at_stake").sum()).sort("exception_type").iter_rows():
        ex_types[kind] = {"count": int(n_rows), "money_at_stake": f(value)}
    summary = {
        "run_id": run_info.run_id, "as_of_date": run_info.as_of_date.isoformat(),
        "model_version": run_info.model_version, "series": p.height,
        "samples_per_series": int(shape[1]) if len(shape) > 1 else 0,
        "classes": {f"{a}{x}": int(k) for a, x, k in
                    p.group_by("abc_class", "xyz_class").len().sort("abc_class", "xyz_class").iter_rows()},
        "service_metrics": counts(p, "service_metric"),
        "reorder_point_basis": counts(p, "reorder_point_basis"),
        "inventory": {
            "expected_avg_inventory_value": f(p["expected_avg_inventory_value"].sum()),
            "classical_expected_avg_inventory_value": f(p["classical_expected_avg_inventory_value"].sum()),
            "change_vs_classical": f(delta.sum()),
            "freed_vs_classical": f(-delta.filter(delta < 0).sum()),
            "added_vs_classical": f(delta.filter(delta > 0).sum()),
            "safety_stock_value": f(p["safety_stock_value"].sum()),
            "classical_safety_stock_value": f(p["classical_safety_stock_value"].sum()),
        },
        "service": {
            "expected_fill_rate_item_average": f(p["expected_fill_rate"].mean()),
            "expected_fill_rate_volume_weighted": weighted("expected_fill_rate"),
            "classical_expected_fill_rate_item_average": f(p["classical_expected_fill_rate"].mean()),
            "classical_expected_fill_rate_volume_weighted": weighted("classical_expected_fill_rate"),
            "expected_cycle_service_level_item_average": f(p["expected_cycle_service_level"].mean()),
            "classical_expected_cycle_service_level_item_average":
                f(p["classical_expected_cycle_service_level"].mean()),
            "note": "both policies evaluated on the forecast's lead-time-demand samples",
        },
        "proposals": {"count": proposals.height, "value": f(proposals["value"].sum()) or 0.0, "by_type": by_type,
                      "by_status": counts(proposals, "status")},
        "exceptions": {"count": exceptions.height, "by_type": ex_types},
        "overrides": {"source": overrides.source, "applied": overrides.applied.height,
                      "issues": overrides.issues.height, "by_field": counts(overrides.applied, "field")},
        "not_orderable": counts(p.filter(pl.col("not_orderable_reason").is_not_null()), "not_orderable_reason"),
        "products_without_forecast": int(((exceptions["exception_type"] == "no_forecast")
                                          & exceptions["location_id"].is_null()).sum()),
        "locations_without_forecast": int(((exceptions["exception_type"] == "no_forecast")
                                           & exceptions["location_id"].is_not_null()).sum()),
        "guards": {
            "safety_stock_guard": int(p["is_safety_stock_guarded"].sum()),
            "reorder_point_above_references": int(p["is_above_references"].sum()),
            "safety_stock_value_before_guard": f(((p["reorder_point_before_guard"] - p["ltd_mean"])
                                                  * p["unit_cost"]).sum()),
            "safety_stock_vs_classical": f(p["safety_stock_value"].sum() / p["classical_safety_stock_value"].sum())
            if p["classical_safety_stock_value"].sum() > 0 else None,
            "max_safety_stock_ratio": config.max_safety_stock_ratio,
            "warn_safety_stock_ratio": config.warn_safety_stock_ratio,
            "guard_factor": config.guard_factor,
        },
        "timings_s": dict(timings),
    }
    json.dumps(summary)  # guarantee it is serialisable
    return summary
