"""The hand-over between forecasting and policy: the distribution of demand over each series' protection interval.

Forecasting (``ml.forecasting``) produces a :class:`LeadTimeDemand`; policy (``ml.policy``) turns it into safety
stock, reorder points and order quantities. Neither side needs to know how the other works.

The protection interval of a product at a location is its replenishment lead time plus its review period: the
time between deciding to order and the next chance to order again after the goods arrive. Its demand is a random
sum (random daily demand over a random lead time), so it is carried as Monte Carlo samples, one row per series.
Summing per-step forecast quantiles would not give a quantile of the sum; sample paths do.

Timing (:func:`exposure_days`): reviewed at the close of a day, a receipt on the shelf at the
opening of its date, so an order is exposed to ``L - 1`` days of demand before it arrives and the interval it
protects is ``L + R - 1`` days. The demand before arrival, cut from the same draws, is carried next to the
samples: the periodic-review fill rate needs both.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl


def exposure_days(lead_time: np.ndarray, review_days: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(protection interval, days before arrival) of an order placed at a review: ``max(L, 1) + R - 1`` and
    ``max(L, 1) - 1`` days (module doc)."""
    lt = np.maximum(np.asarray(lead_time, dtype=np.float64), 1.0)
    return lt + np.asarray(review_days, dtype=np.float64) - 1.0, lt - 1.0


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
        lead_samples: optional (n_series, n_samples) the demand before the order arrives (``L - 1`` days), from
            the same draws as ``samples`` (so never above them). None: :meth:`lead_only` approximates it.
        empirical_lead_samples: optional, the same for ``empirical_samples``.
    """

    keys: pl.DataFrame
    samples: np.ndarray
    daily_demand_mean: np.ndarray
    lead_time_mean_days: np.ndarray
    lead_time_p90_days: np.ndarray
    review_period_days: np.ndarray
    lead_time_source: np.ndarray
    empirical_samples: np.ndarray | None = None
    lead_samples: np.ndarray | None = None
    empirical_lead_samples: np.ndarray | None = None

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
        for name, like in (("lead_samples", self.samples), ("empirical_lead_samples", self.empirical_samples)):
            lead = getattr(self, name)
            if lead is None:
                continue
            if like is None or lead.shape != like.shape:
                raise ValueError(f"{name} must have the shape of the samples it is cut from")
            if np.any(lead < 0) or not np.all(np.isfinite(lead)) or np.any(lead > like + 1e-6 * (1 + like)):
                raise ValueError(f"{name} must be finite, non-negative and at most the samples they are cut from")

    @staticmethod
    def lead_fraction(lead_time_days: np.ndarray, review_period_days: np.ndarray) -> np.ndarray:
        """(L - 1) / (L + R - 1) per series with L and R at least 1 day (a position is reviewed at most daily):
        the share of the protection interval before an order arrives."""
        total, before = exposure_days(lead_time_days, np.maximum(np.asarray(review_period_days, dtype=np.float64), 1.0))
        return before / total

    def lead_only(self) -> np.ndarray:
        """The demand before the order arrives: ``lead_samples`` where the forecast kept them, else the samples
        scaled by :meth:`lead_fraction` of the mean lead time (a distribution handed over without them, e.g. by
        a test or a plan written before they were kept)."""
        return self._before_arrival(self.samples, self.lead_samples)

    def empirical_lead_only(self) -> np.ndarray | None:
        """:meth:`lead_only` for the empirical samples (None without them)."""
        if self.empirical_samples is None:
            return None
        return self._before_arrival(self.empirical_samples, self.empirical_lead_samples)

    def _before_arrival(self, samples: np.ndarray, kept: np.ndarray | None) -> np.ndarray:
        if kept is not None:
            return kept
        return samples * self.lead_fraction(self.lead_time_mean_days, self.review_period_days)[:, None]

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
        the per-series arrays and the draws as fixed-size lists in sample order (so draws that are summed across
        series, as a DC's over its stores, stay aligned). Draws held as float32 (forecasting's) are stored as
        float32, others as doubles: both exactly, and the four draw matrices of a forecast take the room two
        matrices of doubles took. :meth:`from_samples_frame` inverts it."""

        def draws(name: str, values: np.ndarray) -> pl.DataFrame:
            kind = pl.Float32 if values.dtype == np.float32 else pl.Float64
            arr = values if values.dtype == np.float32 else np.asarray(values, dtype=np.float64)
            return pl.DataFrame({name: pl.Series(arr.reshape(arr.shape[0], -1), dtype=pl.Array(kind, arr.shape[1]))})


        columns = [
            self.keys.select(pl.col("product_id").cast(pl.String), pl.col("location_id").cast(pl.String)),
            pl.DataFrame({
                "daily_demand_mean": np.asarray(self.daily_demand_mean, dtype=np.float64),
                "lead_time_mean_days": np.asarray(self.lead_time_mean_days, dtype=np.float64),
                "lead_time_p90_days": np.asarray(self.lead_time_p90_days, dtype=np.float64),
                "review_period_days": np.asarray(self.review_period_days, dtype=np.float64),
                "lead_time_source": pl.Series(self.lead_time_source, dtype=pl.String),
            }),
            draws("samples", np.asarray(self.samples)),
        ]
        for name in ("lead_samples", "empirical_samples", "empirical_lead_samples"):
            if getattr(self, name) is not None:
                columns.append(draws(name, np.asarray(getattr(self, name))))
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
            values = column.to_numpy().reshape(frame.height, width)
            return values if values.dtype == np.float32 else values.astype(np.float64, copy=False)

        def optional(name: str) -> np.ndarray | None:
            if name in frame.columns and frame[name].null_count() < frame.height:
                return matrix(name)
            return None

        return cls(
            keys=frame.select("product_id", "location_id"),
            samples=matrix("samples"),
            daily_demand_mean=frame["daily_demand_mean"].to_numpy().astype(np.float64),
            lead_time_mean_days=frame["lead_time_mean_days"].to_numpy().astype(np.float64),
            lead_time_p90_days=frame["lead_time_p90_days"].to_numpy().astype(np.float64),
            review_period_days=frame["review_period_days"].to_numpy().astype(np.float64),
            lead_time_source=frame["lead_time_source"].to_numpy().astype(object),
            empirical_samples=optional("empirical_samples"),
            lead_samples=optional("lead_samples"),
            empirical_lead_samples=optional("empirical_lead_samples"),
        )
