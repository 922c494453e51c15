"""Fusion: gradients against finite differences, copies of one channel, continuity, bad input."""
import numpy as np
import pytest
import torch

from vaefrag import fusion, measures


@pytest.mark.parametrize("objective", ["nmi", "vi", "info"])
def test_gradient_matches_finite_differences(objective):
    gen = torch.Generator().manual_seed(0)
    n, k = 7, 2
    mu = torch.randn(n, k, generator=gen, dtype=torch.float64, requires_grad=True)
    lv = (0.3 * torch.randn(n, k, generator=gen, dtype=torch.float64)).requires_grad_()
    in_mu = torch.randn(3, n, 1, generator=gen, dtype=torch.float64) * 2
    bc_in = measures.bhattacharyya_torch(in_mu, torch.zeros_like(in_mu) - 1.0)
    f = lambda m, v: fusion.fusion_objective(m, v, bc_in, objective)
    assert torch.autograd.gradcheck(f, (mu, lv), eps=1e-6, atol=1e-7, rtol=1e-5)


def test_measures_match_channel_comparison():
    rng = np.random.default_rng(1)
    mu, lv = rng.normal(size=(4, 30, 1)) * 2, rng.normal(size=(4, 30, 1)) * 0.3 - 1
    bc = torch.as_tensor(measures.bhattacharyya(mu, lv))
    meas = fusion.fused_measures(bc[0], bc[1:])
    ref = measures.compare_channels(mu, lv, dtype="float64", device="cpu")
    np.testing.assert_allclose(meas["nmi"].numpy(), ref.nmi[0, 1:], atol=1e-9)
    np.testing.assert_allclose(meas["vi"].numpy(), ref.vi[0, 1:], atol=1e-9)
    assert float(meas["info"]) == pytest.approx(ref.info[0], abs=1e-9)


def test_fusing_copies_of_one_channel_recovers_it():
    rng = np.random.default_rng(2)
    n = 40
    mu = np.sort(rng.uniform(-4, 4, n))[:, None]
    lv = np.full((n, 1), -1.0)
    copies_mu, copies_lv = np.stack([mu] * 4), np.stack([lv] * 4)
    calls = []
    res = fusion.fuse(copies_mu, copies_lv, k=2, objective="nmi", steps=600, lr=0.05,
                      progress=lambda d, t, m="": calls.append(d))
    assert calls[-1] == 600 and res.mu.shape == (n, 2) and res.bc.shape == (n, n)
    assert np.all(res.nmi_inputs >= 0.95)
    np.testing.assert_allclose(res.bc, measures.bhattacharyya(res.mu, res.logvar), atol=1e-12)
    r = fusion.fuse(copies_mu[:2], copies_lv[:2], k=1, objective="vi", steps=400, lr=0.05, seed=1)
    assert np.all(r.nmi_inputs >= 0.95)
    # the information objective only asks for shared bits (a finer F also shares them): it rises
    r = fusion.fuse(copies_mu[:2], copies_lv[:2], k=1, objective="info", steps=200, lr=0.05, seed=1, init="random")
    assert r.history[-1] > r.history[0] + 0.5 and r.mutual_inputs[0] == pytest.approx(r.history[-1], abs=1e-3)


def test_floored_nmi_objective_removes_the_zero_information_optimum():
    rng = np.random.default_rng(0)
    n = 60
    mu = np.sort(rng.uniform(-4, 4, n))[:, None]
    lv = np.full((n, 1), -1.0)
    bc_in = torch.as_tensor(measures.bhattacharyya(mu[None], lv[None]))
    flat = torch.zeros(n, 1, dtype=torch.float64)
    # a fused space that is a shrunken copy of the input carries ~0 bits, yet its NMI estimate
    # stays near 0.9 (numerator and denominator are both first order): the floor sends it to 0
    tiny = fusion.fused_measures(measures.bhattacharyya_torch(torch.as_tensor(1e-3 * mu), flat), bc_in)
    assert tiny["self_info"] < 1e-9 and tiny["nmi"][0] > 0.8
    assert fusion.objective_value(tiny, "nmi") < 1e-4
    # a finer fused space (more bits than the input): the objective is the plain NMI
    fine = fusion.fused_measures(measures.bhattacharyya_torch(torch.as_tensor(3 * mu), flat - 2), bc_in)
    assert fine["self_info"] > 2 * fine["info_in"][0] - fine["selfjoint_in"][0]
    assert float(fusion.objective_value(fine, "nmi")) == pytest.approx(float(fine["nmi"].mean()), rel=1e-12)


