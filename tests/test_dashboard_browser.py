"""Real-browser tests of the dashboard (headless Chromium through dash[testing]'s ``dash_duo``).

Run: ``python -m pytest tests/test_dashboard_browser.py --webdriver Chrome --headless``.
The interactive tests serve ``$VAEFRAG_TEST_ENSEMBLES`` or a small fragment ensemble written to
a temporary directory (its analysis computed once per session, so the app starts with a warm
cache); `test_app_opens_the_shipped_sprites_ensemble` opens ``data/ensembles`` itself, with the
analysis cache at its default place (``$VAEFRAG_CACHE`` or ``~/.cache/vaefrag``).
"""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("dash")

from selenium.webdriver.common.action_chains import ActionChains  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402

from browser_helpers import _js, _wait  # noqa: E402
from vaefrag.synthetic import make_fragment_ensemble  # noqa: E402
from vaefrag.dashboard import create_app, data, ids  # noqa: E402
from vaefrag.dashboard.app import pick_default  # noqa: E402
from vaefrag.figures import views  # noqa: E402

pytestmark = pytest.mark.browser
REPO = Path(__file__).resolve().parents[1]


def _analyse_in_child(path: Path, cache) -> None:
    """Warm the analysis cache in a child process (the app's jobs run in worker processes anyway;
    this keeps UMAP's numba compilation out of the test process)."""
    code = ("import sys; from vaefrag.dashboard import data; "
            "data.compute_analysis(sys.argv[1], data.clean_params(), sys.argv[2] or None)")
    subprocess.run([sys.executable, "-c", code, str(path), str(cache or "")], check=True, timeout=1800)


@pytest.fixture(scope="session")
def served(tmp_path_factory):
    """(ensembles root, cache dir, default name, Analysis) with the analysis already cached.

    The ensembles are ``$VAEFRAG_TEST_ENSEMBLES`` or a small fragment ensemble written to a
    temporary directory; uploads of the tests go to a scratch list of links, never into them.
    """
    tmp = tmp_path_factory.mktemp("dashb")
    cache = tmp / "cache"
    env = os.environ.get("VAEFRAG_TEST_ENSEMBLES")
    if env:
        root = Path(env)
    else:
        root = tmp / "ensembles"
        make_fragment_ensemble(root / "frag", models=6, latents=5, n_points=160, seed=1)
        # a second ensemble: switching ensembles, and hotspots of ~20 members (more than a page of traversals)
        make_fragment_ensemble(root / "frag25", models=25, latents=5, n_points=160, seed=2, width=4, hidden=16)
    work = tmp / "work"
    work.mkdir()
    for name in data.ensemble_names(root):
        (work / name).symlink_to((root / name).resolve(), target_is_directory=True)
    name = pick_default(data.ensemble_names(work))
    for other in data.ensemble_names(work):
        _analyse_in_child(work / other, cache)
    a = data.cached_analysis(work / name, data.clean_params(), cache)
    assert a is not None
    return work, cache, name, a


@pytest.fixture
def app_duo(dash_duo, served):
    root, cache, name, a = served
    app = create_app(root, default=name, cache_dir=cache)
    dash_duo.driver.set_window_size(1440, 900)
    dash_duo.start_server(app)
    dash_duo.vaefrag_root = root
    dash_duo.vaefrag_cache = cache
    # a warm cache renders in seconds; allow for a recompute when the analysis code changed meanwhile
    _wait(dash_duo, lambda: _js(dash_duo, "return document.querySelectorAll('#vf-matrix g.hm image').length") > 0,
          timeout=240, msg="first render")
    return dash_duo, a


ROWS = ".ag-center-cols-container .ag-row"


def _row(duo, grid: str, index: int, col: str = "factor"):
    """The cell ``col`` of the row shown at ``index`` (display order) of an AG Grid table."""
    return duo.find_element(f"#{grid} {ROWS}[row-index='{index}'] .ag-cell[col-id='{col}']")


GRAPH_DATA = "const gd = document.querySelector(arguments[0] + ' .js-plotly-plot'); return gd ? gd.data : null;"


