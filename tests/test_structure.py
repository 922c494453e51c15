"""structure.py: planted hotspots are recovered; distances, OPTICS outputs and maps checked independently."""
import numpy as np
import pytest
from sklearn.cluster import OPTICS
from sklearn.metrics import adjusted_rand_score

from vaefrag import measures as ms
from vaefrag.structure import (HotspotFinder, bootstrap_stability, channel_distances, channel_maps,
                               default_min_samples)

NOISE, DEAD = -2, -3


def planted(n_models=6, n_points=200, n_factors=3, n_values=5, seed=0, spread=3.0, noise=0.3):
    """Posteriors [K, N, L] of K models whose channels copy one of `n_factors` factors (with noise,
    random sign, random slot), plus one informative noise channel and one dead channel per model.

    Returns mu, logvar, factors [N, F], truth [K, L] (planted factor, NOISE or DEAD).
    """
    rng = np.random.default_rng(seed)
    factors = rng.integers(0, n_values, size=(n_points, n_factors))
    n_lat = n_factors + 2
    mu = np.zeros((n_models, n_points, n_lat))
    lv = np.zeros_like(mu)
    truth = np.zeros((n_models, n_lat), dtype=int)
    for k in range(n_models):
        perm = rng.permutation(n_lat)
        for j in range(n_factors):
            mu[k, :, perm[j]] = rng.choice([-1, 1]) * spread * factors[:, j] + rng.normal(0, noise, n_points)
            lv[k, :, perm[j]] = np.log(noise ** 2)
            truth[k, perm[j]] = j
        mu[k, :, perm[n_factors]] = rng.normal(0, spread, n_points)
        lv[k, :, perm[n_factors]] = np.log(noise ** 2)
        truth[k, perm[n_factors]] = NOISE
        mu[k, :, perm[n_factors + 1]] = rng.normal(0, 0.01, n_points)    # prior-like: no information
        truth[k, perm[n_factors + 1]] = DEAD
    return mu.astype(np.float32), lv.astype(np.float32), factors, truth


def _singletons(labels):
    """-1 (not in a group) -> a distinct label per channel, so ARI does not see 'noise' as a group."""
    out = np.asarray(labels).copy()
    free = np.flatnonzero(out < 0)
    out[free] = out.max() + 1 + np.arange(free.size)
    return out


@pytest.fixture(scope="module")
def fitted():
    mu, lv, f, truth = planted()
    k, _, l_ = mu.shape
    mc, lc = ms.split_channels(mu, lv)
    comp = ms.compare_channels(mc, lc, factors=f, device="cpu")
    finder = HotspotFinder().fit(comp, channel_ids=ms.channel_ids(k, l_))
    return finder, comp, truth.reshape(-1), (mc, lc)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_planted_groups_recovered(seed):
    mu, lv, f, truth = planted(n_models=5 + seed, seed=seed, n_factors=3 + seed % 2)
    k, _, l_ = mu.shape
    mc, lc = ms.split_channels(mu, lv)
    comp = ms.compare_channels(mc, lc, factors=f, device="cpu")
    finder = HotspotFinder().fit(comp, channel_ids=ms.channel_ids(k, l_))
    t = truth.reshape(-1)
    # dead channels are set aside by the information threshold, everything else kept
    assert set(np.flatnonzero(t == DEAD)).isdisjoint(finder.kept_)
    assert set(np.flatnonzero(t != DEAD)) == set(finder.kept_.tolist())
    tk = t[finder.kept_]
    planted_labels = np.where(tk >= 0, tk, -1)
    assert adjusted_rand_score(_singletons(planted_labels), _singletons(finder.labels_)) >= 0.9
    assert np.all(finder.labels_[tk == NOISE] == -1)
    assert len(finder.hotspots_) == f.shape[1]
    for h in finder.hotspots_:
        planted_factor = np.bincount(tk[h.members][tk[h.members] >= 0]).argmax()
        assert h.best_factor == planted_factor
        assert h.best_factor_nmi > 0.9
        assert h.n_models == k and h.size == k


