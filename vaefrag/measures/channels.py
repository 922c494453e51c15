"""Channel fingerprints and the pairwise NMI / VI in blocked GEMM form (see the package docstring)."""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np
import torch

from vaefrag.measures.validation import (_as_real_array, _check_factors, _check_posteriors,
                                         _resolve_dtype, resolve_device)

Progress = Callable[..., None]

#: working-memory budget (bytes) for one block of fingerprint points
DEFAULT_MEMORY_BUDGET = 512 * 2**20
#: on a CPU, a block of fingerprint rows is kept about this small so its passes run in cache
CPU_BLOCK_BYTES = 48 * 2**20
#: largest channel tile computed in one piece; larger sets are tiled
DEFAULT_BLOCK_CHANNELS = 2048
#: symmetric products of fewer than twice this many channels are computed whole (small GEMMs
#: lose more speed than the left-out quarter saves)
_TRIANGLE_MIN_HALF = 64
#: log-variances are clipped to this range after per-channel centering, so exp() never overflows
_LOGVAR_CLIP = 60.0

# --------------------------------------------------------------------------- fingerprints


def bhattacharyya_torch(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """Differentiable Bhattacharyya coefficients.

    Parameters
    ----------
    mu, logvar : tensors [..., N, d]

    Returns
    -------
    bc : tensor [..., N, N], BC(i, j) = exp(-D_ij), 1 on the diagonal.
    """
    mi, mj = mu.unsqueeze(-2), mu.unsqueeze(-3)           # [..., N, 1, d], [..., 1, N, d]
    li, lj = logvar.unsqueeze(-2), logvar.unsqueeze(-3)
    log_s = torch.logaddexp(li, lj) - math.log(2.0)       # ln((v_i + v_j) / 2)
    dist = 0.125 * (mi - mj).square() * torch.exp(-log_s) + 0.5 * (log_s - 0.5 * (li + lj))
    return torch.exp(-dist.sum(-1).clamp_min(0.0))


def bhattacharyya(mu, logvar) -> np.ndarray:
    """Bhattacharyya coefficients between all pairs of diagonal Gaussian posteriors.

    Parameters
    ----------
    mu, logvar : arrays [..., N, d]

    Returns
    -------
    bc : float64 array [..., N, N]
    """
    mu = _as_real_array(mu, "mu")
    logvar = _as_real_array(logvar, "logvar")
    if mu.ndim < 2:
        raise ValueError(f"mu: expected shape [..., N, d], got {mu.shape}")
    _check_posteriors(mu, logvar, ndim=mu.ndim, min_points=1)
    with torch.no_grad():
        bc = bhattacharyya_torch(torch.as_tensor(mu, dtype=torch.float64),
                                 torch.as_tensor(logvar, dtype=torch.float64))
    return bc.numpy()


def info_from_bc_torch(bc: torch.Tensor) -> torch.Tensor:
    """I(X;U) in bits from a fingerprint [..., N, N] -> [...]; differentiable."""
    n = bc.shape[-1]
    return -torch.log2(bc.mean(-1)).mean(-1) if n else bc.sum((-1, -2))


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


# --------------------------------------------------------------------------- sources of fingerprint rows


class _GaussianRows:
    """Produces rows BC[:, I, :] of M channels' fingerprints for a block I of points."""

    def __init__(self, mu: np.ndarray, logvar: np.ndarray, device, dtype):
        # BC is invariant to rescaling a channel: centre each dimension's log-variance (and scale
        # its means to match) so exp() stays in range for log-variances far from 0.
        shift = np.median(logvar, axis=1, keepdims=True)                   # [M, 1, d]
        lv = np.clip(logvar - shift, -_LOGVAR_CLIP, _LOGVAR_CLIP)
        mu = mu * np.exp(-0.5 * shift)
        t = lambda a: torch.as_tensor(np.ascontiguousarray(a.transpose(2, 0, 1)), dtype=dtype, device=device)
        self.mu, self.lv = t(mu), t(lv)                                    # [d, M, N]
        self.var = torch.exp(self.lv)
        self.root4 = torch.exp(0.25 * self.lv)                             # var^(1/4)
        self.device, self.dtype = device, dtype
        self.n_channels, self.n_points = mu.shape[0], mu.shape[1]
        self.dims = mu.shape[2]
        self._scratch = None                                               # [1 or 2, B, M, N]

    def rows(self, start: int, stop: int, out: torch.Tensor) -> torch.Tensor:
        """BC[start:stop] written into `out` [B, M, N] (B = stop - start); returns `out`.

        Per dimension, BC = exp(-D) = sqrt(2) (v_i v_j)^(1/4) (v_i + v_j)^(-1/2) exp(-dmu^2 / (4 (v_i + v_j))),
        evaluated with in-place passes and no logarithm. The scratch buffers are kept between
        calls: a fresh block-sized tensor per call costs page faults that outweigh the arithmetic.
        """
        b = out.shape[0]
        if self._scratch is None or self._scratch.shape[1] < b or self._scratch.shape[2:] != out.shape[1:]:
            self._scratch = torch.empty((min(self.dims, 2), *out.shape), dtype=self.dtype, device=self.device)
        q = self._scratch[0, :b]
        for k in range(self.dims):
            mu, var, root4 = self.mu[k], self.var[k], self.root4[k]         # [M, N]
            mi, vi, ri = (a[:, start:stop].T.unsqueeze(-1) for a in (mu, var, root4))  # [B, M, 1]
            term = out if k == 0 else self._scratch[1, :b]
            torch.add(vi, var, out=q).rsqrt_()                             # (v_i + v_j)^(-1/2)
            torch.sub(mi, mu, out=term)
            term.mul_(q).square_().mul_(-0.25).exp_()                      # exp(-dmu^2 / (4 (v_i + v_j)))
            term.mul_(q).mul_(root4).mul_(ri * math.sqrt(2.0))
            if k > 0:
                out.mul_(term)
        return out.clamp_(max=1.0)


class _LabelRows:
    """Rows of hard-clustering fingerprints BC_C(i, j) = 1[c_i = c_j] for F factors."""

    def __init__(self, labels: np.ndarray, device, dtype):
        self.labels = torch.as_tensor(labels.T.astype(np.int64), device=device)   # [F, N]
        self.device, self.dtype = device, dtype
        self.n_channels, self.n_points = self.labels.shape

    def rows(self, start: int, stop: int, out: torch.Tensor) -> torch.Tensor:
        li = self.labels[:, start:stop].T.unsqueeze(-1)                    # [B, F, 1]
        return out.copy_(li == self.labels)                                # [B, F, N]


def _block_size(n_points: int, n_rows: int, n_cols: int, budget: int, itemsize: int, device) -> int:
    """Points per block. On a CPU the fingerprint rows of a block should stay in cache (the
    elementwise passes are memory-bound; the batched GEMM is as fast for small batches), on a GPU
    large batches pay, up to the memory budget."""
    per_point = itemsize * (3 * n_points * (n_rows + n_cols) + n_rows * n_cols)
    if torch.device(device).type == "cpu":
        budget = min(budget, CPU_BLOCK_BYTES)
    return int(max(1, min(n_points, budget // max(per_point, 1))))


@dataclass
class TileResult:
    """Sums over fingerprint points for one tile (rows A x columns B); bits after `finish`.

    joint : [Ma, Mb] I(X; U_a, U_b);  info_*: [M*] I(X;U);  selfjoint_*: [M*] I(X; U, U').
    """

    joint: np.ndarray
    info_a: np.ndarray
    selfjoint_a: np.ndarray
    info_b: np.ndarray
    selfjoint_b: np.ndarray
    extra: list = field(default_factory=list)   # joint information with extra column sets


def _log2_products(a: torch.Tensor, b: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
    """sum_i log2(sum_j a[i, :, j] b[i, :, j]) for a [B, Ma, N], b [B, Mb, N]: float64 [Ma, Mb]."""
    return torch.bmm(a, b.transpose(1, 2), out=out).log2_().sum(0, dtype=torch.float64)


def _log2_products_symmetric(a: torch.Tensor, out: torch.Tensor, acc: torch.Tensor) -> None:
    """acc += _log2_products(a, a) for a [B, M, N], with three quarters of the multiply-adds.

    The product is symmetric in the channels, so the block of the first half of the rows with
    the second half of the columns is left out: `acc[:h, h:]` is not updated (the caller mirrors
    the lower triangle at the end). `out` [B, M, M] is scratch.
    """
    m = a.shape[1]
    h = m // 2
    if h < _TRIANGLE_MIN_HALF:
        acc += _log2_products(a, a, out)
        return
    left = out.view(-1)[: out.shape[0] * m * h].view(out.shape[0], m, h)
    acc[:, :h] += _log2_products(a, a[:, :h], left)
    low = out.view(-1)[: out.shape[0] * (m - h) ** 2].view(out.shape[0], m - h, m - h)
    acc[h:, h:] += _log2_products(a[:, h:], a[:, h:], low)


def _run_tile(rows_a, rows_b, extra_cols, block_points, progress, memory_budget, label="") -> TileResult:
    """One pass over blocks of fingerprint points: I(X;U_a,U_b) for all a in A, b in B.

    rows_b is None means B = A (the symmetric case: one fingerprint computation, and the
    self-joint information read off the diagonal of the pair matrix).
    """
    n = rows_a.n_points
    ma = rows_a.n_channels
    mb = ma if rows_b is None else rows_b.n_channels
    m_extra = sum(c.n_channels for c in extra_cols)
    dev, dt = rows_a.device, rows_a.dtype
    itemsize = torch.finfo(dt).bits // 8
    if block_points is None:
        block_points = _block_size(n, ma, (0 if rows_b is None else mb) + m_extra, memory_budget, itemsize, dev)
    block_points = min(block_points, n)
    zeros = lambda *s: torch.zeros(*s, dtype=torch.float64, device=dev)
    joint, info_a, self_a = zeros(ma, mb), zeros(ma), zeros(ma)
    info_b, self_b = zeros(mb), zeros(mb)
    extra = [zeros(ma, c.n_channels) for c in extra_cols]
    extra_info = [zeros(c.n_channels) for c in extra_cols]
    # block-sized buffers, reused by every block (the last one may use a leading slice)
    empty = lambda *s: torch.empty(block_points, *s, dtype=dt, device=dev)
    buf_a, prod = empty(ma, n), empty(ma, mb)
    buf_b = None if rows_b is None else empty(mb, n)
    bufs_extra = [(empty(c.n_channels, n), empty(ma, c.n_channels)) for c in extra_cols]
    blocks = range(0, n, block_points)
    for done, start in enumerate(blocks):
        stop = min(n, start + block_points)
        size = stop - start
        a = rows_a.rows(start, stop, buf_a[:size])                         # [B, Ma, N]
        info_a += torch.log2(a.sum(-1)).sum(0).double()
        if rows_b is None:
            b = a
        else:
            b = rows_b.rows(start, stop, buf_b[:size])
            info_b += torch.log2(b.sum(-1)).sum(0).double()
            self_a += torch.log2(torch.linalg.vecdot(a, a)).sum(0).double()
            self_b += torch.log2(torch.linalg.vecdot(b, b)).sum(0).double()
        if rows_b is None:
            _log2_products_symmetric(a, prod[:size], joint)
        else:
            joint += _log2_products(a, b, prod[:size])                    # sum_i log2(N S_i[a, b])
        for cols, acc, acc_info, (buf_c, prod_c) in zip(extra_cols, extra, extra_info, bufs_extra):
            c = cols.rows(start, stop, buf_c[:size])
            acc_info += torch.log2(c.sum(-1)).sum(0).double()
            acc += _log2_products(a, c, prod_c[:size])
        if progress is not None:
            progress(done + 1, len(blocks), label)
    log_n = math.log2(n)
    to_bits = lambda s: (log_n - s / n).cpu().numpy()     # -(1/N) sum_i log2((1/N) sum_j ...)
    joint_bits = to_bits(joint)
    if rows_b is None:
        joint_bits = np.tril(joint_bits) + np.tril(joint_bits, -1).T      # mirror the lower triangle
        info_b_bits, self_a_bits = to_bits(info_a), np.diag(joint_bits).copy()
        self_b_bits = self_a_bits
    else:
        info_b_bits, self_a_bits, self_b_bits = to_bits(info_b), to_bits(self_a), to_bits(self_b)
    result = TileResult(joint_bits, to_bits(info_a), self_a_bits, info_b_bits, self_b_bits)
    result.extra = [(to_bits(acc), to_bits(acc_info)) for acc, acc_info in zip(extra, extra_info)]
    return result


def pair_tile(mu_a, logvar_a, mu_b=None, logvar_b=None, *, device="auto", dtype="float32",
              block_points=None, memory_budget=DEFAULT_MEMORY_BUDGET, progress=None) -> TileResult:
    """The unit of distributed work: joint information of every channel of A with every one of B.

    Parameters
    ----------
    mu_a, logvar_a : [Ma, N, d]
    mu_b, logvar_b : [Mb, N, d] on the same N points, or None for B = A.

    Returns
    -------
    TileResult with joint [Ma, Mb] = I(X; U_a, U_b), and per-channel I(X;U), I(X;U,U') in bits.
    """
    mu_a, logvar_a = _check_posteriors(mu_a, logvar_a, "mu_a")
    dev, dt = resolve_device(device), _resolve_dtype(dtype)
    rows_a = _GaussianRows(mu_a, logvar_a, dev, dt)
    rows_b = None
    if mu_b is not None:
        mu_b, logvar_b = _check_posteriors(mu_b, logvar_b, "mu_b")
        if mu_b.shape[1] != mu_a.shape[1]:
            raise ValueError(f"mu_b: expected {mu_a.shape[1]} points (those of mu_a), got {mu_b.shape[1]}")
        rows_b = _GaussianRows(mu_b, logvar_b, dev, dt)
    with torch.no_grad():
        return _run_tile(rows_a, rows_b, [], block_points, progress, memory_budget)


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


def compare_channels(mu, logvar, factors=None, other=None, *, info_threshold: float = 0.01,
                     device="auto", dtype="float32", block_points: int | None = None,
                     block_channels: int = DEFAULT_BLOCK_CHANNELS,
                     memory_budget: int = DEFAULT_MEMORY_BUDGET,
                     progress: Progress | None = None) -> ChannelComparison:
    """Information, NMI and VI between all channels (and with ground-truth factors).

    Parameters
    ----------
    mu, logvar : [M, N, d] posteriors of M channels (d dimensions each) on N fingerprint points.
    factors : int labels [N, F] (or [N]), optional: each factor is a hard-clustering channel.
    other : (mu2, logvar2) [M2, N, d2], optional: compare with a second channel set instead
        (rectangular [M, M2] result).
    info_threshold : channels with I(X;U) below this (bits) are marked uninformative; their NMI is NaN.
    device : "auto" (CUDA when available), "cpu", "cuda", ...;  dtype : "float32" or "float64".
    block_points, block_channels, memory_budget : blocking; results do not depend on them.
    progress : optional callable(done, total, message).
    """
    t0 = time.perf_counter()
    mu, logvar = _check_posteriors(mu, logvar)
    if not (np.isfinite(info_threshold) and info_threshold >= 0):
        raise ValueError(f"info_threshold: expected a finite number >= 0, got {info_threshold}")
    if block_channels < 1:
        raise ValueError(f"block_channels: expected >= 1, got {block_channels}")
    if block_points is not None and block_points < 1:
        raise ValueError(f"block_points: expected >= 1, got {block_points}")
    n = mu.shape[1]
    dev, dt = resolve_device(device), _resolve_dtype(dtype)
    labels = None if factors is None else _check_factors(factors, n)
    if other is not None:
        if not isinstance(other, (tuple, list)) or len(other) != 2:
            raise ValueError("other: expected a pair (mu2, logvar2)")
        mu2, logvar2 = _check_posteriors(other[0], other[1], "mu2")
        if mu2.shape[1] != n:
            raise ValueError(f"other: expected {n} fingerprint points (those of mu), got {mu2.shape[1]}")
    rows = _GaussianRows(mu, logvar, dev, dt)
    rows2 = None if other is None else _GaussianRows(mu2, logvar2, dev, dt)
    label_rows = [] if labels is None else [_LabelRows(labels, dev, dt)]
    t_prep = time.perf_counter()

    m = mu.shape[0]
    m2 = m if other is None else mu2.shape[0]
    with torch.no_grad():
        if m <= block_channels and m2 <= block_channels:
            res = _run_tile(rows, rows2, label_rows, block_points, progress, memory_budget)
            joint, info_a, sj_a, info_b, sj_b = res.joint, res.info_a, res.selfjoint_a, res.info_b, res.selfjoint_b
            extra = res.extra
        else:
            joint, info_a, sj_a, info_b, sj_b, extra = _tiled(mu, logvar, other, labels, dev, dt, block_channels,
                                                              block_points, memory_budget, progress)
    t_pairs = time.perf_counter()

    ok_a = info_a >= info_threshold
    ok_b = info_b >= info_threshold if other is not None else ok_a
    mutual, nmi, vi, self_a, self_b = _measures_from_joint(info_a, sj_a, info_b, sj_b, joint, ok_a, ok_b)
    result = ChannelComparison(info_a, self_a, ok_a, nmi, vi, mutual, info_b, self_b, ok_b)
    if labels is not None:
        f_joint, f_info = extra[0]
        f_ok = f_info > 1e-12
        _, f_nmi, f_vi, _, _ = _measures_from_joint(info_a, sj_a, f_info, f_info, f_joint, ok_a, f_ok)
        result.factor_info, result.factor_nmi, result.factor_vi = f_info, f_nmi, f_vi
    result.timings = {"prepare": t_prep - t0, "pairs": t_pairs - t_prep, "total": time.perf_counter() - t0}
    return result


def _tiled(mu, logvar, other, labels, dev, dt, tile, block_points, budget, progress):
    """Channel-tiled evaluation for large M: every tile is an independent `_run_tile` call."""
    m = mu.shape[0]
    mu2, lv2 = (mu, logvar) if other is None else (np.asarray(other[0]), np.asarray(other[1]))
    m2 = mu2.shape[0]
    joint = np.empty((m, m2))
    info_a, sj_a = np.empty(m), np.empty(m)
    info_b, sj_b = np.empty(m2), np.empty(m2)
    f_joint = None if labels is None else np.empty((m, labels.shape[1]))
    f_info = None
    tiles_a = [slice(s, min(m, s + tile)) for s in range(0, m, tile)]
    tiles_b = [slice(s, min(m2, s + tile)) for s in range(0, m2, tile)]
    total, done = len(tiles_a) * len(tiles_b), 0
    for ta in tiles_a:
        rows_a = _GaussianRows(mu[ta], logvar[ta], dev, dt)
        for j, tb in enumerate(tiles_b):
            symmetric = other is None and ta == tb
            rows_b = None if symmetric else _GaussianRows(mu2[tb], lv2[tb], dev, dt)
            cols = [_LabelRows(labels, dev, dt)] if (labels is not None and j == 0) else []
            res = _run_tile(rows_a, rows_b, cols, block_points, None, budget)
            joint[ta, tb] = res.joint
            if j == 0:
                info_a[ta], sj_a[ta] = res.info_a, res.selfjoint_a
                if cols:
                    f_joint[ta], f_info = res.extra[0]
            if ta == tiles_a[0] or symmetric:
                info_b[tb], sj_b[tb] = res.info_b, res.selfjoint_b
            done += 1
            if progress is not None:
                progress(done, total, "channel tiles")
    if other is None:
        joint = 0.5 * (joint + joint.T)
        info_b, sj_b = info_a, sj_a
    extra = [] if labels is None else [(f_joint, f_info)]
    return joint, info_a, sj_a, info_b, sj_b, extra
