"""Lead-time demand by Monte Carlo: forecast path + a bootstrapped cumulative error path, summed over a random
protection interval.

For series ``i`` and sample ``b``:

1. draw a lead time ``L_b`` from the series' distribution (``lead_time.LeadTimes``) and add the review period
   ``R_i``: the protection interval ``PI_b = L_b + R_i - 1`` days (``demand_distribution.exposure_days``:
   reviewed at the close of a day, received at the opening), i.e. ``x_b = x0 + PI_b / days_per_period`` periods
   after the start of the first forecast period (``x0`` > 0 only at month grain when the as-of date is inside a month);
2. draw one whole relative cumulative error path ``Z_j`` from the series' calibration pool
   (``calibration.Calibrator``; ``Z(k)`` = cumulative error / cumulative forecast after k periods);
3. ``LTD_b = max(0, C(x_b) - C(x0) + S(x_b) Z_j(x_b) - S(x0) Z_j(x0))`` where ``C`` is the cumulative point
   forecast and ``S = calibration.path_scale(C)``, linearly interpolated inside a period (fractional periods at
   week/month grain).

For intermittent and lumpy series the forecast-based samples are blended with the series' **own demand over past
protection intervals** (``empirical_lead_time_demand``, a circular block bootstrap of its recent history:
``blend_with_empirical``), so a pooled error model cannot give a slow part a distribution its history never came
near. Before that, every forecast-based sample is capped at ``cap_factor`` x the larger of the largest demand the
series' own history shows over such an interval and its forecast mean over the interval
(``cap_to_evidence``): the pooled relative error paths carry the errors of *other* series, and one series' huge
order in a calibration window (an error of hundreds of times its forecast) would otherwise be replayed on every
slow series that draws that path. The same empirical distribution is handed to the policy as the reference its
guards compare with.

The same path and lead-time draw cut at the order's arrival (``L_b - 1`` days) give the demand before the order
arrives (``return_lead=True``; at most the sample itself): the periodic-review fill rate of the policy needs both
(``ml.policy.inventory_math.periodic_fill_rate_from_samples``).

Beyond the forecast horizon the forecast continues at the mean of its last 28 days and the relative error stays at
its value at the horizon; the horizon is chosen to cover the 99th lead-time percentile, so this only touches the
far tail. Work is done in chunks of ``CHUNK`` series to bound memory (n_samples float32 per series).

Random streams: given a ``numpy.random.SeedSequence``, every chunk of ``CHUNK`` series draws from its own stream,
derived from the sequence and the chunk's position among all the series (``first_row``). Any split of the series on
chunk boundaries then draws the same samples as one pass over all of them: that is how the Dask engine samples on
its workers (:func:`lead_time_demand` per block, ``ml.forecasting.distributed.map_row_blocks``) and still matches
the local engine exactly. A ``numpy.random.Generator`` is one stream across all chunks (tests, small evaluations).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ml.demand_distribution import exposure_days
from ml.forecasting.calibration import path_scale
from ml.forecasting.lead_time import LeadTimes

CHUNK = 2048
TAIL_DAYS = 28

Seed = np.random.Generator | np.random.SeedSequence


def chunk_rng(seed: Seed, first_row: int) -> np.random.Generator:
    """The generator of the chunk of series starting at global row ``first_row`` (a multiple of ``CHUNK``): the
    generator itself, or a stream of its own derived from a seed sequence (module doc)."""
    if isinstance(seed, np.random.Generator):
        return seed
    if first_row % CHUNK:
        raise ValueError(f"a chunk starts at a multiple of {CHUNK} series, not at row {first_row}")
    return np.random.default_rng(np.random.SeedSequence(seed.entropy,
                                                        spawn_key=(*seed.spawn_key, first_row // CHUNK)))


def _interp(cum: np.ndarray, rows: np.ndarray, x: np.ndarray) -> np.ndarray:
    """cum[rows, x] with linear interpolation between integer columns (x >= 0, < cum.shape[1] - 1)."""
    k = np.floor(x).astype(np.int64)
    frac = x - k
    a = cum[rows, k]
    b = cum[rows, k + 1]
    return a + frac * (b - a)


def _interp_error(paths: np.ndarray, j: np.ndarray, err_scale: np.ndarray, rows: np.ndarray, x: np.ndarray,
                  ) -> np.ndarray:
    """Cumulative error Z_j(k) * S_i(k) at integer periods, linearly interpolated in between (interpolating Z and S
    separately would shrink the error inside the first period quadratically)."""
    k = np.floor(x).astype(np.int64)
    frac = x - k
    a = paths[j, k] * err_scale[rows, k]
    b = paths[j, k + 1] * err_scale[rows, k + 1]
    return a + frac * (b - a)


def extend_cumulative(forecast: np.ndarray, length: int, tail_periods: int) -> np.ndarray:
    """(n, length + 1) cumulative forecast, columns 0..length, continued flat at the tail mean beyond H."""
    n, h = forecast.shape
    cum = np.zeros((n, length + 1), dtype=np.float64)
    m = min(h, length)
    cum[:, 1 : m + 1] = np.cumsum(forecast[:, :m], axis=1)
    if length > h:
        tail = forecast[:, -min(tail_periods, h):].mean(axis=1)
        cum[:, h + 1 :] = cum[:, [h]] + tail[:, None] * np.arange(1, length - h + 1)[None, :]
    return cum


def extend_paths(paths: np.ndarray, length: int) -> np.ndarray:
    """Relative error paths (N, H + 1) continued at their last value to ``length + 1`` columns."""
    h = paths.shape[1] - 1
    if length <= h:
        return paths[:, : length + 1]
    return np.concatenate([paths, np.repeat(paths[:, [h]], length - h, axis=1)], axis=1)


def sample_lead_time_demand(
    forecast: np.ndarray,
    scale: np.ndarray,
    pool_start: np.ndarray,
    pool_count: np.ndarray,
    paths: np.ndarray,
    lead_times: LeadTimes,
    *,
    x0: float,
    days_per_period: float,
    tail_periods: int,
    n_samples: int,
    rng: Seed,
    lead_time_draws: np.ndarray | None = None,
    return_lead: bool = False,
    first_row: int = 0,
) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """(n_series, n_samples) float32 samples of demand over the protection interval (lead time + review period
    - 1 day, module doc), and with ``return_lead`` also the demand before the order arrives from the same draws.

    ``lead_time_draws`` (n_series, n_samples) replaces the random lead times (tests, fixed-interval evaluation).
    ``first_row``: the position of the first series among all the series sampled with ``rng`` (a seed sequence's
    chunk streams, module doc).
    """
    n = forecast.shape[0]
    out = np.empty((n, n_samples), dtype=np.float32)
    lead_out = np.empty((n, n_samples), dtype=np.float32) if return_lead else None
    for a in range(0, n, CHUNK):
        b = min(a + CHUNK, n)
        rows = np.arange(a, b)
        rng_chunk = chunk_rng(rng, first_row + a)
        lt = lead_times.sample(rng_chunk, n_samples, rows) if lead_time_draws is None else lead_time_draws[a:b]
        protection, before = exposure_days(lt, lead_times.review_days[rows, None])
        x = x0 + protection / days_per_period
        need = int(np.ceil(x.max())) + 1 if x.size else 1
        cum = extend_cumulative(forecast[a:b], need, tail_periods)
        err_scale = np.concatenate([np.zeros((b - a, 1)), path_scale(cum[:, 1:], scale[a:b])], axis=1)
        pth = extend_paths(paths, need)
        local = np.broadcast_to(np.arange(b - a)[:, None], x.shape)
        at0 = np.full(x.shape, x0)
        j = pool_start[a:b, None] + np.floor(rng_chunk.random((b - a, n_samples))
                                             * pool_count[a:b, None]).astype(np.int64)
        base = _interp(cum, local, at0) + _interp_error(pth, j, err_scale, local, at0)

        def demand_until(v: np.ndarray, cum: np.ndarray = cum, local: np.ndarray = local, j: np.ndarray = j,
                         pth: np.ndarray = pth, err_scale: np.ndarray = err_scale,
                         base: np.ndarray = base) -> np.ndarray:
            return np.maximum(_interp(cum, local, v) + _interp_error(pth, j, err_scale, local, v) - base, 0.0)

        ltd = demand_until(x)
        out[a:b] = ltd
        if lead_out is not None:
            lead_out[a:b] = np.minimum(demand_until(x0 + before / days_per_period), ltd)
    return (out, lead_out) if lead_out is not None else out


def realised_demand(actual_path: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Realised demand over [0, x) periods of each row of ``actual_path`` (n, H); x (n,) fractional periods."""
    cum = np.concatenate([np.zeros((len(actual_path), 1)), np.cumsum(actual_path, axis=1)], axis=1)
    x = np.clip(x, 0, actual_path.shape[1] - 1e-9)
    return _interp(cum, np.arange(len(actual_path)), x)


