"""Model-level scores set beside the fragment view: MIG, SAP and a UDR-style unsupervised ranking.

Numpy in, numpy out. Information in bits where it is information; the scores are dimensionless.

- MIG (Chen et al. 2018, as in disentanglement_lib): latent means discretised into equal-width
  bins; per factor, the gap between the two latents with the highest mutual information with
  it, divided by the factor's entropy; averaged over factors.
- SAP (Kumar et al. 2018, "Variational inference of disentangled latent concepts from unlabeled
  observations", the published definition; `sap`, `sap_matrix`): per (latent, factor), R^2 of a
  linear fit of the factor on that one latent (squared correlation) for continuous factors, and
  for discrete ones the balanced classification accuracy of the best threshold on that latent
  (a multi-class factor: the mean over its classes of the one-vs-rest best-threshold balanced
  accuracy); per factor, the difference between the two best latents; averaged over factors.
  A factor is discrete when it has at most ``max_discrete`` (4) distinct values (sprites: shape).
- SAP, tree variant (`sap_tree`, `sap_tree_matrix`): test accuracy of a one-dimensional decision
  tree per (latent, factor) for discrete factors (a linear SVM on one input cannot carve out the
  middle values of an ordered factor), optionally rescaled so that the majority-class rate maps to
  0 and perfect prediction to 1 (``chance_correct``); same gap and average.
- UDR (Duan et al. 2020, "Unsupervised model selection for variational disentangled
  representation learning"): two runs that learned the same factorisation have a one-to-one
  matching between their informative channels. The similarity matrix is the channel NMI of
  `measures.compare_channels` (instead of Spearman correlation); a model's score is the median of
  its pairwise scores with every other model.
"""
from __future__ import annotations

import numpy as np

__all__ = ["discretize", "mutual_info_matrix", "mig", "sap_matrix", "sap", "sap_tree_matrix", "sap_tree",
           "threshold_balanced_accuracy", "udr_pairwise", "udr", "model_scores"]


def _check_latents_factors(latents, factors, name="latents"):
    z = np.asarray(latents, dtype=np.float64)
    if z.ndim != 2:
        raise ValueError(f"{name}: expected latent means shaped [N, L], got shape {z.shape}")
    if factors is None:
        raise ValueError("factors: this score needs ground-truth factors [N, F]; the ensemble has none")
    f = np.asarray(factors)
    if f.ndim == 1:
        f = f[:, None]
    if f.ndim != 2 or f.shape[0] != z.shape[0]:
        raise ValueError(f"factors: expected shape [{z.shape[0]}, F] (one row per point), got {f.shape}")
    if not np.all(np.isfinite(z)):
        raise ValueError(f"{name}: expected finite values")
    return z, f


def discretize(latents, n_bins: int = 20) -> np.ndarray:
    """Equal-width histogram bins of each latent column. [N, L] float -> [N, L] int in [0, n_bins)."""
    z = np.asarray(latents, dtype=np.float64)
    if n_bins < 2:
        raise ValueError(f"n_bins: expected >= 2, got {n_bins}")
    out = np.zeros(z.shape, dtype=np.int64)
    for j in range(z.shape[1]):
        edges = np.histogram_bin_edges(z[:, j], bins=n_bins)
        out[:, j] = np.clip(np.digitize(z[:, j], edges[1:-1]), 0, n_bins - 1)
    return out


def _entropy_bits(labels) -> float:
    _, counts = np.unique(labels, return_counts=True)
    p = counts / counts.sum()
    return float(-(p * np.log2(p)).sum())


def _mi_bits(a, b) -> float:
    """Plug-in mutual information of two label vectors (bits)."""
    _, ia = np.unique(a, return_inverse=True)
    _, ib = np.unique(b, return_inverse=True)
    joint = np.zeros((ia.max() + 1, ib.max() + 1))
    np.add.at(joint, (ia, ib), 1.0)
    joint /= joint.sum()
    pa, pb = joint.sum(1, keepdims=True), joint.sum(0, keepdims=True)
    nz = joint > 0
    return float((joint[nz] * np.log2(joint[nz] / (pa @ pb)[nz])).sum())


def mutual_info_matrix(latents, factors, n_bins: int = 20) -> np.ndarray:
    """[L, F] plug-in mutual information (bits) between discretised latents and factors."""
    z, f = _check_latents_factors(latents, factors)
    zd = discretize(z, n_bins)
    return np.array([[_mi_bits(zd[:, i], f[:, j]) for j in range(f.shape[1])] for i in range(z.shape[1])])


