"""The demo company's external signals and calendar: what moves its demand besides prices and promotions.

- **Temperature per region.** Daily mean temperature = a seasonal normal (warmest in mid-July, a small offset per
  region) + an anomaly that follows an AR(1) process (weather persists for days). ``external/signals`` carries
  ``temperature_c`` per region: the observation of every history day (known_date blank: known the next day, the
  contract's default) and a forecast for each of the next 7 days issued every day (known_date = the issue day),
  whose error grows with the lead (``temperature_forecast_sd`` x sqrt(days ahead)). The forecasts issued on the
  last history day reach past it: they describe the true future temperature, so a forecast made at the end of
  the history can use them.
- **Demand response.** Categories listed in ``temperature_sensitivity`` (Garden and Beverages by default) have
  true demand x exp(sensitivity x anomaly) in the store's region: a hot week sells more drinks and garden goods
  than the season alone. Other categories do not respond.
- **Events** (``calendar/events``), listed through a year after the history (a calendar is known in advance):
  public holidays for every location (New Year's Day, Easter Monday, Ascension Day, Whit Monday, National Day
  27 April, Boxing Day, New Year's Eve) and local events per region (``local_events_per_year`` a year, 2-4 days).
  ``event_uplifts`` gives the demand multiplier per event type and category while the event runs (Beverages
  and Snacks sell more on holidays and at local events, Toys at local events; other categories do not respond).
- **A control signal that is pure noise** (``social_buzz_index``, scope all, published 14 days ahead): an AR(1)
  series independent of everything else. No demand responds to it; the forecast's gating must reject it.

The truth folder gets ``signals_truth.parquet`` (normal, anomaly and true temperature per region and day) and
``event_days.parquet`` (the multiplier each store x category x event day carried).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np
import polars as pl

from ml.demo_company.catalog import Catalog
from ml.demo_company.config import DemoConfig

NOISE_SIGNAL = "social_buzz_index"
NOISE_PUBLISHED_DAYS_AHEAD = 14
FORECAST_DAYS = 7
TEMPERATURE_PHI = 0.8  # day-to-day persistence of the temperature anomaly


def easter(year: int) -> date:
    """Gregorian Easter Sunday (anonymous Gregorian algorithm)."""
    a, b, c = year % 19, year // 100, year % 100
    d, e = b // 4, b % 4
    f = (b + 8) // 25
    g = (b - f + 1) // 3
    h = (19 * a + b - d - g + 15) % 30
    i, k = c // 4, c % 4
    ell = (32 + 2 * e + 2 * i - h - k) % 7
    m = (a + 11 * h + 22 * ell) // 451
    month = (h + ell - 7 * m + 114) // 31
    day = (h + ell - 7 * m + 114) % 31 + 1
    return date(year, month, day)


def public_holidays(year: int) -> list[tuple[str, date]]:
    e = easter(year)
    return [
        ("New Year's Day", date(year, 1, 1)),
        ("Easter Monday", e + timedelta(days=1)),
        ("National Day", date(year, 4, 27)),
        ("Ascension Day", e + timedelta(days=39)),
        ("Whit Monday", e + timedelta(days=50)),
        ("Boxing Day", date(year, 12, 26)),
        ("New Year's Eve", date(year, 12, 31)),
    ]


@dataclass(frozen=True)
class DemoSignals:
    """Everything the generator needs from the signals: the demand multiplier and the landing/truth frames."""

    multiplier: np.ndarray  # (n_stores, n_categories, days) true-demand multiplier of the history days
    events: pl.DataFrame  # calendar/events rows
    signals: pl.DataFrame  # external/signals rows
    truth: pl.DataFrame  # region x day temperature truth
    event_days: pl.DataFrame  # store x category x day multipliers of event days


def _ar1(rng: np.random.Generator, shape: tuple[int, int], phi: float, sd: float) -> np.ndarray:
    """AR(1) paths along axis 1 with stationary standard deviation ``sd``."""
    eps = rng.normal(0.0, sd * np.sqrt(1.0 - phi**2), shape)
    out = np.empty(shape)
    out[:, 0] = rng.normal(0.0, sd, shape[0])
    for t in range(1, shape[1]):
        out[:, t] = phi * out[:, t - 1] + eps[:, t]
    return out


def build_signals(cfg: DemoConfig, cat: Catalog, rng: np.random.Generator) -> DemoSignals:
    n_days = cfg.days
    span = n_days + FORECAST_DAYS + 365  # history, the last forecasts and a year of planned calendar
    dates = [cfg.start + timedelta(days=t) for t in range(span)]
    doy = np.array([d.timetuple().tm_yday for d in dates], dtype=np.float64)
    regions = sorted(set(cat.store_regions.tolist()))
    region_index = {r: i for i, r in enumerate(regions)}
    store_region = np.array([region_index[r] for r in cat.store_regions])
    cat_names = [c.name for c in cfg.categories]
    cat_index = {c: i for i, c in enumerate(cat_names)}

    # ---- temperature: normal + AR(1) anomaly per region
    offset = rng.uniform(-2.0, 2.0, len(regions))
    normal = cfg.temperature_mean + cfg.temperature_amplitude * np.cos(2 * np.pi * (doy - 196) / 365.25)
    normal = normal[None, :] + offset[:, None]
    anomaly = _ar1(rng, (len(regions), span), TEMPERATURE_PHI, cfg.temperature_anomaly_sd)
    temperature = normal + anomaly

    obs_rows = {"region": [], "day": [], "value": [], "known": []}
    for r in range(len(regions)):
        obs_rows["region"] += [regions[r]] * n_days
        obs_rows["day"] += list(range(n_days))
        obs_rows["value"] += np.round(temperature[r, :n_days], 1).tolist()
        obs_rows["known"] += [None] * n_days  # blank: the contract's default, the next day
    fc_err = rng.normal(0.0, 1.0, (len(regions), n_days, FORECAST_DAYS))
    for r in range(len(regions)):
        for k in range(1, FORECAST_DAYS + 1):
            issue = np.arange(n_days)
            target = issue + k
            value = temperature[r, target] + cfg.temperature_forecast_sd * np.sqrt(k) * fc_err[r, :, k - 1]
            obs_rows["region"] += [regions[r]] * n_days
            obs_rows["day"] += target.tolist()
            obs_rows["value"] += np.round(value, 1).tolist()
            obs_rows["known"] += issue.tolist()
    # ---- the control: pure noise, published 14 days ahead
    noise_days = n_days + NOISE_PUBLISHED_DAYS_AHEAD
    noise = _ar1(rng, (1, noise_days), 0.7, 10.0)[0] + 100.0
    day_str = np.array([d.isoformat() for d in dates])
    temp_frame = pl.DataFrame({
        "signal_name": "temperature_c",
        "period_start": day_str[np.array(obs_rows["day"])],
        "period_end": pl.Series([None] * len(obs_rows["day"]), dtype=pl.String),
        "scope": "region",
        "scope_id": obs_rows["region"],
        "value": obs_rows["value"],
        "known_date": pl.Series([None if k is None else day_str[k] for k in obs_rows["known"]], dtype=pl.String),
    })
    noise_frame = pl.DataFrame({
        "signal_name": NOISE_SIGNAL,
        "period_start": day_str[:noise_days],
        "period_end": pl.Series([None] * noise_days, dtype=pl.String),
        "scope": "all",
        "scope_id": pl.Series([None] * noise_days, dtype=pl.String),
        "value": np.round(noise, 2),
        "known_date": day_str[np.maximum(np.arange(noise_days) - NOISE_PUBLISHED_DAYS_AHEAD, 0)],
    })
    signals = pl.concat([temp_frame, noise_frame]).with_columns(pl.col("value").cast(pl.Float64))

    # ---- events: public holidays and local events per region
    last = cfg.start + timedelta(days=span - 1)
    ev = {"event_name": [], "event_type": [], "start": [], "end": [], "scope": [], "scope_id": []}
    for year in range(cfg.start.year, last.year + 1):
        for name, d in public_holidays(year):
            if cfg.start <= d <= last:
                ev["event_name"].append(name)
                ev["event_type"].append("holiday")
                ev["start"].append(d)
                ev["end"].append(d)
                ev["scope"].append("all")
                ev["scope_id"].append(None)
        for region in regions:
            n_events = rng.poisson(cfg.local_events_per_year)
            for j in range(n_events):
                first = date(year, 1, 1) + timedelta(days=int(rng.integers(0, 360)))
                length = int(rng.integers(2, 5))
                if first < cfg.start or first + timedelta(days=length - 1) > last:
                    continue
                ev["event_name"].append(f"{region} town festival {year}-{j + 1}")
                ev["event_type"].append("local_event")
                ev["start"].append(first)
                ev["end"].append(first + timedelta(days=length - 1))
                ev["scope"].append("region")
                ev["scope_id"].append(region)
    events = pl.DataFrame({
        "event_name": ev["event_name"],
        "event_type": ev["event_type"],
        "start_date": [d.isoformat() for d in ev["start"]],
        "end_date": [d.isoformat() if d != s else None for d, s in zip(ev["end"], ev["start"], strict=True)],
        "scope": ev["scope"],
        "scope_id": pl.Series(ev["scope_id"], dtype=pl.String),
    }, schema={"event_name": pl.String, "event_type": pl.String, "start_date": pl.String, "end_date": pl.String,
               "scope": pl.String, "scope_id": pl.String}).sort("start_date", "event_name")

    # ---- the demand multiplier of every history day
    n_st, n_cat = cat.n_stores, len(cat_names)
    mult = np.ones((n_st, n_cat, n_days))
    for name, sens in cfg.temperature_sensitivity:
        if name not in cat_index:  # a custom category list without this category
            continue
        c = cat_index[name]
        mult[:, c, :] *= np.exp(sens * anomaly[store_region][:, :n_days])
    uplift = np.ones((n_st, n_cat, n_days))
    for etype, s, e, scope, sid in zip(ev["event_type"], ev["start"], ev["end"], ev["scope"], ev["scope_id"],
                                       strict=True):
        a, b = (s - cfg.start).days, min((e - cfg.start).days, n_days - 1)
        if a > n_days - 1:
            continue
        stores = np.arange(n_st) if scope == "all" else np.flatnonzero(cat.store_regions == sid)
        for cname, factor in ((c, f) for t, c, f in cfg.event_uplifts if t == etype and c in cat_index):
            cidx = cat_index[cname]
            for st in stores:
                uplift[st, cidx, a : b + 1] = np.maximum(uplift[st, cidx, a : b + 1], factor)
    mult *= uplift
    st_i, c_i, t_i = np.nonzero(uplift != 1.0)
    event_days = pl.DataFrame({
        "location_id": cat.store_ids[st_i].astype(str), "category": np.array(cat_names)[c_i],
        "date": [cfg.start + timedelta(days=int(t)) for t in t_i], "event_multiplier": uplift[st_i, c_i, t_i],
    })
    truth = pl.DataFrame({
        "region": np.repeat(regions, span),
        "date": dates * len(regions),
        "normal_c": normal.ravel(),
        "anomaly_c": anomaly.ravel(),
        "temperature_c": temperature.ravel(),
    })
    return DemoSignals(mult, events, signals, truth, event_days)
