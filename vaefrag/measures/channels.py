"""Channel fingerprints and the pairwise NMI / VI in blocked GEMM form (see the package docstring)."""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np
import torch

from vaefrag.measures.fingerprints import _GaussianRows, _LabelRows
from vaefrag.measures.tiles import DEFAULT_MEMORY_BUDGET, _run_tile, tiled_joint
from vaefrag.measures.validation import (_as_real_array, _check_factors, _check_posteriors,
                                         _resolve_dtype, resolve_device)

Progress = Callable[..., None]

#: largest channel tile computed in one piece; larger sets are tiled
DEFAULT_BLOCK_CHANNELS = 2048


# --------------------------------------------------------------------------- channel bookkeeping


def channel_ids(n_models: int, n_latents: int) -> np.ndarray:
    """[K*L, 2] int table of (model, latent) for flat channel numbers c = model * L + latent."""
    models, latents = np.divmod(np.arange(n_models * n_latents), n_latents)
    return np.stack([models, latents], axis=1)


def split_channels(mu, logvar):
    """Posteriors of K models [K, N, L] -> K*L one-dimensional channels [K*L, N, 1] (model-major)."""
    mu, logvar = _check_posteriors(mu, logvar, ndim=3, min_points=1)
    k, n, l_ = mu.shape
    return (np.ascontiguousarray(mu.transpose(0, 2, 1).reshape(k * l_, n, 1)),
            np.ascontiguousarray(logvar.transpose(0, 2, 1).reshape(k * l_, n, 1)))


def group_latents(mu, logvar, channels: Sequence) -> tuple[np.ndarray, np.ndarray]:
    """Group chosen latents into one multi-dimensional channel.

    Parameters
    ----------
    mu, logvar : [N, L] (one model) or [K, N, L] (several models)
    channels : latent indices (for [N, L]) or (model, latent) pairs (for [K, N, L]).

    Returns
    -------
    mu_g, logvar_g : [N, len(channels)]. Grouping dimensions multiplies fingerprints, so the
    group is the joint channel (U, V, ...) of DESIGN §2.
    """
    mu = _as_real_array(mu, "mu")
    logvar = _as_real_array(logvar, "logvar")
    if mu.shape != logvar.shape or mu.ndim not in (2, 3):
        raise ValueError(f"mu, logvar: expected equal shapes [N, L] or [K, N, L], got {mu.shape}, {logvar.shape}")
    if len(channels) == 0:
        raise ValueError("channels: expected at least one latent, got an empty selection")
    idx = np.asarray(channels, dtype=int)
    if mu.ndim == 2:
        if idx.ndim != 1 or idx.min() < 0 or idx.max() >= mu.shape[1]:
            raise ValueError(f"channels: expected latent indices in [0, {mu.shape[1]}), got {list(channels)}")
        return mu[:, idx], logvar[:, idx]
    if idx.ndim != 2 or idx.shape[1] != 2:
        raise ValueError("channels: expected (model, latent) pairs for posteriors shaped [K, N, L]")
    k, _, l_ = mu.shape
    if idx[:, 0].min() < 0 or idx[:, 0].max() >= k or idx[:, 1].min() < 0 or idx[:, 1].max() >= l_:
        raise ValueError(f"channels: expected models in [0, {k}) and latents in [0, {l_}), got {idx.tolist()}")
    return mu[idx[:, 0], :, idx[:, 1]].T.copy(), logvar[idx[:, 0], :, idx[:, 1]].T.copy()

# --------------------------------------------------------------------------- channel comparison


