"""`vaefrag fingerprint ENSEMBLE --size N`: re-encode a new fingerprint sample with every member."""
from __future__ import annotations
from vaefrag.commands._args import device, int_in


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "fingerprint", help="re-encode a new fingerprint sample with every member",
        description="Draw a new fingerprint sample (SIZE points, SEED) from the ensemble's dataset and "
                    "re-encode it with every member's stored weights (or ONNX encoders). Replaces the ensemble's posteriors "
                    "atomically, or writes a new ensemble with --out.")
    p.add_argument("ensemble", help="ensemble directory, or a name under --ensembles DIR")
    p.add_argument("--size", type=int_in(2, 10**5), required=True, help="number of fingerprint points")
    p.add_argument("--seed", type=int_in(0, 2**32 - 1), default=0, help="sample seed (default 0)")
    p.add_argument("--out", help="write a new ensemble here (a name under --ensembles, or a path) instead of "
                                 "replacing ENSEMBLE")
    p.add_argument("--device", type=device, default="auto", help="torch device (default auto)")
    p.set_defaults(func=run)


def run(args) -> int:
    from tqdm import tqdm

    from vaefrag.commands import bar_progress

    from vaefrag.commands.train import resolve_device
    from vaefrag.store import load_ensemble, output_path, resolve_ensemble
    from vaefrag.training import refingerprint

    if args.size < 2:
        raise ValueError(f"--size must be >= 2, got {args.size}")
    ens = load_ensemble(resolve_ensemble(args.ensemble, args.ensembles))  # errors before the progress bar starts
    with tqdm(desc="members", unit="model") as bar:
        progress = bar_progress(bar)

        try:
            out = None if args.out is None else output_path(args.out, args.ensembles)
            path = refingerprint(ens, args.size, args.seed, out=out,
                                 device=resolve_device(args.device), progress=progress)
        except FileExistsError as exc:
            from vaefrag.cli import CLIError

            raise CLIError(str(exc)) from None
    print(f"wrote {path}")
    return 0
