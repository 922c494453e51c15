"""Points on a circle: the SO(2) example of the fusion study (factor = angle bin)."""
from __future__ import annotations

import numpy as np

from vaefrag.datasets import Dataset


class RingDataset(Dataset):
    """Points ``(cos a, sin a)`` at ``n_points`` evenly spaced angles, optionally with Gaussian noise.

    Parameters
    ----------
    n_points : int
        Number of angles ``a_i = 2 pi (i + 1/2) / n_points``.
    n_bins : int
        The factor ``angle`` is the bin of ``a_i`` among ``n_bins`` equal arcs.
    noise : float
        Standard deviation of isotropic noise added to each point (drawn once with ``seed``).
    seed : int
        Seed of the noise.
    """

    name = "ring"
    shape = (2,)
    factor_names = ["angle"]
    likelihood = "gaussian"

    def __init__(self, n_points: int = 4096, n_bins: int = 16, noise: float = 0.0, seed: int = 0):
        if not isinstance(n_points, int) or n_points < 2:
            raise ValueError(f"ring: n_points must be an int >= 2, got {n_points!r}")
        if not isinstance(n_bins, int) or not 1 <= n_bins <= n_points:
            raise ValueError(f"ring: n_bins must be an int in [1, n_points], got {n_bins!r}")
        if not np.isfinite(noise) or noise < 0:
            raise ValueError(f"ring: noise must be finite and >= 0, got {noise!r}")
        self.n_points, self.n_bins, self.noise, self.seed = n_points, n_bins, float(noise), int(seed)
        self.factor_sizes = [n_bins]
        angle = 2 * np.pi * (np.arange(n_points) + 0.5) / n_points
        x = np.stack([np.cos(angle), np.sin(angle)], axis=1)
        if noise > 0:
            x = x + noise * np.random.default_rng(seed).standard_normal(x.shape)
        self.angle = angle
        self._x = x.astype(np.float32)
        self._y = (np.arange(n_points) * n_bins // n_points).astype(np.int64)[:, None]

    def __len__(self) -> int:
        return self.n_points

    def params(self) -> dict:
        return {"n_points": self.n_points, "n_bins": self.n_bins, "noise": self.noise, "seed": self.seed}

    def get(self, indices):
        idx = self._check_indices(indices)
        return self._x[idx], self._y[idx]
