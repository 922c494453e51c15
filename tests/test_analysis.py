"""analysis.py: analyze() on a planted ensemble, caching (hits, misses, interrupted runs), serialisation."""
import diskcache
import numpy as np
import pytest

from test_structure import NOISE, planted
from vaefrag import measures as ms
from vaefrag import store
from vaefrag.analysis import Analysis, analyze, default_cache_dir, hotspot_rows

FAST = dict(n_bootstrap=2, maps=("mds",))


def write_planted(root, seed=0, **kw):
    mu, lv, f, truth = planted(seed=seed, **kw)
    manifest = {"name": "planted", "members": [{"id": k, "final_loss": 10.0 + k} for k in range(mu.shape[0])]}
    path = store.write_ensemble(root / f"planted{seed}", manifest, mu, lv, factors=f,
                                factor_names=[f"f{j}" for j in range(f.shape[1])], overwrite=True)
    return path, truth


@pytest.fixture(scope="module")
def planted_path(tmp_path_factory):
    return write_planted(tmp_path_factory.mktemp("ens"))


def test_analyze_planted(planted_path, tmp_path):
    path, truth = planted_path
    a = analyze(path, cache_dir=tmp_path, **FAST)
    ens = store.load_ensemble(path)
    k, _, l_ = ens.mu.shape
    # the matrices are those of measures.compare_channels on the kept channels
    comp = ms.compare_channels(*ms.split_channels(ens.mu, ens.logvar), factors=ens.factors)
    np.testing.assert_array_equal(a.kept, np.flatnonzero(comp.info >= 0.01))
    np.testing.assert_allclose(a.nmi, comp.nmi[np.ix_(a.kept, a.kept)], atol=1e-6)
    np.testing.assert_allclose(a.factor_nmi, comp.factor_nmi[a.kept], atol=1e-6)
    assert a.channel_ids.tolist() == ms.channel_ids(k, l_).tolist()
    assert sorted(h.best_factor for h in a.hotspots) == [0, 1, 2]
    t = truth.reshape(-1)[a.kept]
    assert np.all(a.labels[t == NOISE] == -1)
    assert all(h.stability == 1.0 and h.nmi_ci[0] <= h.mean_nmi + 0.05 for h in a.hotspots)
    assert set(a.maps) == {"mds"} and a.maps["mds"].shape == (a.kept.size, 2)
    assert set(a.model_table) == {"info", "n_informative", "mig", "sap", "udr", "final_loss"}
    np.testing.assert_allclose(a.model_table["final_loss"], 10.0 + np.arange(k))
    np.testing.assert_array_equal(a.model_table["n_informative"], l_ - 1)   # all but the dead channel
    # every model copies every factor into its own latent: MIG/SAP high, UDR high
    assert np.all(a.model_table["mig"] > 0.8) and np.all(a.model_table["sap"] > 0.8)
    assert np.all(a.model_table["udr"] > 0.6)
    rows = hotspot_rows(a)
    assert [r["best_factor"] for r in rows] == [f"f{h.best_factor}" for h in a.hotspots]
    assert all(r["size"] == k and r["models"] == k for r in rows)


def test_cache_hit_miss_and_roundtrip(planted_path, tmp_path):
    path, _ = planted_path
    first = analyze(path, cache_dir=tmp_path, **FAST)
    assert not first.from_cache
    second = analyze(path, cache_dir=tmp_path, **FAST)
    assert second.from_cache and second.key == first.key
    for name in ("nmi", "vi", "kept", "ordering", "reachability", "labels", "info", "factor_nmi"):
        np.testing.assert_array_equal(getattr(second, name), getattr(first, name))
    np.testing.assert_array_equal(second.maps["mds"], first.maps["mds"])
    assert [h.members.tolist() for h in second.hotspots] == [h.members.tolist() for h in first.hotspots]
    assert [h.stability for h in second.hotspots] == [h.stability for h in first.hotspots]
    # another parameter: recomputed, and a different key
    other = analyze(path, cache_dir=tmp_path, measure="vi", **FAST)
    assert not other.from_cache and other.key != first.key
    # other posteriors (same shape): recomputed
    ens = store.load_ensemble(path)
    ens.mu = ens.mu + np.float32(0.1)
    assert not analyze(ens, cache_dir=tmp_path, **FAST).from_cache