def test_hotspot_summaries(fitted):
    finder, comp, t, _ = fitted
    kept = finder.kept_
    for h in finder.hotspots_:
        assert np.array_equal(np.sort(h.members), np.flatnonzero(finder.labels_ == h.id))
        d = channel_distances(comp.nmi[np.ix_(kept, kept)])[np.ix_(h.members, h.members)]
        assert h.medoid == h.members[np.argmin(d.sum(1))]
        assert h.mean_info == pytest.approx(comp.info[kept[h.members]].mean())
        blk = comp.nmi[np.ix_(kept[h.members], kept[h.members])]
        assert h.mean_nmi == pytest.approx(blk[~np.eye(h.size, dtype=bool)].mean())
        prof = comp.factor_nmi[kept[h.members]].mean(0)
        assert h.best_factor == int(np.argmax(prof)) and h.best_factor_nmi == pytest.approx(prof.max())
        assert np.array_equal(h.channels, ms.channel_ids(6, 5)[kept[h.members]])
    # hotspots numbered left to right along the ordering
    first = [np.flatnonzero(finder.labels_[finder.ordering_] == h.id)[0] for h in finder.hotspots_]
    assert first == sorted(first)


def test_optics_outputs_match_sklearn(fitted):
    finder, comp, _, _ = fitted
    kept = finder.kept_
    d = -np.log(np.clip(comp.nmi[np.ix_(kept, kept)], 1e-4, 1))
    d = 0.5 * (d + d.T)
    np.fill_diagonal(d, 0)
    ref = OPTICS(min_samples=3, metric="precomputed", xi=0.05, min_cluster_size=3).fit(d)
    assert finder.min_samples_ == 3
    assert np.array_equal(finder.ordering_, ref.ordering_)
    np.testing.assert_allclose(finder.reachability_, ref.reachability_[ref.ordering_])
    assert np.isinf(finder.reachability_[0])


def test_invariant_to_channel_order(fitted):
    finder, comp, _, _ = fitted
    m = comp.nmi.shape[0]
    perm = np.random.default_rng(3).permutation(m)
    ids = ms.channel_ids(6, 5)
    other = HotspotFinder().fit(comp.nmi[np.ix_(perm, perm)], comp.vi[np.ix_(perm, perm)], comp.info[perm],
                                channel_ids=ids[perm])
    a = {frozenset(map(tuple, h.channels.tolist())) for h in finder.hotspots_}
    b = {frozenset(map(tuple, h.channels.tolist())) for h in other.hotspots_}
    assert a == b


def test_vi_measure_finds_the_same_groups(fitted):
    finder, comp, _, _ = fitted
    vi_finder = HotspotFinder(measure="vi").fit(comp, channel_ids=ms.channel_ids(6, 5))
    assert adjusted_rand_score(_singletons(finder.labels_), _singletons(vi_finder.labels_)) == 1.0


def test_distances():
    nmi = np.array([[1.0, 0.5, 0.0], [0.5, 1.0, -0.1], [0.0, -0.1, 1.0]])
    d = channel_distances(nmi)
    np.testing.assert_allclose(d, [[0, np.log(2), np.log(1e4)], [np.log(2), 0, np.log(1e4)],
                                   [np.log(1e4), np.log(1e4), 0]])
    vi = np.array([[0.01, -0.2], [-0.2, 0.0]])
    np.testing.assert_allclose(channel_distances(vi=vi, measure="vi"), [[0, 0], [0, 0]])
    np.testing.assert_allclose(channel_distances(vi=[[0, 1.0], [3.0, 0]], measure="vi"), [[0, 2], [2, 0]])


def test_default_min_samples_scales_with_models():
    assert default_min_samples(6, 100) == 3
    assert default_min_samples(50, 500) == 25
    assert default_min_samples(2, 100) == 2
    assert default_min_samples(50, 7) == 7


@pytest.mark.parametrize("kwargs, name", [({"min_samples": 1}, "min_samples"), ({"info_threshold": -1}, "info_threshold"),
                                          ({"xi": 0.0}, "xi"), ({"measure": "cka"}, "measure"),
                                          ({"min_samples": 1000}, "min_samples"), ({"min_nmi": 2}, "min_nmi")])
def test_bad_parameters(fitted, kwargs, name):
    _, comp, _, _ = fitted
    with pytest.raises(ValueError, match=name):
        HotspotFinder(**kwargs).fit(comp)


def test_bad_inputs():
    with pytest.raises(ValueError, match="nmi"):
        HotspotFinder().fit(np.ones((3, 4)))
    with pytest.raises(ValueError, match="info"):
        HotspotFinder().fit(np.eye(3), info=np.ones(2))
    with pytest.raises(ValueError, match="vi"):
        HotspotFinder(measure="vi").fit(np.eye(3))


