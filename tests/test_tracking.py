"""Tracking hotspots along a planted sweep: a fragment that splits in two, two that merge, one that
appears and one that fades come out as exactly those events; the event rules on hand-made weights."""
import numpy as np
import pytest

from vaefrag import tracking
from vaefrag.sweep import analyze_sweep
from vaefrag.synthetic import make_fragment_sweep

# level 1: x+y, scale, shape | level 2: x, y, shape+scale, cos | level 3: x, y, shape+scale
LEVELS = [["x+y", "scale", "shape"], ["x", "y", "shape+scale", "cos"], ["x", "y", "shape+scale"]]


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    d = tmp_path_factory.mktemp("planted")
    make_fragment_sweep(d / "sw", LEVELS, models=8, latents=5, n_points=300, weights=False, empty_fraction=0.0)
    t, analyses = analyze_sweep(d / "sw", cache_dir=d / "cache", device="cpu")
    return t, analyses


def _factors(level, ids):
    return sorted(level.best_factor[i] for i in ids)


def test_planted_sweep_events_come_out_as_planted(planted):
    t, analyses = planted
    assert [lv.n_hotspots for lv in t.levels] == [3, 4, 3]
    assert all((lv.sizes == 8).all() and (lv.n_models == 8).all() for lv in t.levels)
    kinds = sorted((e.kind, e.level) for e in t.events if e.kind != "continues")
    assert kinds == [("appears", 0), ("fades", 1), ("merges", 0), ("splits", 0)]
    l0, l1, l2 = t.levels
    split, = t.events_of("splits")
    assert l0.best_factor[split.sources[0]] in ("x", "y") and _factors(l1, split.targets) == ["x", "y"]
    merge, = t.events_of("merges")
    assert _factors(l0, merge.sources) == ["scale", "shape"] and l1.best_factor[merge.targets[0]] in ("scale", "shape")
    appear, = t.events_of("appears")
    assert l1.best_factor[appear.targets[0]] == "orientation"
    fade, = t.events_of("fades")
    assert fade.level == 1 and l1.best_factor[fade.sources[0]] == "orientation"
    # x, y and shape+scale continue from level 2 to 3, one to one, with NMI near 1
    cont = [e for e in t.events_of("continues") if e.level == 1]
    assert len(cont) == 3 and all(e.nmi[0] > 0.8 for e in cont)


def test_link_weights_are_member_means_and_rows_add_up(planted):
    t, analyses = planted
    cross = np.array([[0.9, 0.1, 0.5], [0.7, np.nan, 0.3]])
    w = tracking.hotspot_link_weights(cross, [[0, 1]], [[0], [1, 2]])
    np.testing.assert_allclose(w, [[0.8, np.mean([0.1, 0.5, 0.3])]])
    rows = tracking.level_rows(t)
    assert [r["hotspots"] for r in rows] == [3, 4, 3]
    assert [r["appears"] for r in rows] == [0, 1, 0] and [r["fades_after"] for r in rows] == [0, 1, 0]
    for r, a in zip(rows, analyses):
        assert r["channels_in_hotspots"] == sum(h.size for h in a.hotspots)
        assert r["fraction_in_hotspots"] == pytest.approx(r["channels_in_hotspots"] / len(a.kept))
        assert r["mean_channel_info"] == pytest.approx(float(np.mean(a.info)))
        assert r["mean_mig"] == pytest.approx(float(np.nanmean(a.model_table["mig"])))
        assert r["mean_models_fraction"] == pytest.approx(np.mean([h.n_models for h in a.hotspots]) / 8)


def test_event_rules_on_hand_made_weights():
    # level 0 has 3 hotspots, level 1 has 4: 0 -> {0, 1} split, {1, 2} -> 2 merge, 3 appears
    w = np.array([[0.6, 0.5, 0.0, 0.0], [0.0, 0.0, 0.7, 0.1], [0.0, 0.0, 0.4, np.nan]])
    links, events = tracking.find_events([w], [3, 4], min_link=0.3)
    assert sorted((a, b) for _, a, b, _ in links) == [(0, 0), (0, 1), (1, 2), (2, 2)]
    got = sorted((e.kind, e.sources, e.targets) for e in events)
    assert got == [("appears", (), (3,)), ("merges", (1, 2), (2,)), ("splits", (0,), (0, 1))]
    # a lone strong link is a continuation; no links at all: everything fades and appears
    _, ev = tracking.find_events([np.array([[0.9]])], [1, 1], 0.3)
    assert [(e.kind, e.nmi) for e in ev] == [("continues", (0.9,))]
    _, ev = tracking.find_events([np.zeros((2, 1))], [2, 1], 0.3)
    assert sorted(e.kind for e in ev) == ["appears", "fades", "fades"]
    with pytest.raises(ValueError, match="expected 1 matrices"):
        tracking.find_events([], [2, 1])


def test_cli_sweep_analyze_prints_events_and_writes_figure_and_csvs(tmp_path, capsys):
    import csv

    from vaefrag.cli import main

    make_fragment_sweep(tmp_path / "sw", LEVELS[:2], models=6, latents=5, n_points=200, weights=False,
                        empty_fraction=0.0)
    out = tmp_path / "out"
    assert main(["sweep", "analyze", str(tmp_path / "sw"), "--cache", str(tmp_path / "c"), "--device", "cpu",
                 "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "splits   beta=1 #" in text and "merges   beta=1 #" in text and "appears  beta=1 -> beta=2 #" in text
    for name in ("tracking.pdf", "tracking.svg", "tracking.png"):
        assert (out / name).stat().st_size > 1000
    levels = list(csv.DictReader(open(out / "levels.csv")))
    assert [int(r["hotspots"]) for r in levels] == [3, 4]
    events = sorted(r["event"] for r in csv.DictReader(open(out / "events.csv")) if r["event"] != "continues")
    assert events == ["appears", "merges", "splits"]
    assert main(["sweep", "analyze", str(tmp_path / "nope")]) == 2
    assert "no such sweep" in capsys.readouterr().err