def empirical_lead_time_demand(
    history: np.ndarray,
    n_observed: np.ndarray,
    lead_times: LeadTimes,
    *,
    days_per_period: float,
    n_samples: int,
    rng: Seed,
    return_lead: bool = False,
    first_row: int = 0,
) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """(n_series, n_samples) float32: the series' own demand over past protection intervals (and with
    ``return_lead`` over the part of each before the order arrives, as :func:`sample_lead_time_demand`).

    ``history`` (n, W) holds each series' (censoring-corrected) demand per period, its last ``n_observed`` periods
    being the series' observed history (earlier cells are ignored). For sample ``b`` a protection interval
    ``x_b = (L_b + R) / days_per_period`` periods is drawn as for the forecast-based samples, a start period ``u`` is
    drawn uniformly in the observed history, and the demand over ``[u, u + x_b)`` is summed, wrapping around the end of
    the history (a circular block bootstrap, so intervals longer than the history still get a value: whole
    passes over it plus a part). Fractional periods are interpolated linearly. A series without history gets 0.
    """
    n, w = history.shape
    out = np.zeros((n, n_samples), dtype=np.float32)
    lead_out = np.zeros((n, n_samples), dtype=np.float32) if return_lead else None
    n_obs = np.clip(np.asarray(n_observed, dtype=np.int64), 0, w)
    cum = np.concatenate([np.zeros((n, 1)), np.cumsum(np.nan_to_num(history, nan=0.0), axis=1, dtype=np.float64)],
                         axis=1)
    offset = np.where(n_obs > 0, w - n_obs, max(w - 1, 0))  # a series without history reads a valid cell (masked)
    total = cum[:, w] - cum[np.arange(n), offset]
    for a in range(0, n, CHUNK):
        b = min(a + CHUNK, n)
        rows = np.arange(a, b)
        has = n_obs[rows] > 0
        if not has.any():
            continue
        length = np.maximum(n_obs[rows], 1).astype(np.float64)[:, None]
        rng_chunk = chunk_rng(rng, first_row + a)
        lt = lead_times.sample(rng_chunk, n_samples, rows)
        protection, before = exposure_days(lt, lead_times.review_days[rows, None])
        x = protection / days_per_period
        u = np.floor(rng_chunk.random((b - a, n_samples)) * length)

        def cum_at(v: np.ndarray, rows: np.ndarray = rows, length: np.ndarray = length) -> np.ndarray:
            laps = np.floor(v / length)
            rest = v - laps * length
            k = np.minimum(np.floor(rest).astype(np.int64), length.astype(np.int64) - 1)
            frac = rest - k
            base = offset[rows, None] + k
            lo = cum[rows[:, None], base]
            hi = cum[rows[:, None], base + 1]
            return laps * total[rows, None] + lo + frac * (hi - lo) - cum[rows, offset[rows]][:, None]

        start = cum_at(u)
        ltd = np.where(has[:, None], np.maximum(cum_at(u + x) - start, 0.0), 0.0)
        out[a:b] = ltd
        if lead_out is not None:
            lead_out[a:b] = np.minimum(np.maximum(cum_at(u + before / days_per_period) - start, 0.0), ltd)
    return (out, lead_out) if lead_out is not None else out


