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

import hashlib
import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from vaefrag import cache as result_cache
from vaefrag.cache import default_cache_dir

#: the estimator's source, part of every cache key (torch is imported only to compute)
_MONTECARLO_SRC = Path(__file__).parent / "measures" / "montecarlo.py"

_ARRAYS = ("info", "info_err", "self_info", "self_info_err", "mutual", "mutual_err", "nmi", "nmi_err", "vi",
           "vi_err")


@dataclass
class SpacesResult:
    """Model x model comparison of full latent spaces (bits; *_err are standard errors).

    info, info_err [K]: I(X;U_k);  self_info, self_info_err [K]: I(U_k;U_k');
    mutual, nmi, vi (+ _err) [K, K]: I(U_a;U_b), NMI, VI between whole spaces (NaN NMI for a space
    without information);  n_samples, n_points: Monte Carlo draws and dataset points;
    params: settings;  key: cache key;  from_cache: served from the cache.
    """

    info: np.ndarray
    info_err: np.ndarray
    self_info: np.ndarray
    self_info_err: np.ndarray
    mutual: np.ndarray
    mutual_err: np.ndarray
    nmi: np.ndarray
    nmi_err: np.ndarray
    vi: np.ndarray
    vi_err: np.ndarray
    n_samples: int
    n_points: int
    params: dict = field(default_factory=dict)
    ensemble_name: str = ""
    key: str = ""
    from_cache: bool = False
    timings: dict = field(default_factory=dict)

    @property
    def n_models(self) -> int:
        return int(self.info.shape[0])

    def to_bytes(self) -> bytes:
        """npz bytes (no pickle) for the cache."""
        meta = {"n_samples": self.n_samples, "n_points": self.n_points, "params": self.params,
                "ensemble_name": self.ensemble_name, "key": self.key, "timings": self.timings}
        return result_cache.pack({k: getattr(self, k) for k in _ARRAYS}, meta)

    @classmethod
    def from_bytes(cls, data: bytes) -> "SpacesResult":
        arr, meta = result_cache.unpack(data)
        return cls(**arr, **meta)


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
    `SpacesResult`. Per model: I(X;U) from the model's space and I(X;U,U') from its posterior
    tiled with itself (independent noise for the copy); per pair I(X;U_a,U_b) from the
    concatenated posteriors.
    """
    from vaefrag import measures
    from vaefrag.measures import monte_carlo_terms
    from vaefrag.measures.validation import _check_posteriors

    mu, logvar = _check_posteriors(mu, logvar, ndim=3, min_points=2)
    if int(n_samples) != n_samples or n_samples < 2:
        raise ValueError(f"n_samples: expected an integer >= 2, got {n_samples}")
    k, d, l_ = mu.shape
    n_samples = int(n_samples)
    dev = measures.resolve_device(device)
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, d, n_samples)
    noise = rng.standard_normal((k, n_samples, l_))         # the noise of model a, shared by all its uses
    noise2 = rng.standard_normal((k, n_samples, l_))        # the independent copy U'
    total = 2 * k + k * (k - 1) // 2
    done = [0]

    def terms(m, lv, eps, msg):
        out = monte_carlo_terms(m, lv, idx, eps, block, dev)
        done[0] += 1
        if progress is not None:
            progress(done[0], total, msg)
        return out

    t_single = np.stack([terms(mu[a], logvar[a], noise[a], f"I(X;U) model {a}") for a in range(k)])
    t_self = np.stack([terms(np.concatenate([mu[a], mu[a]], 1), np.concatenate([logvar[a], logvar[a]], 1),
                             np.concatenate([noise[a], noise2[a]], 1), f"I(X;U,U') model {a}") for a in range(k)])
    t_pair = {}
    for a in range(k):
        for b in range(a + 1, k):
            t_pair[a, b] = terms(np.concatenate([mu[a], mu[b]], 1), np.concatenate([logvar[a], logvar[b]], 1),
                                 np.concatenate([noise[a], noise[b]], 1), f"I(X;U,V) models {a}, {b}")
    mean = lambda t: t.mean(-1)
    var_of_mean = lambda t: t.var(-1, ddof=1) / n_samples
    info = mean(t_single)
    s_terms = 2 * t_single - t_self                                          # per-sample I(U;U') terms
    self_info, self_info_err = mean(s_terms), np.sqrt(var_of_mean(s_terms))
    mutual, vi, nmi = np.zeros((k, k)), np.zeros((k, k)), np.full((k, k), np.nan)
    mutual_err, vi_err, nmi_err = np.zeros((k, k)), np.zeros((k, k)), np.full((k, k), np.nan)
    for a in range(k):
        for b in range(a, k):
            if a == b:
                m_t, v_t = s_terms[a], np.zeros(n_samples)                  # I(U;U'), VI(U,U) = 0 exactly
            else:
                m_t = t_single[a] + t_single[b] - t_pair[a, b]
                v_t = 2 * t_pair[a, b] - t_self[a] - t_self[b]
            mutual[a, b] = mutual[b, a] = m_t.mean()
            mutual_err[a, b] = mutual_err[b, a] = math.sqrt(var_of_mean(m_t))
            vi[a, b] = vi[b, a] = v_t.mean()
            vi_err[a, b] = vi_err[b, a] = math.sqrt(var_of_mean(v_t))
            sa, sb = self_info[a], self_info[b]
            if min(sa, sb) > 1e-9:
                r = m_t.mean() / math.sqrt(sa * sb)
                # delta method on (mutual, self_a, self_b) with their joint sample covariance
                g = np.array([1 / math.sqrt(sa * sb), -0.5 * r / sa, -0.5 * r / sb])
                cov = np.atleast_2d(np.cov(np.stack([m_t, s_terms[a], s_terms[b]]))) / n_samples
                nmi[a, b] = nmi[b, a] = r
                nmi_err[a, b] = nmi_err[b, a] = math.sqrt(max(float(g @ cov @ g), 0.0))
    return SpacesResult(info=info, info_err=np.sqrt(var_of_mean(t_single)), self_info=self_info,
                        self_info_err=self_info_err, mutual=mutual, mutual_err=mutual_err, nmi=nmi,
                        nmi_err=nmi_err, vi=vi, vi_err=vi_err, n_samples=n_samples, n_points=d,
                        params={"n_samples": n_samples, "seed": int(seed)})


# --------------------------------------------------------------------------- ensembles, cached


def _cache_key(mu, logvar, params: dict) -> str:
    h = hashlib.sha256()
    for a in (np.ascontiguousarray(mu), np.ascontiguousarray(logvar)):
        h.update(f"{a.dtype.str}{a.shape}".encode())
        h.update(a.tobytes())
    h.update(json.dumps(params, sort_keys=True).encode())
    for mod in (Path(__file__), _MONTECARLO_SRC):
        h.update(mod.read_bytes())
    return h.hexdigest()


def sample_posteriors(ensemble, size: int, seed: int = 0, device="cpu", progress=None):
    """Encode a fresh sample of ``size`` points of the ensemble's dataset with every member.

    Returns mu, logvar float32 [K, size, L]. Needs member weights or ONNX encoders, and a dataset in the manifest.
    """
    from vaefrag import store, training

    if not ensemble.has_encoders:
        raise store.EnsembleError(f"{ensemble.path}: has no member weights or ONNX encoders; cannot encode a larger sample")
    ds = training.dataset_of(ensemble)
    _, x, _ = training.fingerprint_sample(ds, size, seed)
    mus, lvs = [], []
    for k in range(ensemble.n_models):
        mu, lv = training.encode_member(store.load_member(ensemble, k, device=device), x, device=device)
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
    cache = None
    if use_cache:
        import diskcache

        cache = diskcache.Cache(str(Path(cache_dir or default_cache_dir()) / "spaces"))
    try:
        if cache is not None:
            hit = cache.get(key)
            if isinstance(hit, bytes):
                out = SpacesResult.from_bytes(hit)
                out.from_cache = True
                return out
        if not compute:
            return None
        out = compare_model_spaces(mu, logvar, n_samples=n_samples, seed=seed, device=device, progress=progress)
        out.params, out.ensemble_name, out.key = params, ens.name, key
        out.timings = {"total": time.perf_counter() - t0}
        if cache is not None:
            cache.set(key, out.to_bytes())            # only after the whole computation finished
        return out
    finally:
        if cache is not None:
            cache.close()


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
