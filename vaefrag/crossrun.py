"""Two ensembles on the same fingerprint points: which information fragments do they share?

Typical use: a beta-VAE and a beta-TCVAE ensemble, or two values of beta, trained on one dataset
and fingerprinted on the same sample. Every kept channel of A is compared with every kept channel
of B (`measures.compare_channels(..., other=...)`, a rectangular NMI / VI), and each hotspot of one
ensemble is looked for among the channels of the other.
"""
from __future__ import annotations

import json

import numpy as np

from vaefrag import analysis as analysis_mod
from vaefrag.results import EnsembleComparison, HotspotMatch  # noqa: F401  (their home is vaefrag.results)

#: a channel of the other ensemble "carries" a hotspot when its NMI with the hotspot's medoid is at least this
DEFAULT_MATCH_NMI = 0.5


def fingerprint_signature(manifest: dict) -> tuple | None:
    """(dataset name, dataset parameters, fingerprint size, fingerprint seed) from a manifest, or None
    when it does not record them (imported posteriors): ensembles with equal signatures were
    fingerprinted on the same points; a cheap pre-check that reads no arrays."""
    dataset, fp = manifest.get("dataset"), manifest.get("fingerprint")
    if not isinstance(dataset, dict) or not isinstance(fp, dict) or "name" not in dataset:
        return None
    params = json.dumps(dataset.get("params", {}), sort_keys=True)
    return dataset["name"], params, fp.get("size"), fp.get("seed")


def check_same_points(ens_a, ens_b, same_points: bool = False) -> None:
    """Raise ValueError unless the two ensembles were fingerprinted on the same points.

    Compared: the point count, the fingerprint inputs when both carry them, else the factor
    labels when both carry them. With neither, `same_points=True` must vouch for it.
    """
    if ens_a.n_points != ens_b.n_points:
        raise ValueError(f"fingerprint: {ens_a.name} has {ens_a.n_points} points and {ens_b.name} "
                         f"{ens_b.n_points}; the two ensembles must share their fingerprint points")
    if ens_a.x is not None and ens_b.x is not None:
        if ens_a.x.shape != ens_b.x.shape or not np.array_equal(ens_a.x, ens_b.x):
            raise ValueError(f"fingerprint: the inputs in {ens_a.path}/fingerprint.npz and "
                             f"{ens_b.path}/fingerprint.npz differ; the ensembles were fingerprinted on "
                             "different points (same dataset, size and seed are needed)")
        return
    if ens_a.factors is not None and ens_b.factors is not None:
        if ens_a.factors.shape != ens_b.factors.shape or not np.array_equal(ens_a.factors, ens_b.factors):
            raise ValueError(f"fingerprint: the factor labels of {ens_a.name} and {ens_b.name} differ, "
                             "so their fingerprint points differ")
        return
    if not same_points:
        raise ValueError(f"fingerprint: {ens_a.name} and {ens_b.name} carry neither fingerprint inputs nor "
                         "factor labels to check that they share their points; pass same_points=True "
                         "(CLI: --same-points) if they do")


def _kept_channels(ens, a):
    from vaefrag import measures

    mu_c, lv_c = measures.split_channels(ens.mu, ens.logvar)
    kept = np.asarray(a.kept, dtype=np.int64)
    return mu_c[kept], lv_c[kept], np.asarray(a.channel_ids)[kept]