def test_interrupted_run_leaves_no_entry(planted_path, tmp_path):
    path, _ = planted_path

    def stop(done, total, msg=""):
        if msg.startswith("maps"):
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        analyze(path, cache_dir=tmp_path, progress=stop, **FAST)
    with diskcache.Cache(str(tmp_path / "analysis")) as c:
        assert len(c) == 0
    assert not analyze(path, cache_dir=tmp_path, **FAST).from_cache


def test_cache_dir_from_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("VAEFRAG_CACHE", str(tmp_path / "c"))
    assert default_cache_dir() == tmp_path / "c"
    monkeypatch.delenv("VAEFRAG_CACHE")
    assert default_cache_dir().parts[-2:] == (".cache", "vaefrag")


def test_serialisation_has_no_pickle(planted_path, tmp_path):
    path, _ = planted_path
    a = analyze(path, use_cache=False, **FAST)
    b = Analysis.from_bytes(a.to_bytes())          # np.load(..., allow_pickle=False) inside
    assert b.params == a.params and b.factor_names == a.factor_names
    assert b.hotspots[0].nmi_ci == a.hotspots[0].nmi_ci
    np.testing.assert_array_equal(b.model_table["mig"], a.model_table["mig"])


@pytest.mark.parametrize("kwargs, name", [({"min_samples": 1}, "min_samples"), ({"info_threshold": -0.1}, "info_threshold"),
                                          ({"measure": "cka"}, "measure"), ({"xi": 1.5}, "xi"),
                                          ({"n_bootstrap": -1}, "n_bootstrap"), ({"maps": ("tsne",)}, "maps")])
def test_bad_parameters(planted_path, tmp_path, kwargs, name):
    with pytest.raises(ValueError, match=name):
        analyze(planted_path[0], cache_dir=tmp_path, **kwargs)


def test_not_an_ensemble(tmp_path):
    with pytest.raises((ValueError, FileNotFoundError)):
        analyze(tmp_path / "missing", cache_dir=tmp_path)
    (tmp_path / "empty").mkdir()
    with pytest.raises((ValueError, FileNotFoundError)):
        analyze(tmp_path / "empty", cache_dir=tmp_path)


def test_without_factors(tmp_path):
    mu, lv, _, _ = planted()
    path = store.write_ensemble(tmp_path / "nofactors", {"name": "nf"}, mu, lv)
    a = analyze(path, use_cache=False, **FAST)
    assert a.factor_nmi is None and all(h.best_factor is None for h in a.hotspots)
    assert np.all(np.isnan(a.model_table["mig"])) and len(a.hotspots) == 3
    with pytest.raises(ValueError, match="factors"):
        analyze(path, use_cache=False, scores=("mig",), **FAST)


# ------------------------------------------------------------------------------- stages and their cache


