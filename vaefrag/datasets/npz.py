"""The user's own data from an ``.npz`` file: ``x`` plus optional ``factors`` and ``factor_names``.

``x`` is [N, C, H, W] or [N, H, W] (images) or [N, D] (vectors), numeric and finite. Images whose
values lie in [0, 1] get a Bernoulli likelihood, anything else a Gaussian one. ``factors`` is an
integer array [N, F] (>= 0) and ``factor_names`` F strings. The file is never unpickled.
"""
from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from vaefrag.datasets import Dataset


def load_npz(path, required=(), optional=()) -> dict[str, np.ndarray]:
    """Read named arrays from an npz file without unpickling.

    Raises
    ------
    FileNotFoundError
        If the file does not exist.
    ValueError
        Naming the file (and the key) when it is not a readable npz, a required key is missing or
        an array needs pickle.
    """
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"{path}: is a directory, expected an .npz file")
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    out = {}
    try:
        with np.load(path, allow_pickle=False) as data:
            keys = set(data.files)
            for key in required:
                if key not in keys:
                    raise ValueError(f"{path}: missing key {key!r} (has {sorted(keys)})")
            for key in (*required, *optional):
                if key in keys:
                    try:
                        out[key] = data[key]
                    except ValueError as exc:
                        raise ValueError(f"{path}: key {key!r} cannot be read without pickle ({exc})") from None
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        raise ValueError(f"{path}: not a readable npz file ({exc})") from None
    except ValueError as exc:
        if str(exc).startswith(str(path)):
            raise
        raise ValueError(f"{path}: not a readable npz file ({exc})") from None
    return out


def check_numeric(path, key: str, arr: np.ndarray, ndims=None, integer: bool = False) -> np.ndarray:
    """Validate an array read from ``path[key]``: numeric dtype, allowed ndim, finite values."""
    if arr.dtype.kind not in ("iub" if integer else "iufb"):
        kind = "integer" if integer else "numeric"
        raise ValueError(f"{path}: field {key!r} must be {kind}, got dtype {arr.dtype}")
    if ndims is not None and arr.ndim not in ndims:
        raise ValueError(f"{path}: field {key!r} must have {' or '.join(map(str, ndims))} dimensions, got shape {arr.shape}")
    if arr.dtype.kind == "f" and not np.isfinite(arr).all():
        raise ValueError(f"{path}: field {key!r} has non-finite values")
    return arr


def check_factors(path, factors, factor_names, n: int):
    """Validate optional factor labels [n, F] and names; returns (int64 array | None, list of str)."""
    if factors is None:
        if factor_names is not None and len(factor_names):
            raise ValueError(f"{path}: field 'factor_names' given without 'factors'")
        return None, []
    factors = check_numeric(path, "factors", np.asarray(factors), ndims=(1, 2), integer=True)
    if factors.ndim == 1:
        factors = factors[:, None]
    if factors.shape[0] != n:
        raise ValueError(f"{path}: field 'factors' has {factors.shape[0]} rows, expected {n}")
    if (factors < 0).any():
        raise ValueError(f"{path}: field 'factors' must be >= 0")
    if factor_names is None:
        names = [f"factor{i}" for i in range(factors.shape[1])]
    else:
        fn = np.asarray(factor_names)
        if fn.dtype.kind not in "US" or fn.ndim != 1 or len(fn) != factors.shape[1]:
            raise ValueError(f"{path}: field 'factor_names' must be {factors.shape[1]} strings, got {fn.dtype} {fn.shape}")
        names = [str(s) for s in fn.tolist()]
    return factors.astype(np.int64), names


class NpzDataset(Dataset):
    """Inputs (and optional factor labels) from the user's npz file.

    Parameters
    ----------
    path : str
        Path of the npz file with key ``x`` and optional ``factors``, ``factor_names``.
    """

    name = "npz"

    def __init__(self, path: str = ""):
        if not path:
            raise ValueError("npz: parameter 'path' (the npz file) is required")
        self.path = str(path)
        data = load_npz(path, required=("x",), optional=("factors", "factor_names"))
        x = check_numeric(path, "x", data["x"], ndims=(2, 3, 4))
        if x.shape[0] < 2:
            raise ValueError(f"{path}: field 'x' must hold at least 2 items, got shape {x.shape}")
        if x.ndim == 3:
            x = x[:, None]
        x = x.astype(np.float32)
        factors, names = check_factors(path, data.get("factors"), data.get("factor_names"), len(x))
        self._x, self._y = x, factors
        self.shape = tuple(x.shape[1:])
        self.factor_names = names
        self.factor_sizes = [] if factors is None else [int(v) + 1 for v in factors.max(axis=0)]
        in_unit = float(x.min()) >= 0.0 and float(x.max()) <= 1.0
        self.likelihood = "bernoulli" if (x.ndim == 4 and in_unit) else "gaussian"

    def __len__(self) -> int:
        return len(self._x)

    def params(self) -> dict:
        return {"path": self.path}

    def get(self, indices):
        idx = self._check_indices(indices)
        return self._x[idx], (None if self._y is None else self._y[idx])
