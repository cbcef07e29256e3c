"""Evaluation against the demo company's hidden true demand (benchmarks only; never used by the pipeline).

``evaluate_against_truth`` replays the rolling-origin backtest once per censoring mode and scores the held-out
origins' forecasts against the *true* demand of the demo (``<landing>_truth/true_demand.parquet``: demand before
stock-outs cut it, and its expectation), on every day - stock-out days included, where recorded sales only show
the part that could be served. That is how much the censoring correction helps.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import duckdb
import numpy as np
import polars as pl

from ml.forecasting import pipeline as pp
from ml.forecasting.arrays import nan0
from ml.forecasting.config import ForecastConfig
from ml.forecasting.metrics import insample_scales
from ml.forecasting.panel import Panel, mart_as_of


def truth_arrays(panel: Panel, truth_dir: Path) -> dict[str, np.ndarray]:
    """True demand and expected demand per series (base + aggregates) x history period (NaN where unknown)."""
    truth = pl.scan_parquet(Path(truth_dir) / "true_demand.parquet").select(
        "date", "product_id", "location_id", "demand", "expected_demand")
    keys = panel.keys[: panel.n_base].select("product_id", "location_id").with_row_index("i")
    frame = truth.join(keys.lazy(), on=["product_id", "location_id"]).collect()
    days = frame["date"].to_numpy().astype("datetime64[D]")
    per = np.searchsorted(panel.period_start, days, side="right") - 1
    end = panel.period_start[per] + panel.period_len[per].astype("timedelta64[D]")
    ok = (per >= 0) & (per < panel.n_hist) & (days < end)
    i = frame["i"].to_numpy()[ok]
    per = per[ok]
    out: dict[str, np.ndarray] = {}
    for col in ("demand", "expected_demand"):
        arr = np.zeros((panel.n_base, panel.n_hist), dtype=np.float64)
        np.add.at(arr, (i, per), frame[col].to_numpy()[ok].astype(np.float64))
        seen = np.zeros((panel.n_base, panel.n_hist), dtype=bool)
        seen[i, per] = True
        arr[~seen] = np.nan
        out[col] = panel.aggregate(arr)
    return out


def evaluate_against_truth(
    con: duckdb.DuckDBPyConnection,
    truth_dir: Path | str,
    config: ForecastConfig | None = None,
    *,
    modes: tuple[str, ...] = ("none", "impute", "exclude"),
    as_of: date | None = None,
    progress: bool = True,
) -> pl.DataFrame:
    """Accuracy against true demand of each censoring mode's held-out backtest forecasts.

    Returns one row per (censoring, model, location_type, target, metric): ``target`` is ``'demand'`` (the true
    daily demand, including what stock-outs lost) or ``'expected_demand'`` (its mean, the best possible point
    forecast); metrics are WAPE, bias (sum error / sum truth), RMSSE and MASE (scaled by the in-sample seasonal
    naive of the true demand, for both targets), over every period of the held-out origins' horizons. Models:
    every configured one and ``'selected'`` (the per-segment choice of that mode's selection origins).
    """
    config = (config or ForecastConfig()).replace(calibration_sub_origins=0)
    timer = pp._Timer(progress)
    ctx, _ = pp._prepare(con, config.replace(backtest_max_series=10**9), as_of or mart_as_of(con))
    panel = ctx.panel
    truth = truth_arrays(panel, Path(truth_dir))
    n_sel = config.n_origins - config.n_holdout_origins
    is_agg = panel.keys["is_aggregate"].to_numpy()
    groups = {"all": np.ones(panel.n_series, bool), "selling": ~is_agg, "aggregate": is_agg}
    rows: list[dict] = []
    for mode in modes:
        evals, _, _ = pp._backtest(ctx, config, timer, mode=mode)
        for ev in evals:  # each origin under the choice made on the origins before it (the first: on itself)
            choice = pp._choose(evals[: max(ev.index, 1)], config, panel).choice
            ev.fit.forecasts["selected"] = pp.selected_forecast(ev.fit, choice, config, panel)[0]
        for target, arr in truth.items():
            for model in [*config.models, "selected"]:
                for gname, gmask in groups.items():
                    acc = _score(evals[n_sel:], model, arr, truth["demand"], gmask, panel, ctx.horizon)
                    for metric, value in acc.items():
                        rows.append({"censoring": mode, "model": model, "series": gname, "target": target,
                                     "metric": metric, "value": value})
        timer.lap(f"truth_{mode}")
    return pl.DataFrame(rows)


def _score(evals: list, model: str, truth: np.ndarray, scale_source: np.ndarray, rows: np.ndarray, panel: Panel,
           horizon: int) -> dict[str, float]:
    abs_err = err = tot = 0.0
    mase, rmsse = [], []
    for ev in evals:
        c = ev.fit.cutoff
        end = min(c + horizon, truth.shape[1])
        act = truth[:, c:end]
        fc = ev.fit.forecasts[model][:, : end - c]
        ok = ~np.isnan(act) & rows[:, None] & ev.fit.active[:, None]
        e = np.where(ok, fc - nan0(act), 0.0)
        abs_err += np.abs(e).sum()
        err += e.sum()
        tot += np.where(ok, act, 0.0).sum()
        hist = scale_source[:, :c]
        mae_s, rms_s = insample_scales(hist, ~np.isnan(hist), panel.season)
        n = ok.sum(axis=1)
        use = (n > 0) & rows
        with np.errstate(invalid="ignore", divide="ignore"):
            m = np.abs(e).sum(axis=1) / np.maximum(n, 1) / mae_s
            r = np.sqrt((e**2).sum(axis=1) / np.maximum(n, 1)) / rms_s
        mase.append(m[use])
        rmsse.append(r[use])
    m = np.concatenate(mase)
    r = np.concatenate(rmsse)
    return {
        "wape": abs_err / tot if tot else float("nan"),
        "bias": err / tot if tot else float("nan"),
        "mase": float(np.nanmean(m)) if np.isfinite(m).any() else float("nan"),
        "rmsse": float(np.nanmean(r)) if np.isfinite(r).any() else float("nan"),
    }
