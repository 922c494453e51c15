"""Dashboard callbacks as plain functions, on a small real ensemble written to a temporary directory.

The ensemble (`synthetic.make_fragment_ensemble`) has channels that carry known
sprites factors; its analysis is computed once per session by the real `analyze`. Expected
values come from the analysis arrays, numpy and PIL, not from the code under test.
"""
from __future__ import annotations

import base64
import json

import numpy as np
import pytest

pytest.importorskip("dash")

from dash import no_update  # noqa: E402
import plotly.io as pio  # noqa: E402

from vaefrag.analysis import analyze  # noqa: E402
from vaefrag.dashboard import data, ids  # noqa: E402
from vaefrag.dashboard import selection as selmod  # noqa: E402
from vaefrag.dashboard.callbacks import analysis as cba  # noqa: E402
from vaefrag.dashboard.callbacks import views as cbv  # noqa: E402
from vaefrag.dashboard.config import Config  # noqa: E402
from vaefrag.figures import views  # noqa: E402

NAME = "frag"


# ------------------------------------------------------------------------------------ data layer
def test_cached_analysis_is_the_analyze_result(frag_env):
    cfg, a, tok = frag_env
    path = cfg.root / NAME
    got = data.cached_analysis(path, data.clean_params(), cfg.cache_dir)
    assert got is not None and got.key == a.key
    direct = analyze(path, cache_dir=cfg.cache_dir)            # analyze's own defaults: the same entry
    assert direct.from_cache and direct.key == a.key
    np.testing.assert_array_equal(got.nmi, a.nmi)
    assert data.cached_analysis(path, data.clean_params(info_threshold=0.5), cfg.cache_dir) is None


def test_default_cache_dir_is_analyze_s(monkeypatch, tmp_path):
    from vaefrag import analysis

    assert data.default_cache_dir() == analysis.default_cache_dir()
    monkeypatch.setenv(analysis.CACHE_ENV, str(tmp_path))
    assert data.default_cache_dir() == analysis.default_cache_dir() == tmp_path


@pytest.mark.parametrize("kwargs", [{"measure": "cka"}, {"info_threshold": -1}, {"min_samples": 1},
                                    {"min_samples": 2.5}, {"xi": 1.5}])
def test_clean_params_rejects(kwargs):
    with pytest.raises(ValueError, match=next(iter(kwargs)).split("_")[0]):
        data.clean_params(**kwargs)


@pytest.mark.parametrize("name", ["../etc", "a/b", ".hidden", ""])
def test_ensemble_path_refuses_escapes(frag_env, name):
    cfg, _, _ = frag_env
    with pytest.raises(ValueError):
        data.ensemble_path(cfg.root, name)


# ------------------------------------------------------------------------------- request / URL
def test_request_from_url_sets_controls(frag_env):
    cfg, _, _ = frag_env
    out = cba.request_from("?ensemble=frag&measure=vi&thr=0.05&ms=3&xi=0.1&nmin=0.2&hotspot=2&view=vi&map=mds",
                           None, None, None, None, None, None, cfg)
    req, status, ens, measure, thr, ms, xi, view, mmap, min_nmi = out
    assert req == {"ensemble": NAME, "params": {"measure": "vi", "info_threshold": 0.05, "min_samples": 3,
                                                "xi": 0.1, "min_nmi": 0.2}, "hotspot": 1}   # the URL counts from 1
    assert (status, ens, measure, thr, ms, xi, view, mmap, min_nmi) == (None, NAME, "vi", 0.05, 3, 0.1, "vi", "mds", 0.2)


def test_request_bad_url_params_fall_back_with_alert(frag_env):
    cfg, _, _ = frag_env
    req, status, *_ = cba.request_from("?ensemble=nope&thr=-3", None, None, None, None, None, None, cfg)
    assert req["ensemble"] == NAME and req["params"] == data.clean_params()
    assert "threshold" in status.children


def test_request_from_controls_and_resolve(frag_env):
    cfg, a, _ = frag_env
    req, status, *rest = cba.request_from("", NAME, "nmi", 0.01, None, None, ids.APPLY, cfg)
    assert status is None and req["params"] == data.clean_params()
    tok, pending, status = cba.resolve_request(req, cfg)
    assert tok["key"] == a.key and pending is cba.no_update
    bad = cba.request_from("", NAME, "nmi", 0.01, 1, None, ids.APPLY, cfg)
    assert "min_samples" in bad[1].children


