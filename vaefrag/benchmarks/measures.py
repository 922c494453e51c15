"""`vaefrag bench measures`: pairwise NMI/VI in GEMM form against the per-pair loop of the
paper's reference code, the machine's matrix-multiply rate, and peak memory, in one run."""
from __future__ import annotations

import argparse
import json
import math
import resource
import subprocess
import sys
import time

import numpy as np
import torch

from vaefrag.benchmarks import print_rows
from vaefrag.measures import compare_channels
from vaefrag.measures.tiles import _triangle_chunks


def _posteriors(models: int, latents: int, points: int, seed: int):
    """Ensemble-like channels [M, N, 1]: each a noisy function of one of a few shared factors."""
    rng = np.random.default_rng(seed)
    factors = rng.normal(size=(8, points))
    m = models * latents
    mu = factors[rng.integers(0, 8, m)] * rng.uniform(0.5, 2, (m, 1)) + 0.3 * rng.normal(size=(m, points))
    lv = rng.uniform(-3, 0, (m, points))
    return mu[..., None].astype(np.float32), lv[..., None].astype(np.float32)


def matmul_rate(n: int = 2048, reps: int = 5, batch_shape=None) -> float:
    """Best float32 multiply-add rate (MAC/s) of torch.matmul on this machine."""
    if batch_shape is None:
        a, b = torch.randn(n, n), torch.randn(n, n)
        macs = n ** 3
    else:
        bsz, m, k = batch_shape
        a, b = torch.randn(bsz, m, k), torch.randn(bsz, m, k).transpose(1, 2)
        macs = bsz * m * k * m
    torch.matmul(a, b)
    best = math.inf
    for _ in range(reps):
        t = time.perf_counter()
        torch.matmul(a, b)
        best = min(best, time.perf_counter() - t)
    return macs / best


def reference_loop(mu, lv, pairs: int, seed: int):
    """The paper's reference form: per-channel float64 distance matrices, then for each pair
    exp(-(D_a + D_b)), mean over j, log2, mean over i. Times `pairs` sampled pairs."""
    rng = np.random.default_rng(seed)
    m = mu.shape[0]
    chosen = rng.integers(0, m, (pairs, 2))
    needed = np.unique(chosen)
    t0 = time.perf_counter()
    dist = {}
    for c in needed:
        x, v = mu[c].astype(np.float64), np.exp(lv[c].astype(np.float64))
        s = 0.5 * (v[:, None, :] + v[None, :, :])
        dist[c] = (0.125 * ((x[:, None, :] - x[None, :, :]) ** 2 / s).sum(-1)
                   + 0.5 * np.log(s / np.sqrt(v[:, None, :] * v[None, :, :])).sum(-1))
    t_dist = (time.perf_counter() - t0) / len(needed)
    t0 = time.perf_counter()
    for a, b in chosen:
        -np.mean(np.log2(np.mean(np.exp(-(dist[a] + dist[b])), axis=-1)))
    t_pair = (time.perf_counter() - t0) / pairs
    return t_dist, t_pair


def _peak_rss_kib() -> int:
    """High-water resident memory of this process (VmHWM; ru_maxrss survives exec on Linux)."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def _child(args) -> int:
    """Runs compare_channels once in a fresh process and reports its peak memory above baseline."""
    mu, lv = _posteriors(args.models, args.latents, args.points, args.seed)
    compare_channels(mu[:4, :50], lv[:4, :50], device=args.device)          # warm-up: lazy inits
    base = _peak_rss_kib()
    res = compare_channels(mu, lv, device=args.device)
    peak = _peak_rss_kib()
    print(json.dumps({"extra_kib": peak - base, "timings": res.timings}))
    return 0


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="vaefrag bench measures", description=__doc__)
    p.add_argument("--models", type=int, default=50)
    p.add_argument("--latents", type=int, default=10)
    p.add_argument("--points", type=int, default=1000)
    p.add_argument("--pairs", type=int, default=40, help="pairs timed in the reference loop")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--device", default="auto")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        return _child(args)
    m, n = args.models * args.latents, args.points
    mu, lv = _posteriors(args.models, args.latents, n, args.seed)
    print(f"vaefrag bench measures: M={m} channels ({args.models} models x {args.latents} latents), "
          f"N={n} points, float32, torch {torch.__version__}, {torch.get_num_threads()} threads, device {args.device}")

    compare_channels(mu[:8, :100], lv[:8, :100], device=args.device)        # warm-up
    runs = [compare_channels(mu, lv, device=args.device).timings for _ in range(args.repeats)]
    best = min(runs, key=lambda t: t["total"])
    t_ours, t_pairs = best["total"], best["pairs"]

    t_dist, t_pair = reference_loop(mu, lv, args.pairs, args.seed)
    n_pairs = m * (m + 1) // 2
    t_ref = m * t_dist + n_pairs * t_pair
    macs = m * m * n * n
    # the symmetric GEMM multiplies row chunk r only with the columns of chunks 0..r
    performed = n * n * sum((hi - lo) * hi for lo, hi in _triangle_chunks(m))
    peak_rate = matmul_rate()
    block = max(1, min(n, (48 * 2**20) // (4 * (3 * n * m + m * m))))
    shape_rate = matmul_rate(batch_shape=(block, m, n), reps=3)
    child = subprocess.run([sys.executable, "-m", "vaefrag", "bench", "measures", "--child",
                            "--models", str(args.models), "--latents", str(args.latents),
                            "--points", str(n), "--device", args.device],
                           capture_output=True, text=True, check=True)
    mem = json.loads(child.stdout.strip().splitlines()[-1])

    rows = [
        ("vaefrag compare_channels (best of %d)" % args.repeats, f"{t_ours:8.2f} s"),
        ("  of which pairwise part (fingerprints + GEMM + log)", f"{t_pairs:8.2f} s"),
        ("reference per-pair float64 loop (extrapolated)", f"{t_ref:8.1f} s"),
        (f"  timed: {args.pairs} pairs at {t_pair * 1e3:.1f} ms + distance matrices at {t_dist * 1e3:.1f} ms;",
         ""),
        (f"  extrapolated to {n_pairs} pairs (upper triangle, as the reference) + {m} matrices", ""),
        ("speed-up (reference / vaefrag)", f"{t_ref / t_ours:8.0f} x"),
        ("multiply-adds of the pair products (M^2 N^2)", f"{macs:.3g}"),
        ("  performed (symmetry: lower triangle of row chunks)", f"{performed:.3g}"),
        ("achieved rate on the pairwise part (performed / time)", f"{performed / t_pairs / 1e9:8.1f} GMAC/s"),
        ("  equivalent full-product rate (M^2 N^2 / time)", f"{macs / t_pairs / 1e9:8.1f} GMAC/s"),
        ("machine matmul rate, 2048^2 float32", f"{peak_rate / 1e9:8.1f} GMAC/s"),
        (f"machine matmul rate, a full block GEMM [{block}x{m}x{n}]", f"{shape_rate / 1e9:8.1f} GMAC/s"),
        ("achieved (performed) / machine rate (2048^2)", f"{performed / t_pairs / peak_rate:8.2f}"),
        ("peak extra memory (fresh process, VmHWM)", f"{mem['extra_kib'] / 1024:8.0f} MiB"),
    ]
    print_rows(rows)
    return 0
