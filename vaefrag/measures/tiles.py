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
    #: with resample weights [R, N]: the same fields [R, ...] ("joint", "info_a", "selfjoint_a", ...)
    resampled: dict | None = None


#: the symmetric product is cut into at most this many row chunks (chunk r against columns of
#: chunks 0..r): the GEMM does (parts + 1) / (2 parts) of the full product's multiply-adds
_TRIANGLE_MAX_PARTS = 4


class _Accumulator:
    """Sums over fingerprint points i of per-point values X_i [B, ...]: plainly (float64) and, for
    resamples, weighted by point weights W [R, N] (one weighted sum per resample).

    Pair sums are matrix products [1, B] x [B, ...] (ones) and [R, B] x [B, ...] (weights) per
    block: cheaper than a reduction over the leading axis.
    """

    def __init__(self, shape, weights, dev, dt, n_points: int):
        self.total = torch.zeros(*shape, dtype=torch.float64, device=dev)
        # per-channel sums ([M]) are small: summed exactly in float64; pair sums go through a product
        self.exact = len(shape) == 1
        self.ones = torch.ones(1, n_points, dtype=dt, device=dev)
        self.weights = None if weights is None else weights.to(dt)                       # [R, N]
        self.resampled = None if weights is None else torch.zeros(weights.shape[0], *shape, dtype=dt, device=dev)

    @staticmethod
    def _weighted(w: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
        return torch.mm(w.to(values.dtype), values.reshape(values.shape[0], -1)).view(w.shape[0], *values.shape[1:])

    def add(self, values: torch.Tensor, start: int, stop: int, index=None) -> None:
        """values [B, *shape or the part given by index] for points start:stop. The plain sum is the
        same operation with or without resamples (identical numbers)."""
        total = self.total if index is None else self.total[index]
        if self.exact:
            total += values.sum(0, dtype=torch.float64)
        else:
            total.add_(self._weighted(self.ones[:, start:stop], values)[0])
        if self.weights is not None:
            part = self.resampled if index is None else self.resampled[(slice(None), *index)]
            part.add_(self._weighted(self.weights[:, start:stop], values))


def _log2_bmm(a: torch.Tensor, b: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
    """log2(sum_j a[i, :, j] b[i, :, j]) for a [B, Ma, N], b [B, Mb, N]: [B, Ma, Mb] (into out)."""
    return torch.bmm(a, b.transpose(1, 2), out=out).log2_()


def _log2_products(a: torch.Tensor, b: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
    """sum_i log2(sum_j a[i, :, j] b[i, :, j]) for a [B, Ma, N], b [B, Mb, N]: float64 [Ma, Mb]."""
    return _log2_bmm(a, b, out).sum(0, dtype=torch.float64)


def _triangle_chunks(m: int) -> list[tuple[int, int]]:
    """Row chunks of the symmetric product (one chunk when it is too small to pay)."""
    if m < 2 * _TRIANGLE_MIN_HALF:
        return [(0, m)]
    parts = max(2, min(_TRIANGLE_MAX_PARTS, m // _TRIANGLE_MIN_HALF))
    edges = np.linspace(0, m, parts + 1).round().astype(int)
    return [(int(lo), int(hi)) for lo, hi in zip(edges[:-1], edges[1:]) if hi > lo]


def _log2_products_symmetric(a: torch.Tensor, out: torch.Tensor, acc, start: int = 0, stop: int | None = None) -> None:
    """acc += sum_i log2(a_i a_i^T) for a [B, M, N], lower triangle only.

    The product is symmetric in the channels, so row chunk r is multiplied only with the columns
    of chunks 0..r: with 4 chunks 5/8 of the multiply-adds (the caller mirrors the lower triangle
    at the end). ``acc`` is a float64 [M, M] tensor or an `_Accumulator`; `out` [B, M, M] is scratch.
    """
    m = a.shape[1]
    bsz = out.shape[0]
    for lo, hi in _triangle_chunks(m):
        view = out.view(-1)[: bsz * (hi - lo) * hi].view(bsz, hi - lo, hi)
        vals = _log2_bmm(a[:, lo:hi], a[:, :hi], view)
        if isinstance(acc, _Accumulator):
            acc.add(vals, start, stop, (slice(lo, hi), slice(0, hi)))
        else:
            acc[lo:hi, :hi] += vals.sum(0, dtype=torch.float64)


def _run_tile(rows_a, rows_b, extra_cols, block_points, progress, memory_budget, label="", weights=None) -> TileResult:
    """One pass over blocks of fingerprint points: I(X;U_a,U_b) for all a in A, b in B.

    rows_b is None means B = A (the symmetric case: one fingerprint computation, and the
    self-joint information read off the diagonal of the pair matrix). ``weights`` [R, N]
    (each row summing to N), optional: the same informations with the outer average over points
    i weighted by each row (resamples of the fingerprint points; `TileResult.resampled`).
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
    w = None
    if weights is not None:
        w = torch.as_tensor(np.asarray(weights, dtype=np.float64), device=dev)
        w = (w * (n / w.sum(1, keepdim=True))).to(dt)                      # each row sums to N
    acc = lambda *s: _Accumulator(s, w, dev, dt, n)
    joint, info_a, self_a = acc(ma, mb), acc(ma), acc(ma)
    info_b, self_b = acc(mb), acc(mb)
    zeros = lambda *s: torch.zeros(*s, dtype=torch.float64, device=dev)
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
        info_a.add(torch.log2(a.sum(-1)), start, stop)
        if rows_b is None:
            _log2_products_symmetric(a, prod[:size], joint, start, stop)   # sum_i log2(N S_i[a, b])
        else:
            b = rows_b.rows(start, stop, buf_b[:size])
            info_b.add(torch.log2(b.sum(-1)), start, stop)
            self_a.add(torch.log2(torch.linalg.vecdot(a, a)), start, stop)
            self_b.add(torch.log2(torch.linalg.vecdot(b, b)), start, stop)
            joint.add(_log2_bmm(a, b, prod[:size]), start, stop)
        for cols, acc_f, acc_info, (buf_c, prod_c) in zip(extra_cols, extra, extra_info, bufs_extra):
            c = cols.rows(start, stop, buf_c[:size])
            acc_info += torch.log2(c.sum(-1)).sum(0).double()
            acc_f += _log2_products(a, c, prod_c[:size])
        if progress is not None:
            progress(done + 1, len(blocks), label)
    log_n = math.log2(n)
    to_bits = lambda s: (log_n - s.double() / n).cpu().numpy()     # -(1/N) sum_i log2((1/N) sum_j ...)

    def finish(j, ia, sa, ib, sb):
        jb = to_bits(j)
        if rows_b is None:
            jb = np.tril(jb) + np.swapaxes(np.tril(jb, -1), -1, -2)           # mirror the lower triangle
            ia_b = to_bits(ia)
            sa_b = np.diagonal(jb, axis1=-2, axis2=-1).copy()
            return jb, ia_b, sa_b, ia_b, sa_b
        return jb, to_bits(ia), to_bits(sa), to_bits(ib), to_bits(sb)

    result = TileResult(*finish(joint.total, info_a.total, self_a.total, info_b.total, self_b.total))
    if w is not None:
        r = finish(joint.resampled, info_a.resampled, self_a.resampled, info_b.resampled, self_b.resampled)
        result.resampled = dict(zip(("joint", "info_a", "selfjoint_a", "info_b", "selfjoint_b"), r))
    result.extra = [(to_bits(acc_f), to_bits(acc_info)) for acc_f, acc_info in zip(extra, extra_info)]
    return result


def pair_tile(mu_a, logvar_a, mu_b=None, logvar_b=None, *, factors=None, device="auto", dtype="float32",
              block_points=None, memory_budget=DEFAULT_MEMORY_BUDGET, progress=None, weights=None) -> TileResult:
    """The unit of distributed work: joint information of every channel of A with every one of B.

    Parameters
    ----------
    mu_a, logvar_a : [Ma, N, d]
    mu_b, logvar_b : [Mb, N, d] on the same N points, or None for B = A.
    factors : int labels [N, F], optional: also the joint information of A with each factor.

    Returns
    -------
    TileResult with joint [Ma, Mb] = I(X; U_a, U_b), and per-channel I(X;U), I(X;U,U') in bits;
    with factors, `extra[0]` = (joint [Ma, F] with the factors, the factors' I(X;C) [F]);
    with ``weights`` [R, N] (resamples of the points), `resampled` (see `_run_tile`).
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
        return _run_tile(rows_a, rows_b, cols, block_points, progress, memory_budget, weights=weights)


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
    ([(joint with factors [M, F], factor info [F])] or []), resampled (None, or with
    ``options["weights"]`` [R, N] a dict of the same five fields with a leading axis R), all in bits.
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
    span = lambda k: slice(k * tile, k * tile + tile)

    def assemble(fields, lead: tuple):
        joint = np.empty(lead + (m, m2))
        info_a, sj_a = np.empty(lead + (m,)), np.empty(lead + (m,))
        info_b, sj_b = np.empty(lead + (m2,)), np.empty(lead + (m2,))
        for task, res in zip(tasks, results):
            f = fields(res)
            ra = span(task.row)
            info_a[..., ra], sj_a[..., ra] = f["info_a"], f["selfjoint_a"]
            if task.col is None:
                joint[..., ra, ra] = f["joint"]
            else:
                cb = span(task.col)
                joint[..., ra, cb] = f["joint"]
                if other is None:
                    joint[..., cb, ra] = np.swapaxes(f["joint"], -1, -2)
                else:
                    info_b[..., cb], sj_b[..., cb] = f["info_b"], f["selfjoint_b"]
        if other is None:
            info_b, sj_b = info_a, sj_a
        return {"joint": joint, "info_a": info_a, "selfjoint_a": sj_a, "info_b": info_b, "selfjoint_b": sj_b}

    plain = assemble(lambda r: {"joint": r.joint, "info_a": r.info_a, "selfjoint_a": r.selfjoint_a,
                                "info_b": r.info_b, "selfjoint_b": r.selfjoint_b}, ())
    weights = options.get("weights")
    resampled = None if weights is None else assemble(lambda r: r.resampled, (np.shape(weights)[0],))
    f_joint = None if labels is None else np.empty((m, labels.shape[1]))
    f_info = None
    for task, res in zip(tasks, results):
        if task.factors and labels is not None:
            f_joint[span(task.row)], f_info = res.extra[0]
    extra = [] if labels is None else [(f_joint, f_info)]
    return (plain["joint"], plain["info_a"], plain["selfjoint_a"], plain["info_b"], plain["selfjoint_b"], extra,
            resampled)
