"""Kill test of `store.write_ensemble`: a writer process dies at every rename of a write and of an
overwrite (``VAEFRAG_CRASH_AT``: os._exit at that step), with the atomic exchange and with the
two-rename fallback of file systems without one. After each death a load finds the old or the new
ensemble (compared with what each write was given), never nothing; the next listing or write
removes the dead writer's temporary directories.
"""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from reliability import REPO
from vaefrag import store

WRITER = """
import sys, numpy as np
from vaefrag import store
if sys.argv[3] == "fallback":
    store._rename_exchange = lambda a, b: False
v = float(sys.argv[2])
store.write_ensemble(sys.argv[1], {{}}, np.full((2, 5, 3), v, np.float32), np.zeros((2, 5, 3), np.float32),
                     overwrite=True)
"""


def _write(path, value: float, mode: str, crash: str | None) -> int:
    env = {"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"}
    if crash:
        env[store.CRASH_ENV] = crash
    done = subprocess.run([sys.executable, "-c", WRITER.format(), str(path), str(value), mode], env=env,
                          capture_output=True, text=True, timeout=120)
    assert "Traceback" not in done.stderr, done.stderr
    return done.returncode


def _value(path) -> float:
    ens = store.load_ensemble(path)
    assert ens.mu.shape == (2, 5, 3) and np.all(ens.mu == ens.mu.flat[0])
    return float(ens.mu.flat[0])


def _temporaries(root) -> list[str]:
    return sorted(p.name for p in root.iterdir() if p.name.startswith("."))


@pytest.mark.parametrize("mode", ["exchange", "fallback"])
def test_a_writer_killed_at_any_rename_leaves_old_or_new(tmp_path, mode):
    path = tmp_path / "ens"
    steps = ["before-swap", "after-swap"] + (["between-renames"] if mode == "fallback" else [])
    # a first write killed before its rename leaves nothing that loads, and nothing that blocks
    assert _write(path, 1.0, mode, "before-swap") == 97
    with pytest.raises(FileNotFoundError):
        store.load_ensemble(path)
    assert _write(path, 1.0, mode, None) == 0
    assert _value(path) == 1.0 and _temporaries(tmp_path) == []
    current = 1.0
    for i, step in enumerate(steps):
        new = 10.0 + i
        assert _write(path, new, mode, step) == 97          # died at this step of an overwrite
        found = _value(path)                                 # a load finds the old or the new one
        assert found == (current if step in ("before-swap", "between-renames") else new), (step, found)
        current = found
        assert store.list_ensembles(tmp_path) == [path]      # listed (and the dead writer's temporaries removed)
        assert _temporaries(tmp_path) == [], step
        assert _write(path, current + 100, mode, None) == 0  # the next write goes through
        current += 100
        assert _value(path) == current and _temporaries(tmp_path) == []


def test_stale_temporaries_of_dead_writers_are_removed_live_ones_kept(tmp_path):
    path = tmp_path / "ens"
    store.write_ensemble(path, {}, np.zeros((1, 4, 2)), np.zeros((1, 4, 2)))
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    pid = int(dead.stdout)
    stale = tmp_path / f".ens.tmp-{pid}-abc"
    stale.mkdir()
    (stale / "posteriors.npz").write_bytes(b"x" * 1000)
    live = tmp_path / f".ens.tmp-{__import__('os').getpid()}-def"     # this process: a writer still running
    live.mkdir()
    store.write_ensemble(path, {}, np.ones((1, 4, 2)), np.zeros((1, 4, 2)), overwrite=True)
    assert not stale.exists() and live.exists()
    assert float(store.load_ensemble(path).mu.max()) == 1.0
    live.rmdir()


def test_nothing_is_written_that_would_not_load(tmp_path):
    with pytest.raises(store.EnsembleError, match="overflow float32"):
        store.write_ensemble(tmp_path / "big", {}, np.full((1, 3, 2), 1e300), np.zeros((1, 3, 2)))
    with pytest.raises(store.EnsembleError, match="'x' has values that overflow float32"):
        store.write_ensemble(tmp_path / "bigx", {}, np.zeros((1, 3, 2)), np.zeros((1, 3, 2)), x=np.full((3, 2), -1e39))
    with pytest.raises(store.EnsembleError, match="longer than 200 bytes"):
        store.write_ensemble(tmp_path / ("n" * 242), {}, np.zeros((1, 3, 2)), np.zeros((1, 3, 2)))
    assert list(tmp_path.iterdir()) == []
