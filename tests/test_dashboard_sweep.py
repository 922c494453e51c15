"""The dashboard's Sweep tab as plain functions on a planted sweep whose members sit in the
dashboard's ensembles directory: the sweeps beside it are offered, the job's tree has one node per
hotspot of the library's tracking (sizes, factors, links), a click on a node sets the URL to open
that member with the hotspot selected (1-based), and bad input is refused with a message."""
from __future__ import annotations

import pytest

pytest.importorskip("dash")

from dash import no_update  # noqa: E402

from vaefrag.dashboard import data  # noqa: E402
from vaefrag.dashboard import sweep as dsw  # noqa: E402
from vaefrag.dashboard.config import Config  # noqa: E402
from vaefrag.synthetic import make_fragment_ensemble  # noqa: E402

LEVELS = [["x+y", "scale", "shape"], ["x", "y", "shape+scale", "cos"]]


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    from vaefrag.sweep import make_sweep

    tmp = tmp_path_factory.mktemp("dsweep")
    root = tmp / "ensembles"
    dirs = [make_fragment_ensemble(root / f"planted-{i + 1}", models=6, latents=5, n_points=160, seed=10 + i,
                                   fingerprint_seed=0, fragments=frags, empty_fraction=0.0, weights=False)
            for i, frags in enumerate(LEVELS)]
    make_sweep(tmp / "sweeps" / "planted", dirs, "beta", values=[1.0, 2.0])
    make_sweep(tmp / "sweeps" / "elsewhere", [make_fragment_ensemble(tmp / "other" / f"o{i}", models=4, latents=3,
                                                                     n_points=80, seed=i, fingerprint_seed=0,
                                                                     weights=False) for i in range(2)],
               "beta", values=[1.0, 2.0])
    return Config(root=root, cache_dir=tmp / "cache", default="planted-1")


def _record():
    calls = []
    return calls, lambda v: calls.append(v)


def test_sweep_tab_lists_tracks_and_opens_nodes(env):
    from vaefrag.sweep import analyze_sweep

    cfg = env
    assert dsw.sweep_options(None, cfg) == ([{"label": "elsewhere", "value": "elsewhere"},
                                            {"label": "planted", "value": "planted"}], "elsewhere")
    assert dsw.sweep_options("planted", cfg)[1] == "planted"
    calls, record = _record()
    fig, status, nodes = dsw.track_job(record, 1, "planted", cfg)
    ref, _ = analyze_sweep(dsw.sweeps_root(cfg) / "planted", cache_dir=cfg.cache_dir, **data.DEFAULT_PARAMS)
    markers = [t for t in fig.data if t.mode == "markers+text"]
    custom = sorted(tuple(c) for t in markers for c in t.customdata)
    assert custom == sorted((i, h) for i, lv in enumerate(ref.levels) for h in range(lv.n_hotspots))
    lines = [t for t in fig.data if t.mode == "lines"]
    assert len(lines) == len(ref.links) and all(t.hoverinfo == "skip" for t in lines)   # a node's centre is the node's
    mids = next(t for t in fig.data if t.name == "links")                                # the links hover at their middles
    assert [float(x) for x in mids.x] == [i + 0.5 for i, *_ in ref.links] and len(mids.hovertext) == len(ref.links)
    by_factor = {t.name: len(t.customdata) for t in markers}
    assert by_factor == {f: sum(lv.best_factor.count(f) for lv in ref.levels)
                         for f in {f for lv in ref.levels for f in lv.best_factor}}
    assert "1 splits" in status.children and "1 merges" in status.children and "1 appears" in status.children
    assert calls and nodes["levels"][1]["ensemble"] == "planted-2"
    # click the second level's first hotspot: the URL opens planted-2 with hotspot 1
    click = {"points": [{"customdata": [1, 0]}]}
    assert dsw.open_node(click, nodes, cfg) == ("?ensemble=planted-2&hotspot=1", no_update)
    # a click on an edge (no customdata), a stale node, a track request of an unknown sweep
    assert dsw.open_node({"points": [{"x": 0.5}]}, nodes, cfg) == (no_update, no_update)
    url, msg = dsw.open_node({"points": [{"customdata": [1, 99]}]}, nodes, cfg)
    assert url is no_update and "track it again" in msg.children
    fig, status, nodes_bad = dsw.track_job(record, 1, "../planted", cfg)
    assert nodes_bad is None and "No sweep named" in status.children
    assert dsw.track_job(record, 0, "planted", cfg) == (no_update, no_update, no_update)


def test_members_outside_the_ensembles_dir_are_tracked_but_not_opened(env):
    cfg = env
    _, record = _record()
    fig, status, nodes = dsw.track_job(record, 1, "elsewhere", cfg)
    assert nodes["levels"][0]["ensemble"] is None
    hit = next((i, h) for i, lv in enumerate(nodes["levels"]) for h in range(lv["hotspots"]))
    url, msg = dsw.open_node({"points": [{"customdata": list(hit)}]}, nodes, cfg)
    assert url is no_update and "not an ensemble under" in msg.children


