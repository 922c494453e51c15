"""Training dynamics: on planted checkpoints where repeat runs first agree, then diverge (each run
encodes a different factor), then agree again, the full-space NMI between runs dips and recovers
(and VI rises and falls); a pair's value matches the two-model estimator `measures.compare_spaces`;
hotspots are tracked over the checkpoints; an ensemble without checkpoints is one clear error."""
import numpy as np
import pytest

from vaefrag import store
from vaefrag.cli import main
from vaefrag.dynamics import DynamicsError, training_dynamics

N, K = 300, 3


def _planted(path):
    rng = np.random.default_rng(0)
    factors = rng.integers(0, 16, size=(N, 3))
    feats = (factors - factors.mean(0)) / factors.std(0)

    def post(cols):  # a model whose 2 latents carry the given factor columns (None: prior-like latent)
        mu = np.zeros((N, 2))
        lv = np.zeros((N, 2))
        for j, c in enumerate(cols):
            if c is not None:
                mu[:, j] = rng.choice([-1, 1]) * feats[:, c] + rng.normal(0, 0.05, N)
                lv[:, j] = 2 * np.log(0.15)
        return mu, lv

    plan = [[(0, None)] * K,                       # step 10: every run carries factor 0 only
            [(k, None) for k in range(K)],         # step 20: run k carries factor k: the runs disagree
            [(0, 1), (1, 0), (0, 1)]]              # step 30: all carry factors 0 and 1 (latents swapped)
    ck = np.array([[post(cols) for cols in level] for level in plan])      # [C, K, 2, N, L]
    mu, lv = ck[:, :, 0].astype(np.float32), ck[:, :, 1].astype(np.float32)
    x = rng.normal(size=(N, 4)).astype(np.float32)
    return store.write_ensemble(path, {"name": "planted"}, mu[-1], lv[-1], x=x, factors=factors,
                                factor_names=["a", "b", "c"],
                                checkpoints={"steps": np.array([10, 20, 30]), "mu": mu, "logvar": lv})


def test_full_space_nmi_between_runs_dips_and_recovers(tmp_path):
    from vaefrag.measures import compare_spaces

    path = _planted(tmp_path / "ens")
    dyn = training_dynamics(path, n_samples=1500, device="cpu", cache_dir=tmp_path / "c")
    assert dyn.steps.tolist() == [10, 20, 30]
    n0, n1, n2 = dyn.nmi_mean
    e = dyn.nmi_mc_err
    assert n0 > 0.8 and n2 > 0.8 and n1 < 0.2, dyn.nmi_mean
    assert n0 - n1 > 5 * (e[0] + e[1]) and n2 - n1 > 5 * (e[2] + e[1])
    assert dyn.vi_mean[1] > dyn.vi_mean[0] + 1 and dyn.vi_mean[1] > dyn.vi_mean[2]
    # one pair against the two-model estimator (other draws: agreement within the joint error)
    ck = store.load_checkpoints(path)
    for c in (0, 1):
        ref = compare_spaces(ck["mu"][c, 0], ck["logvar"][c, 0], ck["mu"][c, 1], ck["logvar"][c, 1],
                             n_samples=1500, seed=7, device="cpu")
        tol = 4 * np.hypot(ref.nmi_err, dyn.nmi_err[c, 0, 1]) + 0.02
        assert abs(ref.nmi - dyn.nmi[c, 0, 1]) < tol
    # hotspots over training: factor 0 is a hotspot of all runs at step 10, gone as such at step 20
    t = dyn.tracking
    assert [lv.label for lv in t.levels] == ["step 10", "step 20", "step 30"]
    assert t.levels[0].n_hotspots == 1 and t.levels[0].best_factor == ["a"] and t.levels[0].sizes[0] == K


def test_cli_dynamics_and_errors(tmp_path, capsys):
    path = _planted(tmp_path / "ens")
    out = tmp_path / "out"
    assert main(["dynamics", str(path), "--samples", "400", "--device", "cpu", "--cache", str(tmp_path / "c"),
                 "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "step" in text and "nmi" in text.lower()
    for name in ("dynamics.csv", "dynamics.png", "dynamics.pdf", "dynamics.svg", "tracking.png", "levels.csv"):
        assert (out / name).stat().st_size > 0
    plain = store.write_ensemble(tmp_path / "plain", {}, np.zeros((2, 5, 2)), np.zeros((2, 5, 2)))
    with pytest.raises(DynamicsError, match="checkpoints/posteriors.npz: missing"):
        training_dynamics(plain)
    assert main(["dynamics", str(plain)]) == 2
    assert "train it with `vaefrag train --checkpoints C`" in capsys.readouterr().err
