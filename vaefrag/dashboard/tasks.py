"""The long work of the dashboard, as plain functions a job worker runs (no Dash imported here).

Each task takes its whitelisted parameters (`PARAMS`; `check_params` enforces names and types), the
app's ensembles root and cache directory, and ``progress(done, total, message)``; it returns a small
result (an analysis key, a spaces key, a fusion or comparison result). Analyses and full-space
comparisons go to the content-keyed cache (`vaefrag.cache`), so the server reads them from there.
Ensemble names resolve only inside the root (`data.ensemble_path`).
"""
from __future__ import annotations

import math
from pathlib import Path

from vaefrag.dashboard import data

#: fusion of a selection: at most this many channels, these many Adam steps at most
MAX_FUSE_INPUTS, MAX_FUSE_STEPS = 40, 2000
#: fusion settings: dimensions, Adam steps and learning rate, seed. With lr 0.1 the objective is
#: within 0.5 % of its 300-step value after 150 steps (sprites, N=1000); a step costs 0.1-0.2 s of
#: one CPU core for 10-40 inputs, plus ~6 s to set up 40 inputs: about 20-35 s in all.
FUSE_K, FUSE_STEPS, FUSE_LR, FUSE_SEED = 2, 150, 0.1, 0
#: the analysis parameters a client may set (the rest stay at `analyze`'s defaults)
ANALYSIS_PARAMS = {"measure": (str,), "info_threshold": (float,), "min_samples": (int, type(None)),
                   "xi": (float, type(None)), "min_nmi": (float,)}
#: per task: parameter name -> accepted types (ints are accepted where floats are)
PARAMS: dict[str, dict[str, tuple]] = {
    "analysis": {"ensemble": (str,), **ANALYSIS_PARAMS},
    "spaces": {"ensemble": (str,)},
    "fusion": {"ensemble": (str,), "channels": (list,), "objective": (str,), "steps": (int,)},
    "compare": {"ensemble": (str,), "other": (str,), **ANALYSIS_PARAMS},
    "sweep": {"sweep": (str,)},
    "dynamics": {"ensemble": (str,)},
}
#: Monte Carlo draws per full-space estimate in the dashboard's training timeline
DYN_SAMPLES = 1000


#: upper bounds the analysis parameters' own checks leave open (`data.clean_params`)


def clean_analysis_params(measure=None, info_threshold=None, min_samples=None, xi=None, min_nmi=None) -> dict:
    """`data.clean_params` (the one validation, `params.AnalysisParams`, bounds included), with every
    malformed value from a browser (wrong type, an overlong string) as ValueError."""
    for name, v in (("measure", measure), ("information threshold", info_threshold), ("min_samples", min_samples),
                    ("xi", xi), ("min_nmi", min_nmi)):
        if v is not None and (isinstance(v, (bool, list, dict)) or (isinstance(v, str) and len(v) > 40)):
            raise ValueError(f"{name}: expected a number, got {type(v).__name__}")
    try:
        p = data.clean_params(measure, info_threshold, min_samples, xi, min_nmi)
    except (TypeError, OverflowError) as exc:
        raise ValueError(f"analysis parameters: {exc}") from None
    return p


def check_params(kind: str, params) -> dict:
    """``params`` if it names exactly the parameters of task ``kind`` with their types, else ValueError.

    Floats must be finite; ``channels`` must be a list of at most `MAX_FUSE_INPUTS` [model, latent]
    pairs of small non-negative ints; ``steps`` in [1, `MAX_FUSE_STEPS`]. Ranges of the analysis
    parameters: `clean_analysis_params` (`data.clean_params`).
    """
    if kind not in PARAMS:
        raise ValueError(f"job kind: expected one of {sorted(PARAMS)}, got {kind!r}")
    if not isinstance(params, dict):
        raise ValueError(f"{kind} job: parameters must be an object, got {type(params).__name__}")
    spec = PARAMS[kind]
    if set(params) != set(spec):
        extra, missing = sorted(set(params) - set(spec)), sorted(set(spec) - set(params))
        raise ValueError(f"{kind} job: unexpected parameters {extra}, missing {missing}")
    out = {}
    for name, types in spec.items():
        v = params[name]
        if isinstance(v, bool) or not isinstance(v, types if float not in types else (*types, int)):
            raise ValueError(f"{kind} job: parameter {name!r} must be {' or '.join(t.__name__ for t in types)}, "
                             f"got {type(v).__name__}")
        if isinstance(v, float) and not math.isfinite(v):
            raise ValueError(f"{kind} job: parameter {name!r} must be finite, got {v}")
        if isinstance(v, str) and len(v) > 240:
            raise ValueError(f"{kind} job: parameter {name!r} is longer than 240 characters")
        out[name] = float(v) if float in types and v is not None else v
    if kind in ("analysis", "compare"):
        cleaned = clean_analysis_params(out["measure"], out["info_threshold"], out["min_samples"], out["xi"],
                                        out["min_nmi"])
        out.update(cleaned)
    if kind == "fusion":
        ch = out["channels"]
        if not 1 <= len(ch) <= MAX_FUSE_INPUTS or not all(
                isinstance(p, list) and len(p) == 2 and all(type(i) is int and 0 <= i < 10**6 for i in p) for p in ch):
            raise ValueError(f"fusion job: 'channels' must be 1 to {MAX_FUSE_INPUTS} [model, latent] pairs "
                             "of non-negative integers")
        if not 1 <= out["steps"] <= MAX_FUSE_STEPS:
            raise ValueError(f"fusion job: 'steps' must lie in [1, {MAX_FUSE_STEPS}], got {out['steps']}")
    return out


