"""`vaefrag export ENSEMBLE --out FILE`: the paper figure (PDF/SVG/PNG) and, with --data, the numbers."""
from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np

from vaefrag.cli import CLIError
from vaefrag.commands.analyze import add_analysis_args, run_analysis
from vaefrag.commands._args import float_in, int_in


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "export", help="write the paper figure and data of an ensemble",
        description="Write the paper figure of an ensemble's analysis: reachability profile with numbered "
                    "hotspots, the ordered NMI (or VI) matrix, factor-NMI profiles and a traversal of each "
                    "hotspot's medoid channel. PDF/SVG are vector with embedded fonts; PNG is 300 dpi. "
                    "--data DIR also writes the matrices, orderings and tables (npz + CSV).")
    add_analysis_args(p)
    p.add_argument("--out", required=True, metavar="FILE", help="figure file to write")
    p.add_argument("--format", choices=("pdf", "svg", "png"), default=None,
                   help="figure format (default: the suffix of --out, else pdf)")
    p.add_argument("--matrix", choices=("nmi", "vi"), default=None,
                   help="matrix shown (default: the --measure of the hotspots)")
    p.add_argument("--traversals", choices=("auto", "yes", "no"), default="auto",
                   help="decode traversals of the hotspot medoids: auto = when the ensemble has weights; "
                        "yes = required (error without weights) (default auto)")
    p.add_argument("--rows", type=int_in(1, 16), default=3, help="base images per traversal (default 3)")
    p.add_argument("--values", type=int_in(2, 64), default=7, help="values along each traversal (default 7)")
    p.add_argument("--width", type=float_in(1, 40), default=7.0, help="figure width in inches (default 7, two columns)")
    p.add_argument("--data", metavar="DIR", default=None,
                   help="also write analysis.npz, channels.csv, hotspots.csv and models.csv to DIR")
    p.set_defaults(func=run)


def write_data(analysis, out_dir) -> list[Path]:
    """Matrices and orderings (npz) and channel / hotspot / model tables (CSV) into ``out_dir``.

    Hotspots are numbered from 1 in every file (``hotspot`` in the npz: 0 = in no hotspot).
    """
    from vaefrag.results import HOTSPOT_ROW_FIELDS, hotspot_numbers, hotspot_rows

    a = analysis
    d = Path(out_dir)
    d.mkdir(parents=True, exist_ok=True)
    arrays = a.export_arrays()
    arrays.update({f"model_{k}": v for k, v in a.model_table.items()})
    written = [d / "analysis.npz"]
    np.savez(written[0], **arrays)

    pos = a.positions()
    numbers = hotspot_numbers(a.labels)
    header = ["kept_index", "optics_position", "model", "latent", "info_bits", "hotspot", "reachability"]
    header += [f"{k}_{c}" for k in a.maps for c in "xy"]
    header += [f"nmi_{name}" for name in a.factor_names] if a.factor_nmi is not None else []
    rows = []
    for i, c in enumerate(a.kept):
        r = [i, int(pos[i]), *a.model_latent(i), float(a.info[c]), int(numbers[i]) if numbers[i] else "",
             float(a.reachability[pos[i]])]
        r += [float(v) for k in a.maps for v in a.maps[k][i]]
        r += [float(v) for v in a.factor_nmi[i]] if a.factor_nmi is not None else []
        rows.append(r)
    written.append(_csv(d / "channels.csv", header, rows))

    hrows = hotspot_rows(a)
    hheader = list(HOTSPOT_ROW_FIELDS)
    members = {h.number: ";".join(f"{m}:{c}" for m, c in h.channels) for h in a.hotspots}
    written.append(_csv(d / "hotspots.csv", hheader + ["members"],
                        [[r[k] for k in hheader] + [members[r["hotspot"]]] for r in hrows]))
    t = a.model_table
    keys = list(t)
    written.append(_csv(d / "models.csv", ["model"] + keys,
                        [[m] + [float(t[k][m]) for k in keys] for m in range(len(t[keys[0]]))]))
    return written


def _csv(path: Path, header: list, rows: list) -> Path:
    def cell(v):
        if isinstance(v, float):
            return "" if not math.isfinite(v) else f"{v:.6g}"
        return v

    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        w.writerows([[cell(v) for v in r] for r in rows])
    return path


def _check_writable(path: Path, option: str) -> None:
    """Refuse before any work when ``path``'s folder cannot hold a file: one of its parents is a file."""
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                raise CLIError(f"{option}: {parent} is a file, not a directory; cannot write {path}")
            return


def run(args) -> int:
    from vaefrag.commands.analyze import summary
    from vaefrag.figures.paper import paper_figure, save_figure

    out = Path(args.out)
    if out.is_dir():
        raise CLIError(f"--out: {out} is a directory; expected a figure file such as {out / 'figure.pdf'}")
    fmt = args.format or (out.suffix.lstrip(".").lower() or "pdf")
    if fmt not in ("pdf", "svg", "png"):
        raise CLIError(f"--out: cannot tell the format from {out.name!r}; give --format pdf|svg|png")
    if out.suffix.lstrip(".").lower() != fmt:
        out = out.with_name(out.name + f".{fmt}")
    if args.rows < 1 or args.values < 2:
        raise CLIError(f"--rows must be >= 1 and --values >= 2, got {args.rows}, {args.values}")
    _check_writable(out, "--out")
    if args.data:
        _check_writable(Path(args.data) / "x", "--data")
    ens, analysis, seconds = run_analysis(args)
    traversals = None
    if args.traversals != "no":
        if not ens.has_weights or ens.x is None:
            if args.traversals == "yes":
                raise CLIError(f"--traversals yes: ensemble {ens.name} ({ens.path}) has no member weights "
                               "(or no fingerprint inputs) to decode traversals with")
            print(f"note: ensemble {ens.name} has no member weights; the figure has no traversals")
        else:
            from vaefrag.traversal import hotspot_traversals

            traversals = hotspot_traversals(ens, analysis, n_rows=args.rows, n_values=args.values, seed=args.seed)
    fig = paper_figure(analysis, traversals, measure=args.matrix, width=args.width)
    save_figure(fig, out, fmt)
    print(summary(ens, analysis, seconds))
    print(f"\nfigure: {out}")
    if args.data:
        for path in write_data(analysis, args.data):
            print(f"data: {path}")
    return 0
