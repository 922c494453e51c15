"""Synthetic spaces and CKA: values against the plain definition HSIC = tr(K H L H)."""
import numpy as np
import pytest

from vaefrag import measures, synthetic


def _cka_definition(k, l):
    """CKA straight from its definition, with the centering matrix H = I - 11^T / n."""
    n = k.shape[0]
    h = np.eye(n) - np.ones((n, n)) / n
    hsic = lambda a, b: np.trace(a @ h @ b @ h)
    return hsic(k, l) / np.sqrt(hsic(k, k) * hsic(l, l))


def test_nine_spaces_shapes_and_hard_cluster_information():
    spaces = synthetic.synthetic_spaces()
    assert [s.name for s in spaces] == list(synthetic.SPACE_NAMES)
    for s in spaces:
        assert s.mu.shape == s.logvar.shape == (64, s.dims) and s.dims in (1, 2)
    assert sum(s.dims == 1 for s in spaces) == 1
    by_name = {s.name: s for s in spaces}
    # well separated clusters: information is the label entropy (1 and 2 bits)
    for name, bits in (("two_clusters", 1.0), ("four_clusters", 2.0)):
        s = by_name[name]
        info = measures.info_from_bc_torch(
            measures.bhattacharyya_torch(*(__import__("torch").as_tensor(a) for a in (s.mu, s.logvar))))
        assert float(info) == pytest.approx(bits, abs=0.02)
    with pytest.raises(ValueError, match="n"):
        synthetic.synthetic_spaces(10)


def test_pad_dims_keeps_fingerprint():
    spaces = synthetic.synthetic_spaces()
    mu, lv = synthetic.pad_dims(spaces)
    line = [s for s in spaces if s.dims == 1][0]
    i = synthetic.SPACE_NAMES.index(line.name)
    np.testing.assert_allclose(measures.bhattacharyya(mu[i], lv[i]), measures.bhattacharyya(line.mu, line.logvar),
                               atol=1e-12)
    with pytest.raises(ValueError, match="spaces"):
        synthetic.pad_dims([])


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_cka_matches_definition(seed):
    rng = np.random.default_rng(seed)
    a, b = rng.normal(size=(20, 3)), rng.normal(size=(20, 2))
    lva, lvb = rng.normal(size=(20, 3)), rng.normal(size=(20, 2))
    assert synthetic.linear_cka(a, b) == pytest.approx(_cka_definition(a @ a.T, b @ b.T), rel=1e-10)
    ka = np.exp(-((a[:, None] - a[None]) ** 2).sum(-1) / (2 * np.mean(np.exp(lva / 2)) ** 2))
    kb = np.exp(-((b[:, None] - b[None]) ** 2).sum(-1) / (2 * np.mean(np.exp(lvb / 2)) ** 2))
    assert synthetic.rbf_cka(a, lva, b, lvb) == pytest.approx(_cka_definition(ka, kb), rel=1e-10)
    bca, bcb = measures.bhattacharyya(a, lva), measures.bhattacharyya(b, lvb)
    assert synthetic.bhattacharyya_cka(bca, bcb) == pytest.approx(_cka_definition(bca, bcb), rel=1e-10)


def test_linear_cka_closed_form_and_invariances():
    rng = np.random.default_rng(3)
    x, y = rng.normal(size=(30, 4)), rng.normal(size=(30, 3))
    xc, yc = x - x.mean(0), y - y.mean(0)
    # Kornblith et al. (2019) eq. for linear CKA on centred features
    closed = np.linalg.norm(yc.T @ xc) ** 2 / (np.linalg.norm(xc.T @ xc) * np.linalg.norm(yc.T @ yc))
    assert synthetic.linear_cka(x, y) == pytest.approx(closed, rel=1e-10)
    q, _ = np.linalg.qr(rng.normal(size=(4, 4)))
    assert synthetic.linear_cka(x, 3.0 * x @ q + 1.0) == pytest.approx(1.0, abs=1e-12)
    with pytest.raises(ValueError, match="mu_b"):
        synthetic.linear_cka(x, y[:10])
    with pytest.raises(ValueError, match="k"):
        synthetic.cka(np.ones((3, 4)), np.ones((3, 4)))


def test_rank_correlations_against_scipy():
    from scipy.stats import spearmanr

    rng = np.random.default_rng(4)
    m = {k: (lambda a: a + a.T)(rng.normal(size=(6, 6))) for k in ("a", "b", "c")}
    rho = synthetic.rank_correlations(m)
    iu = np.triu_indices(6, 1)
    assert rho[0, 2] == pytest.approx(spearmanr(m["a"][iu], m["c"][iu])[0])
    assert np.allclose(np.diag(rho), 1) and np.allclose(rho, rho.T)


def test_benchmark_small():
    spaces = [s for s in synthetic.synthetic_spaces() if s.name in ("line", "two_clusters", "four_clusters")]
    calls = []
    b = synthetic.benchmark_measures(spaces, n_samples=500, progress=lambda d, n, m="": calls.append(d))
    assert calls[-1] == 6 and b.names == ["line", "two_clusters", "four_clusters"]
    for key, mat in b.matrices.items():
        assert mat.shape == (3, 3) and np.allclose(mat, mat.T), key
    # two vs four clusters: the two-cluster split is contained in the four-cluster one:
    # I(U;V) = 1 bit, NMI = 1 / sqrt(1 * 2), VI = 1 bit (classic clustering limit)
    assert b.matrices["nmi_fingerprint"][1, 2] == pytest.approx(1 / np.sqrt(2), abs=0.01)
    assert b.matrices["vi_fingerprint"][1, 2] == pytest.approx(1.0, abs=0.02)
    assert b.matrices["nmi_mc"][1, 2] == pytest.approx(1 / np.sqrt(2), abs=0.02)
    assert b.spearman.shape == (len(synthetic.MEASURES),) * 2


