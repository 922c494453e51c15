"""Full latent spaces: Monte Carlo against the fingerprint in the clustering limit, errors, cache."""
import numpy as np
import pytest

from vaefrag import measures, spaces


def _cluster_spaces(seed=0, n=300):
    """Four models whose 2-D spaces place points at well separated cluster centres (BC ~ 0 across
    clusters, 1 within): the hard-clustering limit, where the fingerprint measures are exact."""
    rng = np.random.default_rng(seed)
    lab4 = rng.choice(4, n, p=[0.4, 0.3, 0.2, 0.1])
    other = rng.choice(3, n, p=[0.5, 0.3, 0.2])
    centres = 40.0 * np.array([[0, 0], [1, 0], [0, 1], [1, 1]])
    labels = [lab4, lab4 // 2, other, (lab4 + other) % 3]
    mu = np.stack([centres[lab] for lab in labels])
    return mu, np.zeros_like(mu), labels


def _classic(la, lb):
    """Plug-in entropies -> NMI (geometric) and VI in bits."""
    def h(x):
        p = np.unique(x, return_counts=True, axis=0)[1] / len(x)
        return -(p * np.log2(p)).sum()
    hj = h(np.stack([la, lb], 1))
    mi = h(la) + h(lb) - hj
    return mi / np.sqrt(h(la) * h(lb)), 2 * hj - h(la) - h(lb)


def test_monte_carlo_agrees_with_fingerprint_in_few_bit_spaces():
    mu, lv, labels = _cluster_spaces()
    mc = spaces.compare_model_spaces(mu, lv, n_samples=3000, seed=1, device="cpu")
    fp = measures.compare_channels(mu, lv, dtype="float64", device="cpu")
    assert np.all(mc.info_err > 0) and np.all(mc.nmi_err[~np.eye(4, dtype=bool)] > 0)
    tol = lambda err: 3 * err + 1e-3
    assert np.all(np.abs(mc.info - fp.info) <= tol(mc.info_err))
    off = ~np.eye(4, dtype=bool)
    assert np.all(np.abs(mc.nmi - fp.nmi)[off] <= tol(mc.nmi_err)[off])
    assert np.all(np.abs(mc.vi - fp.vi)[off] <= tol(mc.vi_err)[off])
    # and both equal the classic clustering NMI / VI
    nmi01, vi01 = _classic(labels[0], labels[1])
    assert fp.nmi[0, 1] == pytest.approx(nmi01, abs=1e-6) and fp.vi[0, 1] == pytest.approx(vi01, abs=1e-6)
    assert np.allclose(np.diag(mc.nmi), 1.0, atol=3 * 0.01) and np.allclose(np.diag(mc.vi), 0.0)
    assert np.allclose(mc.nmi, mc.nmi.T, equal_nan=True)


def test_errors_shrink_and_match_spread_over_seeds():
    rng = np.random.default_rng(2)
    mu = rng.normal(size=(2, 100, 2)) * 2
    lv = np.full_like(mu, -0.5)
    res = [spaces.compare_model_spaces(mu, lv, n_samples=400, seed=s, device="cpu") for s in range(12)]
    nmis = np.array([r.nmi[0, 1] for r in res])
    mean_err = np.mean([r.nmi_err[0, 1] for r in res])
    # the reported standard error matches the spread of independent estimates (within a factor 2)
    assert 0.5 < nmis.std(ddof=1) / mean_err < 2.0
    big = spaces.compare_model_spaces(mu, lv, n_samples=3200, seed=0, device="cpu")
    assert big.nmi_err[0, 1] < 0.6 * mean_err


def test_ensemble_spaces_cache(tmp_path):
    from vaefrag import store

    mu, lv, _ = _cluster_spaces(n=60)
    manifest = {"name": "clusters", "model": {"family": "imported"}, "fingerprint": {"size": 60},
                "members": [{"id": i} for i in range(4)]}
    path = store.write_ensemble(tmp_path / "ens", manifest, mu.astype(np.float32), lv.astype(np.float32))
    calls = []
    a = spaces.ensemble_spaces(path, n_samples=200, cache_dir=tmp_path / "cache", device="cpu",
                               progress=lambda d, n, m="": calls.append((d, n)))
    assert calls[-1] == (14, 14) and not a.from_cache
    b = spaces.ensemble_spaces(path, n_samples=200, cache_dir=tmp_path / "cache", device="cpu")
    assert b.from_cache and np.array_equal(a.nmi, b.nmi, equal_nan=True) and b.ensemble_name == "clusters"
    assert len(spaces.spaces_rows(b)) == 10
    with pytest.raises(ValueError, match="sample_size"):
        spaces.ensemble_spaces(path, sample_size=1, use_cache=False)
    with pytest.raises(store.EnsembleError, match="weights"):
        spaces.ensemble_spaces(path, sample_size=50, use_cache=False)


def test_bad_input():
    with pytest.raises(ValueError, match="n_samples"):
        spaces.compare_model_spaces(np.zeros((2, 5, 1)), np.zeros((2, 5, 1)), n_samples=1)
    with pytest.raises(ValueError, match="mu"):
        spaces.compare_model_spaces(np.zeros((5, 1)), np.zeros((5, 1)))


def test_spaces_cli_and_figure(tmp_path):
    import csv

    from vaefrag import store
    from vaefrag.cli import main
    from vaefrag.figures.fusion import spaces_figure

    mu, lv, _ = _cluster_spaces(n=40)
    manifest = {"name": "clusters", "model": {"family": "imported"}, "fingerprint": {"size": 40},
                "members": [{"id": i} for i in range(4)]}
    path = store.write_ensemble(tmp_path / "ens", manifest, mu.astype(np.float32), lv.astype(np.float32))
    out = tmp_path / "s.csv"
    assert main(["spaces", str(path), "--samples", "100", "--no-cache", "--device", "cpu", "--csv", str(out),
                 "--figure", str(tmp_path / "s.html")]) == 0
    rows = list(csv.DictReader(open(out)))
    assert len(rows) == 10
    res = spaces.compare_model_spaces(mu, lv, n_samples=100, device="cpu")
    fig = spaces_figure(res)
    np.testing.assert_allclose(np.asarray(fig.data[0].z, dtype=float), res.nmi)
    np.testing.assert_allclose(fig.data[1].y, res.info)
    assert main(["spaces", str(path), "--samples", "1"]) == 2


def test_one_estimator_pair_and_ensemble_forms_agree_and_hit_the_exact_value():
    """`measures.compare_spaces` (a pair) is the pair entry of the K-space estimator behind
    `spaces.compare_model_spaces`, and both reach the exact clustering NMI / VI (sklearn's NMI,
    geometric normalisation) within their standard errors."""
    from sklearn.metrics import normalized_mutual_info_score

    mu, lv, labels = _cluster_spaces(seed=3)
    many = spaces.compare_model_spaces(mu[:2], lv[:2], n_samples=2000, seed=5, device="cpu")
    pair = measures.compare_spaces(mu[0], lv[0], mu[1], lv[1], n_samples=2000, seed=5, device="cpu")
    assert pair.nmi == pytest.approx(many.nmi[0, 1], abs=1e-12) and pair.vi == pytest.approx(many.vi[0, 1], abs=1e-12)
    assert pair.nmi_err == pytest.approx(many.nmi_err[0, 1], abs=1e-12)
    exact_nmi = normalized_mutual_info_score(labels[0], labels[1], average_method="geometric")
    _, exact_vi = _classic(labels[0], labels[1])
    assert abs(pair.nmi - exact_nmi) <= 4 * pair.nmi_err + 1e-3
    assert abs(pair.vi - exact_vi) <= 4 * pair.vi_err + 1e-3
    # spaces of different sizes: a 2-D space against a 1-D one
    other = measures.compare_spaces(mu[0], lv[0], mu[2][:, :1], lv[2][:, :1], n_samples=500, seed=0, device="cpu")
    assert np.isfinite(other.nmi) and 0 <= other.info_b <= np.log2(mu.shape[1]) + 1e-9
def test_spaces_cli_reencodes_a_larger_sample_where_weights_exist(tmp_path, capsys):
    import csv

    from vaefrag.cli import main
    from vaefrag.commands.spaces import DEFAULT_SAMPLE_SIZE
    from vaefrag.datasets import make_dataset
    from vaefrag.training import train_ensemble

    path = train_ensemble(tmp_path / "ens", dataset="digits", models=2, latents=2, steps=3, batch_size=8, width=4,
                          hidden=8, fingerprint_size=30)
    n_all = min(DEFAULT_SAMPLE_SIZE, len(make_dataset("digits")))
    out = tmp_path / "s.csv"
    assert main(["spaces", str(path), "--samples", "100", "--no-cache", "--device", "cpu", "--csv", str(out)]) == 0
    text = capsys.readouterr().out
    assert f"dataset sample: {n_all} points, re-encoded" in text
    ref = spaces.ensemble_spaces(path, n_samples=100, sample_size=DEFAULT_SAMPLE_SIZE, use_cache=False, device="cpu")
    assert ref.n_points == n_all
    rows = list(csv.DictReader(open(out)))
    np.testing.assert_allclose([float(r["info_a_bits"]) for r in rows if r["model_a"] == r["model_b"]], ref.info,
                               rtol=1e-6)
    assert main(["spaces", str(path), "--samples", "100", "--no-cache", "--device", "cpu", "--sample-size", "0"]) == 0
    assert "dataset sample: 30 points, the stored fingerprint posteriors" in capsys.readouterr().out
