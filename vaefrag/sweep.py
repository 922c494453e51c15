"""A sweep: several ensembles along one recipe value (beta, or any other) on the same fingerprint points.

On disk a sweep is a directory holding ``sweep.json``::

    {"format_version": 1, "name": "...", "key": "beta",
     "values": [1.0, 2.0, ...],
     "members": [{"value": 1.0, "ensemble": "beta-1"}, ...]}

``members[i].ensemble`` is the path of that value's ensemble directory relative to the sweep
directory (``vaefrag sweep train`` writes them inside it; ``vaefrag sweep make`` points at existing
ones, e.g. ``../../ensembles/NAME``). Values are sorted increasing; all members share their
fingerprint points (checked with :func:`vaefrag.crossrun.check_same_points` when made).
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vaefrag import store

SWEEP_FILE = "sweep.json"
FORMAT_VERSION = 1


class SweepError(ValueError):
    """A sweep on disk (or its input) is invalid; the message names the file and the field."""


@dataclass
class Sweep:
    """A loaded sweep: ``key`` swept, ``values`` [V] increasing, ``paths`` [V] member ensemble dirs."""

    path: Path
    name: str
    key: str
    values: list
    paths: list

    def label(self, i: int) -> str:
        return f"{self.key}={format_value(self.values[i])}"

    def load(self, i: int) -> store.Ensemble:
        return store.load_ensemble(self.paths[i])


def format_value(value) -> str:
    """A swept value as text: 4.0 -> '4', 0.5 -> '0.5'."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def member_dir_name(key: str, value) -> str:
    return store.safe_name(f"{key}-{format_value(value)}")


def _write_sweep_file(path: Path, name: str, key: str, values, rel_paths) -> Path:
    order = np.argsort(np.asarray(values, dtype=float), kind="stable")
    obj = {"format_version": FORMAT_VERSION, "name": name, "key": key,
           "values": [values[i] for i in order],
           "members": [{"value": values[i], "ensemble": str(rel_paths[i])} for i in order]}
    path.mkdir(parents=True, exist_ok=True)
    tmp = path / (SWEEP_FILE + ".tmp")
    tmp.write_text(json.dumps(obj, indent=1) + "\n")
    os.replace(tmp, path / SWEEP_FILE)
    return path


def recipe_value(manifest: dict, key: str):
    """The value of recipe key ``key`` in a manifest: a recipe field (``steps``) or a hyperparameter
    (``beta``); None when it records neither."""
    recipe = manifest.get("recipe") or {}
    if key in recipe and not isinstance(recipe[key], dict):
        return recipe[key]
    hyper = recipe.get("hyperparameters") or (manifest.get("model") or {}).get("hyperparameters") or {}
    return hyper.get(key)


def check_members(ensembles, where: str = "sweep") -> None:
    """Raise ValueError unless every ensemble shares the fingerprint points of the first."""
    from vaefrag.crossrun import check_same_points

    for other in ensembles[1:]:
        try:
            check_same_points(ensembles[0], other)
        except ValueError as exc:
            raise SweepError(f"{where}: members must share their fingerprint points; {exc}") from None


