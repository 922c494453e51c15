"""The "beyond channels" panel (full latent spaces, fusion of the selection): plain-function tests
of `dashboard.callbacks.beyond` against the library called directly, and one browser test.

The ensemble is a tiny `make_fragment_ensemble`; its analysis is computed once, in a child process
(the test process then never compiles UMAP's numba code). The job functions run here, in this
process (`*_job`: request, `tasks.run`, finish), as a worker runs them.
"""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("dash")

from dash import no_update  # noqa: E402
from dash._utils import to_json  # noqa: E402
from plotly.colors import get_colorscale  # noqa: E402

from vaefrag import fusion, spaces  # noqa: E402
from browser_helpers import _js, _wait  # noqa: E402
from vaefrag.synthetic import make_fragment_ensemble  # noqa: E402
from vaefrag.dashboard import data, ids  # noqa: E402
from vaefrag.dashboard import selection as selmod  # noqa: E402
from vaefrag.dashboard.callbacks import beyond as cbb  # noqa: E402
from vaefrag.dashboard.config import Config  # noqa: E402
from vaefrag.dashboard.jobs import job_id  # noqa: E402
from vaefrag.figures.fusion import fused_space_figure, fusion_agreement_figure  # noqa: E402

NAME = "frag"
STEPS = 15                      # fusion steps in the plain tests (values are compared, not quality)


@pytest.fixture(scope="session")
def served(tmp_path_factory):
    """(Config, Analysis, token) of a 4 x 4 fragment ensemble (N=96) with a warm analysis cache."""
    tmp = tmp_path_factory.mktemp("beyond")
    root, cache = tmp / "ensembles", tmp / "cache"
    path = make_fragment_ensemble(root / NAME, models=4, latents=4, n_points=96, seed=1)
    code = ("import sys; from vaefrag.dashboard import data; "
            "data.compute_analysis(sys.argv[1], data.clean_params(), sys.argv[2])")
    subprocess.run([sys.executable, "-c", code, str(path), str(cache)], check=True, timeout=900)
    a = data.cached_analysis(path, data.clean_params(), cache)
    assert a is not None and a.hotspots, "the fragment ensemble should have hotspots"
    return Config(root=root, cache_dir=cache, default=NAME), a, data.token(NAME, data.clean_params(), a.key)


def _record():
    calls = []
    return calls, calls.append


GRAPH_DATA = "const gd = document.querySelector(arguments[0] + ' .js-plotly-plot'); return gd ? gd.data : null;"


def _hotspot_sel(a, tok):
    h = max(a.hotspots, key=lambda h: h.size)
    return h, {**selmod.hotspot(a, h.id), "key": tok["key"]}


# ----------------------------------------------------------------------------------- browser (one)
@pytest.mark.browser
def test_fuse_selection_in_the_browser(dash_duo, served, monkeypatch):
    """Select a hotspot in the list, open the fusion tab, fuse: the fused space appears, also when
    the poll that finishes the job takes longer than the poll interval (a busy server: Dash drops
    the answer of a callback that is asked again while it runs, so a poll must never overlap the next)."""
    import time as _time

    from vaefrag.dashboard import create_app
    from vaefrag.dashboard.callbacks import jobs as jobs_ui

    finish = cbb.fuse_finish

    def slow_finish(*args, **kwargs):
        _time.sleep(3 * jobs_ui.POLL_MS / 1000)
        return finish(*args, **kwargs)

    monkeypatch.setattr(cbb, "fuse_finish", slow_finish)
    cfg, a, _ = served
    dash_duo.driver.set_window_size(1440, 900)
    dash_duo.start_server(create_app(cfg.root, default=NAME, cache_dir=cfg.cache_dir))
    _wait(dash_duo, lambda: _js(dash_duo, "return document.querySelectorAll('#vf-matrix g.hm image').length") > 0,
          timeout=240, msg="first render")
    h = a.hotspots[0]                                    # the first row of the list (sorted by id)
    dash_duo.find_element(f"#{ids.HOTSPOTS} .ag-row[row-index='0'] .ag-cell[col-id='factor']").click()
    _wait(dash_duo, lambda: f"hotspot={h.id + 1}" in dash_duo.driver.current_url, msg="hotspot selected")
    dash_duo.driver.find_element("xpath", f"//*[@id='{ids.BEYOND_TABS}']//*[normalize-space()='Fuse selection']"
                                 ).click()
    dash_duo.find_element(f"#{ids.FUSE}").click()
    n = data.load_ensemble(cfg.root / NAME).n_points

    points = ("const gd = document.querySelector('#" + ids.FUSED + " .js-plotly-plot');"
              "if (!gd || !gd.data || gd.data.length !== 2) { return -1; }"
              "const x = gd.data[1].x; return (x._inputArray || x).length;")   # typed arrays: {bdata, _inputArray}
    shown = ("return ['" + ids.FUSE_STATUS + "', '" + ids.FUSE_PROGRESS_TEXT + "', '" + ids.FUSE_JOB_PANEL + "']"
             ".map(i => { const e = document.getElementById(i); return e ? i + ': ' + e.innerText : i + ' absent'; })")
    _wait(dash_duo, lambda: _js(dash_duo, points) == n, timeout=120, msg="fused space graph",
          state=lambda: _js(dash_duo, shown))
    bars = _js(dash_duo, GRAPH_DATA, "#" + ids.FUSE_AGREEMENT)[0]["x"]
    assert bars == [f"m{m}:z{c}" for m, c in a.channel_ids[a.kept[sorted(h.members)]]]
    assert "Fused" in dash_duo.find_element(f"#{ids.FUSE_STATUS}").text
    assert dash_duo.get_logs() == []


