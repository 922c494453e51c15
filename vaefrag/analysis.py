"""Ensemble -> Analysis: measures, hotspots, stability, maps and model scores, cached on disk.

`analyze` is the one call the CLI and the dashboard make. Results are cached with diskcache under
``cache_dir`` (default ``$VAEFRAG_CACHE`` or ``~/.cache/vaefrag``), keyed by the SHA-256 of the
posteriors, the factors, the parameters and the code version (the source of the numeric modules).
An entry is written only after the whole computation finished, so an interrupted run leaves none.
Entries are stored as npz bytes plus JSON (no pickle is ever loaded from the cache).
UMAP is computed here, once, so the dashboard never runs it on a click.
"""
from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from vaefrag import cache as result_cache
from vaefrag import structure   # measures / metrics (torch) are imported in _compute: keeps the dashboard's start-up light
from vaefrag.cache import CACHE_ENV, default_cache_dir
from vaefrag.structure import Hotspot

__all__ = ["Analysis", "analyze", "analysis_params", "lookup", "lookup_key", "default_cache_dir", "cache_key", "hotspot_rows",
           "CACHE_ENV"]

MAPS = ("mds", "umap")
Progress = Callable[..., None]
_CODE_MODULES = ("measures", "structure", "metrics", "analysis")


@dataclass
class Analysis:
    """Everything known about an ensemble's channels (see docs/architecture.md).

    channel_ids [M, 2] (model, latent); info, self_info [M] (bits); kept [Mk] indices into M of
    the channels above the threshold; nmi, vi [Mk, Mk]; factor_nmi [Mk, F] or None;
    ordering [Mk] (indices into kept); reachability [Mk] (OPTICS order); labels [Mk];
    hotspots list[Hotspot] (members / medoid index kept); maps name -> [Mk, 2];
    model_table name -> [K] ("info": summed channel information, "n_informative", "mig", "sap",
    "udr", "final_loss"; NaN where unavailable); timings name -> seconds; key: cache key.
    """

    ensemble_name: str
    params: dict
    channel_ids: np.ndarray
    info: np.ndarray
    self_info: np.ndarray
    kept: np.ndarray
    nmi: np.ndarray
    vi: np.ndarray
    factor_names: list
    factor_nmi: np.ndarray | None
    ordering: np.ndarray
    reachability: np.ndarray
    labels: np.ndarray
    hotspots: list
    maps: dict
    model_table: dict
    timings: dict = field(default_factory=dict)
    key: str = ""
    from_cache: bool = False

    @property
    def n_models(self) -> int:
        return int(self.channel_ids[:, 0].max()) + 1 if len(self.channel_ids) else 0

    @property
    def n_latents(self) -> int:
        return int(self.channel_ids[:, 1].max()) + 1 if len(self.channel_ids) else 0

    @property
    def measure(self) -> str:
        return self.params.get("measure", "nmi")

    def distance(self) -> np.ndarray:
        """[Mk, Mk] the distances OPTICS clustered (`structure.channel_distances`)."""
        return structure.channel_distances(self.nmi, self.vi, self.measure)

    # ------------------------------------------------------------------ (de)serialisation, no pickle
    def to_bytes(self) -> bytes:
        arrays = {"channel_ids": self.channel_ids, "info": self.info, "self_info": self.self_info,
                  "kept": self.kept, "nmi": self.nmi, "vi": self.vi, "ordering": self.ordering,
                  "reachability": self.reachability, "labels": self.labels}
        if self.factor_nmi is not None:
            arrays["factor_nmi"] = self.factor_nmi
        arrays.update({f"map_{k}": v for k, v in self.maps.items()})
        arrays.update({f"model_{k}": np.asarray(v, dtype=np.float64) for k, v in self.model_table.items()})
        meta = {"ensemble_name": self.ensemble_name, "params": self.params, "factor_names": list(self.factor_names),
                "timings": self.timings, "key": self.key, "hotspots": [_hotspot_json(h) for h in self.hotspots]}
        return result_cache.pack(arrays, meta)

    @classmethod
    def from_bytes(cls, data: bytes) -> "Analysis":
        arr, meta = result_cache.unpack(data)
        return cls(ensemble_name=meta["ensemble_name"], params=meta["params"], channel_ids=arr["channel_ids"],
                   info=arr["info"], self_info=arr["self_info"], kept=arr["kept"], nmi=arr["nmi"], vi=arr["vi"],
                   factor_names=meta["factor_names"], factor_nmi=arr.get("factor_nmi"), ordering=arr["ordering"],
                   reachability=arr["reachability"], labels=arr["labels"],
                   hotspots=[_hotspot_from_json(h) for h in meta["hotspots"]],
                   maps={k[4:]: v for k, v in arr.items() if k.startswith("map_")},
                   model_table={k[6:]: v for k, v in arr.items() if k.startswith("model_")},
                   timings=meta["timings"], key=meta["key"])


