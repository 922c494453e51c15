"""`vaefrag train`: train an ensemble of VAEs on a built-in dataset or an npz file."""
from __future__ import annotations

import json
from pathlib import Path

from vaefrag.cli import CLIError
from vaefrag.commands._args import device, float_in, int_in


def register(subparsers) -> None:
    from vaefrag.datasets import DATASETS
    from vaefrag.models import FAMILIES

    p = subparsers.add_parser(
        "train", help="train an ensemble of VAEs",
        description="Train an ensemble of VAEs (members batched into one network) and write it to "
                    "--out. Rerunning an interrupted command resumes: finished members are kept. "
                    "--recipe ENSEMBLE/ensemble.json reproduces a stored ensemble.")
    p.add_argument("--recipe", help="ensemble.json (or ensemble directory) whose recorded recipe to reuse; "
                                    "other options given override it")
    p.add_argument("--dataset", choices=sorted(DATASETS), help="dataset (default sprites)")
    p.add_argument("--data-file", help="file of --dataset npz (key x, optional factors, factor_names), dsprites "
                                       "(DeepMind's npz) or shapes3d (3dshapes.h5)")
    p.add_argument("--data-dir", help="directory of --dataset mnist / fashion-mnist (idx files, as torchvision "
                                      "saves them) or images (a folder of images, optional labels.csv)")
    p.add_argument("--resolution", type=int, choices=(32, 64), help="sprites image side (default 64)")
    p.add_argument("--family", choices=sorted(FAMILIES), help="objective (default beta-vae)")
    p.add_argument("--beta", type=float_in(0, 1e4), help="beta of beta-vae / beta-tcvae")
    p.add_argument("--gamma", type=float_in(0, 1e6), help="gamma of annealed-vae / beta-tcvae")
    p.add_argument("--capacity", type=float_in(0, 1e4), help="final KL capacity of annealed-vae (nats)")
    p.add_argument("--models", type=int_in(1, 10000), help="number of members (default 10)")
    p.add_argument("--latents", type=int_in(1, 4096), help="latent dimensions per model (default 10)")
    p.add_argument("--steps", type=int_in(1, 10**8), help="Adam steps per member (default 1000)")
    p.add_argument("--batch-size", type=int_in(1, 65536), help="minibatch per member (default 64)")
    p.add_argument("--lr", type=float_in(0, 10, open_lo=True), help="learning rate (default 1e-3)")
    p.add_argument("--seed", type=int_in(0, 2**32 - 1), help="base seed (default 0)")
    p.add_argument("--width", type=int_in(1, 1024), help="conv channels (default 32)")
    p.add_argument("--hidden", type=int_in(1, 65536), help="hidden units (default 256)")
    p.add_argument("--decoder", choices=("mirror", "broadcast"),
                   help="image decoder: transposed convolutions mirroring the encoder, or the spatial "
                        "broadcast decoder (Watters et al. 2019; a per-pixel MLP of width --width) that "
                        "separates position and size into their own channels (default mirror)")
    p.add_argument("--fingerprint-size", type=int_in(2, 10**5), help="fingerprint points (default 1000)")
    p.add_argument("--fingerprint-seed", type=int_in(0, 2**32 - 1), help="fingerprint sample seed (default 0)")
    p.add_argument("--weights-dtype", choices=("float16", "float32"), help="stored weights (default float32)")
    p.add_argument("--group-size", type=int_in(1, 10000), default=10, help="members trained together as one network (default 10)")
    p.add_argument("--device", type=device, default="auto", help="torch device: auto, cpu, cuda, cuda:1 ... (default auto)")
    p.add_argument("--threads", type=int_in(1, 1024), help="torch CPU threads")
    p.add_argument("--shard", help="I/N: train only every N-th group of members starting at I (parallel "
                                   "processes); rerun without --shard to write the ensemble")
    p.add_argument("--checkpoints", type=int, default=0,
                   help="store each member's posteriors on the fingerprint at this many evenly spaced points "
                        "of training (ENSEMBLE/checkpoints/posteriors.npz, for `vaefrag dynamics`; default 0)")
    p.add_argument("--out", required=True, help="ensemble to write: a name (under --ensembles) or a directory path")
    p.add_argument("--overwrite", action="store_true", help="replace an existing ensemble at --out")
    p.set_defaults(func=run)


