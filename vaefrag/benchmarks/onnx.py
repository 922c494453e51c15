"""`python -m vaefrag bench onnx`: ONNX members against the same torch network, side by side.

A tutorial-style convolutional decoder (latents -> 256 -> 512 -> 32 x 4 x 4 -> four transposed
convolutions -> 1 x S x S, random weights) is exported to ONNX twice, with torch's current exporter
(``dynamo=True``, the default of `vaefrag.bring`) and the legacy TorchScript one; then a traversal grid (the dashboard's 2 bases x 7 steps) and a fingerprint batch are decoded by
the torch network and by the `OnnxMember` (onnxruntime, one thread; torch also on one thread),
interleaved in rounds so that machine load affects both alike. Prints seconds, ratios and the
largest difference of the outputs.
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np


def _best(fn, rounds: int) -> float:
    t = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        fn()
        t.append(time.perf_counter() - t0)
    return min(t)


def main(argv=None) -> int:
    import torch
    from torch import nn

    from vaefrag.bring import _export
    from vaefrag.models.onnx import OnnxMember

    p = argparse.ArgumentParser(prog="vaefrag bench onnx", description=__doc__.splitlines()[0])
    p.add_argument("--resolution", type=int, default=64, choices=(32, 64))
    p.add_argument("--latents", type=int, default=10)
    p.add_argument("--batch", type=int, default=256, help="fingerprint batch decoded (default 256)")
    p.add_argument("--rounds", type=int, default=5)
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    torch.manual_seed(0)
    shape = (1, args.resolution, args.resolution)
    ups = [m for _ in range(int(np.log2(args.resolution)) - 3) for m in (nn.ConvTranspose2d(32, 32, 4, 2, 1), nn.ReLU())]
    member = nn.Sequential(nn.Linear(args.latents, 256), nn.ReLU(), nn.Linear(256, 512), nn.ReLU(),
                           nn.Unflatten(1, (32, 4, 4)), *ups, nn.ConvTranspose2d(32, 1, 4, 2, 1), nn.Sigmoid()).eval()
    member.decode = member.forward
    net = member
    z_grid = torch.randn(14, args.latents)
    z_batch = torch.randn(args.batch, args.latents)
    with tempfile.TemporaryDirectory() as tmp:
        times, members = {}, {}
        for run, exporter in enumerate(("dynamo", "legacy", "dynamo", "legacy")):
            path = Path(tmp) / f"{exporter}{run}.onnx"
            t0 = time.perf_counter()
            _export(net, z_grid[:2], path, exporter, 1)
            times[exporter, run // 2] = time.perf_counter() - t0
            members[exporter] = OnnxMember(path, shape=shape, latents=args.latents)
        for i, when in enumerate(("first in the process", "again")):
            d, lg = times["dynamo", i], times["legacy", i]
            print(f"export one decoder ({when}): dynamo {d:.2f} s, legacy {lg:.2f} s (dynamo / legacy = {d / lg:.1f})")
        with torch.no_grad():
            ref_grid, ref_batch = member.decode(z_grid).numpy(), member.decode(z_batch).numpy()
        for exporter, om in members.items():
            diff = max(np.abs(om.decode_numpy(z_grid.numpy()) - ref_grid).max(),
                       np.abs(om.decode_numpy(z_batch.numpy()) - ref_batch).max())
            print(f"{exporter} export: largest |onnx - torch| = {diff:.2e}")
        om = members["dynamo"]
        for label, z in (("traversal grid (14 rows)", z_grid), (f"batch of {args.batch}", z_batch)):
            t_torch, t_onnx = [], []
            for _ in range(args.rounds):
                with torch.no_grad():
                    t_torch.append(_best(lambda: member.decode(z), 1))
                t_onnx.append(_best(lambda: om.decode(z), 1))
            a, b = min(t_torch), min(t_onnx)
            print(f"decode {label}: torch {a * 1e3:.2f} ms, onnxruntime {b * 1e3:.2f} ms "
                  f"(onnx / torch = {b / a:.2f})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