def test_mds_init_recovers_equal_variance_means():
    # equal variances s^2: D_B = (mu_i - mu_j)^2 / (8 s^2), so sqrt(8 D_B) = |mu_i - mu_j| / s and
    # classical MDS returns the centred means / s up to a sign (and zeros in extra dimensions)
    rng = np.random.default_rng(4)
    mu = rng.normal(0, 2, (30, 1))
    lv = np.full((30, 1), np.log(0.25))
    bc = measures.bhattacharyya(np.stack([mu] * 3), np.stack([lv] * 3))
    init = fusion.mds_init(bc, 2)
    want = (mu[:, 0] - mu[:, 0].mean()) / 0.5
    sign = np.sign(init[:, 0] @ want)
    np.testing.assert_allclose(sign * init[:, 0], want, atol=1e-6)
    np.testing.assert_allclose(init[:, 1], 0, atol=1e-5)
    with pytest.raises(ValueError, match="init"):
        fusion.fuse(mu[None], lv[None], init="spectral")


def test_continuity_of_ring_and_cut_ring():
    n = 60
    a = 2 * np.pi * (np.arange(n) + 0.5) / n
    ring = np.stack([np.cos(a), np.sin(a)], 1) * 5
    lv = np.full((n, 2), -1.0)
    assert fusion.continuity(ring, lv, a) == pytest.approx(1.0, abs=1e-9)
    line = (a * 5)[:, None]                                   # cut between the last and first angle
    dist = 0.125 * (line[-1, 0] - line[0, 0]) ** 2 / np.exp(-1.0)
    step = 0.125 * (line[1, 0] - line[0, 0]) ** 2 / np.exp(-1.0)
    assert fusion.continuity(line, lv[:, :1], a) == pytest.approx(dist / step)
    shuffled = np.random.default_rng(0).permutation(n)
    assert fusion.continuity(line[shuffled], lv[shuffled, :1], a[shuffled]) == pytest.approx(dist / step)
    assert fusion.continuity(line, lv[:, :1], a, wrap=False) == pytest.approx(1.0)


def test_select_channels_and_fuse_selection():
    rng = np.random.default_rng(3)
    mu, lv = rng.normal(size=(3, 20, 2)), np.zeros((3, 20, 2))
    m, v = fusion.select_channels(mu, lv, [(0, 1), (2, 0)])
    assert m.shape == (2, 20, 1) and np.array_equal(m[1, :, 0], mu[2, :, 0])
    res = fusion.fuse_selection(mu, lv, [(0, 1), (2, 0)], k=1, steps=5)
    assert res.nmi_inputs.shape == (2,) and res.history.shape == (5,)
    with pytest.raises(ValueError, match="channels"):
        fusion.select_channels(mu, lv, [])
    with pytest.raises(ValueError, match="channels"):
        fusion.select_channels(mu, lv, [(3, 0)])


def test_bad_input():
    mu, lv = np.zeros((2, 10, 1)), np.zeros((2, 10, 1))
    with pytest.raises(ValueError, match="k"):
        fusion.fuse(mu, lv, k=0)
    with pytest.raises(ValueError, match="empty selection"):
        fusion.fuse([], [])
    with pytest.raises(ValueError, match="fingerprint points"):
        fusion.fuse([np.zeros((10, 1)), np.zeros((12, 1))], [np.zeros((10, 1)), np.zeros((12, 1))])
    with pytest.raises(ValueError, match="objective"):
        fusion.fuse(mu, lv, objective="cka")
    with pytest.raises(ValueError, match="steps"):
        fusion.fuse(mu, lv, steps=0)
    with pytest.raises(ValueError, match="angle"):
        fusion.continuity(np.zeros((5, 2)), np.zeros((5, 2)), np.zeros(4))


def test_fuse_cli_and_figures(tmp_path):
    from vaefrag import store
    from vaefrag.cli import main
    from vaefrag.figures.fusion import fused_space_figure, fusion_agreement_figure

    rng = np.random.default_rng(5)
    mu = np.sort(rng.normal(size=(3, 25, 1)), axis=1).astype(np.float32)
    manifest = {"name": "tiny", "model": {"family": "imported"}, "fingerprint": {"size": 25},
                "members": [{"id": i} for i in range(3)]}
    path = store.write_ensemble(tmp_path / "ens", manifest, mu, np.full_like(mu, -1.0))
    out = tmp_path / "fused.npz"
    assert main(["fuse", str(path), "--channels", "0:0,2", "--steps", "20", "--out", str(out),
                 "--figure", str(tmp_path / "f.html")]) == 0
    with np.load(out, allow_pickle=False) as z:
        assert z["mu"].shape == (25, 2) and z["channels"].tolist() == [[0, 0], [2, 0]]
    assert main(["fuse", str(path), "--channels", "5:0", "--out", str(out)]) == 2
    assert main(["fuse", str(path), "--k", "0", "--out", str(out)]) == 2
    res = fusion.fuse(mu, np.full_like(mu, -1.0), k=2, steps=5)
    fig = fused_space_figure(res, factor=np.arange(25) % 3)
    np.testing.assert_allclose(fig.data[-1].x, res.mu[:, 0])
    assert list(fusion_agreement_figure(res).data[0].y) == pytest.approx(res.nmi_inputs.tolist())
    with pytest.raises(ValueError, match="factor"):
        fused_space_figure(res, factor=np.zeros(3))