# -------------------------------------------------------------------------------- full latent spaces
def test_spaces_view_computes_only_on_request(served):
    cfg, a, tok = served
    fig, status = cbb.spaces_view(tok, "nmi", cfg)
    assert not fig.data and "not computed yet" in status.children and "Compute" in status.children
    calls, set_progress = _record()
    done, err = cbb.spaces_job(set_progress, 1, tok, cfg)
    assert err is no_update and done["ensemble"] == NAME
    assert calls and calls[-1][0] == calls[-1][1] != "0"            # progress reached its total
    direct = spaces.ensemble_spaces(cfg.root / NAME, use_cache=False)
    assert done["key"] == direct.key
    for measure in ("nmi", "vi"):
        fig, status = cbb.spaces_view(tok, measure, cfg)
        heat, bars = fig.data
        np.testing.assert_allclose(np.asarray(heat.z, float), getattr(direct, measure), rtol=1e-9, equal_nan=True)
        np.testing.assert_allclose(np.asarray(heat.customdata, float), getattr(direct, f"{measure}_err"),
                                   rtol=1e-9, equal_nan=True)
        np.testing.assert_allclose(np.asarray(bars.y, float), direct.info, rtol=1e-9)
        np.testing.assert_allclose(np.asarray(bars.error_y.array, float), direct.info_err, rtol=1e-9)
        assert f"{direct.n_samples} Monte Carlo draws" in status.children
        assert cbb.spaces_view(tok, measure, cfg)[0] is fig          # built once per result and measure


def test_spaces_start_says_what_runs(served):
    """Compute replaces "not computed yet" by what the job computes; no analysis: nothing starts."""
    from test_dashboard_jobs import Recorder

    _, _, tok = served
    r = Recorder()
    store, disabled, panel, button_off, cancel_off, status = cbb.spaces_start(1, tok, "c" * 32, r)
    assert r.submitted == [("spaces", {"ensemble": NAME}, "c" * 32)] and store["id"] == job_id("spaces", {"ensemble": NAME})
    assert (disabled, button_off, cancel_off) == (False, True, False)
    assert status.children.startswith(f"Computing the full latent spaces of {NAME}")
    assert cbb.spaces_start(1, None, "c" * 32, r)[0] is no_update and len(r.submitted) == 1
    assert cbb.spaces_start(0, tok, "c" * 32, r)[0] is no_update and len(r.submitted) == 1


def test_spaces_view_and_job_without_ensemble(served):
    cfg, _, tok = served
    fig, status = cbb.spaces_view(None, "nmi", cfg)
    assert not fig.data and status is None
    assert cbb.spaces_job(lambda _: None, 0, tok, cfg) == (no_update, no_update)
    fig, status = cbb.spaces_view({**tok, "ensemble": "missing"}, "nmi", cfg)
    assert not fig.data and "missing" in status.children
    done, status = cbb.spaces_job(lambda _: None, 1, {**tok, "ensemble": "../x"}, cfg)
    assert done is no_update and "failed" in status.children


