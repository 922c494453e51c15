"""One ensembles root for every command, and names or paths wherever an ensemble is asked for."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from vaefrag import store
from vaefrag.cli import main

REPO = Path(__file__).resolve().parents[1]


def write(root, name, rng, k=2, n=30, l=2):
    mu = rng.normal(size=(k, n, l)).astype(np.float32)
    return store.write_ensemble(Path(root) / name, {}, mu, np.full_like(mu, -2.0))


def test_ensembles_root_precedence(tmp_path, monkeypatch):
    monkeypatch.delenv(store.ENSEMBLES_ENV, raising=False)
    monkeypatch.chdir(tmp_path)
    # outside a checkout's directory: the checkout vaefrag runs from (an editable install) ...
    assert store.ensembles_root() == REPO / "data" / "ensembles"
    # ... else the user's data directory
    monkeypatch.setattr(store, "__file__", str(tmp_path / "site" / "vaefrag" / "store.py"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    assert store.ensembles_root() == tmp_path / "xdg" / "vaefrag" / "ensembles"
    (tmp_path / "data" / "ensembles").mkdir(parents=True)                 # a checkout's layout in the cwd
    assert store.ensembles_root() == Path("data") / "ensembles"
    monkeypatch.setenv(store.ENSEMBLES_ENV, str(tmp_path / "env"))
    assert store.ensembles_root() == tmp_path / "env"
    assert store.ensembles_root(tmp_path / "given") == tmp_path / "given"


def test_resolve_names_and_paths(tmp_path, rng):
    root = tmp_path / "root"
    path = write(root, "alpha", rng)
    assert store.resolve_ensemble("alpha", root) == path
    assert store.resolve_ensemble(str(path)) == path                       # a path, from anywhere
    assert store.resolve_ensemble(str(path), tmp_path / "elsewhere") == path
    with pytest.raises(FileNotFoundError, match=r"beta is neither an ensemble directory nor the name of one under "
                                                r".*root \(there: alpha\)"):
        store.resolve_ensemble("beta", root)
    (root / "plain").mkdir()
    with pytest.raises(FileNotFoundError, match="plain is a directory without ensemble.json"):
        store.resolve_ensemble(str(root / "plain"))
    assert store.output_path("new", root) == root / "new"
    assert store.output_path("./new", root) == Path("./new")
    assert store.output_path(str(tmp_path / "x" / "new"), root) == tmp_path / "x" / "new"


def test_every_command_takes_names_under_one_root(tmp_path, rng, monkeypatch, capsys):
    root = tmp_path / "root"
    write(root, "alpha", rng)
    write(root, "beta", rng)
    fast = ["--bootstrap", "0", "--maps", "none", "--no-cache", "--min-samples", "2"]
    assert main(["analyze", "alpha", "--ensembles", str(root), *fast]) == 0
    monkeypatch.setenv(store.ENSEMBLES_ENV, str(root))
    monkeypatch.chdir(tmp_path)
    assert main(["analyze", "beta", *fast]) == 0
    assert main(["spaces", "alpha", "--samples", "20", "--no-cache", "--device", "cpu"]) == 0
    assert main(["compare", "alpha", "beta", "--same-points", *fast]) == 0
    capsys.readouterr()
    assert main(["spaces", "gamma", "--samples", "20", "--no-cache"]) == 2
    err = capsys.readouterr().err
    assert "gamma is neither an ensemble directory nor the name of one under" in err and "alpha, beta" in err
    # import writes under the same root, and `serve` lists it
    np.savez(tmp_path / "p.npz", mu=rng.normal(size=(2, 10, 3)), logvar=np.zeros((2, 10, 3)))
    assert main(["import", str(tmp_path / "p.npz"), "--name", "gamma"]) == 0
    assert (root / "gamma" / "ensemble.json").is_file()
    from vaefrag.cli import build_parser

    for command in ("analyze", "export", "spaces", "fuse", "fingerprint", "train", "compare", "import", "serve"):
        parser = build_parser(only=command)
        sub = next(a for a in parser._actions if a.dest == "command").choices[command]
        assert "--ensembles" in sub._option_string_actions, command