DEFAULTS = {"dataset": "sprites", "dataset_params": {}, "family": "beta-vae", "hyperparameters": {},
            "models": 10, "latents": 10, "steps": 1000, "batch_size": 64, "lr": 1e-3, "seed": 0, "width": 32,
            "hidden": 256, "decoder": "mirror", "obs_std": 0.1, "fingerprint_size": 1000, "fingerprint_seed": 0,
            "weights_dtype": "float32"}


def build_recipe(args) -> dict:
    """Recipe (train_ensemble keyword arguments) from --recipe plus the options given."""
    from vaefrag.training import recipe_from_manifest

    recipe = dict(DEFAULTS)
    if args.recipe:
        path = Path(args.recipe)
        if not path.exists():
            from vaefrag.store import resolve_ensemble

            try:
                path = resolve_ensemble(args.recipe, getattr(args, "ensembles", None))
            except FileNotFoundError:
                pass
        if path.is_dir():
            path = path / "ensemble.json"
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no such manifest")
        try:
            manifest = json.loads(path.read_text())
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path}: not valid JSON ({exc})") from None
        try:
            recipe = recipe_from_manifest(manifest)
        except ValueError as exc:
            raise ValueError(f"{path}: {exc}") from None
    if args.dataset and args.dataset != recipe["dataset"]:
        recipe["dataset"], recipe["dataset_params"] = args.dataset, {}
    params = dict(recipe["dataset_params"])
    if args.resolution is not None:
        if recipe["dataset"] != "sprites":
            raise CLIError("--resolution applies to --dataset sprites only")
        params["resolution"] = args.resolution
    from vaefrag.datasets import DATASETS, dataset_params

    cls = DATASETS.get(recipe["dataset"])
    needed = cls is not None and (cls.file_param or cls.dir_param)
    if args.data_file or args.data_dir or (needed and not params.get(needed)):
        try:
            params.update(dataset_params(recipe["dataset"], args.data_file, args.data_dir))
        except ValueError as exc:
            raise CLIError(str(exc)) from None
    recipe["dataset_params"] = params
    if args.family and args.family != recipe["family"]:
        recipe["family"], recipe["hyperparameters"] = args.family, {}
    hyper = dict(recipe["hyperparameters"])
    for key in ("beta", "gamma", "capacity"):
        if getattr(args, key) is not None:
            hyper[key] = getattr(args, key)
    recipe["hyperparameters"] = hyper
    for key in ("models", "latents", "steps", "batch_size", "lr", "seed", "width", "hidden", "decoder",
                "fingerprint_size", "fingerprint_seed", "weights_dtype"):
        if getattr(args, key) is not None:
            recipe[key] = getattr(args, key)
    return recipe


def resolve_device(name: str) -> str:
    import torch

    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return name


def run(args) -> int:
    import torch
    from tqdm import tqdm

    from vaefrag.training import train_ensemble

    recipe = build_recipe(args)
    if args.threads:
        torch.set_num_threads(args.threads)
    bars = {}

    def ens_progress(done, total, message=""):
        bar = bars.setdefault("ens", tqdm(total=total, desc="members", unit="model", position=0))
        bar.n = done
        bar.set_postfix_str(message, refresh=False)
        bar.refresh()

    def member_progress(done, total, message=""):
        bar = bars.get("grp")
        if bar is None or done == 1:
            if bar is not None:
                bar.close()
            bar = bars["grp"] = tqdm(total=total, desc="group", unit="step", position=1, leave=False)
        bar.n = done
        if done % 10 == 0 or done == total:
            bar.set_postfix_str(message, refresh=False)
            bar.refresh()

    shard = None
    if args.shard:
        try:
            i, n = (int(v) for v in args.shard.split("/"))
        except ValueError:
            raise CLIError(f"--shard must look like I/N (e.g. 0/2), got {args.shard!r}") from None
        shard = (i, n)
    from vaefrag.store import output_path

    out = output_path(args.out, args.ensembles)
    try:
        path = train_ensemble(out, **recipe, group_size=args.group_size, device=resolve_device(args.device),
                              overwrite=args.overwrite, progress=ens_progress, member_progress=member_progress,
                              shard=shard, checkpoints=args.checkpoints)
    except FileExistsError as exc:
        raise CLIError(str(exc)) from None
    finally:
        for bar in bars.values():
            bar.close()
    if path is None:
        print(f"shard {args.shard} done; rerun without --shard to write {out}")
    else:
        print(f"wrote {path}")
    return 0