def _analysis_params(p: dict) -> dict:
    return {k: p[k] for k in ANALYSIS_PARAMS}


def run(kind: str, params: dict, root, cache_dir, progress=None, partial=None):
    """Run task ``kind`` (after `check_params`) on the ensembles under ``root``.

    ``partial(value)``, if given, receives a result a page can show before the task ends: for an
    analysis, {"key", "n_hotspots"} of its structure-only stage (cached) as soon as the hotspots exist.

    Returns: analysis -> {"key"}; spaces -> {"key"}; fusion -> `fusion.FusionResult`;
    compare -> `crossrun.EnsembleComparison`. Bad input raises ValueError / FileNotFoundError.
    """
    p = check_params(kind, params)
    root = Path(root)
    if kind == "sweep":
        return track_sweep(p["sweep"], root, cache_dir, progress)
    path = data.ensemble_path(root, p["ensemble"])
    if progress is not None:
        progress(0, 1, "loading the ensemble ...")
    if kind == "analysis":
        preview = None if partial is None else (lambda a: partial({"key": a.key, "n_hotspots": len(a.hotspots)}))
        res = data.compute_analysis(path, _analysis_params(p), cache_dir, progress=progress, preview=preview)
        return {"key": res.key, "n_hotspots": len(res.hotspots)}
    if kind == "dynamics":
        from vaefrag.dynamics import training_dynamics

        return training_dynamics(path, n_samples=DYN_SAMPLES, cache_dir=cache_dir, progress=progress,
                                 **data.DEFAULT_PARAMS)
    if kind == "spaces":
        from vaefrag import spaces

        res = spaces.ensemble_spaces(data.load_ensemble(path), cache_dir=cache_dir, progress=progress)
        return {"key": res.key}
    if kind == "fusion":
        from vaefrag import fusion

        if p["objective"] not in fusion.OBJECTIVES:
            raise ValueError(f"fusion job: objective must be one of {sorted(fusion.OBJECTIVES)}, got {p['objective']!r}")
        ens = data.load_ensemble(path)
        return fusion.fuse_selection(ens.mu, ens.logvar, p["channels"], k=FUSE_K, objective=p["objective"],
                                     steps=p["steps"], lr=FUSE_LR, seed=FUSE_SEED, progress=progress)
    from vaefrag import crossrun

    other = data.ensemble_path(root, p["other"])
    return crossrun.compare_ensembles(path, other, cache_dir=cache_dir, progress=progress, **_analysis_params(p))


def sweeps_root(root) -> Path:
    """``sweeps/`` beside the ensembles directory ``root``."""
    return Path(root).parent / "sweeps"


def sweep_names(root) -> list[str]:
    """The sweeps (directories with a ``sweep.json``) beside the ensembles directory ``root``."""
    sroot = sweeps_root(root)
    if not sroot.is_dir():
        return []
    return sorted(p.name for p in sroot.iterdir() if p.is_dir() and not p.name.startswith(".")
                  and (p / "sweep.json").is_file())


def track_sweep(name: str, root, cache_dir, progress=None) -> dict:
    """Hotspots of every member of sweep ``name`` (one of `sweep_names`), tracked along its values
    (`sweep.analyze_sweep`, the dashboard's default hotspot parameters).

    Returns {"sweep", "key", "paths" [str], "tracking" (`tracking.Tracking`), "factor_names"}.
    """
    from vaefrag import sweep as sweep_mod

    if name not in sweep_names(root):
        raise ValueError(f"No sweep named {name!r} under {sweeps_root(root)}.")
    sw = sweep_mod.load_sweep(sweeps_root(root) / name)
    if progress is not None:
        progress(0, 1, "analysing the members ...")
    tracking, analyses = sweep_mod.analyze_sweep(sw, cache_dir=cache_dir, progress=progress, **data.DEFAULT_PARAMS)
    return {"sweep": name, "key": sw.key, "paths": [str(q) for q in sw.paths], "tracking": tracking,
            "factor_names": list(analyses[0].factor_names) if analyses else None}
