"""The "Sweep" and "Training" tabs of the "beyond channels" panel (layout + callbacks).

Training: for the open ensemble, trained with ``--checkpoints``, "Compute" runs `dynamics_job`
(`dynamics.training_dynamics` in a background callback) and draws the timeline
(`figures.sweep.dynamics_plotly`): full-space NMI / VI between repeat runs and hotspots per checkpoint.

Sweep: hotspots tracked along a sweep.

Sweeps live in ``sweeps/`` next to the dashboard's ensembles directory (``data/sweeps`` beside
``data/ensembles``), one directory with a ``sweep.json`` each (`vaefrag.sweep`). "Track" runs
`track_job`, a background callback that finds the hotspots of every member (analysis cache, the
dashboard's default hotspot parameters, no bootstrap) and links neighbouring values
(`sweep.analyze_sweep`); it returns the tree (`figures.sweep.tracking_plotly`: nodes sized by
channels and coloured by best factor, edges by mean cross NMI) and, per level, the member's
dashboard name. Clicking a node (`open_node`) sets the page URL to ``?ensemble=NAME&hotspot=K``
(1-based), which opens that ensemble with the hotspot selected, its traversals shown.

The plain functions take the values Dash passes plus the app `Config`, so tests call them without a server.
"""
from __future__ import annotations

from pathlib import Path
from urllib.parse import urlencode

import numpy as np
from dash import Input, Output, State, dcc, html, no_update

from vaefrag.dashboard import data, ids

SWEEP_NAME = "vf-sweep-name"             # dcc.Dropdown: sweeps under the sweeps root
SWEEP_TRACK = "vf-sweep-track"           # button: run the tracking job
SWEEP_CANCEL = "vf-sweep-cancel"
SWEEP_JOB_PANEL = "vf-sweep-job"
SWEEP_PROGRESS = "vf-sweep-progress"
SWEEP_PROGRESS_TEXT = "vf-sweep-progress-text"
SWEEP_STATUS = "vf-sweep-status"
SWEEP_GRAPH = "vf-sweep-graph"           # the tracking tree; click a node to open it
SWEEP_NODES = "vf-sweep-nodes"           # dcc.Store: {"sweep": name, "levels": [{"label", "ensemble" or None, "hotspots"}]}

TAB_VALUE = "sweep"

DYN_COMPUTE = "vf-dyn-compute"           # button: training dynamics of the open ensemble (background job)
DYN_CANCEL = "vf-dyn-cancel"
DYN_JOB_PANEL = "vf-dyn-job"
DYN_PROGRESS = "vf-dyn-progress"
DYN_PROGRESS_TEXT = "vf-dyn-progress-text"
DYN_STATUS = "vf-dyn-status"
DYN_GRAPH = "vf-dyn-graph"
DYN_TAB_VALUE = "dynamics"
#: Monte Carlo draws per full-space estimate in the dashboard's timeline
DYN_SAMPLES = 1000


def sweeps_root(cfg) -> Path:
    """``sweeps/`` beside the ensembles directory."""
    return Path(cfg.root).parent / "sweeps"


def sweep_names(cfg) -> list[str]:
    root = sweeps_root(cfg)
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")
                  and (p / "sweep.json").is_file())


def sweep_tab() -> dcc.Tab:
    """The tab (added to the "beyond channels" tabs by `layout.beyond_panel`)."""
    from vaefrag.dashboard.layout import BEYOND_HEIGHT, graph_config
    from vaefrag.figures.views import empty_figure

    return dcc.Tab(label="Sweep", value=TAB_VALUE, className="vf-tab", selected_className="vf-tab-selected", children=[
        html.Div([html.Label("sweep", className="vf-label vf-inline-label"),
                  dcc.Dropdown(id=SWEEP_NAME, value=None, clearable=False, className="vf-compare-with",
                               placeholder="a sweep under data/sweeps", options=[]),
                  html.Button("Track", id=SWEEP_TRACK, n_clicks=0, className="vf-btn vf-btn-primary"),
                  html.Button("Cancel", id=SWEEP_CANCEL, n_clicks=0, className="vf-btn", disabled=True),
                  html.Div([html.Progress(id=SWEEP_PROGRESS, value="0", max="1", className="vf-progress"),
                            html.Div(id=SWEEP_PROGRESS_TEXT, className="vf-hint")], id=SWEEP_JOB_PANEL,
                           className="vf-beyond-job", style={"display": "none"})],
                 className="vf-row vf-wrap vf-beyond-controls"),
        html.Div(id=SWEEP_STATUS, className="vf-beyond-status"),
        dcc.Store(id=SWEEP_NODES),
        dcc.Graph(id=SWEEP_GRAPH, figure=empty_figure("", BEYOND_HEIGHT), config=graph_config("matrix", "vaefrag-sweep"),
                  style={"height": f"{BEYOND_HEIGHT}px"})])


