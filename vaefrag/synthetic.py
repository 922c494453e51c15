"""Synthetic representation spaces and point-based similarity measures (CKA).

The nine spaces of the similarity-measure benchmark of Murphy, Dillavou & Bassett
(arXiv:2405.21042, Fig. 2): the same 64 data points x = 0..63 embedded as diagonal Gaussian
posteriors in 1-D or 2-D spaces:

    spiral         2-D spiral of constant, narrow posteriors
    spiral_wide    the same spiral with wider posteriors (neighbours overlap)
    spiral_growing the same spiral with posteriors that widen along it
    square         a square spiral of unit-variance posteriors
    square_wide    the square spiral with wide posteriors
    line           1-D line of narrow posteriors
    two_clusters   two discrete clusters of 32 points each
    four_clusters  four discrete clusters of 16 points each
    four_overlap   four clusters that overlap pairwise along one axis

and the CKA family (Kornblith et al. 2019): CKA(K, L) = HSIC(K, L) / sqrt(HSIC(K, K) HSIC(L, L)),
HSIC(K, L) = tr(K H L H) with H = I - 11^T / n, for linear kernels on the means, for the
Bhattacharyya-coefficient matrices, and for RBF kernels on the means.

Also `make_fragment_ensemble`: an ensemble on disk whose channels carry known sprites factors
(tests, and the dashboard benchmark).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

N_POINTS = 64

#: names of the nine spaces, in the order of the benchmark
SPACE_NAMES = ("spiral", "spiral_wide", "spiral_growing", "square", "square_wide", "line",
               "two_clusters", "four_clusters", "four_overlap")


@dataclass
class SyntheticSpace:
    """One synthetic representation space: posteriors of the points x = 0..n-1.

    mu, logvar : [n, d] float64 (d = 1 or 2); name, description : str.
    """

    name: str
    description: str
    mu: np.ndarray
    logvar: np.ndarray

    @property
    def dims(self) -> int:
        return int(self.mu.shape[1])


def _spiral_means(n: int) -> np.ndarray:
    """Archimedean-like spiral: radius sqrt(x), angle 2 pi 0.2 sqrt(x)."""
    r = np.sqrt(np.arange(n, dtype=np.float64))
    a = 2 * np.pi * 0.2 * r
    return np.stack([r * np.cos(a), r * np.sin(a)], axis=1)


def _square_spiral_means(n: int) -> np.ndarray:
    """Square spiral: up, right, down, left with side lengths 1, 1, 2, 2, 3, 3, ... steps;
    the step length starts at 0.5 and grows by 0.1 after every side."""
    moves = np.array([[0.0, 1.0], [1.0, 0.0], [0.0, -1.0], [-1.0, 0.0]])
    pos, step, side, done, turn = np.zeros(2), 0.5, 1, 0, 0
    out = [pos.copy()]
    for _ in range(n - 1):
        pos = pos + step * moves[turn]
        done += 1
        if done == side:
            done, turn, step = 0, (turn + 1) % 4, step + 0.1
            if turn % 2 == 0:
                side += 1
        out.append(pos.copy())
    return np.array(out)


def _clusters(n: int, centres) -> np.ndarray:
    centres = np.asarray(centres, dtype=np.float64)
    return np.repeat(centres, n // len(centres), axis=0)


def synthetic_spaces(n: int = N_POINTS) -> list[SyntheticSpace]:
    """The nine synthetic spaces of the measure benchmark (deterministic).

    Parameters
    ----------
    n : number of points, a multiple of 4 (default 64).

    Returns
    -------
    list of `SyntheticSpace` in the order of `SPACE_NAMES`; mu, logvar [n, 1] or [n, 2].
    """
    if int(n) != n or n < 4 or n % 4:
        raise ValueError(f"n: expected a multiple of 4 that is >= 4, got {n}")
    n = int(n)
    s = np.sqrt(n)
    x = np.arange(n, dtype=np.float64)
    spiral = _spiral_means(n)
    square = _square_spiral_means(n)
    c2 = _clusters(n, [[-0.8 * s, 0.0], [0.8 * s, 0.0]])
    c4 = _clusters(n, 0.7 * s * np.array([[-1, 1], [1, 1], [1, -1], [-1, -1]]))
    c4o = _clusters(n, 0.7 * s * np.array([[-1, 1], [-1, -1], [1, -1], [1, 1]]))
    full = lambda v, d=2: np.full((n, d), float(v))
    spaces = [
        ("spiral", "2-D spiral, narrow constant posteriors", spiral, full(0.1)),
        ("spiral_wide", "the spiral with wide posteriors", spiral, full(2.1)),
        ("spiral_growing", "the spiral with posteriors widening along it", spiral,
         np.repeat((0.1 + np.sqrt(x) - 4.5)[:, None], 2, axis=1)),
        ("square", "square spiral, unit-variance posteriors", square, full(0.0)),
        ("square_wide", "the square spiral with wide posteriors", square, full(2.5)),
        ("line", "1-D line of narrow posteriors", np.linspace(-n / 2, n / 2, n)[:, None], full(-1.0, 1)),
        ("two_clusters", "two discrete clusters", c2, full(1.0)),
        ("four_clusters", "four discrete clusters", c4, full(1.0)),
        ("four_overlap", "four clusters overlapping pairwise along the vertical axis", c4o,
         np.repeat(np.array([[1.0, 4.0]]), n, axis=0)),
    ]
    return [SyntheticSpace(name, desc, np.ascontiguousarray(mu, dtype=np.float64),
                           np.ascontiguousarray(lv, dtype=np.float64)) for name, desc, mu, lv in spaces]


def pad_dims(spaces, dims: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Stack spaces of different dimension into [S, n, dims] arrays.

    Missing dimensions get the same posterior N(0, 1) for every point: such a dimension has
    Bhattacharyya coefficient 1 between all points and carries no information, so NMI, VI and
    the Monte Carlo information of the padded space equal those of the original.
    """
    spaces = list(spaces)
    if not spaces:
        raise ValueError("spaces: expected at least one space, got an empty list")
    n = spaces[0].mu.shape[0]
    if any(sp.mu.shape[0] != n for sp in spaces):
        raise ValueError(f"spaces: expected the same number of points in every space, got "
                         f"{[sp.mu.shape[0] for sp in spaces]}")
    dims = max(sp.dims for sp in spaces) if dims is None else int(dims)
    mu = np.zeros((len(spaces), n, dims))
    lv = np.zeros((len(spaces), n, dims))
    for i, sp in enumerate(spaces):
        if sp.dims > dims:
            raise ValueError(f"dims: expected >= {sp.dims} (space {sp.name!r}), got {dims}")
        mu[i, :, :sp.dims] = sp.mu
        lv[i, :, :sp.dims] = sp.logvar
    return mu, lv


