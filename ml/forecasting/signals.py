"""External signals and calendar events as forecast features: availability respected, and gated per category.

Inputs (optional landing entities, docs/data-contract.md): ``staging.stg_external__signals`` (a value per signal,
period, scope and the day it became known) and ``staging.stg_calendar__events`` (events by type and scope).

Features (``feature_columns``)
    - ``sig_<name>``: the signal's value on the period (the mean of its days at week / month grain) **as known
      at the origin**: of the values for a day and scope, the one with the latest ``known_date`` on or before
      the origin's last history day; missing (NaN) when none is known. A weather observation is known the day
      after, so the origin's own day and the forecast periods carry a value only where a forecast of the
      signal, issued by the origin, is in the file.
    - ``sig_<name>_dev``: the value minus the mean of the signal's known values over the 28 days before it (a
      hot week after a mild month), NaN when either is missing.
    - ``evt_<type>``: the share of the period's days an event of that type covers in the series' location
      (scope all, its region or the location itself). A calendar is known in advance.

    Scopes: per signal and period, a series takes the value of the most specific scope that has one known
    (its location, then its region, then its product's category, then all). An aggregate (DC) series takes the
    mean over its children.

Training and "unknown"
    The model is trained on every signal and event type. In a deterministic random share
    (``UNKNOWN_TRAIN_SHARE``) of the training cells, each group's features are set missing, so the model learns
    what to forecast when a value is not known (beyond the weather forecast's reach) or not used (below).

Gating (``decide``)
    A group (one signal, or one event type) is used for a category's forecasts only where it improves the
    backtest's held-out windows: at every origin the fitted model forecasts with every group, and once per group
    with that group's features missing. Per category, the squared errors of its period totals at each selling
    location (store x category x day: summed forecasts against summed recorded sales on uncensored cells) are
    compared, paired, over every origin (each day scored by the freshest backtest forecast that covers it: the
    origin's or a weekly sub-origin's); the group is kept when the lower end of the interval of the gain (1 -
    error with / error without; normal with a block-bootstrap standard error over weeks, each week with all its
    locations; level 1 - 5% / (groups x categories), so a useless signal is kept anywhere with at most 5% chance)
    is above 0 and the gain itself at least ``ForecastConfig.signal_min_gain`` (default 0.5%: a signal must pay
    for the risk of relying on an outside feed), both measured on the periods where the group was known at the
    origin (the first 7 days for a 7-day weather forecast; the whole horizon for a calendar)
    (``DecisionRow.kept``).
    Elsewhere its features are missing at prediction: a signal that does not help is dropped, not trusted.
    Decisions and gains go to ``ml.forecast_backtest`` (level ``signal_gating``, ``origin`` = the as-of date of
    the run that decided them).

Re-using a recent gate (``stored_gating``)
    The gate is the backtest's most expensive optional part (at every origin each group's variant is forecast
    over the periods it is scored on; about 120 s of 414 s of forecasting at M5 size). One more week adds a
    week to evidence of four half-year windows: the clear decisions stay, a borderline one may flip either way
    (docs/signals.md). So a re-fit re-uses the decisions stored in ``ml.forecast_backtest`` when they are at
    most ``ForecastConfig.signal_gating_max_age_days`` old (default 28: the weekly re-fit gates afresh every
    fourth week), were decided on or before the run's as-of date (a replay of a past date never
    reads a later gate), and cover exactly the groups and categories the panel now has (a new signal feed, a
    dropped one or a new category gates afresh). ``kept`` is derived again from the stored gain and interval
    with the current ``signal_min_gain``. The forecast-drift sensor's early re-fit always gates afresh
    (``orchestration/defs/schedules.py``). With the same decisions the forecasts are those of a run that gated
    itself (the gate only chooses which features the predictions use; ``tests/test_signals.py``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import date

import duckdb
import numpy as np
import polars as pl
from scipy import sparse
from scipy.stats import norm

from ml.warehouse import read_frame, table_exists

log = logging.getLogger("stockturn.forecasting")

DEV_WINDOW_DAYS = 28
UNKNOWN_TRAIN_SHARE = 0.3
BOOTSTRAP_RESAMPLES = 2000
SIGNAL_PREFIX = "signal:"
EVENT_PREFIX = "event:"


@dataclass
class SignalSeries:
    """One signal's values: records sorted by (unit, day, known), with the unit of every base series."""

    name: str
    unit_of_base: np.ndarray  # (n_base, 4) unit index per scope, most specific first (location, region, category,
    #                           all); -1: the signal has no value in that scope of the series
    n_units: int
    key: np.ndarray  # (records,) unit * n_days + day, sorted (then by known)
    known: np.ndarray  # (records,) day number the value became known
    value: np.ndarray  # (records,) float64

    def subset(self, base_rows: np.ndarray) -> SignalSeries:
        return SignalSeries(self.name, self.unit_of_base[base_rows], self.n_units, self.key, self.known, self.value)


