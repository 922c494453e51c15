"""metrics.py: MIG / SAP limits (perfect code vs rotation) and against independent formulas; UDR closed forms."""
import numpy as np
import pytest
from sklearn.metrics import mutual_info_score

from vaefrag import metrics


def factor_copy(n=2000, n_values=(6, 8, 10), noise=0.05, seed=0):
    """Factors [N, F] uniform labels and a representation copying factor j into latent j."""
    rng = np.random.default_rng(seed)
    f = np.stack([rng.integers(0, v, n) for v in n_values], 1)
    z = (f - f.mean(0)) / f.std(0) + rng.normal(0, noise, f.shape)
    return z, f


def random_rotation(d, seed=0):
    q, r = np.linalg.qr(np.random.default_rng(seed).normal(size=(d, d)))
    return q * np.sign(np.diag(r))


def test_mi_matrix_matches_sklearn_on_disentanglement_lib_bins():
    z, f = factor_copy(n=500)
    # disentanglement_lib's discretisation, written out: np.histogram edges, np.digitize on edges[:-1]
    ref_bins = np.stack([np.digitize(z[:, i], np.histogram(z[:, i], 20)[1][:-1]) for i in range(3)], 1)
    got = metrics.discretize(z, 20)
    assert np.array_equal(got, ref_bins - 1)
    mi = metrics.mutual_info_matrix(z, f, 20)
    ref = np.array([[mutual_info_score(ref_bins[:, i], f[:, j]) for j in range(3)] for i in range(3)]) / np.log(2)
    np.testing.assert_allclose(mi, ref, atol=1e-10)


@pytest.mark.parametrize("seed", [0, 1])
def test_mig_perfect_code_near_one_rotation_lower(seed):
    z, f = factor_copy(seed=seed)
    perfect = metrics.mig(z, f)
    rotated = metrics.mig(z @ random_rotation(3, seed), f)
    assert perfect > 0.9
    assert rotated < perfect - 0.3


def test_mig_closed_form_two_latents():
    """Latent 0 copies a binary factor, latent 1 is constant -> gap = H(f) / H(f) = 1 exactly."""
    f = np.array([0, 1] * 50)[:, None]
    z = np.stack([f[:, 0].astype(float), np.zeros(100)], 1)
    assert metrics.mig(z, f) == pytest.approx(1.0)
    # a duplicated code has no gap at all
    assert metrics.mig(np.stack([f[:, 0], f[:, 0]], 1).astype(float), f) == pytest.approx(0.0)


@pytest.mark.parametrize("seed", [0, 1])
def test_sap_tree_perfect_code_near_one_rotation_lower(seed):
    z, f = factor_copy(seed=seed)
    perfect = metrics.sap_tree(z, f)
    rotated = metrics.sap_tree(z @ random_rotation(3, seed), f)
    assert perfect > 0.9
    assert rotated < perfect - 0.3
    # uncorrected accuracies: a perfect code scores 1 - chance of the runner-up latent
    raw = metrics.sap_tree_matrix(z, f, chance_correct=False)
    assert np.all(np.diag(raw) > 0.97)


def test_sap_continuous_is_squared_correlation():
    rng = np.random.default_rng(0)
    z = rng.normal(size=(300, 3))
    f = np.stack([z[:, 0] + 0.5 * rng.normal(size=300), z[:, 2]], 1)
    m = metrics.sap_tree_matrix(z, f, discrete=False)
    ref = np.array([[np.corrcoef(z[:, i], f[:, j])[0, 1] ** 2 for j in range(2)] for i in range(3)])
    np.testing.assert_allclose(m, ref, atol=1e-12)
    top = np.sort(ref, 0)[::-1]
    assert metrics.sap_tree(z, f, discrete=False) == pytest.approx(np.mean(top[0] - top[1]))
    # the published SAP treats these real-valued factors as continuous: the same R^2 matrix
    np.testing.assert_allclose(metrics.sap_matrix(z, f), ref, atol=1e-12)
    assert metrics.sap(z, f) == pytest.approx(np.mean(top[0] - top[1]))


def test_scores_need_factors():
    z, _ = factor_copy(n=50)
    with pytest.raises(ValueError, match="factors"):
        metrics.mig(z, None)
    with pytest.raises(ValueError, match="factors"):
        metrics.model_scores(z[None], None)
    with pytest.raises(ValueError, match="factors"):
        metrics.sap(z, np.zeros((10, 2), int))