def _f(x) -> float | None:
    return None if x is None or not np.isfinite(x) else float(x)


def _hotspot_json(h: Hotspot) -> dict:
    return {"id": h.id, "members": h.members.tolist(), "channels": h.channels.tolist(), "size": h.size,
            "n_models": h.n_models, "mean_info": h.mean_info, "mean_nmi": _f(h.mean_nmi), "medoid": h.medoid,
            "best_factor": h.best_factor, "best_factor_nmi": _f(h.best_factor_nmi),
            "stability": _f(h.stability), "nmi_ci": [_f(v) for v in h.nmi_ci]}


def _hotspot_from_json(d: dict) -> Hotspot:
    nan = float("nan")
    g = lambda v: nan if v is None else float(v)
    return Hotspot(id=d["id"], members=np.asarray(d["members"], dtype=np.int64),
                   channels=np.asarray(d["channels"], dtype=np.int64).reshape(-1, 2), size=d["size"],
                   n_models=d["n_models"], mean_info=d["mean_info"], mean_nmi=g(d["mean_nmi"]), medoid=d["medoid"],
                   best_factor=d["best_factor"], best_factor_nmi=g(d["best_factor_nmi"]),
                   stability=g(d["stability"]), nmi_ci=tuple(g(v) for v in d["nmi_ci"]))


def hotspot_rows(analysis: Analysis) -> list[dict]:
    """One dict per hotspot for tables / CSV: id, size, models, info, mean NMI, best factor, stability, CI, medoid."""
    rows = []
    for h in analysis.hotspots:
        mm, ml = analysis.channel_ids[analysis.kept[h.medoid]]
        fname = (analysis.factor_names[h.best_factor] if h.best_factor is not None
                 and h.best_factor < len(analysis.factor_names) else
                 ("" if h.best_factor is None else f"factor {h.best_factor}"))
        rows.append({"hotspot": h.id, "size": h.size, "models": h.n_models, "mean_info_bits": h.mean_info,
                     "mean_nmi": h.mean_nmi, "best_factor": fname, "best_factor_nmi": h.best_factor_nmi,
                     "stability": h.stability, "nmi_ci_lo": h.nmi_ci[0], "nmi_ci_hi": h.nmi_ci[1],
                     "medoid_model": int(mm), "medoid_latent": int(ml)})
    return rows


# --------------------------------------------------------------------------- cache


def _code_version() -> str:
    from vaefrag import __version__

    h = hashlib.sha256(__version__.encode())
    here = Path(__file__).parent
    for name in _CODE_MODULES:             # a module file or a package directory
        files = [here / f"{name}.py"] if (here / f"{name}.py").is_file() else sorted((here / name).glob("*.py"))
        for path in files:
            h.update(path.read_bytes())
    return h.hexdigest()[:16]


def cache_key(mu, logvar, factors, params: dict) -> str:
    """SHA-256 of the posteriors' bytes, the factors, the parameters (JSON) and the code version."""
    return result_cache.content_key((mu, logvar, factors), params, (_code_version(),))


def lookup(ensemble, cache_dir=None, **params) -> Analysis | None:
    """The cached `analyze(ensemble, **params)` result, or None when it is not cached (never computes).

    ``params`` are `analyze`'s keywords; those not given take its defaults.
    """
    from vaefrag.store import Ensemble, load_ensemble

    ens = ensemble if isinstance(ensemble, Ensemble) else load_ensemble(ensemble)
    return lookup_key(cache_key(ens.mu, ens.logvar, ens.factors, analysis_params(**params)), cache_dir)


def lookup_key(key: str, cache_dir=None) -> Analysis | None:
    """The cached analysis with cache key ``key``, or None."""
    out = result_cache.lookup("analysis", key, Analysis.from_bytes, cache_dir)
    if out is not None:
        out.from_cache = True
    return out


