"""The page: a header with the ensemble picker, a control sidebar, and the linked views.

Layout (CSS grid in ``assets/vaefrag.css``)::

    header: title | ensemble | upload | status
    sidebar: analysis controls, progress + cancel, map / traversal controls, export
    main:   [ matrix (reachability + ordered matrix + factor NMI) | map / hotspot list ]
            [ traversals                                            | model table         ]
            [ beyond channels: full latent spaces | fusion of the selection (tabs)        ]
"""
from __future__ import annotations

from dash import dash_table, dcc, html

from vaefrag.dashboard import ids
from vaefrag.figures.views import PRINT_SIZE, empty_figure

#: on-screen heights of the two graphs (pixels); the figures are built at the same heights
MATRIX_HEIGHT = 640
MAP_HEIGHT = 380
#: upload cap (bytes); the server checks the decoded size again
MAX_UPLOAD_BYTES = 64 * 1024 * 1024


def graph_config(kind: str, filename: str) -> dict:
    """plotly config: the camera button saves an SVG at print size."""
    w, h = PRINT_SIZE[kind]
    return {"displaylogo": False, "responsive": True,
            "toImageButtonOptions": {"format": "svg", "filename": filename, "width": w, "height": h, "scale": 1},
            "modeBarButtonsToRemove": ["autoScale2d", "toggleSpikelines", "hoverCompareCartesian"]}


def _field(label: str, control, hint: str | None = None) -> html.Div:
    kids = [html.Label(label, className="vf-label"), control]
    if hint:
        kids.append(html.Div(hint, className="vf-hint"))
    return html.Div(kids, className="vf-field")


def _panel(title: str, body, *, extra=None, class_name: str = "") -> html.Section:
    head = [html.H2(title)] + ([extra] if extra is not None else [])
    return html.Section([html.Div(head, className="vf-panel-head"), html.Div(body, className="vf-panel-body")],
                        className=f"vf-panel {class_name}".strip())


def header(names: list[str], default: str | None) -> html.Header:
    return html.Header([
        html.Div([html.Span("vaefrag", className="vf-logo"),
                  html.Span("information fragments of VAE ensembles", className="vf-tagline")], className="vf-brand"),
        html.Div([dcc.Dropdown(id=ids.ENSEMBLE, options=[{"label": n, "value": n} for n in names], value=default,
                               clearable=False, placeholder="choose an ensemble", className="vf-ensemble-dd"),
                  html.Span(id=ids.ENSEMBLE_INFO, className="vf-ensemble-info")], className="vf-ensemble"),
        dcc.Upload(id=ids.UPLOAD, children=html.Button("Upload posteriors .npz", className="vf-btn"),
                   accept=".npz", multiple=False, max_size=MAX_UPLOAD_BYTES, className="vf-upload"),
    ], className="vf-header")