# --------------------------------------------------------------------------- CKA


def _check_gram(k, name: str) -> np.ndarray:
    k = np.asarray(k, dtype=np.float64)
    if k.ndim != 2 or k.shape[0] != k.shape[1] or k.shape[0] < 2:
        raise ValueError(f"{name}: expected a square [n, n] matrix with n >= 2, got shape {k.shape}")
    if not np.all(np.isfinite(k)):
        raise ValueError(f"{name}: expected finite values")
    return k


def _double_center(k: np.ndarray) -> np.ndarray:
    """H K H without forming H: subtract row and column means, add the grand mean."""
    return k - k.mean(0, keepdims=True) - k.mean(1, keepdims=True) + k.mean()


def cka(k, l) -> float:
    """Centered kernel alignment of two Gram matrices [n, n] (NaN if either is constant).

    CKA = <HKH, HLH>_F / (||HKH||_F ||HLH||_F), which equals tr(KHLH) / sqrt(tr(KHKH) tr(LHLH))
    for symmetric K, L.
    """
    k, l = _check_gram(k, "k"), _check_gram(l, "l")
    if k.shape != l.shape:
        raise ValueError(f"l: expected the shape of k {k.shape}, got {l.shape}")
    kc, lc = _double_center(k), _double_center(l)
    num = float((kc * lc).sum())
    den = float(np.sqrt((kc * kc).sum() * (lc * lc).sum()))
    return num / den if den > 0 else float("nan")


