"""Sweeps on disk: `sweep train` trains one ensemble per value on shared points (resumable) and
writes sweep.json; `sweep make` gathers existing ensembles and refuses ones on different points."""
import json

import numpy as np
import pytest

from vaefrag import store
from vaefrag.cli import main
from vaefrag.sweep import SweepError, load_sweep, make_sweep

TINY = ["--dataset", "digits", "--models", "2", "--latents", "2", "--steps", "3", "--width", "4", "--hidden", "8",
        "--fingerprint-size", "12", "--family", "beta-vae"]


def test_sweep_train_writes_members_on_shared_points_and_resumes(tmp_path, capsys):
    out = tmp_path / "sw"
    assert main(["sweep", "train", *TINY, "--beta", "4,1", "--checkpoints", "3", "--out", str(out)]) == 0
    sw = load_sweep(out)
    assert sw.key == "beta" and sw.values == [1.0, 4.0]
    assert [p.name for p in sw.paths] == ["beta-1", "beta-4"]
    a, b = sw.load(0), sw.load(1)
    assert a.manifest["model"]["hyperparameters"]["beta"] == 1.0 and b.manifest["recipe"]["hyperparameters"]["beta"] == 4.0
    np.testing.assert_array_equal(a.x, b.x)
    assert store.load_checkpoints(a)["steps"].tolist() == [1, 2, 3]
    assert not np.allclose(a.mu, b.mu)       # different beta, different training
    # rerun: nothing retrained (the members' files are untouched)
    stamp = (sw.paths[0] / "posteriors.npz").stat().st_mtime_ns
    assert main(["sweep", "train", *TINY, "--beta", "1,4", "--checkpoints", "3", "--out", str(out)]) == 0
    assert (sw.paths[0] / "posteriors.npz").stat().st_mtime_ns == stamp


def test_sweep_train_into_an_ensembles_dir_and_bad_checkpoints(tmp_path, capsys):
    out, ens = tmp_path / "sweeps" / "sw", tmp_path / "ensembles"
    assert main(["sweep", "train", *TINY, "--values", "1,2", "--out", str(out), "--ensembles", str(ens)]) == 0
    sw = load_sweep(out)
    assert [p.resolve() for p in sw.paths] == [(ens / "sw-beta-1").resolve(), (ens / "sw-beta-2").resolve()]
    assert [p.name for p in store.list_ensembles(ens)] == ["sw-beta-1", "sw-beta-2"]
    assert main(["sweep", "train", *TINY, "--values", "1,2", "--checkpoints", "9", "--out", str(tmp_path / "x")]) == 2
    assert "checkpoints (9) must not exceed steps (3)" in capsys.readouterr().err
    assert not (tmp_path / "x" / "sweep.json").exists()


def test_sweep_make_and_its_errors(tmp_path, capsys):
    from vaefrag.training import train_ensemble

    kw = dict(dataset="digits", models=2, latents=2, steps=2, batch_size=8, width=4, hidden=8, fingerprint_size=12)
    e1 = train_ensemble(tmp_path / "e1", **kw, hyperparameters={"beta": 1.0})
    e2 = train_ensemble(tmp_path / "e2", **kw, hyperparameters={"beta": 2.0})
    other = train_ensemble(tmp_path / "e3", **{**kw, "fingerprint_seed": 5}, hyperparameters={"beta": 3.0})
    assert main(["sweep", "make", str(tmp_path / "sw"), str(e2), str(e1)]) == 0
    sw = load_sweep(tmp_path / "sw")
    assert sw.values == [1.0, 2.0] and [p.resolve() for p in sw.paths] == [e1.resolve(), e2.resolve()]
    # different fingerprint points: refused, nothing written
    assert main(["sweep", "make", str(tmp_path / "bad"), str(e1), str(other)]) == 2
    err = capsys.readouterr().err
    assert "must share their fingerprint points" in err and "differ" in err
    assert not (tmp_path / "bad" / "sweep.json").exists()
    with pytest.raises(SweepError, match="does not exist"):
        make_sweep(tmp_path / "bad", [e1, tmp_path / "nope"], "beta")
    with pytest.raises(SweepError, match="must differ"):
        make_sweep(tmp_path / "bad", [e1, e1], "beta")
    # a member removed after the sweep was made: one clear error naming it
    obj = json.loads((tmp_path / "sw" / "sweep.json").read_text())
    obj["members"][1]["ensemble"] = "../gone"
    (tmp_path / "sw" / "sweep.json").write_text(json.dumps(obj))
    with pytest.raises(SweepError, match=r"members\[1\].ensemble.*missing"):
        load_sweep(tmp_path / "sw")