def test_bootstrap_stability(fitted):
    finder, comp, _, (mc, lc) = fitted
    st = bootstrap_stability(finder, mc, lc, n_bootstrap=4, random_state=0, device="cpu")
    assert st.mean_nmi.shape == (4, len(finder.hotspots_))
    np.testing.assert_array_equal(st.stability, 1.0)          # planted groups are found in every resample
    for h, (lo, hi) in zip(finder.hotspots_, st.nmi_ci):
        assert h.stability == 1.0 and h.nmi_ci == (lo, hi)
        assert lo <= hi and 0.8 < lo and hi <= 1.0 + 1e-6
    # the interval is the percentile interval of the per-resample means
    np.testing.assert_allclose(st.nmi_ci[:, 0], np.percentile(st.mean_nmi, 2.5, axis=0))
    # same seed, same numbers
    st2 = bootstrap_stability(finder, mc, lc, n_bootstrap=4, random_state=0, device="cpu")
    np.testing.assert_array_equal(st.mean_nmi, st2.mean_nmi)


def test_maps(fitted):
    finder, _, _, _ = fitted
    # metric MDS of points that live in the plane reproduces their distances
    pts = np.random.default_rng(0).normal(size=(12, 2))
    d = np.linalg.norm(pts[:, None] - pts[None], axis=-1)
    emb = channel_maps(d, ("mds",))["mds"]
    np.testing.assert_allclose(np.linalg.norm(emb[:, None] - emb[None], axis=-1), d, atol=1e-3)
    maps = channel_maps(finder.distance_, random_state=0)
    assert set(maps) == {"mds", "umap"}
    again = channel_maps(finder.distance_, ("umap",), random_state=0)["umap"]
    np.testing.assert_allclose(maps["umap"], again)
    for name, xy in maps.items():
        assert xy.shape == (finder.kept_.size, 2) and np.all(np.isfinite(xy))
        # each hotspot is tighter than the distance between hotspot centres
        centres = np.array([xy[h.members].mean(0) for h in finder.hotspots_])
        spread = max(np.linalg.norm(xy[h.members] - c, axis=1).max() for h, c in zip(finder.hotspots_, centres))
        gaps = np.linalg.norm(centres[:, None] - centres[None], axis=-1)[np.triu_indices(len(centres), 1)]
        assert spread < gaps.min(), name
    with pytest.raises(ValueError, match="methods"):
        channel_maps(d, ("tsne",))


# --------------------------------------------------------------------------- the OPTICS graph


@pytest.mark.parametrize("seed", range(6))
def test_optics_graph_is_sklearns(seed):
    """The vectorised OPTICS graph gives scikit-learn's ordering, reachability, predecessors and xi
    labels exactly, ties included (integer coordinates give many equal distances)."""
    from vaefrag.structure import _xi_labels, optics_graph

    rng = np.random.default_rng(seed)
    n = int(rng.integers(6, 90))
    x = rng.normal(size=(n, 3)) * 2
    if seed % 2:
        x = np.round(x)
    d = np.sqrt(((x[:, None] - x[None]) ** 2).sum(-1))
    ms_ = int(rng.integers(2, min(n, 8) + 1))
    ref = OPTICS(min_samples=ms_, metric="precomputed", xi=0.05, min_cluster_size=ms_).fit(d)
    order, core, reach, pred = optics_graph(d, ms_)
    np.testing.assert_array_equal(order, ref.ordering_)
    np.testing.assert_array_equal(reach, ref.reachability_)
    np.testing.assert_array_equal(core, ref.core_distances_)
    np.testing.assert_array_equal(pred, ref.predecessor_)
    np.testing.assert_array_equal(_xi_labels(reach, pred, order, ms_, ms_, 0.05), ref.labels_)


# --------------------------------------------------------------------------- cheap stability


def planted_with_weak(seed=0, rho=0.7):
    """`planted`, with each model's informative noise channel replaced by a weak copy (correlation
    rho) of one shared continuous signal: a seventh-rate hotspot next to three strong ones."""
    mu, lv, f, truth = planted(seed=seed)
    rng = np.random.default_rng(seed + 100)
    g = rng.normal(0, 3, mu.shape[1])
    for k in range(mu.shape[0]):
        j = int(np.flatnonzero(truth[k] == NOISE)[0])
        mu[k, :, j] = np.sqrt(rho) * g + np.sqrt(1 - rho) * rng.normal(0, 3, mu.shape[1])
        truth[k, j] = 9
    return mu, lv, f, truth


