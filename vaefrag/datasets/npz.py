"""The user's own data from an ``.npz`` file: ``x`` plus optional ``factors`` and ``factor_names``.

``x`` is [N, C, H, W], [N, H, W, C] or [N, H, W] (images) or [N, D] (vectors), numeric and finite;
channels-last images are transposed and uint8 images scaled to [0, 1] (`images_channels_first`).
Images whose values lie in [0, 1] get a Bernoulli likelihood, anything else a Gaussian one. ``factors`` is an
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
    if arr.dtype.kind == "f" and arr.dtype.itemsize > 4 and arr.size:
        big = float(np.abs(arr).max())
        if big > float(np.finfo(np.float32).max):
            raise ValueError(f"{path}: field {key!r} has values that overflow float32 (max |value| {big:.3g} > "
                             f"{float(np.finfo(np.float32).max):.3g}); rescale them")
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


X_LAYOUTS = ("auto", "nchw", "nhwc")
CHANNELS = (1, 3, 4)


def images_channels_first(where, x: np.ndarray, layout: str, notes: list) -> np.ndarray:
    """Fingerprint images as [N, C, H, W] float32 in [0, 1] when they were uint8.

    ``layout`` "auto" reads [N, H, W, C] as channels-last when axis 3 has 1, 3 or 4 entries and
    axis 1 does not; "nchw" / "nhwc" say it. Raises naming the axis when it cannot tell.
    """
    if layout not in X_LAYOUTS:
        raise ValueError(f"x_layout: expected one of {X_LAYOUTS}, got {layout!r}")
    if x.dtype == np.uint8:
        x = x.astype(np.float32) / 255.0
        notes.append("x: uint8 images scaled to [0, 1] (divided by 255)")
    if x.ndim == 3:
        if layout == "nhwc":
            raise ValueError(f"{where}: field 'x' has shape {x.shape} [N, H, W]; it has no channel axis to be channels-last")
        x = x[:, None]
    elif x.ndim == 4:
        first, last = x.shape[1] in CHANNELS, x.shape[3] in CHANNELS
        if layout == "nhwc" or (layout == "auto" and last and not first):
            x = np.ascontiguousarray(np.transpose(x, (0, 3, 1, 2)))
            notes.append(f"x: channels-last images [N, H, W, C] transposed to channels-first {list(x.shape)}")
        elif layout == "auto" and not first:
            raise ValueError(f"{where}: field 'x' has shape {x.shape}: cannot tell the channel axis (axis 1 for "
                             f"channels-first or axis 3 for channels-last must have 1, 3 or 4 entries); "
                             "pass x_layout / --x-layout nchw or nhwc")
    return x.astype(np.float32)


class NpzDataset(Dataset):
    """Inputs (and optional factor labels) from the user's npz file.

    Parameters
    ----------
    path : str
        Path of the npz file with key ``x`` and optional ``factors``, ``factor_names``.
    """

    name = "npz"
    file_param = "path"

    def __init__(self, path: str = ""):
        if not path:
            raise ValueError("npz: parameter 'path' (the npz file) is required")
        self.path = str(path)
        data = load_npz(path, required=("x",), optional=("factors", "factor_names"))
        x = check_numeric(path, "x", data["x"], ndims=(2, 3, 4))
        if x.shape[0] < 2:
            raise ValueError(f"{path}: field 'x' must hold at least 2 items, got shape {x.shape}")
        self.notes: list[str] = []
        # channels-last only when plain (axis 3 is a channel count, axis 1 is not); else channels-first
        last = x.ndim == 4 and x.shape[3] in CHANNELS and x.shape[1] not in CHANNELS
        x = x.astype(np.float32) if x.ndim == 2 else \
            images_channels_first(path, x, "nhwc" if last else "nchw", self.notes)
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
