"""The fitted rescaling between the user's units and the generator's output range."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class RangeScaler:
    """Affine map of the data onto ``[low, high]``, the range of the generator's output.

    Per-feature min/max for flat features; one global min/max for images (so that pixel
    intensities keep their relative meaning). Constant features map to the middle of the range.

    Attributes
    ----------
    data_min : ndarray
        Minimum seen in fit (per feature, or a 1-element array for images).
    data_max : ndarray
        Maximum seen in fit.
    low, high : float
        The target range.
    """

    data_min: np.ndarray
    data_max: np.ndarray
    low: float = -1.0
    high: float = 1.0

    @classmethod
    def fit(cls, X: np.ndarray, per_feature: bool, low: float = -1.0, high: float = 1.0,
            chunk: int = 8192):
        if per_feature:
            dmin = np.full(X.shape[1], np.inf)
            dmax = np.full(X.shape[1], -np.inf)
        else:
            dmin, dmax = np.array([np.inf]), np.array([-np.inf])
        for start in range(0, X.shape[0], chunk):  # chunked: works on memmaps
            block = np.asarray(X[start:start + chunk], dtype=np.float32)
            if per_feature:
                dmin = np.minimum(dmin, block.min(axis=0))
                dmax = np.maximum(dmax, block.max(axis=0))
            else:
                dmin = np.minimum(dmin, block.min(keepdims=True).ravel())
                dmax = np.maximum(dmax, block.max(keepdims=True).ravel())
        return cls(dmin, dmax, float(low), float(high))

    @property
    def _span(self) -> np.ndarray:
        span = self.data_max - self.data_min
        return np.where(span > 0, span, 1.0)

    def transform(self, X: np.ndarray) -> np.ndarray:
        """To the target range, in float32 (no float64 temporaries on large blocks)."""
        const = self.data_max - self.data_min <= 0
        scale = np.where(const, 0.0, (self.high - self.low) / self._span).astype(np.float32)
        offset = np.where(const, (self.low + self.high) / 2,
                          self.low - self.data_min * scale).astype(np.float32)
        out = np.asarray(X, dtype=np.float32) * scale
        out += offset
        return out

    def inverse_transform(self, X: np.ndarray) -> np.ndarray:
        unit = (np.asarray(X, dtype=np.float64) - self.low) / (self.high - self.low)
        return np.where(self.data_max - self.data_min > 0, unit * self._span + self.data_min,
                        self.data_min)
