"""The pairwise computation in GEMM form: blocks of fingerprint points, channel tiles, and the
tile function `pair_tile` that computes one block (rows A x columns B) on its own."""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch

from vaefrag.measures.fingerprints import _GaussianRows, _LabelRows
from vaefrag.measures.validation import _check_factors, _check_posteriors, _resolve_dtype, resolve_device

#: working-memory budget (bytes) for one block of fingerprint points
DEFAULT_MEMORY_BUDGET = 512 * 2**20
#: on a CPU, a block of fingerprint rows is kept about this small so its passes run in cache
CPU_BLOCK_BYTES = 48 * 2**20
#: symmetric products of fewer than twice this many channels are computed whole (small GEMMs
#: lose more speed than the left-out quarter saves)
_TRIANGLE_MIN_HALF = 64


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
    """One tile (rows A x columns B), in bits.

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
            _log2_products_symmetric(a, prod[:size], joint)                # sum_i log2(N S_i[a, b])
        else:
            b = rows_b.rows(start, stop, buf_b[:size])
            info_b += torch.log2(b.sum(-1)).sum(0).double()
            self_a += torch.log2(torch.linalg.vecdot(a, a)).sum(0).double()
            self_b += torch.log2(torch.linalg.vecdot(b, b)).sum(0).double()
            joint += _log2_products(a, b, prod[:size])
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


def pair_tile(mu_a, logvar_a, mu_b=None, logvar_b=None, *, factors=None, device="auto", dtype="float32",
              block_points=None, memory_budget=DEFAULT_MEMORY_BUDGET, progress=None) -> TileResult:
    """The unit of distributed work: joint information of every channel of A with every one of B.

    Parameters
    ----------
    mu_a, logvar_a : [Ma, N, d]
    mu_b, logvar_b : [Mb, N, d] on the same N points, or None for B = A.
    factors : int labels [N, F], optional: also the joint information of A with each factor.

    Returns
    -------
    TileResult with joint [Ma, Mb] = I(X; U_a, U_b), and per-channel I(X;U), I(X;U,U') in bits;
    with factors, `extra[0]` = (joint [Ma, F] with the factors, the factors' I(X;C) [F]).
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
    cols = [] if factors is None else [_LabelRows(_check_factors(factors, mu_a.shape[1]), dev, dt)]
    with torch.no_grad():
        return _run_tile(rows_a, rows_b, cols, block_points, progress, memory_budget)


# --------------------------------------------------------------------------- channel tiles


@dataclass(frozen=True)
class TileTask:
    """One tile of the pair matrix: channel block `row` of the first set against block `col` of
    the second (None: the diagonal tile of a symmetric comparison); `factors`: with the factor
    columns (once per row block)."""

    row: int
    col: int | None
    factors: bool


def plan_tiles(n_row_blocks: int, n_col_blocks: int, symmetric: bool) -> list[TileTask]:
    """The tiles that cover the pair matrix; a symmetric one needs only its upper triangle."""
    if symmetric:
        return [TileTask(i, None if j == i else j, j == i) for i in range(n_row_blocks)
                for j in range(i, n_row_blocks)]
    return [TileTask(i, j, j == 0) for i in range(n_row_blocks) for j in range(n_col_blocks)]


def run_tile_task(task: TileTask, blocks_a: list, blocks_b: list | None, labels, options: dict) -> TileResult:
    """`pair_tile` for one task. blocks_*: lists of (mu, logvar) per channel block; blocks_b is
    None for a symmetric comparison. options: keyword arguments of `pair_tile`."""
    mu_a, lv_a = blocks_a[task.row]
    mu_b, lv_b = (None, None) if task.col is None else (blocks_a if blocks_b is None else blocks_b)[task.col]
    return pair_tile(mu_a, lv_a, mu_b, lv_b, factors=labels if task.factors else None, **options)


def map_tiles_here(tasks, blocks_a, blocks_b, labels, options, progress=None) -> list[TileResult]:
    """Runs the tiles one after another in this process (the default tile map).

    Any callable with this signature can take its place (`compare_channels(map_tiles=...)`),
    e.g. `vaefrag.distributed.dask_tile_map(client)`, which runs them on a Dask cluster."""
    results = []
    for done, task in enumerate(tasks, start=1):
        results.append(run_tile_task(task, blocks_a, blocks_b, labels, options))
        if progress is not None:
            progress(done, len(tasks), "channel tiles")
    return results


def tiled_joint(mu, logvar, other, labels, tile: int, options: dict, progress=None, map_tiles=None):
    """Channel-tiled evaluation: every tile is an independent `pair_tile` call.

    mu, logvar [M, N, d]; other (mu2, logvar2) [M2, N, d2] or None; labels [N, F] or None.
    Returns joint [M, M2], info_a [M], selfjoint_a [M], info_b [M2], selfjoint_b [M2], extra
    ([(joint with factors [M, F], factor info [F])] or []), all in bits.
    """
    m = mu.shape[0]
    blocks = lambda a, b: [(a[s:s + tile], b[s:s + tile]) for s in range(0, a.shape[0], tile)]
    blocks_a = blocks(mu, logvar)
    blocks_b = None if other is None else blocks(other[0], other[1])
    m2 = m if other is None else other[0].shape[0]
    tasks = plan_tiles(len(blocks_a), len(blocks_a if blocks_b is None else blocks_b), other is None)
    results = (map_tiles or map_tiles_here)(tasks, blocks_a, blocks_b, labels, options, progress)
    if len(results) != len(tasks):
        raise RuntimeError(f"map_tiles: expected {len(tasks)} tile results, got {len(results)}")
    joint = np.empty((m, m2))
    info_a, sj_a = np.empty(m), np.empty(m)
    info_b, sj_b = np.empty(m2), np.empty(m2)
    f_joint = None if labels is None else np.empty((m, labels.shape[1]))
    f_info = None
    span = lambda k: slice(k * tile, k * tile + tile)
    for task, res in zip(tasks, results):
        ra = span(task.row)
        info_a[ra], sj_a[ra] = res.info_a, res.selfjoint_a
        if task.col is None:
            joint[ra, ra] = res.joint
        else:
            cb = span(task.col)
            joint[ra, cb] = res.joint
            if other is None:
                joint[cb, ra] = res.joint.T
            else:
                info_b[cb], sj_b[cb] = res.info_b, res.selfjoint_b
        if task.factors and labels is not None:
            f_joint[ra], f_info = res.extra[0]
    if other is None:
        info_b, sj_b = info_a, sj_a
    extra = [] if labels is None else [(f_joint, f_info)]
    return joint, info_a, sj_a, info_b, sj_b, extra
