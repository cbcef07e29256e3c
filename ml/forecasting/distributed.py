"""The global LightGBM model trained on a Dask cluster (forecasting engine ``"dask"``).

With ``ForecastConfig.engine = "dask"`` every LightGBM model of a forecasting run (the backtest origins, the
transform choice and the final fit) is trained through mlforecast's ``DistributedMLForecast`` and
``DaskLGBMForecast`` (LightGBM's data-parallel Dask learner):

- the training frame holds the same rows and features as the local engine's (``ml.forecasting.gbm.fit`` builds
  it); it is split by series into partitions, ``dask_partitions_per_worker`` per worker, so no series is cut, and
  the partitions are scattered to the workers;
- ``DistributedMLForecast.preprocess`` computes the lags and rolling statistics on each partition, where it lives;
- the rows the local engine trains on (the training window, a positive censoring weight) are selected there, and
  LightGBM trains data-parallel across the workers (``tree_learner="data"``: each worker builds histograms of its
  own rows, and the histograms are summed over the network);
- the booster comes back to the driver as a local ``LGBMRegressor`` and forecasts through the same recursive
  mlforecast code as the local engine.

``dask_address`` names a running scheduler (``tcp://host:8786``); the same code then trains on that cluster.
Without it, a ``LocalCluster`` of ``dask_workers`` worker processes starts on first use and stays up for the rest
of the process (it is closed at exit), so the several fits of a run pay its start-up once.

The other per-series work runs on the workers too, by blocks of whole series (:func:`map_row_blocks`):

- the local methods (seasonal naive, Croston SBA, TSB, moving average, yearly profile) of every origin; what they
  pool over all the series (the category's yearly profile, the panel's weekday profile) is computed once in the
  driver and sent with every block;
- the recursive prediction of the LightGBM model (the booster is sent to every worker once);
- the lead-time-demand sampling (``ml.forecasting.ltd.lead_time_demand``): the plan's, and the backtest's coverage
  checks, which score their samples where they are drawn and send back only the scores. The random streams are
  drawn per chunk of series, so the samples are the local engine's, draw for draw.

Still in the driver: the panel is read from the warehouse and shaped there, the pooled steps (selection,
calibration, the pooled profiles) run there, and the results come back to it to be written to the warehouse.
Training is where the time goes at M5 size (docs/benchmarks.md, "Forecasting on Dask").

Workers import ``ml.*``: on a cluster of its own, stockturn must be installed in the workers' environment.

Equivalence: the features are computed per series by the same mlforecast code, so they are identical. LightGBM's
data-parallel learner finds the bin edges of each feature on the workers' rows and sums histograms across them,
so its trees are close to, but not bit-identical with, a single-process model on the same rows; the tolerance the
tests hold it to is stated in ``tests/test_forecasting_dask.py``. Run to run, the same workers and partitions do
not always give the same model at M5 size: with one worker and the default row sampling, one run matched the local
forecast exactly and the next differed from it by 2.3% (WAPE between the forecasts; docs/benchmarks.md). The
suspected cause, not verified: the order of the partitions on a worker is not fixed, and LightGBM's bagging and
the row sample it takes its bin edges from depend on row order. On the small panels of the tests the runs repeat.
"""

from __future__ import annotations

import atexit
import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, TypeVar

import lightgbm as lgb
import numpy as np
import polars as pl
from mlforecast import MLForecast

if TYPE_CHECKING:
    from distributed import Client

    from ml.forecasting.config import ForecastConfig

log = logging.getLogger("stockturn.forecasting")

#: The integer periods of the local engine become days after this date on the cluster (mlforecast's distributed
#: path needs timestamps). Lags and rolling windows count rows, so the grain does not matter.
EPOCH = datetime(2000, 1, 1)
WEIGHT = "sample_weight"
INSTALL_HINT = 'the forecast engine "dask" needs the dask extra: pip install -e ".[dask]"'

_clients: dict[tuple[str | None, int, int], Client] = {}
T = TypeVar("T")