def cap_to_evidence(samples: np.ndarray, empirical: np.ndarray, expected: np.ndarray, factor: float) -> np.ndarray:
    """Forecast-based samples capped at ``factor`` x max(largest empirical sample, ``expected``) per series (the
    expected demand over the interval: a forecast above anything in the history is not capped below itself).
    ``factor <= 0`` disables; a series without history is capped at ``factor`` x its expected demand."""
    if factor <= 0 or samples.size == 0:
        return samples
    cap = factor * np.maximum(empirical.max(axis=1), np.asarray(expected, dtype=np.float64))
    return np.minimum(samples, cap[:, None].astype(samples.dtype))


def blend_with_empirical(samples: np.ndarray, empirical: np.ndarray, rows: np.ndarray, weight: float) -> np.ndarray:
    """A mixture: for the series ``rows`` (bool), the first ``round(weight * n_samples)`` forecast-based samples are
    replaced by empirical ones (both are i.i.d. draws, so this is a draw from the mixture with that weight)."""
    m = int(round(weight * samples.shape[1]))
    if m <= 0 or not rows.any():
        return samples
    out = samples.copy()
    idx = np.flatnonzero(rows)
    out[idx, :m] = empirical[idx, :m]
    return out


def bound_by_evidence(samples: np.ndarray, empirical: np.ndarray, forecast: np.ndarray, lead_times: LeadTimes,
                      blend: np.ndarray, *, days_per_period: float, cap_factor: float,
                      blend_weight: float) -> np.ndarray:
    """Forecast-based samples capped by the series' own history (:func:`cap_to_evidence`, against the forecast
    demand over the mean protection interval), then blended with it for the ``blend`` series (the sparse
    segments; :func:`blend_with_empirical`). ``forecast``: (n, H) per period."""
    daily = forecast.sum(axis=1) / max(forecast.shape[1] * days_per_period, 1e-12)
    expected = daily * (lead_times.mean() + lead_times.review_days - 1.0)
    capped = cap_to_evidence(samples, empirical, expected, cap_factor)
    return blend_with_empirical(capped, empirical, blend, blend_weight)


