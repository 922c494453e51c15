"""`vaefrag spaces ENSEMBLE`: Monte Carlo NMI / VI between the full latent spaces of the models."""
from __future__ import annotations

import csv
import sys
from vaefrag.commands._args import device, directory, int_in


#: points re-encoded by default (log2 8000 = 13 bits of headroom against log2 1000 = 10 for the fingerprint)
DEFAULT_SAMPLE_SIZE = 8000


def sample_size_for(ensemble, asked: int | None) -> int | None:
    """The sample to re-encode: ``asked`` (0 -> None, the fingerprint), or by default
    DEFAULT_SAMPLE_SIZE when the ensemble has member weights and a built-in dataset, else None."""
    if asked is not None:
        if asked < 0 or asked == 1:
            raise ValueError(f"--sample-size must be 0 (the fingerprint) or >= 2, got {asked}")
        return asked or None
    dataset = (ensemble.manifest.get("dataset") or {}).get("name")
    return DEFAULT_SAMPLE_SIZE if ensemble.has_encoders and dataset not in (None, "imported") else None


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "spaces", help="compare full latent spaces of an ensemble's models",
        description="Model x model matrix of NMI and VI between whole latent spaces (Monte Carlo over a "
                    "dataset sample, with standard errors) and each model's I(X;U). Cached like `analyze`.")
    p.add_argument("ensemble", help="ensemble directory, or a name under --ensembles DIR")
    p.add_argument("--samples", type=int_in(1, 10**6), default=2000, help="Monte Carlo draws per estimate (default 2000)")
    p.add_argument("--sample-size", type=int_in(0, 10**6),
                   help=f"re-encode this many dataset points with the members (default {DEFAULT_SAMPLE_SIZE} where "
                        "the members can encode (weights or ONNX encoders) and the dataset is known, else the stored fingerprint posteriors; "
                        "0: always the fingerprint). The fingerprint's N points cap information at log2 N bits")
    p.add_argument("--seed", type=int_in(0, 2**32 - 1), default=0, help="Monte Carlo seed (default 0)")
    p.add_argument("--device", type=device, default="auto", help="torch device (default auto)")
    p.add_argument("--no-cache", action="store_true", help="neither read nor write the cache")
    p.add_argument("--cache-dir", type=directory, help="cache directory (default $VAEFRAG_CACHE or ~/.cache/vaefrag)")
    p.add_argument("--csv", help="write one row per model pair to this CSV file")
    p.add_argument("--figure", help="write the plotly figure (html) to this file")
    p.set_defaults(func=run)


def run(args) -> int:
    from tqdm import tqdm

    from vaefrag.commands import bar_progress

    from vaefrag import spaces
    from vaefrag.store import load_ensemble

    if args.samples < 2:
        raise ValueError(f"--samples must be >= 2, got {args.samples}")
    from vaefrag.store import resolve_ensemble

    ens = load_ensemble(resolve_ensemble(args.ensemble, args.ensembles))
    sample_size = sample_size_for(ens, args.sample_size)
    with tqdm(desc="estimates", unit="est") as bar:
        progress = bar_progress(bar)

        res = spaces.ensemble_spaces(ens, n_samples=args.samples, sample_size=sample_size,
                                     seed=args.seed, device=args.device, cache_dir=args.cache_dir,
                                     use_cache=not args.no_cache, progress=progress)
    print(f"{res.ensemble_name}: {res.n_models} models, {res.n_points} points, {res.n_samples} draws"
          + (" (cached)" if res.from_cache else ""))
    print(f"  dataset sample: {res.n_points} points, "
          + (f"re-encoded from the dataset with the members' weights (information capped at log2 {res.n_points} "
             f"= {__import__('math').log2(res.n_points):.2f} bits)" if sample_size else
             f"the stored fingerprint posteriors (information capped at log2 {res.n_points} = "
             f"{__import__('math').log2(res.n_points):.2f} bits)"))
    for k in range(res.n_models):
        print(f"  model {k}: I(X;U) = {res.info[k]:.3f} ± {res.info_err[k]:.3f} bits")
    off = ~__import__("numpy").eye(res.n_models, dtype=bool)
    if res.n_models > 1:
        print(f"  mean NMI between models {float(res.nmi[off].mean()):.3f}, mean VI {float(res.vi[off].mean()):.3f} bits")
    rows = spaces.spaces_rows(res)
    if args.csv:
        with open(args.csv, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=list(rows[0]))
            w.writeheader()
            w.writerows(rows)
        print(f"wrote {args.csv}", file=sys.stderr)
    if args.figure:
        from vaefrag.figures.fusion import spaces_figure

        spaces_figure(res).write_html(args.figure)
        print(f"wrote {args.figure}", file=sys.stderr)
    return 0