def dask_client(config: ForecastConfig) -> Client:
    """The client of ``config.dask_address``, or of a ``LocalCluster`` of ``config.dask_workers`` workers started
    on first use (one per process and setting; closed at exit)."""
    key = (config.dask_address, config.dask_workers, _threads_per_worker(config))
    client = _clients.get(key)
    if client is not None and client.status == "running":
        return client
    try:
        from distributed import Client, LocalCluster
    except ImportError as exc:  # pragma: no cover - depends on the installed extras
        raise RuntimeError(INSTALL_HINT) from exc
    if config.dask_address:
        log.info("forecasting on the Dask cluster at %s", config.dask_address)
        client = Client(config.dask_address)
    else:
        log.info("forecasting on a local Dask cluster: %d workers x %d LightGBM threads",
                 config.dask_workers, _threads_per_worker(config))
        # LightGBM's Dask learner trains with each worker's own thread count (it ignores n_jobs)
        cluster = LocalCluster(n_workers=config.dask_workers, threads_per_worker=_threads_per_worker(config),
                               processes=True, dashboard_address=None, silence_logs=logging.ERROR)
        client = Client(cluster)
    _clients[key] = client
    return client


def close_clients() -> None:
    """Close every client (and local cluster) this process started."""
    while _clients:
        _, client = _clients.popitem()
        cluster = getattr(client, "cluster", None)
        client.close()
        if cluster is not None:
            cluster.close()


atexit.register(close_clients)


