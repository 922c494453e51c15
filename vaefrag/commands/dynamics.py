"""`vaefrag dynamics ENSEMBLE`: repeat runs along training, from the posteriors stored at checkpoints."""
from __future__ import annotations

import csv
from pathlib import Path


def register(subparsers) -> None:
    from vaefrag.commands.sweep import add_tracking_options

    p = subparsers.add_parser(
        "dynamics", help="full-space NMI/VI between repeat runs and hotspots over training",
        description="For an ensemble trained with `vaefrag train --checkpoints C`: per checkpoint, the Monte "
                    "Carlo NMI / VI between the full latent spaces of every pair of models (mean over pairs, "
                    "their spread, the Monte Carlo error), and the channel hotspots tracked from checkpoint to "
                    "checkpoint (as `vaefrag sweep analyze`). Prints a table; writes dynamics.csv, "
                    "dynamics.{pdf,svg,png} and the tracking figure and CSVs to --out.")
    p.add_argument("ensemble", help="ensemble directory, or a name under data/ensembles/")
    p.add_argument("--samples", type=int, default=2000, help="Monte Carlo draws per estimate (default 2000)")
    p.add_argument("--seed", type=int, default=0, help="Monte Carlo seed (default 0)")
    p.add_argument("--no-tracking", action="store_true", help="skip the hotspots")
    add_tracking_options(p)
    p.add_argument("--out", metavar="DIR", help="output directory (default ENSEMBLE/../NAME-dynamics)")
    p.set_defaults(func=run)


def run(args) -> int:
    import matplotlib.pyplot as plt

    from vaefrag.commands.analyze import _table, resolve_ensemble
    from vaefrag.commands.sweep import _cell, tracking_kwargs, tracking_summary, write_tracking
    from vaefrag.dynamics import dynamics_rows, training_dynamics
    from vaefrag.figures.paper import save_figure
    from vaefrag.figures.sweep import dynamics_figure

    if args.samples < 2:
        raise ValueError(f"--samples must be >= 2, got {args.samples}")
    path = resolve_ensemble(args.ensemble)
    kw = tracking_kwargs(args)
    dyn = training_dynamics(path, n_samples=args.samples, seed=args.seed, track=not args.no_tracking, **kw)
    rows = dynamics_rows(dyn)
    print(f"{dyn.ensemble_name}: {dyn.nmi.shape[1]} repeat runs, {len(dyn.steps)} checkpoints, "
          f"{dyn.n_samples} Monte Carlo draws per estimate (VI in bits)")
    cols = list(rows[0])
    print(_table(cols, [[_cell(r[c]) for c in cols] for r in rows]))
    out = Path(args.out) if args.out else path.parent / f"{path.name}-dynamics"
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "dynamics.csv", "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=cols)
        w.writeheader()
        w.writerows(rows)
    written = [out / "dynamics.csv"]
    fig = dynamics_figure(dyn)
    for fmt in ("pdf", "svg", "png"):
        written.append(save_figure(fig, out / f"dynamics.{fmt}", dpi=150))
    plt.close(fig)
    if dyn.tracking is not None:
        print()
        print(tracking_summary(dyn.tracking))
        names = dyn.analyses[0].factor_names if dyn.analyses else None
        written += write_tracking(dyn.tracking, out, factor_names=names, title=f"{dyn.ensemble_name} over training",
                                  x_label="training step")
    for p in written:
        print(f"wrote {p}")
    return 0
