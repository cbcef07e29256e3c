"""The hand-over between forecasting and policy: the distribution of demand over each series' protection interval.

Forecasting (``ml.forecasting``) produces a :class:`LeadTimeDemand`; policy (``ml.policy``) turns it into safety
stock, reorder points and order quantities. Neither side needs to know how the other works.

The protection interval of a product at a location is its replenishment lead time plus its review period: the
time between deciding to order and the next chance to order again after the goods arrive. Its demand is a random
sum (random daily demand over a random lead time), so it is carried as Monte Carlo samples, one row per series.
Summing per-step forecast quantiles would not give a quantile of the sum; sample paths do.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

#: Quantile levels written to ``ml.lead_time_demand``.
LTD_QUANTILE_LEVELS: tuple[float, ...] = (0.5, 0.8, 0.9, 0.95, 0.98, 0.99)


@dataclass(frozen=True)
class LeadTimeDemand:
    """Demand over the protection interval (lead time + review period), per product x location.

    Row ``i`` of every array belongs to row ``i`` of ``keys``.

    Attributes:
        keys: product_id, location_id (one row per series, unique).
        samples: (n_series, n_samples) Monte Carlo draws of total demand over the protection interval, units.
        daily_demand_mean: (n_series,) forecast mean demand per day over the coming horizon, units/day.
        lead_time_mean_days: (n_series,) mean replenishment lead time used, days.
        lead_time_p90_days: (n_series,) 90th percentile of that lead time, days.
        review_period_days: (n_series,) review period added to the lead time, days.
        lead_time_source: (n_series,) where the lead time came from, e.g. 'receipts:product', 'receipts:supplier',
            'transfers', 'nominal', 'default' (for the report and the exceptions).
        empirical_samples: optional (n_series, n_empirical) draws of the series' own demand over past protection
            intervals (a bootstrap of its history, ``ml.forecasting.ltd.empirical_lead_time_demand``): the
            evidence the policy's guards compare the forecast-based reorder points with. None: no guard on it.
    """

    keys: pl.DataFrame
    samples: np.ndarray
    daily_demand_mean: np.ndarray
    lead_time_mean_days: np.ndarray
    lead_time_p90_days: np.ndarray
    review_period_days: np.ndarray
    lead_time_source: np.ndarray
    empirical_samples: np.ndarray | None = None

    def __post_init__(self) -> None:
        n = self.keys.height
        if set(self.keys.columns) < {"product_id", "location_id"}:
            raise ValueError("keys must have product_id and location_id")
        if self.samples.ndim != 2 or self.samples.shape[0] != n:
            raise ValueError(f"samples must be (n_series={n}, n_samples), got {self.samples.shape}")
        for name in ("daily_demand_mean", "lead_time_mean_days", "lead_time_p90_days", "review_period_days",
                     "lead_time_source"):
            if np.shape(getattr(self, name)) != (n,):
                raise ValueError(f"{name} must have shape ({n},)")
        if np.any(self.samples < 0) or not np.all(np.isfinite(self.samples)):
            raise ValueError("lead-time demand samples must be finite and non-negative")
        if self.empirical_samples is not None and (
                self.empirical_samples.ndim != 2 or self.empirical_samples.shape[0] != n
                or np.any(self.empirical_samples < 0) or not np.all(np.isfinite(self.empirical_samples))):
            raise ValueError(f"empirical_samples must be finite, non-negative and (n_series={n}, k)")

    @property
    def n_series(self) -> int:
        return self.keys.height

    def mean(self) -> np.ndarray:
        return self.samples.mean(axis=1)

    def quantiles(self, levels: tuple[float, ...] = LTD_QUANTILE_LEVELS) -> np.ndarray:
        """(n_series, len(levels)) empirical quantiles of the samples."""
        return np.quantile(self.samples, levels, axis=1, method="inverted_cdf").T

    def to_frame(self, levels: tuple[float, ...] = LTD_QUANTILE_LEVELS) -> pl.DataFrame:
        """One row per series: the interval, its mean, standard deviation and quantiles (for ml.lead_time_demand)."""
        q = self.quantiles(levels)
        cols = {f"ltd_p{round(level * 100):02d}": q[:, j] for j, level in enumerate(levels)}
        return self.keys.select("product_id", "location_id").with_columns(
            pl.Series("daily_demand_mean", self.daily_demand_mean, dtype=pl.Float64),
            pl.Series("lead_time_mean_days", self.lead_time_mean_days, dtype=pl.Float64),
            pl.Series("lead_time_p90_days", self.lead_time_p90_days, dtype=pl.Float64),
            pl.Series("review_period_days", self.review_period_days, dtype=pl.Float64),
            pl.Series("lead_time_source", self.lead_time_source, dtype=pl.String),
            pl.Series("ltd_mean", self.samples.mean(axis=1), dtype=pl.Float64),
            pl.Series("ltd_std", self.samples.std(axis=1, ddof=1) if self.samples.shape[1] > 1
                      else np.zeros(self.n_series), dtype=pl.Float64),
            *[pl.Series(name, values, dtype=pl.Float64) for name, values in cols.items()],
            pl.lit(self.samples.shape[1]).cast(pl.Int32).alias("n_samples"),
        )

    def to_samples_frame(self) -> pl.DataFrame:
        """Everything the policy reads, losslessly, one row per series (``ml.lead_time_demand_samples``): the keys,
        the per-series arrays and the draws as fixed-size lists of doubles, in sample order (so draws that are
        summed across series, as a DC's over its stores, stay aligned). :meth:`from_samples_frame` inverts it."""
        n, k = self.samples.shape
        columns = [
            self.keys.select(pl.col("product_id").cast(pl.String), pl.col("location_id").cast(pl.String)),
            pl.DataFrame({
                "daily_demand_mean": np.asarray(self.daily_demand_mean, dtype=np.float64),
                "lead_time_mean_days": np.asarray(self.lead_time_mean_days, dtype=np.float64),
                "lead_time_p90_days": np.asarray(self.lead_time_p90_days, dtype=np.float64),
                "review_period_days": np.asarray(self.review_period_days, dtype=np.float64),
                "lead_time_source": pl.Series(self.lead_time_source, dtype=pl.String),
            }),
            pl.DataFrame({"samples": pl.Series(np.asarray(self.samples, dtype=np.float64).reshape(n, k),
                                               dtype=pl.Array(pl.Float64, k))}),
        ]
        if self.empirical_samples is not None:
            e = np.asarray(self.empirical_samples, dtype=np.float64)
            columns.append(pl.DataFrame({"empirical_samples": pl.Series(
                e, dtype=pl.Array(pl.Float64, e.shape[1]))}))
        return pl.concat(columns, how="horizontal")

    @classmethod
    def from_samples_frame(cls, frame: pl.DataFrame) -> LeadTimeDemand:
        """The :class:`LeadTimeDemand` written by :meth:`to_samples_frame` (extra columns, such as the run stamp,
        are ignored; rows keep their order)."""
        def matrix(name: str) -> np.ndarray:
            column = frame[name]
            width = column.dtype.size if isinstance(column.dtype, pl.Array) else None
            if width is None:  # a list column (as DuckDB may return it): all rows the same length
                return np.asarray(column.to_list(), dtype=np.float64).reshape(frame.height, -1)
            return column.to_numpy().reshape(frame.height, width).astype(np.float64, copy=False)

        empirical = None
        if "empirical_samples" in frame.columns and frame["empirical_samples"].null_count() < frame.height:
            empirical = matrix("empirical_samples")
        return cls(
            keys=frame.select("product_id", "location_id"),
            samples=matrix("samples"),
            daily_demand_mean=frame["daily_demand_mean"].to_numpy().astype(np.float64),
            lead_time_mean_days=frame["lead_time_mean_days"].to_numpy().astype(np.float64),
            lead_time_p90_days=frame["lead_time_p90_days"].to_numpy().astype(np.float64),
            review_period_days=frame["review_period_days"].to_numpy().astype(np.float64),
            lead_time_source=frame["lead_time_source"].to_numpy().astype(object),
            empirical_samples=empirical,
        )