def analysis_params(measure: str = "nmi", info_threshold: float = 0.01, min_samples: int | None = None,
            xi: float | None = None, min_nmi: float = structure.DEFAULT_MIN_NMI, n_bootstrap: int = 20,
            maps: Sequence[str] = MAPS, seed: int = 0) -> dict:
    """Validated, JSON-normalised analysis parameters (the cache key's part); defaults as `analyze`."""
    maps = _check_params(measure, info_threshold, min_samples, xi, n_bootstrap, maps)
    return {"measure": measure, "info_threshold": float(info_threshold),
            "min_samples": None if min_samples is None else int(min_samples),
            "xi": None if xi is None else float(xi), "min_nmi": float(min_nmi), "n_bootstrap": int(n_bootstrap),
            "maps": list(maps), "seed": int(seed)}


def _check_params(measure, info_threshold, min_samples, xi, n_bootstrap, maps) -> tuple:
    if measure not in ("nmi", "vi"):
        raise ValueError(f"measure: expected 'nmi' or 'vi', got {measure!r}")
    if not (isinstance(info_threshold, (int, float)) and np.isfinite(info_threshold) and info_threshold >= 0):
        raise ValueError(f"info_threshold: expected a finite number >= 0 (bits), got {info_threshold}")
    if min_samples is not None and (int(min_samples) != min_samples or min_samples < 2):
        raise ValueError(f"min_samples: expected an integer >= 2, got {min_samples}")
    if xi is not None and not 0 < xi < 1:
        raise ValueError(f"xi: expected a number in (0, 1), got {xi}")
    if int(n_bootstrap) != n_bootstrap or n_bootstrap < 0:
        raise ValueError(f"n_bootstrap: expected an integer >= 0, got {n_bootstrap}")
    maps = tuple(maps or ())
    bad = [m for m in maps if m not in MAPS]
    if bad:
        raise ValueError(f"maps: expected a subset of {MAPS}, got {bad}")
    return maps


# --------------------------------------------------------------------------- analyze


def analyze(ensemble, *, measure: str = "nmi", info_threshold: float = 0.01, min_samples: int | None = None,
            xi: float | None = None, min_nmi: float = structure.DEFAULT_MIN_NMI, n_bootstrap: int = 20,
            maps: Sequence[str] = MAPS, scores: Sequence[str] | None = None, seed: int = 0, cache_dir=None,
            use_cache: bool = True, device="auto", map_tiles=None, block_channels: int | None = None,
            progress: Progress | None = None) -> Analysis:
    """Measures, hotspots, bootstrap stability, channel maps and model scores of an ensemble.

    Parameters
    ----------
    ensemble : `store.Ensemble` or the path of an ensemble directory.
    measure, info_threshold, min_samples, xi, min_nmi : hotspot parameters (`structure.HotspotFinder`).
    n_bootstrap : resamples for hotspot stability (0 skips it).
    maps : which channel maps to compute ("mds", "umap").  seed : seed of bootstrap and maps.
    scores : model scores to require, subset of ("mig", "sap", "udr"); None computes MIG and SAP
        when the ensemble has factors. Asking for MIG / SAP without factors raises ValueError.
    cache_dir : diskcache directory (default `default_cache_dir()`); use_cache=False neither reads nor writes.
    device : torch device for the measures ("auto": CUDA when available). Not part of the cache key.
    map_tiles, block_channels : run the measures in channel tiles of at most `block_channels`, each
        by `map_tiles` (e.g. `distributed.dask_tile_map(client)`); not part of the cache key.
    progress : optional callable(done, total, message).

    Returns
    -------
    `Analysis`; ``from_cache`` tells whether it was served from the cache.
    """
    from vaefrag.store import Ensemble, load_ensemble

    params = analysis_params(measure, info_threshold, min_samples, xi, min_nmi, n_bootstrap, maps, seed)
    t0 = time.perf_counter()
    ens = ensemble if isinstance(ensemble, Ensemble) else load_ensemble(ensemble)
    if scores is not None:
        bad = [s for s in scores if s not in ("mig", "sap", "udr")]
        if bad:
            raise ValueError(f"scores: expected a subset of ('mig', 'sap', 'udr'), got {bad}")
        need = [s.upper() for s in scores if s in ("mig", "sap")]
        if need and ens.factors is None:
            raise ValueError(f"scores: {'/'.join(need)} need ground-truth factors, and ensemble {ens.name} "
                             f"({ens.path}) has none (no 'factors' in fingerprint.npz)")
    key = cache_key(ens.mu, ens.logvar, ens.factors, params)

    def compute() -> Analysis:
        tiling = {"map_tiles": map_tiles, "block_channels": block_channels}
        res = _compute(ens, params, key, device, tiling, progress)
        res.timings["load"] = 0.0
        res.timings["total"] = time.perf_counter() - t0
        return res

    out, hit = result_cache.cached("analysis", key, compute, encode=Analysis.to_bytes, decode=Analysis.from_bytes,
                                   cache_dir=cache_dir, use_cache=use_cache)
    if hit:
        out.from_cache = True
        out.timings = {**out.timings, "load": time.perf_counter() - t0}
    return out


