"""The on-disk ensemble format: round trip, atomic writes, validation of every bad input."""
import json

import numpy as np
import pytest
import torch

from vaefrag import members, store
from vaefrag.models import EnsembleVAE, make_spec
from vaefrag.store import EnsembleError


def posteriors(rng, k=3, n=20, l=4):
    return rng.normal(size=(k, n, l)).astype(np.float32), rng.normal(size=(k, n, l)).astype(np.float32)


def leftovers(root):
    return sorted(p.name for p in root.iterdir())


def test_round_trip(tmp_path, rng):
    mu, lv = posteriors(rng)
    x = rng.random((20, 1, 8, 8)).astype(np.float32)
    f = rng.integers(0, 3, (20, 2))
    path = store.write_ensemble(tmp_path / "e", {"dataset": {"shape": [1, 8, 8]}}, mu, lv, x=x, factors=f,
                                factor_names=["a", "b"])
    e = store.load_ensemble(path)
    np.testing.assert_array_equal(e.mu, mu)
    np.testing.assert_array_equal(e.logvar, lv)
    np.testing.assert_array_equal(e.x, x)
    np.testing.assert_array_equal(e.factors, f)
    assert e.factor_names == ["a", "b"]
    assert (e.name, e.n_models, e.n_points, e.n_latents, e.image_shape) == ("e", 3, 20, 4, (1, 8, 8))
    assert not e.has_weights
    assert e.manifest["format_version"] == store.FORMAT_VERSION
    with pytest.raises(FileExistsError):
        store.write_ensemble(path, {}, mu, lv)
    store.write_ensemble(path, {}, mu[:2], lv[:2], overwrite=True)
    assert store.load_ensemble(path).n_models == 2
    assert leftovers(tmp_path) == ["e"]


def test_list_ensembles_and_safe_name(tmp_path, rng):
    mu, lv = posteriors(rng)
    for name in ("b", "a"):
        store.write_ensemble(tmp_path / name, {}, mu, lv)
    (tmp_path / ".a.partial").mkdir()
    (tmp_path / "empty").mkdir()
    assert [p.name for p in store.list_ensembles(tmp_path)] == ["a", "b"]
    assert store.list_ensembles(tmp_path / "absent") == []
    assert store.safe_name("my run/1") == "my-run-1"
    for bad in ("..", "../x", "", "/", ".hidden"):
        with pytest.raises(ValueError, match="name"):
            store.safe_name(bad)