def sidebar() -> html.Aside:
    analysis = html.Div([
        html.H3("Analysis"),
        _field("Cluster on", dcc.RadioItems(id=ids.MEASURE, options=[{"label": "NMI", "value": "nmi"},
                                                                     {"label": "VI", "value": "vi"}],
                                            value="nmi", inline=True, className="vf-radio")),
        _field("Information threshold (bits)", dcc.Input(id=ids.INFO_THRESHOLD, type="number", min=0, step=0.005,
                                                         value=0.01, debounce=True, className="vf-input")),
        _field("OPTICS min_samples", dcc.Input(id=ids.MIN_SAMPLES, type="number", min=2, step=1,
                                               placeholder="auto (about K/2)", debounce=True, className="vf-input")),
        _field("OPTICS xi", dcc.Input(id=ids.XI, type="number", min=0.001, max=0.999, step=0.01,
                                      placeholder="auto (0.05)", debounce=True, className="vf-input")),
        html.Div([html.Button("Recompute", id=ids.APPLY, n_clicks=0, className="vf-btn vf-btn-primary"),
                  html.Button("Cancel", id=ids.CANCEL, n_clicks=0, className="vf-btn", disabled=True)],
                 className="vf-row"),
        html.Div([html.Progress(id=ids.PROGRESS, value="0", max="1", className="vf-progress"),
                  html.Div(id=ids.PROGRESS_TEXT, className="vf-hint")], id=ids.JOB_PANEL, style={"display": "none"}),
    ], className="vf-side-block")
    views = html.Div([
        html.H3("Views"),
        _field("Map", dcc.RadioItems(id=ids.MAP_METHOD, options=[{"label": "UMAP", "value": "umap"},
                                                                 {"label": "MDS", "value": "mds"}],
                                     value="umap", inline=True, className="vf-radio")),
        _field("Colour map by", dcc.Dropdown(id=ids.MAP_COLOR, value="hotspot", clearable=False,
                                             options=[{"label": "hotspot", "value": "hotspot"},
                                                      {"label": "model", "value": "model"},
                                                      {"label": "information", "value": "info"}])),
        html.Button("Clear selection", id=ids.CLEAR, n_clicks=0, className="vf-btn"),
    ], className="vf-side-block")
    trav = html.Div([
        html.H3("Traversals"),
        html.Div([_field("Steps", dcc.Input(id=ids.TRAV_STEPS, type="number", min=3, max=15, step=1, value=7,
                                            debounce=True, className="vf-input vf-input-sm")),
                  _field("Bases", dcc.Input(id=ids.TRAV_NBASE, type="number", min=1, max=6, step=1, value=2,
                                            debounce=True, className="vf-input vf-input-sm")),
                  _field("Seed", dcc.Input(id=ids.TRAV_SEED, type="number", min=0, step=1, value=0, debounce=True,
                                           className="vf-input vf-input-sm"))], className="vf-row"),
        _field("Range (posterior-mean quantiles)",
               dcc.RangeSlider(id=ids.TRAV_RANGE, min=0, max=1, step=0.01, value=[0.05, 0.95],
                               marks={0: "0", 0.5: "0.5", 1: "1"}, tooltip={"placement": "bottom"})),
    ], className="vf-side-block")
    export = html.Div([
        html.H3("Export"),
        dcc.RadioItems(id=ids.EXPORT_FORMAT, options=[{"label": f, "value": f.lower()} for f in ("PDF", "SVG", "PNG")],
                       value="pdf", inline=True, className="vf-radio"),
        html.Div([html.Button("Paper figure", id=ids.EXPORT_FIGURE, n_clicks=0, className="vf-btn"),
                  html.Button("Hotspots CSV", id=ids.EXPORT_CSV, n_clicks=0, className="vf-btn"),
                  html.Button("Matrices NPZ", id=ids.EXPORT_NPZ, n_clicks=0, className="vf-btn")], className="vf-row vf-wrap"),
        dcc.Download(id=ids.DOWNLOAD),
    ], className="vf-side-block")
    return html.Aside([analysis, views, trav, export], className="vf-sidebar")


def _table(table_id: str, columns: list[tuple[str, str, str]], sort: list[dict],
           max_height: int = 300) -> dash_table.DataTable:
    cols = []
    for key, name, fmt in columns:
        col = {"id": key, "name": name}
        if fmt:
            col.update(type="numeric", format={"specifier": fmt})
        cols.append(col)
    return dash_table.DataTable(
        id=table_id, columns=cols, data=[], sort_action="native", sort_by=sort, page_action="none",
        cell_selectable=True, style_as_list_view=True,
        style_table={"overflowY": "auto", "overflowX": "auto", "maxHeight": f"{max_height}px"},
        style_cell={"fontFamily": "inherit", "fontSize": "12px", "padding": "3px 5px", "textAlign": "right",
                    "border": "none", "whiteSpace": "nowrap"},
        style_header={"fontWeight": "600", "backgroundColor": "#f3f4f6", "borderBottom": "1px solid #d1d5db"},
        style_data_conditional=[], css=[{"selector": "tr:hover td:not([data-dash-column=number])", "rule": "background-color: #eef2ff !important;"}])


