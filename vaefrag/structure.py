"""Hotspots of recurring channels (OPTICS), their bootstrap stability, and 2-D channel maps.

Numpy in, numpy out (shared/DESIGN.md §3). Channels carrying less than ``info_threshold`` bits
are set aside; the rest are compared through a distance derived from VI (clipped at 0) or NMI
(``-ln(max(NMI, 1e-4))``). OPTICS (scikit-learn, ``metric="precomputed"``, xi extraction)
orders the channels; its leaf clusters are the **hotspots**. Hotspot ids are renumbered
0, 1, ... in the order they appear along the OPTICS ordering, so figures number them left to right.

Defaults scale with the ensemble: a fragment that recurs across runs appears (at most) once per
model, so ``min_samples`` defaults to about half the number of models K (at least 2), and the
smallest hotspot (``min_cluster_size``) to the same number.
"""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np

from vaefrag.params import DEFAULT_INFO_THRESHOLD, DEFAULT_MIN_NMI, DEFAULT_XI, AnalysisParams
from vaefrag.results import Hotspot

__all__ = [
    "Hotspot",
    "HotspotFinder",
    "channel_distances",
    "default_min_samples",
    "channel_maps",
    "bootstrap_stability",
    "resampled_stability",
    "resample_counts",
    "optics_graph",
    "Stability",
    "NMI_FLOOR",
    "DEFAULT_MIN_NMI",
]

#: NMI values below this are clipped before taking -ln (distance at most ln(1e4) ~ 9.2)
NMI_FLOOR = 1e-4

Progress = Callable[..., None]


def default_min_samples(n_models: int, n_channels: int) -> int:
    """OPTICS ``min_samples`` default: ceil(K / 2) clipped to [2, n_channels].

    A fragment recurs at most once per model, so a hotspot found by half of K runs has about
    K / 2 members; a constant (the reference code's 20) would miss every hotspot of a small ensemble.
    """
    return int(max(2, min(math.ceil(n_models / 2), n_channels)))


def channel_distances(nmi=None, vi=None, measure: str = "nmi") -> np.ndarray:
    """Symmetric distance matrix between channels.

    Parameters
    ----------
    nmi, vi : [M, M] NMI and VI matrices (only the one named by ``measure`` is needed).
    measure : "nmi" -> -ln(max(NMI, 1e-4)); "vi" -> max(VI, 0) (bits).

    Returns
    -------
    [M, M] float64, symmetric, zero diagonal. NaN entries (undefined NMI) raise ValueError.
    """
    if measure not in ("nmi", "vi"):
        raise ValueError(f"measure: expected 'nmi' or 'vi', got {measure!r}")
    src = nmi if measure == "nmi" else vi
    if src is None:
        raise ValueError(f"{measure}: expected an [M, M] matrix for measure={measure!r}, got None")
    a = np.asarray(src, dtype=np.float64)
    if a.ndim != 2 or a.shape[0] != a.shape[1]:
        raise ValueError(f"{measure}: expected a square [M, M] matrix, got shape {a.shape}")
    a = 0.5 * (a + a.T)
    if not np.all(np.isfinite(a)):
        raise ValueError(f"{measure}: expected finite values among the kept channels, found NaN/inf")
    d = -np.log(np.clip(a, NMI_FLOOR, 1.0)) if measure == "nmi" else a
    d = np.where(d > 0, d, 0.0)         # +0.0, never -0.0 (OPTICS' xi divides reachabilities)
    np.fill_diagonal(d, 0.0)
    return d


def _unpack(nmi, vi, info, factor_nmi):
    """Accept a ChannelComparison-like object (attributes nmi, vi, info, factor_nmi) or arrays."""
    if hasattr(nmi, "nmi"):
        comp = nmi
        return comp.nmi, comp.vi, comp.info, getattr(comp, "factor_nmi", None)
    return nmi, vi, info, factor_nmi