def test_open_analysis_is_request_then_resolve_in_one_round_trip(frag_env):
    cfg, a, tok = frag_env
    out = cba.open_analysis("", None, None, None, None, None, None, None, cfg)
    assert out[0] == tok and out[1] is cba.no_update and out[2] is None and out[3] == NAME
    # the layout carries the first page's token already: the views are not redrawn
    assert cba.open_analysis("", None, None, None, None, None, None, tok, cfg)[0] is cba.no_update
    same = cba.open_analysis("", NAME, "nmi", 0.01, None, None, ids.APPLY, tok, cfg)
    assert same[0] is cba.no_update and "Nothing to recompute" in same[2].children
    # a bookmarked hotspot of the analysis on screen leaves the views as they are; the selection
    # callback selects it from the URL
    assert cba.open_analysis("?hotspot=1", None, None, None, None, None, ids.URL_QUERY, tok, cfg)[0] is cba.no_update
    sel, _ = cbv.update_selection(f"{ids.URL_QUERY}.data", {}, tok, None, cfg, search="?hotspot=1")
    assert sel["kind"] == "hotspot" and sel["hotspot"] == 0 and sel["from_url"]
    # ... and of another ensemble, it is the new token's hint (the analysis there selects it)
    assert cba.open_analysis("?hotspot=1", None, None, None, None, None, ids.URL_QUERY,
                             {**tok, "ensemble": "other"}, cfg)[0] == {**tok, "hotspot": 0}
    # a bad control value keeps the analysis and says why; an uncached one goes to the job
    bad = cba.open_analysis("", NAME, "nmi", 0.01, 1, None, ids.APPLY, tok, cfg)
    assert bad[:2] == (cba.no_update, cba.no_update) and "min_samples" in bad[2].children
    tok2, pending, status, *_ = cba.open_analysis("", NAME, "nmi", 0.3, None, None, ids.APPLY, tok, cfg)
    assert tok2 is cba.no_update and pending["params"]["info_threshold"] == 0.3 and "Computing" in status.children


def test_first_page_carries_the_default_views(frag_env, tmp_path):
    from vaefrag.dashboard.callbacks import beyond as cbb
    from vaefrag.dashboard.callbacks import first_page
    from vaefrag.dashboard.callbacks import traversal as cbt

    cfg, a, tok = frag_env
    got, values = first_page.values(NAME, cfg)
    assert got == tok
    # the memoised figures the callbacks send, as plotly's JSON (built once)
    assert values[(ids.MATRIX, "figure")] == json.loads(pio.to_json(cbv.matrix_view(tok, "nmi", None, set(), cfg)))
    assert values[(ids.MAP, "figure")] == json.loads(pio.to_json(cbv.map_view(tok, "umap", "hotspot", None, set(), cfg)))
    assert first_page.values(NAME, cfg)[1][(ids.MATRIX, "figure")] is values[(ids.MATRIX, "figure")]
    assert (values[(ids.HOTSPOTS, "rowData")], values[(ids.MODELS, "rowData")]) == cbv.tables(tok, cfg)
    heat = next(t for t in values[(ids.MATRIX, "figure")]["data"] if t["name"] == "matrix")["z"]
    z = np.frombuffer(base64.b64decode(heat["bdata"]), dtype=heat["dtype"]).reshape([int(n) for n in heat["shape"].split(",")])
    np.testing.assert_allclose(z, np.round(a.nmi[np.ix_(a.ordering, a.ordering)], 3), atol=1e-6)
    # what the callbacks without an initial call would have sent, from the same functions
    assert values[(ids.ENSEMBLE_INFO, "children")] == "6 models x 5 latents, N=160 (sprites)"     # the frag_env fixture
    assert [o["value"] for o in values[(ids.MAP_COLOR, "options")]] == [o["value"] for o in cbv.color_options(tok, cfg)]
    assert len(values[(ids.BASE_STRIP, "children")]) == 24 and values[(ids.TRAVERSALS, "children")] == []
    assert values[(ids.TRAV_PREV, "disabled")] and values[(ids.TRAV_NEXT, "disabled")]
    assert (ids.HIGHLIGHT, "data") not in values or values[(ids.HIGHLIGHT, "data")] is cbt.no_update
    assert values[(ids.FUSE_COLOR, "value")] == cbb.color_options(tok, None, cfg)[1] != "index"    # a factor
    assert values[(ids.SPACES_STATUS, "children")].children.startswith("The full latent spaces")

    cold = Config(root=cfg.root, cache_dir=tmp_path / "empty-cache", default=NAME)
    tok_cold, cold_values = first_page.values(NAME, cold)
    assert tok_cold is None and (ids.MATRIX, "figure") not in cold_values and cold_values[(ids.BASE_STRIP, "children")] == []
    assert first_page.values(None, cfg)[0] is None and first_page.values("nope", cfg)[0] is None


