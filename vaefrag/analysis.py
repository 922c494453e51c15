"""Ensemble -> Analysis in stages, each with its own content-keyed cache entry (DESIGN §4).

=============  =========================================================  ==========================
stage          what it computes                                            its cache key reads
=============  =========================================================  ==========================
measures       information, NMI, VI, factor NMI of all M channels          posteriors, factors, code
resamples      the same informations under B reweightings of the points    posteriors, B, seed, code
               (computed in the measures' pass when both are missing)
structure      OPTICS ordering, reachability, hotspots                     (recomputed: tens of ms)
stability      refits of every resample, stability and NMI intervals       resamples + structure params
maps           MDS / UMAP coordinates                                      distance matrix, method, seed
scores         MIG and SAP per model                                       posteriors, factors, code
=============  =========================================================  ==========================

`analyze` runs the stages and returns one `Analysis` (also cached as a whole, keyed by all
parameters, so a repeated call is one read). A change of OPTICS parameters reuses the cached
measures, resamples, maps and scores: only the structure and the stability refits run. Every key
includes the versions of numpy, scikit-learn, umap-learn and torch (`cache.content_key`) and the
source of the modules it depends on. Entries are npz bytes plus JSON (no pickle); an entry is
written only after its stage finished. ``stages`` lets a caller (the dashboard) get the structure
first and the stability and maps afterwards.
"""
from __future__ import annotations

import dataclasses
import functools
import hashlib
import time
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from vaefrag import cache as result_cache
from vaefrag import structure   # measures / metrics (torch) are imported when computing: keeps the dashboard's start-up light
from vaefrag.cache import CACHE_ENV, default_cache_dir
from vaefrag.params import (DEFAULT_INFO_THRESHOLD, DEFAULT_MIN_NMI, DEFAULT_N_BOOTSTRAP, MAPS, AnalysisParams,
                            ParameterError)
from vaefrag.results import STAGES, Analysis, Hotspot, hotspot_rows  # noqa: F401  (Hotspot: old import path)

__all__ = ["Analysis", "analyze", "analysis_params", "lookup", "lookup_key", "default_cache_dir", "cache_key", "hotspot_rows",
           "CACHE_ENV", "ChannelMeasures", "channel_measures", "structure_stage", "stability_stage", "maps_stage",
           "scores_stage", "STAGES", "SCORES"]

Progress = Callable[..., None]
SCORES = ("mig", "sap", "udr")
_ANALYSIS_CODE = ("measures", "structure", "metrics", "analysis", "params", "results")


@functools.lru_cache(maxsize=16)
def _code_version(names: tuple = _ANALYSIS_CODE) -> str:
    """Hash of vaefrag's version and the source of the named modules (a module file or a package directory)."""
    from vaefrag import __version__

    h = hashlib.sha256(__version__.encode())
    here = Path(__file__).parent
    for name in names:
        files = [here / f"{name}.py"] if (here / f"{name}.py").is_file() else sorted((here / name).glob("*.py"))
        for path in files:
            h.update(path.read_bytes())
    return h.hexdigest()[:16]


def analysis_params(measure: str = "nmi", info_threshold: float = DEFAULT_INFO_THRESHOLD,
                    min_samples: int | None = None, xi: float | None = None, min_nmi: float = DEFAULT_MIN_NMI,
                    n_bootstrap: int = DEFAULT_N_BOOTSTRAP,
                    maps: Sequence[str] | None = MAPS, seed: int = 0) -> dict:
    """Validated, JSON-normalised analysis parameters (the cache key's part); defaults as `analyze`.

    The one validation is `params.AnalysisParams` (ParameterError names the parameter).
    """
    return _params(measure, info_threshold, min_samples, xi, min_nmi, n_bootstrap, maps, seed).to_dict()


def _params(measure, info_threshold, min_samples, xi, min_nmi, n_bootstrap, maps, seed) -> AnalysisParams:
    return AnalysisParams.from_values(measure=measure, info_threshold=info_threshold, min_samples=min_samples, xi=xi,
                                      min_nmi=min_nmi, n_bootstrap=n_bootstrap, maps=tuple(maps or ()) or "none",
                                      seed=seed)


def cache_key(mu, logvar, factors, params: dict, stages: Sequence[str] = STAGES) -> str:
    """Key of a whole `Analysis`: the posteriors, factors, parameters, stages and code version."""
    extra = {} if tuple(stages) == STAGES else {"stages": list(stages)}
    return result_cache.content_key((mu, logvar, factors), {**params, **extra}, (_code_version(),))


