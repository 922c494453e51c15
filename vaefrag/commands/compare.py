"""`vaefrag compare A B`: the information fragments two ensembles share, on the same fingerprint."""
from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np

from vaefrag.cli import CLIError
from vaefrag.commands.analyze import _fmt, _table, add_hotspot_options, analysis_kwargs, resolve_ensemble
from vaefrag.commands._args import float_in


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "compare", help="the fragments two ensembles share (same fingerprint points)",
        description="Compare every kept channel of ensemble A with every kept channel of ensemble B "
                    "(NMI/VI on their shared fingerprint points), and look for each hotspot of one among "
                    "the channels and hotspots of the other. Both ensembles are analysed with the same "
                    "hotspot options (cached, as `vaefrag analyze`).")
    p.add_argument("ensemble_a", metavar="A", help="ensemble directory, or a name under --ensembles DIR")
    p.add_argument("ensemble_b", metavar="B", help="ensemble directory, or a name under --ensembles DIR")
    add_hotspot_options(p)
    p.add_argument("--match-nmi", type=float_in(0, 1), default=0.5,
                   help="a channel carries a hotspot when its NMI with the hotspot's medoid is at least this "
                        "(default 0.5)")
    p.add_argument("--same-points", action="store_true",
                   help="vouch that A and B share their fingerprint points when their files cannot show it "
                        "(imported posteriors without inputs or factors)")
    p.add_argument("--out", metavar="DIR", default=None,
                   help="also write channels.npz (NMI/VI [Ma, Mb]), hotspots.csv (mean NMI between hotspots) "
                        "and matches.csv to DIR")
    p.set_defaults(func=run)


def _match_rows(matches, analysis) -> list[list[str]]:
    sizes = {h.id: h for h in analysis.hotspots}
    rows = []
    for m in matches:
        h = sizes[m.hotspot]
        other = "-" if m.best_hotspot is None else f"{m.best_hotspot + 1} ({m.best_hotspot_nmi:.2f})"
        chan = "-" if m.best_channel is None else f"model {m.best_channel[0]}, ch {m.best_channel[1]} ({m.best_channel_nmi:.2f})"
        rows.append([str(m.hotspot + 1), m.best_factor or "-", str(h.size), str(h.n_models), other, chan,
                     f"{m.models_matched}/{m.n_models_other}"])
    return rows


def summary(res, match_nmi: float) -> str:
    a, b = res.analysis_a, res.analysis_b
    out = [f"A = {res.name_a}: {len(res.channel_ids_a)} kept channels, {len(a.hotspots)} hotspots",
           f"B = {res.name_b}: {len(res.channel_ids_b)} kept channels, {len(b.hotspots)} hotspots"]
    for title, matches, mine, other in (("hotspots of A, looked for in B", res.matches_a, a, "B"),
                                        ("hotspots of B, looked for in A", res.matches_b, b, "A")):
        out += ["", title]
        if not matches:
            out.append("  (none)")
            continue
        out.append(_table(["hotspot", "best factor", "size", "models", f"best {other} hotspot (NMI)",
                           f"best {other} channel (NMI)", f"{other} models with NMI >= {match_nmi:g}"],
                          _match_rows(matches, mine)))
    best_a = np.nanmax(np.where(np.isfinite(res.nmi), res.nmi, -np.inf), axis=1)
    best_b = np.nanmax(np.where(np.isfinite(res.nmi), res.nmi, -np.inf), axis=0)
    out += ["", f"channels of A with a counterpart in B (NMI >= {match_nmi:g}): {int((best_a >= match_nmi).sum())} "
                f"of {best_a.size};  of B in A: {int((best_b >= match_nmi).sum())} of {best_b.size}"]
    return "\n".join(out)


def write_outputs(res, out_dir) -> list[Path]:
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [out_dir / "channels.npz", out_dir / "hotspots.csv", out_dir / "matches.csv"]
    np.savez(paths[0], nmi=res.nmi, vi=res.vi, channel_ids_a=res.channel_ids_a, channel_ids_b=res.channel_ids_b)
    with open(paths[1], "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["hotspot_a"] + [f"hotspot_b_{h.id + 1}" for h in res.analysis_b.hotspots])
        for h, row in zip(res.analysis_a.hotspots, res.hotspot_nmi):
            w.writerow([h.id + 1] + ["" if not math.isfinite(v) else round(float(v), 6) for v in row])
    with open(paths[2], "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["ensemble", "hotspot", "best_factor", "best_other_hotspot", "best_other_hotspot_nmi",
                    "best_other_model", "best_other_latent", "best_other_channel_nmi", "other_models_matched",
                    "other_models"])
        for name, matches in (("A", res.matches_a), ("B", res.matches_b)):
            for m in matches:
                bm, bl = m.best_channel if m.best_channel is not None else ("", "")
                w.writerow([name, m.hotspot + 1, m.best_factor or "",
                            "" if m.best_hotspot is None else m.best_hotspot + 1, _fmt(m.best_hotspot_nmi, ".6f", ""),
                            bm, bl, _fmt(m.best_channel_nmi, ".6f", ""), m.models_matched, m.n_models_other])
    return paths


def run(args) -> int:
    from vaefrag.crossrun import compare_ensembles

    if not 0.0 < args.match_nmi <= 1.0:
        raise CLIError(f"--match-nmi: expected a number in (0, 1], got {args.match_nmi}")
    kwargs = analysis_kwargs(args)
    root = getattr(args, "ensembles", None)
    path_a, path_b = resolve_ensemble(args.ensemble_a, root), resolve_ensemble(args.ensemble_b, root)
    res = compare_ensembles(path_a, path_b, match_nmi=args.match_nmi, same_points=args.same_points, **kwargs)
    print(summary(res, args.match_nmi))
    if args.out:
        for p in write_outputs(res, args.out):
            print(f"wrote {p}")
    return 0
