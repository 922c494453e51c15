"""Models trained elsewhere as ONNX files: `vaefrag import --decoders/--encoders`, validation, traversals,
re-encoding, metadata, intent of the npz (channels-last, uint8, overflow, latent masks)."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from byo_helpers import Method, TutorialVAE, export, export_vaes, posteriors, torch_grid
from vaefrag import members, store, traversal
from vaefrag.cli import main
from vaefrag.store import EnsembleError


@pytest.fixture(scope="module")
def outside(tmp_path_factory):
    """Two tutorial VAEs written outside vaefrag, their inputs, posteriors and ONNX files
    exported with torch's default (new) exporter."""
    tmp = tmp_path_factory.mktemp("outside")
    rng = np.random.default_rng(0)
    x = rng.random((30, 1, 8, 8)).astype(np.float32)
    vaes = [TutorialVAE(latents=3, seed=s).eval() for s in (1, 2)]
    mu, logvar = posteriors(vaes, x)
    dec_dir, enc_dir = export_vaes(vaes, x, tmp, dynamo=True)
    np.savez(tmp / "post.npz", mu=mu, logvar=logvar, x=x, factors=rng.integers(0, 3, (30, 1)),
             beta=np.array([1.0, 4.0]), seed=np.array([11, 12]), final_loss=np.array([3.5, 2.5]),
             family=np.array(["beta-vae", "beta-vae"]), note=np.array("trained in my own code"),
             junk=np.zeros((5, 2)))
    return tmp, vaes, x, mu, logvar, dec_dir, enc_dir


def test_traversals_of_an_onnx_export_match_torch(outside, tmp_path, capsys):
    tmp, vaes, x, mu, logvar, dec_dir, enc_dir = outside
    root = tmp_path / "ens"
    assert main(["import", str(tmp / "post.npz"), "--name", "outside", "--ensembles", str(root),
                 "--decoders", str(dec_dir), "--encoders", str(enc_dir)]) == 0
    out = capsys.readouterr().out
    assert "ONNX decoders and encoders" in out and "junk: ignored" in out
    ens = store.load_ensemble(root / "outside")
    assert ens.has_weights and ens.has_encoders
    assert sorted(p.name for p in (ens.path / "members").iterdir()) == [
        "decoder_000.onnx", "decoder_001.onnx", "encoder_000.onnx", "encoder_001.onnx"]
    # every channel of both models, on shared base rows: the same images as the torch network gives
    channels = [(m, l) for m in range(2) for l in range(3)]
    grids, signs = traversal.channel_traversals(ens, channels, n_values=5, n_rows=3, align=False, seed=4)
    rows = np.sort(np.random.default_rng(4).choice(30, 3, replace=False))
    for (m, l), g in zip(channels, grids):
        vals = traversal.traversal_values(mu[m, :, l], 5)
        ref = torch_grid(vaes[m], mu[m, rows], l, vals)
        assert g.shape == ref.shape == (3, 5, 8, 8)
        assert np.abs(g.astype(int) - ref.astype(int)).max() <= 1          # rounding of float noise only
    # the ONNX member is the network: decode and encode to float tolerance
    member = members.load_member(ens, 1)
    z = torch.from_numpy(np.random.default_rng(1).normal(size=(7, 3)).astype(np.float32))
    with torch.no_grad():
        np.testing.assert_allclose(member.decode(z).numpy(), vaes[1].decode(z).numpy(), atol=1e-5)
        m_, lv_ = member.encode(torch.from_numpy(x))
    np.testing.assert_allclose(m_.numpy(), mu[1], atol=1e-5)
    np.testing.assert_allclose(lv_.numpy(), logvar[1], atol=1e-5)
    # the per-model metadata is kept in the manifest members and offered as model-table columns
    meta = members.member_metadata(ens)
    assert meta["beta"] == [1.0, 4.0] and meta["seed"] == [11.0, 12.0] and meta["final_loss"] == [3.5, 2.5]
    assert meta["family"] == ["beta-vae", "beta-vae"] and "junk" not in meta
    table = members.member_metadata(ens, numeric_only=True)                  # Analysis.model_table's form
    assert sorted(table) == ["beta", "final_loss", "seed"] and table["beta"].dtype == np.float64
    assert ens.manifest["model"]["family"] == "beta-vae"
    assert ens.manifest["metadata"] == {"note": "trained in my own code"}