class HotspotFinder:
    """OPTICS hotspots of channels, scikit-learn style.

    Parameters
    ----------
    measure : "nmi" or "vi", the distance (see `channel_distances`).
    info_threshold : channels with less information (bits) are set aside (not clustered).
    min_samples : OPTICS neighbourhood size; None -> `default_min_samples` (about K / 2).
    xi : OPTICS xi steepness in (0, 1); None -> 0.05.
    min_cluster_size : smallest hotspot; None -> min_samples.
    min_nmi : an OPTICS cluster is a hotspot only if the mean NMI between its members reaches this
        (nearly identical channels). Groups of unrelated high-information channels form shallow
        valleys too (finite-sample NMI between independent channels is not 0); this keeps them out.
        0 disables the check (it needs the NMI matrix).
    random_state : unused by OPTICS (deterministic); kept for a uniform API with the maps.

    Learned attributes
    ------------------
    kept_ [Mk] indices of the clustered channels into the M input channels;
    distance_ [Mk, Mk]; ordering_ [Mk] (indices into kept); reachability_ [Mk] in OPTICS order
    (first entry inf); labels_ [Mk] hotspot id or -1 (in kept order); hotspots_ list[Hotspot];
    min_samples_, xi_, min_cluster_size_ (resolved values); n_models_.
    """

    def __init__(self, measure: str = "nmi", info_threshold: float = DEFAULT_INFO_THRESHOLD, min_samples: int | None = None,
                 xi: float | None = None, min_cluster_size: int | None = None,
                 min_nmi: float = DEFAULT_MIN_NMI, random_state: int | None = 0):
        self.measure = measure
        self.info_threshold = info_threshold
        self.min_samples = min_samples
        self.xi = xi
        self.min_cluster_size = min_cluster_size
        self.min_nmi = min_nmi
        self.random_state = random_state

    def _check_params(self):
        """The one validation of `params.AnalysisParams` (ParameterError names the parameter)."""
        AnalysisParams(measure=self.measure, info_threshold=self.info_threshold, min_samples=self.min_samples,
                       xi=self.xi, min_nmi=self.min_nmi)
        if self.min_cluster_size is not None and (int(self.min_cluster_size) != self.min_cluster_size
                                                  or self.min_cluster_size < 2):
            raise ValueError(f"min_cluster_size: expected an integer >= 2, got {self.min_cluster_size}")

    def fit(self, nmi, vi=None, info=None, *, channel_ids=None, factor_nmi=None) -> "HotspotFinder":
        """Find hotspots.

        Parameters
        ----------
        nmi : [M, M] NMI matrix, or a `measures.ChannelComparison` (then vi, info, factor_nmi are read from it).
        vi : [M, M] VI (bits); required for measure="vi".
        info : [M] information per channel (bits); None keeps every channel with defined NMI.
        channel_ids : [M, 2] (model, latent); None -> every channel its own model.
        factor_nmi : [M, F] NMI of each channel with each ground-truth factor, optional.
        """
        self._check_params()
        nmi, vi, info, factor_nmi = _unpack(nmi, vi, info, factor_nmi)
        ref = nmi if self.measure == "nmi" else vi
        if ref is None:
            raise ValueError(f"{self.measure}: expected an [M, M] matrix for measure={self.measure!r}, got None")
        ref = np.asarray(ref, dtype=np.float64)
        if ref.ndim != 2 or ref.shape[0] != ref.shape[1]:
            raise ValueError(f"{self.measure}: expected a square [M, M] matrix, got shape {ref.shape}")
        m = ref.shape[0]
        info = np.full(m, np.inf) if info is None else np.asarray(info, dtype=np.float64)
        if info.shape != (m,):
            raise ValueError(f"info: expected shape ({m},), got {info.shape}")
        ids = np.stack([np.arange(m), np.zeros(m, int)], 1) if channel_ids is None else np.asarray(channel_ids)
        if ids.shape != (m, 2):
            raise ValueError(f"channel_ids: expected shape ({m}, 2), got {ids.shape}")
        if factor_nmi is not None:
            factor_nmi = np.asarray(factor_nmi, dtype=np.float64)
            if factor_nmi.ndim != 2 or factor_nmi.shape[0] != m:
                raise ValueError(f"factor_nmi: expected shape ({m}, F), got {factor_nmi.shape}")

        keep = info >= self.info_threshold
        keep &= np.isfinite(np.diag(ref))
        if self.measure == "nmi":
            keep &= np.isfinite(np.asarray(nmi, dtype=np.float64)).sum(1) > 0
        kept = np.flatnonzero(keep)
        sub = lambda a: None if a is None else np.asarray(a, dtype=np.float64)[np.ix_(kept, kept)]
        dist = channel_distances(sub(nmi), sub(vi), self.measure)
        mk = kept.size
        self.kept_, self.distance_, self.n_models_ = kept, dist, int(len(np.unique(ids[:, 0])))
        self.channel_ids_ = ids[kept]
        self.info_ = info[kept]
        self.nmi_ = sub(nmi)
        self.factor_nmi_ = None if factor_nmi is None else factor_nmi[kept]
        if self.min_samples is not None and self.min_samples > mk:
            raise ValueError(f"min_samples: expected at most the {mk} channels above the information "
                             f"threshold, got {self.min_samples}")
        self.min_samples_ = int(self.min_samples) if self.min_samples is not None else \
            default_min_samples(self.n_models_, mk)
        self.xi_ = float(self.xi) if self.xi is not None else DEFAULT_XI
        self.min_cluster_size_ = int(self.min_cluster_size) if self.min_cluster_size is not None \
            else self.min_samples_
        if mk < 2:
            self.ordering_ = np.arange(mk)
            self.reachability_ = np.full(mk, np.inf)
            self.labels_ = np.full(mk, -1)
            self.hotspots_ = []
            return self
        ms, mcs = min(self.min_samples_, mk), min(self.min_cluster_size_, mk)
        self.ordering_, core, reach, pred = optics_graph(dist, ms)
        self.reachability_ = reach[self.ordering_]
        raw = _xi_labels(reach, pred, self.ordering_, ms, mcs, self.xi_)
        if self.min_nmi > 0 and self.nmi_ is not None:
            for lab in np.unique(raw[raw >= 0]):
                idx = np.flatnonzero(raw == lab)
                off = self.nmi_[np.ix_(idx, idx)][~np.eye(idx.size, dtype=bool)]
                if not (np.isfinite(off).any() and np.nanmean(off) >= self.min_nmi):
                    raw[idx] = -1
        # renumber hotspots by first appearance along the ordering
        order_labels = raw[self.ordering_]
        seen = [lab for lab in dict.fromkeys(order_labels.tolist()) if lab >= 0]
        remap = {old: new for new, old in enumerate(seen)}
        self.labels_ = np.array([remap.get(lab, -1) for lab in raw], dtype=np.int64)
        self.hotspots_ = [self._describe(h) for h in range(len(seen))]
        return self

    def fit_predict(self, *args, **kwargs) -> np.ndarray:
        return self.fit(*args, **kwargs).labels_

    def _describe(self, h: int) -> Hotspot:
        members = np.flatnonzero(self.labels_ == h)
        # keep members in OPTICS order (as they appear in the ordered matrix)
        pos = np.argsort(self.ordering_)
        members = members[np.argsort(pos[members])]
        d = self.distance_[np.ix_(members, members)]
        medoid = int(members[np.argmin(d.sum(1))])
        block = self.nmi_[np.ix_(members, members)] if self.nmi_ is not None else None
        if block is not None and members.size > 1:
            off = block[~np.eye(members.size, dtype=bool)]
            mean_nmi = float(np.nanmean(off)) if np.isfinite(off).any() else float("nan")
        else:
            mean_nmi = float("nan")
        best, best_nmi = None, float("nan")
        if self.factor_nmi_ is not None and self.factor_nmi_.shape[1] > 0:
            prof = np.nanmean(np.where(np.isfinite(self.factor_nmi_[members]), self.factor_nmi_[members], np.nan), 0)
            if np.isfinite(prof).any():
                best = int(np.nanargmax(prof))
                best_nmi = float(prof[best])
        chans = self.channel_ids_[members]
        return Hotspot(id=h, members=members, channels=chans, size=int(members.size),
                       n_models=int(len(np.unique(chans[:, 0]))),
                       mean_info=float(np.mean(self.info_[members])), mean_nmi=mean_nmi, medoid=medoid,
                       best_factor=best, best_factor_nmi=best_nmi)