def main_views(first: dict | None = None) -> html.Main:
    """The linked views; ``first`` (`callbacks.views.first_page`) fills the matrix and map figures."""
    first = first or {}
    matrix_fig = first.get("matrix") or empty_figure("loading ...", 600)
    matrix = _panel("Ordered similarity matrix", dcc.Graph(id=ids.MATRIX, figure=matrix_fig,
                                                           config=graph_config("matrix", "vaefrag-matrix"),
                                                           className="vf-graph-matrix", style={"height": f"{MATRIX_HEIGHT}px"}),
                    extra=dcc.RadioItems(id=ids.MATRIX_MEASURE, options=[{"label": "NMI", "value": "nmi"},
                                                                         {"label": "VI", "value": "vi"}],
                                         value="nmi", inline=True, className="vf-radio vf-head-radio"),
                    class_name="vf-matrix-panel")
    chan_map = _panel("Channel map", dcc.Graph(id=ids.MAP, figure=first.get("map") or empty_figure("", 300),
                                               config=graph_config("map", "vaefrag-map"), className="vf-graph-map",
                                               style={"height": f"{MAP_HEIGHT}px"}),
                      extra=html.Span("lasso or box to select", className="vf-hint"), class_name="vf-map-panel")
    hotspots = _panel("Hotspots", _table(ids.HOTSPOTS, [
        ("number", "#", ""), ("size", "size", ""), ("models", "models", ""), ("info", "bits", ".2f"),
        ("nmi", "NMI", ".2f"), ("factor", "best factor", ""), ("factor_nmi", "f. NMI", ".2f"),
        ("stability", "stable", ".2f")], [{"column_id": "number", "direction": "asc"}], max_height=230),
        class_name="vf-hotspot-panel")
    trav = _panel("Traversals", [html.Div(id=ids.SELECTION_INFO, className="vf-selection-info"),
                                 html.Div(id=ids.TRAVERSALS, className="vf-traversals"),
                                 html.Div([html.Span("Bases: random with seed, or click fingerprint images",
                                                     className="vf-hint"),
                                           html.Button("random", id=ids.BASE_RANDOM, n_clicks=0, className="vf-btn vf-btn-sm")],
                                          className="vf-row"),
                                 html.Div(id=ids.BASE_STRIP, className="vf-base-strip")],
                  class_name="vf-trav-panel")
    models = _panel("Models", _table(ids.MODELS, [
        ("model", "model", ""), ("info", "info (bits)", ".2f"), ("n_informative", "channels", ""),
        ("hotspots", "hotspots", ""), ("mig", "MIG", ".3f"), ("sap", "SAP", ".3f"), ("udr", "UDR", ".3f"),
        ("final_loss", "final loss", ".4g")], [{"column_id": "model", "direction": "asc"}], max_height=400),
        class_name="vf-model-panel")
    return html.Main([matrix, chan_map, hotspots, trav, models, beyond_panel()], className="vf-main")


#: on-screen height of the graphs of the "beyond channels" panel (pixels)
BEYOND_HEIGHT = 440