def test_export_traversals_yes_on_an_imported_ensemble(outside, tmp_path):
    tmp, vaes, x, mu, logvar, dec_dir, enc_dir = outside
    root = tmp_path / "ens"
    store.import_posteriors(tmp / "post.npz", "fig", root, decoders=dec_dir)
    out = tmp_path / "fig.png"
    assert main(["export", "fig", "--ensembles", str(root), "--cache", str(tmp_path / "c"), "--out", str(out),
                 "--traversals", "yes", "--bootstrap", "2", "--maps", "mds", "--min-samples", "2"]) == 0
    assert out.stat().st_size > 1000
    # the imported final losses are the model table's column (dashboard and CLI tables)
    from vaefrag.analysis import analyze

    a = analyze(root / "fig", n_bootstrap=2, maps=("mds",), min_samples=2, cache_dir=tmp_path / "c")
    assert a.from_cache and a.model_table["final_loss"].tolist() == [3.5, 2.5]


def test_fingerprint_and_spaces_re_encode_with_onnx_encoders(outside, tmp_path, monkeypatch):
    tmp, vaes, x, mu, logvar, dec_dir, enc_dir = outside
    rng = np.random.default_rng(5)
    data = tmp_path / "data.npz"
    np.savez(data, x=rng.random((50, 1, 8, 8)).astype(np.float32))
    root = tmp_path / "ens"
    monkeypatch.setenv("VAEFRAG_ENSEMBLES", str(root))          # the name resolves through the env variable
    assert main(["import", str(tmp / "post.npz"), "--name", "enc", "--decoders", str(dec_dir),
                 "--encoders", str(enc_dir), "--dataset", "npz", "--data-file", str(data)]) == 0
    assert main(["fingerprint", "enc", "--size", "20", "--seed", "2", "--device", "cpu"]) == 0
    ens = store.load_ensemble(root / "enc")
    assert ens.n_points == 20 and ens.has_weights and ens.has_encoders     # the ONNX files were carried over
    new_mu, new_lv = posteriors(vaes, ens.x)
    np.testing.assert_allclose(ens.mu, new_mu, atol=1e-5)
    np.testing.assert_allclose(ens.logvar, new_lv, atol=1e-5)
    from vaefrag.spaces import sample_posteriors

    s_mu, _ = sample_posteriors(ens, 25, seed=3)
    idx = np.sort(np.random.default_rng(3).choice(50, 25, replace=False))
    np.testing.assert_allclose(s_mu, posteriors(vaes, np.load(data)["x"][idx])[0], atol=1e-5)
    assert main(["spaces", "enc", "--sample-size", "25", "--samples", "50", "--no-cache", "--device", "cpu"]) == 0


def test_channels_last_uint8_keras_style_models(tmp_path, capsys):
    """A Keras-shaped model: channels-last images in and out, encoder returning (z_mean, z_log_var, z),
    inputs saved as uint8 0-255 [N, H, W, C]."""
    rng = np.random.default_rng(2)
    x8 = rng.integers(0, 256, (24, 8, 8, 3), dtype=np.uint8)
    x_hwc = x8.astype(np.float32) / 255
    vaes = [TutorialVAE(latents=2, channels=3, channels_last=True, seed=s).eval() for s in (3, 4)]
    mu, logvar = posteriors(vaes, x_hwc)
    dec_dir, enc_dir = export_vaes(vaes, x_hwc, tmp_path)
    np.savez(tmp_path / "k.npz", mu=mu, logvar=logvar, x=x8)
    assert main(["import", str(tmp_path / "k.npz"), "--name", "keras", "--ensembles", str(tmp_path / "e"),
                 "--decoders", str(dec_dir), "--encoders", str(enc_dir)]) == 0
    out = capsys.readouterr().out
    assert "uint8 images scaled" in out and "channels-last images" in out
    ens = store.load_ensemble(tmp_path / "e" / "keras")
    np.testing.assert_allclose(ens.x, np.transpose(x_hwc, (0, 3, 1, 2)), atol=1e-7)
    assert [m["decoder_layout"] for m in ens.manifest["members"]] == ["nhwc", "nhwc"]
    assert [m["encoder_layout"] for m in ens.manifest["members"]] == ["nhwc", "nhwc"]
    grids, _ = traversal.channel_traversals(ens, [(1, 1)], n_values=4, n_rows=2, align=False, seed=0)
    rows = np.sort(np.random.default_rng(0).choice(24, 2, replace=False))
    ref = torch_grid(vaes[1], mu[1, rows], 1, traversal.traversal_values(mu[1, :, 1], 4))
    assert grids[0].shape == ref.shape == (2, 4, 8, 8, 3)
    assert np.abs(grids[0].astype(int) - ref.astype(int)).max() <= 1