def test_parameter_change_reuses_measures_resamples_maps_and_scores(planted_path, tmp_path, monkeypatch):
    """analyze(min_samples=...) after analyze(): the measures' pass, UMAP/MDS and the model scores are
    not run again (they would raise), only the structure and the stability refits."""
    from vaefrag import measures, metrics, structure

    path, _ = planted_path
    first = analyze(path, cache_dir=tmp_path, **FAST)
    boom = lambda *a, **k: (_ for _ in ()).throw(AssertionError("recomputed"))
    monkeypatch.setattr(measures, "compare_channels", boom)
    monkeypatch.setattr(structure, "channel_maps", boom)
    monkeypatch.setattr(metrics, "model_scores", boom)
    other = analyze(path, cache_dir=tmp_path, min_samples=4, **FAST)
    assert not other.from_cache and other.key != first.key and other.params["min_samples"] == 4
    np.testing.assert_array_equal(other.nmi, first.nmi)
    np.testing.assert_array_equal(other.maps["mds"], first.maps["mds"])       # same distances: same map
    np.testing.assert_array_equal(other.model_table["mig"], first.model_table["mig"])
    assert sorted(map(sorted, (h.members.tolist() for h in other.hotspots))) == \
        sorted(map(sorted, (h.members.tolist() for h in first.hotspots)))        # the planted groups again
    assert all(h.stability == 1.0 for h in other.hotspots)
    # a new seed needs new resamples: the pass runs again
    with pytest.raises(AssertionError, match="recomputed"):
        analyze(path, cache_dir=tmp_path, seed=1, **FAST)


def test_structure_stage_first_then_the_rest(planted_path, tmp_path):
    path, _ = planted_path
    quick = analyze(path, cache_dir=tmp_path, stages=("structure",), **FAST)
    assert set(quick.pending) == {"stability", "maps", "scores"} and quick.maps == {}
    assert all(np.isnan(h.stability) for h in quick.hotspots)
    full = analyze(path, cache_dir=tmp_path, **FAST)
    assert full.pending == () and full.key != quick.key
    assert [h.members.tolist() for h in quick.hotspots] == [h.members.tolist() for h in full.hotspots]
    np.testing.assert_array_equal(quick.ordering, full.ordering)
    with pytest.raises(ValueError, match="stages"):
        analyze(path, cache_dir=tmp_path, stages=("tsne",))


def test_preview_hands_over_the_structure_stage_once_and_caches_it(planted_path, tmp_path):
    path, _ = planted_path
    seen = []
    full = analyze(path, cache_dir=tmp_path, preview=seen.append, **FAST)
    assert len(seen) == 1
    part = seen[0]
    assert set(part.pending) == {"stability", "maps", "scores"} and part.maps == {}
    assert all(np.isnan(h.stability) for h in part.hotspots)          # the full run's stability not written into it
    assert all(np.isfinite(h.stability) for h in full.hotspots) and full.pending == ()
    assert [h.members.tolist() for h in part.hotspots] == [h.members.tolist() for h in full.hotspots]
    np.testing.assert_array_equal(part.ordering, full.ordering)
    np.testing.assert_array_equal(part.nmi, full.nmi)
    # the preview is what stages=("structure",) gives, from the cache entry the preview wrote
    quick = analyze(path, cache_dir=tmp_path, stages=("structure",), **FAST)
    assert quick.from_cache and quick.key == part.key
    assert [h.members.tolist() for h in quick.hotspots] == [h.members.tolist() for h in part.hotspots]
    again = []
    assert analyze(path, cache_dir=tmp_path, preview=again.append, **FAST).from_cache and again == []


class _Planted:
    """Unpickling this would write a file: the cache must never do it."""

    def __init__(self, target):
        self.target = target

    def __reduce__(self):
        return (open, (self.target, "w"))


def test_cache_refuses_a_planted_pickle_and_evicts_it(planted_path, tmp_path):
    from vaefrag import cache

    path, _ = planted_path
    a = analyze(path, cache_dir=tmp_path, **FAST)
    target = tmp_path / "pwned"
    with diskcache.Cache(str(tmp_path / "analysis")) as c:          # a plain diskcache pickles objects
        c.set(a.key, _Planted(str(target)))
    assert cache.lookup("analysis", a.key, Analysis.from_bytes, tmp_path) is None
    assert not target.exists()
    with diskcache.Cache(str(tmp_path / "analysis")) as c:
        assert a.key not in c                                        # evicted
    again = analyze(path, cache_dir=tmp_path, **FAST)
    assert not again.from_cache and not target.exists()
    with pytest.raises(cache.RefusedEntry):                         # and it never writes pickles itself
        with cache._open("analysis", tmp_path) as c:
            c.set("x", {"a": 1})


