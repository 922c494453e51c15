"""`vaefrag sweep train|make|analyze`: ensembles along one recipe value on the same fingerprint points."""
from __future__ import annotations

import argparse
from pathlib import Path

from vaefrag.cli import CLIError

SWEEPS_ROOT = Path("data/sweeps")


def resolve_sweep(name: str) -> Path:
    """A sweep directory, or a name under data/sweeps/."""
    p = Path(name)
    if (p / "sweep.json").is_file() or p.is_dir() or "/" in name:
        return p
    return SWEEPS_ROOT / name


def _values(text: str) -> list[float]:
    try:
        values = [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}") from None
    if len(values) < 2:
        raise argparse.ArgumentTypeError(f"expected at least 2 comma-separated values, got {text!r}")
    return values


def register(subparsers) -> None:
    from vaefrag.commands import train as train_cmd

    p = subparsers.add_parser(
        "sweep", help="ensembles along one recipe value (beta, ...) on the same fingerprint points",
        description="A sweep is a directory with sweep.json naming one ensemble per value of a recipe key. "
                    "`train` trains them (resumable), `make` gathers existing ensembles, `analyze` tracks "
                    "hotspots from value to value.")
    sub = p.add_subparsers(dest="sweep_command", metavar="ACTION")
    sub.required = True

    tmp = argparse.ArgumentParser(add_help=False).add_subparsers()
    train_cmd.register(tmp)                      # the recipe options of `vaefrag train`, reused
    t = sub.add_parser("train", help="train one ensemble per value (resumable)", parents=[tmp.choices["train"]],
                       add_help=False, conflict_handler="resolve",
                       description="Train one ensemble per value of --key (default beta) into --out/KEY-VALUE/ "
                                   "with the other recipe options of `vaefrag train`, then write --out/sweep.json. "
                                   "Rerunning resumes; finished ensembles are kept.")
    t.add_argument("--key", default="beta", help="swept recipe key: a hyperparameter (beta, gamma, capacity) "
                                                  "or a recipe field (steps, latents, ...) (default beta)")
    t.add_argument("--values", "--beta", dest="values", type=_values, required=True,
                   help="comma-separated values of --key, e.g. 1,2,4,8")
    t.add_argument("--out", required=True, help="sweep directory, e.g. data/sweeps/NAME")
    t.set_defaults(func=run_train)

    m = sub.add_parser("make", help="a sweep from existing ensembles on the same points",
                       description="Write NAME/sweep.json over existing ensembles (refused when they do not share "
                                   "their fingerprint points).")
    m.add_argument("name", help="sweep directory, or a name under data/sweeps/")
    m.add_argument("ensembles", nargs="+", help="ensemble directories, or names under data/ensembles/")
    m.add_argument("--key", default="beta", help="swept recipe key (default beta)")
    m.add_argument("--values", type=_values, help="the values, one per ensemble (default: read from each recipe)")
    m.add_argument("--overwrite", action="store_true", help="replace an existing sweep.json")
    m.set_defaults(func=run_make)


def run_train(args) -> int:
    import torch
    from tqdm import tqdm

    from vaefrag.commands import bar_progress
    from vaefrag.commands.train import build_recipe, resolve_device
    from vaefrag.sweep import train_sweep

    if args.shard or args.overwrite:
        raise CLIError("sweep train: --shard and --overwrite are not supported (rerun to resume; remove a "
                       "member directory to retrain it)")
    args.beta = None
    recipe = build_recipe(args)
    if args.threads:
        torch.set_num_threads(args.threads)
    with tqdm(desc="sweep", unit="ensemble") as bar:
        out = train_sweep(args.out, args.key, args.values, recipe, group_size=args.group_size,
                          device=resolve_device(args.device), checkpoints=args.checkpoints,
                          progress=bar_progress(bar))
    print(f"wrote {out / 'sweep.json'}")
    return 0


def run_make(args) -> int:
    from vaefrag.commands.analyze import resolve_ensemble
    from vaefrag.sweep import make_sweep

    paths = [resolve_ensemble(e) for e in args.ensembles]
    try:
        out = make_sweep(resolve_sweep(args.name), paths, args.key, values=args.values, overwrite=args.overwrite)
    except FileExistsError as exc:
        raise CLIError(str(exc)) from None
    print(f"wrote {out / 'sweep.json'}")
    return 0