def test_ensemble_spaces_compute_false_never_computes(served, tmp_path):
    cfg, _, _ = served
    assert spaces.ensemble_spaces(cfg.root / NAME, n_samples=50, cache_dir=tmp_path, compute=False) is None
    got = spaces.ensemble_spaces(cfg.root / NAME, n_samples=50, cache_dir=tmp_path)
    hit = spaces.ensemble_spaces(cfg.root / NAME, n_samples=50, cache_dir=tmp_path, compute=False)
    assert hit.from_cache and hit.key == got.key
    np.testing.assert_array_equal(hit.vi, got.vi)


# ------------------------------------------------------------------------------------------ fusion
def test_fuse_job_matches_fuse_selection(served):
    cfg, a, tok = served
    ens = data.load_ensemble(cfg.root / NAME)
    h, sel = _hotspot_sel(a, tok)
    pairs = a.channel_ids[a.kept[sorted(h.members)]]
    calls, set_progress = _record()
    fused, agree, status, store = cbb.fuse_job(set_progress, 1, tok, sel, "vi", "factor:3", cfg, steps=STEPS)
    direct = fusion.fuse_selection(ens.mu, ens.logvar, pairs, k=2, objective="vi", steps=STEPS, lr=cbb.FUSE_LR,
                                   seed=cbb.FUSE_SEED)
    bar = agree.data[0]
    np.testing.assert_allclose(np.asarray(bar.y, float), direct.nmi_inputs, rtol=1e-6)
    assert list(bar.x) == [f"m{m}:z{c}" for m, c in pairs]
    ellipses, markers = fused.data
    np.testing.assert_allclose(np.c_[markers.x, markers.y], direct.mu, rtol=1e-6, atol=1e-9)
    np.testing.assert_array_equal(markers.marker.color, ens.factors[:, 3])
    assert markers.marker.cmax - markers.marker.cmin == np.ptp(ens.factors[:, 3]) + 1   # integer factor
    assert markers.marker.colorbar.title.text == ens.factor_names[3]
    assert len(ellipses.x) == ens.n_points * 25                       # 24 points + a gap per ellipse
    assert f"Fused {len(pairs)} channels" in status.children and f"{direct.mean_nmi:.3f}" in status.children
    assert store == {"ensemble": NAME, "key": tok["key"], "channels": pairs.tolist(), "n_points": ens.n_points,
                     "color": "factor:3"}
    assert calls[-1][:2] == (str(STEPS), str(STEPS))


@pytest.mark.parametrize("sel", [None, "empty", "stale"])
def test_fuse_job_without_selection_alerts(served, sel):
    cfg, a, tok = served
    if sel == "empty":
        sel = {"kind": "model", "channels": [], "hotspot": None, "model": 0, "channel": None, "key": tok["key"]}
    elif sel == "stale":
        sel = {**_hotspot_sel(a, tok)[1], "key": "another analysis"}
    fused, agree, status, store = cbb.fuse_job(lambda _: None, 1, tok, sel, "nmi", "index", cfg, steps=STEPS)
    assert "Nothing to fuse" in status.children and "vf-alert-info" in status.className
    assert not fused.data and not agree.data and store is None
    assert cbb.fuse_job(lambda _: None, 0, tok, sel, "nmi", "index", cfg) == (no_update,) * 4
    _, _, status, _ = cbb.fuse_job(lambda _: None, 1, None, sel, "nmi", "index", cfg)
    assert "No analysis" in status.children


def test_fusion_caps_the_inputs(served, monkeypatch):
    cfg, a, tok = served
    monkeypatch.setattr(cbb, "MAX_INPUTS", 3)
    sel = {"kind": "channels", "channels": list(range(len(a.kept))), "hotspot": None, "model": None,
           "channel": None, "key": tok["key"]}
    pairs, note = cbb.selected_channels(a, sel)
    top = np.sort(np.argsort(-a.info[a.kept], kind="stable")[:3])
    np.testing.assert_array_equal(pairs, a.channel_ids[a.kept[top]])
    assert "At most 3 channels" in note
    _, agree, status, store = cbb.fuse_job(lambda _: None, 1, tok, sel, "info", "index", cfg, steps=2)
    assert len(agree.data[0].y) == 3 and "At most 3 channels" in status.children and len(store["channels"]) == 3


