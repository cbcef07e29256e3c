"""Lead-time demand for product-locations that sell but have no forecast series yet.

A plan made after its forecast (the nightly re-plan from the weekly forecast, ``stockturn replan``) has no draws
for a product that began to sell at a location since the forecast was made, and only zero draws for a series the
forecast saw silent (a product stocked before its launch: :func:`read_woken_series`). Until the next forecast,
such a product-location is planned on its own demand: the circular block bootstrap of
:func:`ml.forecasting.ltd.empirical_lead_time_demand` over its daily usage (sales plus transfers out) from its
first day in the mart within the last ``history_days`` (365), and not before the product's launch date in the
master, at least ``min_days`` (14: a launch's first days are no interval's rate, zero days before count when it
is more recent than that; a part listed all year that sold once keeps the year's zeros), over its
own lead-time distribution (:func:`ml.forecasting.lead_time.load_lead_times`, the route's or supplier's receipts
and transfers, as forecasting reads them). The draws serve as the evidence too (``empirical_samples``), so the
guards see the same history. ``ml.policy.run.run_policy`` adds these rows and marks them
(``order_demand_basis`` = ``COLD_START_BASIS``).
"""

from __future__ import annotations

import logging
from datetime import date

import duckdb
import numpy as np
import polars as pl

from ml.demand_distribution import LeadTimeDemand
from ml.forecasting.config import ForecastConfig
from ml.forecasting.lead_time import load_lead_times
from ml.forecasting.ltd import empirical_lead_time_demand
from ml.warehouse import read_frame

log = logging.getLogger("stockturn.forecasting")

#: order_demand_basis of a product-location planned on its own demand since its first sale (no forecast series)
COLD_START_BASIS = "own_usage_since_first_sale"
#: seed of the cold-start draws (a plan is reproducible)
COLD_START_SEED = 0xC01D


