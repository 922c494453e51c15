"""DeepMind's 3D Shapes file (``3dshapes.h5``), read lazily with h5py.

The file holds ``images`` uint8 [480000, 64, 64, 3] and ``labels`` float [480000, 6] (floor hue,
wall hue, object hue, scale, shape, orientation as *values*). Labels are read once (a few tens of
MB) and each factor's float values become integer indices into its sorted distinct values;
images are read per request (h5py reads only the rows asked for) and returned channels-first in
[0, 1].
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from vaefrag.datasets import Dataset

FACTOR_NAMES = ["floor_hue", "wall_hue", "object_hue", "scale", "shape", "orientation"]


def _open(path: Path):
    import h5py

    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    try:
        return h5py.File(path, "r")
    except OSError as exc:
        raise ValueError(f"{path}: not a readable HDF5 file ({str(exc).splitlines()[0][:200]})") from None


def value_indices(values: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
    """Float factor values [N, F] -> int64 indices [N, F] into each column's sorted distinct values
    (values equal after rounding to 6 decimals count as one), and each column's level values."""
    values = np.asarray(values, dtype=np.float64)
    idx = np.empty(values.shape, np.int64)
    levels = []
    for j in range(values.shape[1]):
        rounded = np.round(values[:, j], 6)
        u, first = np.unique(rounded, return_index=True)
        idx[:, j] = np.searchsorted(u, rounded)
        levels.append(values[first, j])                 # the file's own value of each level
    return idx, levels


class Shapes3D(Dataset):
    """3D Shapes from DeepMind's h5 file (see module docstring).

    Parameters
    ----------
    path : str
        The h5 file (datasets ``images`` [N, H, W, 3] uint8 and ``labels`` [N, 6] float).
    """

    name = "shapes3d"
    file_param = "path"
    likelihood = "bernoulli"

    def __init__(self, path: str = ""):
        if not path:
            raise ValueError("shapes3d: parameter 'path' (the 3dshapes.h5 file) is required")
        self.path = str(path)
        p = Path(path)
        self._file = _open(p)
        try:
            for key in ("images", "labels"):
                if key not in self._file:
                    raise ValueError(f"{p}: missing dataset {key!r} (has {sorted(self._file)}); not a 3D Shapes file")
            self._images = self._file["images"]
            labels = self._file["labels"]
            if self._images.ndim != 4 or labels.ndim != 2 or len(labels) != len(self._images):
                raise ValueError(f"{p}: expected 'images' [N, H, W, C] and 'labels' [N, F], got "
                                 f"{list(self._images.shape)} and {list(labels.shape)}")
            try:
                values = labels[()]
            except OSError as exc:
                raise ValueError(f"{p}: dataset 'labels' cannot be read ({str(exc).splitlines()[0][:200]}); "
                                 "is the file truncated?") from None
        except BaseException:
            self._file.close()
            raise
        if not np.isfinite(values).all():
            raise ValueError(f"{p}: dataset 'labels' has non-finite values")
        self._factors, self.levels = value_indices(values)
        f = values.shape[1]
        self.factor_names = FACTOR_NAMES if f == len(FACTOR_NAMES) else [f"factor{i}" for i in range(f)]
        self.factor_sizes = [len(u) for u in self.levels]
        n, h, w, c = self._images.shape
        self.shape = (int(c), int(h), int(w))
        self._scale = 1.0 / 255.0 if self._images.dtype == np.uint8 else 1.0

    def __len__(self) -> int:
        return int(self._images.shape[0])

    def params(self) -> dict:
        return {"path": self.path}

    def get(self, indices):
        idx = self._check_indices(indices)
        uniq, inverse = np.unique(idx, return_inverse=True)         # h5py wants increasing indices
        try:
            rows = self._images[uniq] if len(uniq) else np.zeros((0,) + tuple(self._images.shape[1:]), np.uint8)
        except OSError as exc:
            raise ValueError(f"{self.path}: dataset 'images' cannot be read ({str(exc).splitlines()[0][:200]}); "
                             "is the file truncated?") from None
        x = np.ascontiguousarray(np.moveaxis(rows[inverse], -1, 1), dtype=np.float32) * np.float32(self._scale)
        return x, self._factors[idx]
