"""Replenishment lead-time distributions per series, measured from receipts and transfers up to ``as_of``.

Locations that buy from suppliers (``dim_location.replenished_from`` is null): the lead times of the goods
receipts in ``marts.fct_purchase_receipts`` (``lead_time_days`` = received - ordered, every receipt of a split
delivery counts, weighted by the units it brought: the distribution of "when does an ordered unit arrive"),
received on or before ``as_of`` and within ``lead_time_lookback_days`` before it. Pooled by product when it has
``min_receipts_product`` receipts (source ``'receipts:product'``), else by the product's primary supplier
(``'receipts:supplier'``, ``min_receipts_supplier``), else the product's nominal lead time
(``dim_product.nominal_lead_time_days``, else the supplier master's: ``'nominal'``, a point mass), else
``default_lead_time_days`` (``'default'``, a point mass).

Locations replenished by transfer: ``received_date - ordered_date`` of ``staging.stg_logistics__transfers``
from the replenishing location to this one (``'transfers'``, weighted by quantity), else
``default_transfer_lead_time_days`` (``'default'``).

Review period: ``review_period_store_days`` for locations replenished by transfer, ``review_period_supplier_days``
for locations that buy from suppliers.

Empirical distributions are kept as one sorted array of observations with cumulative weights, and a
[start, end) slice per series, so sampling and quantiles are vectorised over series.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import duckdb
import numpy as np
import polars as pl

from ml.forecasting.config import ForecastConfig
from ml.warehouse import read_frame


@dataclass(frozen=True)
class LeadTimes:
    """Lead-time distribution of each series (rows aligned with the panel's keys)."""

    values: np.ndarray  # (n_obs,) lead times in days, sorted by (key, value)
    cum_weight: np.ndarray  # (n_obs,) cumulative weights over the whole array
    start: np.ndarray  # (n_series,) first observation of the series' distribution
    end: np.ndarray  # (n_series,) one past the last
    source: np.ndarray  # (n_series,) object
    review_days: np.ndarray  # (n_series,) float

    def _bounds(self) -> tuple[np.ndarray, np.ndarray]:
        lo = np.where(self.start > 0, self.cum_weight[np.maximum(self.start - 1, 0)], 0.0)
        hi = self.cum_weight[self.end - 1]
        return lo, hi

    def sample(self, rng: np.random.Generator, n_samples: int, rows: np.ndarray | None = None) -> np.ndarray:
        """(n_rows, n_samples) lead-time draws (days), weighted by the observations' weights."""
        lo, hi = self._bounds()
        if rows is not None:
            lo, hi = lo[rows], hi[rows]
            start, end = self.start[rows], self.end[rows]
        else:
            start, end = self.start, self.end
        u = rng.random((len(lo), n_samples))
        target = lo[:, None] + u * (hi - lo)[:, None]
        idx = np.searchsorted(self.cum_weight, target, side="right")
        idx = np.clip(idx, start[:, None], end[:, None] - 1)
        return self.values[idx]

    def quantile(self, q: float) -> np.ndarray:
        lo, hi = self._bounds()
        target = lo + q * (hi - lo)
        idx = np.searchsorted(self.cum_weight, target - 1e-9, side="left")
        idx = np.clip(idx, self.start, self.end - 1)
        return self.values[idx].astype(np.float64)

    def mean(self) -> np.ndarray:
        w = np.diff(np.concatenate([[0.0], self.cum_weight]))
        cs = np.concatenate([[0.0], np.cumsum(self.values * w)])
        cw = np.concatenate([[0.0], np.cumsum(w)])
        return (cs[self.end] - cs[self.start]) / np.maximum(cw[self.end] - cw[self.start], 1e-12)


@dataclass(frozen=True)
class LeadTimeData:
    """Every lead-time observation received on or before an as-of date (transfers aggregated per day and lead
    time: one read serves every backtest date)."""

    locations: pl.DataFrame
    products: pl.DataFrame
    receipts: pl.DataFrame  # product_id, supplier_id, received_date, lt, w
    transfers: pl.DataFrame  # from_location_id, to_location_id, received_date, lt, w


def read_lead_time_data(con: duckdb.DuckDBPyConnection, as_of: date) -> LeadTimeData:
    locations = read_frame(con, "select location_id, replenished_from from marts.dim_location order by all")
    products = read_frame(
        con,
        """
        select p.product_id, p.supplier_id,
               coalesce(p.nominal_lead_time_days, s.nominal_lead_time_days)::double as nominal
        from marts.dim_product as p
        left join marts.dim_supplier as s using (supplier_id)
        order by p.product_id
        """,
    )
    receipts = read_frame(
        con,
        """
        select product_id, supplier_id, received_date, lead_time_days::double as lt,
               greatest(coalesce(quantity_received, 1), 0)::double as w
        from marts.fct_purchase_receipts
        where received_date <= ? and lead_time_days is not null and lead_time_days >= 0
        order by all
        """,
        [as_of],
    )
    transfers = read_frame(
        con,
        """
        select from_location_id, to_location_id, received_date, (received_date - ordered_date)::double as lt,
               sum(greatest(coalesce(quantity, 1), 0))::double as w
        from staging.stg_logistics__transfers
        where received_date <= ? and ordered_date is not null and received_date >= ordered_date
        group by all
        order by all
        """,
        [as_of],
    )
    return LeadTimeData(locations, products, receipts, transfers)


def load_lead_times(con: duckdb.DuckDBPyConnection, keys: pl.DataFrame, config: ForecastConfig,
                    as_of: date) -> LeadTimes:
    """Lead-time distribution for every row of ``keys`` (product_id, location_id) from data up to ``as_of``."""
    return lead_times_at(read_lead_time_data(con, as_of), keys, config, as_of)


def lead_times_at(data: LeadTimeData, keys: pl.DataFrame, config: ForecastConfig, as_of: date) -> LeadTimes:
    """Lead-time distributions as known on ``as_of`` (observations received in the lookback window before it)."""
    since = as_of - timedelta(days=config.lead_time_lookback_days)

    def window(frame: pl.DataFrame) -> pl.DataFrame:
        return frame.filter((pl.col("received_date") <= as_of) & (pl.col("received_date") > since))

    locations, products = data.locations, data.products
    receipts, transfers = window(data.receipts), window(data.transfers)
    obs = pl.concat(
        [
            receipts.select(pl.concat_str(pl.lit("product:"), "product_id").alias("key"), "lt", "w"),
            receipts.filter(pl.col("supplier_id").is_not_null()).select(
                pl.concat_str(pl.lit("supplier:"), "supplier_id").alias("key"), "lt", "w"),
            transfers.select(
                pl.concat_str(pl.lit("pair:"), "from_location_id", pl.lit(">"), "to_location_id").alias("key"),
                "lt", "w"),
        ]
    ).with_columns(pl.when(pl.col("w") > 0).then("w").otherwise(1e-6).alias("w"))
    counts = obs.group_by("key").agg(pl.len().alias("n"))

    def n_of(col: str, alias: str) -> pl.Expr:
        return pl.col(col).replace_strict(counts["key"], counts["n"], default=0, return_dtype=pl.Int64).alias(alias)

    ldt = float(config.default_lead_time_days)
    tdt = float(config.default_transfer_lead_time_days)
    series = (
        keys.select("product_id", "location_id")
        .join(locations, on="location_id", how="left", maintain_order="left")
        .join(products, on="product_id", how="left", maintain_order="left")
        .with_columns(
            pl.concat_str(pl.lit("pair:"), "replenished_from", pl.lit(">"), "location_id").alias("k_pair"),
            pl.concat_str(pl.lit("product:"), "product_id").alias("k_product"),
            pl.concat_str(pl.lit("supplier:"), "supplier_id").alias("k_supplier"),
        )
        .with_columns(n_of("k_pair", "n_pair"), n_of("k_product", "n_product"), n_of("k_supplier", "n_supplier"))
        .with_columns(
            pl.when(pl.col("replenished_from").is_not_null())
            .then(pl.when(pl.col("n_pair") >= config.min_receipts_product).then(pl.lit("transfers"))
                  .otherwise(pl.lit("default:transfer")))
            .when(pl.col("n_product") >= config.min_receipts_product).then(pl.lit("receipts:product"))
            .when(pl.col("n_supplier") >= config.min_receipts_supplier).then(pl.lit("receipts:supplier"))
            .when(pl.col("nominal").is_not_null() & pl.col("nominal").is_not_nan()).then(pl.lit("nominal"))
            .otherwise(pl.lit("default:supplier"))
            .alias("choice")
        )
        .with_columns(
            pl.when(pl.col("choice") == "default:transfer").then(pl.lit(tdt))
            .when(pl.col("choice") == "default:supplier").then(pl.lit(ldt))
            .when(pl.col("choice") == "nominal").then(pl.col("nominal"))
            .otherwise(None).alias("point"),
        )
        .with_columns(
            pl.when(pl.col("choice") == "transfers").then("k_pair")
            .when(pl.col("choice") == "receipts:product").then("k_product")
            .when(pl.col("choice") == "receipts:supplier").then("k_supplier")
            .otherwise(pl.concat_str(pl.lit("point:"), pl.col("point").cast(pl.String))).alias("key"),
            pl.when(pl.col("choice").str.starts_with("default")).then(pl.lit("default"))
            .otherwise("choice").alias("source"),
            pl.when(pl.col("replenished_from").is_not_null()).then(pl.lit(float(config.review_period_store_days)))
            .otherwise(pl.lit(float(config.review_period_supplier_days))).alias("review"),
        )
    )
    points = series.filter(pl.col("point").is_not_null()).select("key", pl.col("point").alias("lt"),
                                                                  pl.lit(1.0).alias("w")).unique(
        "key", keep="first", maintain_order=True)
    used = series.select("key").unique(maintain_order=True)
    table = pl.concat([obs.join(used, on="key", maintain_order="left"), points]).sort("key", "lt", "w",
                                                                                        maintain_order=True)
    keys_sorted = table["key"].to_numpy()
    uniq, first_idx = np.unique(keys_sorted, return_index=True)
    last_idx = np.append(first_idx[1:], len(keys_sorted))
    kidx = np.searchsorted(uniq, series["key"].to_numpy())
    return LeadTimes(
        values=table["lt"].to_numpy().astype(np.float64),
        cum_weight=np.cumsum(table["w"].to_numpy().astype(np.float64)),
        start=first_idx[kidx].astype(np.int64),
        end=last_idx[kidx].astype(np.int64),
        source=series["source"].to_numpy().astype(object),
        review_days=series["review"].to_numpy().astype(np.float64),
    )