def _means(mu, name: str) -> np.ndarray:
    mu = np.asarray(mu, dtype=np.float64)
    if mu.ndim == 1:
        mu = mu[:, None]
    if mu.ndim != 2 or mu.shape[0] < 2:
        raise ValueError(f"{name}: expected means shaped [n, d] with n >= 2, got shape {mu.shape}")
    return mu


def linear_cka(mu_a, mu_b) -> float:
    """Linear CKA between two sets of means [n, da], [n, db] (kernel X X^T)."""
    a, b = _means(mu_a, "mu_a"), _means(mu_b, "mu_b")
    if a.shape[0] != b.shape[0]:
        raise ValueError(f"mu_b: expected {a.shape[0]} points (those of mu_a), got {b.shape[0]}")
    return cka(a @ a.T, b @ b.T)


def rbf_kernel(mu, logvar) -> np.ndarray:
    """Gaussian kernel exp(-|mu_i - mu_j|^2 / (2 l^2)) on the means, [n, n]; the length scale l
    is the space's mean posterior standard deviation, mean(exp(logvar / 2))."""
    mu = _means(mu, "mu")
    lv = np.asarray(logvar, dtype=np.float64).reshape(mu.shape)
    scale = float(np.mean(np.exp(0.5 * lv)))
    sq = ((mu[:, None, :] - mu[None, :, :]) ** 2).sum(-1)
    return np.exp(-sq / (2 * scale**2))


def rbf_cka(mu_a, logvar_a, mu_b, logvar_b) -> float:
    """CKA with RBF kernels on the means (each space's own length scale, see `rbf_kernel`)."""
    return cka(rbf_kernel(mu_a, logvar_a), rbf_kernel(mu_b, logvar_b))


def bhattacharyya_cka(bc_a, bc_b) -> float:
    """CKA between two Bhattacharyya-coefficient fingerprints [n, n]."""
    return cka(bc_a, bc_b)


def fingerprint_jsd(bc_a, bc_b) -> float:
    """Jensen-Shannon divergence between two fingerprints, in bits (0 = same, 1 = disjoint).

    Row i of a Bhattacharyya-coefficient fingerprint [n, n], normalised to sum 1, is a distribution
    over the points that point i's posterior overlaps (whom it is confused with); the divergence is
    the mean over points of JSD(p_i^A, p_i^B) = H((p + q) / 2) - (H(p) + H(q)) / 2 (base 2).
    Coordinate-free, like NMI/VI on fingerprints.
    """
    a, b = _check_gram(bc_a, "bc_a"), _check_gram(bc_b, "bc_b")
    if a.shape != b.shape:
        raise ValueError(f"bc_b: expected the shape of bc_a {a.shape}, got {b.shape}")
    p = a / a.sum(1, keepdims=True)
    q = b / b.sum(1, keepdims=True)
    m = 0.5 * (p + q)

    def h(x):
        return -(x * np.log2(np.where(x > 0, x, 1.0))).sum(1)

    return float(np.mean(h(m) - 0.5 * (h(p) + h(q))))


def _gaussian_w2_terms(mu_a, var_a, mu_b, var_b, q) -> float:
    """Mean over points of W2^2(N(mu_a, diag var_a), N(Q mu_b, Q diag var_b Q^T)) for 2-D spaces.

    tr sqrt(M) of a 2 x 2 PSD matrix M is sqrt(tr M + 2 sqrt(det M)); here M = S_a^1/2 S_b' S_a^1/2
    has tr M = tr(S_a S_b') and det M = det S_a det S_b.
    """
    mb = mu_b @ q.T
    sb = np.einsum("ij,nj,kj->nik", q, var_b, q)                                  # [n, 2, 2]
    tr_m = var_a[:, 0] * sb[:, 0, 0] + var_a[:, 1] * sb[:, 1, 1]
    det_m = var_a.prod(1) * var_b.prod(1)
    bures = var_a.sum(1) + var_b.sum(1) - 2 * np.sqrt(np.maximum(tr_m + 2 * np.sqrt(det_m), 0.0))
    return float(np.mean(((mu_a - mb) ** 2).sum(1) + bures))


