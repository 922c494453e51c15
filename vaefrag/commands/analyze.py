"""`vaefrag analyze ENSEMBLE`: hotspots, stability, maps and model scores (cached), as tables."""
from __future__ import annotations

import contextlib
import math
import os
import time
from pathlib import Path

from vaefrag.cli import CLIError
from vaefrag.commands._args import device, directory

def add_analysis_args(p) -> None:
    """Options shared by `analyze` and `export` (the parameters of `analysis.analyze`)."""
    p.add_argument("ensemble", metavar="ENSEMBLE",
                   help="ensemble directory, or the name of one under --ensembles DIR")
    add_hotspot_options(p)
    p.add_argument("--dask", default=None, metavar="SCHEDULER",
                   help="run the tiles as Dask tasks: 'local' for a local cluster of --workers processes, "
                        "or a scheduler address such as tcp://host:8786 (needs vaefrag[distributed])")
    p.add_argument("--workers", type=int, default=None,
                   help="worker processes of a local Dask cluster (default: one per core)")


#: CLI flag of each analysis parameter (errors name the flag)
FLAGS = {"measure": "--measure", "info_threshold": "--threshold", "min_samples": "--min-samples", "xi": "--xi",
         "min_nmi": "--min-nmi", "n_bootstrap": "--bootstrap", "maps": "--maps", "seed": "--seed",
         "preset": "--preset", "scores": "--scores", "stages": "--stages"}


def add_hotspot_options(p) -> None:
    """The parameters of `analysis.analyze` (also used by `compare`); defaults from `params.AnalysisParams`."""
    from vaefrag.params import DEFAULT_INFO_THRESHOLD, DEFAULT_MIN_NMI, DEFAULT_N_BOOTSTRAP, DEFAULT_XI, PRESETS

    p.add_argument("--preset", choices=sorted(PRESETS), default=None,
                   help="named hotspot settings: 'paper' = the reference code's OPTICS procedure (min_samples 20, "
                        "xi 0.05, no mean-NMI filter); explicit options override it (default: default)")
    p.add_argument("--measure", choices=("nmi", "vi"), default=None,
                   help="distance for the hotspots: -ln NMI or VI (default nmi)")
    p.add_argument("--threshold", type=float, default=None,
                   help=f"channels with less information (bits) are set aside (default {DEFAULT_INFO_THRESHOLD:g})")
    p.add_argument("--min-samples", type=int, default=None,
                   help="OPTICS min_samples (>= 2; default about half the number of models)")
    p.add_argument("--xi", type=float, default=None, help=f"OPTICS xi in (0, 1) (default {DEFAULT_XI:g})")
    p.add_argument("--min-nmi", type=float, default=None,
                   help=f"smallest mean NMI between the members of a hotspot, 0 for none (default {DEFAULT_MIN_NMI:g})")
    p.add_argument("--bootstrap", type=int, default=None, metavar="N",
                   help=f"resamples of the fingerprint points for hotspot stability, 0 to skip "
                        f"(default {DEFAULT_N_BOOTSTRAP})")
    p.add_argument("--maps", default=None, help="channel maps to compute: mds,umap / mds / none (default mds,umap)")
    p.add_argument("--scores", default=None,
                   help="model scores to require, e.g. mig,sap,udr (default: MIG/SAP when the ensemble has factors)")
    p.add_argument("--seed", type=int, default=None, help="seed of the resamples and the maps (default 0)")
    p.add_argument("--cache", type=directory, default=None, metavar="DIR",
                   help="cache directory (default $VAEFRAG_CACHE or ~/.cache/vaefrag)")
    p.add_argument("--no-cache", action="store_true", help="neither read nor write the cache")
    p.add_argument("--device", type=device, default="auto", help="torch device for the measures (default auto)")
    p.add_argument("--tile", type=int, default=None, metavar="CHANNELS",
                   help="compute the channel pairs in tiles of at most this many channels (default 2048)")


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "analyze", help="hotspots, maps and scores of an ensemble (cached)",
        description="Compare every latent channel of an ensemble with every other (NMI/VI), find "
                    "hotspots of channels that recur across models (OPTICS), measure how stable each "
                    "hotspot is under bootstrap resampling of the fingerprint, compute MDS/UMAP maps and "
                    "model scores (MIG, SAP, UDR). Results are cached: a second call returns at once.")
    add_analysis_args(p)
    p.set_defaults(func=run)


def resolve_ensemble(arg: str, root=None) -> Path:
    """ENSEMBLE argument -> directory (`store.resolve_ensemble`: a path, or a name under the root)."""
    from vaefrag.store import resolve_ensemble as resolve

    return resolve(arg, root)


def _list(value: str | None, name: str) -> tuple | None:
    if value is None:
        return None
    items = tuple(v.strip().lower() for v in value.split(",") if v.strip())
    return () if items in ((), ("none",)) else items


def analysis_params(args):
    """The `params.AnalysisParams` of the hotspot options (one validation; errors name the flag)."""
    from vaefrag.params import AnalysisParams, ParameterError

    try:
        return AnalysisParams.from_values(
            preset=args.preset, measure=args.measure, info_threshold=args.threshold, min_samples=args.min_samples,
            xi=args.xi, min_nmi=args.min_nmi, n_bootstrap=args.bootstrap, maps=args.maps, seed=args.seed)
    except ParameterError as exc:
        raise CLIError(f"{FLAGS.get(exc.param, exc.param)} ({exc.param}): {exc.detail}") from exc


