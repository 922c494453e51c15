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
    t.add_argument("--ensembles", metavar="DIR", help="write the member ensembles to DIR/NAME-KEY-VALUE (e.g. "
                                                      "data/ensembles, where the dashboard opens them) instead of "
                                                      "inside the sweep directory")
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

    a = sub.add_parser("analyze", help="track hotspots from value to value: table, figure, CSVs",
                       description="Find the hotspots of every member ensemble (analysis cache, no bootstrap), "
                                   "link hotspots of neighbouring values by the mean NMI between their channels, "
                                   "name the events (appears / splits / merges / fades / continues), print the "
                                   "per-value table and write tracking.{pdf,svg,png} and levels.csv, "
                                   "hotspots.csv, links.csv, events.csv to --out.")
    a.add_argument("name", help="sweep directory, or a name under data/sweeps/")
    add_tracking_options(a)
    a.add_argument("--out", metavar="DIR", help="output directory (default SWEEP/analysis)")
    a.set_defaults(func=run_analyze)


def add_tracking_options(p) -> None:
    """Hotspot and link options shared by `sweep analyze` and `dynamics`."""
    p.add_argument("--measure", choices=("nmi", "vi"), default="nmi", help="hotspot distance (default nmi)")
    p.add_argument("--threshold", type=float, default=0.01,
                   help="channels with less information (bits) are set aside (default 0.01)")
    p.add_argument("--min-samples", type=int, default=None, help="OPTICS min_samples (default about K / 2)")
    p.add_argument("--xi", type=float, default=None, help="OPTICS xi in (0, 1) (default 0.05)")
    p.add_argument("--min-nmi", type=float, default=0.3, help="smallest mean NMI inside a hotspot (default 0.3)")
    p.add_argument("--min-link", type=float, default=None,
                   help="mean cross NMI from which hotspots of neighbouring levels are linked (default 0.25)")
    p.add_argument("--cache", default=None, metavar="DIR", help="analysis cache directory")
    p.add_argument("--device", default="auto", help="torch device for the measures (default auto)")


def tracking_kwargs(args) -> dict:
    if args.min_samples is not None and args.min_samples < 2:
        raise CLIError(f"--min-samples: expected an integer >= 2, got {args.min_samples}")
    if not args.threshold >= 0:
        raise CLIError(f"--threshold: expected a number of bits >= 0, got {args.threshold}")
    if args.min_link is not None and not 0 < args.min_link <= 1:
        raise CLIError(f"--min-link: expected a number in (0, 1], got {args.min_link}")
    return dict(measure=args.measure, info_threshold=args.threshold, min_samples=args.min_samples, xi=args.xi,
                min_nmi=args.min_nmi, min_link=args.min_link, cache_dir=args.cache, device=args.device)


def _cell(v) -> str:
    if isinstance(v, float):
        return "-" if v != v else f"{v:.3g}" if abs(v) < 1000 else f"{v:.0f}"
    return str(v)


def tracking_summary(tracking) -> str:
    """Per-level table and the list of events (not continuations) as text."""
    from vaefrag.commands.analyze import _table
    from vaefrag.tracking import event_rows, level_rows

    rows = level_rows(tracking)
    cols = ["level", "hotspots", "mean_hotspot_size", "mean_models_fraction", "channels_in_hotspots", "informative", "fraction_in_hotspots",
            "mean_channel_info", "mean_mig", "mean_sap", "mean_udr", "mean_final_loss", "appears", "splits",
            "merges", "fades_after"]
    out = [_table(cols, [[_cell(r[c]) for c in cols] for r in rows]), "",
           f"events (hotspots linked when their mean cross NMI >= {tracking.min_link:g}; hotspots numbered from 1):"]
    events = [e for e in event_rows(tracking) if e["event"] != "continues"]
    n_cont = sum(1 for e in tracking.events if e.kind == "continues")
    for e in events:
        src = f"{e['from']} #{e['sources']}" if e["sources"] else e["from"]
        dst = f"{e['to']} #{e['targets']}" if e["targets"] else e["to"]
        out.append(f"  {e['event']:<8} {src} -> {dst}" + (f"  (NMI {e['nmi']})" if e["nmi"] else ""))
    out.append(f"  ({n_cont} one-to-one continuations)")
    return "\n".join(out)


def write_tracking(tracking, out_dir, *, factor_names=None, title: str = "", x_label: str = "level") -> list[Path]:
    """tracking.pdf/.svg/.png and levels.csv, hotspots.csv, links.csv, events.csv in ``out_dir``."""
    import csv

    from vaefrag.figures.paper import save_figure
    from vaefrag.figures.sweep import tracking_figure
    from vaefrag.tracking import event_rows, hotspot_rows, level_rows

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    links = [{"from": tracking.levels[i].label, "to": tracking.levels[i + 1].label, "hotspot_from": a + 1,
              "hotspot_to": b + 1, "mean_nmi": round(w, 6)}
             for i, mat in enumerate(tracking.weights) for a in range(mat.shape[0]) for b in range(mat.shape[1])
             for w in [float(mat[a, b])] if w == w]
    paths = []
    for name, rows in (("levels", level_rows(tracking)), ("hotspots", hotspot_rows(tracking)), ("links", links),
                       ("events", event_rows(tracking))):
        path = out_dir / f"{name}.csv"
        with open(path, "w", newline="") as fh:
            if rows:
                w = csv.DictWriter(fh, fieldnames=list(rows[0]))
                w.writeheader()
                w.writerows(rows)
        paths.append(path)
    import matplotlib.pyplot as plt

    fig = tracking_figure(tracking, factor_names, title=title, x_label=x_label)
    for fmt in ("pdf", "svg", "png"):
        paths.append(save_figure(fig, out_dir / f"tracking.{fmt}", dpi=150))
    plt.close(fig)
    return paths


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
                          ensembles_dir=args.ensembles,
                          progress=bar_progress(bar))
    print(f"wrote {out / 'sweep.json'}")
    return 0


def run_analyze(args) -> int:
    from vaefrag.sweep import analyze_sweep, load_sweep

    sw = load_sweep(resolve_sweep(args.name))
    tracking, analyses = analyze_sweep(sw, **tracking_kwargs(args))
    print(f"sweep {sw.name} ({sw.path}): {sw.key} = {', '.join(str(v) for v in sw.values)}")
    print(tracking_summary(tracking))
    names = analyses[0].factor_names if analyses else None
    for p in write_tracking(tracking, args.out or sw.path / "analysis", factor_names=names,
                            title=f"sweep {sw.name}", x_label=sw.key):
        print(f"wrote {p}")
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
