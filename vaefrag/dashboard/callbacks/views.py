"""Callbacks of the linked views: matrix, map, hotspot and model tables, and the shared selection.

Every view reads the analysis named by the ``ANALYSIS`` token from the server-side cache and the
selection from ``HIGHLIGHT`` (the shared selection, passed on by the traversal callback once the
traversals are shown, so the images come first); a change of selection alone patches the matrix figure's shapes and
the map's ``selectedpoints`` (a few kilobytes) instead of re-sending and re-drawing the matrix.
"""
from __future__ import annotations

import functools
import threading

from dash import Input, Output, Patch, State, ctx, no_update

from vaefrag.dashboard import data, ids
from vaefrag.dashboard.layout import MAP_HEIGHT, MATRIX_HEIGHT
from vaefrag.dashboard import selection as selmod
from vaefrag.figures import views


def _analysis(tok, cfg):
    return data.analysis_from_token(tok, cfg.cache_dir)


def _current(sel, tok):
    """The selection if it belongs to the analysis on screen (a stale one from before a switch, or the
    page as served: None)."""
    if sel == ids.HIGHLIGHT_AS_SERVED:
        return None
    if sel and tok and sel.get("key") not in (None, tok.get("key")):
        return None
    return sel


@functools.lru_cache(maxsize=16)
def _unselected(kind: str, cache_dir: str, key: str, method: str, color: str = "hotspot"):
    """The matrix (kind "matrix", method = measure) or map figure without a selection, memoised
    per analysis: the same for every user (never mutated), built once (`first_page`, while the server starts)."""
    a = data.analysis_from_token({"key": key}, cache_dir)
    if a is None:
        return None
    if kind == "matrix":
        return views.matrix_figure(a, method, height=MATRIX_HEIGHT)
    return views.map_figure(a, method, color, height=MAP_HEIGHT)


def _only_selection(triggers) -> bool:
    return set(triggers or ()) == {ids.HIGHLIGHT}


def matrix_view(tok, measure, sel, triggers, cfg):
    """The matrix figure, or a Patch of its selection parts when only the selection changed.

    ``triggers``: the ids that triggered the call (a Patch only when it is the selection alone).
    """
    a = _analysis(tok, cfg)
    if a is None:
        return views.empty_figure("loading the analysis ..." if tok else "no analysis yet", 600)
    sel = _current(sel, tok)
    chans = sel["channels"] if sel else None
    hs = sel.get("hotspot") if sel else None
    if not _only_selection(triggers) or not len(a.kept):
        if chans is None and hs is None:
            return _unselected("matrix", str(cfg.cache_dir), tok["key"], measure or "nmi")
        return views.matrix_figure(a, measure or "nmi", selected=chans, hotspot=hs, height=MATRIX_HEIGHT)
    patch = Patch()
    patch["layout"]["shapes"] = views.matrix_selection(a, chans, hs)
    return patch


def map_view(tok, method, color, sel, triggers, cfg):
    """The channel map figure, or a Patch of the traces' ``selectedpoints`` when only the selection changed."""
    a = _analysis(tok, cfg)
    if a is None:
        return views.empty_figure("", 300)
    sel = _current(sel, tok)
    chans = sel["channels"] if sel else None
    color = color or "hotspot"
    try:
        if _only_selection(triggers) and len(a.kept) and (a.maps or {}):
            patch = Patch()
            for i, pts in enumerate(views.map_selection(a, color, chans)):
                patch["data"][i]["selectedpoints"] = pts
            return patch
        if chans is None:
            return _unselected("map", str(cfg.cache_dir), tok["key"], method or "umap", color)
        return views.map_figure(a, method or "umap", color, selected=chans, height=MAP_HEIGHT)
    except (ValueError, IndexError):
        return views.map_figure(a, method or "umap", "hotspot", selected=chans, height=MAP_HEIGHT)