@dataclass
class PanelSignals:
    """Signals and events of a panel (``Panel.signals``) and the per-origin cache of their daily values."""

    n_days: int  # days covered from the panel's first day (history and future periods)
    signals: list[SignalSeries]
    event_types: list[str]
    event_days: np.ndarray  # (n_types, n_locations, n_days) bool
    loc_of_base: np.ndarray  # (n_base,) location index
    _cache: dict[int, list[tuple[np.ndarray, np.ndarray]]] = field(default_factory=dict, repr=False)

    @property
    def groups(self) -> list[str]:
        return [SIGNAL_PREFIX + s.name for s in self.signals] + [EVENT_PREFIX + e for e in self.event_types]

    def group_columns(self, group: str) -> list[str]:
        if group.startswith(SIGNAL_PREFIX):
            name = group[len(SIGNAL_PREFIX):]
            return [f"sig_{name}", f"sig_{name}_dev"]
        return [f"evt_{group[len(EVENT_PREFIX):]}"]

    def subset(self, base_rows: np.ndarray) -> PanelSignals:
        return PanelSignals(self.n_days, [s.subset(base_rows) for s in self.signals], self.event_types,
                            self.event_days, self.loc_of_base[base_rows])

    def daily_as_known(self, origin_day: int) -> list[tuple[np.ndarray, np.ndarray]]:
        """(value, deviation) per signal, (n_units, n_days) each, as known at the end of ``origin_day``."""
        if origin_day not in self._cache:
            if len(self._cache) > 16:
                self._cache.clear()
            self._cache[origin_day] = [_daily(s, origin_day, self.n_days) for s in self.signals]
        return self._cache[origin_day]


def _daily(s: SignalSeries, origin_day: int, n_days: int) -> tuple[np.ndarray, np.ndarray]:
    values = np.full(s.n_units * n_days, np.nan)
    idx = np.flatnonzero(s.known <= origin_day)
    if len(idx):
        k = s.key[idx]
        last = np.r_[k[1:] != k[:-1], True]  # sorted by (key, known): the latest value known by the origin
        values[k[last]] = s.value[idx[last]]
    values = values.reshape(s.n_units, n_days)
    ok = ~np.isnan(values)
    cs = np.concatenate([np.zeros((s.n_units, 1)), np.cumsum(np.where(ok, values, 0.0), axis=1)], axis=1)
    cn = np.concatenate([np.zeros((s.n_units, 1)), np.cumsum(ok, axis=1)], axis=1)
    d = np.arange(n_days)
    a = np.maximum(d - DEV_WINDOW_DAYS, 0)
    cnt = cn[:, d] - cn[:, a]
    with np.errstate(invalid="ignore", divide="ignore"):
        trailing = np.where(cnt > 0, (cs[:, d] - cs[:, a]) / cnt, np.nan)
    return values, values - trailing