def _compute(ens, params: dict, key: str, device, tiling: dict, progress) -> Analysis:
    n_boot = params["n_bootstrap"]
    total = 4 + n_boot
    step = [0]

    def tick(msg):
        step[0] += 1
        if progress is not None:
            progress(step[0], total, msg)

    from vaefrag import measures

    timings = {}
    t = time.perf_counter()
    k, _, l_ = ens.mu.shape
    ids = measures.channel_ids(k, l_)
    mu_c, lv_c = measures.split_channels(ens.mu, ens.logvar)
    comp = measures.compare_channels(mu_c, lv_c, factors=ens.factors, info_threshold=params["info_threshold"],
                                     device=device, **tiling)
    timings["measures"] = time.perf_counter() - t
    tick("measures")

    t = time.perf_counter()
    finder = structure.HotspotFinder(measure=params["measure"], info_threshold=params["info_threshold"],
                                     min_samples=params["min_samples"], xi=params["xi"], min_nmi=params["min_nmi"],
                                     random_state=params["seed"])
    finder.fit(comp, channel_ids=ids)
    timings["hotspots"] = time.perf_counter() - t
    tick("hotspots")

    if n_boot and finder.hotspots_:
        t = time.perf_counter()
        structure.bootstrap_stability(finder, mu_c, lv_c, n_bootstrap=n_boot, random_state=params["seed"],
                                      device=device, **tiling,
                                      progress=lambda d, n, m="": tick(f"bootstrap {d}/{n}"))
        timings["bootstrap"] = time.perf_counter() - t
    else:
        for _ in range(n_boot):
            tick("bootstrap")

    t = time.perf_counter()
    kept = finder.kept_
    chan_maps = structure.channel_maps(finder.distance_, params["maps"], random_state=params["seed"]) \
        if params["maps"] else {}
    timings["maps"] = time.perf_counter() - t
    tick("maps")

    t = time.perf_counter()
    table = _model_table(ens, comp, ids)
    timings["scores"] = time.perf_counter() - t
    tick("scores")
    sub = np.ix_(kept, kept)
    return Analysis(ensemble_name=ens.name, params=params, channel_ids=ids, info=comp.info, self_info=comp.self_info,
                    kept=kept, nmi=comp.nmi[sub], vi=comp.vi[sub], factor_names=list(ens.factor_names or []),
                    factor_nmi=None if comp.factor_nmi is None else comp.factor_nmi[kept],
                    ordering=finder.ordering_, reachability=finder.reachability_, labels=finder.labels_,
                    hotspots=finder.hotspots_, maps=chan_maps, model_table=table, timings=timings, key=key)


def _model_table(ens, comp, ids) -> dict:
    from vaefrag import metrics

    k = ens.mu.shape[0]
    info = np.array([comp.info[ids[:, 0] == m].sum() for m in range(k)])
    n_inf = np.array([comp.informative[ids[:, 0] == m].sum() for m in range(k)], dtype=np.float64)
    table = {"info": info, "n_informative": n_inf, "mig": np.full(k, np.nan), "sap": np.full(k, np.nan)}
    if ens.factors is not None and ens.mu.shape[2] >= 2:
        table.update(metrics.model_scores(ens.mu, ens.factors))
    table["udr"] = metrics.udr(comp.nmi, ids, comp.informative)
    members = ens.manifest.get("members") or []
    table["final_loss"] = np.array([float(m.get("final_loss", np.nan)) if isinstance(m, dict) else np.nan
                                    for m in members] if len(members) == k else [np.nan] * k)
    return table
