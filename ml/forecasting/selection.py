"""Model choice per segment that tracks the present, and the guard against a collapsed forecast level.

Model choice (``choose_models``)
    Every backtest origin scores every model per series (``metrics.series_point_metrics``). Per Syntetos-Boylan
    segment, a model's score is the **recency-weighted** mean of its per-origin pooled score (the configured
    ``selection_metric``, RMSSE by default): the latest origin weighs 1, the one before
    ``selection_recency_decay`` (default 0.5), the one before that its square, and so on. So the choice follows
    what works now, and one early origin (a short training history, a holiday) cannot decide it alone.

    A series votes at an origin only if it had at least ``min_vote_history_days`` of history before it (default
    365: a season, so the seasonal naive and the yearly lag exist); when no series of a segment qualifies at any
    origin, every series votes (short panels still get a choice).

    **Baseline guard.** The winner must not lose to a simple baseline (``baseline_models``: seasonal naive,
    naive, moving average, Croston SBA, whichever are configured) on the latest origin with votes. If it does,
    the segment ships the baseline with the best recency-weighted score instead; the decision is logged and
    reported (``SelectionResult.guarded``).

Level guard (``guard_collapsed_level``)
    A global model with a target transform can collapse the level of a series (log1p back-transformed forecasts
    a geometric-mean-like level; measured on a real lumpy spare part: 0.91 units/day against a history mean of
    158). A series' selected forecast is replaced when its mean over the horizon is below ``level_guard_ratio``
    (default 0.25) times the smaller of its recent level (the mean of the last 91 days; the series must still
    sell) and, when the series has a season of history, the seasonal naive's mean over the same horizon (so a
    season that really ends is not "corrected"). The replacement is Croston SBA for intermittent and lumpy
    series and the moving average for the others (whichever is configured, else the seasonal naive), and only
    when it is higher. Applied identically at every backtest origin, so its effect is in the held-out numbers.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

BASELINE_MODELS: tuple[str, ...] = ("seasonal_naive", "naive", "moving_average", "croston_sba")
SPARSE_SEGMENTS: tuple[str, ...] = ("intermittent", "lumpy")


@dataclass
class OriginScores:
    """What one backtest origin contributes to the choice: per-series metrics of every model, the series'
    segment at the origin, which series can be scored and how much history each had."""

    series: dict[str, dict[str, np.ndarray]]  # model -> metric -> (n,)
    segment: np.ndarray  # (n,) object
    usable: np.ndarray  # (n,) bool
    history_days: np.ndarray  # (n,) days of history before the origin


@dataclass
class SelectionResult:
    choice: dict[str, str]  # segment -> model
    scores: dict[str, dict[str, float]] = field(default_factory=dict)  # segment -> model -> weighted score
    latest: dict[str, dict[str, float]] = field(default_factory=dict)  # segment -> model -> latest-origin score
    guarded: dict[str, str] = field(default_factory=dict)  # segment -> model the guard replaced
    voters: dict[str, int] = field(default_factory=dict)  # segment -> (series x origin) votes counted


def _pooled_score(m: dict[str, np.ndarray], rows: np.ndarray, metric: str) -> float:
    if not rows.any():
        return float("nan")
    if metric == "wape":
        act = m["_actual"][rows].sum()
        return float(m["_abs_err"][rows].sum() / act) if act > 0 else float("nan")
    v = m[metric][rows]
    v = v[np.isfinite(v)]
    return float(v.mean()) if len(v) else float("nan")


def choose_models(origins: list[OriginScores], models: list[str], segments: tuple[str, ...], *, metric: str,
                  decay: float, min_history_days: float, baselines: tuple[str, ...] = BASELINE_MODELS,
                  ) -> SelectionResult:
    """Per segment, the model with the best recency-weighted score, guarded by the simple baselines (see the
    module docstring). ``origins`` are oldest first."""
    result = SelectionResult(choice={})
    base = [m for m in baselines if m in models]
    n_orig = len(origins)
    for seg in segments:
        in_seg = [o.usable & (o.segment == seg) for o in origins]
        votes = [r & (o.history_days >= min_history_days) for r, o in zip(in_seg, origins, strict=True)]
        if not any(v.any() for v in votes):
            votes = in_seg
        result.voters[seg] = int(sum(int(v.sum()) for v in votes))
        per_origin = {name: np.array([_pooled_score(o.series[name], v, metric) for o, v in
                                      zip(origins, votes, strict=True)]) for name in models}
        weights = decay ** np.arange(n_orig - 1, -1, -1, dtype=np.float64)
        scores: dict[str, float] = {}
        for name, s in per_origin.items():
            ok = np.isfinite(s)
            scores[name] = float((s[ok] * weights[ok]).sum() / weights[ok].sum()) if ok.any() else float("nan")
        finite = {k: v for k, v in scores.items() if np.isfinite(v)}
        if not finite:  # e.g. only zero-history series: the lowest absolute error in units
            for name in models:
                err = np.concatenate([o.series[name]["_abs_err"][r] for o, r in zip(origins, in_seg, strict=True)])
                finite[name] = float(err.sum()) if len(err) else np.inf
            result.choice[seg] = min(finite, key=lambda k: (finite[k], models.index(k)))
            continue
        best = min(finite, key=lambda k: (finite[k], models.index(k)))
        with_votes = [j for j in range(n_orig) if votes[j].any()]
        latest = {name: float(per_origin[name][with_votes[-1]]) for name in models} if with_votes else {}
        result.scores[seg], result.latest[seg] = scores, latest
        if best not in base and base and latest:
            base_latest = [latest[b] for b in base if np.isfinite(latest[b])]
            if base_latest and not latest[best] <= min(base_latest):
                fallback = {b: finite[b] for b in base if b in finite}
                if fallback:
                    result.guarded[seg] = best
                    best = min(fallback, key=lambda k: (fallback[k], models.index(k)))
        result.choice[seg] = best
    return result


def guard_collapsed_level(point: np.ndarray, forecasts: dict[str, np.ndarray], segment: np.ndarray,
                          recent_level: np.ndarray, has_season: np.ndarray, ratio: float,
                          ) -> tuple[np.ndarray, np.ndarray]:
    """(guarded forecast, mask of the series replaced); see the module docstring. ``point`` is not modified."""
    if ratio <= 0 or point.size == 0:
        return point, np.zeros(len(point), bool)
    fc_mean = point.mean(axis=1)
    ref = recent_level.astype(np.float64).copy()
    if "seasonal_naive" in forecasts:
        sn = forecasts["seasonal_naive"].mean(axis=1)
        ref = np.where(has_season, np.minimum(ref, sn), ref)
    sparse = np.isin(segment.astype(str), SPARSE_SEGMENTS)
    repl = None
    for names, rows in ((("croston_sba", "moving_average", "seasonal_naive"), sparse),
                        (("moving_average", "croston_sba", "seasonal_naive"), ~sparse)):
        name = next((n for n in names if n in forecasts), None)
        if name is None:
            continue
        repl = np.zeros_like(point) if repl is None else repl
        repl[rows] = forecasts[name][rows]
    if repl is None:
        return point, np.zeros(len(point), bool)
    collapsed = (recent_level > 0) & (fc_mean < ratio * ref) & (repl.mean(axis=1) > fc_mean)
    if not collapsed.any():
        return point, collapsed
    out = point.copy()
    out[collapsed] = repl[collapsed]
    return out, collapsed
