"""The "Sweep" and "Training" tabs of the "beyond channels" panel (layout + callbacks).

Both run their work as jobs of the app's runner (`dashboard.jobs`: worker processes, progress,
cancel; the work itself is `tasks.track_sweep` / `dynamics.training_dynamics`); `track_job` and
`dynamics_job` run the same code in this process (tests).

Training: for the open ensemble, trained with ``--checkpoints``, "Compute" runs
`dynamics.training_dynamics` and draws the timeline
(`figures.sweep.dynamics_plotly`): full-space NMI / VI between repeat runs and hotspots per checkpoint.

Sweep: hotspots tracked along a sweep.

Sweeps live in ``sweeps/`` next to the dashboard's ensembles directory (``data/sweeps`` beside
``data/ensembles``), one directory with a ``sweep.json`` each (`vaefrag.sweep`). "Track" runs
a job that finds the hotspots of every member (analysis cache, the
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

from vaefrag.dashboard import data, ids, tasks
from vaefrag.dashboard.callbacks import jobs as jobs_ui

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
DYN_SAMPLES = tasks.DYN_SAMPLES

SWEEP_JOB = jobs_ui.JobPanel("sweep", SWEEP_TRACK, SWEEP_CANCEL, SWEEP_JOB_PANEL, SWEEP_PROGRESS, SWEEP_PROGRESS_TEXT,
                             SWEEP_STATUS)
DYN_JOB = jobs_ui.JobPanel("dynamics", DYN_COMPUTE, DYN_CANCEL, DYN_JOB_PANEL, DYN_PROGRESS, DYN_PROGRESS_TEXT,
                           DYN_STATUS)


def _job_components(panel) -> list:
    """A panel's job store and poll interval (`callbacks.jobs`)."""
    return [dcc.Store(id=panel.store), dcc.Interval(id=panel.interval, interval=jobs_ui.POLL_MS, disabled=True)]


def sweeps_root(cfg) -> Path:
    """``sweeps/`` beside the ensembles directory."""
    return tasks.sweeps_root(cfg.root)


def sweep_names(cfg) -> list[str]:
    return tasks.sweep_names(cfg.root)


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
        dcc.Store(id=SWEEP_NODES), *_job_components(SWEEP_JOB),
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
        html.Div(id=DYN_STATUS, className="vf-beyond-status"), *_job_components(DYN_JOB),
        dcc.Graph(id=DYN_GRAPH, figure=empty_figure("", BEYOND_HEIGHT), config=graph_config("matrix", "vaefrag-dynamics"),
                  style={"height": f"{BEYOND_HEIGHT}px"})])


def dynamics_view(dyn, name: str) -> tuple:
    """(figure, status) of a `dynamics.training_dynamics` result of ensemble ``name``."""
    from vaefrag.dashboard.callbacks.analysis import alert
    from vaefrag.dashboard.layout import BEYOND_HEIGHT
    from vaefrag.figures.sweep import dynamics_plotly

    fig = dynamics_plotly(dyn, height=BEYOND_HEIGHT)
    lo = int(np.nanargmin(dyn.nmi_mean)) if np.isfinite(dyn.nmi_mean).any() else 0
    status = alert(f"{name}: {len(dyn.steps)} checkpoints of {dyn.nmi.shape[1]} runs; the runs agree least at step "
                   f"{int(dyn.steps[lo])} (mean NMI {dyn.nmi_mean[lo]:.3f} +- {2 * dyn.nmi_mc_err[lo]:.3f}).", "ok")
    return fig, status


def _dynamics_ensemble(tok, cfg) -> str:
    """The open ensemble's name from the analysis token; ValueError unless it is listed under the root."""
    if not isinstance(tok, dict) or not isinstance(tok.get("ensemble"), str):
        raise ValueError("Open an ensemble first.")
    data.ensemble_path(cfg.root, tok["ensemble"])              # inside the root, or ValueError
    return tok["ensemble"]


def dynamics_job(set_progress, n_clicks, tok, cfg) -> tuple:
    """(figure, status) of `dynamics.training_dynamics` for the open ensemble, in this process."""
    from vaefrag.dashboard.callbacks.analysis import alert
    from vaefrag.dashboard.layout import BEYOND_HEIGHT
    from vaefrag.figures.views import empty_figure

    if not n_clicks:
        return no_update, no_update
    if not isinstance(tok, dict) or not isinstance(tok.get("ensemble"), str):
        return empty_figure("", BEYOND_HEIGHT), alert("Open an ensemble first.", "info")
    try:
        progress = lambda d, t, m="": set_progress((str(d), str(max(t, 1)), f"{m} ({d}/{t})"))
        dyn = tasks.run("dynamics", {"ensemble": tok["ensemble"]}, cfg.root, cfg.cache_dir, progress)
    except (ValueError, FileNotFoundError) as exc:
        return empty_figure("", BEYOND_HEIGHT), alert(f"Training dynamics of {tok['ensemble']}: {exc}")
    return dynamics_view(dyn, tok["ensemble"])


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