def test_color_options_recolor_and_reset(served):
    cfg, _, tok = served
    ens = data.load_ensemble(cfg.root / NAME)
    opts, value = cbb.color_options(tok, None, cfg)
    assert [o["label"] for o in opts] == ["point index", *ens.factor_names] and value == "factor:0"
    assert cbb.color_options(tok, "index", cfg)[1] == "index"
    assert cbb.color_options(None, "factor:2", cfg) == (no_update, no_update)
    assert cbb.color_options({**tok, "ensemble": "missing"}, "factor:2", cfg) == (
        [{"label": "point index", "value": "index"}], "index")
    store = {"ensemble": NAME, "key": tok["key"], "channels": [[0, 0]], "n_points": ens.n_points, "color": "index"}
    assert cbb.recolor("index", None, {ids.FUSE_COLOR}, cfg) is no_update
    assert cbb.recolor("index", store, {ids.FUSION}, cfg) is no_update        # drawn with this colour
    def ops(color):
        patch = cbb.recolor(color, store, {ids.FUSE_COLOR}, cfg).to_plotly_json()
        return {o["location"][-1]: o["params"]["value"] for o in patch["operations"]
                if o["location"][:3] == ["data", 1, "marker"]}

    got = ops("factor:1")                         # a factor of few values: one band each, ticks naming them
    f = ens.factors[:, 1]
    vals = sorted(set(f.tolist()))
    k = len(vals)
    assert 2 <= k <= 12 and got["color"] == [vals.index(v) for v in f.tolist()]      # the value's rank
    assert (got["cmin"], got["cmax"]) == (-0.5, k - 0.5)
    assert got["colorbar"] == {"title": {"text": ens.factor_names[1]}, "tickvals": list(range(k)),
                               "ticktext": [f"{v:g}" for v in vals]}
    scale = got["colorscale"]                     # [pos, colour] pairs: band i spans [i/k, (i+1)/k] in one colour
    assert [p for p, _ in scale] == pytest.approx([b for i in range(k) for b in (i / k, (i + 1) / k)])
    colours = [c for _, c in scale]
    assert colours[0::2] == colours[1::2] and len(set(colours[0::2])) == k
    got = ops("index")
    assert got["color"] == list(range(ens.n_points)) and got["cmin"] is None and got["cmax"] is None
    assert got["colorscale"] == get_colorscale("Viridis")
    assert cbb.reset_fusion(tok, store) == (no_update,) * 4
    assert cbb.reset_fusion(tok, None) == (no_update, no_update, None, no_update)
    fused, agree, status, new = cbb.reset_fusion({**tok, "ensemble": "other"}, store)
    assert not fused.data and not agree.data and status is None and new is None


def test_fused_colours_band_few_values_by_rank_and_wrap_many():
    from vaefrag.figures.fusion import DISCRETE_MAX, fused_marker_colors

    few = fused_marker_colors(6, np.array([5, 0, 1, 5, 1, 0]), "shape")        # unequal spacing: by rank
    assert few["color"].tolist() == [2, 0, 1, 2, 1, 0] and few["colorbar"]["ticktext"] == ["0", "1", "5"]
    many = np.arange(DISCRETE_MAX + 1) * 2.0                                    # an angle-like factor
    wide = fused_marker_colors(len(many), many, "angle")
    assert wide["color"].tolist() == many.tolist() and wide["colorscale"] == get_colorscale("HSV")
    assert (wide["cmin"], wide["cmax"]) == (0.0, many[-1] + 2.0) and "tickvals" not in wide["colorbar"]
    with pytest.raises(ValueError, match="expected 6 values"):
        fused_marker_colors(6, np.zeros(5))


def _random_fusion(rng, n: int, c: int) -> fusion.FusionResult:
    """A 2-D fusion result of n points from c inputs with random values (figure sizes and types only)."""
    return fusion.FusionResult(mu=rng.normal(size=(n, 2)), logvar=rng.normal(-2, 0.3, (n, 2)), bc=np.eye(n), info=5.0,
                               self_info=4.0, nmi_inputs=rng.random(c), vi_inputs=rng.random(c),
                               mutual_inputs=rng.random(c), input_info=rng.random(c), history=np.zeros(1),
                               objective="nmi", k=2)