def test_static_batch_and_logit_decoders(tmp_path):
    """A legacy export without a dynamic batch axis runs in chunks; a logits decoder gets its sigmoid."""
    rng = np.random.default_rng(3)
    vae = TutorialVAE(latents=2, seed=7).eval()
    x = rng.random((9, 1, 8, 8)).astype(np.float32)
    mu, logvar = posteriors([vae], x)

    class Logits(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.dec = vae.dec

        def forward(self, z):
            return self.dec(z).reshape(-1, 1, 8, 8)

    export(Logits(), torch.zeros(4, 2), tmp_path / "dec" / "d.onnx", dynamo=False, dynamic=False)
    np.savez(tmp_path / "p.npz", mu=mu[0], logvar=logvar[0], x=x)          # one model: [N, L]
    with pytest.raises(EnsembleError, match="not in \\[0, 1\\].*logits"):
        store.import_posteriors(tmp_path / "p.npz", "l", tmp_path / "e", decoders=tmp_path / "dec")
    assert not (tmp_path / "e").exists()
    path = store.import_posteriors(tmp_path / "p.npz", "l", tmp_path / "e", decoders=tmp_path / "dec",
                                   decoder_output="logits")
    member = members.load_member(store.load_ensemble(path), 0)
    z = torch.from_numpy(rng.normal(size=(7, 2)).astype(np.float32))        # 7 rows: chunks of 4, padded
    with torch.no_grad():
        np.testing.assert_allclose(member.decode(z).numpy(), vae.decode(z).numpy(), atol=1e-5)


def test_models_with_different_latent_sizes(tmp_path):
    """Model 1 has 2 latents, model 0 has 3: padded with the prior and a latent_mask; the padding
    carries zero information and traversals of the small model use its own decoder."""
    from vaefrag.measures import compare_channels, split_channels

    rng = np.random.default_rng(4)
    x = rng.random((40, 1, 8, 8)).astype(np.float32)
    big, small = TutorialVAE(latents=3, seed=1).eval(), TutorialVAE(latents=2, seed=2).eval()
    (mu0,), (lv0,) = posteriors([big], x)
    (mu1,), (lv1,) = posteriors([small], x)
    mu = np.stack([mu0, np.c_[mu1, np.full(40, 7.0)]])                      # junk in the padding column
    logvar = np.stack([lv0, np.c_[lv1, np.full(40, -3.0)]])
    mask = np.array([[1, 1, 1], [1, 1, 0]], bool)
    dec_dir, _ = export_vaes([big, small], x, tmp_path, encoders=False)
    np.savez(tmp_path / "p.npz", mu=mu, logvar=logvar, x=x, latent_mask=mask)
    ens = store.load_ensemble(store.import_posteriors(tmp_path / "p.npz", "mixed", tmp_path / "e", decoders=dec_dir))
    assert ens.mu[1, :, 2].tolist() == [0.0] * 40 and ens.logvar[1, :, 2].tolist() == [0.0] * 40
    assert ens.manifest["members"][1]["latents_used"] == [0, 1]
    res = compare_channels(*split_channels(ens.mu, ens.logvar))
    assert res.info[5] == pytest.approx(0.0, abs=1e-5)                      # the prior: BC = 1 everywhere
    alone = compare_channels(*split_channels(mu1[None], lv1[None]))        # the small model by itself
    np.testing.assert_allclose(res.info[3:5], alone.info, rtol=1e-6)
    assert res.informative[3] and not res.informative[5]
    grids, _ = traversal.channel_traversals(ens, [(1, 0)], n_values=4, n_rows=2, align=False, seed=1)
    rows = np.sort(np.random.default_rng(1).choice(40, 2, replace=False))
    ref = torch_grid(small, mu1[rows], 0, traversal.traversal_values(mu1[:, 0], 4))
    assert np.abs(grids[0].astype(int) - ref.astype(int)).max() <= 1


def _nothing_written(root):
    return not root.exists() or list(root.iterdir()) == []


def test_bad_onnx_inputs_name_the_file_and_write_nothing(outside, tmp_path):
    tmp, vaes, x, mu, logvar, dec_dir, enc_dir = outside
    npz = tmp / "post.npz"
    root = tmp_path / "e"

    def refuse(match, **kw):
        with pytest.raises(EnsembleError, match=match):
            store.import_posteriors(npz, "bad", root, **kw)
        assert _nothing_written(root)

    # a file that is not a model
    junk = tmp_path / "junk"
    junk.mkdir()
    (junk / "a.onnx").write_text("this is not a model")
    (junk / "b.onnx").write_bytes((dec_dir / "model_01.onnx").read_bytes())
    refuse(r"junk/a\.onnx: not a loadable ONNX model", decoders=junk)
    # a wrong count of files
    one = tmp_path / "one"
    one.mkdir()
    (one / "a.onnx").write_bytes((dec_dir / "model_00.onnx").read_bytes())
    refuse(r"one: holds 1 \.onnx files, expected one per model \(K=2\)", decoders=one)
    # input shape: a decoder of 2 latents for a model of 3
    wrong_in = tmp_path / "wrong_in"
    for k in range(2):
        export(Method(TutorialVAE(latents=2), "decode"), torch.zeros(2, 2), wrong_in / f"{k}.onnx", dynamo=False)
    refuse(r"wrong_in/0\.onnx: decoder input .* expected \[B, 3\]", decoders=wrong_in)
    # output shape: 16 x 16 images for 8 x 8 inputs
    wrong_out = tmp_path / "wrong_out"
    for k in range(2):
        export(Method(TutorialVAE(latents=3, side=16), "decode"), torch.zeros(2, 3), wrong_out / f"{k}.onnx",
               dynamo=False)
    refuse(r"wrong_out/0\.onnx: decoder output \[B, 1, 16, 16\] does not fit the inputs 'x' \[N, 1, 8, 8\]",
           decoders=wrong_out)
    # encoders in the wrong order (model 1's file sorts first)
    swapped = tmp_path / "swapped"
    swapped.mkdir()
    for f in enc_dir.iterdir():                  # the new exporter writes tensors beside: model_0K.onnx.data
        (swapped / f.name.replace("model_01.onnx", "a.onnx").replace("model_00.onnx", "b.onnx")
         if f.suffix == ".onnx" else swapped / f.name).write_bytes(f.read_bytes())
    refuse(r"swapped/a\.onnx: encodes the inputs 'x' to means that differ .* model order", encoders=swapped)
    # an encoder given as decoder: its input does not take latents
    refuse(r"model_00\.onnx: decoder input .* expected \[B, 3\]", decoders=enc_dir)


def test_npz_intent_checks(tmp_path, rng):
    mu = rng.normal(size=(2, 10, 3)).astype(np.float32)
    lv = np.zeros_like(mu)
    root = tmp_path / "e"
    # values overflowing float32: refused before anything is written
    np.savez(tmp_path / "big.npz", mu=mu.astype(np.float64) * 1e39, logvar=lv)
    with pytest.raises(EnsembleError, match=r"big\.npz: field 'mu' has values that overflow float32"):
        store.import_posteriors(tmp_path / "big.npz", "big", root)
    np.savez(tmp_path / "bigx.npz", mu=mu, logvar=lv, x=np.full((10, 4), 1e300))
    with pytest.raises(EnsembleError, match=r"bigx\.npz: field 'x' has values that overflow float32"):
        store.import_posteriors(tmp_path / "bigx.npz", "big", root)
    assert _nothing_written(root)
    # an image array whose channel axis cannot be told
    np.savez(tmp_path / "axis.npz", mu=mu, logvar=lv, x=rng.random((10, 6, 6, 6)))
    with pytest.raises(EnsembleError, match=r"axis\.npz: field 'x' has shape \(10, 6, 6, 6\): cannot tell the channel axis"):
        store.import_posteriors(tmp_path / "axis.npz", "axis", root)
    # ... unless the layout is given
    x = rng.random((10, 6, 6, 6)).astype(np.float32)
    np.savez(tmp_path / "axis.npz", mu=mu, logvar=lv, x=x)
    e = store.load_ensemble(store.import_posteriors(tmp_path / "axis.npz", "axis", root, x_layout="nhwc"))
    np.testing.assert_array_equal(e.x, np.transpose(x, (0, 3, 1, 2)))
    # a bad latent mask
    np.savez(tmp_path / "mask.npz", mu=mu, logvar=lv, latent_mask=np.ones((2, 4), bool))
    with pytest.raises(EnsembleError, match=r"mask\.npz: field 'latent_mask' must be bool \[K=2, L=3\]"):
        store.import_posteriors(tmp_path / "mask.npz", "m", root)
    assert [p.name for p in root.iterdir()] == ["axis"]
    manifest = json.loads((root / "axis" / "ensemble.json").read_text())
    assert any("channels-last" in n for n in manifest["source"]["notes"])
