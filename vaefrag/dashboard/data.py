"""Server-side data of the dashboard: ensembles, analyses and members, cached by content.

Nothing here is per-user state. Caches are read-through memos keyed by content (the analysis
cache key, an ensemble's path plus the modification time of its posteriors), so several users
can browse at once and a rewritten ensemble is never served stale. Big arrays stay on the
server; the browser holds only small tokens (`AnalysisToken` dicts) in ``dcc.Store``.
"""
from __future__ import annotations

import functools
import zipfile
from pathlib import Path


from vaefrag import members, store
from vaefrag.cache import default_cache_dir
from vaefrag.params import AnalysisParams


def _an():
    """`vaefrag.analysis`, imported on first use (with scikit-learn; off the start-up path)."""
    from vaefrag import analysis

    return analysis


#: members kept in memory (`load_member`'s memo), so hotspot clicks decode without loading weights
MAX_MEMBERS = 64

#: analysis parameters the dashboard controls, with their defaults (analyze's keywords)
DEFAULT_PARAMS = {k: v for k, v in AnalysisParams().to_dict().items() if k in ("measure", "info_threshold",
                                                                              "min_samples", "xi", "min_nmi")}

#: how the controls name the parameters in messages
_CONTROL_NAMES = {"info_threshold": "information threshold (info_threshold)",
                  "min_nmi": "smallest mean NMI of a hotspot (min_nmi)"}


def clean_params(measure=None, info_threshold=None, min_samples=None, xi=None, min_nmi=None, preset=None) -> dict:
    """Validated analysis parameters from control values (None / '' -> default, or the preset's value).

    The validation is `params.AnalysisParams` (the one the library and CLI use); a ValueError
    names the control when a value is out of range. ``preset`` ("paper") fills the values not given.
    """
    from vaefrag.params import ParameterError

    try:
        p = AnalysisParams.from_values(preset=preset, measure=measure, info_threshold=info_threshold,
                                       min_samples=min_samples, xi=xi, min_nmi=min_nmi)
    except ParameterError as exc:
        raise ValueError(f"{_CONTROL_NAMES.get(exc.param, exc.param)}: {exc.detail}") from None
    return {k: p.to_dict()[k] for k in DEFAULT_PARAMS}


def ensemble_names(root) -> list[str]:
    """Names of the ensemble directories under ``root`` (`store.list_ensembles`)."""
    return [p.name for p in store.list_ensembles(root)]


def ensemble_options(root) -> list[dict]:
    """Dropdown options of the ensembles under ``root``; a broken one is labelled with its error
    (`store.ensemble_problem`: manifest and archive headers only) and opens to that error."""
    out = []
    for n in ensemble_names(root):
        problem = store.ensemble_problem(Path(root) / n)
        label = n if problem is None else f"{n} (broken: {problem.replace(str(root), '')[:120]})"
        out.append({"label": label, "value": n})
    return out


def ensemble_path(root, name: str) -> Path:
    """The directory of ensemble ``name`` under ``root``; the name must be a safe, existing one.

    Raises ValueError for names that are not `store.safe_name`-clean (no path escapes) and
    FileNotFoundError for unknown ensembles.
    """
    if not isinstance(name, str) or store.safe_name(name) != name:
        raise ValueError(f"ensemble: {name!r} is not a valid ensemble name")
    path = Path(root) / name
    if not (path / store.MANIFEST).is_file():
        raise FileNotFoundError(f"ensemble: no ensemble named {name!r} under {root}")
    return path


def _stamp(path: Path) -> int:
    return (path / store.POSTERIORS).stat().st_mtime_ns


@functools.lru_cache(maxsize=8)
def _ensemble(path: str, stamp: int) -> store.Ensemble:
    return store.load_ensemble(path)


def load_ensemble(path) -> store.Ensemble:
    """`store.load_ensemble`, memoised per (path, posteriors mtime). Treat the result as read-only."""
    path = Path(path)
    return _ensemble(str(path.resolve()), _stamp(path))