def test_hydrate_sets_the_values_on_the_page(frag_env):
    from vaefrag.dashboard.callbacks import first_page
    from vaefrag.dashboard.layout import hydrate, serve_layout

    cfg, _, tok = frag_env
    got, values = first_page.values(NAME, cfg)
    page = serve_layout(data.ensemble_options(cfg.root), NAME, got)
    assert hydrate(page, {**values, ("no-such-id", "children"): 1}) == {("no-such-id", "children")}
    found = {c.id: c for c in page._traverse() if isinstance(getattr(c, "id", None), str)}
    for (cid, prop), value in values.items():
        if value is not cba.no_update:
            assert getattr(found[cid], prop) is value, (cid, prop)
    assert found[ids.ANALYSIS].data == tok


def test_uncached_request_goes_to_the_background_job(frag_env):
    cfg, a, _ = frag_env
    req = {"ensemble": NAME, "params": data.clean_params(info_threshold=0.2)}
    tok, pending, status = cba.resolve_request(req, cfg)
    assert pending == req and "Computing" in status.children
    calls = []
    tok, status = cba.compute_job(calls.append, pending, cfg)
    assert status is None
    done = [int(c[0]) for c in calls[1:]]
    assert done == sorted(done) and calls[-1][0] == calls[-1][1]     # progress runs up to total
    got = data.analysis_from_token(tok, cfg.cache_dir)
    info = got.info
    np.testing.assert_array_equal(got.kept, np.flatnonzero(info >= 0.2))
    assert cba.resolve_request(req, cfg)[0]["key"] == tok["key"]     # now served from the cache


# -------------------------------------------------------------------------------------- views
def test_matrix_figure_is_the_ordered_matrix(frag_env):
    cfg, a, tok = frag_env
    order = a.ordering
    for measure, full in (("nmi", a.nmi), ("vi", np.maximum(a.vi, 0))):
        fig = cbv.matrix_view(tok, measure, None, {ids.ANALYSIS}, cfg)
        heat = _trace(fig, "matrix")
        np.testing.assert_allclose(np.asarray(heat.z, dtype=float), full[np.ix_(order, order)], atol=1e-3)
        labels = [views.channel_label(m, z) for m, z in a.channel_ids[a.kept[order]]]
        assert list(heat.x) == labels and list(heat.y) == labels
    bars = fig.data[0]
    np.testing.assert_array_equal(np.asarray(bars.customdata)[:, 0].astype(int), order)
    np.testing.assert_array_equal(np.asarray(bars.customdata)[:, 1].astype(int), a.labels[order])
    # factor profiles beside: rows in the same order
    np.testing.assert_allclose(np.asarray(_trace(fig, "factor NMI").z, dtype=float), a.factor_nmi[order], atol=1e-3)
    # hotspot bands: one full-height bar per position of each hotspot, carrying that hotspot
    band = _trace(fig, "hotspot band")
    hs = np.asarray(band.customdata)[:, 1].astype(int)
    kept_idx = np.asarray(band.customdata)[:, 0].astype(int)
    np.testing.assert_array_equal(hs, a.labels[kept_idx])
    assert sorted(kept_idx) == sorted(np.flatnonzero(a.labels >= 0))


def test_big_matrix_is_drawn_as_block_means_and_its_cells_still_select(frag_env, monkeypatch):
    cfg, a, tok = frag_env
    order = a.ordering
    mk = order.size
    full = a.nmi[np.ix_(order, order)]
    monkeypatch.setattr(views, "MAX_MATRIX_SIDE", 7)
    fig = views.matrix_figure(a, "nmi")
    heat = _trace(fig, "matrix")
    z = np.asarray(heat.z, dtype=float)
    assert z.shape == (7, 7) and mk > 7
    blocks = np.array_split(np.arange(mk), 7)
    for r, rows in enumerate(blocks):
        assert heat.y[r] in rows and heat.x[r] in rows             # each block sits at one of its positions
        for c, cols in enumerate(blocks):
            assert z[r, c] == pytest.approx(full[np.ix_(rows, cols)].mean(), abs=1e-3)
    # the profiles keep every channel, on the same positions
    np.testing.assert_array_equal(np.asarray(fig.data[0].x), np.arange(mk))
    np.testing.assert_array_equal(np.asarray(_trace(fig, "factor NMI").y), np.arange(mk))
    # a click on a pooled cell selects through its positions
    h = a.hotspots[0]
    inside = [r for r in range(7) if a.labels[order[heat.y[r]]] == h.id]
    assert inside, "expected a block centred inside the first hotspot"
    r = inside[0]
    cell = {"points": [{"x": int(heat.x[r]), "y": int(heat.y[r]), "z": float(z[r, r])}]}
    assert selmod.from_matrix_click(a, cell)["hotspot"] == h.id
    outside = next(p for p in range(mk) if a.labels[order[p]] != h.id)
    cell = {"points": [{"x": outside, "y": int(heat.y[r]), "z": 0.1}]}
    assert selmod.from_matrix_click(a, cell) == selmod.channel(a, int(order[heat.y[r]]))
    assert selmod.from_matrix_click(a, {"points": [{"x": mk + 3, "y": mk + 3}]}) is None