def test_fusion_responses_stay_small():
    """N=1000 points with ellipses and 40 inputs: each figure's JSON well under 2 MB."""
    rng = np.random.default_rng(0)
    n, c = 1000, 40
    res = _random_fusion(rng, n, c)
    fused = fused_space_figure(res, factor=rng.integers(0, 40, n), factor_name="orientation")
    agree = fusion_agreement_figure(res, [f"model {i}, channel 0" for i in range(c)])
    assert len(to_json(fused)) < 2_000_000 and len(to_json(agree)) < 100_000


def test_every_dashboard_figure_is_drawable_by_the_partial_plotly_bundle(served):
    """The page loads plotly.js's cartesian bundle (assets/): every trace type the dashboard sends
    must be one the bundle registers (read from the bundle itself)."""
    import re

    from vaefrag.dashboard.app import ASSETS, PLOTLY_BUNDLE_VERSION
    from vaefrag.dashboard.callbacks import views as cbv
    from vaefrag.figures.fusion import spaces_figure

    bundle = (ASSETS / f"plotly-cartesian-{PLOTLY_BUNDLE_VERSION}.min.js").read_text()
    assert f"v{PLOTLY_BUNDLE_VERSION}" in bundle[:200]
    registered = set(re.findall(r'moduleType:"trace",name:"(\w+)"', bundle))
    assert {"bar", "heatmap", "scatter"} <= registered and "scattergl" not in registered
    cfg, a, tok = served
    rng = np.random.default_rng(0)
    n, c = 50, 3
    res = _random_fusion(rng, n, c)
    sp = spaces.compare_model_spaces(rng.normal(size=(2, 30, 2)), np.full((2, 30, 2), -2.0), n_samples=20)
    figs = [cbv.matrix_view(tok, m, None, set(), cfg) for m in ("nmi", "vi")]
    figs += [cbv.map_view(tok, m, col, None, set(), cfg) for m in ("umap", "mds") for col in ("hotspot", "info")]
    figs += [fused_space_figure(res), fusion_agreement_figure(res), spaces_figure(sp)]
    from vaefrag import crossrun
    from vaefrag.figures.crossrun import ensemble_match_figure
    path = cfg.root / NAME
    figs.append(ensemble_match_figure(crossrun.compare_ensembles(path, path, cache_dir=cfg.cache_dir,
                                                                 **tok["params"])))
    used = {t.type for f in figs for t in f.data}
    assert used and used <= registered, used - registered


# ------------------------------------------------------------------------------- compare ensembles
@pytest.fixture(scope="module")
def two_roots(tmp_path_factory):
    """Ensembles "a" and "b" on the same fingerprint points (b: the first 3 members' recipe with 3
    models), "c" on other points; analyses of a and b computed in a child process."""
    tmp = tmp_path_factory.mktemp("compare")
    root, cache = tmp / "ensembles", tmp / "cache"
    a = make_fragment_ensemble(root / "a", models=4, latents=4, n_points=96, seed=1)
    b = make_fragment_ensemble(root / "b", models=3, latents=4, n_points=96, seed=1)
    make_fragment_ensemble(root / "c", models=3, latents=4, n_points=96, seed=2)
    code = ("import sys; from vaefrag.dashboard import data; "
            "[data.compute_analysis(p, data.clean_params(), sys.argv[1]) for p in sys.argv[2:]]")
    subprocess.run([sys.executable, "-c", code, str(cache), str(a), str(b)], check=True, timeout=900)
    an = data.cached_analysis(a, data.clean_params(), cache)
    return Config(root=root, cache_dir=cache, default="a"), data.token("a", data.clean_params(), an.key)


def test_compare_tab_offers_the_other_ensembles_and_draws_the_library_result(two_roots):
    from vaefrag import crossrun

    cfg, tok = two_roots
    # c's manifest names other fingerprint points (seed 2): not offered
    assert cbb.compare_options(tok, None, cfg) == ([{"label": "b", "value": "b"}], "b")
    assert cbb.compare_options(tok, "c", cfg)[1] == "b"
    assert cbb.compare_options(None, None, cfg) == (no_update, no_update)
    calls, record = _record()
    fig, status = cbb.compare_job(record, 1, tok, "b", cfg)
    ref = crossrun.compare_ensembles(cfg.root / "a", cfg.root / "b", cache_dir=cfg.cache_dir, **tok["params"])
    np.testing.assert_allclose(np.asarray(fig.data[0].z, dtype=float), ref.hotspot_nmi, atol=1e-3)
    assert len(fig.data[0].y) == len(ref.matches_a) and len(fig.data[0].x) == len(ref.matches_b)
    assert "vf-alert-ok" in status.className and calls
    # b's members are a's first three (same recipe and seeds): each of b's hotspot medoids is itself a
    # channel of a, so its best match in a has NMI 1
    assert ref.matches_b and all(m.best_channel_nmi > 0.999 for m in ref.matches_b)