def test_benchmark_measures_cli(tmp_path):
    import csv

    from vaefrag.cli import main

    assert main(["benchmark-measures", "--out", str(tmp_path), "--samples", "200"]) == 0
    rows = list(csv.DictReader(open(tmp_path / "measures.csv")))
    assert len(rows) == 81 and (tmp_path / "benchmark.png").stat().st_size > 10_000
    spaces = synthetic.synthetic_spaces()
    i, j = synthetic.SPACE_NAMES.index("spiral"), synthetic.SPACE_NAMES.index("line")
    row = next(r for r in rows if r["space_a"] == "spiral" and r["space_b"] == "line")
    assert float(row["cka_linear"]) == pytest.approx(_cka_definition(spaces[i].mu @ spaces[i].mu.T,
                                                                     spaces[j].mu @ spaces[j].mu.T), rel=1e-5)
    rho = list(csv.reader(open(tmp_path / "rank_correlations.csv")))
    assert rho[0][1:] == list(synthetic.MEASURES) and float(rho[1][1]) == 1.0
    assert main(["benchmark-measures", "--out", str(tmp_path), "--samples", "1"]) == 2


def test_fingerprint_jsd_equals_the_definition_row_by_row():
    from scipy.spatial.distance import jensenshannon

    spaces = {s.name: s for s in synthetic.synthetic_spaces()}
    bc = {k: measures.bhattacharyya(s.mu, s.logvar) for k, s in spaces.items()}
    for a, b in (("spiral", "line"), ("two_clusters", "four_clusters"), ("square", "square_wide")):
        p = bc[a] / bc[a].sum(1, keepdims=True)
        q = bc[b] / bc[b].sum(1, keepdims=True)
        ref = np.mean([jensenshannon(p[i], q[i], base=2) ** 2 for i in range(len(p))])
        assert synthetic.fingerprint_jsd(bc[a], bc[b]) == pytest.approx(ref, rel=1e-9, abs=1e-12)
    assert synthetic.fingerprint_jsd(bc["line"], bc["line"]) == pytest.approx(0.0, abs=1e-12)
    # disjoint rows: point i overlaps only itself in A, only another point in B -> 1 bit
    eye, perm = np.eye(4), np.eye(4)[[1, 0, 3, 2]]
    assert synthetic.fingerprint_jsd(eye + 1e-300, perm + 1e-300) == pytest.approx(1.0, abs=1e-9)


def _w2_definition(mu_a, var_a, mu_b, var_b, q):
    """Mean W2^2 between Gaussians with full covariance algebra (scipy sqrtm), point by point."""
    from scipy.linalg import sqrtm

    total = 0.0
    for i in range(len(mu_a)):
        sa, sb = np.diag(var_a[i]), q @ np.diag(var_b[i]) @ q.T
        ra = sqrtm(sa)
        bures = np.trace(sa + sb - 2 * np.real(sqrtm(ra @ sb @ ra)))
        total += np.sum((mu_a[i] - q @ mu_b[i]) ** 2) + bures
    return total / len(mu_a)


def test_stochastic_shape_distance_equals_a_direct_minimisation_of_its_definition():
    spaces = {s.name: s for s in synthetic.synthetic_spaces()}
    a, b = spaces["spiral_growing"], spaces["square"]
    ma, mb = a.mu - a.mu.mean(0), b.mu - b.mu.mean(0)
    va, vb = np.exp(a.logvar), np.exp(b.logvar)
    best = np.inf
    for reflect in (1.0, -1.0):
        for t in np.linspace(0, 2 * np.pi, 241):
            q = np.array([[np.cos(t), -np.sin(t)], [np.sin(t), np.cos(t)]]) @ np.diag([1.0, reflect])
            best = min(best, _w2_definition(ma, va, mb, vb, q))
    got = synthetic.stochastic_shape_distance(a.mu, a.logvar, b.mu, b.logvar)
    assert got <= np.sqrt(best) + 1e-9 and got == pytest.approx(np.sqrt(best), rel=2e-3)
    # invariance: a rotated, reflected and shifted copy is at distance 0; a space from itself too
    q = np.array([[0.6, 0.8], [0.8, -0.6]])                     # a reflection
    rng = np.random.default_rng(0)
    lv = np.log(rng.uniform(0.1, 1.0, (64, 2)))
    mu = rng.normal(size=(64, 2))
    iso = np.log(np.full((64, 2), 0.3))                          # isotropic: Q S Q^T stays diagonal
    assert synthetic.stochastic_shape_distance(mu, iso, mu @ q.T + 5.0, iso) == pytest.approx(0.0, abs=1e-4)
    assert synthetic.stochastic_shape_distance(mu, lv, mu, lv) == pytest.approx(0.0, abs=1e-6)
    # means equal, variances differ by a constant: W2 = Bures term = sum_d (sqrt(v1) - sqrt(v2))^2
    d = synthetic.stochastic_shape_distance(mu, np.log(np.full((64, 2), 0.25)), mu, np.log(np.full((64, 2), 1.0)))
    assert d == pytest.approx(np.sqrt(2 * (0.5 - 1.0) ** 2), rel=1e-6)
    with pytest.raises(ValueError, match="1-D or 2-D"):
        synthetic.stochastic_shape_distance(np.zeros((5, 3)), np.zeros((5, 3)), np.zeros((5, 3)), np.zeros((5, 3)))