def optics_graph(distance: np.ndarray, min_samples: int):
    """OPTICS ordering of a precomputed distance matrix, exactly as scikit-learn computes it.

    Same steps, tie-breaking and rounding as ``sklearn.cluster.compute_optics_graph`` with
    ``metric="precomputed"`` and ``max_eps=inf`` (core distance: the ``min_samples``-th smallest
    entry of a row, the point itself included; next point: the unprocessed one with the smallest
    reachability, the lowest index on ties), but with one vectorised update per point instead of
    a neighbour query per point: 5-50x faster on hundreds of channels, which is what makes
    refitting every resample cheap. Checked against scikit-learn in tests/test_structure.py.

    Parameters
    ----------
    distance : [M, M] symmetric, finite, zero diagonal.  min_samples : in [1, M].

    Returns
    -------
    ordering [M], core_distances [M], reachability [M] (by point, not by position), predecessor [M].
    """
    d = np.asarray(distance, dtype=np.float64)
    m = d.shape[0]
    decimals = np.finfo(np.float64).precision
    core = np.partition(d, min_samples - 1, axis=1)[:, min_samples - 1].copy()
    np.around(core, decimals=decimals, out=core)
    reach = np.full(m, np.inf)
    pred = np.full(m, -1, dtype=np.int64)
    processed = np.zeros(m, dtype=bool)
    work = np.full(m, np.inf)                    # reachability of unprocessed points, inf for processed ones
    ordering = np.empty(m, dtype=np.int64)
    for step in range(m):
        point = int(np.argmin(work))
        if not work[point] < np.inf:             # all remaining at inf: the lowest unprocessed index
            point = int(np.argmin(processed))
        processed[point] = True
        work[point] = np.inf
        ordering[step] = point
        if core[point] == np.inf:
            continue
        unproc = np.flatnonzero(~processed)
        if not unproc.size:
            continue
        rd = np.maximum(d[point, unproc], core[point])
        np.around(rd, decimals=decimals, out=rd)
        better = rd < reach[unproc]
        idx = unproc[better]
        reach[idx] = rd[better]
        work[idx] = rd[better]
        pred[idx] = point
    return ordering, core, reach, pred


