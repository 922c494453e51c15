"""measures.py against an independent float64 evaluation of DESIGN §2 and classic limits."""
import math

import numpy as np
import pytest
from sklearn.metrics import mutual_info_score, normalized_mutual_info_score

from vaefrag import measures as ms


# ------------------------------------------------------------------ independent reference (float64)


def ref_distance(mu, logvar):
    """Bhattacharyya distance matrix of one channel [N, d] written straight from the formula."""
    n = mu.shape[0]
    var = np.exp(logvar)
    out = np.zeros((n, n))
    for i in range(n):
        s = 0.5 * (var[i] + var)                                    # [N, d]
        out[i] = (0.125 * ((mu[i] - mu) ** 2 / s).sum(-1)
                  + 0.5 * np.log(s / np.sqrt(var[i] * var)).sum(-1))
    return out


def ref_info(bc):
    return -np.mean(np.log2(np.mean(bc, axis=-1)))


def ref_compare(mus, lvs, mus2=None, lvs2=None):
    """Per-pair loop, as the definitions read: returns info, self_info, nmi, vi."""
    bcs = [np.exp(-ref_distance(m, l)) for m, l in zip(mus, lvs)]
    bcs2 = bcs if mus2 is None else [np.exp(-ref_distance(m, l)) for m, l in zip(mus2, lvs2)]
    info = lambda bs: np.array([ref_info(b) for b in bs])
    selfj = lambda bs: np.array([ref_info(b * b) for b in bs])
    i1, i2, s1, s2 = info(bcs), info(bcs2), selfj(bcs), selfj(bcs2)
    nmi = np.zeros((len(bcs), len(bcs2)))
    vi = np.zeros_like(nmi)
    for a, ba in enumerate(bcs):
        for b, bb in enumerate(bcs2):
            j = ref_info(ba * bb)
            nmi[a, b] = (i1[a] + i2[b] - j) / math.sqrt((2 * i1[a] - s1[a]) * (2 * i2[b] - s2[b]))
            vi[a, b] = 2 * j - s1[a] - s2[b]
    return i1, 2 * i1 - s1, nmi, vi


def structured(seed, m=6, n=60, d=1):
    """Channels that are noisy functions of two latent factors, plus one pure-noise channel."""
    rng = np.random.default_rng(seed)
    f = rng.normal(size=(2, n))
    mu = np.empty((m, n, d))
    for c in range(m):
        base = f[c % 2] * rng.uniform(0.5, 2) + (rng.normal(size=n) * 0.3)
        mu[c] = base[:, None] + rng.normal(size=(n, d)) * 0.2
    mu[-1] = rng.normal(size=(n, d))
    lv = rng.uniform(-3, -1, size=(m, n, d))
    return mu, lv


# ------------------------------------------------------------------ agreement with the definitions


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("d", [1, 3])
def test_matches_reference_float32(seed, d):
    rng = np.random.default_rng(seed)
    mu = rng.normal(size=(5, 40, d)) * rng.uniform(0.2, 3)
    lv = rng.normal(size=(5, 40, d)) - 1
    info, self_info, nmi, vi = ref_compare(mu, lv)
    res = ms.compare_channels(mu.astype(np.float32), lv.astype(np.float32), device="cpu")
    np.testing.assert_allclose(res.info, info, atol=1e-4)
    np.testing.assert_allclose(res.self_info, self_info, atol=1e-4)
    np.testing.assert_allclose(res.nmi, nmi, atol=1e-4)
    np.testing.assert_allclose(res.vi, vi, atol=1e-4)


