"""scikit-learn's bundled 8x8 handwritten digits (1,797 real images; factor = the digit)."""
from __future__ import annotations

import numpy as np

from vaefrag.datasets import Dataset


class DigitsDataset(Dataset):
    """``sklearn.datasets.load_digits`` scaled to [0, 1], shape [1, 8, 8]; factor ``digit`` (10 values)."""

    name = "digits"
    shape = (1, 8, 8)
    factor_names = ["digit"]
    factor_sizes = [10]
    likelihood = "bernoulli"

    def __init__(self):
        from sklearn.datasets import load_digits

        data = load_digits()
        self._x = (data.images.astype(np.float32) / 16.0)[:, None]
        self._y = data.target.astype(np.int64)[:, None]

    def __len__(self) -> int:
        return len(self._x)

    def params(self) -> dict:
        return {}

    def get(self, indices):
        idx = self._check_indices(indices)
        return self._x[idx], self._y[idx]
