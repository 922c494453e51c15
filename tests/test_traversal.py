"""traversal.py: values from quantiles, sign alignment, decoded grids against direct decoding."""
import numpy as np
import pytest
import torch

from vaefrag import store
from vaefrag.models import EnsembleVAE, make_spec
from vaefrag.traversal import align_signs, channel_traversals, to_uint8, traversal_values, traverse


class LinearVAE(torch.nn.Module):
    """encode: mu = x_flat @ A, decode: sigmoid(z @ B) reshaped to [C, H, W]; closed-form reference."""

    def __init__(self, shape=(1, 4, 4), latents=3, seed=0):
        super().__init__()
        g = np.random.default_rng(seed)
        d = int(np.prod(shape))
        self.shape = shape
        self.A = torch.tensor(g.normal(size=(d, latents)), dtype=torch.float32)
        self.B = torch.tensor(g.normal(size=(latents, d)), dtype=torch.float32)

    def encode(self, x):
        mu = x.reshape(len(x), -1) @ self.A
        return mu, torch.zeros_like(mu)

    def decode(self, z):
        return torch.sigmoid(z @ self.B).reshape(len(z), *self.shape)


def test_traversal_values_quantiles():
    m = np.arange(101.0)
    np.testing.assert_allclose(traversal_values(m, 5, (0.1, 0.9)), [10, 30, 50, 70, 90])
    np.testing.assert_allclose(traversal_values(m, 5, (0.1, 0.9), sign=-1), [90, 70, 50, 30, 10])
    for bad in [dict(n_values=1), dict(quantiles=(0.9, 0.1)), dict(sign=0)]:
        with pytest.raises(ValueError, match=next(iter(bad))):
            traversal_values(m, **{"n_values": 5, **bad})


def test_align_signs():
    rng = np.random.default_rng(0)
    base = rng.normal(size=300)
    mus = np.stack([base, -np.tanh(base) * 3 + 0.01 * rng.normal(size=300), base ** 3, -base + 1])
    np.testing.assert_array_equal(align_signs(mus, 0), [1, -1, 1, -1])
    np.testing.assert_array_equal(align_signs(mus, 1), [-1, 1, -1, 1])


def test_traverse_matches_closed_form():
    model = LinearVAE()
    x = np.random.default_rng(1).random((2, 1, 4, 4)).astype(np.float32)
    vals = np.array([-2.0, 0.0, 2.0])
    grid = traverse(model, x, 1, vals)
    assert grid.shape == (2, 3, 4, 4) and grid.dtype == np.uint8
    a, b = model.A.numpy().astype(np.float64), model.B.numpy().astype(np.float64)
    for r in range(2):
        z = x[r].reshape(-1) @ a
        for c, v in enumerate(vals):
            zz = z.copy()
            zz[1] = v
            ref = 1 / (1 + np.exp(-(zz @ b)))
            assert np.abs(grid[r, c].astype(int) - np.rint(ref.reshape(4, 4) * 255)).max() <= 1


def test_traverse_colour_and_vectors():
    colour = traverse(LinearVAE(shape=(3, 2, 2)), np.zeros((1, 3, 2, 2)), 0, [0.0, 1.0])
    assert colour.shape == (1, 2, 2, 2, 3) and colour.dtype == np.uint8
    vec = traverse(LinearVAE(shape=(5,)), np.zeros((4, 5)), 2, [0.0, 1.0, 2.0])
    assert vec.shape == (4, 3, 5) and vec.dtype == np.float32
    with pytest.raises(ValueError, match="latent"):
        traverse(LinearVAE(), np.zeros((1, 1, 4, 4)), 7, [0.0])
    assert to_uint8([0.0, 0.5, 1.2]).tolist() == [0, 128, 255]