def dynamics_tab() -> dcc.Tab:
    """The "Training" tab: the open ensemble's repeat runs over its stored checkpoints."""
    from vaefrag.dashboard.layout import BEYOND_HEIGHT, graph_config
    from vaefrag.figures.views import empty_figure

    return dcc.Tab(label="Training", value=DYN_TAB_VALUE, className="vf-tab", selected_className="vf-tab-selected",
                   children=[
        html.Div([html.Button("Compute", id=DYN_COMPUTE, n_clicks=0, className="vf-btn vf-btn-primary"),
                  html.Button("Cancel", id=DYN_CANCEL, n_clicks=0, className="vf-btn", disabled=True),
                  html.Div([html.Progress(id=DYN_PROGRESS, value="0", max="1", className="vf-progress"),
                            html.Div(id=DYN_PROGRESS_TEXT, className="vf-hint")], id=DYN_JOB_PANEL,
                           className="vf-beyond-job", style={"display": "none"}),
                  html.Span("full-space NMI / VI between the repeat runs and the hotspots at each stored checkpoint "
                            "(ensembles trained with --checkpoints)", className="vf-hint")],
                 className="vf-row vf-wrap vf-beyond-controls"),
        html.Div(id=DYN_STATUS, className="vf-beyond-status"),
        dcc.Graph(id=DYN_GRAPH, figure=empty_figure("", BEYOND_HEIGHT), config=graph_config("matrix", "vaefrag-dynamics"),
                  style={"height": f"{BEYOND_HEIGHT}px"})])


def dynamics_job(set_progress, n_clicks, tok, cfg) -> tuple:
    """(figure, status) of `dynamics.training_dynamics` for the open ensemble (token validated)."""
    from vaefrag.dashboard.callbacks.analysis import alert
    from vaefrag.dashboard.layout import BEYOND_HEIGHT
    from vaefrag.dynamics import training_dynamics
    from vaefrag.figures.sweep import dynamics_plotly
    from vaefrag.figures.views import empty_figure

    if not n_clicks:
        return no_update, no_update
    if not isinstance(tok, dict) or not isinstance(tok.get("ensemble"), str):
        return empty_figure("", BEYOND_HEIGHT), alert("Open an ensemble first.", "info")
    try:
        path = data.ensemble_path(cfg.root, tok["ensemble"])
        progress = lambda d, t, m="": set_progress((str(d), str(max(t, 1)), f"{m} ({d}/{t})"))
        dyn = training_dynamics(path, n_samples=DYN_SAMPLES, cache_dir=cfg.cache_dir, progress=progress,
                                **data.DEFAULT_PARAMS)
    except (ValueError, FileNotFoundError) as exc:
        return empty_figure("", BEYOND_HEIGHT), alert(f"Training dynamics of {tok['ensemble']}: {exc}")
    fig = dynamics_plotly(dyn, height=BEYOND_HEIGHT)
    lo = int(np.nanargmin(dyn.nmi_mean)) if np.isfinite(dyn.nmi_mean).any() else 0
    status = alert(f"{len(dyn.steps)} checkpoints of {dyn.nmi.shape[1]} runs; the runs agree least at step "
                   f"{int(dyn.steps[lo])} (mean NMI {dyn.nmi_mean[lo]:.3f} +- {2 * dyn.nmi_mc_err[lo]:.3f}).", "ok")
    return fig, status


def sweep_options(current, cfg) -> tuple:
    names = sweep_names(cfg)
    value = current if current in names else (names[0] if names else None)
    return [{"label": n, "value": n} for n in names], value


def _member_name(path: Path, cfg) -> str | None:
    """The dashboard name of a member ensemble, or None when it is not directly under the ensembles dir."""
    try:
        same = Path(path).resolve().parent == Path(cfg.root).resolve()
    except OSError:
        return None
    return Path(path).resolve().name if same else None