def lookup(ensemble, cache_dir=None, **params) -> Analysis | None:
    """The cached `analyze(ensemble, **params)` result, or None when it is not cached (never computes).

    ``params`` are `analyze`'s keywords; those not given take its defaults.
    """
    ens = _load(ensemble)
    return lookup_key(cache_key(ens.mu, ens.logvar, ens.factors, analysis_params(**params)), cache_dir)


def lookup_key(key: str, cache_dir=None) -> Analysis | None:
    """The cached analysis with cache key ``key``, or None."""
    out = result_cache.lookup("analysis", key, Analysis.from_bytes, cache_dir)
    if out is not None:
        out.from_cache = True
    return out


def _load(ensemble):
    from vaefrag.store import Ensemble, load_ensemble

    return ensemble if isinstance(ensemble, Ensemble) else load_ensemble(ensemble)


# --------------------------------------------------------------------------- stage 1: measures (+ resamples)


class ChannelMeasures:
    """The measures of all M channels, independent of the analysis parameters (bits).

    info, self_info [M]; nmi, vi [M, M] (NMI computed for every channel with I(X;U) >= 0);
    factor_nmi [M, F] or None; key: the stage's cache key. `at_threshold` gives the view the
    structure reads (NMI NaN for channels below the threshold, as `measures.compare_channels`).
    """

    def __init__(self, arrays: dict, key: str):
        self.info, self.self_info = arrays["info"], arrays["self_info"]
        self.nmi, self.vi = arrays["nmi"], arrays["vi"]
        self.factor_nmi = arrays.get("factor_nmi")
        self.key = key

    def at_threshold(self, info_threshold: float):
        """A ChannelComparison-like view: informative [M], NMI NaN in rows / columns below the threshold."""
        from types import SimpleNamespace

        ok = self.info >= info_threshold
        nmi = self.nmi.copy()
        nmi[~ok, :] = np.nan
        nmi[:, ~ok] = np.nan
        fn = None
        if self.factor_nmi is not None:
            fn = self.factor_nmi.copy()
            fn[~ok, :] = np.nan
        return SimpleNamespace(info=self.info, self_info=self.self_info, informative=ok, nmi=nmi, vi=self.vi,
                               factor_nmi=fn)


def _measures_key(ens) -> str:
    return result_cache.content_key((ens.mu, ens.logvar, ens.factors), {"stage": "measures"},
                                    (_code_version(("measures",)),))


def _resamples_key(ens, n_resamples: int, seed: int) -> str:
    return result_cache.content_key((ens.mu, ens.logvar), {"stage": "resamples", "n": int(n_resamples),
                                                           "seed": int(seed)},
                                    (_code_version(("measures",)),))


def channel_measures(ens, *, n_bootstrap: int = 0, seed: int = 0, cache_dir=None, use_cache: bool = True,
                     device="auto", map_tiles=None, block_channels: int | None = None,
                     progress: Progress | None = None):
    """Stage 1: (`ChannelMeasures`, resamples dict or None, resamples key or None, seconds computing).

    With ``n_bootstrap`` B > 0 also the informations of the M channels under B bootstrap
    reweightings of the points (`structure.resample_counts` with ``seed``), from the same pass
    over the points; each part is read from its own cache entry when present.
    """
    from vaefrag.results import pack, unpack

    m_key = _measures_key(ens)
    r_key = _resamples_key(ens, n_bootstrap, seed) if n_bootstrap else None
    got_m = result_cache.lookup("measures", m_key, unpack, cache_dir) if use_cache else None
    got_r = result_cache.lookup("resamples", r_key, unpack, cache_dir) if use_cache and r_key else None
    seconds = 0.0
    if got_m is None or (r_key and got_r is None):
        from vaefrag import measures

        t = time.perf_counter()
        mu_c, lv_c = measures.split_channels(ens.mu, ens.logvar)
        weights = structure.resample_counts(ens.mu.shape[1], n_bootstrap, seed) if r_key and got_r is None else None
        comp = measures.compare_channels(mu_c, lv_c, factors=ens.factors, info_threshold=0.0, device=device,
                                         map_tiles=map_tiles, block_channels=block_channels,
                                         resample_weights=weights, progress=progress)
        seconds = time.perf_counter() - t
        if got_m is None:
            arrays = {"info": comp.info, "self_info": comp.self_info, "nmi": comp.nmi, "vi": comp.vi}
            if comp.factor_nmi is not None:
                arrays["factor_nmi"] = comp.factor_nmi
            got_m = (arrays, {"timings": comp.timings})
            if use_cache:
                result_cache.store("measures", m_key, pack(*got_m), cache_dir)
        if weights is not None:
            rs = comp.resampled
            got_r = ({"joint": rs["joint"].astype(np.float32), "info_a": rs["info_a"],
                      "selfjoint_a": rs["selfjoint_a"]}, {"n": int(n_bootstrap), "seed": int(seed)})
            if use_cache:
                result_cache.store("resamples", r_key, pack(*got_r), cache_dir)
    resamples = None
    if got_r is not None:
        rs = dict(got_r[0])
        rs["info_b"], rs["selfjoint_b"] = rs["info_a"], rs["selfjoint_a"]
        resamples = rs
    return ChannelMeasures(got_m[0], m_key), resamples, r_key, seconds