def analysis_kwargs(args) -> dict:
    """Keywords of `analysis.analyze` from the parsed options."""
    params = analysis_params(args)
    if args.tile is not None and args.tile < 1:
        raise CLIError(f"--tile: expected a number of channels >= 1, got {args.tile}")
    if getattr(args, "workers", None) is not None and (args.workers < 1 or args.dask != "local"):
        raise CLIError(f"--workers: expected a number >= 1 together with --dask local, got {args.workers}"
                       f" with --dask {args.dask}")
    return dict(params=params, scores=_list(args.scores, "scores"), cache_dir=args.cache,
                use_cache=not args.no_cache, device=args.device, block_channels=args.tile)


def run_analysis(args):
    """Load the ensemble and analyze it with a tqdm progress bar. Returns (ensemble, analysis, seconds)."""
    from tqdm import tqdm

    from vaefrag.analysis import analyze
    from vaefrag.store import load_ensemble

    kwargs = analysis_kwargs(args)
    ens = load_ensemble(resolve_ensemble(args.ensemble, getattr(args, "ensembles", None)))
    bar = None

    def progress(done, total, message=""):
        nonlocal bar
        if bar is None:
            bar = tqdm(total=total, desc="analyze", unit="step", leave=False)
        bar.n = done
        bar.set_postfix_str(message)
        bar.refresh()

    t0 = time.perf_counter()
    try:
        with contextlib.ExitStack() as stack:
            if args.dask:
                # Dask logs every worker start and stop at INFO, here and in the worker processes
                os.environ.setdefault("DASK_LOGGING__DISTRIBUTED", "warning")
                from vaefrag.distributed import cluster_client, dask_tile_map
                try:
                    client = stack.enter_context(cluster_client(None if args.dask == "local" else args.dask,
                                                                n_workers=args.workers))
                except ImportError as exc:
                    raise CLIError(f"--dask: {exc}") from exc
                kwargs["map_tiles"] = dask_tile_map(client)
            result = analyze(ens, progress=progress, **kwargs)
    finally:
        if bar is not None:
            bar.close()
    return ens, result, time.perf_counter() - t0


def _fmt(v, spec=".2f", missing="-") -> str:
    return missing if v is None or (isinstance(v, float) and not math.isfinite(v)) else format(v, spec)


def _table(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(header)]
    line = lambda cells: "  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(cells, widths)))
    return "\n".join([line(header), line(["-" * w for w in widths])] + [line(r) for r in rows])


def summary(ens, a, seconds: float) -> str:
    """The text the CLI prints: channels kept, hotspot table, model table, timings."""
    from vaefrag.results import hotspot_rows

    k, n, l_ = ens.mu.shape
    p = a.params
    out = [f"ensemble {ens.name} ({ens.path}): {k} models x {l_} latents, {n} fingerprint points",
           f"channels kept: {len(a.kept)} of {k * l_} (information >= {p['info_threshold']:g} bits); "
           f"measure {p['measure']}, min_samples {_fmt(p['min_samples'], 'd', 'auto')}, "
           f"xi {_fmt(p['xi'], 'g', 'auto')}, min_nmi {p['min_nmi']:g}; hotspots: {len(a.hotspots)}"]
    rows = []
    for r in hotspot_rows(a):
        ci = "-" if not math.isfinite(r["nmi_ci_lo"]) else f"[{r['nmi_ci_lo']:.2f}, {r['nmi_ci_hi']:.2f}]"
        factor = "-" if not r["best_factor"] else f"{r['best_factor']} ({r['best_factor_nmi']:.2f})"
        rows.append([str(r["hotspot"]), str(r["size"]), f"{r['models']}/{k}", _fmt(r["mean_info_bits"]),
                     _fmt(r["mean_nmi"]), factor, _fmt(r["stability"]), ci,
                     f"model {r['medoid_model']}, ch {r['medoid_latent']}"])
    if rows:
        out += ["", _table(["hotspot", "size", "models", "info (bits)", "NMI", "best factor (NMI)",
                            f"stability ({p['n_bootstrap']} boot)", "NMI 95% CI", "medoid"], rows)]
    else:
        out += ["", "no hotspots found (try a smaller --min-samples or --min-nmi)"]
    t = a.model_table
    mrows = [[str(m), _fmt(t["info"][m], ".1f"), _fmt(t["n_informative"][m], ".0f"), _fmt(t["mig"][m], ".3f"),
              _fmt(t["sap"][m], ".3f"), _fmt(t["udr"][m], ".3f"), _fmt(t["final_loss"][m], ".1f")]
             for m in range(k)]
    out += ["", _table(["model", "info (bits)", "informative", "MIG", "SAP", "UDR", "final loss"], mrows)]
    if a.from_cache:
        out += ["", f"served from cache in {seconds:.2f} s (key {a.key[:12]})"]
    else:
        parts = ", ".join(f"{name} {a.timings[name]:.2f} s" for name in
                          ("measures", "hotspots", "bootstrap", "maps", "scores") if name in a.timings)
        parts = parts.replace("bootstrap", "stability")
        out += ["", f"computed in {seconds:.2f} s ({parts}); cached as {a.key[:12]}"]
    return "\n".join(out)


def run(args) -> int:
    ens, a, seconds = run_analysis(args)
    print(summary(ens, a, seconds))
    return 0