@dataclass
class ChannelComparison:
    """Pairwise comparison of channels (all values in bits; NMI dimensionless).

    info [M], self_info [M] (I(U;U')), informative [M] (info >= threshold),
    nmi [M, M2], vi [M, M2], mutual [M, M2] (I(U;V)); M2 = M unless `other` was given.
    NMI is NaN in rows / columns of uninformative channels (0/0, undefined).
    factor_info [F], factor_nmi [M, F], factor_vi [M, F] when factors were given.
    """

    info: np.ndarray
    self_info: np.ndarray
    informative: np.ndarray
    nmi: np.ndarray
    vi: np.ndarray
    mutual: np.ndarray
    info_other: np.ndarray
    self_info_other: np.ndarray
    informative_other: np.ndarray
    factor_info: np.ndarray | None = None
    factor_nmi: np.ndarray | None = None
    factor_vi: np.ndarray | None = None
    timings: dict = field(default_factory=dict)
    #: with ``resample_weights`` [R, N]: "joint" [R, M, M2], "info_a", "selfjoint_a" [R, M],
    #: "info_b", "selfjoint_b" [R, M2] (bits), the informations under each reweighting of the points
    #: (`resampled_measures` turns one into NMI / VI)
    resampled: dict | None = None


def _measures_from_joint(info_a, selfjoint_a, info_b, selfjoint_b, joint, ok_a, ok_b):
    """mutual information, NMI (NaN where undefined) and VI from joint informations."""
    self_a = 2.0 * info_a - selfjoint_a
    self_b = 2.0 * info_b - selfjoint_b
    mutual = info_a[:, None] + info_b[None, :] - joint
    with np.errstate(divide="ignore", invalid="ignore"):
        nmi = mutual / np.sqrt(np.outer(np.clip(self_a, 0, None), np.clip(self_b, 0, None)))
    nmi[~ok_a, :] = np.nan
    nmi[:, ~ok_b] = np.nan
    vi = 2.0 * joint - selfjoint_a[:, None] - selfjoint_b[None, :]
    return mutual, nmi, vi, self_a, self_b


def resampled_measures(resampled: dict, r: int, info_threshold: float = 0.01):
    """(info [M], nmi [M, M2], vi [M, M2]) of resample ``r`` of `ChannelComparison.resampled`;
    NMI is NaN for channels below ``info_threshold`` in that resample, as in `compare_channels`."""
    ia, sa = np.asarray(resampled["info_a"][r], np.float64), np.asarray(resampled["selfjoint_a"][r], np.float64)
    ib, sb = np.asarray(resampled["info_b"][r], np.float64), np.asarray(resampled["selfjoint_b"][r], np.float64)
    joint = np.asarray(resampled["joint"][r], np.float64)
    _, nmi, vi, _, _ = _measures_from_joint(ia, sa, ib, sb, joint, ia >= info_threshold, ib >= info_threshold)
    return ia, nmi, vi