def make_sweep(out, ensembles, key: str, values=None, name: str | None = None,
               overwrite: bool = False) -> Path:
    """Write a sweep at ``out`` over existing ensemble directories.

    Parameters
    ----------
    out : sweep directory to create.  ensembles : list of V ensemble directories.
    key : the swept recipe key (``beta``, ``steps``, ...).
    values : list of V values, or None to read ``key`` from each manifest's recipe.

    Raises SweepError for a missing member, members on different points, missing or repeated values.
    """
    out = Path(out)
    if (out / SWEEP_FILE).exists() and not overwrite:
        raise FileExistsError(f"{out / SWEEP_FILE}: already exists (use --overwrite to replace it)")
    if len(ensembles) < 2:
        raise SweepError(f"sweep: needs at least 2 member ensembles, got {len(ensembles)}")
    loaded = []
    for p in ensembles:
        if not (Path(p) / store.MANIFEST).is_file():
            raise SweepError(f"sweep: member ensemble {p} does not exist (no {store.MANIFEST})")
        loaded.append(store.load_ensemble(p))
    if values is None:
        values = [recipe_value(e.manifest, key) for e in loaded]
        missing = [str(e.path) for e, v in zip(loaded, values) if v is None]
        if missing:
            raise SweepError(f"sweep: {', '.join(missing)} records no recipe value {key!r}; give the values")
    if len(values) != len(loaded):
        raise SweepError(f"sweep: {len(values)} values for {len(loaded)} ensembles")
    if len(set(map(float, values))) != len(values):
        raise SweepError(f"sweep: the values of {key!r} must differ, got {list(values)}")
    check_members(loaded)
    rel = [os.path.relpath(Path(p).resolve(), out.resolve()) for p in ensembles]
    return _write_sweep_file(out, name or out.name, key, list(values), rel)


