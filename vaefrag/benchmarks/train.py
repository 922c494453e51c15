"""`python -m vaefrag bench train`: training throughput, members batched into one network vs one by one.

Both ways run the same per-member work (same architecture, objective, batch size and number of
steps, data rendered on the fly) in the same process, interleaved in rounds so that machine load
affects both alike. Prints images per second per member for each and their ratio.
"""
from __future__ import annotations

import argparse
import time

import torch


def _throughput(spec, dataset, family, members: int, steps: int, batch_size: int, batched: bool) -> float:
    from vaefrag.models import EnsembleVAE, make_objective
    from vaefrag.training import train_group

    objective = make_objective(family)
    seeds = list(range(members))
    t0 = time.perf_counter()
    if batched:
        net = EnsembleVAE(spec, members)
        net.init_members(seeds)
        train_group(net, objective, dataset, seeds, steps=steps, batch_size=batch_size, lr=1e-3)
    else:
        for s in seeds:
            net = EnsembleVAE(spec, 1)
            net.init_members([s])
            train_group(net, objective, dataset, [s], steps=steps, batch_size=batch_size, lr=1e-3)
    return steps * batch_size * members / (time.perf_counter() - t0) / members


def main(argv=None) -> int:
    from vaefrag.datasets import DATASETS, make_dataset
    from vaefrag.models import FAMILIES, make_spec

    p = argparse.ArgumentParser(prog="vaefrag bench train", description=__doc__.splitlines()[0])
    p.add_argument("--dataset", default="sprites", choices=sorted(DATASETS))
    p.add_argument("--resolution", type=int, default=32, choices=(32, 64), help="sprites image side")
    p.add_argument("--family", default="beta-vae", choices=sorted(FAMILIES))
    p.add_argument("--members", type=int, default=10)
    p.add_argument("--latents", type=int, default=10)
    p.add_argument("--width", type=int, default=16)
    p.add_argument("--hidden", type=int, default=128)
    p.add_argument("--decoder", default="mirror", choices=("mirror", "broadcast"), help="image decoder")
    p.add_argument("--steps", type=int, default=20, help="steps per member per round")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--rounds", type=int, default=3, help="alternating rounds (best round is reported)")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    params = {"resolution": args.resolution} if args.dataset == "sprites" else {}
    ds = make_dataset(args.dataset, **params)
    spec = make_spec(ds.shape, args.latents, width=args.width, hidden=args.hidden, likelihood=ds.likelihood,
                     decoder=args.decoder)
    print(f"dataset {args.dataset} {list(ds.shape)}, {spec['kind']} ({spec['decoder']} decoder) width {args.width} "
          f"hidden {args.hidden}, "
          f"{args.family}, {args.members} members x {args.steps} steps x batch {args.batch_size}, "
          f"{args.threads} thread(s)")
    # warm-up (allocators, kernels)
    _throughput(spec, ds, args.family, 2, 2, args.batch_size, True)
    _throughput(spec, ds, args.family, 1, 2, args.batch_size, False)
    best = {"batched": 0.0, "one by one": 0.0}
    for r in range(args.rounds):
        for mode in best:
            ips = _throughput(spec, ds, args.family, args.members, args.steps, args.batch_size, mode == "batched")
            best[mode] = max(best[mode], ips)
            print(f"round {r + 1}: {mode:>10}: {ips:8.1f} images/s per member")
    print(f"best: batched {best['batched']:.1f}, one by one {best['one by one']:.1f} images/s per member; "
          f"batched / one-by-one = {best['batched'] / best['one by one']:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