def test_failed_write_leaves_nothing(tmp_path, rng, monkeypatch):
    mu, lv = posteriors(rng)

    def boom(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(store.np, "savez_compressed", boom)
    with pytest.raises(OSError):
        store.write_ensemble(tmp_path / "e", {}, mu, lv, x=rng.random((20, 3)))
    assert leftovers(tmp_path) == []
    # a failed overwrite keeps the old ensemble intact
    monkeypatch.undo()
    store.write_ensemble(tmp_path / "e", {}, mu, lv)
    monkeypatch.setattr(store.np, "savez_compressed", boom)
    with pytest.raises(OSError):
        store.write_ensemble(tmp_path / "e", {}, mu[:1], lv[:1], x=rng.random((20, 3)), overwrite=True)
    assert leftovers(tmp_path) == ["e"]
    assert store.load_ensemble(tmp_path / "e").n_models == 3


def test_write_rejects_bad_arrays(tmp_path, rng):
    mu, lv = posteriors(rng)
    with pytest.raises(EnsembleError, match="same shape"):
        store.write_ensemble(tmp_path / "e", {}, mu, lv[:, :5])
    bad = mu.copy()
    bad[0, 0, 0] = np.inf
    with pytest.raises(EnsembleError, match="'mu' has non-finite"):
        store.write_ensemble(tmp_path / "e", {}, bad, lv)
    with pytest.raises(EnsembleError, match="'x' has 5 items"):
        store.write_ensemble(tmp_path / "e", {}, mu, lv, x=np.zeros((5, 3)))
    with pytest.raises(EnsembleError, match="'factors' has 3 rows"):
        store.write_ensemble(tmp_path / "e", {}, mu, lv, factors=np.zeros((3, 1), int))
    with pytest.raises(EnsembleError, match="members"):
        store.write_ensemble(tmp_path / "e", {"members": [{"id": 0}]}, mu, lv)
    assert leftovers(tmp_path) == []


@pytest.fixture
def ens(tmp_path, rng):
    mu, lv = posteriors(rng)
    return store.write_ensemble(tmp_path / "e", {}, mu, lv, x=rng.random((20, 2)), factors=rng.integers(0, 2, (20, 1)))


def test_future_format_version_and_bad_manifest(ens):
    m = json.loads((ens / "ensemble.json").read_text())
    (ens / "ensemble.json").write_text(json.dumps({**m, "format_version": store.FORMAT_VERSION + 1}))
    with pytest.raises(EnsembleError, match=r"ensemble\.json: field 'format_version' is 2, newer"):
        store.load_ensemble(ens)
    (ens / "ensemble.json").write_text(json.dumps({**m, "format_version": "1"}))
    with pytest.raises(EnsembleError, match="format_version"):
        store.load_ensemble(ens)
    (ens / "ensemble.json").write_text("{not json")
    with pytest.raises(EnsembleError, match=r"ensemble\.json: not valid JSON"):
        store.load_ensemble(ens)
    (ens / "ensemble.json").write_text(json.dumps({**m, "members": m["members"][:2]}))
    with pytest.raises(EnsembleError, match="'members' lists 2 models"):
        store.load_ensemble(ens)
    (ens / "ensemble.json").write_text(json.dumps({**m, "members": [{"weights": "../../etc/x"}] * 3}))
    with pytest.raises(EnsembleError, match=r"members\[0\]\.weights"):
        store.load_ensemble(ens)
    (ens / "ensemble.json").unlink()
    with pytest.raises(FileNotFoundError, match="manifest"):
        store.load_ensemble(ens)


def test_corrupt_truncated_and_bad_npz(ens, rng):
    post = ens / "posteriors.npz"
    good = post.read_bytes()
    post.write_bytes(good[: len(good) // 2])
    with pytest.raises(EnsembleError, match=r"posteriors\.npz: not a readable npz"):
        store.load_ensemble(ens)
    post.write_bytes(rng.bytes(300))
    with pytest.raises(EnsembleError, match=r"posteriors\.npz"):
        store.load_ensemble(ens)
    np.savez(post, mu=np.zeros((3, 20, 4), np.float32))
    with pytest.raises(EnsembleError, match="missing key 'logvar'"):
        store.load_ensemble(ens)
    np.savez(post, mu=np.zeros((3, 20, 4)), logvar=np.full((3, 20, 4), np.nan))
    with pytest.raises(EnsembleError, match="'logvar' has non-finite"):
        store.load_ensemble(ens)
    np.savez(post, mu=np.array([None] * 3, dtype=object), logvar=np.zeros((3, 20, 4)))
    with pytest.raises(EnsembleError, match="pickle"):
        store.load_ensemble(ens)
    np.savez(post, mu=np.zeros((3, 20, 5)), logvar=np.zeros((3, 20, 5)))
    with pytest.raises(EnsembleError, match="'latents' is 4"):
        store.load_ensemble(ens)
    np.savez(post, mu=np.zeros((3, 20, 4)), logvar=np.zeros((3, 20, 4)))
    assert store.load_ensemble(ens).n_points == 20
    np.savez(ens / "fingerprint.npz", x=np.zeros((19, 2)))
    with pytest.raises(EnsembleError, match=r"fingerprint\.npz: field 'x' has 19 items"):
        store.load_ensemble(ens)


def test_import_posteriors(tmp_path, rng):
    mu, lv = posteriors(rng, k=1)
    src = tmp_path / "in.npz"
    np.savez(src, mu=mu[0], logvar=lv[0], x=rng.random((20, 8, 8)), factors=rng.integers(0, 4, (20, 2)),
             factor_names=np.array(["p", "q"]))
    root = tmp_path / "root"
    path = store.import_posteriors(src, "my import", root)
    assert path == root / "my-import"
    e = store.load_ensemble(path)
    assert (e.n_models, e.n_points, e.n_latents) == (1, 20, 4)
    np.testing.assert_allclose(e.mu[0], mu[0])
    assert e.x.shape == (20, 1, 8, 8) and e.factor_names == ["p", "q"] and not e.has_weights
    with pytest.raises(EnsembleError, match="model.spec"):
        members.load_member(e, 0)
    bad = {
        "shapes.npz": dict(mu=mu, logvar=lv[:, :3]),
        "keys.npz": dict(mu=mu),
        "finite.npz": dict(mu=mu * np.nan, logvar=lv),
        "xrows.npz": dict(mu=mu, logvar=lv, x=np.zeros((3, 2))),
        "dims.npz": dict(mu=np.zeros(5), logvar=np.zeros(5)),
    }
    for name, arrays in bad.items():
        np.savez(tmp_path / name, **arrays)
        with pytest.raises(EnsembleError, match=name):
            store.import_posteriors(tmp_path / name, name[:-4], root)
    with pytest.raises(FileNotFoundError):
        store.import_posteriors(tmp_path / "absent.npz", "x", root)
    assert leftovers(root) == ["my-import"]


def test_load_member_is_strict(tmp_path, rng):
    spec = make_spec([3], 2, hidden=4, likelihood="gaussian")
    net = EnsembleVAE(spec, 2)
    net.init_members([0, 1])
    x = rng.normal(size=(10, 3)).astype(np.float32)
    with torch.no_grad():
        mu, lv = net.encode(torch.from_numpy(x))
    mu, lv = mu.transpose(0, 1).numpy(), lv.transpose(0, 1).numpy()
    manifest = {"model": {"family": "beta-vae", "spec": spec}}
    path = store.write_ensemble(tmp_path / "e", manifest, mu, lv, x=x, weights=[net.member_state(k) for k in range(2)])
    e = store.load_ensemble(path)
    assert e.has_weights
    m = members.load_member(e, 1)
    with torch.no_grad():
        np.testing.assert_allclose(m.encode(torch.from_numpy(x))[0].numpy(), mu[1], atol=1e-6)
    with pytest.raises(ValueError, match="member index"):
        members.load_member(e, 2)
    # weights of another architecture are rejected, not silently half-loaded
    other = EnsembleVAE(make_spec([3], 2, hidden=5, likelihood="gaussian"), 1)
    store.write_ensemble(tmp_path / "f", manifest, mu, lv, weights=[other.member_state(0)] * 2)
    with pytest.raises(EnsembleError, match="shape"):
        members.load_member(tmp_path / "f", 0)
    (path / "members" / "member_000.safetensors").write_bytes(b"garbage")
    with pytest.raises(EnsembleError, match=r"member_000\.safetensors"):
        members.load_member(e, 0)