def color_options(tok, cfg) -> list[dict]:
    """Map colouring choices: hotspot, model, information, and one per factor."""
    opts = [{"label": "hotspot", "value": "hotspot"}, {"label": "model", "value": "model"},
            {"label": "information", "value": "info"}]
    a = _analysis(tok, cfg)
    if a is not None and a.factor_nmi is not None:
        names = list(a.factor_names) or [f"factor {j}" for j in range(a.factor_nmi.shape[1])]
        opts += [{"label": f"NMI with {n}", "value": f"factor:{j}"} for j, n in enumerate(names)]
    return opts


def tables(tok, cfg) -> tuple[list[dict], list[dict]]:
    """Rows of the hotspot table and the model table (each row has an ``id``)."""
    a = _analysis(tok, cfg)
    if a is None:
        return [], []
    hs = views.hotspot_table_rows(a)
    models = [{**r, "id": r["model"]} for r in views.model_table_rows(a)]
    return hs, models


_HS_COLS = ["size", "models", "info", "nmi", "factor", "factor_nmi", "stability", "medoid"]


def table_styles(tok, sel, cfg) -> tuple[list[dict], list[dict]]:
    """Conditional styles: hotspot id cells in their colour; the selected hotspot / model rows bold."""
    a = _analysis(tok, cfg)
    if a is None:
        return [], []
    sel = _current(sel, tok)
    hs_style, model_style = [], []
    if sel and sel.get("hotspot") is not None:
        hs_style.append({"if": {"filter_query": f"{{id}} = {sel['hotspot']}", "column_id": _HS_COLS},
                         "backgroundColor": "#e0e7ff", "fontWeight": "600"})
    hs_style += [{"if": {"filter_query": f"{{id}} = {h.id}", "column_id": "number"},
                  "color": "white", "backgroundColor": views.hotspot_color(h.id), "fontWeight": "700"}
                 for h in a.hotspots]
    if sel:
        models = sorted({int(m) for m in a.channel_ids[a.kept[sel["channels"]], 0]}) if sel["channels"] else []
        for m in models:
            model_style.append({"if": {"filter_query": f"{{model}} = {m}"}, "backgroundColor": "#e0e7ff",
                                "fontWeight": "600" if sel.get("model") == m else "400"})
    return hs_style, model_style


def update_selection(event, matrix_click, map_click, map_sel, hs_cell, model_cell, tok, current, cfg):
    """The new shared selection after ``event`` (the triggering ``"<id>.<property>"``)."""
    a = _analysis(tok, cfg)
    if a is None:
        return None
    trigger, _, prop = (event or "").rpartition(".")
    if trigger == ids.ANALYSIS:
        if current and current.get("key") == tok.get("key"):
            return no_update
        hid = tok.get("hotspot")
        sel = selmod.hotspot(a, hid) if hid is not None else None
        if sel is None and not current:
            return no_update          # nothing to clear: the first page's matrix and map need not wait
                                      # for selection -> traversal -> highlight
    elif trigger == ids.CLEAR:
        sel = None
    elif trigger == ids.MATRIX:
        sel = selmod.from_matrix_click(a, matrix_click)
    elif trigger == ids.MAP and prop == "selectedData":
        sel = selmod.from_map(a, map_sel)
    elif trigger == ids.MAP:
        sel = selmod.from_map(a, map_click)
    elif trigger == ids.HOTSPOTS:
        sel = selmod.from_table(a, "hotspot", hs_cell)
    elif trigger == ids.MODELS:
        sel = selmod.from_table(a, "model", model_cell)
    else:
        return no_update
    if sel is None and trigger not in (ids.CLEAR, ids.ANALYSIS):
        return no_update
    return None if sel is None else {**sel, "key": tok.get("key")}


def _triggers() -> set[str]:
    """Ids of the inputs that triggered the running callback."""
    return {t["prop_id"].rsplit(".", 1)[0] for t in ctx.triggered if t.get("prop_id") not in (None, ".")}


#: one first page is built at a time (the start-up thread and early page loads wait for it, not
#: build it twice)
_FIRST_PAGE_LOCK = threading.Lock()