def _trace(fig, name):
    return next(t for t in fig.data if t.name == name)


def test_selection_only_change_patches_the_matrix(frag_env):
    cfg, a, tok = frag_env
    sel = selmod.hotspot(a, a.hotspots[0].id)
    patch = cbv.matrix_view(tok, "nmi", sel, {ids.HIGHLIGHT}, cfg)
    blob = json.dumps(patch.to_plotly_json(), default=list)
    full = cbv.matrix_view(tok, "nmi", sel, {ids.HIGHLIGHT, ids.ANALYSIS}, cfg)
    assert len(blob) < len(full.to_json()) / 5
    # the patch carries exactly the full figure's shapes: hotspot outlines (the selected one thick)
    # and one dark overlay over the selected run of the profile
    ops = {tuple(o["location"]): o["params"]["value"] for o in patch.to_plotly_json()["operations"]}
    assert ops[("layout", "shapes")] == [s_.to_plotly_json() for s_ in full.layout.shapes]
    pos = np.flatnonzero(np.isin(a.ordering, a.hotspots[0].members))
    over = [s_ for s_ in full.layout.shapes if s_.yref == "y domain"]
    assert [(s_.x0, s_.x1) for s_ in over] == [(pos.min() - 0.5, pos.max() + 0.5)]
    widths = [s_.line.width for s_ in full.layout.shapes if s_.yref != "y domain"]
    assert sorted(widths) == [1.2] * (len(a.hotspots) - 1) + [3]
    # map patch: per-trace selectedpoints equal to the full map's
    mpatch = cbv.map_view(tok, "umap", "hotspot", sel, {ids.HIGHLIGHT}, cfg)
    mfull = cbv.map_view(tok, "umap", "hotspot", sel, {ids.ANALYSIS}, cfg)
    mops = {tuple(o["location"]): o["params"]["value"] for o in mpatch.to_plotly_json()["operations"]}
    for i, tr in enumerate(mfull.data):
        assert mops[("data", i, "selectedpoints")] == list(tr.selectedpoints)
        chosen = np.asarray(tr.customdata)[tr.selectedpoints, 0].astype(int) if len(tr.selectedpoints) else []
        assert set(chosen) <= set(a.hotspots[0].members.tolist())


def test_map_points_carry_their_channel(frag_env):
    cfg, a, tok = frag_env
    for method in ("umap", "mds"):
        fig = cbv.map_view(tok, method, "hotspot", None, {ids.ANALYSIS}, cfg)
        for tr in fig.data:
            cd = np.asarray(tr.customdata)
            k = cd[:, 0].astype(int)
            np.testing.assert_allclose(np.c_[tr.x, tr.y], a.maps[method][k], atol=1e-3)
            np.testing.assert_array_equal(cd[:, 1:3].astype(int), a.channel_ids[a.kept[k]])
            np.testing.assert_array_equal(cd[:, 5].astype(int), a.labels[k])
    fig = cbv.map_view(tok, "mds", "factor:0", None, {ids.ANALYSIS}, cfg)
    np.testing.assert_allclose(np.asarray(fig.data[0].marker.color, dtype=float), a.factor_nmi[:, 0], atol=1e-4)


def test_tables(frag_env):
    cfg, a, tok = frag_env
    hs, models = cbv.tables(tok, cfg)
    assert [r["id"] for r in hs] == [h.id for h in a.hotspots]
    assert [r["size"] for r in hs] == [len(h.members) for h in a.hotspots]
    k = a.channel_ids[:, 0].max() + 1
    assert [r["model"] for r in models] == list(range(k))
    for r in models:           # summed information of the model's channels
        assert r["info"] == pytest.approx(a.info[a.channel_ids[:, 0] == r["model"]].sum(), abs=1e-3)


def test_fragments_are_found_as_hotspots(frag_env):
    """Every factor the synthetic channels carry comes out as a hotspot spanning most models."""
    _, a, _ = frag_env
    best = {a.factor_names[h.best_factor] for h in a.hotspots if h.best_factor is not None}
    assert best == {"x", "y", "scale", "shape", "orientation"}
    assert all(h.n_models == len(set(a.channel_ids[a.kept[h.members], 0])) for h in a.hotspots)


