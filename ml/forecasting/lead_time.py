"""Replenishment lead-time distributions per series, measured from receipts and transfers up to ``as_of``.

Locations that buy from suppliers (``dim_location.replenished_from`` is null): the lead times of the goods
receipts in ``marts.fct_purchase_receipts`` (``lead_time_days`` = received - ordered), received on or before
``as_of`` and within ``lead_time_lookback_days`` before it.

Weighting (one observation per purchase-order line, split by units): every order line that has received goods
counts as one observation of "how long does an order take", spread over its receipts in proportion to the units
each brought (the line's unit-weighted lead time, the same quantity as ``fct_purchase_order_lines
.lead_time_weighted_days``, kept as a distribution rather than a mean). So a small late remainder receipt of a
split delivery counts for its share of the line's units, not as a whole lead-time observation, and a large order
does not count more than a small one (order size says nothing about how long the next order takes). Weighting
every receipt by its units made one big 190-day order 13.5% of a demo product's distribution (mean 71, p90 190
days; the supplier's receipts: mean 55, p90 91); per line it is one of 16 (mean 61, p90 124; with the supplier
prior mean 59, p90 118). Out of sample on the demo (distributions known at a date vs the lines ordered in the next
90 days) the mean CRPS went from 2.60 to 2.39 days. Cancelled lines and lines without receipts carry no
lead time.
Selecting receipts by received date in a fixed window is unbiased for the lead time of a steady order stream
(an order's receipt falls in the window with the same probability whatever its lead time); orders still open at
``as_of`` are not used.

Pooling: a product's own distribution is used when it has ``min_receipts_product`` order lines (source
``'receipts:product'``), mixed with its supplier's distribution worth ``lead_time_prior_lines`` lines (a
credibility weight: with 16 lines the product's own tail is noisy, with 200 the supplier hardly matters); else the
product's primary supplier (``'receipts:supplier'``, ``min_receipts_supplier`` lines); else the product's nominal
lead time (``dim_product.nominal_lead_time_days``, else the supplier master's: ``'nominal'``, a point mass); else
``default_lead_time_days`` (``'default'``, a point mass).

Locations replenished by transfer: ``received_date - ordered_date`` of ``staging.stg_logistics__transfers``
from the replenishing location to this one (``'transfers'``, each transfer one observation), else
``default_transfer_lead_time_days`` (``'default'``).

Review period: ``review_period_store_days`` for locations replenished by transfer, ``review_period_supplier_days``
for locations that buy from suppliers.

Timing (``ml.demand_distribution.exposure_days``): the position is reviewed at the close of a day and a receipt
dated ``L`` days after its order is on the shelf at that day's opening (``L`` is receipt date minus order date; 0
counts as 1). An order placed at a review is therefore exposed to ``L - 1`` days of demand before it arrives, and
the demand it must cover runs until the next order arrives: ``L + R - 1`` days (the protection interval). The
replay (``ml.simulation.engine``) follows the same timing.

Empirical distributions are kept as one sorted array of (distinct) values with cumulative weights, and a
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

    def take(self, rows: np.ndarray | slice) -> LeadTimes:
        """The distributions of the series ``rows`` (the observations are shared, not copied)."""
        return LeadTimes(self.values, self.cum_weight, self.start[rows], self.end[rows], self.source[rows],
                         self.review_days[rows])

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
    receipts: pl.DataFrame  # product_id, supplier_id, line, received_date, lt, w (units received)
    transfers: pl.DataFrame  # from_location_id, to_location_id, received_date, lt, w (number of transfers)


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
        select product_id, supplier_id,
               coalesce(po_id || '#' || po_line::varchar, 'receipt#' || row_number() over ()::varchar) as line,
               received_date,
               lead_time_days::double as lt, greatest(coalesce(quantity_received, 1), 0)::double as w
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
               count(*)::double as w
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
    # one observation per order line, split over its receipts by units (a line without units: equal parts)
    receipts = receipts.with_columns(
        pl.when(pl.col("w").sum().over("line") > 0)
        .then(pl.col("w") / pl.col("w").sum().over("line"))
        .otherwise(1.0 / pl.len().over("line")).alias("w")
    )
    obs = (
        pl.concat([
            receipts.select(pl.concat_str(pl.lit("product:"), "product_id").alias("key"), "lt", "w"),
            receipts.filter(pl.col("supplier_id").is_not_null()).select(
                pl.concat_str(pl.lit("supplier:"), "supplier_id").alias("key"), "lt", "w"),
            transfers.select(
                pl.concat_str(pl.lit("pair:"), "from_location_id", pl.lit(">"), "to_location_id").alias("key"),
                "lt", "w"),
        ])
        # distinct values per key (bounded by the lead-time range); rounded: float sums in any order agree
        .group_by("key", "lt").agg(pl.col("w").sum().round(9))
        .filter(pl.col("w") > 0)
    )
    # observations (order lines / transfers) per key
    counts = obs.group_by("key").agg(pl.col("w").sum().round(6).alias("n"))

    def n_of(col: str, alias: str) -> pl.Expr:
        return pl.col(col).replace_strict(counts["key"], counts["n"], default=0.0,
                                          return_dtype=pl.Float64).alias(alias)

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
    own = obs.join(used, on="key", maintain_order="left")
    prior = _supplier_prior(series, obs, config.lead_time_prior_lines)
    table = pl.concat([own, prior, points]).group_by("key", "lt").agg(pl.col("w").sum().round(9)).sort("key", "lt")
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


def _supplier_prior(series: pl.DataFrame, obs: pl.DataFrame, prior_lines: float) -> pl.DataFrame:
    """For every product distribution in use, its supplier's distribution rescaled to ``prior_lines`` observations
    (rows key, lt, w to add to the product's own observations)."""
    if prior_lines <= 0:
        return obs.clear()
    pairs = (series.filter(pl.col("choice") == "receipts:product")
             .select("key", pl.col("k_supplier").alias("skey")).unique())
    sup = obs.with_columns((pl.col("w") / pl.col("w").sum().over("key") * prior_lines).alias("w"))
    return pairs.join(sup.rename({"key": "skey"}), on="skey").select("key", "lt", "w")


def realised_lead_times(data: LeadTimeData, keys: pl.DataFrame, day: date, within_days: int) -> np.ndarray:
    """(n_series,) the lead time (days) that actually followed ``day``: that of the first order placed in
    [day, day + within_days) for the series' product (its line's unit-weighted lead time; else the first line of
    its supplier) or, for a location replenished by transfer, of the first transfer on its lane. NaN where no such
    order was placed or none has arrived by the end of ``data`` (for backtests: coverage of lead-time demand over
    the protection interval that really happened)."""
    end = day + timedelta(days=within_days)
    rec = data.receipts.with_columns((pl.col("received_date") - pl.duration(days=pl.col("lt"))).alias("ordered"))
    lines = (rec.group_by("line").agg(pl.col("product_id").first(), pl.col("supplier_id").first(),
                                      pl.col("ordered").min(), ((pl.col("lt") * pl.col("w")).sum()
                                                                / pl.col("w").sum().clip(1e-12)).alias("lt"))
             .filter((pl.col("ordered") >= day) & (pl.col("ordered") < end)))

    def first(frame: pl.DataFrame, key: str) -> pl.DataFrame:
        return frame.sort(key, "ordered", "lt").group_by(key, maintain_order=True).first().select(key, "lt")

    by_product = first(lines, "product_id").rename({"lt": "lt_product"})
    by_supplier = first(lines.filter(pl.col("supplier_id").is_not_null()), "supplier_id").rename(
        {"lt": "lt_supplier"})
    ordered = (pl.col("received_date") - pl.duration(days=pl.col("lt"))).alias("ordered")
    transfers = (data.transfers.with_columns(ordered)
                 .filter((pl.col("ordered") >= day) & (pl.col("ordered") < end)))
    by_lane = first(transfers.rename({"from_location_id": "replenished_from", "to_location_id": "location_id"})
                    .with_columns(pl.concat_str("replenished_from", pl.lit(">"), "location_id").alias("lane")),
                    "lane").rename({"lt": "lt_lane"})
    series = (
        keys.select("product_id", "location_id")
        .join(data.locations, on="location_id", how="left", maintain_order="left")
        .join(data.products.select("product_id", "supplier_id"), on="product_id", how="left", maintain_order="left")
        .with_columns(pl.concat_str("replenished_from", pl.lit(">"), "location_id").alias("lane"))
        .join(by_product, on="product_id", how="left", maintain_order="left")
        .join(by_supplier, on="supplier_id", how="left", maintain_order="left")
        .join(by_lane, on="lane", how="left", maintain_order="left")
        .select(pl.when(pl.col("replenished_from").is_not_null()).then("lt_lane")
                .otherwise(pl.coalesce("lt_product", "lt_supplier")).alias("lt"))
    )
    return series["lt"].cast(pl.Float64).fill_null(float("nan")).to_numpy()