def load_sweep(path) -> Sweep:
    """Load and validate ``path/sweep.json``; every member ensemble must exist."""
    path = Path(path)
    f = path / SWEEP_FILE
    if not f.is_file():
        raise FileNotFoundError(f"{f}: no such sweep (make one with `vaefrag sweep make` or `sweep train`)")
    try:
        obj = json.loads(f.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise SweepError(f"{f}: not valid JSON ({exc})") from None
    if not isinstance(obj, dict) or not isinstance(obj.get("key"), str):
        raise SweepError(f"{f}: field 'key' must be a string")
    members = obj.get("members")
    if not isinstance(members, list) or len(members) < 2 or not all(
            isinstance(m, dict) and isinstance(m.get("ensemble"), str) and isinstance(m.get("value"), (int, float))
            for m in members):
        raise SweepError(f"{f}: field 'members' must list >= 2 objects with 'value' (number) and 'ensemble' (path)")
    paths = []
    for i, m in enumerate(members):
        p = Path(m["ensemble"])
        if p.is_absolute():
            raise SweepError(f"{f}: field 'members[{i}].ensemble' must be relative to the sweep, got {p}")
        full = (path / p)
        if not (full / store.MANIFEST).is_file():
            raise SweepError(f"{f}: member ensemble 'members[{i}].ensemble' = {m['ensemble']} is missing "
                             f"(no {full / store.MANIFEST})")
        paths.append(full)
    values = [m["value"] for m in members]
    if any(b <= a for a, b in zip(values, values[1:])):
        raise SweepError(f"{f}: member values must increase, got {values}")
    return Sweep(path=path, name=str(obj.get("name", path.name)), key=obj["key"], values=values, paths=paths)


def train_sweep(out, key: str, values, recipe: dict, *, group_size: int = 10, device="cpu",
                checkpoints: int = 0, ensembles_dir=None, progress=None, member_progress=None) -> Path:
    """Train one ensemble per value of ``key`` (other recipe fields from ``recipe``) inside ``out``
    (``out/KEY-VALUE``), or with ``ensembles_dir`` as ``ensembles_dir/OUTNAME-KEY-VALUE`` (e.g.
    data/ensembles, where the dashboard opens them).

    Resumable: finished member ensembles are kept, an interrupted one resumes
    (:func:`vaefrag.training.train_ensemble`). ``sweep.json`` is written once all are done.
    ``key`` is a recipe field (``steps``, ``latents``, ...) or a hyperparameter (``beta``, ...).
    """
    from vaefrag.training import RECIPE_KEYS, train_ensemble

    out = Path(out)
    values = sorted(values, key=float)
    if len(values) < 2 or len(set(map(float, values))) != len(values):
        raise SweepError(f"sweep: needs >= 2 distinct values of {key!r}, got {list(values)}")
    dirs = [out / member_dir_name(key, v) if ensembles_dir is None else
            Path(ensembles_dir) / store.safe_name(f"{out.name}-{member_dir_name(key, v)}") for v in values]
    order = [0, len(values) - 1] + list(range(1, len(values) - 1))   # the ends first: an early stop still spans
    for done, i in enumerate(order):
        value = values[i]
        r = json.loads(json.dumps(recipe))
        if key in RECIPE_KEYS and key not in ("hyperparameters", "dataset_params"):
            r[key] = value
        else:
            r["hyperparameters"] = {**r.get("hyperparameters", {}), key: value}
        d = dirs[i]
        if progress is not None:
            progress(done, len(values), f"{key}={format_value(value)}")
        if (d / store.MANIFEST).is_file():
            if recipe_value(json.loads((d / store.MANIFEST).read_text()), key) != value:
                raise SweepError(f"{d}: holds an ensemble of another {key}; remove it to retrain")
            continue
        train_ensemble(d, **r, group_size=group_size, device=device, checkpoints=checkpoints,
                       progress=None, member_progress=member_progress)
    check_members([store.load_ensemble(d) for d in dirs], where=str(out))
    _write_sweep_file(out, out.name, key, list(values), [os.path.relpath(d.resolve(), out.resolve()) for d in dirs])
    if progress is not None:
        progress(len(values), len(values), "done")
    return out


def track_ensembles(ensembles, labels, values, *, min_link: float | None = None, cache_dir=None,
                    device="auto", progress=None, **analysis_params):
    """Hotspots of each ensemble (in order) tracked from one to the next (:mod:`vaefrag.tracking`).

    Parameters
    ----------
    ensembles : list of V `store.Ensemble` (or directories) on the same fingerprint points.
    labels, values : V level labels and numbers.  min_link : link threshold
        (default ``tracking.DEFAULT_MIN_LINK``).
    analysis_params : hotspot parameters of ``analysis.analyze`` (measure, info_threshold,
        min_samples, xi, min_nmi, n_bootstrap; default no bootstrap), the same for every level;
        maps are not computed. Analyses come from (and go to) the analysis cache.

    Returns
    -------
    (`tracking.Tracking`, list of V analyses)
    """
    from vaefrag import analysis as analysis_mod
    from vaefrag import tracking
    from vaefrag.crossrun import compare_ensembles

    ens = [e if isinstance(e, store.Ensemble) else store.load_ensemble(e) for e in ensembles]
    check_members(ens)
    params = {"n_bootstrap": 0, **analysis_params, "maps": ()}
    total = 2 * len(ens) - 1
    analyses = []
    for i, e in enumerate(ens):
        analyses.append(analysis_mod.analyze(e, cache_dir=cache_dir, device=device, **params))
        if progress is not None:
            progress(i + 1, total, f"analysis of {labels[i]}")
    weights = []
    for i in range(len(ens) - 1):
        if not analyses[i].hotspots or not analyses[i + 1].hotspots or not len(analyses[i].kept) \
                or not len(analyses[i + 1].kept):
            weights.append(np.full((len(analyses[i].hotspots), len(analyses[i + 1].hotspots)), np.nan))
        else:
            res = compare_ensembles(ens[i], ens[i + 1], cache_dir=cache_dir, device=device, **params)
            weights.append(res.hotspot_nmi)
        if progress is not None:
            progress(len(ens) + i + 1, total, f"{labels[i]} -> {labels[i + 1]}")
    levels = [tracking.summarize_level(a, labels[i], values[i]) for i, a in enumerate(analyses)]
    kw = {} if min_link is None else {"min_link": min_link}
    return tracking.track(levels, weights, **kw), analyses


def analyze_sweep(sweep, **kw):
    """:func:`track_ensembles` over the members of a sweep (a :class:`Sweep` or its directory)."""
    sw = sweep if isinstance(sweep, Sweep) else load_sweep(sweep)
    return track_ensembles(sw.paths, [sw.label(i) for i in range(len(sw.values))], sw.values, **kw)
