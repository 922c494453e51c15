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