def _period_mean(daily: np.ndarray, starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Mean of the non-missing days of each period, (rows, n_periods); NaN without any."""
    if daily.dtype == bool:
        daily = daily.astype(np.float64)
    if (lengths == 1).all() and starts[0] == 0 and (np.diff(starts) == 1).all():
        return daily[:, : len(starts)]
    ok = ~np.isnan(daily)
    n = daily.shape[1]
    cs = np.concatenate([np.zeros((len(daily), 1)), np.cumsum(np.where(ok, daily, 0.0), axis=1)], axis=1)
    cn = np.concatenate([np.zeros((len(daily), 1)), np.cumsum(ok, axis=1)], axis=1)
    a, b = np.clip(starts, 0, n), np.clip(starts + lengths, 0, n)
    cnt = cn[:, b] - cn[:, a]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(cnt > 0, (cs[:, b] - cs[:, a]) / np.maximum(cnt, 1), np.nan)


def _with_aggregates(base: np.ndarray, agg: sparse.csr_matrix) -> np.ndarray:
    """Base rows and, for every aggregate, the mean of its children's non-missing values."""
    if agg.shape[0] == 0:
        return base
    ok = ~np.isnan(base)
    num = np.asarray(agg @ np.where(ok, base, 0.0))
    den = np.asarray(agg @ ok.astype(np.float64))
    with np.errstate(invalid="ignore", divide="ignore"):
        agg_rows = np.where(den > 0, num / np.maximum(den, 1e-12), np.nan)
    return np.vstack([base, agg_rows])


def feature_columns(ps: PanelSignals, agg: sparse.csr_matrix, period_start_day: np.ndarray,
                    period_len: np.ndarray, origin_day: int, lo: int, hi: int,
                    use: dict[str, np.ndarray] | None = None) -> dict[str, np.ndarray]:
    """Signal and event features over periods [lo, hi) as known at ``origin_day``, (n_all, hi - lo) float32
    each; rows where ``use[group]`` is False carry NaN for that group (see the module docstring)."""
    starts, lengths = period_start_day[lo:hi], period_len[lo:hi]
    out: dict[str, np.ndarray] = {}
    for s, (values, dev) in zip(ps.signals, ps.daily_as_known(origin_day), strict=True):
        for col, daily in ((f"sig_{s.name}", values), (f"sig_{s.name}_dev", dev)):
            per_unit = _period_mean(daily, starts, lengths)
            base = np.full((len(s.unit_of_base), len(starts)), np.nan)
            for unit in s.unit_of_base.T:  # most specific scope first; a broader one fills what it leaves missing
                base = np.where(np.isnan(base) & (unit[:, None] >= 0), per_unit[np.maximum(unit, 0)], base)
            out[col] = _with_aggregates(base, agg).astype(np.float32)
    for j, etype in enumerate(ps.event_types):
        per_loc = _period_mean(ps.event_days[j], starts, lengths)
        out[f"evt_{etype}"] = _with_aggregates(per_loc[ps.loc_of_base], agg).astype(np.float32)
    return without_unused(ps, out, use)


def without_unused(ps: PanelSignals, cols: dict[str, np.ndarray], use: dict[str, np.ndarray] | None,
                   ) -> dict[str, np.ndarray]:
    """``cols`` (signal and event features) with NaN in the rows where ``use[group]`` is False for that group's
    columns; the arrays changed are copies, so one set of columns serves several ``use`` variants."""
    if not use:
        return cols
    out = dict(cols)
    for group, keep in use.items():
        if keep.all():
            continue
        for col in ps.group_columns(group):
            if col in out:
                masked = out[col].copy()
                masked[~keep] = np.nan
                out[col] = masked
    return out


def teach_unknown(ps: PanelSignals, cols: dict[str, np.ndarray], rows: np.ndarray, seed: int,
                  cutoff: int) -> None:
    """Set each group's features missing in a deterministic random share of the training cells of ``rows``."""
    for g, group in enumerate(ps.groups):
        names = [c for c in ps.group_columns(group) if c in cols]
        if not names:
            continue
        rng = np.random.default_rng(np.random.SeedSequence([seed, 12, cutoff, g]))
        width = cols[names[0]].shape[1]
        mask = rng.random((len(rows), width), dtype=np.float32) < UNKNOWN_TRAIN_SHARE
        for name in names:
            sub = cols[name][rows]
            sub[mask] = np.nan
            cols[name][rows] = sub


# ---------------------------------------------------------------------------------------------------- loading
def load_signals(con: duckdb.DuckDBPyConnection, base_keys: pl.DataFrame, first_day: date, n_days: int,
                 as_of: date) -> PanelSignals | None:
    """Signals known by ``as_of`` and every listed event, mapped to the base series; None when there are none."""
    has_signals = table_exists(con, "staging", "stg_external__signals")
    has_events = table_exists(con, "staging", "stg_calendar__events")
    if not (has_signals or has_events):
        return None
    last_day = date.fromordinal(first_day.toordinal() + n_days - 1)
    loc = pl.DataFrame(con.execute("select location_id, region from marts.dim_location").fetchall(),
                       schema={"location_id": pl.String, "region": pl.String}, orient="row")
    series = base_keys.select("location_id", "category").join(loc, on="location_id", how="left",
                                                               maintain_order="left")
    signals: list[SignalSeries] = []
    if has_signals:
        rows = read_frame(con,
            """
            select signal_name, scope, coalesce(scope_id, '') as scope_id,
                   greatest(period_start, ?::date) as d0, least(period_end, ?::date) as d1,
                   known_date, value
            from staging.stg_external__signals
            where known_date <= ? and period_end >= ? and period_start <= ?
            """, [first_day, last_day, as_of, first_day, last_day])
        for name in sorted(rows["signal_name"].unique().to_list()):
            signals.append(_signal_series(name, rows.filter(pl.col("signal_name") == name), series, first_day,
                                          n_days))
        signals = [s for s in signals if (s.unit_of_base >= 0).any()]  # some scope matches some series
    event_types: list[str] = []
    locations = series["location_id"].unique(maintain_order=True).to_list()
    loc_index = {v: i for i, v in enumerate(locations)}
    loc_of_base = series["location_id"].replace_strict(loc_index, return_dtype=pl.Int64).to_numpy()
    event_days = np.zeros((0, len(locations), n_days), dtype=bool)
    if has_events:
        ev = con.execute(
            """
            select event_type, scope, scope_id, greatest(start_date, ?::date) - ?::date as a,
                   least(end_date, ?::date) - ?::date as b
            from staging.stg_calendar__events
            where end_date >= ? and start_date <= ?
            """, [first_day, first_day, last_day, first_day, first_day, last_day]).fetchall()
        event_types = sorted({e[0] for e in ev})
        event_days = np.zeros((len(event_types), len(locations), n_days), dtype=bool)
        region_of = dict(zip(loc["location_id"].to_list(), loc["region"].to_list(), strict=True))
        for etype, scope, scope_id, a, b in ev:
            j = event_types.index(etype)
            if scope == "all":
                rows_l = np.arange(len(locations))
            elif scope == "region":
                rows_l = np.array([i for v, i in loc_index.items() if region_of.get(v) == scope_id], dtype=int)
            else:
                rows_l = np.array([loc_index[scope_id]] if scope_id in loc_index else [], dtype=int)
            if len(rows_l):
                event_days[j][np.ix_(rows_l, np.arange(a, b + 1))] = True
        keep = [j for j in range(len(event_types)) if event_days[j].any()]
        event_types = [event_types[j] for j in keep]
        event_days = event_days[keep]
    if not signals and not event_types:
        return None
    ps = PanelSignals(n_days, signals, event_types, event_days, loc_of_base)
    log.info("external signals: %s; event types: %s", ", ".join(s.name for s in signals) or "none",
             ", ".join(event_types) or "none")
    return ps


def _signal_series(name: str, rows: pl.DataFrame, series: pl.DataFrame, first_day: date,
                   n_days: int) -> SignalSeries:
    scopes = rows.select("scope", "scope_id").unique().sort("scope", "scope_id")
    unit_index = {(s, i): k for k, (s, i) in enumerate(scopes.iter_rows())}
    # the unit of each scope of each series, most specific first (a cell takes the first one with a known value)
    unit = np.full((series.height, 4), -1, dtype=np.int64)
    for j, (scope, column) in enumerate((("location", "location_id"), ("region", "region"),
                                         ("category", "category"), ("all", None))):
        ids = [""] * series.height if column is None else series[column].fill_null("\0").to_list()
        unit[:, j] = [unit_index.get((scope, i), -1) for i in ids]
    # expand multi-day periods to days
    d0 = (rows["d0"].cast(pl.Date).to_numpy().astype("datetime64[D]") - np.datetime64(first_day, "D")).astype(int)
    d1 = (rows["d1"].cast(pl.Date).to_numpy().astype("datetime64[D]") - np.datetime64(first_day, "D")).astype(int)
    kn = (rows["known_date"].cast(pl.Date).to_numpy().astype("datetime64[D]")
          - np.datetime64(first_day, "D")).astype(np.int64)
    u = np.array([unit_index[(s, i)] for s, i in zip(rows["scope"].to_list(), rows["scope_id"].to_list(),
                                                      strict=True)], dtype=np.int64)
    length = d1 - d0 + 1
    rep = np.repeat(np.arange(len(d0)), length)
    day = d0[rep] + (np.arange(len(rep)) - np.repeat(np.cumsum(length) - length, length))
    key = u[rep] * n_days + day
    order = np.lexsort((kn[rep], key))
    return SignalSeries(name, unit, len(unit_index), key[order], kn[rep][order],
                        rows["value"].to_numpy().astype(np.float64)[rep][order])


# ---------------------------------------------------------------------------------------------------- gating
@dataclass(frozen=True)
class DecisionRow:
    group: str
    category: str
    n_blocks: int  # weeks compared (per backtest window; every location of the week in one block)
    mse_with: float  # mean squared error of the category x location period totals, with the group
    mse_without: float
    gain: float  # 1 - mse_with / mse_without: > 0 means the group helps
    gain_ci_low: float
    gain_ci_high: float
    kept: bool


@dataclass
class Gating:
    rows: list[DecisionRow]
    decided_on: date | None = None  # as-of date of the forecasting run whose backtest made the decisions
    reused: bool = False  # taken from ``ml.forecast_backtest`` (``stored_gating``), not decided by this run

    def kept(self, group: str) -> set[str]:
        return {r.category for r in self.rows if r.group == group and r.kept}

    def use_masks(self, categories: np.ndarray) -> dict[str, np.ndarray]:
        """Per group, the series (by category) whose forecasts use it."""
        groups = sorted({r.group for r in self.rows})
        return {g: np.isin(categories, list(self.kept(g))) for g in groups}


@dataclass
class GatingErrors:
    """One origin's squared errors of the category x location period totals, with every group and without each."""

    with_all: np.ndarray  # (n_units, H)
    without: dict[str, np.ndarray]  # group -> (n_units, H)
    valid: np.ndarray  # (n_units, H) bool: the unit had scored cells in the period
    known: dict[str, np.ndarray]  # group -> (H,) bool: periods where the group's features were known at the origin


def known_periods(ps: PanelSignals, cols: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Per group, the periods of ``cols`` (forecast-period feature columns) where some series has a value."""
    out = {}
    for group in ps.groups:
        names = [c for c in ps.group_columns(group) if c in cols]
        out[group] = (~np.isnan(cols[names[0]])).any(axis=0) if names else np.zeros(0, bool)
    return out


def unit_totals(forecast: np.ndarray, actual: np.ndarray, mask: np.ndarray, unit: np.ndarray,
                n_units: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(forecast totals, actual totals, valid) per unit and period over the scored cells of the given rows."""
    ind = sparse.csr_matrix((np.ones(len(unit)), (unit, np.arange(len(unit)))), shape=(n_units, len(unit)))
    f = np.asarray(ind @ np.where(mask, forecast, 0.0))
    a = np.asarray(ind @ np.where(mask, actual, 0.0))
    v = np.asarray(ind @ mask.astype(np.float64)) > 0
    return f, a, v


def decide(groups: list[str], category_of_unit: np.ndarray, errors: list[GatingErrors], seed: int,
           min_gain: float, block_periods: int = 7) -> Gating:
    """Per group and category: keep where the gain in squared error of the category x location period totals,
    over the periods where the group was known at the origin, is at least ``min_gain`` and its interval is above
    0. The interval is normal with the block-bootstrap standard error at level
    1 - 5% / (groups x categories) (Bonferroni): the chance of keeping any useless group anywhere is at most 5%.
    A block is ``block_periods`` periods of one backtest window at every location of the category together: days
    next to each other are alike, and a signal shared by the locations (a national holiday, a noise series)
    moves their errors together, so neither may count as independent evidence (resampling store-weeks
    separately kept a pure-noise signal at M5 size).

    Totals, not single series: a store x product day is mostly sampling noise (a few units), which hides a
    signal that moves the expected demand by a fifth; the category's total at a location shows it."""
    rows: list[DecisionRow] = []
    rng = np.random.default_rng(np.random.SeedSequence([seed, 13]))
    cats = sorted(set(category_of_unit.tolist()))
    # Bonferroni over every (group, category) the gate tests: a useless one is kept anywhere with at most 5%
    z = float(norm.ppf(1.0 - 0.05 / (2 * max(len(groups) * len(cats), 1))))
    for group in groups:
        for cat in cats:
            units = np.flatnonzero(category_of_unit == cat)
            w_blocks, wo_blocks = [], []
            for e in errors:
                h = e.with_all.shape[1]
                for b0 in range(0, h, block_periods):
                    sl = slice(b0, min(b0 + block_periods, h))
                    valid = e.valid[units, sl] & e.known[group][None, sl]
                    if valid.any():  # one block: the week at every location (a shared signal links them)
                        w_blocks.append(np.array([np.where(valid, e.with_all[units, sl], 0.0).sum()]))
                        wo_blocks.append(np.array([np.where(valid, e.without[group][units, sl], 0.0).sum()]))
            w = np.concatenate(w_blocks) if w_blocks else np.zeros(0)
            wo = np.concatenate(wo_blocks) if wo_blocks else np.zeros(0)
            n = len(w)
            if n < 2 or wo.sum() <= 0:
                rows.append(DecisionRow(group, cat, n, float(w.mean()) if n else np.nan,
                                        float(wo.mean()) if n else np.nan, np.nan, np.nan, np.nan, False))
                continue
            gain = 1.0 - w.sum() / wo.sum()
            boot = np.empty(BOOTSTRAP_RESAMPLES)
            step = max(1, 2_000_000 // n)  # resamples per chunk: bounded memory at any size
            for j in range(0, BOOTSTRAP_RESAMPLES, step):
                idx = rng.integers(0, n, (min(step, BOOTSTRAP_RESAMPLES - j), n))
                boot[j : j + len(idx)] = 1.0 - w[idx].sum(axis=1) / np.maximum(wo[idx].sum(axis=1), 1e-12)
            se = float(boot.std(ddof=1))
            lo_, hi_ = gain - z * se, gain + z * se
            rows.append(DecisionRow(group, cat, n, float(w.mean()), float(wo.mean()), float(gain), float(lo_),
                                    float(hi_), _kept(gain, lo_, min_gain)))
    return Gating(rows)


def _kept(gain: float, gain_ci_low: float, min_gain: float) -> bool:
    """The gate's rule: the gain is at least ``min_gain`` and its interval is above 0."""
    return bool(np.isfinite(gain) and np.isfinite(gain_ci_low) and gain_ci_low > 0 and gain >= min_gain)


#: metrics of a gating row in ``ml.forecast_backtest`` (level ``signal_gating``)
GATING_METRICS = ("mse_with", "mse_without", "gain", "gain_ci_low", "gain_ci_high", "n_blocks")


def stored_gating(con: duckdb.DuckDBPyConnection, as_of: date, max_age_days: int, groups: list[str],
                  categories: list[str], min_gain: float) -> tuple[Gating | None, str]:
    """(the gate stored in ``ml.forecast_backtest`` if it may be re-used at ``as_of``, why or why not): see
    "Re-using a recent gate" in the module docstring."""
    if max_age_days <= 0:
        return None, "re-use off (signal_gating_max_age_days = 0)"
    if not table_exists(con, "ml", "forecast_backtest"):
        return None, "no stored forecast backtest"
    rows = read_frame(con, """
        select origin as decided_on, model as grp, segment as category, metric, value
        from ml.forecast_backtest
        where level = 'signal_gating'
        """)
    if rows.is_empty() or rows["decided_on"].null_count() == rows.height:
        return None, "no dated gate stored"
    decided = rows["decided_on"].drop_nulls().unique().to_list()
    if len(decided) != 1 or rows["decided_on"].null_count():
        return None, f"the stored gate has {len(decided)} decision dates"
    decided_on = decided[0]
    age = (as_of - decided_on).days
    if age < 0:
        return None, f"the stored gate was decided on {decided_on}, after the as-of date {as_of}"
    if age > max_age_days:
        return None, f"the stored gate is {age} days old (limit {max_age_days})"
    pairs = set(zip(rows["grp"].to_list(), rows["category"].to_list(), strict=True))
    wanted = {(g, c) for g in groups for c in categories}
    if pairs != wanted:
        return None, (f"the stored gate covers other signal groups or categories ({len(pairs)} pairs stored, "
                      f"{len(wanted)} now)")
    values = {(g, c, m): v for g, c, m, v in zip(rows["grp"], rows["category"], rows["metric"], rows["value"],
                                                  strict=True)}
    out = []
    for g in groups:
        for c in categories:
            stat = {m: values.get((g, c, m), np.nan) for m in GATING_METRICS}
            gain, low = stat["gain"], stat["gain_ci_low"]
            out.append(DecisionRow(g, c, int(stat["n_blocks"]) if np.isfinite(stat["n_blocks"]) else 0,
                                   stat["mse_with"], stat["mse_without"], gain, low, stat["gain_ci_high"],
                                   _kept(gain, low, min_gain)))
    return Gating(out, decided_on=decided_on, reused=True), f"decided on {decided_on}, {age} days before"