def _map_selected(duo) -> set[int] | None:
    """Kept indices the map highlights (None when nothing is selected)."""
    traces = _js(duo, GRAPH_DATA, "#" + ids.MAP)
    if all(t.get("selectedpoints") is None for t in traces):
        return None
    out = set()
    for t in traces:
        for i in t.get("selectedpoints") or []:
            out.add(int(t["customdata"][i][0]))
    return out


def test_app_loads_with_views_filled(app_duo):
    duo, a = app_duo
    _wait(duo, lambda: len(duo.find_elements(f"#{ids.HOTSPOTS} {ROWS}")) >= len(a.hotspots), msg="hotspot rows")
    rows = duo.find_elements(f"#{ids.HOTSPOTS} {ROWS} .ag-cell[col-id='number']")
    assert sorted(int(r.text) for r in rows) == sorted(h.id + 1 for h in a.hotspots)   # shown 1-based, as the CLI
    traces = _js(duo, GRAPH_DATA, "#" + ids.MAP)
    assert sum(len(t["customdata"]) for t in traces) == len(a.kept)
    assert a.ensemble_name in duo.find_element(f"#{ids.ENSEMBLE}").text
    assert "ensemble=" in duo.driver.current_url                  # state mirrored into the URL
    assert duo.get_logs() == []


UPDATES_JS = ("return performance.getEntriesByType('resource')"
              ".filter(e => e.name.includes('_dash-update-component')).length;")


def test_the_page_as_served_needs_no_callback(app_duo):
    """The layout carries what every view's callback would compute (`callbacks.first_page`): the
    first page sends no callback request, shows those values, and the callbacks run on a change."""
    duo, a = app_duo
    _wait(duo, lambda: len(duo.find_elements(f"#{ids.HOTSPOTS} {ROWS}")) >= len(a.hotspots), msg="hotspot rows")
    time.sleep(1.5)                                              # anything the page would still ask for
    assert _js(duo, UPDATES_JS) == 0
    assert duo.find_element(f"#{ids.ENSEMBLE_INFO}").text == "6 models x 5 latents, N=160 (sprites)"
    assert len(duo.find_elements(f"#{ids.BASE_STRIP} img")) == 24
    assert duo.find_element(f"#{ids.SELECTION_INFO}").text.startswith("Nothing selected")
    assert "ensemble=" in duo.driver.current_url                  # the URL writer runs in the browser
    _row(duo, ids.HOTSPOTS, 0).click()
    _wait(duo, lambda: len(duo.find_elements(f"#{ids.TRAVERSALS} figure")) > 0, msg="traversals after a click")
    assert _js(duo, UPDATES_JS) > 0 and duo.get_logs() == []


def test_app_opens_the_shipped_sprites_ensemble(dash_duo):
    shipped = REPO / "data" / "ensembles"
    names = data.ensemble_names(shipped)
    if not any("sprites" in n for n in names):
        pytest.skip("no shipped sprites ensemble under data/ensembles yet")
    name = pick_default(names)
    _analyse_in_child(shipped / name, None)          # default cache: fast after the first time
    a = data.cached_analysis(shipped / name, data.clean_params())
    dash_duo.driver.set_window_size(1440, 900)
    dash_duo.start_server(create_app(shipped))
    _wait(dash_duo, lambda: _js(dash_duo, "return document.querySelectorAll('#vf-matrix g.hm image').length") > 0,
          timeout=120, msg="first render")
    assert name in dash_duo.find_element(f"#{ids.ENSEMBLE}").text and "sprites" in name
    _wait(dash_duo, lambda: len(dash_duo.find_elements(f"#{ids.HOTSPOTS} {ROWS}")) == len(a.hotspots), msg="rows")
    rows = dash_duo.find_elements(f"#{ids.HOTSPOTS} {ROWS} .ag-cell[col-id='number']")
    assert sorted(int(r.get_attribute("textContent")) for r in rows) == sorted(h.id + 1 for h in a.hotspots)
    listed = dash_duo.find_element(f"#{ids.ENSEMBLE}")
    listed.click()
    _wait(dash_duo, lambda: all(n in dash_duo.driver.page_source for n in names), msg="every ensemble listed")