@dataclass(frozen=True)
class SamplingSettings:
    """What :func:`lead_time_demand` needs besides the per-series arrays (the same for every block of series)."""

    paths: np.ndarray  # (N, H + 1) relative cumulative error paths of the calibration pool
    x0: float
    days_per_period: float
    tail_periods: int
    n_samples: int
    cap_factor: float
    blend_weight: float
    forecast_seed: np.random.SeedSequence
    empirical_seed: np.random.SeedSequence
    with_lead: bool = True  # also the demand before the order arrives (the plan needs it, the checks do not)


@dataclass(frozen=True)
class LeadTimeDemandSamples:
    samples: np.ndarray  # (n, n_samples) demand over the protection interval, bounded by the evidence
    lead_samples: np.ndarray | None  # (n, n_samples) the part before the order arrives (<= samples)
    empirical: np.ndarray  # (n, n_samples) the series' own demand over past protection intervals
    empirical_lead: np.ndarray | None


def lead_time_demand(forecast: np.ndarray, scale: np.ndarray, pool_start: np.ndarray, pool_count: np.ndarray,
                     lead_times: LeadTimes, history: np.ndarray, n_observed: np.ndarray, blend: np.ndarray,
                     settings: SamplingSettings, first_row: int = 0) -> LeadTimeDemandSamples:
    """The plan's lead-time demand of a block of series: forecast-based samples and the series' own history
    (:func:`empirical_lead_time_demand`), the first bounded by the second (:func:`bound_by_evidence`).

    Every step is per series and every chunk of ``CHUNK`` series draws from its own streams, so the samples of a
    series do not depend on how the series are split into blocks (``first_row``: the block's first series among
    all of them, a multiple of ``CHUNK``)."""
    s = settings
    forecast_based = sample_lead_time_demand(
        forecast, scale, pool_start, pool_count, s.paths, lead_times, x0=s.x0, days_per_period=s.days_per_period,
        tail_periods=s.tail_periods, n_samples=s.n_samples, rng=s.forecast_seed, return_lead=s.with_lead,
        first_row=first_row)
    own = empirical_lead_time_demand(
        history, n_observed, lead_times, days_per_period=s.days_per_period, n_samples=s.n_samples,
        rng=s.empirical_seed, return_lead=s.with_lead, first_row=first_row)
    (samples, lead), (empirical, empirical_lead) = (forecast_based, own) if s.with_lead else \
        ((forecast_based, None), (own, None))
    samples = bound_by_evidence(samples, empirical, forecast, lead_times, blend, days_per_period=s.days_per_period,
                                cap_factor=s.cap_factor, blend_weight=s.blend_weight)
    if lead is not None:
        lead = np.minimum(blend_with_empirical(lead, empirical_lead, blend, s.blend_weight), samples)
    return LeadTimeDemandSamples(samples, lead, empirical, empirical_lead)