def _xi_labels(reach, pred, ordering, min_samples: int, min_cluster_size: int, xi: float) -> np.ndarray:
    """scikit-learn's xi cluster extraction (``cluster_optics_xi``, predecessor correction on)."""
    from sklearn.cluster import cluster_optics_xi

    with np.errstate(divide="ignore", invalid="ignore"):     # its ratio of reachabilities (inf / 0); thread-local
        labels, _ = cluster_optics_xi(reachability=reach, predecessor=pred, ordering=ordering,
                                      min_samples=min_samples, min_cluster_size=min_cluster_size, xi=xi,
                                      predecessor_correction=True)
    return labels


# --------------------------------------------------------------------------- maps


def channel_maps(distance, methods: Sequence[str] = ("mds", "umap"), *, random_state: int = 0,
                 n_neighbors: int | None = None) -> dict[str, np.ndarray]:
    """2-D maps of channels from a precomputed distance matrix.

    Parameters
    ----------
    distance : [M, M] symmetric distances (e.g. ``HotspotFinder.distance_``).
    methods : any of "mds" (scikit-learn metric MDS, SMACOF from classical MDS) and "umap"
        (umap-learn, imported lazily; it costs seconds to import).
    random_state : seed of both maps.  n_neighbors : UMAP neighbours; None -> min(15, M - 1).

    Returns
    -------
    dict method -> [M, 2] float64 coordinates.
    """
    d = np.asarray(distance, dtype=np.float64)
    if d.ndim != 2 or d.shape[0] != d.shape[1] or not np.all(np.isfinite(d)):
        raise ValueError(f"distance: expected a finite square [M, M] matrix, got shape {d.shape}")
    d = 0.5 * (d + d.T)
    np.fill_diagonal(d, 0.0)
    m = d.shape[0]
    out: dict[str, np.ndarray] = {}
    for method in methods:
        if method not in ("mds", "umap"):
            raise ValueError(f"methods: expected 'mds' and/or 'umap', got {method!r}")
        if m < 3 or not np.any(d > 0):
            out[method] = np.zeros((m, 2)) if m < 2 else np.c_[np.linspace(0, 1, m), np.zeros(m)]
            continue
        out[method] = _mds(d, random_state) if method == "mds" else _umap(d, random_state, n_neighbors)
    return out