def test_damaged_entries_are_evicted_and_recomputed(planted_path, tmp_path):
    path, _ = planted_path
    a = analyze(path, cache_dir=tmp_path, **FAST)
    for ns in ("analysis", "measures", "resamples"):
        with diskcache.Cache(str(tmp_path / ns)) as c:
            for key in list(c.iterkeys()):
                c.set(key, c.get(key)[:100])                        # truncated npz bytes
    b = analyze(path, cache_dir=tmp_path, **FAST)
    assert not b.from_cache
    np.testing.assert_allclose(b.nmi, a.nmi)
    assert analyze(path, cache_dir=tmp_path, **FAST).from_cache     # rewritten whole
    # a damaged database file: moved aside, the analysis still runs and is cached again
    db = tmp_path / "analysis" / "cache.db"
    db.write_bytes(b"this is not sqlite" * 100)
    c = analyze(path, cache_dir=tmp_path, **FAST)
    assert not c.from_cache and analyze(path, cache_dir=tmp_path, **FAST).from_cache


def test_key_includes_library_versions(planted_path, monkeypatch):
    from vaefrag import cache

    path, _ = planted_path
    ens = store.load_ensemble(path)
    from vaefrag.analysis import analysis_params, cache_key

    versions = cache.library_versions()
    for lib in ("numpy", "scikit-learn", "umap-learn", "torch"):
        assert f"{lib}=" in versions
    before = cache_key(ens.mu, ens.logvar, ens.factors, analysis_params())
    monkeypatch.setattr(cache, "library_versions", lambda: versions.replace("numpy=", "numpy=0"))
    assert cache_key(ens.mu, ens.logvar, ens.factors, analysis_params()) != before


# ------------------------------------------------------------------------------- one parameters object


def test_one_validation_for_every_front_end(planted_path, tmp_path, capsys):
    from vaefrag.cli import main
    from vaefrag.dashboard import data
    from vaefrag.params import AnalysisParams, ParameterError
    from vaefrag.structure import HotspotFinder

    path, _ = planted_path
    msgs = []
    for call in (lambda: analyze(path, cache_dir=tmp_path, xi=1.5),
                 lambda: HotspotFinder(xi=1.5).fit(np.eye(3)),
                 lambda: AnalysisParams(xi=1.5),
                 lambda: data.clean_params(xi="1.5")):
        with pytest.raises(ValueError) as exc:
            call()
        msgs.append(str(exc.value))
    assert len(set(msgs)) == 1 and msgs[0].startswith("xi: expected a number in (0, 1)")
    assert main(["analyze", str(path), "--cache", str(tmp_path), "--xi", "1.5"]) != 0
    assert "--xi (xi): expected a number in (0, 1)" in capsys.readouterr().err
    with pytest.raises(ParameterError, match="preset"):
        AnalysisParams.from_values(preset="nature")


def test_paper_preset(planted_path, tmp_path, capsys):
    from vaefrag.cli import main
    from vaefrag.dashboard import data
    from vaefrag.params import PRESETS, AnalysisParams

    p = AnalysisParams.from_values(preset="paper")
    assert (p.min_samples, p.xi, p.min_nmi) == (20, 0.05, 0.0) == tuple(PRESETS["paper"][k] for k in
                                                                         ("min_samples", "xi", "min_nmi"))
    assert AnalysisParams.from_values(preset="paper", min_samples=3).min_samples == 3    # explicit wins
    assert data.clean_params(preset="paper")["min_nmi"] == 0.0
    path, _ = planted_path
    # 6 models x 4 informative channels kept: 24 >= min_samples 20
    assert main(["analyze", str(path), "--cache", str(tmp_path), "--preset", "paper", *("--bootstrap", "0"),
                 *("--maps", "none")]) == 0
    out = capsys.readouterr().out
    assert "min_samples 20, xi 0.05, min_nmi 0" in out