def _rotation(theta: float, reflect: bool) -> np.ndarray:
    c, s = np.cos(theta), np.sin(theta)
    r = np.array([[c, -s], [s, c]])
    return r @ np.diag([1.0, -1.0]) if reflect else r


def stochastic_shape_distance(mu_a, logvar_a, mu_b, logvar_b, *, n_angles: int = 720) -> float:
    """Stochastic shape metric of Duong et al. (ICLR 2023) with alpha = 1: the 2-Wasserstein
    Procrustes distance between two spaces of Gaussian posteriors on the same n points,

        d(A, B) = min over orthogonal Q of sqrt( (1/n) sum_i W2^2(N(mu_a_i, S_a_i), N(Q mu_b_i, Q S_b_i Q^T)) )

    after centring each space's means (translation invariance; no rescaling). Q ranges over
    rotations and reflections, found by a grid of ``n_angles`` angles per reflection refined by a
    bounded scalar search. For 1-D or 2-D spaces ([n, 1] or [n, 2]; 1-D spaces are padded with a
    zero-variance dimension).
    """
    from scipy.optimize import minimize_scalar

    def prep(mu, lv, name):
        mu = _means(mu, name)
        var = np.exp(np.asarray(lv, dtype=np.float64).reshape(mu.shape))
        if mu.shape[1] > 2:
            raise ValueError(f"{name}: the stochastic shape metric here takes 1-D or 2-D spaces, got {mu.shape[1]}-D")
        if mu.shape[1] == 1:
            mu, var = np.c_[mu, np.zeros(len(mu))], np.c_[var, np.zeros(len(var))]
        return mu - mu.mean(0), var

    ma, va = prep(mu_a, logvar_a, "mu_a")
    mb, vb = prep(mu_b, logvar_b, "mu_b")
    if ma.shape[0] != mb.shape[0]:
        raise ValueError(f"mu_b: expected {ma.shape[0]} points (those of mu_a), got {mb.shape[0]}")
    best = np.inf
    step = 2 * np.pi / n_angles
    for reflect in (False, True):
        f = lambda t: _gaussian_w2_terms(ma, va, mb, vb, _rotation(t, reflect))
        grid = np.arange(n_angles) * step
        vals = [f(t) for t in grid]
        t0 = grid[int(np.argmin(vals))]
        res = minimize_scalar(f, bounds=(t0 - step, t0 + step), method="bounded", options={"xatol": 1e-9})
        best = min(best, float(res.fun), float(np.min(vals)))
    return float(np.sqrt(max(best, 0.0)))


# --------------------------------------------------------------------------- benchmark

#: measure name -> (label, "similarity" or "distance")
MEASURES = {
    "nmi_fingerprint": ("NMI (fingerprint)", "similarity"),
    "nmi_mc": ("NMI (Monte Carlo)", "similarity"),
    "vi_fingerprint": ("VI (fingerprint, bits; x ln 2 = the paper's nats)", "distance"),
    "vi_mc": ("VI (Monte Carlo, bits; x ln 2 = nats)", "distance"),
    "cka_linear": ("linear CKA", "similarity"),
    "cka_bhattacharyya": ("CKA on BC", "similarity"),
    "cka_rbf": ("RBF CKA", "similarity"),
    "jsd_fingerprint": ("JSD (fingerprint rows, bits)", "distance"),
    "shape_stochastic": ("stochastic shape (2-Wasserstein)", "distance"),
}


@dataclass
class MeasureBenchmark:
    """Every measure between every pair of spaces.

    names : [S] space names;  matrices : measure -> [S, S];  errors : measure -> [S, S] standard
    errors (Monte Carlo measures only);  info_fingerprint, info_mc, info_mc_err : [S] bits;
    spearman : [P, P] Spearman rank correlation between measures over the S(S-1)/2 off-diagonal
    pairs (P = len(measures));  measures : [P] names (keys of `MEASURES`).
    """

    names: list
    matrices: dict
    errors: dict
    info_fingerprint: np.ndarray
    info_mc: np.ndarray
    info_mc_err: np.ndarray
    measures: list
    spearman: np.ndarray