def test_narrow_posteriors_give_no_subnormal_coefficients_and_the_exact_measures():
    """Trained models have narrow posteriors: many coefficients exp(-D) fall below float32's smallest
    normal number (D in about [87, 103]), where the GEMM runs several times slower. They are set to
    0, which must leave the measures equal to the float64 definitions."""
    import torch

    from vaefrag.measures.fingerprints import _GaussianRows

    rng = np.random.default_rng(5)
    mu = rng.normal(size=(4, 120, 1)) * 3
    lv = np.full_like(mu, -3.0)
    d = ref_distance(mu[0], lv[0])
    assert ((d > 87.5) & (d < 103)).sum() > 100        # the data has coefficients in the subnormal range
    rows = _GaussianRows(mu.astype(np.float32), lv.astype(np.float32), "cpu", torch.float32)
    bc = rows.rows(0, 120, torch.empty((120, 4, 120))).numpy()
    tiny = np.finfo(np.float32).tiny
    assert not ((bc > 0) & (bc < tiny ** 0.5)).any()
    np.testing.assert_allclose(bc[:, 0, :], np.exp(-d), atol=1e-6)
    info, self_info, nmi, vi = ref_compare(mu, lv)
    res = ms.compare_channels(mu.astype(np.float32), lv.astype(np.float32), device="cpu")
    np.testing.assert_allclose(res.info, info, atol=1e-4)
    np.testing.assert_allclose(res.nmi, nmi, atol=1e-4)
    np.testing.assert_allclose(res.vi, vi, atol=1e-4)


@pytest.mark.parametrize("seed", [3, 4])
def test_structured_channels_and_blocking(seed):
    mu, lv = structured(seed)
    info, self_info, nmi, vi = ref_compare(mu, lv)
    for kw in ({}, {"block_points": 7}, {"block_channels": 2, "block_points": 5}, {"dtype": "float64"}):
        res = ms.compare_channels(mu, lv, **kw)
        np.testing.assert_allclose(res.info, info, atol=1e-4, err_msg=str(kw))
        np.testing.assert_allclose(res.nmi, nmi, atol=1e-4, err_msg=str(kw))
        np.testing.assert_allclose(res.vi, vi, atol=1e-4, err_msg=str(kw))
    # channels built from the same factor share information, those from different ones little
    assert nmi[0, 2] > 0.3 and nmi[0, 2] > 3 * abs(nmi[0, 1])


def test_symmetric_products_with_a_quarter_left_out_match_reference(monkeypatch):
    """The symmetric case skips one off-diagonal quarter of the GEMM and mirrors the rest."""
    from vaefrag.measures import tiles
    mu, lv = structured(9, m=7, n=45, d=2)
    info, self_info, nmi, vi = ref_compare(mu, lv)
    monkeypatch.setattr(tiles, "_TRIANGLE_MIN_HALF", 1)
    for kw in ({}, {"block_points": 4}):
        res = ms.compare_channels(mu, lv, **kw)
        np.testing.assert_allclose(res.self_info, self_info, atol=1e-4, err_msg=str(kw))
        np.testing.assert_allclose(res.nmi, nmi, atol=1e-4, err_msg=str(kw))
        np.testing.assert_allclose(res.vi, vi, atol=1e-4, err_msg=str(kw))


def test_large_symmetric_set_equals_the_rectangular_comparison_with_itself():
    """At the default threshold (M >= 128) the triangle path runs; `other=` takes the plain GEMM."""
    rng = np.random.default_rng(10)
    mu = rng.normal(size=(140, 30, 1)) * rng.uniform(0.3, 3, (140, 1, 1))
    lv = rng.uniform(-3, 0, (140, 30, 1))
    sym = ms.compare_channels(mu, lv, dtype="float64")
    rect = ms.compare_channels(mu, lv, other=(mu, lv), dtype="float64")
    np.testing.assert_allclose(sym.mutual, rect.mutual, atol=1e-9)
    np.testing.assert_allclose(sym.vi, rect.vi, atol=1e-9)
    np.testing.assert_allclose(sym.self_info, rect.self_info, atol=1e-9)


def test_two_set_comparison_matches_reference():
    mu, lv = structured(5, m=4, n=50)
    mu2, lv2 = structured(6, m=3, n=50, d=2)
    info, _, nmi, vi = ref_compare(mu, lv, mu2, lv2)
    res = ms.compare_channels(mu, lv, other=(mu2, lv2))
    assert res.nmi.shape == (4, 3)
    np.testing.assert_allclose(res.info, info, atol=1e-4)
    np.testing.assert_allclose(res.nmi, nmi, atol=1e-4)
    np.testing.assert_allclose(res.vi, vi, atol=1e-4)
    tiled = ms.compare_channels(mu, lv, other=(mu2, lv2), block_channels=2, block_points=9)
    np.testing.assert_allclose(tiled.nmi, nmi, atol=1e-4)
    np.testing.assert_allclose(tiled.info_other, res.info_other, atol=1e-5)


