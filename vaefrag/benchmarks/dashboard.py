"""`python -m vaefrag bench dashboard`: how fast the dashboard answers, measured on a live server.

Measures (printed as one table, nothing asserted):

- start: seconds from starting the server (a fresh process, warm analysis cache) until the page's
  first full render (layout + every initial callback answered), measured through the HTTP API the
  browser uses;
- click: median seconds from a hotspot click (the selection callback) to the traversal images
  (the traversal callback's response), over every hotspot, repeated;
- size: the largest callback response in bytes for the view of a 500-channel ensemble.

The ensemble is ``--ensemble DIR`` or, by default, a synthetic fragment ensemble written to a
temporary directory by `make_fragment_ensemble` (50 models x 10 latents = 500 channels): posteriors
built from the sprites factors (each factor recurs across models, some channels are empty), real
sprites fingerprint images, and *untrained* member networks of the sprites architecture. Its
traversals therefore time the real decode path but show nothing meaningful; tests use it for the
same reason (a real ensemble on disk, built in seconds).
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

#: fragments a synthetic channel can carry: a factor column of sprites, or nothing
_FRAGMENTS = (("x", 3), ("y", 4), ("scale", 1), ("shape", 0), ("orientation", 2))


def make_fragment_ensemble(path, *, models: int = 6, latents: int = 5, n_points: int = 200, seed: int = 0,
                           resolution: int = 32, empty_fraction: float = 0.2, width: int = 8,
                           hidden: int = 64, weights: bool = True, overwrite: bool = False) -> Path:
    """Write a synthetic ensemble whose channels carry known sprites factors.

    Each model's latent j carries one factor of the fingerprint (x, y, scale, shape or
    orientation, chosen per model so every factor recurs across models), with a random sign and
    posterior noise, or, with probability ``empty_fraction``, nothing (a prior-like channel).
    Member weights are untrained networks of the sprites architecture (``weights=False``: none).

    Parameters
    ----------
    path : target directory.  models, latents : K and L.  n_points : fingerprint size N.
    resolution : sprites image side (32 or 64).  width, hidden : network size of the members.

    Returns
    -------
    Path of the written ensemble (`store.write_ensemble`).
    """
    from vaefrag.datasets import make_dataset
    from vaefrag.store import write_ensemble
    from vaefrag.training import fingerprint_sample, member_seeds

    rng = np.random.default_rng(seed)
    ds = make_dataset("sprites", resolution=resolution)
    _, x, factors = fingerprint_sample(ds, n_points, seed)
    f = factors.astype(np.float64)
    z = (f - f.mean(0)) / np.where(f.std(0) > 0, f.std(0), 1.0)
    z[:, 2] = np.cos(2 * np.pi * f[:, 2] / 40.0) * 1.4          # orientation as a smooth channel
    mu = np.zeros((models, n_points, latents), dtype=np.float32)
    logvar = np.zeros_like(mu)
    for k in range(models):
        frag = rng.permutation(len(_FRAGMENTS))
        for j in range(latents):
            if rng.random() < empty_fraction or j >= len(frag):
                mu[k, :, j] = rng.normal(0, 0.02, n_points)
                logvar[k, :, j] = rng.normal(0, 0.02, n_points)
                continue
            col = _FRAGMENTS[frag[j]][1]
            sigma = rng.uniform(0.08, 0.3)
            mu[k, :, j] = rng.choice([-1, 1]) * z[:, col] + rng.normal(0, 0.05, n_points)
            logvar[k, :, j] = 2 * np.log(sigma) + rng.normal(0, 0.05, n_points)
    manifest = {"name": Path(path).name, "source": {"kind": "synthetic fragments", "seed": seed},
                "dataset": {"name": "sprites", "params": ds.params(), "shape": list(ds.shape),
                            "factor_names": list(ds.factor_names)},
                "fingerprint": {"size": n_points, "seed": seed},
                "members": [{"id": k, "seed": s} for k, s in enumerate(member_seeds(seed, models))]}
    state = None
    if weights:
        import torch

        from vaefrag.models import EnsembleVAE, make_spec

        spec = make_spec(ds.shape, latents, width=width, hidden=hidden, likelihood=ds.likelihood)
        manifest["model"] = {"family": "untrained", "spec": spec}
        torch.manual_seed(seed)
        net = EnsembleVAE(spec, models)
        net.init_members(member_seeds(seed, models))
        state = [net.member_state(k) for k in range(models)]
    return write_ensemble(path, manifest, mu, logvar, x=x, factors=factors, factor_names=list(ds.factor_names),
                          weights=state, overwrite=overwrite)


# --------------------------------------------------------------------------------------- measuring
def _post(session, base: str, payload: dict) -> tuple[dict, int]:
    r = session.post(base + "/_dash-update-component", data=json.dumps(payload),
                     headers={"Content-Type": "application/json"}, timeout=120)
    r.raise_for_status()
    return (r.json() if r.content else {}), len(r.content)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="vaefrag bench dashboard", description=__doc__.splitlines()[0])
    parser.add_argument("--ensemble", help="ensemble directory (default: a synthetic 50 x 10 ensemble)")
    parser.add_argument("--models", type=int, default=50)
    parser.add_argument("--latents", type=int, default=10)
    parser.add_argument("--points", type=int, default=1000)
    parser.add_argument("--port", type=int, default=8071)
    parser.add_argument("--repeats", type=int, default=3, help="passes over the hotspots for the click time")
    parser.add_argument("--cache-dir", help="analysis cache (default: a temporary directory)")
    args = parser.parse_args(argv)
    from vaefrag.dashboard import bench_client

    with tempfile.TemporaryDirectory(prefix="vaefrag-bench-") as tmp:
        tmp = Path(tmp)
        if args.ensemble:
            ens = Path(args.ensemble)
        else:
            print(f"writing a synthetic {args.models} x {args.latents} ensemble (N={args.points}) ...", flush=True)
            ens = make_fragment_ensemble(tmp / "ensembles" / "bench-fragments", models=args.models,
                                         latents=args.latents, n_points=args.points, resolution=64,
                                         width=32, hidden=256)
        cache = Path(args.cache_dir) if args.cache_dir else tmp / "cache"
        print("warming the analysis cache (vaefrag analyze) ...", flush=True)
        from vaefrag.analysis import analyze

        t = time.perf_counter()
        a = analyze(ens, cache_dir=cache)
        print(f"  {len(a.kept)} channels kept of {len(a.info)}, {len(a.hotspots)} hotspots, "
              f"{time.perf_counter() - t:.1f} s", flush=True)
        cmd = [sys.executable, "-m", "vaefrag", "serve", "--ensembles", str(ens.parent), "--default", ens.name,
               "--port", str(args.port), "--cache-dir", str(cache)]
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        try:
            res = bench_client.measure(f"http://127.0.0.1:{args.port}", t0, ens.name, repeats=args.repeats)
        finally:
            proc.terminate()
            proc.wait(timeout=20)
    print()
    print(f"{'measure':<44}{'value':>12}  target")
    print(f"{'server start -> first full render (s)':<44}{res['start_s']:>12.2f}  < 3")
    print(f"{'hotspot click -> traversal images, median (s)':<44}{res['click_median_s']:>12.3f}  < 0.3")
    print(f"{'  (selection / traversal callback medians, s)':<44}"
          f"{res['select_median_s']:>6.3f}/{res['traversal_median_s']:.3f}")
    print(f"{'largest callback response (MB)':<44}{res['max_bytes'] / 1e6:>12.2f}  < 2   ({res['max_name']})")
    print(f"channels: {len(a.info)} ({len(a.kept)} kept), clicks timed: {res['n_clicks']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