def _matches(a, other, nmi_to_other: np.ndarray, hotspot_nmi: np.ndarray, ids_other: np.ndarray,
             n_models_other: int, match_nmi: float) -> list[HotspotMatch]:
    """HotspotMatch per hotspot of analysis `a` in analysis `other`; nmi_to_other [Mk_a, Mk_other],
    hotspot_nmi [H_a, H_other]."""
    out = []
    for i, h in enumerate(a.hotspots):
        row = nmi_to_other[h.medoid]                                  # [M_other]
        finite = np.isfinite(row)
        best = int(np.argmax(np.where(finite, row, -np.inf))) if finite.any() else None
        matched = {int(m) for m in ids_other[finite & (row >= match_nmi), 0]}
        hb = int(np.nanargmax(hotspot_nmi[i])) if hotspot_nmi.shape[1] and np.isfinite(hotspot_nmi[i]).any() else None
        factor = None
        if h.best_factor is not None and a.factor_names:
            factor = a.factor_names[h.best_factor]
        out.append(HotspotMatch(
            hotspot=h.id, best_factor=factor, best_hotspot=None if hb is None else other.hotspots[hb].id,
            best_hotspot_nmi=float("nan") if hb is None else float(hotspot_nmi[i, hb]),
            best_channel=None if best is None else (int(ids_other[best, 0]), int(ids_other[best, 1])),
            best_channel_nmi=float("nan") if best is None else float(row[best]),
            models_matched=len(matched), n_models_other=n_models_other))
    return out


def compare_ensembles(ensemble_a, ensemble_b, *, match_nmi: float = DEFAULT_MATCH_NMI, same_points: bool = False,
                      cache_dir=None, use_cache: bool = True, device="auto", progress=None,
                      **analysis_params) -> EnsembleComparison:
    """Compare the kept channels and hotspots of two ensembles fingerprinted on the same points.

    Parameters
    ----------
    ensemble_a, ensemble_b : `store.Ensemble` or ensemble directories.
    match_nmi : NMI with a hotspot's medoid above which a channel of the other ensemble counts as
        carrying the hotspot.  same_points : vouch for shared points when the files cannot show it.
    analysis_params : hotspot parameters of `analysis.analyze` (measure, info_threshold, ...), the
        same for both; the two analyses come from (and go to) the analysis cache.
    progress : optional callable(done, total, message), through both analyses and the comparison.

    Returns
    -------
    `EnsembleComparison`.
    """
    from vaefrag import measures
    from vaefrag.store import Ensemble, load_ensemble

    if not 0.0 < match_nmi <= 1.0:
        raise ValueError(f"match_nmi: expected a number in (0, 1], got {match_nmi}")
    ens_a = ensemble_a if isinstance(ensemble_a, Ensemble) else load_ensemble(ensemble_a)
    ens_b = ensemble_b if isinstance(ensemble_b, Ensemble) else load_ensemble(ensemble_b)
    check_same_points(ens_a, ens_b, same_points)
    kw = dict(cache_dir=cache_dir, use_cache=use_cache, device=device, **analysis_params)

    def stage(name):
        if progress is None:
            return None
        return lambda done, total, message="": progress(done, total, f"{name}: {message}")

    a = analysis_mod.analyze(ens_a, progress=stage(f"analysis of {ens_a.name}"), **kw)
    b = analysis_mod.analyze(ens_b, progress=stage(f"analysis of {ens_b.name}"), **kw)
    mu_a, lv_a, ids_a = _kept_channels(ens_a, a)
    mu_b, lv_b, ids_b = _kept_channels(ens_b, b)
    if not len(ids_a) or not len(ids_b):
        empty = ens_a.name if not len(ids_a) else ens_b.name
        raise ValueError(f"{empty}: no channel carries information above the threshold; nothing to compare")
    comp = measures.compare_channels(mu_a, lv_a, other=(mu_b, lv_b), info_threshold=a.params["info_threshold"],
                                     device=device, progress=stage("channels of A x channels of B"))
    nmi = comp.nmi
    hot = np.full((len(a.hotspots), len(b.hotspots)), np.nan)
    for i, ha in enumerate(a.hotspots):
        for j, hb in enumerate(b.hotspots):
            block = nmi[np.ix_(ha.members, hb.members)]
            if np.isfinite(block).any():
                hot[i, j] = np.nanmean(block)
    matches_a = _matches(a, b, nmi, hot, ids_b, ens_b.n_models, match_nmi)
    matches_b = _matches(b, a, nmi.T, hot.T, ids_a, ens_a.n_models, match_nmi)
    return EnsembleComparison(ens_a.name, ens_b.name, ids_a, ids_b, nmi, comp.vi, hot, matches_a, matches_b, a, b)