def _threads_per_worker(config: ForecastConfig) -> int:
    """Threads of each local worker: ``num_threads`` shared between the workers (on a cluster of its own, each
    worker trains with the threads it was started with)."""
    return max(1, config.num_threads // config.dask_workers)


def fit(train: pl.DataFrame, weights: np.ndarray, *, first_period: int, static_features: list[str],
        lags: list[int], lag_transforms: dict[int, list[Any]], params: dict[str, Any],
        config: ForecastConfig) -> tuple[MLForecast, int]:
    """Train the LightGBM model of ``ml.forecasting.gbm.fit`` on the Dask cluster.

    ``train``: the long frame (``unique_id``, integer ``ds``, ``y``, exogenous and static columns), sorted by
    series and period; ``weights``: the censoring weight of each of its rows. The model trains on the rows with
    ``ds >= first_period`` and a positive weight. Returns a local ``MLForecast`` ready to predict (integer
    periods, like the local engine's) and the number of training rows.
    """
    try:
        import dask.dataframe as dd
        from mlforecast.distributed import DistributedMLForecast
        from mlforecast.distributed.models.dask.lgb import DaskLGBMForecast
    except ImportError as exc:  # pragma: no cover - depends on the installed extras
        raise RuntimeError(INSTALL_HINT) from exc
    client = dask_client(config)
    n_workers = max(1, len(client.scheduler_info()["workers"]))
    frame = train.with_columns(pl.Series(WEIGHT, weights, dtype=pl.Float64),
                               (pl.lit(EPOCH) + pl.duration(days=pl.col("ds"))).alias("ds"))
    # whole series per partition (the frame is sorted by series), sent to the workers once (scattered) rather
    # than embedded in the task graph
    series = frame["unique_id"].unique(maintain_order=True).to_numpy()
    groups = [g for g in np.array_split(series, min(len(series), n_workers * config.dask_partitions_per_worker))
              if len(g)]
    parts = [frame.filter(pl.col("unique_id").is_between(g[0], g[-1])).to_pandas() for g in groups]
    del frame
    data = dd.from_delayed(client.scatter(parts), meta=parts[0].iloc[:0], verify_meta=False)
    del parts
    dist_params = {k: v for k, v in params.items() if k != "n_jobs"}
    dmlf = DistributedMLForecast(models={"lgbm": DaskLGBMForecast(**dist_params)}, freq="D", lags=lags,
                                 lag_transforms=lag_transforms, engine=client)
    prep = dmlf.preprocess(data, id_col="unique_id", time_col="ds", target_col="y",
                           static_features=static_features, dropna=False)
    local, dtypes = _local_forecaster(train, static_features, lags, lag_transforms)
    features = list(local.ts.features_order_)
    rows = prep[(prep["ds"] >= EPOCH + timedelta(days=int(first_period))) & (prep[WEIGHT] > 0)]
    # the distributed features come back as float64; the local engine trains on the frame's own types (float32
    # for most), and LightGBM's bin edges follow the values it sees
    rows = rows[[*features, "y", WEIGHT]].astype({**dtypes, WEIGHT: "float64"}).persist()
    n_rows = int(rows.shape[0].compute())
    model = DaskLGBMForecast(**dist_params).fit(rows[features], rows["y"], sample_weight=rows[WEIGHT])
    local.models_ = {"lgbm": model.to_local()}
    return local, n_rows


def _local_forecaster(train: pl.DataFrame, static_features: list[str], lags: list[int],
                      lag_transforms: dict[int, list[Any]]) -> tuple[MLForecast, dict[str, Any]]:
    """A local ``MLForecast`` with the same features, set up on one series of ``train`` (prediction passes every
    series' recent history as ``new_df``, so only the feature configuration is needed here), and the numpy type of
    each feature and the target as the local engine computes them."""
    first = train["unique_id"][0]
    mlf = MLForecast(models={"lgbm": lgb.LGBMRegressor()}, freq=1, lags=lags, lag_transforms=lag_transforms,
                     num_threads=1)
    prep = mlf.preprocess(train.filter(pl.col("unique_id") == first), id_col="unique_id", time_col="ds",
                          target_col="y", static_features=static_features, dropna=False)
    columns = [*mlf.ts.features_order_, "y"]
    dtypes = {c: prep[c].to_numpy().dtype for c in columns}
    return mlf, dtypes


def row_blocks(n_rows: int, n_blocks: int, align: int = 1) -> list[tuple[int, int]]:
    """At most ``n_blocks`` contiguous ``[a, b)`` ranges covering ``0..n_rows``, each starting at a multiple of
    ``align`` (the sampling's chunk of series), as even as that allows."""
    units = -(-n_rows // align)
    cuts = np.linspace(0, units, min(max(n_blocks, 1), max(units, 1)) + 1).round().astype(np.int64) * align
    cuts[-1] = n_rows
    return [(int(a), int(min(b, n_rows))) for a, b in zip(cuts[:-1], cuts[1:], strict=True) if b > a]


def map_row_blocks(func: Callable[..., T], n_rows: int, block_args: Callable[[int, int], dict[str, Any]],
                   shared: dict[str, Any], config: ForecastConfig, *, align: int = 1) -> list[T]:
    """``func(**block_args(a, b), **shared)`` for blocks of whole series ``[a, b)``, in row order.

    With the local engine, one block holds every row. With the ``dask`` engine, the rows are cut into
    ``dask_partitions_per_worker`` blocks per worker (starts aligned to ``align``); each block's arguments are
    scattered to the cluster, ``shared`` is broadcast to every worker once, and ``func`` (a module-level function
    of ``ml.*``) runs where its block lives. Only the results come back."""
    if config.engine != "dask" or n_rows == 0:
        return [func(**block_args(0, n_rows), **shared)]
    client = dask_client(config)
    n_workers = max(1, len(client.scheduler_info()["workers"]))
    blocks = row_blocks(n_rows, n_workers * config.dask_partitions_per_worker, align)
    [shared_future] = client.scatter([shared], broadcast=True, hash=False)
    parts = client.scatter([block_args(a, b) for a, b in blocks], hash=False)
    futures = [client.submit(_call_block, func, part, shared_future, pure=False) for part in parts]
    return client.gather(futures)


def _call_block(func: Callable[..., T], args: dict[str, Any], shared: dict[str, Any]) -> T:
    return func(**args, **shared)