def beyond_panel() -> html.Section:
    """Full width, below the views: tabs "Full latent spaces" (model x model NMI / VI of whole latent
    spaces), "Fuse selection" (the selected channels fused into a 2-D space) and "Compare ensembles"
    (the hotspots the open ensemble shares with another), each a background job."""
    def job(button_id, label, cancel_id, panel_id, progress_id, text_id) -> list:
        return [html.Button(label, id=button_id, n_clicks=0, className="vf-btn vf-btn-primary"),
                html.Button("Cancel", id=cancel_id, n_clicks=0, className="vf-btn", disabled=True),
                html.Div([html.Progress(id=progress_id, value="0", max="1", className="vf-progress"),
                          html.Div(id=text_id, className="vf-hint")], id=panel_id, className="vf-beyond-job",
                         style={"display": "none"})]

    def radio(radio_id, labels: dict) -> dcc.RadioItems:
        return dcc.RadioItems(id=radio_id, options=[{"label": v, "value": k} for k, v in labels.items()],
                              value=next(iter(labels)), inline=True, className="vf-radio")

    def graph(graph_id, kind, filename) -> dcc.Graph:
        return dcc.Graph(id=graph_id, figure=empty_figure("", BEYOND_HEIGHT), config=graph_config(kind, filename),
                         style={"height": f"{BEYOND_HEIGHT}px"})

    from vaefrag.dashboard.sweep import dynamics_tab, sweep_tab

    tab = {"className": "vf-tab", "selected_className": "vf-tab-selected"}
    spaces = dcc.Tab(label="Full latent spaces", value="spaces", **tab, children=[
        html.Div([radio(ids.SPACES_MEASURE, {"nmi": "NMI", "vi": "VI"}),
                  *job(ids.SPACES_COMPUTE, "Compute", ids.SPACES_CANCEL, ids.SPACES_JOB_PANEL, ids.SPACES_PROGRESS,
                       ids.SPACES_PROGRESS_TEXT)], className="vf-row vf-wrap vf-beyond-controls"),
        html.Div(id=ids.SPACES_STATUS, className="vf-beyond-status"),
        graph(ids.SPACES_GRAPH, "matrix", "vaefrag-spaces")])
    fuse = dcc.Tab(label="Fuse selection", value="fuse", **tab, children=[
        html.Div([radio(ids.FUSE_OBJECTIVE, {"nmi": "NMI", "vi": "VI", "info": "information"}),
                  html.Label("colour by", className="vf-label vf-inline-label"),
                  dcc.Dropdown(id=ids.FUSE_COLOR, value=None, clearable=False, className="vf-fuse-color",
                               options=[{"label": "point index", "value": "index"}]),
                  *job(ids.FUSE, "Fuse selection", ids.FUSE_CANCEL, ids.FUSE_JOB_PANEL, ids.FUSE_PROGRESS,
                       ids.FUSE_PROGRESS_TEXT)], className="vf-row vf-wrap vf-beyond-controls"),
        html.Div(id=ids.FUSE_STATUS, className="vf-beyond-status"),
        html.Div([graph(ids.FUSED, "map", "vaefrag-fused"), graph(ids.FUSE_AGREEMENT, "map", "vaefrag-fusion-nmi")],
                 className="vf-beyond-graphs")])
    compare = dcc.Tab(label="Compare ensembles", value="compare", **tab, children=[
        html.Div([html.Label("with", className="vf-label vf-inline-label"),
                  dcc.Dropdown(id=ids.COMPARE_WITH, value=None, clearable=False, className="vf-compare-with",
                               placeholder="another ensemble", options=[]),
                  *job(ids.COMPARE, "Compare", ids.COMPARE_CANCEL, ids.COMPARE_JOB_PANEL, ids.COMPARE_PROGRESS,
                       ids.COMPARE_PROGRESS_TEXT)], className="vf-row vf-wrap vf-beyond-controls"),
        html.Div(id=ids.COMPARE_STATUS, className="vf-beyond-status"),
        graph(ids.COMPARE_GRAPH, "matrix", "vaefrag-compare")])
    return _panel("Beyond channels", [dcc.Store(id=ids.SPACES_DONE), dcc.Store(id=ids.FUSION),
                                      dcc.Tabs(id=ids.BEYOND_TABS, value="spaces",
                                               children=[spaces, fuse, compare, sweep_tab(), dynamics_tab()],
                                               className="vf-beyond-tabs")],
                  extra=html.Span("whole latent spaces of the models; the selection fused into 2-D; "
                                  "the hotspots two ensembles share", className="vf-hint"),
                  class_name="vf-beyond-panel")


def serve_layout(names: list[str], default: str | None, first: dict | None = None) -> html.Div:
    """The whole page for the ensembles ``names`` with ``default`` open; ``first`` (a dict with the
    default analysis' "token" and its "matrix" and "map" figures, or None) lets the first page draw
    without waiting for a callback."""
    return html.Div([
        dcc.Location(id=ids.URL, refresh=False),
        dcc.Store(id=ids.PENDING), dcc.Store(id=ids.ANALYSIS, data=first["token"] if first else None),
        dcc.Store(id=ids.SELECTION, data=None), dcc.Store(id=ids.HIGHLIGHT, data=ids.HIGHLIGHT_AS_SERVED),
        dcc.Store(id=ids.TRAV_BASES, data=None),
        dcc.Store(id=ids.URL_STATE),
        header(names, default),
        html.Div(id=ids.STATUS, className="vf-status"),
        html.Div(id=ids.UPLOAD_STATUS, className="vf-status"),
        html.Div([sidebar(), main_views(first)], className="vf-body"),
    ], className="vf-app")