def rank_correlations(matrices: dict, measures=None) -> np.ndarray:
    """Spearman correlation between measures' [S, S] matrices over their upper triangles.

    Returns [P, P]; pairs of spaces where either value is NaN are left out.
    """
    from scipy.stats import spearmanr

    measures = list(matrices) if measures is None else list(measures)
    s = next(iter(matrices.values())).shape[0]
    iu = np.triu_indices(s, k=1)
    vals = [np.asarray(matrices[m])[iu] for m in measures]
    out = np.eye(len(measures))
    for i in range(len(measures)):
        for j in range(i + 1, len(measures)):
            ok = np.isfinite(vals[i]) & np.isfinite(vals[j])
            rho = spearmanr(vals[i][ok], vals[j][ok])[0] if ok.sum() >= 3 else np.nan
            out[i, j] = out[j, i] = rho
    return out


def benchmark_measures(spaces=None, *, n_samples: int = 4000, seed: int = 0, device="cpu",
                       progress=None) -> MeasureBenchmark:
    """Compare every pair of synthetic spaces with NMI/VI (fingerprint and Monte Carlo) and CKA.

    Parameters
    ----------
    spaces : list of `SyntheticSpace` on the same points (default `synthetic_spaces()`).
    n_samples : Monte Carlo draws per estimate.  seed : Monte Carlo seed.
    progress : optional callable(done, total, message).

    Notes
    -----
    The fingerprint is the n points themselves; the Monte Carlo estimates treat the n points as
    the whole dataset. 1-D spaces are padded with an uninformative dimension (`pad_dims`).
    """
    from vaefrag import measures

    spaces = synthetic_spaces() if spaces is None else list(spaces)
    mu, lv = pad_dims(spaces)
    s = len(spaces)
    comp = measures.compare_channels(mu, lv, info_threshold=0.0, device=device, dtype="float64")
    bc = measures.bhattacharyya(mu, lv)                                      # [S, n, n]
    mats = {m: np.eye(s) if MEASURES[m][1] == "similarity" else np.zeros((s, s)) for m in MEASURES}
    mats["nmi_fingerprint"], mats["vi_fingerprint"] = comp.nmi.copy(), comp.vi.copy()
    mats["vi_mc"] = np.zeros((s, s))
    errors = {"nmi_mc": np.zeros((s, s)), "vi_mc": np.zeros((s, s))}
    info_mc, info_mc_err = np.zeros(s), np.zeros(s)
    pairs = [(i, j) for i in range(s) for j in range(i, s)]
    for done, (i, j) in enumerate(pairs):
        r = measures.compare_spaces(mu[i], lv[i], mu[j], lv[j], n_samples=n_samples, seed=seed + i * s + j,
                                    device=device)
        for key, val, err in (("nmi_mc", r.nmi, r.nmi_err), ("vi_mc", r.vi, r.vi_err)):
            mats[key][i, j] = mats[key][j, i] = val
            errors[key][i, j] = errors[key][j, i] = err
        if i == j:
            info_mc[i], info_mc_err[i] = r.info_a, r.info_a_err
        mats["cka_linear"][i, j] = mats["cka_linear"][j, i] = linear_cka(spaces[i].mu, spaces[j].mu)
        mats["cka_bhattacharyya"][i, j] = mats["cka_bhattacharyya"][j, i] = bhattacharyya_cka(bc[i], bc[j])
        mats["cka_rbf"][i, j] = mats["cka_rbf"][j, i] = rbf_cka(spaces[i].mu, spaces[i].logvar,
                                                                spaces[j].mu, spaces[j].logvar)
        mats["jsd_fingerprint"][i, j] = mats["jsd_fingerprint"][j, i] = fingerprint_jsd(bc[i], bc[j])
        mats["shape_stochastic"][i, j] = mats["shape_stochastic"][j, i] = stochastic_shape_distance(
            spaces[i].mu, spaces[i].logvar, spaces[j].mu, spaces[j].logvar)
        if progress is not None:
            progress(done + 1, len(pairs), f"{spaces[i].name} x {spaces[j].name}")
    names = list(MEASURES)
    return MeasureBenchmark(names=[sp.name for sp in spaces], matrices=mats, errors=errors,
                            info_fingerprint=comp.info, info_mc=info_mc, info_mc_err=info_mc_err,
                            measures=names, spearman=rank_correlations(mats, names))


