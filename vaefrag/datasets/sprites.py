"""Procedural dSprites: 2-D shapes rendered exactly from their five factor indices.

Factors (in index order, as in dSprites): shape (square, ellipse, heart), scale (6 values in
[0.5, 1]), orientation (40 values over a full turn), x (32 positions), y (32 positions);
3 * 6 * 40 * 32 * 32 = 737,280 images. Item ``i`` has the factor indices
``np.unravel_index(i, FACTOR_SIZES)`` and is rendered on demand, so the set is never held in memory.
"""
from __future__ import annotations

import numpy as np

from vaefrag.datasets import Dataset

FACTOR_NAMES = ["shape", "scale", "orientation", "x", "y"]
FACTOR_SIZES = [3, 6, 40, 32, 32]
SHAPES = ["square", "ellipse", "heart"]
#: scale values (dSprites: linspace(0.5, 1, 6))
SCALES = np.linspace(0.5, 1.0, 6)
#: half-size of a scale-1 shape, as a fraction of the image side
BASE_SIZE = 0.13
#: centres run over [MARGIN, 1 - MARGIN] of the image side
MARGIN = 0.2
#: no shape reaches further than this (image fraction) from its centre
EXTENT = 0.19


def factors_to_index(factors) -> np.ndarray:
    """Flat item index of factor indices. factors: int [n, 5] -> int64 [n]."""
    f = np.asarray(factors)
    if f.ndim != 2 or f.shape[1] != 5:
        raise ValueError(f"factors must have shape [n, 5], got {f.shape}")
    return np.ravel_multi_index(tuple(f.T), FACTOR_SIZES).astype(np.int64)


def index_to_factors(indices) -> np.ndarray:
    """Factor indices of flat item indices. indices: int [n] -> int64 [n, 5]."""
    return np.stack(np.unravel_index(np.asarray(indices, dtype=np.int64), FACTOR_SIZES), axis=1).astype(np.int64)


def render(factors, resolution: int = 64, supersample: int = 2) -> np.ndarray:
    """Render sprites from factor indices.

    Each pixel is the fraction of its ``supersample**2`` sub-pixel centres that fall inside the
    shape (binary images for ``supersample=1``).

    Parameters
    ----------
    factors : int array [n, 5]
        (shape, scale, orientation, x, y) indices.
    resolution : int
        Image side in pixels.
    supersample : int
        Sub-pixels per pixel side (anti-aliasing).

    Returns
    -------
    np.ndarray, float32 [n, 1, resolution, resolution] in [0, 1]
        Row index grows with ``y``, column index with ``x``.
    """
    f = np.asarray(factors, dtype=np.int64)
    if f.ndim != 2 or f.shape[1] != 5:
        raise ValueError(f"factors must have shape [n, 5], got {f.shape}")
    if f.size and ((f < 0).any() or (f >= np.asarray(FACTOR_SIZES)).any()):
        raise ValueError(f"factors must lie in [0, {FACTOR_SIZES}) per column")
    n, r, s = len(f), int(resolution), int(supersample)
    out = np.zeros((n, 1, r, r), dtype=np.float32)
    # every shape lies within EXTENT (image fraction) of its centre: render a w x w window only
    w = min(r, int(np.ceil(2 * EXTENT * r)) + 2)
    sub = ((np.arange(w * s, dtype=np.float64) + 0.5) / s)  # sub-pixel centres in window pixels
    chunk = max(1, 2**21 // (w * s) ** 2)
    for lo in range(0, n, chunk):
        ff = f[lo:lo + chunk]
        m = len(ff)
        size = BASE_SIZE * SCALES[ff[:, 1]] * r  # in pixels
        theta = 2 * np.pi * ff[:, 2] / FACTOR_SIZES[2]
        cx = (MARGIN + (1 - 2 * MARGIN) * ff[:, 3] / (FACTOR_SIZES[3] - 1)) * r
        cy = (MARGIN + (1 - 2 * MARGIN) * ff[:, 4] / (FACTOR_SIZES[4] - 1)) * r
        ox = np.clip(np.floor(cx).astype(np.int64) - w // 2, 0, r - w)
        oy = np.clip(np.floor(cy).astype(np.int64) - w // 2, 0, r - w)
        dx = ((sub[None, None, :] + (ox - cx)[:, None, None]) / size[:, None, None]).astype(np.float32)
        dy = ((sub[None, :, None] + (oy - cy)[:, None, None]) / size[:, None, None]).astype(np.float32)
        c = np.cos(theta).astype(np.float32)[:, None, None]
        sn = np.sin(theta).astype(np.float32)[:, None, None]
        # coordinates in the shape's frame (rotate the image by -theta)
        u = c * dx + sn * dy
        v = -sn * dx + c * dy
        inside = np.zeros((m, w * s, w * s), dtype=bool)
        sq, el, he = ff[:, 0] == 0, ff[:, 0] == 1, ff[:, 0] == 2
        if sq.any():
            inside[sq] = np.maximum(np.abs(u[sq]), np.abs(v[sq])) <= 1.0
        if el.any():
            inside[el] = (u[el] / 1.3) ** 2 + (v[el] / 0.65) ** 2 <= 1.0
        if he.any():
            # heart curve (x^2 + y^2 - 1)^3 - x^2 y^3 <= 0, lobes up (image rows grow downwards)
            hx, hy = u[he] / 0.95, -v[he] / 0.95 + 0.1
            inside[he] = (hx**2 + hy**2 - 1) ** 3 - hx**2 * hy**3 <= 0.0
        patch = inside.reshape(m, w, s, w, s).mean(axis=(2, 4), dtype=np.float32)
        rows = oy[:, None, None] + np.arange(w)[None, :, None]
        cols = ox[:, None, None] + np.arange(w)[None, None, :]
        out[lo + np.arange(m)[:, None, None], 0, rows, cols] = patch
    return out


class SpritesDataset(Dataset):
    """dSprites-like shapes, rendered on demand from factor indices.

    Parameters
    ----------
    resolution : int
        64 (as dSprites) or 32.
    supersample : int
        Anti-aliasing sub-pixels per side (1 gives binary images).
    """

    name = "sprites"
    factor_names = FACTOR_NAMES
    factor_sizes = FACTOR_SIZES
    likelihood = "bernoulli"

    def __init__(self, resolution: int = 64, supersample: int = 2):
        if resolution not in (32, 64):
            raise ValueError(f"sprites: resolution must be 32 or 64, got {resolution!r}")
        if not isinstance(supersample, int) or not 1 <= supersample <= 8:
            raise ValueError(f"sprites: supersample must be an int in [1, 8], got {supersample!r}")
        self.resolution = resolution
        self.supersample = supersample
        self.shape = (1, resolution, resolution)

    def __len__(self) -> int:
        return int(np.prod(FACTOR_SIZES))

    def params(self) -> dict:
        return {"resolution": self.resolution, "supersample": self.supersample}

    def get(self, indices):
        idx = self._check_indices(indices)
        factors = index_to_factors(idx)
        return render(factors, self.resolution, self.supersample), factors
