"""The page: a header with the ensemble picker, a control sidebar, and the linked views.

Layout (CSS grid in ``assets/vaefrag.css``)::

    header: title | ensemble | upload | status
    sidebar: analysis controls, progress + cancel, map / traversal controls, export
    main:   [ matrix (reachability + ordered matrix + factor NMI) | map / hotspot list ]
            [ traversals                                            | model table         ]
            [ beyond channels: full latent spaces | fusion of the selection (tabs)        ]
"""
from __future__ import annotations

import dash_ag_grid as dag
from dash import dcc, html

from vaefrag.dashboard import ids
from vaefrag.dashboard import traversals
from vaefrag.figures.views import PRINT_SIZE, empty_figure
from vaefrag.params import DEFAULT_MIN_NMI

#: on-screen heights of the two graphs (pixels); the figures are built at the same heights
MATRIX_HEIGHT = 640
MAP_HEIGHT = 380
#: upload cap (bytes); the server checks the decoded size again
MAX_UPLOAD_BYTES = 64 * 1024 * 1024


#: what the page's terms mean: the help panel, column tooltips and input hints all read this
GLOSSARY = {
    "NMI": "Normalised mutual information between two channels, I(U;V) / sqrt(I(U;U') I(V;V')): 1 when they "
           "carry the same information about the data, 0 when they share none.",
    "VI": "Variation of information, I(U;U') + I(V;V') - 2 I(U;V), in bits: 0 when two channels carry the "
          "same information, larger the more each carries that the other lacks.",
    "reachability": "OPTICS reachability distance of each channel in OPTICS order: valleys are groups of "
                    "channels close to each other (hotspots, shaded and numbered above the profile).",
    "hotspot": "A group of nearly identical channels (an information fragment) found by OPTICS; a good one "
               "recurs in many models. Numbered from 1 (as in the CSV and the paper figure).",
    "stability": "Fraction of bootstrap resamples of the fingerprint points in which the hotspot is found "
                 "again (1 = always).",
    "factor NMI": "NMI of a channel (or of a hotspot's channels, on average) with a ground-truth factor of the "
                  "dataset: how much of that factor it carries.",
    "UDR": "Unsupervised disentanglement ranking: how consistently a model's informative channels are matched "
           "one-to-one by channels of the other models (higher = more reproducible).",
    "bits": "Information a channel carries about the data, I(X;U), in bits (at most log2 of the number of "
            "fingerprint points).",
    "MIG / SAP": "Mutual information gap / separated attribute predictability: classic per-model "
                 "disentanglement scores against the ground-truth factors (need factor labels).",
}


def help_panel() -> html.Details:
    """A collapsed legend of the terms on the page (`GLOSSARY`)."""
    return html.Details([html.Summary("What the numbers mean"),
                         html.Dl([x for term, text in GLOSSARY.items() for x in (html.Dt(term), html.Dd(text))])],
                        id=ids.HELP, className="vf-help")


def number_input(control_id: str, value=None, placeholder: str | None = None, *, small: bool = False) -> dcc.Input:
    """A text input for a number. Not ``type=number``: a browser hands Dash nothing (None) for a
    value its ``step`` / ``min`` / ``max`` reject, which looked like "use the default"; here every
    typed value reaches the server, which accepts it or says why not beside the input (`ids.error_id`)."""
    return dcc.Input(id=control_id, type="text", inputMode="decimal", value=value, placeholder=placeholder,
                     debounce=True, className="vf-input" + (" vf-input-sm" if small else ""),
                     autoComplete="off")


def _checked_field(label: str, control, hint: str | None = None) -> html.Div:
    """`_field` with the error line of the control under it."""
    kids = [html.Label(label, className="vf-label"), control,
            html.Div(id=ids.error_id(control.id), className="vf-field-error", role="alert")]
    if hint:
        kids.append(html.Div(hint, className="vf-hint"))
    return html.Div(kids, className="vf-field")


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