# ------------------------------------------------------------------------------------ selection
def _sel(event, tok, cfg, current=None, **inputs):
    sel, _ = cbv.update_selection(event, inputs, tok, current, cfg)
    return sel


def test_selection_events(frag_env):
    cfg, a, tok = frag_env
    h = a.hotspots[1]
    members = sorted(int(m) for m in h.members)
    # a reachability bar inside the hotspot band
    bar = {"points": [{"customdata": [int(members[0]), int(h.id), 0, 0, 1.0, ""]}]}
    sel = _sel(f"{ids.MATRIX}.clickData", tok, cfg, matrix=bar)
    assert sel["kind"] == "hotspot" and sel["channels"] == members
    # a matrix cell inside the block, and one outside any block
    lab = {i: views.channel_label(*a.channel_ids[a.kept[i]]) for i in range(len(a.kept))}
    cell = {"points": [{"x": lab[members[0]], "y": lab[members[-1]], "z": 0.9}]}
    assert selmod.from_matrix_click(a, cell)["hotspot"] == h.id
    other = next(i for i in range(len(a.kept)) if a.labels[i] != h.id)
    cell = {"points": [{"x": lab[other], "y": lab[members[0]], "z": 0.1}]}
    assert selmod.from_matrix_click(a, cell) == selmod.channel(a, members[0])
    # a lasso on the map: identified by customdata
    lasso = {"points": [{"x": 0.0, "y": 0.0, "customdata": [i, 0, 0]} for i in (3, 1, 3)]}
    sel = _sel(f"{ids.MAP}.selectedData", tok, cfg, map_select=lasso)
    assert sel["kind"] == "channels" and sel["channels"] == [1, 3]
    # model row (AG Grid cellClicked: row ids are strings): its kept channels
    sel = _sel(f"{ids.MODELS}.cellClicked", tok, cfg, model_cell={"rowId": "2", "colId": "info", "timestamp": 1})
    assert sel["channels"] == np.flatnonzero(a.channel_ids[a.kept, 0] == 2).tolist()
    # hotspot row, clear, URL hotspot restored on load
    sel = _sel(f"{ids.HOTSPOTS}.cellClicked", tok, cfg, hotspot_cell={"rowId": str(h.id), "timestamp": 2})
    assert sel["hotspot"] == h.id and sel["query"] == {"hotspot": str(h.id + 1)}
    assert _sel(f"{ids.CLEAR}.n_clicks", tok, cfg, current=sel) is None
    restored = _sel(f"{ids.ANALYSIS}.data", {**tok, "hotspot": h.id}, cfg)
    assert restored["channels"] == members
    # a hotspot number above the matrix (clickAnnotationData carries the annotation's name)
    fig = views.matrix_figure(a, "nmi")
    ann = next(x for x in fig.layout.annotations if x.name == f"hotspot:{h.id}")
    assert ann.text == f"<b>{h.id + 1}</b>" and ann.captureevents
    sel = _sel(f"{ids.MATRIX}.clickAnnotationData", tok, cfg, annotation={"index": 0, "annotation": ann.to_plotly_json()})
    assert sel["kind"] == "hotspot" and sel["channels"] == members


def test_every_new_request_is_a_new_selection(frag_env):
    """The same row clicked again (after a lasso, or after Clear) is a new selection with a higher
    sequence number; the map's selectionrevision follows it, so plotly drops a lasso it keeps."""
    cfg, a, tok = frag_env
    h = a.hotspots[0]
    cell = {"rowId": str(h.id), "timestamp": 5}
    first = _sel(f"{ids.HOTSPOTS}.cellClicked", tok, cfg, hotspot_cell=cell)
    lasso = {"points": [{"customdata": [i]} for i in (0, 2)]}
    second = _sel(f"{ids.MAP}.selectedData", tok, cfg, current=first, map_select=lasso)
    again = _sel(f"{ids.HOTSPOTS}.cellClicked", tok, cfg, current=second, hotspot_cell={**cell, "timestamp": 6})
    assert (first["n"], second["n"], again["n"]) == (1, 2, 3)
    assert selmod.same(first, {**again, "n": first["n"]})
    patch = cbv.map_view(tok, "umap", "hotspot", again, {ids.HIGHLIGHT}, cfg).to_plotly_json()
    ops = {tuple(o["location"]): o["params"]["value"] for o in patch["operations"]}
    assert ops[("layout", "selectionrevision")] == "s3" and ops[("layout", "selections")] == []
    cleared = cbv.map_view(tok, "umap", "hotspot", None, {ids.HIGHLIGHT}, cfg).to_plotly_json()
    cops = {tuple(o["location"]): o["params"]["value"] for o in cleared["operations"]}
    assert cops[("layout", "selectionrevision")] != "s3"
    assert all(v is None for k, v in cops.items() if k[-1] == "selectedpoints")