def track_view(res: dict, cfg) -> tuple:
    """(figure, status, nodes) of a `tasks.track_sweep` result."""
    from vaefrag.dashboard.callbacks.analysis import alert
    from vaefrag.dashboard.layout import BEYOND_HEIGHT
    from vaefrag.figures.sweep import tracking_plotly

    tracking = res["tracking"]
    fig = tracking_plotly(tracking, res["factor_names"], x_label=res["key"], height=BEYOND_HEIGHT)
    nodes = {"sweep": res["sweep"], "levels": [{"label": lv.label, "ensemble": _member_name(p, cfg),
                                                "hotspots": lv.n_hotspots}
                                               for lv, p in zip(tracking.levels, res["paths"])]}
    counts = {k: len(tracking.events_of(k)) for k in ("appears", "splits", "merges", "fades")}
    status = alert(f"{res['key']} = {', '.join(lv.label.split('=')[-1] for lv in tracking.levels)}: hotspots "
                   f"{', '.join(str(lv.n_hotspots) for lv in tracking.levels)}; "
                   + ", ".join(f"{v} {k}" for k, v in counts.items())
                   + f" (links: mean cross NMI >= {tracking.min_link:g}). Click a hotspot to open it.", "ok")
    return fig, status, nodes


def track_job(set_progress, n_clicks, name, cfg) -> tuple:
    """(figure, status, nodes) of the tracking of sweep ``name`` (validated against the listed sweeps),
    computed in this process."""
    from vaefrag.dashboard.callbacks.analysis import alert
    from vaefrag.dashboard.layout import BEYOND_HEIGHT
    from vaefrag.figures.views import empty_figure

    if not n_clicks:
        return no_update, no_update, no_update
    if name not in sweep_names(cfg):
        return empty_figure("", BEYOND_HEIGHT), alert(f"No sweep named {name!r} under {sweeps_root(cfg)}."), None
    try:
        progress = lambda d, t, m="": set_progress((str(d), str(max(t, 1)), f"{m} ({d}/{t})"))
        res = tasks.run("sweep", {"sweep": name}, cfg.root, cfg.cache_dir, progress)
    except (ValueError, FileNotFoundError) as exc:
        return empty_figure("", BEYOND_HEIGHT), alert(f"Tracking sweep {name} failed: {exc}"), None
    return track_view(res, cfg)


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


def first_values(_tok, cfg) -> dict:
    """{(id, property): value} of the sweep tab for the page as served (`callbacks.first_page`)."""
    return dict(zip([(SWEEP_NAME, "options"), (SWEEP_NAME, "value")], sweep_options(None, cfg)))


def register(app, cfg) -> None:
    from vaefrag.dashboard.callbacks.analysis import alert

    @app.callback(Output(SWEEP_NAME, "options"), Output(SWEEP_NAME, "value"),
                  Input(ids.BEYOND_TABS, "value"), State(SWEEP_NAME, "value"), prevent_initial_call=True)
    def _options(_tab, current):
        return sweep_options(current, cfg)

    def _start_track(n_clicks, name, client):
        if not n_clicks:
            return jobs_ui.idle()
        if name not in sweep_names(cfg):
            return jobs_ui.idle(alert(f"No sweep named {str(name)[:80]!r} under {sweeps_root(cfg)}."))
        return jobs_ui.start(cfg.runner, SWEEP_JOB, {"sweep": name}, client)

    jobs_ui.register_start(app, SWEEP_JOB, [Input(SWEEP_TRACK, "n_clicks"), State(SWEEP_NAME, "value"),
                                            State(ids.CLIENT, "data")], _start_track)

    def _track_finish(result, _params, _hints):
        fig, status, nodes = track_view(result, cfg)
        return status, fig, nodes

    jobs_ui.register(app, cfg.runner, SWEEP_JOB, outputs=[Output(SWEEP_GRAPH, "figure"), Output(SWEEP_NODES, "data")],
                     finish=_track_finish)

    @app.callback(Output(ids.URL, "search"), Output(SWEEP_STATUS, "children", allow_duplicate=True),
                  Input(SWEEP_GRAPH, "clickData"), State(SWEEP_NODES, "data"), prevent_initial_call=True)
    def _open(click, nodes):
        return open_node(click, nodes, cfg)

    def _start_dynamics(n_clicks, tok, client):
        if not n_clicks:
            return jobs_ui.idle()
        try:
            name = _dynamics_ensemble(tok, cfg)
        except ValueError as exc:
            return jobs_ui.idle(alert(str(exc), "info"))
        return jobs_ui.start(cfg.runner, DYN_JOB, {"ensemble": name}, client, {"ensemble": name})

    jobs_ui.register_start(app, DYN_JOB, [Input(DYN_COMPUTE, "n_clicks"), State(ids.ANALYSIS, "data"),
                                          State(ids.CLIENT, "data")], _start_dynamics)

    def _dynamics_finish(result, params, _hints):
        fig, status = dynamics_view(result, (params or {}).get("ensemble", ""))
        return status, fig

    jobs_ui.register(app, cfg.runner, DYN_JOB, outputs=[Output(DYN_GRAPH, "figure")], finish=_dynamics_finish)