def mig(latents, factors, n_bins: int = 20) -> float:
    """Mutual information gap.

    Parameters
    ----------
    latents : [N, L] latent means.  factors : [N, F] discrete factor labels.
    n_bins : equal-width bins per latent (disentanglement_lib's default 20).

    Returns
    -------
    float in [0, 1]: mean over factors of (I_1 - I_2) / H(factor), I_1 >= I_2 the two largest
    informations of a latent about the factor. Constant factors (H = 0) are skipped.
    Needs at least two latents.
    """
    z, f = _check_latents_factors(latents, factors)
    if z.shape[1] < 2:
        raise ValueError(f"latents: MIG needs at least 2 latents, got {z.shape[1]}")
    mi = mutual_info_matrix(z, f, n_bins)
    gaps = []
    for j in range(f.shape[1]):
        h = _entropy_bits(f[:, j])
        if h <= 0:
            continue
        top = np.sort(mi[:, j])[::-1]
        gaps.append((top[0] - top[1]) / h)
    if not gaps:
        raise ValueError("factors: every factor is constant; MIG is undefined")
    return float(np.mean(gaps))


def threshold_balanced_accuracy(z, y) -> float:
    """Best balanced accuracy of a threshold on one latent for a binary target.

    z [N] float, y [N] bool: max over cuts between distinct sorted values of z and both
    orientations of (TPR + TNR) / 2; 0.5 when y is constant or z cannot separate anything.
    """
    z = np.asarray(z, dtype=np.float64)
    y = np.asarray(y, dtype=bool)
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if n_pos == 0 or n_neg == 0:
        return 0.5
    order = np.argsort(z, kind="stable")
    zs, ys = z[order], y[order]
    pos_below = np.cumsum(ys)[:-1]                     # positives at or below each cut
    neg_below = np.cumsum(~ys)[:-1]
    cut = zs[1:] > zs[:-1]                              # only between distinct values
    if not cut.any():
        return 0.5
    # predict "positive" above the cut: TPR = positives above / n_pos, TNR = negatives below / n_neg
    bal = 0.5 * ((n_pos - pos_below[cut]) / n_pos + neg_below[cut] / n_neg)
    return float(max(bal.max(), (1 - bal).max()))


def sap_matrix(latents, factors, *, max_discrete: int = 4, discrete=None) -> np.ndarray:
    """[L, F] the published SAP score matrix (Kumar et al. 2018; module docstring).

    discrete : None (factors with at most ``max_discrete`` distinct values are discrete) or a
    sequence of F bools.
    """
    z, f = _check_latents_factors(latents, factors)
    l_, n_f = z.shape[1], f.shape[1]
    if discrete is None:
        discrete = [len(np.unique(f[:, j])) <= max_discrete for j in range(n_f)]
    discrete = list(discrete)
    if len(discrete) != n_f:
        raise ValueError(f"discrete: expected {n_f} flags (one per factor), got {len(discrete)}")
    out = np.zeros((l_, n_f))
    for j in range(n_f):
        y = f[:, j]
        if discrete[j]:
            classes = np.unique(y)
            for i in range(l_):
                if len(classes) < 2:
                    out[i, j] = 0.5
                elif len(classes) == 2:
                    out[i, j] = threshold_balanced_accuracy(z[:, i], y == classes[1])
                else:
                    out[i, j] = np.mean([threshold_balanced_accuracy(z[:, i], y == c) for c in classes])
            continue
        y = y.astype(np.float64)
        for i in range(l_):
            cov = np.cov(z[:, i], y, ddof=1)
            out[i, j] = 0.0 if cov[0, 0] <= 0 or cov[1, 1] <= 0 else cov[0, 1] ** 2 / (cov[0, 0] * cov[1, 1])
    return out


def sap(latents, factors, *, max_discrete: int = 4, discrete=None) -> float:
    """The published SAP: mean over factors of the difference between the two best latents'
    scores (`sap_matrix`). latents [N, L] (L >= 2), factors [N, F]."""
    m = sap_matrix(latents, factors, max_discrete=max_discrete, discrete=discrete)
    if m.shape[0] < 2:
        raise ValueError(f"latents: SAP needs at least 2 latents, got {m.shape[0]}")
    top = np.sort(m, axis=0)[::-1]
    return float(np.mean(top[0] - top[1]))