def test_hotspot_band_click_shows_traversals_and_highlights_map(app_duo):
    duo, a = app_duo
    h = max(a.hotspots, key=lambda h: h.size)
    spans = views.hotspot_spans(a)                      # band bars run over the spans in this order
    offset = sum(b - a_ + 1 for hid, a_, b in spans[:[s[0] for s in spans].index(h.id)])
    width = next(b - a_ + 1 for hid, a_, b in spans if hid == h.id)
    bands = duo.find_elements(f"#{ids.MATRIX} .barlayer .trace:nth-child(2) .point")
    assert len(bands) == sum(b - a_ + 1 for _, a_, b in spans)
    # plotly's drag layer lies over the bars: click at the band's place, as a user does
    ActionChains(duo.driver).move_to_element(bands[offset + width // 2]).pause(0.3).click().perform()
    _wait(duo, lambda: len(duo.find_elements(f"img.{ids.TRAV_IMAGE}")) >= 2, msg="traversal images")
    imgs = duo.find_elements(f"img.{ids.TRAV_IMAGE}")
    assert all(i.get_attribute("src").startswith("data:image/png;base64,") for i in imgs)
    assert len(imgs) == min(h.size, 12)                   # every member, a page at a time
    _wait(duo, lambda: _map_selected(duo) == set(int(m) for m in h.members), msg="map highlight")
    assert f"hotspot={h.id + 1}" in duo.driver.current_url


def test_nmi_vi_switch_redraws_the_matrix(app_duo):
    duo, a = app_duo
    order = a.ordering
    z0 = _matrix_z(duo)
    assert abs(float(_first_offdiag(z0)) - a.nmi[order[0], order[1]]) < 1e-3
    duo.find_element(f"#{ids.MATRIX_MEASURE} input[value='vi']").click()
    want = max(a.vi[order[0], order[1]], 0.0)
    _wait(duo, lambda: abs(float(_first_offdiag(_matrix_z(duo))) - want) < 1e-3,
          msg="VI matrix")
    assert "VI" in duo.find_element(f"#{ids.MATRIX} .cbtitle").text


def _matrix_z(duo):
    return next(t for t in _js(duo, GRAPH_DATA, "#" + ids.MATRIX) if t.get("name") == "matrix")["z"]


def _first_offdiag(z):
    if isinstance(z, dict):       # typed array {dtype, bdata, shape}
        import base64

        arr = np.frombuffer(base64.b64decode(z["bdata"]), dtype=np.dtype(z["dtype"]))
        return arr.reshape([int(s) for s in str(z["shape"]).split(",")])[0, 1]
    return z[0][1]


def test_figure_download_is_a_pdf(app_duo):
    duo, _ = app_duo
    duo.find_element(f"#{ids.EXPORT_FORMAT} input[value='pdf']").click()
    duo.find_element(f"#{ids.EXPORT_FIGURE}").click()
    folder = Path(duo.download_path)
    _wait(duo, lambda: [p for p in folder.glob("*.pdf") if p.stat().st_size > 0], timeout=120, msg="downloaded PDF")
    pdf = next(folder.glob("*.pdf"))
    time.sleep(0.5)
    assert pdf.read_bytes()[:5] == b"%PDF-"


@pytest.mark.parametrize("kind", ["not-npz", "nan"])
def test_bad_upload_shows_error_and_app_keeps_working(app_duo, tmp_path, kind):
    duo, a = app_duo
    bad = tmp_path / "bad.npz"
    if kind == "not-npz":
        bad.write_bytes(b"this is not a zip archive")
    else:
        mu = np.zeros((2, 20, 3))
        mu[1, 3, 2] = np.nan
        np.savez(bad, mu=mu, logvar=np.zeros((2, 20, 3)))
    duo.find_element(f"#{ids.UPLOAD} input[type='file']").send_keys(str(bad))
    _wait(duo, lambda: "Upload rejected" in duo.find_element(f"#{ids.UPLOAD_STATUS}").text, msg="error alert")
    # still working: select a hotspot from the list
    h = a.hotspots[0]
    _row(duo, ids.HOTSPOTS, 0).click()
    _wait(duo, lambda: len(duo.find_elements(f"img.{ids.TRAV_IMAGE}")) >= 1, msg="traversals after bad upload")
    _wait(duo, lambda: _map_selected(duo) is not None, msg="map highlight after a bad upload")   # follows the images
    assert h is not None


@pytest.mark.parametrize("size", [(1440, 900), (1920, 1080)])
def test_panels_do_not_overlap(app_duo, size, tmp_path):
    duo, a = app_duo
    duo.driver.set_window_size(*size)
    _row(duo, ids.HOTSPOTS, 0).click()
    _wait(duo, lambda: len(duo.find_elements(f"img.{ids.TRAV_IMAGE}")) >= 1, msg="traversals")
    time.sleep(1.0)
    rects = _js(duo, """return Array.from(document.querySelectorAll('.vf-panel, .vf-sidebar, .vf-header'))
                       .map(e => { const r = e.getBoundingClientRect();
                                   return [e.className, r.left, r.top, r.right, r.bottom]; });""")
    for i, (na, *ra) in enumerate(rects):
        assert ra[2] - ra[0] > 100 and ra[3] - ra[1] > 40, f"{na} collapsed: {ra}"
        for nb, *rb in rects[i + 1:]:
            overlap = min(ra[2], rb[2]) - max(ra[0], rb[0]), min(ra[3], rb[3]) - max(ra[1], rb[1])
            assert overlap[0] <= 0.5 or overlap[1] <= 0.5, f"{na} overlaps {nb}"
    width = _js(duo, "return document.documentElement.scrollWidth")
    assert width <= size[0], "horizontal scroll bar on the page"
    shots = os.environ.get("VAEFRAG_SCREENSHOTS")
    if shots:
        Path(shots).mkdir(parents=True, exist_ok=True)
        duo.driver.save_screenshot(str(Path(shots) / f"dashboard-{size[0]}x{size[1]}.png"))


def _set_input(duo, selector: str, value: str) -> None:
    el = duo.find_element(selector)
    el.send_keys(Keys.CONTROL, "a")
    el.send_keys(Keys.DELETE)
    el.send_keys(value)
    el.send_keys(Keys.TAB)                # debounce=True inputs commit on blur / enter


def _job_visible(duo) -> bool:
    return duo.find_element(f"#{ids.JOB_PANEL}").value_of_css_property("display") != "none"


def test_recompute_runs_in_background_with_progress_and_cancel(app_duo):
    duo, a = app_duo
    # a threshold no other test asks for: a cached result would skip the job (and its progress bar)
    _set_input(duo, f"#{ids.INFO_THRESHOLD}", "0.435")
    duo.find_element(f"#{ids.APPLY}").click()
    _wait(duo, lambda: _job_visible(duo), msg="progress bar")
    assert duo.find_element(f"#{ids.CANCEL}").is_enabled()
    duo.find_element(f"#{ids.CANCEL}").click()
    _wait(duo, lambda: not _job_visible(duo), msg="cancelled job")
    assert "thr=0.435" not in duo.driver.current_url
    # Cancel returns the controls to the analysis on screen, and says so
    _wait(duo, lambda: duo.find_element(f"#{ids.INFO_THRESHOLD}").get_attribute("value") == "0.01",
          msg="threshold back to the analysis on screen")
    assert "Cancelled" in duo.find_element(f"#{ids.STATUS}").text
    # another value: dcc.Input (debounce) does not send a value equal to the one it sent last
    _set_input(duo, f"#{ids.INFO_THRESHOLD}", "0.436")
    duo.find_element(f"#{ids.APPLY}").click()
    # the cancelled job may have left its measures and resamples in the stage caches (they do not
    # depend on the threshold): the recompute then finishes in a moment, maybe between two polls
    _wait(duo, lambda: _job_visible(duo) or "thr=0.436" in duo.driver.current_url, msg="progress bar or result")
    # the page stays usable while (or after) the job runs: pick a hotspot
    _row(duo, ids.HOTSPOTS, 0).click()
    _wait(duo, lambda: len(duo.find_elements(f"img.{ids.TRAV_IMAGE}")) >= 1, msg="traversals during the job")
    _wait(duo, lambda: "thr=0.436" in duo.driver.current_url, timeout=400, msg="recomputed analysis")
    want = int((a.info >= 0.436).sum())         # channel information does not depend on the threshold
    _wait(duo, lambda: sum(len(t["customdata"]) for t in _js(duo, GRAPH_DATA, "#" + ids.MAP)) == want,
          msg="map of the channels above 0.436 bits")
    assert not _job_visible(duo)


def test_good_upload_becomes_an_ensemble_and_is_analysed(app_duo, tmp_path):
    duo, a = app_duo
    root = duo.vaefrag_root
    src = data.load_ensemble(root / a.ensemble_name)
    up = tmp_path / "three models.npz"
    np.savez(up, mu=src.mu[:3], logvar=src.logvar[:3])
    duo.find_element(f"#{ids.UPLOAD} input[type='file']").send_keys(str(up))
    _wait(duo, lambda: "Imported" in duo.find_element(f"#{ids.UPLOAD_STATUS}").text, msg="import message")
    _wait(duo, lambda: "ensemble=three-models" in duo.driver.current_url, timeout=400, msg="analysis of the upload")
    ids3 = a.channel_ids[:, 0] < 3
    want = int((a.info[ids3] >= 0.01).sum())  # the same channels carry the same information
    _wait(duo, lambda: sum(len(t["customdata"]) for t in _js(duo, GRAPH_DATA, "#" + ids.MAP)) == want,
          msg="map of the uploaded ensemble")
    assert "three-models" in duo.find_element(f"#{ids.ENSEMBLE}").text
    assert (root / "three-models" / "posteriors.npz").is_file()


# ------------------------------------------------------------------- selection sequences (issue 14)
def _map_layout(duo) -> dict:
    return _js(duo, "return document.querySelector('#" + ids.MAP + " .js-plotly-plot').layout;")


def _lasso(duo) -> set[int]:
    """Lasso the left half of the map as a user does (mouse drag); returns the channels plotly selected."""
    from selenium.webdriver.common.actions.action_builder import ActionBuilder

    drag = duo.find_element(f"#{ids.MAP} .nsewdrag")
    x0, y0, w, h = _js(duo, "const r = arguments[0].getBoundingClientRect(); return [r.left, r.top, r.width, r.height];",
                       drag)
    pts = [(0.02, 0.05), (0.5, 0.05), (0.5, 0.95), (0.02, 0.95), (0.02, 0.06)]
    ab = ActionBuilder(duo.driver)
    ab.pointer_action.move_to_location(int(x0 + pts[0][0] * w), int(y0 + pts[0][1] * h)).pointer_down()
    for fx, fy in pts[1:]:
        ab.pointer_action.move_to_location(int(x0 + fx * w), int(y0 + fy * h)).pause(0.05)
    ab.pointer_action.pointer_up()
    ab.perform()
    _wait(duo, lambda: _map_selected(duo), msg="lasso selection")
    return _map_selected(duo)


def _caption_labels(duo) -> list[str]:
    return [b.text for b in duo.find_elements(f"#{ids.TRAVERSALS} figcaption b")]


def _hotspot_at_row(duo, a, index: int):
    number = int(_row(duo, ids.HOTSPOTS, index, "number").text)
    return next(h for h in a.hotspots if h.id == number - 1)


def _medoid_label(a, h) -> str:
    return views.channel_label(*a.channel_ids[a.kept[h.medoid]])


def test_lasso_then_clear_empties_the_map_selection(app_duo):
    duo, a = app_duo
    chosen = _lasso(duo)
    assert len(chosen) >= 2
    _wait(duo, lambda: f"{len(chosen)} channels selected" in duo.find_element(f"#{ids.SELECTION_INFO}").text,
          msg="the lasso as the shared selection")
    duo.find_element(f"#{ids.CLEAR}").click()
    _wait(duo, lambda: _map_selected(duo) is None, msg="map selection cleared")
    assert not _map_layout(duo).get("selections")                       # the lasso outline is gone too
    assert duo.find_elements(f"img.{ids.TRAV_IMAGE}") == []
    assert "Nothing selected" in duo.find_element(f"#{ids.SELECTION_INFO}").text


def test_lasso_then_table_row_moves_the_map_to_the_row(app_duo):
    duo, a = app_duo
    _lasso(duo)
    h = _hotspot_at_row(duo, a, 0)
    _row(duo, ids.HOTSPOTS, 0).click()
    _wait(duo, lambda: _map_selected(duo) == set(int(m) for m in h.members), msg="map showing the hotspot")
    assert not _map_layout(duo).get("selections")
    _wait(duo, lambda: _caption_labels(duo)[:1] == [_medoid_label(a, h)], msg="the hotspot's traversals")


def test_clear_then_the_same_row_selects_it_again(app_duo):
    duo, a = app_duo
    h = _hotspot_at_row(duo, a, 0)
    _row(duo, ids.HOTSPOTS, 0).click()
    _wait(duo, lambda: _caption_labels(duo)[:1] == [_medoid_label(a, h)], msg="traversals")
    duo.find_element(f"#{ids.CLEAR}").click()
    _wait(duo, lambda: not _caption_labels(duo) and _map_selected(duo) is None, msg="cleared")
    _row(duo, ids.HOTSPOTS, 0).click()                                   # the same cell, clicked again
    _wait(duo, lambda: _caption_labels(duo)[:1] == [_medoid_label(a, h)], msg="traversals again")
    _wait(duo, lambda: _map_selected(duo) == set(int(m) for m in h.members), msg="map highlight again")


def _open_ensemble(duo, name: str) -> None:
    """Pick ``name`` in the ensemble dropdown, as a user does."""
    duo.find_element(f"#{ids.ENSEMBLE}").click()
    _wait(duo, lambda: [o for o in duo.find_elements("[role='option']") if o.text.strip() == name], msg="options")
    next(o for o in duo.find_elements("[role='option']") if o.text.strip() == name).click()
    _wait(duo, lambda: f"ensemble={name}&" in duo.driver.current_url, timeout=240, msg=f"{name} opened")


def test_the_same_row_in_a_newly_opened_ensemble(app_duo):
    duo, a = app_duo
    root = duo.vaefrag_root
    if "frag25" not in data.ensemble_names(root):
        pytest.skip("needs the second test ensemble")
    b = data.cached_analysis(root / "frag25", data.clean_params(), duo.vaefrag_cache)
    _row(duo, ids.HOTSPOTS, 0).click()
    _wait(duo, lambda: _caption_labels(duo)[:1] == [_medoid_label(a, _hotspot_at_row(duo, a, 0))], msg="traversals")
    _open_ensemble(duo, "frag25")
    _wait(duo, lambda: len(duo.find_elements(f"#{ids.HOTSPOTS} {ROWS}")) == len(b.hotspots), msg="the new table")
    _wait(duo, lambda: not _caption_labels(duo), msg="the old selection dropped")
    h = _hotspot_at_row(duo, b, 0)
    _row(duo, ids.HOTSPOTS, 0).click()                                   # row 0 again, now of frag25
    _wait(duo, lambda: _caption_labels(duo)[:1] == [_medoid_label(b, h)], msg="the new ensemble's traversals")
    _wait(duo, lambda: _map_selected(duo) == set(int(m) for m in h.members), msg="map of the new ensemble")


def test_a_20_member_hotspot_shows_every_traversal(app_duo):
    duo, _ = app_duo
    root = duo.vaefrag_root
    if "frag25" not in data.ensemble_names(root):
        pytest.skip("needs the second test ensemble")
    b = data.cached_analysis(root / "frag25", data.clean_params(), duo.vaefrag_cache)
    h = max(b.hotspots, key=lambda h: h.size)
    assert h.size >= 20
    duo.driver.get(duo.server_url + f"/?ensemble=frag25&hotspot={h.id + 1}")
    _wait(duo, lambda: _caption_labels(duo)[:1] == [_medoid_label(b, h)], timeout=120, msg="the hotspot's traversals")
    assert len(duo.find_elements(f"img.{ids.TRAV_IMAGE}")) == 12          # the first page
    assert f"members 1-12 of {h.size}" in duo.find_element(f"#{ids.TRAV_PAGER}").text
    duo.find_element(f"#{ids.TRAV_NEXT}").click()
    _wait(duo, lambda: len(_caption_labels(duo)) == min(h.size - 12, 12), msg="the second page")
    duo.find_element(f"#{ids.TRAV_ALL} input").click()                  # show all members
    _wait(duo, lambda: len(_caption_labels(duo)) == h.size, msg="every member")
    members = [views.channel_label(*b.channel_ids[b.kept[m]]) for m in h.members]
    assert sorted(_caption_labels(duo)) == sorted(members)
    # by NMI with the medoid: the most atypical member is the last card
    worst = min((m for m in h.members if m != h.medoid), key=lambda m: b.nmi[h.medoid, m])
    assert _caption_labels(duo)[-1] == views.channel_label(*b.channel_ids[b.kept[worst]])
    assert "all=1" in duo.driver.current_url


def test_xi_01_is_accepted_and_used(app_duo):
    duo, a = app_duo
    _set_input(duo, f"#{ids.XI}", "0.1")
    time.sleep(0.5)
    assert duo.find_element(f"#{ids.error_id(ids.XI)}").text == ""
    assert duo.find_element(f"#{ids.APPLY}").is_enabled()
    duo.find_element(f"#{ids.APPLY}").click()
    _wait(duo, lambda: "xi=0.1&" in duo.driver.current_url or duo.driver.current_url.endswith("xi=0.1"),
          timeout=400, msg="the analysis with xi 0.1")
    assert duo.find_element(f"#{ids.XI}").get_attribute("value") == "0.1"


def test_the_paper_preset_fills_the_fields_and_defaults_restore_them(app_duo):
    duo, _ = app_duo
    value = lambda control: duo.find_element(f"#{control}").get_attribute("value")   # noqa: E731
    duo.select_dcc_dropdown(f"#{ids.PRESET}", value="paper")
    _wait(duo, lambda: (value(ids.MIN_SAMPLES), value(ids.XI), value(ids.MIN_NMI)) == ("20", "0.05", "0"),
          msg="the paper's settings in the fields")
    assert duo.find_element(f"#{ids.APPLY}").is_enabled() and duo.find_element(f"#{ids.error_id(ids.MIN_NMI)}").text == ""
    duo.select_dcc_dropdown(f"#{ids.PRESET}", value="vaefrag defaults")
    _wait(duo, lambda: (value(ids.MIN_SAMPLES), value(ids.XI), value(ids.MIN_NMI)) == ("", "", "0.3"),
          msg="the defaults back in the fields")


def test_an_invalid_value_is_refused_with_a_message(app_duo):
    duo, a = app_duo
    _set_input(duo, f"#{ids.XI}", "1.5")
    _wait(duo, lambda: "xi: expected a number in (0, 1)" in duo.find_element(f"#{ids.error_id(ids.XI)}").text,
          msg="error beside the input")
    assert not duo.find_element(f"#{ids.APPLY}").is_enabled()
    _set_input(duo, f"#{ids.INFO_THRESHOLD}", "0.013")                  # fine, but xi still blocks
    time.sleep(0.5)
    assert duo.find_element(f"#{ids.error_id(ids.INFO_THRESHOLD)}").text == ""
    assert not duo.find_element(f"#{ids.APPLY}").is_enabled()
    _set_input(duo, f"#{ids.XI}", "0.2")
    _wait(duo, lambda: duo.find_element(f"#{ids.APPLY}").is_enabled(), msg="Recompute enabled again")
    assert duo.find_element(f"#{ids.error_id(ids.XI)}").text == ""
    _set_input(duo, f"#{ids.TRAV_STEPS}", "40")
    _wait(duo, lambda: "steps: expected an integer from 3 to 15" in duo.find_element(f"#{ids.TRAV_ERROR}").text,
          msg="traversal setting refused")


def test_back_and_forward_walk_the_selection_history(app_duo):
    duo, a = app_duo
    if len(a.hotspots) < 2:
        pytest.skip("needs two hotspots")
    h0, h1 = _hotspot_at_row(duo, a, 0), _hotspot_at_row(duo, a, 1)
    _row(duo, ids.HOTSPOTS, 0).click()
    _wait(duo, lambda: f"hotspot={h0.id + 1}" in duo.driver.current_url, msg="first hotspot in the URL")
    _row(duo, ids.HOTSPOTS, 1).click()
    _wait(duo, lambda: f"hotspot={h1.id + 1}" in duo.driver.current_url, msg="second hotspot in the URL")
    m, z = a.channel_ids[a.kept[int(a.ordering[0])]]
    box = duo.find_element(f"#{ids.CHANNEL_SEARCH}")
    box.send_keys(f"m{m}:z{z}", Keys.ENTER)
    _wait(duo, lambda: f"channel=m{m}%3Az{z}" in duo.driver.current_url, msg="a channel in the URL")
    duo.driver.back()
    _wait(duo, lambda: _caption_labels(duo)[:1] == [_medoid_label(a, h1)], msg="Back: the second hotspot")
    assert f"hotspot={h1.id + 1}" in duo.driver.current_url
    duo.driver.back()
    _wait(duo, lambda: _caption_labels(duo)[:1] == [_medoid_label(a, h0)], msg="Back: the first hotspot")
    _wait(duo, lambda: _map_selected(duo) == set(int(x) for x in h0.members), msg="map follows Back")
    duo.driver.forward()
    _wait(duo, lambda: _caption_labels(duo)[:1] == [_medoid_label(a, h1)], msg="Forward: the second hotspot")


def test_back_after_opening_another_ensemble_returns_to_the_first(app_duo):
    """Back across an ensemble switch: the URL entry names the first ensemble and its hotspot, and the
    page opens them again (the query reaches the analysis callback through the relayed URL query)."""
    duo, a = app_duo
    root = duo.vaefrag_root
    if "frag25" not in data.ensemble_names(root):
        pytest.skip("needs the second test ensemble")
    b = data.cached_analysis(root / "frag25", data.clean_params(), duo.vaefrag_cache)
    h0 = _hotspot_at_row(duo, a, 0)
    _row(duo, ids.HOTSPOTS, 0).click()
    _wait(duo, lambda: f"hotspot={h0.id + 1}" in duo.driver.current_url, msg="the hotspot in the URL")
    _open_ensemble(duo, "frag25")
    _wait(duo, lambda: len(duo.find_elements(f"#{ids.HOTSPOTS} {ROWS}")) == len(b.hotspots), msg="the new table")
    duo.driver.back()
    _wait(duo, lambda: a.ensemble_name in duo.find_element(f"#{ids.ENSEMBLE}").text, timeout=60, msg="Back: the first ensemble")
    _wait(duo, lambda: len(duo.find_elements(f"#{ids.HOTSPOTS} {ROWS}")) == len(a.hotspots), msg="its table")
    _wait(duo, lambda: _caption_labels(duo)[:1] == [_medoid_label(a, h0)], msg="Back: its hotspot's traversals")
    assert f"ensemble={a.ensemble_name}&" in duo.driver.current_url and duo.get_logs() == []


def test_a_link_to_a_hotspot_of_the_page_as_served_selects_it_without_redrawing(dash_duo, served, monkeypatch):
    """``?ensemble=<the default>&hotspot=K``: the hotspot is selected from the URL, and the views of
    the analysis the page carries are not built and sent again (only the selection's patches)."""
    from vaefrag.dashboard.callbacks import views as cbv

    root, cache, name, a = served
    if len(a.hotspots) < 2:
        pytest.skip("needs two hotspots")
    h = next(x for x in a.hotspots if x.id == 1)
    redrawn = []
    real = cbv.matrix_view
    monkeypatch.setattr(cbv, "matrix_view", lambda tok, m, sel, triggers, cfg: (
        redrawn.append(set(triggers)) if ids.ANALYSIS in triggers else None) or real(tok, m, sel, triggers, cfg))
    dash_duo.driver.set_window_size(1440, 900)
    dash_duo.start_server(create_app(root, default=name, cache_dir=cache))
    dash_duo.driver.get(dash_duo.server_url + f"/?ensemble={name}&hotspot=2")
    _wait(dash_duo, lambda: _caption_labels(dash_duo)[:1] == [_medoid_label(a, h)], timeout=60, msg="hotspot 2")
    _wait(dash_duo, lambda: _map_selected(dash_duo) == set(int(m) for m in h.members), msg="the map follows")
    assert redrawn == []                                         # the matrix was not rebuilt for the link
    assert f"hotspot={h.id + 1}" in dash_duo.driver.current_url and dash_duo.get_logs() == []