def test_factors_match_reference():
    rng = np.random.default_rng(7)
    n = 60
    labels = np.stack([rng.integers(0, 3, n), rng.integers(0, 5, n)], axis=1)
    mu = np.stack([labels[:, 0] + 0.3 * rng.normal(size=n), rng.normal(size=n), labels[:, 1] * 1.0])[..., None]
    lv = np.full_like(mu, -2.0)
    res = ms.compare_channels(mu, lv, factors=labels)
    for f in range(2):
        bc_c = (labels[:, f][:, None] == labels[:, f][None, :]).astype(float)
        hc = ref_info(bc_c)
        assert res.factor_info[f] == pytest.approx(hc, abs=1e-6)
        # plug-in entropy of the labels
        p = np.bincount(labels[:, f]) / n
        p = p[p > 0]
        assert hc == pytest.approx(-(p * np.log2(p)).sum(), abs=1e-12)
        for c in range(3):
            bc = np.exp(-ref_distance(mu[c], lv[c]))
            i_u, s_u = ref_info(bc), ref_info(bc * bc)
            j = ref_info(bc * bc_c)
            nmi = (i_u + hc - j) / math.sqrt((2 * i_u - s_u) * hc)
            assert res.factor_nmi[c, f] == pytest.approx(nmi, abs=1e-4)
            assert res.factor_vi[c, f] == pytest.approx(2 * j - s_u - hc, abs=1e-4)
    assert np.argmax(res.factor_nmi[:, 0]) == 0 and np.argmax(res.factor_nmi[:, 1]) == 2