def header(options: list[dict], default: str | None) -> html.Header:
    return html.Header([
        html.Div([html.Span("vaefrag", className="vf-logo"),
                  html.Span("information fragments of VAE ensembles", className="vf-tagline")], className="vf-brand"),
        html.Div([dcc.Dropdown(id=ids.ENSEMBLE, options=options, value=default,
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
        _checked_field("Information threshold (bits)",
                       number_input(ids.INFO_THRESHOLD, 0.01),
                       "a number >= 0, e.g. 0.013"),
        _checked_field("OPTICS min_samples", number_input(ids.MIN_SAMPLES, None, "auto (about K/2)"),
                       "an integer >= 2, or empty for auto"),
        _checked_field("OPTICS xi", number_input(ids.XI, None, "auto (0.05)"),
                       "steepness of a hotspot's edges: a number in (0, 1), e.g. 0.1"),
        _checked_field("Smallest mean NMI of a hotspot", number_input(ids.MIN_NMI, DEFAULT_MIN_NMI),
                       "a number in [0, 1]; groups of less similar channels are not hotspots"),
        _field("Preset", dcc.Dropdown(id=ids.PRESET, options=[{"label": "vaefrag defaults", "value": "default"},
                                                              {"label": "paper", "value": "paper"}],
                                      value=None, placeholder="choose a preset", clearable=False),
               "fills min_samples, xi and the smallest mean NMI; paper: 20, 0.05 and 0 (the reference "
               "code's OPTICS). Then Recompute"),
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
        _field("Find a channel", dcc.Input(id=ids.CHANNEL_SEARCH, type="text", placeholder="m5:z2", debounce=True,
                                           className="vf-input", autoComplete="off"),
               "model and latent, e.g. m5:z2, then Enter"),
        html.Div(id=ids.CHANNEL_SEARCH_MSG, className="vf-field-error", role="alert"),
        html.Button("Clear selection", id=ids.CLEAR, n_clicks=0, className="vf-btn"),
    ], className="vf-side-block")
    trav = html.Div([
        html.H3("Traversals"),
        html.Div([_field("Steps", number_input(ids.TRAV_STEPS, traversals.STEPS, small=True)),
                  _field("Bases", number_input(ids.TRAV_NBASE, traversals.BASES, small=True)),
                  _field("Seed", number_input(ids.TRAV_SEED, traversals.SEED, small=True))], className="vf-row",
                 title="steps: 3 to 15 values along the channel; bases: 1 to 6 base inputs (rows); seed: which bases"),
        html.Div(id=ids.TRAV_ERROR, className="vf-field-error", role="alert"),
        _field("Range (posterior-mean quantiles)",
               dcc.RangeSlider(id=ids.TRAV_RANGE, min=0, max=1, step=0.01, value=list(traversals.RANGE),
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
    return html.Aside([analysis, views, trav, export, html.Div(help_panel(), className="vf-side-block")],
                      className="vf-sidebar")


#: columns of the two tables: (field, header, d3 number format or "", tooltip)
HOTSPOT_COLUMNS = [("number", "#", "", "hotspot"), ("size", "size", "", "size"),
                   ("models", "models", "", "models"), ("info", "bits", ".2f", "bits"), ("nmi", "NMI", ".2f", "NMI"),
                   ("factor", "factor", "", "best factor"), ("factor_nmi", "f. NMI", ".2f", "factor NMI"),
                   ("stability", "stable", ".2f", "stability")]
MODEL_COLUMNS = [("model", "model", "", None), ("info", "info (bits)", ".2f", "bits"),
                 ("n_informative", "channels", "", "channels"), ("hotspots", "hotspots", "", "hotspots"),
                 ("mig", "MIG", ".3f", "MIG / SAP"), ("sap", "SAP", ".3f", "MIG / SAP"), ("udr", "UDR", ".3f", "UDR"),
                 ("final_loss", "final loss", ".4g", None)]


#: tooltips of the table columns that are not glossary terms
COLUMN_TIPS = {"size": "Channels in the hotspot.", "models": "Distinct models with a channel in the hotspot.",
               "hotspots": "How many hotspots the model has a channel in.",
               "channels": "The model's channels above the information threshold (the analysed ones).",
               "best factor": "The ground-truth factor the hotspot's channels carry most of (highest factor NMI)."}


def column_defs(columns, sort_field: str) -> list[dict]:
    """AG Grid column definitions: numbers right-aligned with a d3 format, text filters on text,
    number filters on numbers, every column sortable, a tooltip naming what the column means."""
    out = []
    for field, header, fmt, tip in columns:
        # wide enough for the header's text (7 px a character at 12 px) beside its sort arrow
        col = {"field": field, "headerName": header, "sortable": True, "resizable": True,
               "minWidth": max(44, 7 * len(header) + 20)}
        if tip:
            col["headerTooltip"] = GLOSSARY.get(tip) or COLUMN_TIPS[tip]
        if fmt:
            col.update(filter="agNumberColumnFilter", type="rightAligned",
                       valueFormatter={"function": f"params.value == null ? '' : d3.format('{fmt}')(params.value)"})
        elif field in ("number", "size", "models", "model", "n_informative", "hotspots"):
            col.update(filter="agNumberColumnFilter", type="rightAligned")
        else:
            col.update(filter="agTextColumnFilter")
        if field == sort_field:
            col["sort"] = "asc"
        if field == "number":             # the hotspot's colour, as in the matrix, the map and the paper figure
            col["cellStyle"] = {"function": "({'backgroundColor': params.data.color, 'color': 'white', "
                                            "'fontWeight': 700, 'textAlign': 'center'})"}
            col.update(maxWidth=60)
        out.append(col)
    return out


def _grid(grid_id: str, columns, sort_field: str, height: int) -> dag.AgGrid:
    """A sortable, filterable table whose row ids are the rows' ``row_id`` (str of the hotspot id / model); a click
    on any cell is a ``cellClicked`` event (each with its own time stamp, so clicking the same row
    again is a new event)."""
    return dag.AgGrid(id=grid_id, rowData=[], columnDefs=column_defs(columns, sort_field),
                      getRowId="params.data.row_id", columnSize="responsiveSizeToFit",
                      defaultColDef={"filter": True, "floatingFilter": False, "suppressHeaderMenuButton": False},
                      dashGridOptions={"rowHeight": 26, "headerHeight": 30, "tooltipShowDelay": 300,
                                       "suppressCellFocus": True, "animateRows": False,
                                       "suppressRowVirtualisation": True},      # a few dozen rows: all in the DOM
                      className="ag-theme-quartz vf-grid", style={"height": f"{height}px", "width": "100%"})


def main_views() -> html.Main:
    """The linked views, empty; `hydrate` fills them for the first page."""
    matrix = _panel("Ordered similarity matrix", dcc.Graph(id=ids.MATRIX, figure=empty_figure("loading ...", 600),
                                                           config=graph_config("matrix", "vaefrag-matrix"),
                                                           className="vf-graph-matrix", style={"height": f"{MATRIX_HEIGHT}px"}),
                    extra=dcc.RadioItems(id=ids.MATRIX_MEASURE, options=[{"label": "NMI", "value": "nmi"},
                                                                         {"label": "VI", "value": "vi"}],
                                         value="nmi", inline=True, className="vf-radio vf-head-radio"),
                    class_name="vf-matrix-panel")
    chan_map = _panel("Channel map", dcc.Graph(id=ids.MAP, figure=empty_figure("", 300),
                                               config=graph_config("map", "vaefrag-map"), className="vf-graph-map",
                                               style={"height": f"{MAP_HEIGHT}px"}),
                      extra=html.Span("lasso or box to select", className="vf-hint"), class_name="vf-map-panel")
    hotspots = _panel("Hotspots", _grid(ids.HOTSPOTS, HOTSPOT_COLUMNS, "number", 236),
                      extra=html.Span("click a row; sort / filter by the headers", className="vf-hint"),
                      class_name="vf-hotspot-panel")
    pager = html.Div([html.Button("‹ previous", id=ids.TRAV_PREV, n_clicks=0, className="vf-btn vf-btn-sm"),
                      html.Span(id=ids.TRAV_PAGER, className="vf-hint vf-pager-text"),
                      html.Button("next ›", id=ids.TRAV_NEXT, n_clicks=0, className="vf-btn vf-btn-sm"),
                      dcc.Checklist(id=ids.TRAV_ALL, options=[{"label": "show all members", "value": "all"}],
                                    value=[], inline=True, className="vf-radio")],
                     className="vf-row vf-wrap vf-pager")
    trav = _panel("Traversals", [html.Div(id=ids.SELECTION_INFO, className="vf-selection-info"), pager,
                                 dcc.Store(id=ids.TRAV_PAGE, data=0),
                                 html.Div(id=ids.TRAVERSALS, className="vf-traversals"),
                                 html.Div([html.Span("Bases: random with seed, or click fingerprint images",
                                                     className="vf-hint"),
                                           html.Button("random", id=ids.BASE_RANDOM, n_clicks=0, className="vf-btn vf-btn-sm")],
                                          className="vf-row"),
                                 html.Div(id=ids.BASE_STRIP, className="vf-base-strip")],
                  class_name="vf-trav-panel")
    models = _panel("Models", [dcc.Input(id=ids.MODEL_FILTER, type="text", placeholder="filter models ...",
                                         debounce=False, className="vf-input vf-grid-filter", autoComplete="off"),
                               _grid(ids.MODELS, MODEL_COLUMNS, "model", 400)],
                    extra=html.Span("click a row to select the model's channels", className="vf-hint"),
                    class_name="vf-model-panel")
    return html.Main([matrix, chan_map, hotspots, trav, models, beyond_panel()], className="vf-main")


#: what the full-latent-space numbers are (Monte Carlo estimates with standard errors)
SPACES_NOTE = ("Whole latent spaces carry more than the fingerprint can resolve, so their information is a Monte "
               "Carlo estimate over the dataset, shown with its standard error (± on hover, error bars on I(X;U)). "
               "An NMI slightly above 1 or a VI slightly below 0 is estimator noise: read it as 1 or 0 within "
               "the error shown.")

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
        html.P(SPACES_NOTE, className="vf-hint vf-note"),
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


def serve_layout(options: list[dict], default: str | None, token: dict | None = None) -> html.Div:
    """The whole page for the ensembles of the dropdown ``options`` (`data.ensemble_options`) with
    ``default`` open and the analysis ``token`` (None: none yet) in its store; its views are empty
    until `hydrate` fills them with what their callbacks would compute (`callbacks.first_page`)."""
    return html.Div([
        dcc.Location(id=ids.URL, refresh=False),
        # a Store given data=None sets its data again when it mounts, which fires every callback reading
        # it: empty Stores are given no data
        dcc.Store(id=ids.PENDING), dcc.Store(id=ids.ANALYSIS, **({} if token is None else {"data": token})),
        dcc.Store(id=ids.SELECTION), dcc.Store(id=ids.HIGHLIGHT, data=ids.HIGHLIGHT_AS_SERVED),
        dcc.Store(id=ids.TRAV_BASES),
        dcc.Store(id=ids.URL_QUERY), dcc.Store(id=ids.URL_STATE), dcc.Store(id=ids.URL_POP),
        header(options, default),
        html.Div(id=ids.STATUS, className="vf-status"),
        html.Div(id=ids.UPLOAD_STATUS, className="vf-status"),
        html.Div([sidebar(), main_views()], className="vf-body"),
    ], className="vf-app")


def hydrate(page, values: dict) -> set:
    """Set ``values`` {(component id, property): value} on the components of ``page`` in place
    (values that are ``no_update`` are skipped); returns the (id, property) pairs it found no component for."""
    from dash import no_update

    by_id: dict = {}
    for (cid, prop), value in values.items():
        if value is not no_update:
            by_id.setdefault(cid, {})[prop] = value
    for comp in page._traverse():
        props = by_id.pop(getattr(comp, "id", None), None) if isinstance(getattr(comp, "id", None), str) else None
        for prop, value in (props or {}).items():
            setattr(comp, prop, value)
    return {(cid, prop) for cid, props in by_id.items() for prop in props}