# ------------------------------------------------------------------------ fragment ensembles
#: fragments a synthetic channel can carry: weights over the standardized sprites features
#: [shape, scale, cos(orientation), sin(orientation), x, y]; the first five are single factors
_FRAGMENTS = ((0, 0, 0, 0, 1, 0), (0, 0, 0, 0, 0, 1), (0, 1, 0, 0, 0, 0), (1, 0, 0, 0, 0, 0), (0, 0, 1, 0, 0, 0),
              (0, 0, 0, 1, 0, 0), (0, 0, 0, 0, 1, 1), (0, 0, 0, 0, 1, -1), (1, 1, 0, 0, 0, 0), (0, 1, 0, 0, 1, 0))


#: named fragments for ``make_fragment_ensemble(fragments=...)``
FRAGMENT_NAMES = {"shape": (1, 0, 0, 0, 0, 0), "scale": (0, 1, 0, 0, 0, 0), "cos": (0, 0, 1, 0, 0, 0),
                  "sin": (0, 0, 0, 1, 0, 0), "x": (0, 0, 0, 0, 1, 0), "y": (0, 0, 0, 0, 0, 1),
                  "x+y": (0, 0, 0, 0, 1, 1), "x-y": (0, 0, 0, 0, 1, -1), "shape+scale": (1, 1, 0, 0, 0, 0),
                  "scale+x": (0, 1, 0, 0, 1, 0)}


def make_fragment_sweep(path, levels, *, key: str = "beta", values=None, seed: int = 0, **ensemble_kw) -> Path:
    """Write a planted sweep: one fragment ensemble per level, all on the same fingerprint points.

    Parameters
    ----------
    path : sweep directory (members at ``path/KEY-VALUE``).  levels : list of V fragment lists
        (see ``make_fragment_ensemble(fragments=...)``).  values : V increasing numbers (default 1..V).
    ensemble_kw : passed to :func:`make_fragment_ensemble` (models, latents, n_points, ...).
    """
    from vaefrag.sweep import make_sweep, member_dir_name

    path = Path(path)
    values = list(values) if values is not None else [float(i + 1) for i in range(len(levels))]
    dirs = []
    for i, (value, frags) in enumerate(zip(values, levels)):
        d = path / member_dir_name(key, value)
        make_fragment_ensemble(d, seed=seed + 1 + i, fingerprint_seed=seed, fragments=frags, **ensemble_kw)
        dirs.append(d)
    return make_sweep(path, dirs, key, values=values)


