"""Member-batched networks are K independent models; objectives match their closed forms."""
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from vaefrag.models import FAMILIES, EnsembleVAE, Member, make_objective, make_spec
from vaefrag.models.objectives import kl_per_dim, reconstruction

SPECS = {
    "conv": make_spec([1, 16, 16], 3, width=4, hidden=8),
    "mlp": make_spec([2], 2, hidden=8, likelihood="gaussian"),
    "broadcast": make_spec([2, 8, 8], 3, width=4, hidden=8, decoder="broadcast"),
}


def test_make_spec_picks_architecture():
    assert make_spec([1, 64, 64], 10)["kind"] == "conv"
    assert make_spec([3, 8, 8], 10)["kind"] == "conv"
    assert make_spec([1, 12, 12], 10)["kind"] == "mlp"
    assert make_spec([5], 2)["kind"] == "mlp"
    with pytest.raises(ValueError, match="latents"):
        make_spec([5], 0)
    with pytest.raises(ValueError, match="conv"):
        make_spec([5], 2, kind="conv")
    with pytest.raises(ValueError, match="likelihood"):
        make_spec([5], 2, likelihood="poisson")
    with pytest.raises(ValueError, match="decoder"):
        make_spec([5], 2, decoder="broadcast")
    with pytest.raises(ValueError, match="decoder"):
        make_spec([1, 8, 8], 2, decoder="deconv")
    old = dict(make_spec([1, 8, 8], 2))
    del old["decoder"]  # specs stored before the broadcast decoder existed
    assert EnsembleVAE(old, 1).spec["decoder"] == "mirror"


