"""Full latent spaces: Monte Carlo NMI / VI between the whole latent spaces of an ensemble's models.

A model's full latent space carries far more than log2(N) bits, so the fingerprint saturates for
it (DESIGN §2, last bullet). `compare_model_spaces` estimates, over the D points of a dataset
sample, I(X;U) for every model and I(X;U,U'), I(X;U,V) for every pair by sampling x uniformly and
u ~ p(u|x), with common random numbers: the same draws of x for all estimates and the same noise
for a model's dimensions wherever that model appears, so the per-sample terms of one draw are
correlated and the delta-method errors of NMI and VI come from their joint covariance.

`ensemble_spaces` does this for an ensemble (its fingerprint posteriors, or a larger sample of
its dataset re-encoded with the member weights) and caches the result with diskcache, keyed by
the posteriors, the parameters and the code (like `vaefrag.analysis`).
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from vaefrag import cache as result_cache
from vaefrag.cache import default_cache_dir
from vaefrag.results import SpacesResult

#: the estimator's source, part of every cache key (torch is imported only to compute)
_MONTECARLO_SRC = Path(__file__).parent / "measures" / "montecarlo.py"

def compare_model_spaces(mu, logvar, *, n_samples: int = 2000, seed: int = 0, device="auto",
                         block: int = 256, progress=None) -> SpacesResult:
    """Monte Carlo NMI and VI between the full latent spaces of K models.

    Parameters
    ----------
    mu, logvar : [K, D, L] posteriors of K models on the same D data points (the dataset sample).
    n_samples : draws of (x, u) per estimate.  seed : seed of the draws.
    progress : optional callable(done, total, message) over the K + K + K(K-1)/2 estimates.

    Returns
    -------
    `SpacesResult` of `measures.compare_many_spaces` (the one Monte Carlo estimator).
    """
    from vaefrag.measures import compare_many_spaces
    from vaefrag.measures.validation import _check_posteriors

    mu, logvar = _check_posteriors(mu, logvar, ndim=3, min_points=2)
    r = compare_many_spaces(mu, logvar, n_samples=n_samples, seed=seed, device=device, block=block, progress=progress)
    return SpacesResult(**r, params={"n_samples": int(n_samples), "seed": int(seed)})


# --------------------------------------------------------------------------- ensembles, cached


def _cache_key(mu, logvar, params: dict) -> str:
    code = [mod.read_bytes() for mod in (Path(__file__), _MONTECARLO_SRC)]
    return result_cache.content_key((mu, logvar), {"stage": "spaces", **params}, code)


def sample_posteriors(ensemble, size: int, seed: int = 0, device="cpu", progress=None):
    """Encode a fresh sample of ``size`` points of the ensemble's dataset with every member.

    Returns mu, logvar float32 [K, size, L]. Needs member weights or ONNX encoders, and a dataset in the manifest.
    """
    from vaefrag import members, store, training

    if not ensemble.has_encoders:
        raise store.EnsembleError(f"{ensemble.path}: has no member weights or ONNX encoders; cannot encode a larger sample")
    ds = training.dataset_of(ensemble)
    _, x, _ = training.fingerprint_sample(ds, size, seed)
    mus, lvs = [], []
    for k in range(ensemble.n_models):
        mu, lv = training.encode_member(members.load_member(ensemble, k, device=device), x, device=device)
        mus.append(mu)
        lvs.append(lv)
        if progress is not None:
            progress(k + 1, ensemble.n_models, f"encoded member {k}")
    return np.stack(mus), np.stack(lvs)


def ensemble_spaces(ensemble, *, n_samples: int = 2000, sample_size: int | None = None, sample_seed: int = 1,
                    seed: int = 0, device="auto", cache_dir=None, use_cache: bool = True, compute: bool = True,
                    progress=None) -> SpacesResult | None:
    """Full-latent-space comparison of an ensemble's models, cached.

    Parameters
    ----------
    ensemble : `store.Ensemble` or the path of an ensemble directory.
    n_samples : Monte Carlo draws per estimate;  seed : their seed.
    sample_size : None uses the stored fingerprint posteriors as the dataset sample; an integer
        re-encodes that many points of the dataset (seeded by ``sample_seed``) with the members.
    cache_dir : diskcache directory (default `default_cache_dir()`); use_cache=False skips it.
    compute : False only looks the result up in the cache and returns None when it is not there
        (with ``sample_size`` set, the sample is still encoded to find the key).
    progress : optional callable(done, total, message).
    """
    from vaefrag.store import Ensemble, load_ensemble

    if sample_size is not None and (int(sample_size) != sample_size or sample_size < 2):
        raise ValueError(f"sample_size: expected an integer >= 2 or None, got {sample_size}")
    t0 = time.perf_counter()
    ens = ensemble if isinstance(ensemble, Ensemble) else load_ensemble(ensemble)
    if sample_size is None:
        mu, logvar = ens.mu, ens.logvar
    else:
        mu, logvar = sample_posteriors(ens, int(sample_size), sample_seed, progress=progress)
    params = {"n_samples": int(n_samples), "seed": int(seed),
              "sample_size": None if sample_size is None else int(sample_size), "sample_seed": int(sample_seed)}
    key = _cache_key(mu, logvar, params)
    if use_cache:
        hit = result_cache.lookup("spaces", key, SpacesResult.from_bytes, cache_dir)
        if hit is not None:
            hit.from_cache = True
            return hit
    if not compute:
        return None
    out = compare_model_spaces(mu, logvar, n_samples=n_samples, seed=seed, device=device, progress=progress)
    out.params, out.ensemble_name, out.key = params, ens.name, key
    out.timings = {"total": time.perf_counter() - t0}
    if use_cache:
        result_cache.store("spaces", key, out.to_bytes(), cache_dir)      # only after the whole computation finished
    return out


def spaces_rows(result: SpacesResult) -> list[dict]:
    """One dict per model pair (a <= b) for CSV: information, NMI, VI and their errors."""
    rows = []
    for a in range(result.n_models):
        for b in range(a, result.n_models):
            rows.append({"model_a": a, "model_b": b, "info_a_bits": result.info[a], "info_a_err": result.info_err[a],
                         "info_b_bits": result.info[b], "info_b_err": result.info_err[b],
                         "mutual_bits": result.mutual[a, b], "mutual_err": result.mutual_err[a, b],
                         "nmi": result.nmi[a, b], "nmi_err": result.nmi_err[a, b],
                         "vi_bits": result.vi[a, b], "vi_err": result.vi_err[a, b]})
    return rows


__all__ = ["SpacesResult", "compare_model_spaces", "ensemble_spaces", "sample_posteriors", "spaces_rows",
           "default_cache_dir"]