def test_training_tab_draws_the_library_dynamics_and_refuses_ensembles_without_checkpoints(tmp_path):
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).parent))
    from test_dynamics import _planted

    from vaefrag.dynamics import training_dynamics

    root = tmp_path / "ensembles"
    _planted(root / "ckpt")
    make_fragment_ensemble(root / "plain", models=3, latents=3, n_points=60, weights=False)
    cfg = Config(root=root, cache_dir=tmp_path / "cache", default="ckpt")
    calls, record = _record()
    tok = {"ensemble": "ckpt", "params": data.DEFAULT_PARAMS}
    fig, status = dsw.dynamics_job(record, 1, tok, cfg)
    ref = training_dynamics(root / "ckpt", n_samples=dsw.DYN_SAMPLES, cache_dir=cfg.cache_dir, **data.DEFAULT_PARAMS)
    assert list(fig.data[0].x) == [10, 20, 30]
    assert list(fig.data[0].y) == pytest.approx(list(ref.nmi_mean)) and list(fig.data[1].y) == pytest.approx(list(ref.vi_mean))
    assert list(fig.data[2].y) == [lv.n_hotspots for lv in ref.tracking.levels]
    assert fig.layout.yaxis3.dtick == 1 and fig.layout.yaxis3.rangemode == "tozero"      # counts: whole ticks
    assert "agree least at step 20" in status.children and calls
    fig, status = dsw.dynamics_job(record, 1, {"ensemble": "plain"}, cfg)
    assert "checkpoints" in status.children and "vf-alert-error" in status.className
    fig, status = dsw.dynamics_job(record, 1, {"ensemble": "../x"}, cfg)
    assert "not a usable ensemble name" in status.children
    assert dsw.dynamics_job(record, 0, tok, cfg) == (no_update, no_update)


def test_the_page_has_the_sweep_tab():
    from vaefrag.dashboard.layout import beyond_panel

    text = str(beyond_panel())
    assert dsw.SWEEP_GRAPH in text and dsw.SWEEP_TRACK in text and "'Sweep'" in text
    assert dsw.DYN_GRAPH in text and "'Training'" in text


@pytest.fixture(scope="module")
def browser_env(tmp_path_factory):
    import subprocess
    import sys

    from vaefrag.sweep import make_sweep

    tmp = tmp_path_factory.mktemp("bsweep")
    root, cache = tmp / "ensembles", tmp / "cache"
    dirs = [make_fragment_ensemble(root / f"planted-{i + 1}", models=6, latents=5, n_points=160, seed=10 + i,
                                   fingerprint_seed=0, fragments=frags, empty_fraction=0.0, weights=True)
            for i, frags in enumerate(LEVELS)]
    make_sweep(tmp / "sweeps" / "planted", dirs, "beta", values=[1.0, 2.0])
    code = ("import sys; from vaefrag.dashboard import data; "
            "[data.compute_analysis(p, data.clean_params(), sys.argv[1]) for p in sys.argv[2:]]")
    subprocess.run([sys.executable, "-c", code, str(cache), *map(str, dirs)], check=True, timeout=900)
    return Config(root=root, cache_dir=cache, default="planted-1")


@pytest.mark.browser
def test_sweep_tab_in_the_browser_tracks_and_a_node_click_opens_the_member(dash_duo, browser_env):
    import time

    from browser_helpers import _js, _wait
    from selenium.webdriver.common.action_chains import ActionChains

    from vaefrag.dashboard import create_app, ids

    cfg = browser_env
    dash_duo.driver.set_window_size(1440, 900)
    dash_duo.start_server(create_app(cfg.root, default="planted-1", cache_dir=cfg.cache_dir))
    _wait(dash_duo, lambda: _js(dash_duo, "return document.querySelectorAll('#vf-matrix g.hm image').length") > 0,
          timeout=240, msg="first render")
    dash_duo.driver.find_element("xpath", f"//*[@id='{ids.BEYOND_TABS}']//*[normalize-space()='Sweep']").click()
    _wait(dash_duo, lambda: "planted" in dash_duo.find_element(f"#{dsw.SWEEP_NAME}").text, msg="sweep offered")
    dash_duo.find_element(f"#{dsw.SWEEP_TRACK}").click()
    nodes = ("const gd = document.querySelector('#" + dsw.SWEEP_GRAPH + " .js-plotly-plot');"
             "if (!gd || !gd.data) return null; const t = gd.data.filter(d => d.mode === 'markers+text');"
             "return t.length ? t.reduce((n, d) => n + d.customdata.length, 0) : null;")
    _wait(dash_duo, lambda: _js(dash_duo, nodes) is not None, timeout=180, msg="tracking tree")
    assert _js(dash_duo, nodes) == 3 + 4
    assert "1 splits" in dash_duo.find_element(f"#{dsw.SWEEP_STATUS}").text
    # a mouse click on the centre of the second level's first hotspot (where the links to it end)
    where = ("const gd = document.querySelector('#" + dsw.SWEEP_GRAPH + " .js-plotly-plot');"
             "const c = gd.data.findIndex(d => d.mode === 'markers+text' && d.customdata.some(v => v[0] === 1 && v[1] === 0));"
             "return [c, gd.data[c].customdata.findIndex(v => v[0] === 1 && v[1] === 0)];")
    curve, point = _js(dash_duo, where)
    node = dash_duo.find_elements(f"#{dsw.SWEEP_GRAPH} .scatterlayer .trace")[curve].find_elements("css selector", ".point")[point]
    ActionChains(dash_duo.driver).move_to_element(node).pause(0.3).click().perform()
    _wait(dash_duo, lambda: "ensemble=planted-2" in dash_duo.driver.current_url, timeout=60, msg="URL of the member")
    assert "hotspot=1" in dash_duo.driver.current_url
    _wait(dash_duo, lambda: "planted-2" in dash_duo.find_element(f"#{ids.ENSEMBLE}").text, timeout=120,
          msg="member opened")
    # the page's URL writer keeps the hotspot once the member's analysis is open: it is the selection
    _wait(dash_duo, lambda: _js(dash_duo, "return document.querySelectorAll('#vf-matrix g.hm image').length") > 0,
          timeout=120, msg="member drawn")
    time.sleep(1.0)
    assert "ensemble=planted-2" in dash_duo.driver.current_url and "hotspot=1" in dash_duo.driver.current_url
    assert dash_duo.get_logs() == []