def test_broadcast_decoder_is_one_pixel_mlp_of_latents_and_coordinates():
    """Pixel (row i, column j) of an S x S output is the same small MLP applied to
    (z, x_j, y_i), x_j = -1 + 2j/(S-1), y_i = -1 + 2i/(S-1), evaluated by hand here."""
    spec = SPECS["broadcast"]
    net = EnsembleVAE(spec, 2)
    net.init_members([1, 2])
    z = torch.randn(3, 2, spec["latents"])
    out = net.decode_logits(z)
    assert out.shape == (3, 2, 2, 8, 8)
    state = net.member_state(1)
    relu = torch.relu
    for i, j in [(0, 0), (0, 7), (5, 2), (7, 7)]:
        xy = torch.tensor([-1 + 2 * j / 7, -1 + 2 * i / 7])
        h = relu(z[:, 1] @ state["dec_z.weight"] + state["dec_z.bias"] + xy @ state["dec_xy.weight"] + state["dec_xy.bias"])
        h = relu(h @ state["dec_pixel.1.weight"] + state["dec_pixel.1.bias"])
        pixel = h @ state["dec_pixel.3.weight"] + state["dec_pixel.3.bias"]  # [3, C]
        torch.testing.assert_close(out[:, 1, :, i, j], pixel, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("kind", ["conv", "mlp", "broadcast"])
def test_batched_members_equal_single_models(kind):
    spec = SPECS[kind]
    big = EnsembleVAE(spec, 3)
    big.init_members([5, 6, 7])
    alone = EnsembleVAE(spec, 1)
    alone.init_members([6])
    for name, t in big.member_state(1).items():
        torch.testing.assert_close(t, alone.member_state(0)[name], rtol=0, atol=0)
    x = torch.rand(4, *spec["input_shape"])
    mu, lv = big.encode(x)
    mu1, lv1 = alone.encode(x)
    assert mu.shape == (4, 3, spec["latents"])
    torch.testing.assert_close(mu[:, 1], mu1[:, 0], rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(lv[:, 1], lv1[:, 0], rtol=1e-5, atol=1e-6)
    z = torch.randn(4, 3, spec["latents"])
    torch.testing.assert_close(big.decode(z)[:, 1], alone.decode(z[:, 1:2])[:, 0], rtol=1e-5, atol=1e-6)
    # per-member inputs [B, K, ...] give the same as running each member on its own input
    xk = torch.rand(4, 3, *spec["input_shape"])
    torch.testing.assert_close(big.encode(xk)[0][:, 1], alone.encode(xk[:, 1])[0][:, 0], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("kind", ["conv", "mlp", "broadcast"])
def test_members_share_no_gradient(kind):
    spec = SPECS[kind]
    net = EnsembleVAE(spec, 3)
    net.init_members([0, 1, 2])
    mu, lv = net.encode(torch.rand(5, *spec["input_shape"]))
    (net.decode(mu)[:, 0].sum() + lv[:, 0].sum()).backward()
    for name, p in net.named_parameters():
        assert p.grad[0].abs().sum() > 0, name
        assert p.grad[1:].abs().sum() == 0, name


def test_member_wrapper_shapes_and_range():
    m = Member(SPECS["conv"])
    m.net.init_members([3])
    mu, lv = m.encode(torch.rand(6, 1, 16, 16))
    assert mu.shape == lv.shape == (6, 3)
    out = m.decode(torch.randn(6, 3) * 5)
    assert out.shape == (6, 1, 16, 16) and out.min() >= 0 and out.max() <= 1
    state = m.net.member_state(0)
    state.pop(next(iter(state)))
    with pytest.raises(ValueError, match="missing"):
        Member(SPECS["conv"]).load_state(state)
    bad = dict(m.net.member_state(0))
    key = next(iter(bad))
    bad[key] = torch.zeros(1, 2, 3)
    with pytest.raises(ValueError, match="shape"):
        Member(SPECS["conv"]).load_state(bad)


def test_kl_and_likelihoods_closed_forms():
    g = torch.Generator().manual_seed(0)
    mu, lv = torch.randn(4, 2, 3, generator=g), torch.randn(4, 2, 3, generator=g)
    q = torch.distributions.Normal(mu, (0.5 * lv).exp())
    p = torch.distributions.Normal(torch.zeros_like(mu), torch.ones_like(mu))
    torch.testing.assert_close(kl_per_dim(mu, lv), torch.distributions.kl_divergence(q, p))
    x = torch.rand(4, 2, 1, 5, 5, generator=g).round()
    logits = torch.randn(4, 2, 1, 5, 5, generator=g)
    ref = F.binary_cross_entropy(torch.sigmoid(logits), x, reduction="none").flatten(2).sum(-1)
    torch.testing.assert_close(reconstruction(x, logits, "bernoulli"), ref, rtol=1e-4, atol=1e-4)
    xv, mean = torch.randn(4, 2, 3, generator=g), torch.randn(4, 2, 3, generator=g)
    ref = -torch.distributions.Normal(mean, 0.3).log_prob(xv).sum(-1)
    torch.testing.assert_close(reconstruction(xv, mean, "gaussian", 0.3), ref)


def _batch():
    g = torch.Generator().manual_seed(1)
    mu, lv = torch.randn(8, 2, 3, generator=g), torch.randn(8, 2, 3, generator=g) * 0.5
    z = mu + (0.5 * lv).exp() * torch.randn(8, 2, 3, generator=g)
    x, out = torch.rand(8, 2, 4, generator=g), torch.randn(8, 2, 4, generator=g)
    return x, out, mu, lv, z


def test_objective_values():
    x, out, mu, lv, z = _batch()
    rec = reconstruction(x, out, "bernoulli")
    kl = kl_per_dim(mu, lv).sum(-1)
    kw = dict(likelihood="bernoulli", dataset_size=100)
    torch.testing.assert_close(make_objective("beta-vae", beta=3).loss(x, out, mu, lv, z, **kw), (rec + 3 * kl).mean(0))
    # annealed capacity: C = 0 at the start, C = capacity once annealed
    ann = make_objective("annealed-vae", gamma=10, capacity=5, anneal_fraction=0.5)
    torch.testing.assert_close(ann.loss(x, out, mu, lv, z, step=0, total_steps=10, **kw), rec.mean(0) + 10 * kl.mean(0))
    torch.testing.assert_close(ann.loss(x, out, mu, lv, z, step=9, total_steps=10, **kw),
                               rec.mean(0) + 10 * (kl.mean(0) - 5).abs())
    # beta-TCVAE with alpha = beta = gamma = 1: MI + TC + dim-KL telescopes to log q(z|x) - log p(z)
    tc = make_objective("beta-tcvae", alpha=1, beta=1, gamma=1)
    log_qzx = torch.distributions.Normal(mu, (0.5 * lv).exp()).log_prob(z).sum(-1)
    log_pz = torch.distributions.Normal(0.0, 1.0).log_prob(z).sum(-1)
    torch.testing.assert_close(tc.loss(x, out, mu, lv, z, **kw), (rec + log_qzx - log_pz).mean(0), rtol=1e-5, atol=1e-4)
    # the TC term: with beta = 2 the loss grows by the minibatch-weighted TC estimate
    b, n = 8, 100
    mat = torch.distributions.Normal(mu[None], (0.5 * lv[None]).exp()).log_prob(z[:, None])  # [Bi, Bj, K, L]
    log_qz = torch.logsumexp(mat.sum(-1), 1) - math.log(b * n)
    log_prod = (torch.logsumexp(mat, 1) - math.log(b * n)).sum(-1)
    tc2 = make_objective("beta-tcvae", beta=2, alpha=1, gamma=1).loss(x, out, mu, lv, z, **kw)
    torch.testing.assert_close(tc2 - tc.loss(x, out, mu, lv, z, **kw), (log_qz - log_prod).mean(0), rtol=1e-4, atol=1e-4)


def test_families_registry_and_bad_hyperparameters():
    assert {"beta-vae", "beta-tcvae", "annealed-vae"} <= set(FAMILIES)
    with pytest.raises(ValueError, match="unknown name 'vae-9000'"):
        make_objective("vae-9000")
    with pytest.raises(ValueError, match="unknown hyperparameters"):
        make_objective("beta-vae", capacity=3)
    with pytest.raises(ValueError, match="beta"):
        make_objective("beta-vae", beta=float("nan"))
    assert np.isclose(make_objective("beta-vae").hyperparameters()["beta"], 4.0)