def _mds(d: np.ndarray, random_state: int) -> np.ndarray:
    import inspect

    from sklearn.manifold import MDS

    params = inspect.signature(MDS.__init__).parameters
    if "metric_mds" in params:      # scikit-learn >= 1.8
        mds = MDS(n_components=2, metric_mds=True, metric="precomputed", init="classical_mds",
                  random_state=random_state, normalized_stress="auto")
    else:
        mds = MDS(n_components=2, metric=True, dissimilarity="precomputed", random_state=random_state,
                  n_init=4)
    return np.asarray(mds.fit_transform(d), dtype=np.float64)


def _import_umap():
    """umap, imported with numba's on-disk cache on (`cache.use_numba_cache`): umap-learn compiles
    most of its functions without ``cache=True``, which costs 20 s or more in every fresh
    process; while it is imported, numba's decorators default to ``cache=True``, so the compiled
    code is written once under the vaefrag cache and loaded by later processes."""
    import functools
    import sys

    if "umap" in sys.modules:
        return sys.modules["umap"]
    from vaefrag.cache import use_numba_cache

    use_numba_cache()
    import numba

    plain = {name: getattr(numba, name) for name in ("njit", "jit")}

    def caching(decorator):
        @functools.wraps(decorator)
        def wrapped(*args, **kwargs):
            kwargs.setdefault("cache", True)
            return decorator(*args, **kwargs)
        return wrapped

    for name, deco in plain.items():
        setattr(numba, name, caching(deco))
    try:
        import umap
    finally:
        for name, deco in plain.items():
            setattr(numba, name, deco)
    # every precomputed fit warns that inverse_transform is unavailable (we never call it): one
    # narrow filter for that message, added once (no catch_warnings, which is not thread-safe)
    warnings.filterwarnings("ignore", message="using precomputed metric; inverse_transform", category=UserWarning)
    return umap


def _umap(d: np.ndarray, random_state: int, n_neighbors: int | None) -> np.ndarray:
    umap = _import_umap()
    m = d.shape[0]
    k = int(min(15, m - 1) if n_neighbors is None else n_neighbors)
    if not 2 <= k < m:
        raise ValueError(f"n_neighbors: expected an integer in [2, {m - 1}], got {k}")
    init = "spectral" if m > k + 2 else "random"
    reducer = umap.UMAP(n_neighbors=k, n_components=2, metric="precomputed", random_state=random_state,
                        init=init, n_jobs=1)
    return np.asarray(reducer.fit_transform(d), dtype=np.float64)


# --------------------------------------------------------------------------- stability


@dataclass
class Stability:
    """Bootstrap stability of a fitted finder's hotspots.

    stability [H] fraction of refits that find each hotspot (best Jaccard overlap >= ``min_jaccard``);
    nmi_ci [H, 2] percentile interval of each hotspot's mean within-hotspot NMI;
    mean_nmi [B, H] the per-resample values; jaccard [B, H] best overlap per resample.
    """

    stability: np.ndarray
    nmi_ci: np.ndarray
    mean_nmi: np.ndarray
    jaccard: np.ndarray
    n_bootstrap: int
    extra: dict = field(default_factory=dict)


def _check_stability_args(finder, min_jaccard, ci):
    if not hasattr(finder, "hotspots_"):
        raise ValueError("finder: expected a fitted HotspotFinder (call fit first)")
    if not 0.0 < min_jaccard <= 1.0:
        raise ValueError(f"min_jaccard: expected a number in (0, 1], got {min_jaccard}")
    if not 0.0 < ci < 1.0:
        raise ValueError(f"ci: expected a number in (0, 1), got {ci}")