def test_compare_job_refuses_other_points_and_asks_for_a_choice(two_roots):
    """c is not offered, but a stale or hand-made request for it is still refused by the job."""
    cfg, tok = two_roots
    _, record = _record()
    fig, status = cbb.compare_job(record, 1, tok, "c", cfg)
    assert "vf-alert-error" in status.className or "vf-alert" in status.className
    assert "fingerprint" in status.children and "c" in status.children
    fig, status = cbb.compare_job(record, 1, tok, None, cfg)
    assert "Pick another ensemble" in status.children
    assert cbb.compare_job(record, 0, tok, "b", cfg) == (no_update, no_update)


@pytest.mark.browser
def test_compare_ensembles_in_the_browser(dash_duo, two_roots):
    """Open the compare tab: the other ensemble is offered; Compare draws the hotspot matrix."""
    from vaefrag import crossrun
    from vaefrag.dashboard import create_app

    cfg, tok = two_roots
    ref = crossrun.compare_ensembles(cfg.root / "a", cfg.root / "b", cache_dir=cfg.cache_dir, **tok["params"])
    dash_duo.driver.set_window_size(1440, 900)
    dash_duo.start_server(create_app(cfg.root, default="a", cache_dir=cfg.cache_dir))
    _wait(dash_duo, lambda: _js(dash_duo, "return document.querySelectorAll('#vf-matrix g.hm image').length") > 0,
          timeout=240, msg="first render")
    dash_duo.driver.find_element("xpath", f"//*[@id='{ids.BEYOND_TABS}']//*[normalize-space()='Compare ensembles']"
                                 ).click()
    _wait(dash_duo, lambda: "b" in dash_duo.find_element(f"#{ids.COMPARE_WITH}").text, msg="other ensemble offered")
    dash_duo.find_element(f"#{ids.COMPARE}").click()
    rows = ("const gd = document.querySelector('#" + ids.COMPARE_GRAPH + " .js-plotly-plot');"
            "return gd && gd.data && gd.data.length && gd.data[0].type === 'heatmap' ? gd.data[0].y : null;")
    _wait(dash_duo, lambda: _js(dash_duo, rows) is not None, timeout=120, msg="compare graph")
    assert len(_js(dash_duo, rows)) == len(ref.matches_a)
    assert "hotspots in a" in dash_duo.find_element(f"#{ids.COMPARE_STATUS}").text
    assert dash_duo.get_logs() == []


def test_a_broken_ensemble_is_listed_with_its_error_and_breaks_nothing(two_roots, tmp_path):
    """One damaged manifest in the root (nested 100000 deep) is listed as broken, disabled, in the
    compare tab and in the ensemble list; comparing with it is an alert, not a 500."""
    import os

    cfg, tok = two_roots
    broken = cfg.root / "zz-broken"
    broken.mkdir()
    try:
        (broken / "ensemble.json").write_text("[" * 100000 + "]" * 100000)
        os.link(cfg.root / "b" / "posteriors.npz", broken / "posteriors.npz")
        opts, value = cbb.compare_options(tok, None, cfg)
        assert opts[0] == {"label": "b", "value": "b"} and value == "b"
        assert opts[1]["value"] == "zz-broken" and opts[1]["disabled"]
        assert "nested too deeply" in opts[1]["label"]
        listed = {o["value"]: o["label"] for o in data.ensemble_options(cfg.root)}
        assert listed["a"] == "a" and "broken" in listed["zz-broken"]
        from vaefrag.dashboard import create_app

        page = str(create_app(cfg.root, default="a", cache_dir=cfg.cache_dir).layout())   # the page's own list
        assert "zz-broken (broken: " in page
        fig, status = cbb.compare_job(lambda _: None, 1, tok, "zz-broken", cfg)
        assert "vf-alert-error" in status.className and "nested too deeply" in status.children
    finally:
        import shutil

        shutil.rmtree(broken)
