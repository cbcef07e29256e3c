"""Lead-time demand for product-locations that sell but have no forecast series yet.

A plan made after its forecast (the nightly re-plan from the weekly forecast, ``stockturn replan``) has no draws
for a product that began to sell at a location since the forecast was made. Until the next forecast, such a
product-location is planned on its own demand since its first sale: the circular block bootstrap of
:func:`ml.forecasting.ltd.empirical_lead_time_demand` over its daily usage (sales plus transfers out) from its
first usage in the last ``history_days`` days, at least ``min_days`` (a launch's first days are no interval's
rate: zero days before the first sale count when it is more recent than that), over its own lead-time
distribution (:func:`ml.forecasting.lead_time.load_lead_times`, the route's or supplier's receipts and transfers,
as forecasting reads them). The draws serve as the evidence too (``empirical_samples``), so the guards see the
same history. ``ml.policy.run.run_policy`` adds these rows and marks them (``order_demand_basis`` =
``COLD_START_BASIS``).
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
    history_days: int = 56,
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
    finally:
        con.unregister("__cold_keys")
    n, w = k.height, history_days
    history = np.zeros((n, w))
    if usage.height:
        i = usage["_i"].to_numpy().astype(np.int64)
        history[i, w - 1 - usage["age"].to_numpy().astype(np.int64)] = np.maximum(usage["usage"].to_numpy(), 0.0)
    sold = history > 0
    first = np.where(sold.any(axis=1), sold.argmax(axis=1), w)  # column of the first usage
    n_observed = np.clip(w - first, min_days, w)  # days since the first usage, at least min_days
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
    daily = history.sum(axis=1) / n_observed
    return LeadTimeDemand(
        keys=k.select("product_id", "location_id"), samples=samples, daily_demand_mean=daily,
        lead_time_mean_days=lead_times.mean(), lead_time_p90_days=lead_times.quantile(0.9),
        review_period_days=lead_times.review_days.astype(np.float64),
        lead_time_source=lead_times.source.astype(object), empirical_samples=emp, lead_samples=lead,
        empirical_lead_samples=emp_lead)


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