def analysis_key(path, params: dict) -> str:
    """The cache key `analyze` uses for this ensemble and these parameters (others at its defaults,
    so the dashboard and `vaefrag analyze` share cache entries; both maps are precomputed, so
    switching the map never computes)."""
    an = _an()
    ens = load_ensemble(path)
    return an.cache_key(ens.mu, ens.logvar, ens.factors, an.analysis_params(**params))


def _cache_dir(cache_dir) -> Path:
    return Path(cache_dir) if cache_dir else default_cache_dir()


@functools.lru_cache(maxsize=8)
def _analysis_by_key(cache_dir: str, key: str):
    """The cached analysis; KeyError when absent (exceptions are not memoised, hits are)."""
    hit = _an().lookup_key(key, cache_dir)
    if hit is None:
        raise KeyError(key)
    return hit


def _lookup(cache_dir, key: str):
    """The cached analysis of ``key`` or None; a damaged or unreadable entry reads as a miss."""
    if not isinstance(key, str) or len(key) > 128:
        return None
    try:
        return _analysis_by_key(str(_cache_dir(cache_dir)), key)
    except KeyError:
        return None
    except (ValueError, OSError, TypeError, EOFError, zipfile.BadZipFile) as exc:   # damaged entry
        import logging

        logging.getLogger(__name__).warning("analysis cache entry %s unreadable: %s", key[:16], exc)
        return None


def cached_analysis(path, params: dict, cache_dir=None):
    """The analysis if it is in the cache already (never computes), else None."""
    return _lookup(cache_dir, analysis_key(path, params))


def compute_analysis(path, params: dict, cache_dir=None, progress=None, preview=None):
    """Run (or load) `analyze` with the dashboard's parameters; ``progress(done, total, msg)``;
    ``preview(Analysis)``: the structure-only result as soon as the hotspots exist (`analyze`).

    Stage by stage: with the measures and resamples of the ensemble cached, a change of OPTICS
    parameters only re-clusters and refits the resamples (the maps and scores are read back).
    """
    return _an().analyze(path, **params, cache_dir=_cache_dir(cache_dir), progress=progress, preview=preview)


def compute_structure(path, params: dict, cache_dir=None, progress=None):
    """The structure stage only (hotspots, ordering, matrix; no stability, maps or scores: they
    are listed in ``pending``), cached under its own key, so `analysis_from_token` finds it.
    With the measures cached this takes tens of milliseconds: show it, then `compute_analysis`."""
    return _an().analyze(path, **params, cache_dir=_cache_dir(cache_dir), progress=progress, stages=("structure",))


def token(name: str, params: dict, key: str) -> dict:
    """What the browser stores about a loaded analysis (small, JSON)."""
    return {"ensemble": name, "params": dict(params), "key": key}


def analysis_from_token(tok: dict | None, cache_dir=None):
    """The analysis a token names (from the memo / cache), or None when missing / no token."""
    if not tok or not tok.get("key"):
        return None
    return _lookup(cache_dir, tok["key"])


@functools.lru_cache(maxsize=MAX_MEMBERS)
def _member(path: str, stamp: int, k: int):
    return members.load_member(load_ensemble(path), k)


def load_member(path, k: int):
    """`members.load_member`, memoised per (ensemble path, posteriors mtime, member)."""
    path = Path(path)
    return _member(str(path.resolve()), _stamp(path), int(k))


def import_numerics(torch_threads: int | None = None, preload=None) -> None:
    """Import torch and the traversal code (1.5-3 s), which only a hotspot click needs, set torch's
    CPU threads, and load the members of the ensemble at ``preload`` (if it has weights; at most
    `MAX_MEMBERS`). `create_app` runs this in a thread once the first page is served."""
    import torch

    import vaefrag.traversal  # noqa: F401

    if torch_threads:
        torch.set_num_threads(int(torch_threads))
    if preload is None or not (Path(preload) / store.MANIFEST).is_file():
        return
    try:
        ens = load_ensemble(preload)
        if ens.has_weights:
            for k in range(min(ens.n_models, MAX_MEMBERS)):
                load_member(preload, k)
    except (ValueError, OSError):        # a broken ensemble shows its error when clicked, not here
        return