def track_job(set_progress, n_clicks, name, cfg) -> tuple:
    """(figure, status, nodes) of the tracking of sweep ``name`` (validated against the listed sweeps)."""
    from vaefrag import sweep as sweep_mod
    from vaefrag.dashboard.callbacks.analysis import alert
    from vaefrag.dashboard.layout import BEYOND_HEIGHT
    from vaefrag.figures.sweep import tracking_plotly
    from vaefrag.figures.views import empty_figure

    if not n_clicks:
        return no_update, no_update, no_update
    if name not in sweep_names(cfg):
        return empty_figure("", BEYOND_HEIGHT), alert(f"No sweep named {name!r} under {sweeps_root(cfg)}."), None
    try:
        sw = sweep_mod.load_sweep(sweeps_root(cfg) / name)
        set_progress(("0", "1", "analysing the members ..."))
        progress = lambda d, t, m="": set_progress((str(d), str(max(t, 1)), f"{m} ({d}/{t})"))
        tracking, analyses = sweep_mod.analyze_sweep(sw, cache_dir=cfg.cache_dir, progress=progress,
                                                     **data.DEFAULT_PARAMS)
    except (ValueError, FileNotFoundError) as exc:
        return empty_figure("", BEYOND_HEIGHT), alert(f"Tracking sweep {name} failed: {exc}"), None
    names = analyses[0].factor_names if analyses else None
    fig = tracking_plotly(tracking, names, x_label=sw.key, height=BEYOND_HEIGHT)
    nodes = {"sweep": name, "levels": [{"label": lv.label, "ensemble": _member_name(p, cfg), "hotspots": lv.n_hotspots}
                                       for lv, p in zip(tracking.levels, sw.paths)]}
    counts = {k: len(tracking.events_of(k)) for k in ("appears", "splits", "merges", "fades")}
    status = alert(f"{sw.key} = {', '.join(lv.label.split('=')[-1] for lv in tracking.levels)}: hotspots "
                   f"{', '.join(str(lv.n_hotspots) for lv in tracking.levels)}; "
                   + ", ".join(f"{v} {k}" for k, v in counts.items())
                   + f" (links: mean cross NMI >= {tracking.min_link:g}). Click a hotspot to open it.", "ok")
    return fig, status, nodes


def open_node(click, nodes, cfg) -> tuple:
    """(URL search, status) for a click on a node: ``?ensemble=NAME&hotspot=K`` (K from 1)."""
    from vaefrag.dashboard.callbacks.analysis import alert

    try:
        level, hotspot = (int(v) for v in click["points"][0]["customdata"])
        entry = nodes["levels"][level]
    except (TypeError, KeyError, IndexError, ValueError):
        return no_update, no_update                 # a click on an edge, or stale input
    if not 0 <= hotspot < int(entry.get("hotspots", 0)):
        return no_update, alert("That hotspot is not in the tracked sweep any more; track it again.")
    name = entry.get("ensemble")
    if name is None or name not in data.ensemble_names(cfg.root):
        return no_update, alert(f"The member at {entry.get('label')} is not an ensemble under {cfg.root}; open it "
                                "with `vaefrag serve` pointed at its directory.")
    return "?" + urlencode({"ensemble": name, "hotspot": hotspot + 1}), no_update


def register(app, cfg) -> None:
    from vaefrag.dashboard.callbacks.analysis import HIDE, SHOW

    @app.callback(Output(SWEEP_NAME, "options"), Output(SWEEP_NAME, "value"),
                  Input(ids.BEYOND_TABS, "value"), State(SWEEP_NAME, "value"))
    def _options(_tab, current):
        return sweep_options(current, cfg)

    @app.callback(Output(SWEEP_GRAPH, "figure"), Output(SWEEP_STATUS, "children"), Output(SWEEP_NODES, "data"),
                  Input(SWEEP_TRACK, "n_clicks"), State(SWEEP_NAME, "value"),
                  background=True, prevent_initial_call=True, interval=500,
                  progress=[Output(SWEEP_PROGRESS, "value"), Output(SWEEP_PROGRESS, "max"),
                            Output(SWEEP_PROGRESS_TEXT, "children")],
                  running=[(Output(SWEEP_JOB_PANEL, "style"), SHOW, HIDE), (Output(SWEEP_TRACK, "disabled"), True, False),
                           (Output(SWEEP_CANCEL, "disabled"), False, True)],
                  cancel=[Input(SWEEP_CANCEL, "n_clicks")])
    def _track(set_progress, n_clicks, name):
        data.one_torch_thread_in_job()
        return track_job(set_progress, n_clicks, name, cfg)

    @app.callback(Output(ids.URL, "search"), Output(SWEEP_STATUS, "children", allow_duplicate=True),
                  Input(SWEEP_GRAPH, "clickData"), State(SWEEP_NODES, "data"), prevent_initial_call=True)
    def _open(click, nodes):
        return open_node(click, nodes, cfg)

    @app.callback(Output(DYN_GRAPH, "figure"), Output(DYN_STATUS, "children"),
                  Input(DYN_COMPUTE, "n_clicks"), State(ids.ANALYSIS, "data"),
                  background=True, prevent_initial_call=True, interval=500,
                  progress=[Output(DYN_PROGRESS, "value"), Output(DYN_PROGRESS, "max"),
                            Output(DYN_PROGRESS_TEXT, "children")],
                  running=[(Output(DYN_JOB_PANEL, "style"), SHOW, HIDE), (Output(DYN_COMPUTE, "disabled"), True, False),
                           (Output(DYN_CANCEL, "disabled"), False, True)],
                  cancel=[Input(DYN_CANCEL, "n_clicks")])
    def _dynamics(set_progress, n_clicks, tok):
        data.one_torch_thread_in_job()
        return dynamics_job(set_progress, n_clicks, tok, cfg)
