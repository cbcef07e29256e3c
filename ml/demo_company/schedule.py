"""Piecewise-constant schedules (list prices, standard costs, promotion discounts) indexed by day."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class StepSchedule:
    """Values per index (product or series) that change on given days and hold until the next change.

    Days are offsets from the first history day (day 0); negative days lie before the history. Events must be
    sorted by day; an index has at most one event per day.
    """

    day: np.ndarray  # int64, sorted
    index: np.ndarray  # int64
    value: np.ndarray  # float64

    @staticmethod
    def build(day: np.ndarray, index: np.ndarray, value: np.ndarray) -> StepSchedule:
        order = np.lexsort((index, day))
        return StepSchedule(
            day=np.asarray(day, dtype=np.int64)[order],
            index=np.asarray(index, dtype=np.int64)[order],
            value=np.asarray(value, dtype=np.float64)[order],
        )

    def values_at(self, day: int, n: int, default: float | np.ndarray = 0.0) -> np.ndarray:
        """The value in force on ``day`` for each of ``n`` indices (``default`` before an index's first event)."""
        upto = int(np.searchsorted(self.day, day, side="right"))
        last = np.full(n, -1, dtype=np.int64)
        np.maximum.at(last, self.index[:upto], np.arange(upto, dtype=np.int64))
        out = np.broadcast_to(np.asarray(default, dtype=np.float64), (n,)).copy()
        has = last >= 0
        out[has] = self.value[last[has]]
        return out

    def day_bounds(self, days: int) -> np.ndarray:
        """bounds[t]:bounds[t+1] slices the events of day t, for t in 0..days-1."""
        return np.searchsorted(self.day, np.arange(days + 1), side="left")

    def apply(self, values: np.ndarray, bounds: np.ndarray, t: int) -> bool:
        """Apply day t's events to ``values`` in place; True if anything changed."""
        lo, hi = bounds[t], bounds[t + 1]
        if hi == lo:
            return False
        values[self.index[lo:hi]] = self.value[lo:hi]
        return True