def make_fragment_ensemble(path, *, models: int = 6, latents: int = 5, n_points: int = 200, seed: int = 0,
                           resolution: int = 32, empty_fraction: float = 0.2, width: int = 8,
                           hidden: int = 64, weights: bool = True, overwrite: bool = False,
                           fragments=None, fingerprint_seed: int | None = None) -> Path:
    """Write a synthetic ensemble whose channels carry known sprites factors.

    Each model's latents carry distinct fragments of the fingerprint's factors (a random permutation
    per model of the first ``min(latents, 10)`` fragments: x, y, scale, shape, cos orientation, then
    sin orientation, x + y, x - y, shape + scale, scale + x), so every fragment recurs across
    models, with a random sign and posterior noise; with probability ``empty_fraction`` a channel
    carries nothing (prior-like).
    Member weights are untrained networks of the sprites architecture (``weights=False``: none).
    ``fragments`` (a list of weight 6-vectors over [shape, scale, cos orientation, sin orientation,
    x, y], or names of :data:`FRAGMENT_NAMES`) replaces that list: every model then carries each
    given fragment in one latent (random slots; the other latents, and with probability
    ``empty_fraction`` a fragment's latent, carry nothing). ``fingerprint_seed`` (default ``seed``)
    draws the fingerprint points, so ensembles of different ``seed`` can share them.

    Parameters
    ----------
    path : target directory.  models, latents : K and L.  n_points : fingerprint size N.
    resolution : sprites image side (32 or 64).  width, hidden : network size of the members.

    Returns
    -------
    Path of the written ensemble (`store.write_ensemble`).
    """
    from vaefrag.datasets import make_dataset
    from vaefrag.store import write_ensemble
    from vaefrag.training import fingerprint_sample, member_seeds

    rng = np.random.default_rng(seed)
    ds = make_dataset("sprites", resolution=resolution)
    fp_seed = seed if fingerprint_seed is None else int(fingerprint_seed)
    _, x, factors = fingerprint_sample(ds, n_points, fp_seed)
    f = factors.astype(np.float64)
    feats = np.c_[f[:, 0], f[:, 1], np.cos(2 * np.pi * f[:, 2] / 40.0), np.sin(2 * np.pi * f[:, 2] / 40.0),
                  f[:, 3], f[:, 4]]
    feats = (feats - feats.mean(0)) / np.where(feats.std(0) > 0, feats.std(0), 1.0)
    table = _FRAGMENTS
    if fragments is not None:
        table = tuple(FRAGMENT_NAMES[f] if isinstance(f, str) else tuple(f) for f in fragments)
        if not table or len(table) > latents or any(len(w) != 6 or not any(w) for w in table):
            raise ValueError(f"fragments: expected 1..{latents} non-zero weight 6-vectors or names of "
                             f"{sorted(FRAGMENT_NAMES)}, got {fragments!r}")
    n_frag = min(latents, len(table))
    mu = np.zeros((models, n_points, latents), dtype=np.float32)
    logvar = np.zeros_like(mu)
    for k in range(models):
        frag = rng.permutation(n_frag)
        if fragments is not None:                       # every fragment once, in random latent slots
            frag = np.full(latents, -1)
            frag[rng.permutation(latents)[:n_frag]] = rng.permutation(n_frag)
        for j in range(latents):
            if rng.random() < empty_fraction or j >= len(frag) or frag[j] < 0:
                mu[k, :, j] = rng.normal(0, 0.02, n_points)
                logvar[k, :, j] = rng.normal(0, 0.02, n_points)
                continue
            w = np.asarray(table[frag[j]], dtype=np.float64)
            sigma = rng.uniform(0.08, 0.3)
            mu[k, :, j] = rng.choice([-1, 1]) * feats @ (w / np.linalg.norm(w)) + rng.normal(0, 0.05, n_points)
            logvar[k, :, j] = 2 * np.log(sigma) + rng.normal(0, 0.05, n_points)
    manifest = {"name": Path(path).name, "source": {"kind": "synthetic fragments", "seed": seed},
                "dataset": {"name": "sprites", "params": ds.params(), "shape": list(ds.shape),
                            "factor_names": list(ds.factor_names)},
                "fingerprint": {"size": n_points, "seed": fp_seed},
                "members": [{"id": k, "seed": s} for k, s in enumerate(member_seeds(seed, models))]}
    state = None
    if weights:
        import torch

        from vaefrag.models import EnsembleVAE, make_spec

        spec = make_spec(ds.shape, latents, width=width, hidden=hidden, likelihood=ds.likelihood)
        manifest["model"] = {"family": "untrained", "spec": spec}
        torch.manual_seed(seed)
        net = EnsembleVAE(spec, models)
        net.init_members(member_seeds(seed, models))
        state = [net.member_state(k) for k in range(models)]
    return write_ensemble(path, manifest, mu, logvar, x=x, factors=factors, factor_names=list(ds.factor_names),
                          weights=state, overwrite=overwrite)


__all__ = ["N_POINTS", "SPACE_NAMES", "SyntheticSpace", "synthetic_spaces", "pad_dims", "cka", "linear_cka",
           "rbf_kernel", "rbf_cka", "bhattacharyya_cka", "fingerprint_jsd", "stochastic_shape_distance", "MEASURES", "MeasureBenchmark", "rank_correlations",
           "benchmark_measures", "make_fragment_ensemble", "make_fragment_sweep", "FRAGMENT_NAMES"]
