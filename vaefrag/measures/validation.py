"""Input validation and device / dtype resolution shared by the measures."""
from __future__ import annotations


import numpy as np
import torch


def _as_real_array(value, name: str) -> np.ndarray:
    arr = np.asarray(value)
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer)):
        raise ValueError(f"{name}: expected a real numeric array, got dtype {arr.dtype}")
    if np.issubdtype(arr.dtype, np.bool_):
        raise ValueError(f"{name}: expected a real numeric array, got dtype bool")
    return arr


def _check_posteriors(mu, logvar, name: str = "mu", ndim: int = 3, min_points: int = 2):
    """Validate a (mu, logvar) pair; returns float64-safe numpy arrays of equal shape."""
    lv_name = "logvar" if name == "mu" else f"{name}_logvar"
    mu = _as_real_array(mu, name)
    logvar = _as_real_array(logvar, lv_name)
    if mu.ndim != ndim:
        raise ValueError(f"{name}: expected {ndim} dimensions, got shape {mu.shape}")
    if mu.shape != logvar.shape:
        raise ValueError(f"{lv_name}: expected the shape of {name} {mu.shape}, got {logvar.shape}")
    if 0 in mu.shape:
        raise ValueError(f"{name}: expected no empty axis, got shape {mu.shape}")
    n_points = mu.shape[-2]
    if n_points < min_points:
        raise ValueError(f"{name}: expected at least {min_points} points on axis -2, got {n_points}")
    for arr, nm in ((mu, name), (logvar, lv_name)):
        if not np.all(np.isfinite(arr)):
            bad = int(np.size(arr) - np.count_nonzero(np.isfinite(arr)))
            raise ValueError(f"{nm}: expected finite values, found {bad} NaN/inf")
    return mu, logvar


def _check_factors(factors, n_points: int) -> np.ndarray:
    arr = np.asarray(factors)
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim != 2:
        raise ValueError(f"factors: expected int labels shaped [N, F], got shape {arr.shape}")
    if not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(f"factors: expected integer labels, got dtype {arr.dtype}")
    if arr.shape[0] != n_points:
        raise ValueError(f"factors: expected {n_points} rows (one per fingerprint point), got {arr.shape[0]}")
    return arr


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """'auto' -> CUDA when available, else CPU; anything else is passed to torch.device."""
    if isinstance(device, torch.device):
        return device
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device: CUDA was asked for ({device!r}) but is not available")
    return dev


def _resolve_dtype(dtype) -> torch.dtype:
    table = {"float32": torch.float32, "float64": torch.float64, torch.float32: torch.float32,
             torch.float64: torch.float64, np.float32: torch.float32, np.float64: torch.float64}
    if dtype not in table:
        raise ValueError(f"dtype: expected 'float32' or 'float64', got {dtype!r}")
    return table[dtype]