def test_channel_search(frag_env):
    cfg, a, tok = frag_env
    m, z = a.channel_ids[a.kept[3]]
    sel, msg = cbv.update_selection(f"{ids.CHANNEL_SEARCH}.value", {"search_text": f" M{m}:z{z} "}, tok, None, cfg)
    assert sel["kind"] == "channel" and sel["channel"] == 3 and msg == ""
    assert sel["query"] == {"channel": f"m{m}:z{z}"}
    out, msg = cbv.update_selection(f"{ids.CHANNEL_SEARCH}.value", {"search_text": "m99:z0"}, tok, None, cfg)
    assert "no such channel" in msg
    dropped = np.setdiff1d(np.arange(len(a.info)), a.kept)
    if dropped.size:
        m, z = a.channel_ids[dropped[0]]
        _, msg = cbv.update_selection(f"{ids.CHANNEL_SEARCH}.value", {"search_text": f"m{m}:z{z}"}, tok, None, cfg)
        assert f"{a.info[dropped[0]]:.3f} bits" in msg and "threshold" in msg
    _, msg = cbv.update_selection(f"{ids.CHANNEL_SEARCH}.value", {"search_text": "hello"}, tok, None, cfg)
    assert "expected a channel like m5:z2" in msg


def test_selection_round_trips_through_the_url(frag_env):
    cfg, a, tok = frag_env
    h = a.hotspots[0]
    lasso = selmod.channels(a, [0, 2, 4])
    for sel in (selmod.hotspot(a, h.id), selmod.channel(a, 3), selmod.model(a, 1), lasso):
        q = selmod.to_query(a, sel)
        assert selmod.from_query(a, q) == sel
        search = f"?ensemble={NAME}&measure=nmi&thr=0.01&" + "&".join(f"{k}={v}" for k, v in q.items())
        got, _ = cbv.update_selection(f"{ids.URL_POP}.data", {}, tok, selmod.stamp(selmod.channel(a, 1), None, a.key),
                                      cfg, pop={"search": search})
        assert selmod.same({**got, "n": 0}, {**sel, "key": a.key, "n": 0, "query": q, "from_url": True})
    # Back to an entry without a selection clears it; a query about another analysis leaves it
    cur = selmod.stamp(selmod.channel(a, 1), None, a.key)
    got, _ = cbv.update_selection(f"{ids.URL_POP}.data", {}, tok, cur, cfg, pop={"search": f"?ensemble={NAME}"})
    assert got is None
    got, _ = cbv.update_selection(f"{ids.URL_POP}.data", {}, tok, cur, cfg,
                                  pop={"search": f"?ensemble={NAME}&thr=0.2&hotspot=1"})
    assert got is no_update


def test_recompute_carries_the_selection_over(frag_env):
    """A selection survives a recompute with other parameters: the same channels by (model, latent)."""
    cfg, a, tok = frag_env
    params = data.clean_params(info_threshold=0.05)
    b = data.compute_analysis(cfg.root / NAME, params, cfg.cache_dir)
    tok_b = data.token(NAME, params, b.key)
    cur = selmod.stamp(selmod.channel(a, 2), None, a.key)
    got, _ = cbv.update_selection(f"{ids.ANALYSIS}.data", {}, tok_b, cur, cfg)
    want = tuple(a.channel_ids[a.kept[2]])
    if a.info[a.kept[2]] >= 0.05:
        assert tuple(b.channel_ids[b.kept[got["channel"]]]) == want and got["key"] == b.key
    h = max(a.hotspots, key=lambda h: h.size)
    got, _ = cbv.update_selection(f"{ids.ANALYSIS}.data", {}, tok_b,
                                  selmod.stamp(selmod.hotspot(a, h.id), None, a.key), cfg)
    moved = {tuple(x) for x in a.channel_ids[a.kept[h.members]]}
    overlap = {hb.id: len(moved & {tuple(x) for x in b.channel_ids[b.kept[hb.members]]}) for hb in b.hotspots}
    assert got["hotspot"] == max(overlap, key=overlap.get)
    # the traversal panel says where the selection came from (the hotspot's number may have changed)
    assert got["carried"] == {"hotspot": h.id, "size": h.size, "kept": max(overlap.values())}
    note = (f"Carried over from hotspot {h.id + 1} of the previous parameters: {max(overlap.values())} of its "
            f"{h.size} channels are in this one.")
    assert selmod.describe(b, got).endswith(note)
    assert note not in selmod.describe(b, selmod.hotspot(b, got["hotspot"]))        # a click on it: no note
    assert selmod.same(selmod.hotspot(b, got["hotspot"]), cbv._strip(got))            # the URL names the same one
    assert selmod.describe(b, {**got, "carried": {"hotspot": "x"}}) == selmod.describe(b, selmod.hotspot(b, got["hotspot"]))


