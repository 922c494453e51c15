"""`vaefrag fuse ENSEMBLE --channels 0:0,3:0 ...`: fuse channels into one representation."""
from __future__ import annotations

import numpy as np
from vaefrag.commands._args import float_in, int_in


def parse_channels(text: str, n_models: int, n_latents: int) -> list[tuple[int, int]]:
    """'all' or comma-separated MODEL:LATENT (or MODEL for latent 0) -> (model, latent) pairs."""
    if text.strip() == "all":
        return [(m, l) for m in range(n_models) for l in range(n_latents)]
    out = []
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        try:
            m, l = (part.split(":") + ["0"])[:2] if ":" in part else (part, "0")
            out.append((int(m), int(l)))
        except ValueError:
            raise ValueError(f"--channels: expected MODEL:LATENT pairs separated by commas, got {part!r}") from None
    if not out:
        raise ValueError("--channels: expected at least one channel, got an empty selection")
    return out


def register(subparsers) -> None:
    from vaefrag.fusion import OBJECTIVES

    p = subparsers.add_parser(
        "fuse", help="fuse a set of channels into one representation",
        description="Optimize a k-dimensional posterior per fingerprint point to agree with the chosen channels "
                    "(average NMI, exp(-VI) or shared information) and write the fused posteriors, its NMI "
                    "with each input and a figure.")
    p.add_argument("ensemble", help="ensemble directory, or a name under --ensembles DIR")
    p.add_argument("--channels", default="all", help="'all' or MODEL:LATENT,... (default all)")
    p.add_argument("--k", type=int_in(1, 64), default=2, help="dimensions of the fused space (default 2)")
    p.add_argument("--objective", choices=sorted(OBJECTIVES), default="nmi", help="objective (default nmi)")
    p.add_argument("--steps", type=int_in(1, 10**6), default=1500, help="Adam steps (default 1500)")
    p.add_argument("--lr", type=float_in(0, 10, open_lo=True), default=0.05, help="learning rate (default 0.05)")
    p.add_argument("--init", choices=("mds", "random"), default="mds",
                   help="start: classical MDS of the inputs' mean fingerprint, or random means (default mds)")
    p.add_argument("--seed", type=int_in(0, 2**32 - 1), default=0, help="seed of the random start (default 0)")
    p.add_argument("--factor", help="factor name to colour the figure by (default the first factor)")
    p.add_argument("--out", required=True, help="output npz (mu, logvar, bc, nmi_inputs, vi_inputs, channels)")
    p.add_argument("--figure", help="write the fused-space figure (html) here")
    p.set_defaults(func=run)


def run(args) -> int:
    from tqdm import tqdm

    from vaefrag.commands import bar_progress

    from vaefrag import fusion
    from vaefrag.store import load_ensemble, resolve_ensemble

    ens = load_ensemble(resolve_ensemble(args.ensemble, args.ensembles))
    channels = parse_channels(args.channels, ens.n_models, ens.n_latents)
    fusion.select_channels(ens.mu, ens.logvar, channels)      # errors before the progress bar starts
    with tqdm(desc="fusion", unit="step", total=args.steps) as bar:
        progress = bar_progress(bar)

        res = fusion.fuse_selection(ens.mu, ens.logvar, channels, k=args.k, objective=args.objective,
                                    steps=args.steps, lr=args.lr, seed=args.seed, init=args.init,
                                    progress=progress)
    np.savez(args.out, mu=res.mu, logvar=res.logvar, bc=res.bc, nmi_inputs=res.nmi_inputs, vi_inputs=res.vi_inputs,
             channels=np.asarray(channels), history=res.history)
    print(f"fused {len(channels)} channels into {args.k} dims ({args.objective}): I(X;F) = {res.info:.3f} bits, "
          f"NMI with inputs mean {res.mean_nmi:.3f} (min {res.nmi_inputs.min():.3f}); wrote {args.out}")
    if args.figure:
        from vaefrag.figures.fusion import fused_space_figure

        factor, name = None, "factor"
        if ens.factors is not None and ens.factor_names:
            j = ens.factor_names.index(args.factor) if args.factor in ens.factor_names else 0
            if args.factor and args.factor not in ens.factor_names:
                raise ValueError(f"--factor: expected one of {ens.factor_names}, got {args.factor!r}")
            factor, name = ens.factors[:, j], ens.factor_names[j]
        fused_space_figure(res, factor=factor, factor_name=name).write_html(args.figure)
        print(f"wrote {args.figure}")
    return 0
