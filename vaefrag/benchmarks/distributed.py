"""`vaefrag bench distributed`: the pair matrix computed whole, in channel tiles in this process,
and in the same tiles as tasks on a local Dask cluster, side by side in one run."""
from __future__ import annotations

import argparse
import os
import time

import numpy as np
import torch

from vaefrag.benchmarks.measures import _posteriors
from vaefrag.benchmarks import print_rows
from vaefrag.measures import compare_channels


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="vaefrag bench distributed", description=__doc__)
    p.add_argument("--models", type=int, default=100)
    p.add_argument("--latents", type=int, default=10)
    p.add_argument("--points", type=int, default=1000)
    p.add_argument("--tile", type=int, default=250, help="channels per tile")
    p.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="local Dask worker processes")
    p.add_argument("--scheduler", default=None, help="a running Dask scheduler instead of a local cluster")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    os.environ.setdefault("DASK_LOGGING__DISTRIBUTED", "warning")
    from vaefrag.distributed import cluster_client, dask_tile_map

    m, n = args.models * args.latents, args.points
    mu, lv = _posteriors(args.models, args.latents, n, args.seed)
    n_blocks = -(-m // args.tile)
    print(f"vaefrag bench distributed: M={m} channels, N={n} points, float32, tiles of {args.tile} channels "
          f"({n_blocks * (n_blocks + 1) // 2} tiles), torch {torch.__version__}, {torch.get_num_threads()} threads here")
    compare_channels(mu[:8, :100], lv[:8, :100])                             # warm-up
    t = time.perf_counter()
    whole = compare_channels(mu, lv, block_channels=max(m, 1))
    t_whole = time.perf_counter() - t
    t = time.perf_counter()
    tiled = compare_channels(mu, lv, block_channels=args.tile)
    t_tiled = time.perf_counter() - t
    t = time.perf_counter()
    with cluster_client(args.scheduler, n_workers=args.workers) as client:
        t_start = time.perf_counter() - t
        workers = len(client.nthreads())
        run = dask_tile_map(client)
        compare_channels(mu[:8, :100], lv[:8, :100], block_channels=4, map_tiles=run)   # warm-up on the workers
        t = time.perf_counter()
        dask = compare_channels(mu, lv, block_channels=args.tile, map_tiles=run)
        t_dask = time.perf_counter() - t
    diff = max(np.nanmax(np.abs(tiled.nmi - whole.nmi)), np.nanmax(np.abs(dask.nmi - whole.nmi)))
    rows = [
        ("whole, in this process", f"{t_whole:8.2f} s"),
        ("tiles, in this process", f"{t_tiled:8.2f} s"),
        (f"tiles, as Dask tasks on {workers} workers (cluster start {t_start:.1f} s not included)", f"{t_dask:8.2f} s"),
        ("tiled / whole", f"{t_tiled / t_whole:8.2f}"),
        ("Dask / whole", f"{t_dask / t_whole:8.2f}"),
        ("largest NMI difference from the whole computation", f"{diff:8.1e}"),
    ]
    print_rows(rows)
    return 0