def cold_start_lead_time_demand(
    con: duckdb.DuckDBPyConnection,
    keys: pl.DataFrame,
    as_of: date,
    *,
    n_samples: int,
    n_empirical: int | None = None,
    history_days: int = 365,
    min_days: int = 14,
    config: ForecastConfig | None = None,
) -> LeadTimeDemand | None:
    """A :class:`LeadTimeDemand` for ``keys`` (product_id, location_id) from their own daily usage up to ``as_of``
    (module doc); None when ``keys`` is empty. ``n_samples`` / ``n_empirical``: the widths of the draws it joins
    (``n_empirical`` None: no empirical draws)."""
    if keys.height == 0:
        return None
    if history_days < min_days or min_days < 1:
        raise ValueError("cold start needs 1 <= min_days <= history_days")
    cfg = config or ForecastConfig()
    k = keys.select(pl.col("product_id").cast(pl.String), pl.col("location_id").cast(pl.String)).with_row_index("_i")
    con.register("__cold_keys", k.to_arrow())
    try:
        usage = read_frame(con, """
            select k._i, ($as_of::date - d.date_day)::integer as age,
                   coalesce(d.units_sold, 0) + coalesce(d.transfers_out_units, 0) as usage
            from marts.fct_inventory_daily as d
            inner join __cold_keys as k on d.product_id = k.product_id and d.location_id = k.location_id
            where d.date_day <= $as_of::date and d.date_day > $as_of::date - $days::integer""",
            {"as_of": as_of, "days": history_days})
        launched = read_frame(con, """
            select k._i, ($as_of::date - p.launch_date)::integer as launched_days_ago
            from __cold_keys as k inner join marts.dim_product as p on k.product_id = p.product_id
            where p.launch_date is not null""", {"as_of": as_of})
    finally:
        con.unregister("__cold_keys")
    n, w = k.height, history_days
    history = np.zeros((n, w))
    available = np.zeros((n, w), dtype=bool)
    if usage.height:
        i = usage["_i"].to_numpy().astype(np.int64)
        col = w - 1 - usage["age"].to_numpy().astype(np.int64)
        history[i, col] = np.maximum(usage["usage"].to_numpy(), 0.0)
        available[i, col] = True
    # from the first day the product-location is in the mart: a part listed all year that sold once keeps the
    # year's zeros; a new listing starts with its first activity (a transfer in, a snapshot, a sale)
    first = np.where(available.any(axis=1), available.argmax(axis=1), w)
    if launched.height:  # stock on the shelf before the product's launch date is no evidence of no demand
        i = launched["_i"].to_numpy().astype(np.int64)
        first[i] = np.maximum(first[i], w - 1 - launched["launched_days_ago"].to_numpy().astype(np.int64))
    n_observed = np.clip(w - first, min_days, w)
    try:
        lead_times = load_lead_times(con, k.select("product_id", "location_id"), cfg, as_of)
    except duckdb.CatalogException as e:  # a warehouse without the procurement and logistics models
        log.warning("%d product-locations selling without a forecast cannot be planned: their lead times cannot "
                    "be read (%s)", n, str(e).splitlines()[0])
        return None
    rng = np.random.default_rng(np.random.SeedSequence([COLD_START_SEED, n_samples]))
    samples, lead = empirical_lead_time_demand(history, n_observed, lead_times, days_per_period=1.0,
                                               n_samples=n_samples, rng=rng, return_lead=True)
    emp = emp_lead = None
    if n_empirical:
        if n_empirical == n_samples:
            emp, emp_lead = samples, lead
        else:
            emp, emp_lead = empirical_lead_time_demand(history, n_observed, lead_times, days_per_period=1.0,
                                                       n_samples=n_empirical, rng=rng, return_lead=True)
    observed = np.arange(w)[None, :] >= (w - n_observed)[:, None]  # the days the draws are made from
    daily = np.where(observed, history, 0.0).sum(axis=1) / n_observed
    return LeadTimeDemand(
        keys=k.select("product_id", "location_id"), samples=samples, daily_demand_mean=daily,
        lead_time_mean_days=lead_times.mean(), lead_time_p90_days=lead_times.quantile(0.9),
        review_period_days=lead_times.review_days.astype(np.float64),
        lead_time_source=lead_times.source.astype(object), empirical_samples=emp, lead_samples=lead,
        empirical_lead_samples=emp_lead)


def read_woken_series(con: duckdb.DuckDBPyConnection, ltd: LeadTimeDemand, forecast_as_of: date,
                      as_of: date, *, history_days: int = 365) -> np.ndarray:
    """Rows of ``ltd`` whose draws are all zero and which had no usage in the ``history_days`` before
    ``forecast_as_of`` (the forecast saw no demand at all: a product stocked before its launch), but which sold or
    shipped after ``forecast_as_of`` and up to ``as_of``: the evidence the forecast did not have. A series that
    sold before and was forecast to zero (an intermittent part between orders) is not woken by one more sale:
    its forecast saw its history. Sorted row numbers."""
    silent = np.flatnonzero(~np.asarray(ltd.samples > 0).any(axis=1))
    if not silent.size or forecast_as_of >= as_of:
        return np.zeros(0, dtype=np.int64)
    k = ltd.keys.select(pl.col("product_id").cast(pl.String), pl.col("location_id").cast(pl.String))[silent]
    k = k.with_columns(pl.Series("_i", silent, dtype=pl.Int64))
    con.register("__silent_keys", k.to_arrow())
    try:
        woken = read_frame(con, """
            with usage as (
                select k._i, d.date_day, coalesce(d.units_sold, 0) + coalesce(d.transfers_out_units, 0) as units
                from marts.fct_inventory_daily as d
                inner join __silent_keys as k on d.product_id = k.product_id and d.location_id = k.location_id
                where d.date_day > $made::date - $days::integer and d.date_day <= $as_of::date
            )
            select _i
            from usage
            group by _i
            having sum(units) filter (where date_day > $made::date) > 0
               and coalesce(sum(units) filter (where date_day <= $made::date), 0) = 0""",
            {"made": forecast_as_of, "as_of": as_of, "days": history_days})
    finally:
        con.unregister("__silent_keys")
    return np.sort(woken["_i"].to_numpy().astype(np.int64))