def test_single_channel_has_a_row_and_column_cue(frag_env):
    cfg, a, tok = frag_env
    c = int(a.ordering[4])
    shapes = views.matrix_selection(a, [c], None, c)
    cue = [s_ for s_ in shapes if s_.get("name") == "channel cue"]
    mk = len(a.kept)
    assert sorted((s_["x0"], s_["x1"], s_["y0"], s_["y1"]) for s_ in cue) == sorted(
        [(3.5, 4.5, -0.5, mk - 0.5), (-0.5, mk - 0.5, 3.5, 4.5)])
    assert not [s_ for s_ in views.matrix_selection(a, [c], None, None) if s_.get("name") == "channel cue"]


@pytest.mark.parametrize("thr, ms, xi", [("0.013", "", "0.05"), ("0", "3", "0.1"), ("0.5", "2", "0.2"), ("1", "", "0.3")])
def test_analysis_inputs_accept_every_value_in_range(thr, ms, xi):
    from vaefrag.dashboard.callbacks import controls

    assert controls.analysis_errors(thr, ms, xi) == ("", "", "", "", False)
    # and those are the values the request carries (no silent default)
    p = data.clean_params("nmi", thr, ms or None, xi)
    assert p["info_threshold"] == float(thr) and p["xi"] == float(xi)


@pytest.mark.parametrize("thr, ms, xi, nmin, which, match", [("-0.1", "", "", "", 0, "information threshold"),
                                                             ("abc", "", "", "", 0, "expected a number"),
                                                             ("", "1", "", "", 1, "min_samples"),
                                                             ("", "2.5", "", "", 1, "min_samples"),
                                                             ("", "", "1.5", "", 2, "xi"), ("", "", "0", "", 2, "xi"),
                                                             ("", "", "", "1.2", 3, "min_nmi"),
                                                             ("", "", "", "-0.1", 3, "min_nmi")])
def test_invalid_analysis_inputs_are_errors_that_block_recompute(thr, ms, xi, nmin, which, match):
    from vaefrag.dashboard.callbacks import controls

    errors = controls.analysis_errors(thr, ms, xi, nmin)
    assert match in errors[which] and errors[4] is True
    assert [e for i, e in enumerate(errors[:4]) if i != which] == ["", "", ""]


def test_the_paper_preset_fills_the_fields_with_the_reference_settings():
    from vaefrag.dashboard.callbacks import controls
    from vaefrag.params import DEFAULT_MIN_NMI, PRESETS

    assert controls.preset_controls("paper") == (PRESETS["paper"]["min_samples"], PRESETS["paper"]["xi"],
                                                 PRESETS["paper"]["min_nmi"]) == (20, 0.05, 0.0)
    assert controls.preset_controls("default") == (None, None, DEFAULT_MIN_NMI)        # auto, auto, 0.3
    assert controls.preset_controls("forged") == (cba.no_update,) * 3
    # those values make the request the CLI's --preset paper makes (one cache entry for both)
    ms, xi, nmin = controls.preset_controls("paper")
    assert data.clean_params("nmi", 0.01, ms, xi, nmin) == data.clean_params(preset="paper")


# ------------------------------------------------------------------------------- app / serve
def test_create_app_checks_its_arguments(frag_env, tmp_path):
    from vaefrag.dashboard import create_app, pick_default

    cfg, _, _ = frag_env
    with pytest.raises(FileNotFoundError, match="ensembles_dir"):
        create_app(tmp_path / "missing" / "ensembles", cache_dir=tmp_path / "c")
    (tmp_path / "file").write_text("x")
    with pytest.raises(ValueError, match="not a directory"):
        create_app(tmp_path / "file", cache_dir=tmp_path / "c")
    with pytest.raises(ValueError, match="nope"):
        create_app(cfg.root, default="nope", cache_dir=cfg.cache_dir)
    app = create_app(cfg.root, cache_dir=cfg.cache_dir)
    assert app.title == "vaefrag"
    assert pick_default(["a", "dsprites-x", "sprites", "z"]) == "sprites"
    assert pick_default(["a", "sprites-beta-vae"]) == "sprites-beta-vae"
    assert pick_default(["a", "b"]) == "a" and pick_default([]) is None