def test_model_scores_shapes():
    z, f = factor_copy(n=400)
    out = metrics.model_scores(np.stack([z, z @ random_rotation(3)]), f)
    assert out["mig"].shape == (2,) and out["sap"].shape == (2,)
    assert out["mig"][0] > out["mig"][1] and out["sap"][0] > out["sap"][1]


def test_udr_closed_forms():
    ids = np.array([[m, l] for m in range(3) for l in range(4)])
    # models 0 and 1 learned the same channels in permuted slots; model 2 matches everything a bit (r = 0.3)
    nmi = np.eye(12)
    perm = [2, 0, 3, 1]
    for a, b in enumerate(perm):
        nmi[a, 4 + b] = nmi[4 + b, a] = 1.0
    nmi[8:, :8] = nmi[:8, 8:].T[:, :] * 0 + 0.3
    nmi[:8, 8:] = 0.3
    pw = metrics.udr_pairwise(nmi, ids)
    assert pw[0, 1] == pytest.approx(1.0)           # one-to-one matching: UDR = 1
    assert pw[0, 2] == pytest.approx(0.3 / 4)      # uniform r: UDR = r / L
    assert np.isnan(pw[0, 0])
    np.testing.assert_allclose(metrics.udr(nmi, ids), [np.median([1, 0.075])] * 2 + [0.075])


def test_udr_ignores_uninformative_channels():
    ids = np.array([[m, l] for m in range(2) for l in range(3)])
    nmi = np.eye(6)
    nmi[0, 3] = nmi[3, 0] = nmi[1, 4] = nmi[4, 1] = 1.0
    nmi[2, :] = nmi[:, 2] = np.nan                 # dead channels (NMI undefined)
    nmi[5, :] = nmi[:, 5] = np.nan
    assert metrics.udr_pairwise(nmi, ids)[0, 1] == pytest.approx(1.0)
    # with the dead channels counted as informative but unmatched, the score drops to 4/6
    assert metrics.udr_pairwise(nmi, ids, informative=np.ones(6, bool))[0, 1] == pytest.approx(4 / 6)


def _best_threshold_by_brute_force(z, y):
    """Balanced accuracy of every threshold t (predict y where z > t, or where z <= t), the best."""
    best = 0.5
    for t in np.unique(z):
        pred = z > t
        tpr, tnr = np.mean(pred[y]), np.mean(~pred[~y])
        best = max(best, 0.5 * (tpr + tnr), 1 - 0.5 * (tpr + tnr))
    return best


def test_published_sap_threshold_accuracy_against_brute_force_and_sklearn():
    from sklearn.metrics import balanced_accuracy_score

    rng = np.random.default_rng(3)
    z = np.round(rng.normal(size=300), 1)                      # ties included
    y = (z + rng.normal(0, 0.7, 300)) > 0.3
    got = metrics.threshold_balanced_accuracy(z, y)
    assert got == pytest.approx(_best_threshold_by_brute_force(z, y), abs=1e-12)
    t = np.unique(z)[np.argmax([balanced_accuracy_score(y, z > t) for t in np.unique(z)])]
    assert got == pytest.approx(max(balanced_accuracy_score(y, z > t), 0.5), abs=1e-12)
    assert metrics.threshold_balanced_accuracy(z, np.ones(300, bool)) == 0.5


def test_published_sap_closed_forms():
    # a binary factor copied into latent 0, latent 1 noise-free constant: gap = 1 - 0.5
    f = np.array([0, 1] * 50)[:, None]
    z = np.stack([f[:, 0].astype(float), np.zeros(100)], 1)
    np.testing.assert_allclose(metrics.sap_matrix(z, f), [[1.0], [0.5]])
    assert metrics.sap(z, f) == pytest.approx(0.5)
    # three classes on an ordered latent: one-vs-rest thresholds separate the end classes (1.0) but
    # not the middle one (best: 0.75), so the latent scores (1 + 0.75 + 1) / 3
    f3 = np.repeat([0, 1, 2], 40)[:, None]
    z3 = np.stack([f3[:, 0].astype(float), np.zeros(120)], 1)
    assert metrics.sap_matrix(z3, f3)[0, 0] == pytest.approx((1 + 0.75 + 1) / 3)
    # ground truth mixing: the published SAP of a perfect copy beats a rotation
    zc, fc = factor_copy(n=600)
    assert metrics.sap(zc, fc) > 0.95 and metrics.sap(zc @ random_rotation(3, 1), fc) < metrics.sap(zc, fc) - 0.2