def resample_counts(n_points: int, n_resamples: int, random_state: int = 0) -> np.ndarray:
    """[B, N] multinomial counts of B bootstrap draws of the N fingerprint points (the draws of
    `bootstrap_stability` with the same seed)."""
    rng = np.random.default_rng(random_state)
    return np.stack([np.bincount(rng.integers(0, n_points, size=n_points), minlength=n_points)
                     for _ in range(int(n_resamples))]).astype(np.float64) if n_resamples else np.zeros((0, n_points))


class _ResampleScorer:
    """Refits a finder's hotspots on resampled matrices and collects overlaps and mean NMIs."""

    def __init__(self, finder: HotspotFinder, n_resamples: int):
        self.finder = finder
        self.hotspots = finder.hotspots_
        n_h = len(self.hotspots)
        self.mean_nmi = np.full((n_resamples, n_h), np.nan)
        self.best_j = np.zeros((n_resamples, n_h))
        self.member_sets = [set(h.members.tolist()) for h in self.hotspots]

    def score(self, b: int, nmi, vi, info) -> None:
        """Resample b: nmi, vi [Mk, Mk], info [Mk] of the finder's kept channels."""
        f = self.finder
        for h, hs in enumerate(self.hotspots):
            blk = nmi[np.ix_(hs.members, hs.members)]
            off = blk[~np.eye(hs.size, dtype=bool)]
            if np.isfinite(off).any():
                self.mean_nmi[b, h] = np.nanmean(off)
        refit = HotspotFinder(measure=f.measure, info_threshold=f.info_threshold, min_samples=f.min_samples_,
                              xi=f.xi_, min_cluster_size=f.min_cluster_size_, min_nmi=f.min_nmi)
        try:
            refit.fit(nmi, vi, info, channel_ids=f.channel_ids_)
            found = [set(refit.kept_[hs.members].tolist()) for hs in refit.hotspots_]
        except ValueError:          # too few channels left above the threshold in this resample
            found = []
        for h, ms in enumerate(self.member_sets):
            if found:
                self.best_j[b, h] = max(len(ms & fs) / len(ms | fs) for fs in found)

    def result(self, min_jaccard: float, ci: float, method: str) -> "Stability":
        n_h = len(self.hotspots)
        stability = (self.best_j >= min_jaccard).mean(0) if n_h and len(self.best_j) else np.full(n_h, np.nan)
        lo_q, hi_q = 100 * (1 - ci) / 2, 100 * (1 + ci) / 2
        nmi_ci = np.full((n_h, 2), np.nan)
        for h in range(n_h):
            vals = self.mean_nmi[:, h][np.isfinite(self.mean_nmi[:, h])]
            if vals.size:
                nmi_ci[h] = np.percentile(vals, [lo_q, hi_q])
        for h, hs in enumerate(self.hotspots):
            hs.stability = float(stability[h])
            hs.nmi_ci = (float(nmi_ci[h, 0]), float(nmi_ci[h, 1]))
        return Stability(stability=stability, nmi_ci=nmi_ci, mean_nmi=self.mean_nmi, jaccard=self.best_j,
                         n_bootstrap=len(self.best_j), extra={"method": method})