def replace_rows(ltd: LeadTimeDemand, rows: np.ndarray, other: LeadTimeDemand) -> LeadTimeDemand:
    """``ltd`` with its rows ``rows`` replaced by the rows of ``other`` (same keys in that order; same widths)."""
    def put(a: np.ndarray | None, b: np.ndarray | None) -> np.ndarray | None:
        if a is None:
            return None
        out = np.array(a, copy=True)
        out[rows] = np.asarray(b, dtype=out.dtype)
        return out

    if not rows.size:
        return ltd
    if other.samples.shape[1] != ltd.samples.shape[1]:
        raise ValueError("draws of different widths cannot replace each other")
    emp_other = other.empirical_samples if other.empirical_samples is not None else other.samples
    emp_lead_other = (other.empirical_lead_only() if other.empirical_samples is not None else other.lead_only())
    return LeadTimeDemand(
        keys=ltd.keys, samples=put(ltd.samples, other.samples),
        daily_demand_mean=put(ltd.daily_demand_mean, other.daily_demand_mean),
        lead_time_mean_days=put(ltd.lead_time_mean_days, other.lead_time_mean_days),
        lead_time_p90_days=put(ltd.lead_time_p90_days, other.lead_time_p90_days),
        review_period_days=put(ltd.review_period_days, other.review_period_days),
        lead_time_source=put(np.asarray(ltd.lead_time_source, dtype=object), other.lead_time_source),
        empirical_samples=put(ltd.empirical_samples, emp_other),
        lead_samples=put(ltd.lead_samples, other.lead_only()),
        empirical_lead_samples=put(ltd.empirical_lead_samples, emp_lead_other))


def concat_lead_time_demand(first: LeadTimeDemand, more: LeadTimeDemand) -> LeadTimeDemand:
    """The rows of ``first`` then those of ``more`` (same sample widths; ``first``'s optional draws decide which
    are kept: a part ``more`` lacks is approximated by its :meth:`LeadTimeDemand.lead_only` rule)."""
    def cat(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return np.concatenate([np.asarray(a), np.asarray(b, dtype=np.asarray(a).dtype)])

    emp = emp_lead = None
    if first.empirical_samples is not None:
        more_emp = more.empirical_samples if more.empirical_samples is not None else more.samples
        if more_emp.shape[1] != first.empirical_samples.shape[1]:
            raise ValueError("empirical draws of different widths cannot be joined")
        emp = cat(first.empirical_samples, more_emp)
        if first.empirical_lead_samples is not None:
            more_lead = (more.empirical_lead_only() if more.empirical_samples is not None else more.lead_only())
            emp_lead = cat(first.empirical_lead_samples, more_lead)
    lead = cat(first.lead_samples, more.lead_only()) if first.lead_samples is not None else None
    if more.samples.shape[1] != first.samples.shape[1]:
        raise ValueError("draws of different widths cannot be joined")
    return LeadTimeDemand(
        keys=pl.concat([first.keys.select("product_id", "location_id"),
                        more.keys.select("product_id", "location_id")]),
        samples=cat(first.samples, more.samples), daily_demand_mean=cat(first.daily_demand_mean,
                                                                         more.daily_demand_mean),
        lead_time_mean_days=cat(first.lead_time_mean_days, more.lead_time_mean_days),
        lead_time_p90_days=cat(first.lead_time_p90_days, more.lead_time_p90_days),
        review_period_days=cat(first.review_period_days, more.review_period_days),
        lead_time_source=np.concatenate([np.asarray(first.lead_time_source, dtype=object),
                                         np.asarray(more.lead_time_source, dtype=object)]),
        empirical_samples=emp, lead_samples=lead, empirical_lead_samples=emp_lead)
