"""Training: batched members train exactly as alone, reloaded members reproduce their posteriors,
interrupted runs leave nothing half-written and resume, the CLI reproduces a recipe."""
import json

import numpy as np
import pytest
import torch

from vaefrag import members, store
from vaefrag.cli import main
from vaefrag.datasets import make_dataset
from vaefrag.models import EnsembleVAE, make_objective, make_spec
from vaefrag.training import train_ensemble, train_group

TINY = dict(dataset="digits", models=3, latents=2, steps=4, batch_size=8, width=4, hidden=8, fingerprint_size=16)


@pytest.mark.parametrize("name,params", [("digits", {}), ("ring", {"n_points": 64})])
def test_batched_training_equals_one_by_one(name, params):
    ds = make_dataset(name, **params)
    spec = make_spec(ds.shape, 2, width=4, hidden=8, likelihood=ds.likelihood)
    obj = make_objective("beta-tcvae")
    seeds = [11, 12]
    big = EnsembleVAE(spec, 2)
    big.init_members(seeds)
    lb = train_group(big, obj, ds, seeds, steps=3, batch_size=8, lr=1e-2)
    for k, s in enumerate(seeds):
        alone = EnsembleVAE(spec, 1)
        alone.init_members([s])
        la = train_group(alone, obj, ds, [s], steps=3, batch_size=8, lr=1e-2)
        assert la[0] == pytest.approx(lb[k], rel=1e-4)
        for pname, t in alone.member_state(0).items():
            torch.testing.assert_close(big.member_state(k)[pname], t, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("decoder", ["mirror", "broadcast"])
def test_train_ensemble_and_reload(tmp_path, decoder):
    path = train_ensemble(tmp_path / "ens", **TINY, decoder=decoder, weights_dtype="float16", group_size=2)
    e = store.load_ensemble(path)
    assert (e.n_models, e.n_points, e.n_latents) == (3, 16, 2)
    assert e.factor_names == ["digit"] and e.factors.shape == (16, 1) and e.x.shape == (16, 1, 8, 8)
    m = e.manifest
    assert m["recipe"]["models"] == 3 and m["recipe"]["weights_dtype"] == "float16"
    assert m["recipe"]["decoder"] == m["model"]["spec"]["decoder"] == decoder
    assert [mm["seed"] for mm in m["members"]] == [0, 1, 2]
    assert all(np.isfinite(mm["final_loss"]) for mm in m["members"])
    for k in range(3):
        member = members.load_member(e, k)
        with torch.no_grad():
            mu, lv = member.encode(torch.from_numpy(e.x))
            out = member.decode(mu)
        np.testing.assert_allclose(mu.numpy(), e.mu[k], rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(lv.numpy(), e.logvar[k], rtol=1e-5, atol=1e-5)
        assert out.shape == (16, 1, 8, 8) and out.min() >= 0 and out.max() <= 1
    # the fingerprint inputs are the dataset items of the seeded sample
    ds = make_dataset("digits")
    idx = np.sort(np.random.default_rng(0).choice(len(ds), 16, replace=False))
    np.testing.assert_array_equal(e.x, ds.get(idx)[0])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ens"]


def test_interrupted_training_resumes(tmp_path):
    class Stop(Exception):
        pass

    def stop_after_first_group(done, total, message=""):
        if done == 2:
            raise Stop

    with pytest.raises(Stop):
        train_ensemble(tmp_path / "ens", **TINY, group_size=2, progress=stop_after_first_group)
    assert sorted(p.name for p in tmp_path.iterdir()) == [".ens.partial"]
    assert store.list_ensembles(tmp_path) == []
    done = sorted(p.name for p in (tmp_path / ".ens.partial").glob("member_*.json"))
    assert done == ["member_000.json", "member_001.json"]
    kept = np.load(tmp_path / ".ens.partial" / "member_001.npz")["mu"]
    with pytest.raises(ValueError, match="different recipe"):
        train_ensemble(tmp_path / "ens", **{**TINY, "steps": 5}, group_size=2)
    calls = []
    path = train_ensemble(tmp_path / "ens", **TINY, group_size=2, progress=lambda d, t, m="": calls.append(d))
    assert calls[0] == 2  # resumed with two members done
    e = store.load_ensemble(path)
    np.testing.assert_array_equal(e.mu[1], kept)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ens"]
    # the same recipe in one go gives the same ensemble
    again = store.load_ensemble(train_ensemble(tmp_path / "again", **TINY, group_size=3))
    np.testing.assert_allclose(again.mu, e.mu, rtol=1e-4, atol=1e-4)


def test_cli_train_recipe_fingerprint_import(tmp_path, capsys):
    out = tmp_path / "a"
    args = ["train", "--dataset", "ring", "--models", "2", "--latents", "1", "--steps", "3", "--batch-size", "8",
            "--hidden", "4", "--fingerprint-size", "12", "--family", "annealed-vae", "--capacity", "3",
            "--device", "cpu", "--out", str(out)]
    assert main(args) == 0
    m = json.loads((out / "ensemble.json").read_text())
    assert m["model"]["family"] == "annealed-vae" and m["model"]["hyperparameters"]["capacity"] == 3
    assert main(args) == 2  # exists, no --overwrite
    assert "already exists" in capsys.readouterr().err
    # the recorded recipe reproduces the ensemble
    assert main(["train", "--recipe", str(out), "--out", str(tmp_path / "b"), "--device", "cpu"]) == 0
    a, b = store.load_ensemble(out), store.load_ensemble(tmp_path / "b")
    np.testing.assert_allclose(a.mu, b.mu, rtol=1e-5, atol=1e-6)
    # a recipe recorded before the decoder option existed means the mirror decoder
    old = json.loads((out / "ensemble.json").read_text())
    assert old["recipe"].pop("decoder") == "mirror"
    (tmp_path / "old.json").write_text(json.dumps(old))
    assert main(["train", "--recipe", str(tmp_path / "old.json"), "--out", str(tmp_path / "c"), "--device", "cpu"]) == 0
    np.testing.assert_allclose(store.load_ensemble(tmp_path / "c").mu, a.mu, rtol=1e-5, atol=1e-6)
    # a new fingerprint sample, re-encoded by the stored members
    assert main(["fingerprint", str(out), "--size", "20", "--seed", "3", "--device", "cpu"]) == 0
    c = store.load_ensemble(out)
    assert c.n_points == 20 and c.manifest["fingerprint"] == {"size": 20, "seed": 3}
    with torch.no_grad():
        mu = members.load_member(c, 1).encode(torch.from_numpy(c.x))[0].numpy()
    np.testing.assert_allclose(mu, c.mu[1], atol=1e-6)
    # import
    src = tmp_path / "post.npz"
    np.savez(src, mu=c.mu, logvar=c.logvar)
    assert main(["import", str(src), "--name", "imp", "--root", str(tmp_path)]) == 0
    assert store.load_ensemble(tmp_path / "imp").n_models == 2
    np.savez(src, mu=c.mu, logvar=c.logvar[:, :3])
    assert main(["import", str(src), "--name", "imp2", "--root", str(tmp_path)]) == 2
    assert "post.npz" in capsys.readouterr().err
    assert not (tmp_path / "imp2").exists()


def test_cli_rejects_unknown_choices(tmp_path, capsys):
    for flag, value in (("--dataset", "imagenet"), ("--family", "vqvae")):
        assert main(["train", flag, value, "--out", str(tmp_path / "x")]) == 2   # argparse's status, returned
        assert "invalid choice" in capsys.readouterr().err
    assert main(["train", "--dataset", "npz", "--out", str(tmp_path / "x")]) == 2
    assert "--data-file" in capsys.readouterr().err
    assert main(["train", "--dataset", "digits", "--models", "0", "--out", str(tmp_path / "x")]) == 2
    assert not any(tmp_path.iterdir())


def test_shards_share_the_work(tmp_path):
    out = tmp_path / "ens"
    assert train_ensemble(out, **TINY, group_size=1, shard=(1, 2)) is None
    partial = tmp_path / ".ens.partial"
    assert sorted(p.name for p in partial.glob("member_*.json")) == ["member_001.json"]
    assert train_ensemble(out, **TINY, group_size=1, shard=(0, 2)) is None
    assert len(list(partial.glob("member_*.json"))) == 3
    e = store.load_ensemble(train_ensemble(out, **TINY, group_size=1))
    whole = store.load_ensemble(train_ensemble(tmp_path / "whole", **TINY, group_size=3))
    np.testing.assert_allclose(e.mu, whole.mu, rtol=1e-4, atol=1e-4)
    with pytest.raises(ValueError, match="shard"):
        train_ensemble(tmp_path / "x", **TINY, shard=(2, 2))


def test_checkpoints_store_posteriors_during_training(tmp_path):
    """Checkpoint posteriors equal an independent re-training stopped at that step, in any group size."""
    from vaefrag.training import checkpoint_steps, encode_all, member_seeds

    path = train_ensemble(tmp_path / "ens", **{**TINY, "steps": 6}, group_size=2, checkpoints=3)
    e = store.load_ensemble(path)
    ck = store.load_checkpoints(e)
    assert ck["steps"].tolist() == [2, 4, 6] == checkpoint_steps(6, 3)
    assert ck["mu"].shape == ck["logvar"].shape == (3, 3, 16, 2) and ck["mu"].dtype == np.float32
    ds = make_dataset("digits")
    spec = make_spec(ds.shape, 2, width=4, hidden=8, likelihood=ds.likelihood)
    obj = make_objective("beta-vae")
    for k in (0, 2):
        for c, s in enumerate((2, 4)):
            net = EnsembleVAE(spec, 1)
            seed = member_seeds(0, 3)[k]
            net.init_members([seed])
            train_group(net, obj, ds, [seed], steps=s, batch_size=8, lr=1e-3)
            mu, lv = encode_all(net, e.x)
            np.testing.assert_allclose(ck["mu"][c, k], mu[0], rtol=1e-4, atol=1e-5)
            np.testing.assert_allclose(ck["logvar"][c, k], lv[0], rtol=1e-4, atol=1e-5)
    # an ensemble without checkpoints has none; a checkpoint count above the steps is one clear error
    assert store.load_checkpoints(train_ensemble(tmp_path / "plain", **TINY)) is None
    with pytest.raises(ValueError, match=r"checkpoints \(5\) must not exceed steps \(4\)"):
        train_ensemble(tmp_path / "bad", **TINY, checkpoints=5)
    assert not (tmp_path / "bad").exists() and not (tmp_path / ".bad.partial").exists()


def test_cli_train_checkpoints(tmp_path, capsys):
    out = tmp_path / "ens"
    assert main(["train", "--dataset", "digits", "--models", "2", "--latents", "2", "--steps", "3", "--width", "4",
                 "--hidden", "8", "--fingerprint-size", "12", "--checkpoints", "3", "--out", str(out)]) == 0
    assert store.load_checkpoints(out)["steps"].tolist() == [1, 2, 3]
    assert main(["train", "--dataset", "digits", "--steps", "3", "--checkpoints", "4", "--out",
                 str(tmp_path / "x")]) != 0
    assert "checkpoints (4) must not exceed steps (3)" in capsys.readouterr().err
