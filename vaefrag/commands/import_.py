"""`vaefrag import FILE.npz --name NAME`: make an ensemble from posteriors computed elsewhere."""
from __future__ import annotations


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "import", help="make an ensemble from posteriors in an npz file",
        description="Make an ensemble from posteriors computed elsewhere. FILE.npz holds mu and logvar "
                    "[K models, N points, L latents] (or [N, L] for one model), optionally x (the "
                    "fingerprint inputs [N, ...]), factors (int [N, F]) and factor_names ([F] strings). "
                    "See docs/import.md.")
    p.add_argument("file", help="npz file")
    p.add_argument("--name", required=True, help="ensemble name (directory under --root)")
    p.add_argument("--root", default="data/ensembles", help="directory of ensembles (default data/ensembles)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing ensemble of that name")
    p.set_defaults(func=run)


def run(args) -> int:
    from vaefrag.store import check_archive, import_posteriors, load_ensemble

    from vaefrag.cli import CLIError

    check_archive(args.file)            # sizes from the zip directory and .npy headers, before reading
    try:
        path = import_posteriors(args.file, args.name, args.root, overwrite=args.overwrite)
    except FileExistsError as exc:
        raise CLIError(str(exc)) from None
    ens = load_ensemble(path)
    print(f"wrote {path}: {ens.n_models} models x {ens.n_latents} latents, {ens.n_points} points"
          + (f", factors {ens.factor_names}" if ens.factor_names else ""))
    return 0