# --------------------------------------------------------------------------- stages 2-5


def structure_stage(measures: ChannelMeasures, channel_ids, params: AnalysisParams) -> structure.HotspotFinder:
    """Stage 2: OPTICS hotspots of the channels above the threshold (a fitted `HotspotFinder`)."""
    comp = measures.at_threshold(params.info_threshold)
    return structure.HotspotFinder(**params.finder_kwargs(), random_state=params.seed).fit(comp,
                                                                                          channel_ids=channel_ids)


def stability_stage(finder: structure.HotspotFinder, resamples: dict, resamples_key: str, params: AnalysisParams, *,
                    cache_dir=None, use_cache: bool = True, progress: Progress | None = None) -> bool:
    """Stage 3: stability and NMI intervals of the finder's hotspots (written into them) from the
    cached resamples (`structure.resampled_stability`). Returns whether it was served from the cache."""
    key = result_cache.content_key((), {"stage": "stability", "resamples": resamples_key, **params.structure()},
                                   (_code_version(("structure", "params")),))

    def compute():
        st = structure.resampled_stability(finder, resamples, progress=progress)
        return {"stability": np.asarray(st.stability, np.float64), "nmi_ci": st.nmi_ci.reshape(-1, 2)}, \
            {"method": st.extra.get("method", "")}

    arrays, _, hit = result_cache.cached_arrays("stability", key, compute, cache_dir=cache_dir, use_cache=use_cache)
    if len(arrays["stability"]) != len(finder.hotspots_):
        raise RuntimeError("stability: the cached entry does not match the hotspots (stale key)")
    for h, s, ci in zip(finder.hotspots_, arrays["stability"], arrays["nmi_ci"]):
        h.stability, h.nmi_ci = float(s), (float(ci[0]), float(ci[1]))
    return hit


def maps_stage(distance, method: str, seed: int, *, cache_dir=None, use_cache: bool = True) -> np.ndarray:
    """Stage 4: one channel map [Mk, 2] of ``distance`` [Mk, Mk], cached by the matrix, method and seed."""
    key = result_cache.content_key((np.asarray(distance, np.float64),), {"stage": "map", "method": method,
                                                                          "seed": int(seed)},
                                   (_code_version(("structure",)),))
    arrays, _, _ = result_cache.cached_arrays(
        "maps", key, lambda: ({"xy": structure.channel_maps(distance, (method,), random_state=seed)[method]}, {}),
        cache_dir=cache_dir, use_cache=use_cache)
    return arrays["xy"]


def scores_stage(ens, *, cache_dir=None, use_cache: bool = True) -> dict:
    """Stage 5: MIG and SAP per model ([K] each; NaN without factors), cached by posteriors and factors."""
    k = ens.mu.shape[0]
    if ens.factors is None or ens.mu.shape[2] < 2:
        return {"mig": np.full(k, np.nan), "sap": np.full(k, np.nan)}
    key = result_cache.content_key((ens.mu, ens.factors), {"stage": "scores"}, (_code_version(("metrics",)),))

    def compute():
        from vaefrag import metrics

        return {k_: np.asarray(v, np.float64) for k_, v in metrics.model_scores(ens.mu, ens.factors).items()}, {}

    arrays, _, _ = result_cache.cached_arrays("scores", key, compute, cache_dir=cache_dir, use_cache=use_cache)
    return {"mig": arrays["mig"], "sap": arrays["sap"]}


