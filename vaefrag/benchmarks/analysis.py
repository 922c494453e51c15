"""`vaefrag bench analysis`: a cold `analyze` stage by stage against `compare_channels` alone, and an
OPTICS parameter change, measured side by side in one run (targets: cold analyze with stability
and maps <= 4x compare_channels; a parameter change <= max(1 s, compare_channels / 4))."""
from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np

from vaefrag.benchmarks import print_rows


def planted_ensemble(models: int, latents: int, points: int, seed: int = 0, n_factors: int = 8):
    """Posteriors [K, N, L] whose channels are noisy copies of one of `n_factors` shared factors
    (so hotspots recur across models), one prior-like dead latent per model, and the factors
    discretised into 6 values [N, F] (for MIG / SAP)."""
    rng = np.random.default_rng(seed)
    f = rng.normal(size=(n_factors, points))
    mu = np.empty((models, points, latents))
    lv = np.empty_like(mu)
    for k in range(models):
        for j in range(latents):
            if j == latents - 1:
                mu[k, :, j], lv[k, :, j] = rng.normal(0, 0.01, points), 0.0
                continue
            src = rng.integers(0, n_factors)
            mu[k, :, j] = rng.choice([-1, 1]) * rng.uniform(0.5, 2) * f[src] + 0.3 * rng.normal(size=points)
            lv[k, :, j] = rng.uniform(-3, -1, points)
    edges = np.quantile(f, np.linspace(0, 1, 7)[1:-1], axis=1).T                   # [F, 5]
    factors = np.stack([np.digitize(f[i], edges[i]) for i in range(n_factors)], 1)
    return mu.astype(np.float32), lv.astype(np.float32), factors.astype(np.int64)


def _numba_index_files(path: Path) -> int:
    return sum(1 for _ in path.rglob("*.nbi")) if path.is_dir() else 0


def fresh_process_umap(n_channels: int = 500) -> float:
    """Seconds a fresh Python process takes to import vaefrag and compute one UMAP map of
    ``n_channels`` random channels (numba's cache as it is now)."""
    import subprocess
    import sys

    code = ("import time; t = time.perf_counter(); import numpy as np; from vaefrag.structure import channel_maps; "
            f"x = np.random.default_rng(0).normal(size=({n_channels}, 3)); "
            "d = np.linalg.norm(x[:, None] - x[None], axis=-1); channel_maps(d, ('umap',)); "
            "print(time.perf_counter() - t)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="vaefrag bench analysis", description=__doc__)
    p.add_argument("--models", type=int, default=50)
    p.add_argument("--latents", type=int, default=10)
    p.add_argument("--points", type=int, default=1000)
    p.add_argument("--bootstrap", type=int, default=20, help="resamples for stability (default 20)")
    p.add_argument("--device", default="auto")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)

    import torch

    from vaefrag import store
    from vaefrag.analysis import analyze
    from vaefrag.cache import numba_cache_dir
    from vaefrag.measures import compare_channels, split_channels

    k, l_, n = args.models, args.latents, args.points
    mu, lv, factors = planted_ensemble(k, l_, n, args.seed)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"vaefrag bench analysis: M={k * l_} channels ({k} models x {l_} latents), N={n} points, "
          f"{args.bootstrap} resamples, torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"device {args.device}, load average {load:.2f} on {os.cpu_count()} cores")
    numba_before = _numba_index_files(numba_cache_dir())
    with tempfile.TemporaryDirectory(prefix="vaefrag-bench-") as tmp:
        tmp = Path(tmp)
        path = store.write_ensemble(tmp / "planted", {"name": "planted"}, mu, lv, factors=factors,
                                    factor_names=[f"f{i}" for i in range(factors.shape[1])])
        ens = store.load_ensemble(path)
        mc, lc = split_channels(ens.mu, ens.logvar)
        compare_channels(mc[:8, :100], lc[:8, :100], device=args.device)            # warm-up: lazy inits
        t = time.perf_counter()
        compare_channels(mc, lc, factors=ens.factors, device=args.device)
        t_cc = time.perf_counter() - t

        cache = tmp / "cache"
        kw = dict(n_bootstrap=args.bootstrap, cache_dir=cache, device=args.device)
        t = time.perf_counter()
        cold = analyze(ens, **kw)
        t_cold = time.perf_counter() - t
        ms_cold = cold.params["min_samples"]
        resolved = int(max(2, -(-k // 2)))
        t = time.perf_counter()
        changed = analyze(ens, min_samples=resolved + 3, **kw)
        t_change = time.perf_counter() - t
        t = time.perf_counter()
        quick = analyze(ens, min_samples=resolved + 5, stages=("structure",), **kw)
        t_quick = time.perf_counter() - t
        t = time.perf_counter()
        again = analyze(ens, **kw)
        t_again = time.perf_counter() - t
    assert again.from_cache and not changed.from_cache and quick.pending
    t_fresh_umap = fresh_process_umap(k * l_)

    tm = cold.timings
    target_change = max(1.0, t_cc / 4)
    rows = [
        ("compare_channels alone (measures + factors, one pass)", f"{t_cc:8.2f} s"),
        ("cold analyze, total", f"{t_cold:8.2f} s"),
        (f"  measures + {args.bootstrap} resamples (one pass)", f"{tm.get('measures', 0):8.2f} s"),
        ("  structure (OPTICS, hotspots)", f"{tm.get('hotspots', 0):8.2f} s"),
        (f"  stability ({args.bootstrap} refits)", f"{tm.get('bootstrap', 0):8.2f} s"),
        ("  maps (MDS + UMAP)", f"{tm.get('maps', 0):8.2f} s"),
        ("  model scores (MIG, SAP, UDR)", f"{tm.get('scores', 0):8.2f} s"),
        (f"  numba cache before the run: {numba_before} compiled index files "
         f"({'warm' if numba_before else 'cold: UMAP compiled in this run'})", ""),
        ("UMAP of M channels in a fresh process (import + map; numba cache now warm)", f"{t_fresh_umap:8.2f} s"),
        ("ratio cold analyze / compare_channels (target <= 4)", f"{t_cold / t_cc:8.2f} x"),
        (f"OPTICS parameter change (min_samples {resolved} -> {resolved + 3}), whole analysis",
         f"{t_change:8.2f} s"),
        (f"  target max(1 s, compare_channels / 4) = {target_change:.2f} s", "met" if t_change <= target_change
         else "NOT met"),
        ("  of which structure / stability refits",
         f"{changed.timings.get('hotspots', 0):8.2f} s / {changed.timings.get('bootstrap', 0):.2f} s"),
        (f"structure stage only (min_samples {resolved + 5}; stability and maps later)", f"{t_quick:8.2f} s"),
        ("repeated analyze (one cache read)", f"{t_again:8.2f} s"),
        (f"hotspots found: {len(cold.hotspots)} (min_samples {ms_cold or 'auto'}), "
         f"stabilities {sorted({round(h.stability, 2) for h in cold.hotspots})}", ""),
    ]
    print_rows(rows)
    return 0
