"""Demand segments (Syntetos-Boylan) and volume bands, from the history before an origin.

Over the last year of periods (or the series' history if shorter), with the censoring-corrected target:
ADI = observed periods / periods with demand, CV^2 = squared coefficient of variation of the non-zero demand
sizes. Classes (cut-offs 1.32 and 0.49, Syntetos, Boylan & Croston 2005): smooth (ADI < 1.32, CV^2 < 0.49),
erratic (ADI < 1.32, CV^2 >= 0.49), intermittent (ADI >= 1.32, CV^2 < 0.49), lumpy (ADI >= 1.32, CV^2 >= 0.49),
plus 'zero' for series without demand in the window.
"""

from __future__ import annotations

import numpy as np

from ml.forecasting.arrays import nan0

SEGMENTS: tuple[str, ...] = ("smooth", "erratic", "intermittent", "lumpy", "zero")
ADI_CUT = 1.32
CV2_CUT = 0.49


def classify(target: np.ndarray, weight: np.ndarray, window: int) -> np.ndarray:
    """Segment label per series (object array of SEGMENTS names)."""
    y = nan0(target[:, -window:]).astype(np.float64)
    obs = (weight[:, -window:] > 0) & ~np.isnan(target[:, -window:])
    nz = obs & (y > 0)
    n_obs = obs.sum(axis=1)
    n_nz = nz.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        adi = np.where(n_nz > 0, n_obs / np.maximum(n_nz, 1), np.inf)
        s1 = np.where(nz, y, 0.0).sum(axis=1)
        s2 = np.where(nz, y**2, 0.0).sum(axis=1)
        mean = s1 / np.maximum(n_nz, 1)
        var = np.where(n_nz > 1, (s2 - n_nz * mean**2) / np.maximum(n_nz - 1, 1), 0.0)
        cv2 = np.where(mean > 0, np.maximum(var, 0.0) / mean**2, 0.0)
    out = np.empty(len(y), dtype=object)
    frequent = adi < ADI_CUT
    variable = cv2 >= CV2_CUT
    out[frequent & ~variable] = "smooth"
    out[frequent & variable] = "erratic"
    out[~frequent & ~variable] = "intermittent"
    out[~frequent & variable] = "lumpy"
    out[n_nz == 0] = "zero"
    return out


def volume_cuts(scale: np.ndarray, n_bands: int) -> np.ndarray:
    """Cut points (n_bands - 1) splitting series into equal-count bands of their scale."""
    if n_bands <= 1 or len(scale) == 0:
        return np.array([])
    return np.quantile(scale, np.linspace(0, 1, n_bands + 1)[1:-1])


def volume_band(scale: np.ndarray, cuts: np.ndarray) -> np.ndarray:
    return np.searchsorted(cuts, scale, side="right").astype(np.int64)