def test_serve_defaults_are_local_and_debug_off():
    import argparse

    from vaefrag.dashboard import serve

    p = argparse.ArgumentParser()
    serve.add_arguments(p)
    args = p.parse_args([])
    assert (args.host, args.port, args.debug, args.ensembles) == ("127.0.0.1", 8050, False, None)
    from vaefrag.store import ensembles_root

    assert ensembles_root(args.ensembles).parts[-2:] == ("data", "ensembles")   # resolved at start: the one root


def test_import_numerics_preloads_the_members(frag_env):
    """After start-up's import thread, a click decodes with members already in memory."""
    cfg, a, _ = frag_env
    path = cfg.root / NAME
    data._member.cache_clear()
    data.import_numerics(None, path)
    assert data._member.cache_info().currsize == data.load_ensemble(path).n_models
    hits = data._member.cache_info().hits
    data.load_member(path, 3)
    assert data._member.cache_info().hits == hits + 1
    data.import_numerics(None, cfg.root / "no-such-ensemble")          # nothing to load: no error


def test_only_the_layout_request_waits_for_the_first_page(frag_env, monkeypatch):
    """Dash builds the page on the first request of any kind to check its ids; the index page must
    not wait for the first page's figures then, but the layout request must carry them."""
    from vaefrag.dashboard import create_app

    cfg, _, tok = frag_env
    app = create_app(cfg.root, default=NAME, cache_dir=cfg.cache_dir)
    from vaefrag.dashboard.callbacks import first_page

    calls = []
    real = first_page.values
    monkeypatch.setattr(first_page, "values", lambda name, c: calls.append(name) or real(name, c))
    client = app.server.test_client()
    assert client.get("/").status_code == 200
    assert calls == []
    page = client.get("/_dash-layout").get_data(as_text=True)
    assert calls == [NAME]
    assert tok["key"] in page and '"vf-matrix"' in page and "heatmap" in page


def test_highlight_as_served_means_nothing_selected(frag_env):
    cfg, _, tok = frag_env
    assert cbv._current(ids.HIGHLIGHT_AS_SERVED, tok) is None
    assert cbv.table_styles(tok, ids.HIGHLIGHT_AS_SERVED, cfg) == cbv.table_styles(tok, None, cfg)
    assert cbv.matrix_view(tok, "nmi", ids.HIGHLIGHT_AS_SERVED, set(), cfg) is cbv.matrix_view(tok, "nmi", None, set(), cfg)


def test_start_up_work_waits_for_the_first_page_and_for_quiet():
    """`app._when_idle`: nothing runs before the first page (its layout) is answered; each item runs
    once the server has been quiet for its seconds, in order, so start-up work never competes with a
    person clicking."""
    import time

    import flask

    from vaefrag.dashboard.app import _when_idle

    server = flask.Flask("t")
    server.add_url_rule("/_dash-layout", "layout", lambda: "{}")
    server.add_url_rule("/x", "x", lambda: "x")
    ran = []
    _when_idle(server, [(0.2, lambda: ran.append(("a", time.perf_counter()))),
                        (1.0, lambda: ran.append(("b", time.perf_counter())))], latest=20.0)
    client = server.test_client()
    client.get("/x")
    time.sleep(0.6)
    assert ran == []                                  # no page yet
    client.get("/_dash-layout")
    t_page = time.perf_counter()
    time.sleep(0.5)
    assert [r[0] for r in ran] == ["a"]
    busy_until = time.perf_counter() + 1.5
    while time.perf_counter() < busy_until:           # someone clicking: requests every 0.2 s
        client.get("/x")
        time.sleep(0.2)
    assert [r[0] for r in ran] == ["a"]
    time.sleep(1.6)
    assert [r[0] for r in ran] == ["a", "b"] and ran[1][1] - busy_until >= 0.75 and ran[0][1] - t_page >= 0.2


def test_a_control_already_showing_a_value_is_not_set_again():
    from vaefrag.dashboard.callbacks.controls import already_shown

    assert already_shown(0.01, "0.01") and already_shown("5", 5) and already_shown(None, "") and already_shown("", None)
    assert already_shown([0.05, 0.95], [0.05, 0.95]) and already_shown("hotspot", "hotspot")
    assert not already_shown(6, "5") and not already_shown("vi", "nmi") and not already_shown(0.01, None)
    assert not already_shown(cba.no_update, None) and not already_shown("abc", "abd")