def resampled_stability(finder: HotspotFinder, resampled: dict, *, min_jaccard: float = 0.5, ci: float = 0.95,
                        progress: Progress | None = None) -> Stability:
    """Hotspot stability from resamples computed in the measures' one pass (cheap).

    ``resampled`` is `measures.ChannelComparison.resampled` of the M channels the finder was fitted
    on (``finder.kept_`` indexes them), from ``compare_channels(..., resample_weights=W)`` with W the
    multinomial counts of B bootstrap draws of the fingerprint points (`resample_counts`).

    What it estimates: resample b reweights the *outer* average over fingerprint points i of every
    information I(X;U) = -(1/N) sum_i log2 p_U(i) by the counts of draw b, while each point's
    posterior-overlap density p_U(i) = (1/N) sum_j BC_U(i, j) keeps all N points. This is the
    bootstrap of the Monte Carlo average over points, i.e. of which data the information is
    averaged over, conditional on the density estimates. To first order it is the full
    point-resampling bootstrap (`bootstrap_stability`): the inner part of the influence of a
    point, (1/N) sum_i BC(i, k) / p(i), is constant for hard clusterings (exactly) and for any
    channel whose overlap density varies slowly on the scale of one posterior, so it cancels;
    it also avoids the full bootstrap's bias from duplicated points (BC(i, i') = 1 for copies).
    Each resample is refit with the finder's parameters (OPTICS is refit, not reused), so a
    hotspot that depends on a few points, or sits near the ``min_nmi`` or xi edge, is found in
    fewer refits. Cost: one small GEMM per block of points in the measures' pass plus B refits,
    instead of B full recomputations of the measures.

    Returns
    -------
    `Stability`; also writes ``stability`` and ``nmi_ci`` into ``finder.hotspots_``.
    """
    from vaefrag.measures.channels import resampled_measures

    _check_stability_args(finder, min_jaccard, ci)
    for name in ("joint", "info_a", "selfjoint_a"):
        if name not in resampled:
            raise ValueError(f"resampled: expected the field {name!r} of ChannelComparison.resampled")
    n_res = int(np.shape(resampled["joint"])[0])
    kept = finder.kept_
    scorer = _ResampleScorer(finder, n_res)
    sub = np.ix_(kept, kept)
    for b in range(n_res):
        info, nmi, vi = resampled_measures(resampled, b, finder.info_threshold)
        scorer.score(b, nmi[sub], vi[sub], info[kept])
        if progress is not None:
            progress(b + 1, n_res, "stability")
    return scorer.result(min_jaccard, ci, "reweighted outer average (one pass)")


def bootstrap_stability(finder: HotspotFinder, mu, logvar, *, n_bootstrap: int = 20, random_state: int = 0,
                        min_jaccard: float = 0.5, ci: float = 0.95, device="auto", map_tiles=None,
                        block_channels: int | None = None, progress: Progress | None = None) -> Stability:
    """Full point-resampling bootstrap: resample the fingerprint points, recompute the measures,
    refit and match the hotspots (B full recomputations; the reference `resampled_stability` is checked against).

    Parameters
    ----------
    finder : a fitted `HotspotFinder` (its ``kept_`` index the M channels of ``mu``).
    mu, logvar : [M, N, d] channel posteriors the finder's matrices came from
        (``measures.split_channels`` of the ensemble posteriors).
    n_bootstrap : number of resamples B (rows of the N points drawn with replacement).
    min_jaccard : a refit hotspot with member overlap |A & B| / |A | B| >= this counts as found.
    ci : width of the percentile interval of the mean within-hotspot NMI.
    device, map_tiles, block_channels : how `compare_channels` runs (None: its defaults).
    progress : optional callable(done, total, message).

    Returns
    -------
    `Stability`; also writes ``stability`` and ``nmi_ci`` into ``finder.hotspots_``.
    """
    from vaefrag.measures import compare_channels

    _check_stability_args(finder, min_jaccard, ci)
    if int(n_bootstrap) != n_bootstrap or n_bootstrap < 1:
        raise ValueError(f"n_bootstrap: expected an integer >= 1, got {n_bootstrap}")
    mu = np.asarray(mu)
    logvar = np.asarray(logvar)
    if mu.ndim != 3 or mu.shape != logvar.shape:
        raise ValueError(f"mu, logvar: expected equal shapes [M, N, d], got {mu.shape}, {logvar.shape}")
    kept = finder.kept_
    if kept.size and kept.max() >= mu.shape[0]:
        raise ValueError(f"mu: expected at least {kept.max() + 1} channels (the finder's), got {mu.shape[0]}")
    n = mu.shape[1]
    rng = np.random.default_rng(random_state)
    scorer = _ResampleScorer(finder, n_bootstrap)
    mu_k, lv_k = mu[kept], logvar[kept]
    for b in range(n_bootstrap):
        idx = rng.integers(0, n, size=n)
        comp = compare_channels(mu_k[:, idx], lv_k[:, idx], info_threshold=finder.info_threshold, device=device,
                                map_tiles=map_tiles, block_channels=block_channels)
        scorer.score(b, comp.nmi, comp.vi, comp.info)
        if progress is not None:
            progress(b + 1, n_bootstrap, "bootstrap")
    return scorer.result(min_jaccard, ci, "full point-resampling bootstrap")