def test_bhattacharyya_matches_formula():
    rng = np.random.default_rng(0)
    mu, lv = rng.normal(size=(2, 10, 3)), rng.normal(size=(2, 10, 3))
    bc = ms.bhattacharyya(mu, lv)
    assert bc.shape == (2, 10, 10)
    for k in range(2):
        np.testing.assert_allclose(bc[k], np.exp(-ref_distance(mu[k], lv[k])), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(np.diagonal(bc, axis1=-2, axis2=-1), 1.0)
    # closed form for 1-D equal variances: BC = exp(-(dmu)^2 / (8 var))
    b = ms.bhattacharyya(np.array([[0.0], [2.0]]), np.log(np.array([[0.5], [0.5]])))
    assert b[0, 1] == pytest.approx(math.exp(-4 / (8 * 0.5)))


# ------------------------------------------------------------------ hard-clustering limit


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_hard_clustering_limit_matches_sklearn(seed):
    rng = np.random.default_rng(seed)
    n = 200
    u = rng.integers(0, 4, n)
    v = np.where(rng.random(n) < 0.6, u, rng.integers(0, 3, n))
    # point-mass posteriors: cluster centres far apart, tiny variances
    mu = np.stack([u * 10.0, v * 10.0])[..., None]
    lv = np.full_like(mu, -20.0)
    res = ms.compare_channels(mu, lv, dtype="float64")
    nmi_sk = normalized_mutual_info_score(u, v, average_method="geometric")
    assert res.nmi[0, 1] == pytest.approx(nmi_sk, abs=1e-6)
    h = lambda x: -(np.bincount(x) / n * np.log2(np.bincount(x) / n + 1e-300)).sum()
    mi = mutual_info_score(u, v) / math.log(2)
    assert res.info[0] == pytest.approx(h(u), abs=1e-6)
    assert res.vi[0, 1] == pytest.approx((h(u) - mi) + (h(v) - mi), abs=1e-6)   # H(U|V) + H(V|U)
    # the same channels given as factors give the same numbers
    res_f = ms.compare_channels(mu[:1], lv[:1], factors=v)
    assert res_f.factor_nmi[0, 0] == pytest.approx(nmi_sk, abs=1e-4)


# ------------------------------------------------------------------ properties


@pytest.mark.parametrize("seed", range(4))
def test_properties(seed):
    mu, lv = structured(seed, m=7, n=80)
    res = ms.compare_channels(mu, lv)
    ok = res.informative
    nmi = res.nmi[np.ix_(ok, ok)]
    np.testing.assert_allclose(res.nmi, res.nmi.T, atol=1e-6, equal_nan=True)
    np.testing.assert_allclose(res.vi, res.vi.T, atol=1e-6)
    np.testing.assert_allclose(np.diag(nmi), 1.0, atol=1e-6)
    np.testing.assert_allclose(np.diag(res.vi), 0.0, atol=1e-6)
    assert (res.vi >= -1e-5).all()
    # the noise channel is nearly independent of the others: the estimator may dip a little below 0
    assert nmi.max() <= 1 + 1e-5 and nmi.min() >= -0.05
    assert (res.info <= math.log2(80) + 1e-6).all() and (res.info >= -1e-6).all()
    # reordering channels permutes the result; permuting fingerprint points changes nothing
    rng = np.random.default_rng(seed)
    perm_c, perm_p = rng.permutation(7), rng.permutation(80)
    res_c = ms.compare_channels(mu[perm_c], lv[perm_c])
    np.testing.assert_allclose(res_c.nmi, res.nmi[np.ix_(perm_c, perm_c)], atol=1e-5)
    res_p = ms.compare_channels(mu[:, perm_p], lv[:, perm_p])
    np.testing.assert_allclose(res_p.nmi, res.nmi, atol=1e-5)
    np.testing.assert_allclose(res_p.vi, res.vi, atol=1e-5)


def test_zero_information_channel_is_nan_and_masked():
    rng = np.random.default_rng(0)
    mu = np.stack([rng.normal(size=50), np.zeros(50)])[..., None]
    lv = np.full_like(mu, -2.0)
    res = ms.compare_channels(mu, lv)
    assert res.informative.tolist() == [True, False]
    assert res.info[1] == pytest.approx(0.0, abs=1e-6)
    assert np.isnan(res.nmi[1]).all() and np.isnan(res.nmi[:, 1]).all()
    assert np.isfinite(res.vi).all()
    assert res.vi[0, 1] == pytest.approx(res.self_info[0], abs=1e-4)   # VI(U, const) = I(U;U')


def test_extreme_log_variances_are_finite():
    rng = np.random.default_rng(1)
    mu = rng.normal(size=(4, 30, 1)) * np.array([1, 1e-6, 1e6, 1])[:, None, None]
    lv = np.stack([np.full((30, 1), -30.0), np.full((30, 1), -30.0), np.full((30, 1), 30.0),
                   rng.uniform(-30, 30, (30, 1))])
    res = ms.compare_channels(mu, lv)
    assert np.isfinite(res.info).all() and np.isfinite(res.vi).all()
    assert np.isfinite(res.nmi[np.ix_(res.informative, res.informative)]).all()
    assert res.info[0] == pytest.approx(math.log2(30), abs=1e-3)    # point masses: every point apart


def test_channel_helpers_round_trip():
    rng = np.random.default_rng(0)
    mu, lv = rng.normal(size=(3, 20, 4)), rng.normal(size=(3, 20, 4))
    mc, lc = ms.split_channels(mu, lv)
    ids = ms.channel_ids(3, 4)
    assert mc.shape == (12, 20, 1)
    for c, (k, l_) in enumerate(ids):
        np.testing.assert_array_equal(mc[c, :, 0], mu[k, :, l_])
        assert c == k * 4 + l_
    g_mu, g_lv = ms.group_latents(mu, lv, [(0, 1), (2, 3)])
    assert g_mu.shape == (20, 2)
    # grouping multiplies fingerprints
    bc_g = ms.bhattacharyya(g_mu, g_lv)
    bc = ms.bhattacharyya(mc[[1, 11]], lc[[1, 11]])
    np.testing.assert_allclose(bc_g, bc[0] * bc[1], rtol=1e-10)
    g1, _ = ms.group_latents(mu[1], lv[1], [0, 2])
    np.testing.assert_array_equal(g1, mu[1][:, [0, 2]])


def test_info_from_bc_torch_matches_numpy():
    import torch
    rng = np.random.default_rng(0)
    mu, lv = rng.normal(size=(15, 2)), rng.normal(size=(15, 2))
    bc = ms.bhattacharyya(mu, lv)
    t = ms.info_from_bc_torch(ms.bhattacharyya_torch(torch.tensor(mu), torch.tensor(lv)))
    assert float(t) == pytest.approx(ref_info(bc), abs=1e-10)


# ------------------------------------------------------------------ Monte Carlo


def test_monte_carlo_limits():
    rng = np.random.default_rng(0)
    d = 64
    mu = rng.normal(size=(d, 2)) * 100
    est, err = ms.monte_carlo_info(mu, np.full((d, 2), -10.0), n_samples=500)
    assert est == pytest.approx(math.log2(d), abs=1e-6)
    est, err = ms.monte_carlo_info(np.zeros((d, 2)), np.zeros((d, 2)), n_samples=500)
    assert est == pytest.approx(0.0, abs=1e-9)


def test_monte_carlo_standard_error_coverage():
    """Two clusters of 1-D Gaussians: the exact I(U;X) by numerical integration lies within
    1.96 standard errors in about 95% of repeated estimates."""
    mu = np.repeat([[-1.0], [1.0]], 8, axis=0)
    lv = np.zeros_like(mu)
    grid = np.linspace(-12, 12, 20001)
    p1 = np.exp(-0.5 * (grid - 1) ** 2) / math.sqrt(2 * math.pi)
    p0 = np.exp(-0.5 * (grid + 1) ** 2) / math.sqrt(2 * math.pi)
    mix = 0.5 * (p0 + p1)
    truth = 0.5 * sum(np.trapezoid(p * np.log2(p / mix), grid) for p in (p0, p1))
    hits = 0
    reps = 200
    for s in range(reps):
        est, err = ms.monte_carlo_info(mu, lv, n_samples=400, seed=s)
        hits += abs(est - truth) <= 1.96 * err
    assert 0.88 <= hits / reps <= 0.995


def test_compare_spaces_identical_and_independent():
    rng = np.random.default_rng(0)
    d = 32
    mu = rng.normal(size=(d, 2)) * 50
    lv = np.full((d, 2), -8.0)
    same = ms.compare_spaces(mu, lv, mu, lv, n_samples=300)
    assert same.nmi == pytest.approx(1.0, abs=1e-6) and same.vi == pytest.approx(0.0, abs=1e-6)
    const = ms.compare_spaces(mu, lv, np.zeros((d, 1)), np.zeros((d, 1)), n_samples=300)
    assert const.info_b == pytest.approx(0.0, abs=1e-9) and math.isnan(const.nmi)
    assert const.vi == pytest.approx(math.log2(d), abs=1e-6)


# ------------------------------------------------------------------ bad input


@pytest.mark.parametrize("mu, lv, match", [
    (np.full((2, 5, 1), np.nan), np.zeros((2, 5, 1)), "mu: expected finite"),
    (np.zeros((2, 5, 1)), np.full((2, 5, 1), np.inf), "logvar: expected finite"),
    (np.zeros((2, 5, 1)), np.zeros((2, 4, 1)), "logvar: expected the shape"),
    (np.zeros((2, 1, 1)), np.zeros((2, 1, 1)), "at least 2 points"),
    (np.zeros((5, 1)), np.zeros((5, 1)), "expected 3 dimensions"),
    (np.array([["a"]]), np.array([["b"]]), "real numeric"),
    (np.zeros((2, 5, 1), dtype=bool), np.zeros((2, 5, 1)), "real numeric"),
])
def test_bad_input(mu, lv, match):
    with pytest.raises(ValueError, match=match):
        ms.compare_channels(mu, lv)


def test_bad_factors_and_other():
    mu, lv = np.random.default_rng(0).normal(size=(2, 2, 6, 1))
    with pytest.raises(ValueError, match="factors: expected 6 rows"):
        ms.compare_channels(mu, lv, factors=np.zeros((5, 1), int))
    with pytest.raises(ValueError, match="factors: expected integer"):
        ms.compare_channels(mu, lv, factors=np.zeros((6, 1)))
    with pytest.raises(ValueError, match="other: expected 6 fingerprint points"):
        ms.compare_channels(mu, lv, other=(np.zeros((1, 5, 1)), np.zeros((1, 5, 1))))
    with pytest.raises(ValueError, match="info_threshold"):
        ms.compare_channels(mu, lv, info_threshold=-1)
    with pytest.raises(ValueError, match="dtype"):
        ms.compare_channels(mu, lv, dtype="float16")


def test_pair_tile_is_a_block_of_the_full_computation():
    mu, lv = structured(8, m=6, n=40)
    full = ms.compare_channels(mu, lv, dtype="float64")
    tile = ms.pair_tile(mu[:2], lv[:2], mu[3:], lv[3:], dtype="float64", block_points=6)
    joint = full.info[:, None] + full.info[None, :] - full.mutual           # I(X;U_a,U_b)
    np.testing.assert_allclose(tile.joint, joint[:2, 3:], atol=1e-9)
    np.testing.assert_allclose(tile.info_a, full.info[:2], atol=1e-9)
    np.testing.assert_allclose(2 * tile.info_b - tile.selfjoint_b, full.self_info[3:], atol=1e-9)


# ------------------------------------------------------------------ resampled points in the same pass


def ref_weighted_info(bc, w):
    """Outer average over points weighted by w (sum N), inner sums over all N points."""
    return -np.sum(w * np.log2(np.mean(bc, axis=-1))) / w.sum()


@pytest.mark.parametrize("kw", [{}, {"block_points": 7}, {"block_channels": 3}])
def test_resample_weights_match_weighted_definitions(monkeypatch, kw):
    """With weights [R, N], every resampled information equals the definition with the outer mean
    over points weighted; the triangle path (chunks of 1 channel), blocking and tiling agree."""
    from vaefrag.measures import tiles
    monkeypatch.setattr(tiles, "_TRIANGLE_MIN_HALF", 1)
    mu, lv = structured(4, m=7, n=40, d=2)
    rng = np.random.default_rng(0)
    w = np.stack([np.bincount(rng.integers(0, 40, 40), minlength=40) for _ in range(3)]).astype(float)
    res = ms.compare_channels(mu, lv, dtype="float64", resample_weights=w, **kw)
    bcs = [np.exp(-ref_distance(m, l)) for m, l in zip(mu, lv)]
    for r in range(3):
        info = np.array([ref_weighted_info(b, w[r]) for b in bcs])
        joint = np.array([[ref_weighted_info(ba * bb, w[r]) for bb in bcs] for ba in bcs])
        np.testing.assert_allclose(res.resampled["info_a"][r], info, atol=1e-9)
        np.testing.assert_allclose(res.resampled["joint"][r], joint, atol=1e-9)
        np.testing.assert_allclose(res.resampled["selfjoint_a"][r], np.diag(joint), atol=1e-9)
        i_r, nmi_r, vi_r = ms.resampled_measures(res.resampled, r)
        self_r = 2 * info - np.diag(joint)
        mut = info[:, None] + info[None] - joint
        np.testing.assert_allclose(nmi_r, mut / np.sqrt(np.outer(self_r, self_r)), atol=1e-9)
        np.testing.assert_allclose(vi_r, 2 * joint - np.diag(joint)[:, None] - np.diag(joint)[None], atol=1e-9)
    # unit weights are the plain measures; the plain result is unchanged by asking for resamples
    ones = ms.compare_channels(mu, lv, dtype="float64", resample_weights=np.ones((1, 40)), **kw)
    np.testing.assert_allclose(ones.resampled["joint"][0], ones.mutual * 0 + (ones.info[:, None] + ones.info[None]
                                                                           - ones.mutual), atol=1e-9)
    plain = ms.compare_channels(mu, lv, dtype="float64", **kw)
    np.testing.assert_allclose(res.nmi, plain.nmi, atol=1e-12)


def test_resample_weights_rejected_when_malformed():
    mu, lv = structured(0, m=3, n=10)
    for w in (np.ones(10), np.ones((2, 9)), -np.ones((1, 10)), np.zeros((1, 10))):
        with pytest.raises(ValueError, match="resample_weights"):
            ms.compare_channels(mu, lv, resample_weights=w)