def tiny_ensemble(root, weights=True, k=2, n=40, latents=3, seed=0, clones=False, flip=None):
    """A real (untrained) ensemble on disk: 8x8 images, conv members, posteriors from the members.

    Encoders are scaled to give informative channels; ``clones`` makes every member a copy of
    member 0 (so each latent forms a hotspot spanning all members); ``flip=(member, latent)`` then
    negates that latent of that clone in encoder and decoder (same function, opposite sign).
    """
    spec = make_spec([1, 8, 8], latents, width=4, hidden=16)
    net = EnsembleVAE(spec, k)
    net.init_members(list(range(seed, seed + k)))
    with torch.no_grad():
        net.enc_fc[-1].weight[:, :, :latents] *= 30.0
        net.enc_fc[-1].bias[:, latents:] = -4.0
    if clones:
        for i in range(1, k):
            net.load_member_state(i, net.member_state(0))
        if flip is not None:
            m, j = flip
            with torch.no_grad():
                net.enc_fc[-1].weight[m, :, j] *= -1
                net.enc_fc[-1].bias[m, j] *= -1
                net.dec_fc[0].weight[m, j, :] *= -1
    x = np.random.default_rng(seed).random((n, 1, 8, 8)).astype(np.float32)
    with torch.no_grad():
        mu, lv = net.encode(torch.from_numpy(x))
    mu, lv = mu.permute(1, 0, 2).numpy(), lv.permute(1, 0, 2).numpy()
    factors = np.random.default_rng(seed).integers(0, 3, (n, 2))
    manifest = {"name": "tiny", "model": {"family": "beta-vae", "spec": spec},
                "members": [{"id": i, "final_loss": 1.0 + i} for i in range(k)]}
    w = [net.member_state(i) for i in range(k)] if weights else None
    path = store.write_ensemble(root / "tiny", manifest, mu, lv, x=x, factors=factors,
                                factor_names=["a", "b"], weights=w, overwrite=True)
    return path, net, x


def test_channel_traversals_on_stored_members(tmp_path):
    path, net, x = tiny_ensemble(tmp_path)
    ens = store.load_ensemble(path)
    grids, signs = channel_traversals(ens, [(1, 2), (0, 0)], n_values=4, rows=[3, 5], align=False)
    assert signs.tolist() == [1, 1]
    assert grids[0].shape == (2, 4, 8, 8)
    vals = traversal_values(ens.mu[1, :, 2], 4)
    with torch.no_grad():
        mu, _ = net.encode(torch.from_numpy(x[[3, 5]]))
        z = mu[:, None, 1].repeat(1, 4, 1)                   # member 1: [2, 4, L]
        z[:, :, 2] = torch.tensor(vals, dtype=torch.float32)
        zz = torch.zeros(8, 2, 3)
        zz[:, 1] = z.reshape(8, 3)
        ref = net.decode(zz)[:, 1, 0].reshape(2, 4, 8, 8).numpy()
    assert np.abs(grids[0].astype(int) - np.rint(ref * 255)).max() <= 1


def test_channel_traversals_need_weights(tmp_path):
    path, _, _ = tiny_ensemble(tmp_path, weights=False)
    with pytest.raises(ValueError, match="weights"):
        channel_traversals(store.load_ensemble(path), [(0, 0)])


def test_member_traversals_are_sign_aligned(tmp_path):
    from vaefrag.analysis import analyze
    from vaefrag.traversal import hotspot_traversals, member_traversals

    path, _, _ = tiny_ensemble(tmp_path, k=3, n=60, clones=True, flip=(1, 2))
    ens = store.load_ensemble(path)
    a = analyze(ens, use_cache=False, n_bootstrap=0, maps=())
    assert len(a.hotspots) == 3
    h = next(h for h in a.hotspots if 2 in h.channels[:, 1])
    channels, grids, signs = member_traversals(ens, a, h.id, n_values=5, n_rows=2)
    assert channels[0].tolist() == a.channel_ids[a.kept[h.medoid]].tolist()
    flipped = [s for (m, _), s in zip(channels, signs) if m == 1]
    same = [s for (m, _), s in zip(channels, signs) if m != 1]
    assert flipped == [-signs[0]] if channels[0][0] != 1 else all(s == -1 for s in same)
    assert np.abs(grids[0][:, 0].astype(int) - grids[0][:, -1].astype(int)).max() > 5   # the images change
    # flipped back, every member's traversal shows the same images
    for g in grids[1:]:
        assert np.abs(g.astype(int) - grids[0].astype(int)).max() <= 1
    medoids = hotspot_traversals(ens, a, n_values=5, n_rows=2)
    assert set(medoids) == {hs.id for hs in a.hotspots} and medoids[h.id].shape == (2, 5, 8, 8)