def first_page(name: str | None, cfg) -> dict | None:
    """What the page needs to show ensemble ``name`` at the default parameters without a callback:
    {"token", "matrix", "map"} (the memoised NMI matrix and UMAP map by hotspot), or None when its
    analysis is not cached yet (the callbacks then compute it with a progress bar)."""
    if name is None:
        return None
    with _FIRST_PAGE_LOCK:
        try:
            params = data.clean_params()
            found = data.cached_analysis(data.ensemble_path(cfg.root, name), params, cfg.cache_dir)
        except (ValueError, FileNotFoundError):
            return None
        if found is None:
            return None
        tok = data.token(name, params, found.key)
        return {"token": tok, "matrix": matrix_view(tok, "nmi", None, set(), cfg),
                "map": map_view(tok, "umap", "hotspot", None, set(), cfg)}


def register(app, cfg) -> None:
    # A new analysis or view redraws the figure (reading the selection as State, so the first page does
    # not wait for selection -> traversal -> highlight); a new selection alone sends a small Patch.
    # The layout carries the first page's figures (`first_page`): no initial call.
    @app.callback(Output(ids.MATRIX, "figure"), Input(ids.ANALYSIS, "data"), Input(ids.MATRIX_MEASURE, "value"),
                  State(ids.HIGHLIGHT, "data"), prevent_initial_call=True)
    def _matrix(tok, measure, sel):
        return matrix_view(tok, measure, sel, _triggers(), cfg)

    @app.callback(Output(ids.MATRIX, "figure", allow_duplicate=True), Input(ids.HIGHLIGHT, "data"),
                  State(ids.ANALYSIS, "data"), State(ids.MATRIX_MEASURE, "value"), prevent_initial_call=True)
    def _matrix_selection(sel, tok, measure):
        if sel == ids.HIGHLIGHT_AS_SERVED:
            return no_update
        return matrix_view(tok, measure, sel, {ids.HIGHLIGHT}, cfg)

    @app.callback(Output(ids.MAP, "figure"), Input(ids.ANALYSIS, "data"), Input(ids.MAP_METHOD, "value"),
                  Input(ids.MAP_COLOR, "value"), State(ids.HIGHLIGHT, "data"), prevent_initial_call=True)
    def _map(tok, method, color, sel):
        return map_view(tok, method, color, sel, _triggers(), cfg)

    @app.callback(Output(ids.MAP, "figure", allow_duplicate=True), Input(ids.HIGHLIGHT, "data"),
                  State(ids.ANALYSIS, "data"), State(ids.MAP_METHOD, "value"), State(ids.MAP_COLOR, "value"),
                  prevent_initial_call=True)
    def _map_selection(sel, tok, method, color):
        if sel == ids.HIGHLIGHT_AS_SERVED:
            return no_update
        return map_view(tok, method, color, sel, {ids.HIGHLIGHT}, cfg)

    @app.callback(Output(ids.MAP_COLOR, "options"), Input(ids.ANALYSIS, "data"))
    def _colors(tok):
        return color_options(tok, cfg)

    @app.callback(Output(ids.HOTSPOTS, "data"), Output(ids.MODELS, "data"), Input(ids.ANALYSIS, "data"))
    def _tables(tok):
        return tables(tok, cfg)

    @app.callback(Output(ids.HOTSPOTS, "style_data_conditional"), Output(ids.MODELS, "style_data_conditional"),
                  Input(ids.ANALYSIS, "data"), Input(ids.HIGHLIGHT, "data"))
    def _styles(tok, sel):
        return table_styles(tok, sel, cfg)

    @app.callback(Output(ids.SELECTION, "data"),
                  Input(ids.MATRIX, "clickData"), Input(ids.MAP, "clickData"), Input(ids.MAP, "selectedData"),
                  Input(ids.HOTSPOTS, "active_cell"), Input(ids.MODELS, "active_cell"), Input(ids.CLEAR, "n_clicks"),
                  Input(ids.ANALYSIS, "data"), State(ids.SELECTION, "data"), prevent_initial_call=True)
    def _selection(mclick, pclick, psel, hcell, mcell, _clear, tok, current):
        event = ctx.triggered[0]["prop_id"] if ctx.triggered else ""
        return update_selection(event, mclick, pclick, psel, hcell, mcell, tok, current, cfg)
