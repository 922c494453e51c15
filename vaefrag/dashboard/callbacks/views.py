"""Callbacks of the linked views: matrix, map, hotspot and model tables, and the shared selection.

Every view reads the analysis named by the ``ANALYSIS`` token from the server-side cache and the
selection from ``HIGHLIGHT`` (the shared selection, passed on by the traversal callback once the
traversals are shown, so the images come first); a change of selection alone patches the matrix figure's shapes and
the map's ``selectedpoints`` (a few kilobytes) instead of re-sending and re-drawing the matrix.
"""
from __future__ import annotations

import functools
import time

from dash import Input, Output, Patch, State, ctx, no_update

from vaefrag.dashboard import data, ids
from vaefrag.dashboard.layout import MAP_HEIGHT, MATRIX_HEIGHT
from vaefrag.dashboard import selection as selmod
from vaefrag.dashboard.callbacks import controls as cb_controls
from vaefrag.dashboard.callbacks import url as cb_url
from vaefrag.dashboard.callbacks.analysis import parse_query
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
    per analysis: the same for every user (never mutated), built once (`first_values`, while the server starts)."""
    a = data.analysis_from_token({"key": key}, cache_dir)
    if a is None:
        return None
    if kind == "matrix":
        return views.matrix_figure(a, method, height=MATRIX_HEIGHT)
    return views.map_figure(a, method, color, height=MAP_HEIGHT)


@functools.lru_cache(maxsize=16)
def _unselected_json(kind: str, cache_dir: str, key: str, method: str, color: str = "hotspot"):
    """`_unselected` as plotly's JSON (a plain dict; numpy arrays as typed-array ``bdata``), for the
    layout: Dash encodes it ~10x faster than the figure object (no deep copy and re-encoding of
    the matrix per page load). None when the analysis is not cached."""
    import json

    import plotly.io as pio

    fig = _unselected(kind, cache_dir, key, method, color)
    return None if fig is None else json.loads(pio.to_json(fig, validate=False))


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
    one = sel.get("channel") if sel and sel.get("kind") == "channel" else None
    if not _only_selection(triggers) or not len(a.kept):
        if chans is None and hs is None:
            return _unselected("matrix", str(cfg.cache_dir), tok["key"], measure or "nmi")
        return views.matrix_figure(a, measure or "nmi", selected=chans, hotspot=hs, channel=one, height=MATRIX_HEIGHT)
    patch = Patch()
    patch["layout"]["shapes"] = views.matrix_selection(a, chans, hs, one)
    return patch


def _revision(sel) -> str:
    """The map's ``selectionrevision`` for a selection: its sequence number, a fresh value for none
    (after a lasso, Clear must still replace the lasso plotly keeps)."""
    return f"s{sel['n']}" if sel and sel.get("n") is not None else f"none-{time.time_ns()}"


def map_view(tok, method, color, sel, triggers, cfg):
    """The channel map figure, or a Patch of the traces' ``selectedpoints`` when only the selection changed.

    Both set ``selectionrevision`` (`_revision`) and drop plotly's lasso / box outline, so the map
    follows every selection, not only the ones made on it.
    """
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
            patch["layout"]["selections"] = []
            patch["layout"]["selectionrevision"] = _revision(sel)
            return patch
        if chans is None:
            return _unselected("map", str(cfg.cache_dir), tok["key"], method or "umap", color)
        return views.map_figure(a, method or "umap", color, selected=chans, height=MAP_HEIGHT,
                                revision=_revision(sel))
    except (ValueError, IndexError):
        return views.map_figure(a, method or "umap", "hotspot", selected=chans, height=MAP_HEIGHT,
                                revision=_revision(sel))


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
    """Rows of the hotspot table (with each hotspot's ``color``) and the model table (each row has an ``id``)."""
    a = _analysis(tok, cfg)
    if a is None:
        return [], []
    hs = [{**r, "row_id": str(r["id"]), "color": views.hotspot_color(r["id"])} for r in views.hotspot_table_rows(a)]
    models = [{**r, "id": r["model"], "row_id": str(r["model"])} for r in views.model_table_rows(a)]
    return hs, models


_PLAIN = {"backgroundColor": "white", "fontWeight": "400"}
_CHOSEN = {"backgroundColor": "#e0e7ff", "fontWeight": "600"}
#: AG Grid fails on an empty list of style conditions: a condition that never holds stands in
_NEVER = {"condition": "params.data.id === -1", "style": _PLAIN}


def table_styles(tok, sel, cfg) -> tuple[dict, dict]:
    """AG Grid ``getRowStyle`` of the two tables: the selected hotspot's row, and the rows of the
    models the selection has channels in, highlighted (the chosen model's bold)."""
    a = _analysis(tok, cfg)
    plain = {"styleConditions": [_NEVER], "defaultStyle": _PLAIN}
    if a is None:
        return plain, plain
    sel = _current(sel, tok)
    hs_cond, model_cond = [], []
    if sel and sel.get("hotspot") is not None:
        hs_cond.append({"condition": f"params.data.id === {int(sel['hotspot'])}", "style": _CHOSEN})
    if sel and sel["channels"]:
        models = sorted({int(m) for m in a.channel_ids[a.kept[sel["channels"]], 0]})
        if sel.get("model") is not None:
            model_cond.append({"condition": f"params.data.id === {int(sel['model'])}", "style": _CHOSEN})
        if models:
            model_cond.append({"condition": " || ".join(f"params.data.id === {m}" for m in models),
                               "style": {**_CHOSEN, "fontWeight": "400"}})
    return ({"styleConditions": hs_cond or [_NEVER], "defaultStyle": _PLAIN},
            {"styleConditions": model_cond or [_NEVER], "defaultStyle": _PLAIN})


def _query_matches(q: dict, tok: dict) -> bool:
    """Whether URL parameters ``q`` name the ensemble and analysis parameters of ``tok``."""
    if q.get("ensemble") not in (None, tok.get("ensemble")):
        return False
    try:
        want = data.clean_params(q.get("measure"), q.get("thr"), q.get("ms"), q.get("xi"), q.get("nmin"))
    except ValueError:
        return False
    return want == tok.get("params")


def _from_query(a, search, tok) -> tuple[bool, dict | None]:
    """(the query is about this analysis, the selection it names)."""
    q = parse_query(search)
    if not _query_matches(q, tok):
        return False, None
    return True, selmod.from_query(a, q)


def update_selection(event: str, inputs: dict, tok, current, cfg, *, search=None, pop=None) -> tuple:
    """The new shared selection after ``event`` (the triggering ``"<id>.<property>"``), and the
    message beside the channel search.

    inputs : the event values by id/property: ``matrix`` (clickData), ``annotation``
        (clickAnnotationData), ``map_click``, ``map_select`` (selectedData), ``hotspot_cell``,
        ``model_cell`` (AG Grid cellClicked), ``search_text`` (the channel search).
    current : the selection now (None); ``search`` : the URL query; ``pop`` : {"search"} after Back / Forward.
    A new selection gets the next sequence number (`selection.stamp`) and its URL parameters
    (``query``); one restored from the URL is marked ``from_url`` (the URL writer does not push it
    again onto the history).
    """
    a = _analysis(tok, cfg)
    if a is None:
        return None, no_update
    trigger, _, prop = (event or "").rpartition(".")
    msg = no_update
    from_url = False
    if trigger == ids.ANALYSIS:
        if current and current.get("key") == tok.get("key"):
            return no_update, no_update
        about, sel = _from_query(a, (pop or {}).get("search") if pop else search, tok)
        from_url = about and sel is not None
        if not from_url:
            old = data.analysis_from_token({"key": current.get("key")}, cfg.cache_dir) if current else None
            if old is not None and old.ensemble_name == a.ensemble_name:
                sel = selmod.carry_over(old, a, current)           # a recompute: the same channels
            else:
                hid = tok.get("hotspot")
                sel = selmod.hotspot(a, hid) if hid is not None else None
        if sel is None and not current:
            return no_update, no_update   # nothing to clear: the first page's matrix and map need not wait
                                          # for selection -> traversal -> highlight
    elif trigger in (ids.URL_QUERY, ids.URL_POP):
        about, sel = _from_query(a, search if trigger == ids.URL_QUERY else (pop or {}).get("search"), tok)
        if not about or (sel is None and not current) or selmod.same(sel, _strip(current)):
            return no_update, no_update          # another analysis (opened by the URL), or nothing new
        from_url = True
    elif trigger == ids.CLEAR:
        sel = None
    elif trigger == ids.MATRIX and prop == "clickAnnotationData":
        sel = selmod.from_annotation(a, inputs.get("annotation"))
    elif trigger == ids.MATRIX:
        sel = selmod.from_matrix_click(a, inputs.get("matrix"))
    elif trigger == ids.MAP and prop == "selectedData":
        sel = selmod.from_map(a, inputs.get("map_select"))
    elif trigger == ids.MAP:
        sel = selmod.from_map(a, inputs.get("map_click"))
    elif trigger == ids.HOTSPOTS:
        sel = selmod.from_grid(a, "hotspot", inputs.get("hotspot_cell"))
    elif trigger == ids.MODELS:
        sel = selmod.from_grid(a, "model", inputs.get("model_cell"))
    elif trigger == ids.CHANNEL_SEARCH:
        text = str(inputs.get("search_text") or "").strip()
        if not text:
            return no_update, ""
        try:
            sel, msg = selmod.by_label(a, text), ""
        except ValueError as exc:
            return no_update, str(exc)
    else:
        return no_update, no_update
    if sel is None and trigger not in (ids.CLEAR, ids.ANALYSIS, ids.URL_QUERY, ids.URL_POP):
        return no_update, msg
    out = selmod.stamp(sel, current, tok.get("key"))
    if out is not None:
        out["query"] = selmod.to_query(a, sel)
        if from_url:
            out["from_url"] = True
    return out, msg


def _strip(sel):
    return None if sel is None else {k: v for k, v in sel.items() if k not in ("key", "query", "from_url", "carried")}


def _triggers() -> set[str]:
    """Ids of the inputs that triggered the running callback."""
    return {t["prop_id"].rsplit(".", 1)[0] for t in ctx.triggered if t.get("prop_id") not in (None, ".")}


def default_token(name: str | None, cfg) -> dict | None:
    """The token of ensemble ``name``'s analysis at the default parameters, or None when it is not
    cached (or no such ensemble)."""
    if name is None:
        return None
    try:
        params = data.clean_params()
        found = data.cached_analysis(data.ensemble_path(cfg.root, name), params, cfg.cache_dir)
    except (ValueError, FileNotFoundError):
        return None
    return None if found is None else data.token(name, params, found.key)


def first_values(tok: dict | None, cfg) -> dict:
    """{(id, property): value} of the views as their callbacks compute them for analysis ``tok`` with
    nothing selected (the memoised NMI matrix and UMAP map by hotspot, as JSON: `_unselected_json`;
    the table rows and styles, the map colourings), for the page to carry (`callbacks.first_page`)."""
    out = {(ids.MAP_COLOR, "options"): color_options(tok, cfg)}
    out.update(zip(_STYLE_OUTPUTS, table_styles(tok, None, cfg)))
    if tok is not None:
        out.update(zip(_TABLE_OUTPUTS, tables(tok, cfg)))
        out[(ids.MATRIX, "figure")] = _unselected_json("matrix", str(cfg.cache_dir), tok["key"], "nmi")
        out[(ids.MAP, "figure")] = _unselected_json("map", str(cfg.cache_dir), tok["key"], "umap", "hotspot")
    return out


_TABLE_OUTPUTS = [(ids.HOTSPOTS, "rowData"), (ids.MODELS, "rowData")]
_STYLE_OUTPUTS = [(ids.HOTSPOTS, "getRowStyle"), (ids.MODELS, "getRowStyle")]


def register(app, cfg) -> None:
    # A new analysis or view redraws the figure (reading the selection as State, so the first page does
    # not wait for selection -> traversal -> highlight); a new selection alone sends a small Patch.
    # The layout carries the first page's views (`first_values`): no callback here has an initial call.
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

    @app.callback(Output(ids.MAP_COLOR, "options"), Input(ids.ANALYSIS, "data"), prevent_initial_call=True)
    def _colors(tok):
        return color_options(tok, cfg)

    @app.callback(*[Output(*o) for o in _TABLE_OUTPUTS], Input(ids.ANALYSIS, "data"), prevent_initial_call=True)
    def _tables(tok):
        return tables(tok, cfg)

    @app.callback(*[Output(*o) for o in _STYLE_OUTPUTS], Input(ids.ANALYSIS, "data"), Input(ids.HIGHLIGHT, "data"),
                  prevent_initial_call=True)
    def _styles(tok, sel):
        return table_styles(tok, sel, cfg)

    @app.callback(Output(ids.MODELS, "dashGridOptions"), Input(ids.MODEL_FILTER, "value"), prevent_initial_call=True)
    def _model_filter(text):
        patch = Patch()
        patch["quickFilterText"] = str(text or "")
        return patch

    @app.callback(Output(ids.SELECTION, "data"), Output(ids.CHANNEL_SEARCH_MSG, "children"),
                  Input(ids.MATRIX, "clickData"), Input(ids.MATRIX, "clickAnnotationData"),
                  Input(ids.MAP, "clickData"), Input(ids.MAP, "selectedData"),
                  Input(ids.HOTSPOTS, "cellClicked"), Input(ids.MODELS, "cellClicked"), Input(ids.CLEAR, "n_clicks"),
                  Input(ids.CHANNEL_SEARCH, "value"), Input(ids.URL_QUERY, "data"), Input(ids.URL_POP, "data"),
                  Input(ids.ANALYSIS, "data"), State(ids.SELECTION, "data"), prevent_initial_call=True)
    def _selection(mclick, annot, pclick, psel, hcell, mcell, _clear, text, search, pop, tok, current):
        props = [t["prop_id"] for t in ctx.triggered if t.get("prop_id") not in (None, ".")]
        # plotly sends clickData and selectedData together for a click on the map: the selection wins
        event = f"{ids.MAP}.selectedData" if f"{ids.MAP}.selectedData" in props else (props[0] if props else "")
        inputs = {"matrix": mclick, "annotation": annot, "map_click": pclick, "map_select": psel,
                  "hotspot_cell": hcell, "model_cell": mcell, "search_text": text}
        return update_selection(event, inputs, tok, current, cfg, search=search, pop=pop)

    cb_url.register(app, cfg)          # the URL writer and Back / Forward
    cb_controls.register(app, cfg)     # errors beside the analysis inputs
