"""Channel tiles on a Dask cluster (shared/DESIGN.md §6): model zoos beyond one machine.

The pair matrix of `compare_channels` is cut into tiles of channels; each tile is one
`measures.pair_tile` call that needs only its two channel blocks. Here those calls run as
Dask tasks, on a local cluster by default or on a running scheduler when given its address::

    from vaefrag.distributed import cluster_client, dask_tile_map
    with cluster_client("tcp://10.0.0.5:8786") as client:          # or cluster_client() for a local one
        res = compare_channels(mu, logvar, block_channels=512, map_tiles=dask_tile_map(client))

Each channel block is sent to the cluster once (scattered) and shared by the tasks that need it.
The workers need vaefrag installed (the task is a vaefrag function). Dask moves arrays between
its own processes with pickle; nothing here loads pickles from files.
Needs the optional dependency: pip install "vaefrag[distributed]".
"""
from __future__ import annotations

import contextlib
import logging
import os

import torch

from vaefrag.measures import TileTask, pair_tile

log = logging.getLogger(__name__)


def _dask():
    try:
        import distributed
    except ImportError as exc:                                   # pragma: no cover - exercised without dask
        raise ImportError('Dask is needed for distributed tiles: pip install "vaefrag[distributed]"') from exc
    return distributed


@contextlib.contextmanager
def cluster_client(scheduler: str | None = None, n_workers: int | None = None, timeout: float = 20.0):
    """A Dask client: connected to `scheduler` ("tcp://host:port") when given, else to a new
    local cluster of `n_workers` processes (default: one per CPU core) with one thread each.
    The local cluster is shut down on exit."""
    distributed = _dask()
    if scheduler:
        try:
            client = distributed.Client(scheduler, timeout=timeout)
        except OSError as exc:
            raise ValueError(f"scheduler: could not connect to {scheduler!r} within {timeout:g} s ({exc})") from exc
        with client:
            yield client
        return
    n_workers = n_workers or os.cpu_count() or 1
    if n_workers < 1:
        raise ValueError(f"n_workers: expected >= 1, got {n_workers}")
    with distributed.LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=True,
                                  dashboard_address=":0") as cluster, distributed.Client(cluster) as client:
        log.info("local Dask cluster: %d worker processes", n_workers)
        yield client


def _tile_on_worker(block_a, block_b, labels, options: dict, threads: int):
    """One tile on a worker: torch on the worker's own threads (not one per core per task)."""
    torch.set_num_threads(threads)
    mu_b, logvar_b = (None, None) if block_b is None else block_b
    return pair_tile(block_a[0], block_a[1], mu_b, logvar_b, factors=labels, **options)


def dask_tile_map(client):
    """A `map_tiles` for `compare_channels` that runs every tile as a task on `client`'s cluster.

    Returns a callable(tasks, blocks_a, blocks_b, labels, options, progress) -> [TileResult].
    If a task fails, the others are cancelled and the error is raised here.
    """
    distributed = _dask()

    def run(tasks: list[TileTask], blocks_a, blocks_b, labels, options, progress=None):
        threads = max(1, min(client.nthreads().values(), default=1))
        futures = []
        try:
            fa = client.scatter(list(blocks_a), hash=False)
            fb = fa if blocks_b is None else client.scatter(list(blocks_b), hash=False)
            fl = None if labels is None else client.scatter(labels, hash=False)
            futures = [client.submit(_tile_on_worker, fa[t.row], None if t.col is None else fb[t.col],
                                     fl if t.factors else None, options, threads, pure=False)
                       for t in tasks]
            for done, _ in enumerate(distributed.as_completed(futures), start=1):
                if progress is not None:
                    progress(done, len(tasks), "channel tiles (Dask)")
            return client.gather(futures)
        finally:
            client.cancel(futures)

    return run