def _stabilities(mu, lv, truth, n_res=12, **finder_kw):
    from vaefrag.structure import resample_counts, resampled_stability

    k, n, l_ = mu.shape
    mc, lc = ms.split_channels(mu, lv)
    comp = ms.compare_channels(mc, lc, device="cpu", resample_weights=resample_counts(n, n_res, 0))
    finder = HotspotFinder(**finder_kw).fit(comp, channel_ids=ms.channel_ids(k, l_))
    new = resampled_stability(finder, comp.resampled)
    full = bootstrap_stability(finder, mc, lc, n_bootstrap=n_res, random_state=0, device="cpu")
    groups = [set(truth.reshape(-1)[finder.kept_][h.members].tolist()) for h in finder.hotspots_]
    return finder, new, full, groups


def test_resampled_stability_agrees_with_the_full_bootstrap_on_planted_hotspots():
    """Same resampled points (seed), two methods: the one-pass reweighting and the full
    point-resampling bootstrap (B recomputations). Planted hotspots are stable in both; the
    per-resample spread of each hotspot's mean NMI agrees (first-order equivalence)."""
    mu, lv, _, truth = planted()
    finder, new, full, groups = _stabilities(mu, lv, truth)
    assert sorted(map(sorted, groups)) == [[0], [1], [2]]
    np.testing.assert_array_equal(new.stability, 1.0)
    np.testing.assert_array_equal(full.stability, 1.0)
    assert new.extra["method"] != full.extra["method"]
    for h, (lo, hi) in zip(finder.hotspots_, new.nmi_ci):
        assert lo <= h.mean_nmi <= hi + 1e-6               # the fit lies inside the new interval


def test_hotspot_at_the_min_nmi_edge_is_not_stable():
    """A weak planted hotspot whose mean NMI sits at the filter's edge is found in only part of
    the refits (stability < 1: a constant stability fails here), the strong ones in all. The full
    bootstrap sees the same spread of the weak hotspot's mean NMI but shifted upwards by its
    duplicated points (BC = 1 between copies), which the reweighting avoids."""
    mu, lv, _, truth = planted_with_weak()
    finder, _, _, groups = _stabilities(mu, lv, truth, min_nmi=0.0)
    weak = groups.index({9})
    edge = finder.hotspots_[weak].mean_nmi - 0.002
    finder, new, full, groups = _stabilities(mu, lv, truth, min_nmi=edge)
    weak = groups.index({9})
    strong = [i for i in range(len(groups)) if i != weak]
    assert new.stability[weak] <= 0.8
    np.testing.assert_array_equal(new.stability[strong], 1.0)
    np.testing.assert_array_equal(full.stability[strong], 1.0)
    sd_new, sd_full = new.mean_nmi[:, weak].std(), full.mean_nmi[:, weak].std()
    assert 0.6 < sd_new / sd_full < 1.6
    fit = finder.hotspots_[weak].mean_nmi
    assert abs(new.mean_nmi[:, weak].mean() - fit) < 2 * sd_new           # centred on the fit
    assert full.mean_nmi[:, weak].mean() - fit > 2 * sd_full              # the full bootstrap's bias


def test_umap_compiles_into_the_vaefrag_cache(tmp_path):
    """A fresh process computing a UMAP map leaves numba's compiled code (index files) under
    <cache dir>/numba, where the next process loads it instead of compiling again; numba's
    decorators are back to their own defaults afterwards."""
    import json
    import os
    import subprocess
    import sys

    code = ("import json, os, numpy as np, numba; from vaefrag.structure import channel_maps; "
            "x = np.random.default_rng(0).normal(size=(30, 2)); d = np.linalg.norm(x[:, None] - x[None], axis=-1); "
            "xy = channel_maps(d, ('umap',))['umap']; "
            "print(json.dumps({'dir': os.environ['NUMBA_CACHE_DIR'], 'finite': bool(np.isfinite(xy).all()), "
            "'njit': numba.njit.__module__}))")
    env = {**os.environ, "VAEFRAG_CACHE": str(tmp_path)}
    env.pop("NUMBA_CACHE_DIR", None)
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=900,
                         check=True)
    res = json.loads(out.stdout.strip().splitlines()[-1])
    assert res["dir"] == str(tmp_path / "numba") and res["finite"]
    assert res["njit"].startswith("numba")                       # the decorator is numba's own again
    index = list((tmp_path / "numba").rglob("*.nbi"))
    assert any("umap" in str(p) for p in index), index[:5]