def _model_table(ens, comp, ids, scores: dict | None) -> dict:
    from vaefrag import metrics

    k = ens.mu.shape[0]
    info = np.array([comp.info[ids[:, 0] == m].sum() for m in range(k)])
    n_inf = np.array([comp.informative[ids[:, 0] == m].sum() for m in range(k)], dtype=np.float64)
    table = {"info": info, "n_informative": n_inf, "mig": np.full(k, np.nan), "sap": np.full(k, np.nan)}
    if scores is not None:
        table.update(scores)
        table["udr"] = metrics.udr(comp.nmi, ids, comp.informative)
    else:
        table["udr"] = np.full(k, np.nan)
    members = ens.manifest.get("members") or []
    table["final_loss"] = np.array([float(m.get("final_loss", np.nan)) if isinstance(m, dict) else np.nan
                                    for m in members] if len(members) == k else [np.nan] * k)
    return table


# --------------------------------------------------------------------------- analyze


def analyze(ensemble, *, measure: str = "nmi", info_threshold: float = DEFAULT_INFO_THRESHOLD,
            min_samples: int | None = None, xi: float | None = None, min_nmi: float = DEFAULT_MIN_NMI,
            n_bootstrap: int = DEFAULT_N_BOOTSTRAP,
            maps: Sequence[str] = MAPS, scores: Sequence[str] | None = None, seed: int = 0, cache_dir=None,
            use_cache: bool = True, device="auto", map_tiles=None, block_channels: int | None = None,
            progress: Progress | None = None, params: AnalysisParams | None = None,
            stages: Sequence[str] | None = None, preview: Callable[[Analysis], None] | None = None) -> Analysis:
    """Measures, hotspots, stability, channel maps and model scores of an ensemble, stage by stage.

    Parameters
    ----------
    ensemble : `store.Ensemble` or the path of an ensemble directory.
    measure, info_threshold, min_samples, xi, min_nmi : hotspot parameters (`structure.HotspotFinder`).
    n_bootstrap : resamples of the fingerprint points for hotspot stability (0 skips it;
        `structure.resampled_stability`).
    maps : which channel maps to compute ("mds", "umap").  seed : seed of resamples and maps.
    params : an `AnalysisParams` instead of the keywords above (it wins when given).
    scores : model scores to require, subset of ("mig", "sap", "udr"); None computes MIG and SAP
        when the ensemble has factors. Asking for MIG / SAP without factors raises ValueError.
    stages : which stages after the measures to run, a subset of `STAGES` (default: all); the
        structure always runs. The result lists the others in ``pending``.
    preview : optional callable(Analysis), called once, as soon as the hotspots exist, with the
        structure-only result (``pending`` names the stages still running; cached under the key of
        ``stages=("structure",)``). Not called when the whole analysis comes from the cache.
    cache_dir : diskcache directory (default `default_cache_dir()`); use_cache=False neither reads nor writes.
    device : torch device for the measures ("auto": CUDA when available). Not part of the cache key.
    map_tiles, block_channels : run the measures in channel tiles of at most `block_channels`, each
        by `map_tiles` (e.g. `distributed.dask_tile_map(client)`); not part of the cache key.
    progress : optional callable(done, total, message).

    Returns
    -------
    `Analysis`; ``from_cache`` tells whether it was served whole from the cache; ``timings``
    the seconds of each stage.
    """
    p = params if params is not None else _params(measure, info_threshold, min_samples, xi, min_nmi, n_bootstrap,
                                                  maps, seed)
    run = _check_stages(stages)
    t0 = time.perf_counter()
    ens = _load(ensemble)
    if scores is not None:
        bad = [s for s in scores if s not in SCORES]
        if bad:
            raise ParameterError("scores", f"expected a subset of {SCORES}, got {bad}")
        need = [s.upper() for s in scores if s in ("mig", "sap")]
        if need and ens.factors is None:
            raise ValueError(f"scores: {'/'.join(need)} need ground-truth factors, and ensemble {ens.name} "
                             f"({ens.path}) has none (no 'factors' in fingerprint.npz)")
    key = cache_key(ens.mu, ens.logvar, ens.factors, p.to_dict(), run)

    def compute() -> Analysis:
        tiling = {"map_tiles": map_tiles, "block_channels": block_channels}
        res = _compute(ens, p, key, run, device, tiling, progress, cache_dir, use_cache, preview)
        res.timings["load"] = 0.0
        res.timings["total"] = time.perf_counter() - t0
        return res

    out, hit = result_cache.cached("analysis", key, compute, encode=Analysis.to_bytes, decode=Analysis.from_bytes,
                                   cache_dir=cache_dir, use_cache=use_cache)
    if hit:
        out.from_cache = True
        out.timings = {**out.timings, "load": time.perf_counter() - t0}
    return out


def _check_stages(stages) -> tuple:
    if stages is None:
        return STAGES
    stages = tuple(stages)
    bad = [s for s in stages if s not in STAGES]
    if bad:
        raise ParameterError("stages", f"expected a subset of {STAGES}, got {bad}")
    return tuple(s for s in STAGES if s in stages or s == "structure")


