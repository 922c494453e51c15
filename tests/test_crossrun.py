"""crossrun.py / `vaefrag compare`: fragments shared by two ensembles on the same fingerprint points."""
import csv

import numpy as np
import pytest

from vaefrag import measures as ms
from vaefrag import store
from vaefrag.cli import main
from vaefrag.crossrun import compare_ensembles

FAST = dict(n_bootstrap=0, maps=())
N = 200


def _factors(seed=0):
    return np.random.default_rng(seed).integers(0, 5, size=(N, 3))


def _ensemble(root, name, factors, carried, n_models, seed, x=None):
    """K models whose first latents copy the `carried` factor columns (noisy, random sign), then one
    informative noise channel and one dead channel."""
    rng = np.random.default_rng(seed)
    n_lat = len(carried) + 2
    mu = np.zeros((n_models, N, n_lat), np.float32)
    lv = np.full_like(mu, np.log(0.3 ** 2))
    for k in range(n_models):
        for j, f in enumerate(carried):
            mu[k, :, j] = rng.choice([-1, 1]) * 3.0 * factors[:, f] + rng.normal(0, 0.3, N)
        mu[k, :, len(carried)] = rng.normal(0, 3.0, N)
        mu[k, :, len(carried) + 1] = rng.normal(0, 0.01, N)
        lv[k, :, len(carried) + 1] = 0.0
    manifest = {"name": name, "members": [{"id": k} for k in range(n_models)]}
    return store.write_ensemble(root / name, manifest, mu, lv, x=x, factors=factors,
                                factor_names=["f0", "f1", "f2"], overwrite=True)


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    root = tmp_path_factory.mktemp("ens")
    f = _factors()
    a = _ensemble(root, "a", f, carried=[0, 1, 2], n_models=6, seed=1)
    b = _ensemble(root, "b", f, carried=[0, 1], n_models=5, seed=2)
    return a, b, root / "cache"


def test_shared_fragments_are_found_and_a_missing_one_is_not(pair):
    a, b, cache = pair
    res = compare_ensembles(a, b, cache_dir=cache, **FAST)
    by_factor = {m.best_factor: m for m in res.matches_a}
    assert set(by_factor) == {"f0", "f1", "f2"}
    b_factor = {h.id: res.analysis_b.factor_names[h.best_factor] for h in res.analysis_b.hotspots}
    for f in ("f0", "f1"):
        m = by_factor[f]
        assert m.models_matched == 5 and m.best_channel_nmi > 0.9
        assert b_factor[m.best_hotspot] == f
    missing = by_factor["f2"]
    assert missing.models_matched == 0 and missing.best_channel_nmi < 0.3
    # every fragment of B recurs in all 6 models of A
    assert sorted(m.best_factor for m in res.matches_b) == ["f0", "f1"]
    assert all(m.models_matched == 6 for m in res.matches_b)


def test_cross_matrix_is_a_block_of_the_joint_comparison_and_hotspot_means_are_block_means(pair):
    a, b, cache = pair
    res = compare_ensembles(a, b, cache_dir=cache, **FAST)
    ea, eb = store.load_ensemble(a), store.load_ensemble(b)
    mu_a, lv_a = ms.split_channels(ea.mu, ea.logvar)
    mu_b, lv_b = ms.split_channels(eb.mu, eb.logvar)
    ka, kb = res.analysis_a.kept, res.analysis_b.kept
    joint = ms.compare_channels(np.concatenate([mu_a[ka], mu_b[kb]]), np.concatenate([lv_a[ka], lv_b[kb]]))
    np.testing.assert_allclose(res.nmi, joint.nmi[: len(ka), len(ka):], atol=1e-5)
    np.testing.assert_allclose(res.vi, joint.vi[: len(ka), len(ka):], atol=1e-5)
    np.testing.assert_array_equal(res.channel_ids_a, res.analysis_a.channel_ids[ka])
    for i, ha in enumerate(res.analysis_a.hotspots):
        for j, hb in enumerate(res.analysis_b.hotspots):
            vals = [res.nmi[p, q] for p in ha.members for q in hb.members]
            assert res.hotspot_nmi[i, j] == pytest.approx(np.mean(vals), abs=1e-9)


def test_different_points_are_refused(pair, tmp_path):
    a, _, cache = pair
    other = _ensemble(tmp_path, "other", _factors(seed=5), carried=[0], n_models=3, seed=3)
    with pytest.raises(ValueError, match="factor labels of a and other differ"):
        compare_ensembles(a, other, cache_dir=cache, **FAST)
    rng = np.random.default_rng(0)
    x1, x2 = rng.random((N, 4)).astype(np.float32), rng.random((N, 4)).astype(np.float32)
    p1 = _ensemble(tmp_path, "x1", _factors(), carried=[0], n_models=3, seed=4, x=x1)
    p2 = _ensemble(tmp_path, "x2", _factors(), carried=[0], n_models=3, seed=5, x=x2)
    with pytest.raises(ValueError, match="fingerprint.npz differ"):
        compare_ensembles(p1, p2, cache_dir=cache, **FAST)
    # posteriors alone: nothing to check, so the caller must vouch for the points
    ens = store.load_ensemble(a)
    bare = [store.write_ensemble(tmp_path / f"bare{i}", {"name": f"bare{i}"}, ens.mu, ens.logvar) for i in range(2)]
    with pytest.raises(ValueError, match="same_points=True"):
        compare_ensembles(*bare, cache_dir=cache, **FAST)
    assert compare_ensembles(*bare, cache_dir=cache, same_points=True, **FAST).nmi.shape == (len(ens.mu) * 4,) * 2
    with pytest.raises(ValueError, match="match_nmi"):
        compare_ensembles(a, a, cache_dir=cache, match_nmi=0, **FAST)


def test_cli_prints_both_directions_and_writes_tables(pair, tmp_path, capsys):
    a, b, cache = pair
    out = tmp_path / "out"
    assert main(["compare", str(a), str(b), "--cache", str(cache), "--bootstrap", "0", "--maps", "none",
                 "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "hotspots of A, looked for in B" in text and "hotspots of B, looked for in A" in text
    assert "B models with NMI >= 0.5" in text
    with open(out / "matches.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert sorted(r["ensemble"] for r in rows) == ["A", "A", "A", "B", "B"]
    saved = np.load(out / "channels.npz", allow_pickle=False)
    assert saved["nmi"].shape == (len(saved["channel_ids_a"]), len(saved["channel_ids_b"]))
    assert main(["compare", str(a), str(b), "--match-nmi", "2"]) == 2
    assert "--match-nmi" in capsys.readouterr().err