def compare_channels(mu, logvar, factors=None, other=None, *, info_threshold: float = 0.01,
                     device="auto", dtype="float32", block_points: int | None = None,
                     block_channels: int | None = None,
                     memory_budget: int = DEFAULT_MEMORY_BUDGET,
                     progress: Progress | None = None, map_tiles=None,
                     resample_weights=None) -> ChannelComparison:
    """Information, NMI and VI between all channels (and with ground-truth factors).

    Parameters
    ----------
    mu, logvar : [M, N, d] posteriors of M channels (d dimensions each) on N fingerprint points.
    factors : int labels [N, F] (or [N]), optional: each factor is a hard-clustering channel.
    other : (mu2, logvar2) [M2, N, d2], optional: compare with a second channel set instead
        (rectangular [M, M2] result).
    info_threshold : channels with I(X;U) below this (bits) are marked uninformative; their NMI is NaN.
    device : "auto" (CUDA when available), "cpu", "cuda", ...;  dtype : "float32" or "float64".
    block_points, block_channels (None: DEFAULT_BLOCK_CHANNELS), memory_budget : blocking;
        results do not depend on them.
    progress : optional callable(done, total, message).
    map_tiles : optional runner of channel tiles of at most `block_channels` channels
        (`tiles.map_tiles_here` by default when tiling; `vaefrag.distributed.dask_tile_map`
        runs them on a Dask cluster). Given, the comparison is always tiled.
    resample_weights : [R, N] non-negative weights of the points, optional: in the same pass,
        the informations with the outer average over points reweighted by each row (e.g.
        multinomial counts of a bootstrap); returned in ``resampled``. The inner sums (the
        posterior-overlap density at each point) keep all N points (see `structure.resampled_stability`).
    """
    t0 = time.perf_counter()
    mu, logvar = _check_posteriors(mu, logvar)
    if not (np.isfinite(info_threshold) and info_threshold >= 0):
        raise ValueError(f"info_threshold: expected a finite number >= 0, got {info_threshold}")
    block_channels = DEFAULT_BLOCK_CHANNELS if block_channels is None else block_channels
    if block_channels < 1:
        raise ValueError(f"block_channels: expected >= 1, got {block_channels}")
    if block_points is not None and block_points < 1:
        raise ValueError(f"block_points: expected >= 1, got {block_points}")
    n = mu.shape[1]
    if resample_weights is not None:
        resample_weights = np.asarray(resample_weights, dtype=np.float64)
        if resample_weights.ndim != 2 or resample_weights.shape[1] != n or not np.all(np.isfinite(resample_weights)) \
                or np.any(resample_weights < 0) or np.any(resample_weights.sum(1) <= 0):
            raise ValueError(f"resample_weights: expected finite non-negative weights [R, {n}] with positive row "
                             f"sums, got shape {resample_weights.shape}")
    dev, dt = resolve_device(device), _resolve_dtype(dtype)
    labels = None if factors is None else _check_factors(factors, n)
    if other is not None:
        if not isinstance(other, (tuple, list)) or len(other) != 2:
            raise ValueError("other: expected a pair (mu2, logvar2)")
        mu2, logvar2 = _check_posteriors(other[0], other[1], "mu2")
        if mu2.shape[1] != n:
            raise ValueError(f"other: expected {n} fingerprint points (those of mu), got {mu2.shape[1]}")
    t_prep = time.perf_counter()

    m = mu.shape[0]
    m2 = m if other is None else mu2.shape[0]
    if m <= block_channels and m2 <= block_channels and map_tiles is None:
        rows = _GaussianRows(mu, logvar, dev, dt)
        rows2 = None if other is None else _GaussianRows(mu2, logvar2, dev, dt)
        label_rows = [] if labels is None else [_LabelRows(labels, dev, dt)]
        with torch.no_grad():
            res = _run_tile(rows, rows2, label_rows, block_points, progress, memory_budget, weights=resample_weights)
        joint, info_a, sj_a, info_b, sj_b = res.joint, res.info_a, res.selfjoint_a, res.info_b, res.selfjoint_b
        extra, resampled = res.extra, res.resampled
    else:
        options = {"device": device, "dtype": dt, "block_points": block_points, "memory_budget": memory_budget}
        if resample_weights is not None:
            options["weights"] = resample_weights
        joint, info_a, sj_a, info_b, sj_b, extra, resampled = tiled_joint(
            mu, logvar, None if other is None else (mu2, logvar2), labels, block_channels, options,
            progress, map_tiles)
    t_pairs = time.perf_counter()

    ok_a = info_a >= info_threshold
    ok_b = info_b >= info_threshold if other is not None else ok_a
    mutual, nmi, vi, self_a, self_b = _measures_from_joint(info_a, sj_a, info_b, sj_b, joint, ok_a, ok_b)
    result = ChannelComparison(info_a, self_a, ok_a, nmi, vi, mutual, info_b, self_b, ok_b)
    result.resampled = resampled
    if labels is not None:
        f_joint, f_info = extra[0]
        f_ok = f_info > 1e-12
        _, f_nmi, f_vi, _, _ = _measures_from_joint(info_a, sj_a, f_info, f_info, f_joint, ok_a, f_ok)
        result.factor_info, result.factor_nmi, result.factor_vi = f_info, f_nmi, f_vi
    result.timings = {"prepare": t_prep - t0, "pairs": t_pairs - t_prep, "total": time.perf_counter() - t0}
    return result