def sap_tree_matrix(latents, factors, *, discrete: bool = True, chance_correct: bool = True,
                    test_size: float = 0.5, random_state: int = 0) -> np.ndarray:
    """[L, F] the tree variant of SAP's score matrix (see module docstring)."""
    z, f = _check_latents_factors(latents, factors)
    if not 0 < test_size < 1:
        raise ValueError(f"test_size: expected a number in (0, 1), got {test_size}")
    n, l_ = z.shape
    out = np.zeros((l_, f.shape[1]))
    if not discrete:
        for j in range(f.shape[1]):
            y = f[:, j].astype(np.float64)
            for i in range(l_):
                cov = np.cov(z[:, i], y, ddof=1)
                out[i, j] = 0.0 if cov[0, 0] <= 0 or cov[1, 1] <= 0 else cov[0, 1] ** 2 / (cov[0, 0] * cov[1, 1])
        return out
    from sklearn.tree import DecisionTreeClassifier

    rng = np.random.default_rng(random_state)
    perm = rng.permutation(n)
    n_test = max(1, int(round(test_size * n)))
    test, train = perm[:n_test], perm[n_test:]
    if train.size < 2:
        raise ValueError(f"latents: expected enough points for a train/test split, got {n}")
    for j in range(f.shape[1]):
        y = f[:, j]
        classes, counts = np.unique(y[train], return_counts=True)
        base = float(np.mean(y[test] == classes[np.argmax(counts)]))
        leaf = max(1, train.size // (20 * len(classes)))
        for i in range(l_):
            clf = DecisionTreeClassifier(min_samples_leaf=leaf, random_state=random_state)
            clf.fit(z[train, i:i + 1], y[train])
            acc = float(np.mean(clf.predict(z[test, i:i + 1]) == y[test]))
            out[i, j] = (acc - base) / (1.0 - base) if chance_correct and base < 1 else acc
    return np.clip(out, 0.0, 1.0) if chance_correct else out


def sap_tree(latents, factors, *, discrete: bool = True, chance_correct: bool = True, test_size: float = 0.5,
             random_state: int = 0) -> float:
    """SAP, tree variant: mean over factors of the gap between the best two latents' prediction
    scores (`sap_tree_matrix`). latents [N, L] (L >= 2), factors [N, F]."""
    m = sap_tree_matrix(latents, factors, discrete=discrete, chance_correct=chance_correct, test_size=test_size,
                   random_state=random_state)
    if m.shape[0] < 2:
        raise ValueError(f"latents: SAP needs at least 2 latents, got {m.shape[0]}")
    top = np.sort(m, axis=0)[::-1]
    return float(np.mean(top[0] - top[1]))


# --------------------------------------------------------------------------- UDR


def _udr_pair(r: np.ndarray) -> float:
    """Duan et al. eq. 2 for one similarity matrix between informative channels [La, Lb]."""
    la, lb = r.shape
    if la + lb == 0:
        return float("nan")
    total = 0.0
    if la and lb:
        col, row = r.sum(0), r.sum(1)
        with np.errstate(invalid="ignore", divide="ignore"):
            tb = np.where(col > 0, r.max(0) ** 2 / col, 0.0)
            ta = np.where(row > 0, r.max(1) ** 2 / row, 0.0)
        total = float(tb.sum() + ta.sum())
    return total / (la + lb)


def udr_pairwise(nmi, channel_ids, informative=None) -> np.ndarray:
    """[K, K] UDR between every pair of models (diagonal NaN).

    Parameters
    ----------
    nmi : [M, M] channel NMI (NaN where undefined is read as 0).
    channel_ids : [M, 2] (model, latent) of each channel.
    informative : [M] bool, channels that carry information (the indicator of Duan et al.);
        None -> channels whose NMI diagonal is finite.
    """
    s = np.asarray(nmi, dtype=np.float64)
    ids = np.asarray(channel_ids)
    if s.ndim != 2 or s.shape[0] != s.shape[1]:
        raise ValueError(f"nmi: expected a square [M, M] matrix, got shape {s.shape}")
    m = s.shape[0]
    if ids.shape != (m, 2):
        raise ValueError(f"channel_ids: expected shape ({m}, 2), got {ids.shape}")
    ok = np.isfinite(np.diag(s)) if informative is None else np.asarray(informative, dtype=bool)
    if ok.shape != (m,):
        raise ValueError(f"informative: expected shape ({m},), got {ok.shape}")
    s = np.clip(np.nan_to_num(np.abs(s), nan=0.0), 0.0, 1.0)
    models = np.unique(ids[:, 0])
    k = models.size
    out = np.full((k, k), np.nan)
    rows = [np.flatnonzero((ids[:, 0] == mdl) & ok) for mdl in models]
    for a in range(k):
        for b in range(a + 1, k):
            out[a, b] = out[b, a] = _udr_pair(s[np.ix_(rows[a], rows[b])])
    return out


def udr(nmi, channel_ids, informative=None) -> np.ndarray:
    """[K] UDR-style score per model: median of its pairwise UDR with the other models, in [0, 1]."""
    pw = udr_pairwise(nmi, channel_ids, informative)
    if pw.shape[0] < 2:
        return np.full(pw.shape[0], np.nan)
    with np.errstate(all="ignore"):
        return np.array([np.nanmedian(np.delete(pw[a], a)) if np.isfinite(np.delete(pw[a], a)).any()
                         else np.nan for a in range(pw.shape[0])])


def model_scores(mu, factors=None, *, n_bins: int = 20, random_state: int = 0) -> dict[str, np.ndarray]:
    """MIG and the published SAP of every model. mu: [K, N, L] posterior means; factors [N, F] ->
    {"mig": [K], "sap": [K]} (``random_state`` is kept for the API; the published SAP is deterministic)."""
    mu = np.asarray(mu)
    if mu.ndim != 3:
        raise ValueError(f"mu: expected posterior means shaped [K, N, L], got {mu.shape}")
    if factors is None:
        raise ValueError("factors: MIG and SAP need ground-truth factors; the ensemble has none")
    return {"mig": np.array([mig(m, factors, n_bins) for m in mu]),
            "sap": np.array([sap(m, factors) for m in mu])}