def _compute(ens, p: AnalysisParams, key: str, run: tuple, device, tiling: dict, progress, cache_dir,
             use_cache: bool, preview=None) -> Analysis:
    from vaefrag.measures import channel_ids

    n_boot = p.n_bootstrap if "stability" in run else 0
    n_maps = len(p.maps) if "maps" in run else 0
    total = 2 + n_boot + n_maps + ("scores" in run)
    step = [0]

    def tick(msg):
        step[0] += 1
        if progress is not None:
            progress(step[0], total, msg)

    cache = {"cache_dir": cache_dir, "use_cache": use_cache}
    timings = {}
    t = time.perf_counter()
    k, _, l_ = ens.mu.shape
    ids = channel_ids(k, l_)
    meas, resamples, r_key, _ = channel_measures(ens, n_bootstrap=n_boot, seed=p.seed, device=device, **tiling,
                                                 **cache)
    timings["measures"] = time.perf_counter() - t
    tick("measures")

    t = time.perf_counter()
    finder = structure_stage(meas, ids, p)
    timings["hotspots"] = time.perf_counter() - t
    tick("hotspots")
    if preview is not None and run != ("structure",):
        _preview(ens, p, ids, meas, finder, timings, cache_dir, use_cache, preview)

    if n_boot:
        t = time.perf_counter()
        if finder.hotspots_:
            stability_stage(finder, resamples, r_key, p, progress=lambda d, n, m="": tick(f"stability {d}/{n}"),
                            **cache)
        step[0] = 2 + n_boot
        timings["bootstrap"] = time.perf_counter() - t

    chan_maps = {}
    if n_maps:
        t = time.perf_counter()
        for method in p.maps:
            tick(f"maps: {method}")
            chan_maps[method] = maps_stage(finder.distance_, method, p.seed, **cache)
        timings["maps"] = time.perf_counter() - t

    t = time.perf_counter()
    table = _model_table(ens, meas.at_threshold(p.info_threshold), ids, scores_stage(ens, **cache) if "scores" in run else None)
    if "scores" in run:
        timings["scores"] = time.perf_counter() - t
        tick("scores")
    return _assemble(ens, p, ids, meas, finder, chan_maps, table, timings, key, _pending(p, run))


def _pending(p: AnalysisParams, run: tuple) -> tuple:
    """The stages a result of ``run`` leaves out (stability without resamples, maps without
    methods are not "pending": they were not asked for)."""
    return tuple(s for s in STAGES if s not in run and not (s == "stability" and p.n_bootstrap == 0)
                 and not (s == "maps" and not p.maps))


def _assemble(ens, p: AnalysisParams, ids, meas: ChannelMeasures, finder, chan_maps: dict, table: dict,
              timings: dict, key: str, pending: tuple) -> Analysis:
    """The `Analysis` of the stages computed so far (hotspots copied: later stages write into the finder's)."""
    comp = meas.at_threshold(p.info_threshold)
    kept = finder.kept_
    sub = np.ix_(kept, kept)
    return Analysis(ensemble_name=ens.name, params=p.to_dict(), channel_ids=ids, info=comp.info,
                    self_info=comp.self_info, kept=kept, nmi=comp.nmi[sub], vi=comp.vi[sub],
                    factor_names=list(ens.factor_names or []),
                    factor_nmi=None if comp.factor_nmi is None else comp.factor_nmi[kept],
                    ordering=finder.ordering_, reachability=finder.reachability_, labels=finder.labels_,
                    hotspots=[dataclasses.replace(h) for h in finder.hotspots_], maps=dict(chan_maps),
                    model_table=dict(table), timings=dict(timings), key=key, pending=tuple(pending))


def _preview(ens, p: AnalysisParams, ids, meas, finder, timings, cache_dir, use_cache, preview) -> None:
    """The structure-only `Analysis` (what ``analyze(stages=("structure",))`` returns, ``pending``
    included), cached under its key, handed to ``preview``."""
    key = cache_key(ens.mu, ens.logvar, ens.factors, p.to_dict(), ("structure",))
    pending = _pending(p, ("structure",))             # what analyze(stages=("structure",)) would list
    part = _assemble(ens, p, ids, meas, finder, {}, _model_table(ens, meas.at_threshold(p.info_threshold), ids, None),
                     timings, key, pending)
    if use_cache:
        result_cache.store("analysis", key, part.to_bytes(), cache_dir)
    preview(part)
