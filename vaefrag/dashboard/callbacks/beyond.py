"""Callbacks of the "beyond channels" panel: full latent spaces of the models, fusion of the selection,
and the hotspots the open ensemble shares with another (`crossrun`).

Each of the three runs its work as a job of the app's runner (`dashboard.jobs`, worker processes;
`callbacks.jobs` polls it with a progress bar and cancel): ``*_request`` turns a click into the
job's parameters, ``*_finish`` the job's result into what the page shows, and ``*_job`` does both
around `tasks.run` in this process (tests, scripts).

Full latent spaces: `spaces_view` draws `spaces.ensemble_spaces` of the open ensemble when it is in
the cache (``cfg.cache_dir``; it never computes there); the "Compute" button runs the spaces job,
which fills the cache and then tells the view through the ``SPACES_DONE`` store.

Fusion: "Fuse selection" runs the fusion job, which fuses the channels of the shared
selection (at most `MAX_INPUTS`, the most informative) with `fusion.fuse_selection` into `FUSE_K`
dimensions and returns the fused-space and agreement figures. The fused posteriors are not kept on
the server: a change of the colour choice patches the markers' colours (`recolor`), and the
``FUSION`` store says which ensemble and channels the figures show.

The plain functions take the values Dash passes plus the app `Config` and return what the callback
returns, so tests call them without a server. Numeric modules (torch) are imported on first use.
"""
from __future__ import annotations

import threading

import numpy as np
from dash import Input, Output, Patch, State, ctx, html, no_update

from vaefrag.dashboard import data, ids, tasks
from vaefrag.dashboard.callbacks import jobs as jobs_ui
from vaefrag.dashboard.callbacks.analysis import alert
from vaefrag.dashboard.layout import BEYOND_HEIGHT
from vaefrag.figures.fusion import (fused_marker_colors, fused_space_figure, fusion_agreement_figure,
                                   spaces_figure)
from vaefrag.figures.views import channel_label, empty_figure

#: at most this many channels are fused (the most informative of a larger selection)
MAX_INPUTS = tasks.MAX_FUSE_INPUTS
#: fusion settings (`tasks`): dimensions, Adam steps and learning rate, seed
FUSE_K, FUSE_STEPS, FUSE_LR, FUSE_SEED = tasks.FUSE_K, tasks.FUSE_STEPS, tasks.FUSE_LR, tasks.FUSE_SEED
#: index of the marker trace in `fused_space_figure` (drawn after the ellipses)
_MARKERS = 1
_MARGIN = {"l": 50, "r": 20, "t": 60, "b": 50}


def _blank(message: str = ""):
    return empty_figure(message, BEYOND_HEIGHT)


def valid_token(tok) -> dict | None:
    """The analysis token from the browser if it is well formed ({"ensemble": str, "params": dict,
    "key": str, ...}), else None: the client's stores are never trusted."""
    if (isinstance(tok, dict) and isinstance(tok.get("ensemble"), str) and len(tok["ensemble"]) <= 240
            and isinstance(tok.get("params", {}), dict) and isinstance(tok.get("key", ""), str)):
        return tok
    return None


def _ensemble(tok: dict, cfg):
    """The open ensemble (memoised `store.Ensemble`); ValueError / FileNotFoundError for a bad name."""
    return data.load_ensemble(data.ensemble_path(cfg.root, tok["ensemble"]))


def _progress(set_progress):
    def progress(done, total, message=""):
        set_progress((str(done), str(max(total, 1)), f"{message} ({done}/{total})"))

    return progress


# ----------------------------------------------------------------------------- full latent spaces
#: spaces figures by (result key, measure): the same for every page (never mutated), built once
#: (40-75 ms each, on the layout request and every ensemble switch once the spaces are cached)
_SPACES_FIGURES: dict = {}
_SPACES_LOCK = threading.Lock()


def _spaces_figure(res, measure: str):
    """`figures.fusion.spaces_figure` of ``res`` sized for the panel, memoised (at most 16)."""
    with _SPACES_LOCK:
        fig = _SPACES_FIGURES.get((res.key, measure))
    if fig is None:
        fig = spaces_figure(res, measure)
        fig.update_layout(height=BEYOND_HEIGHT, margin=_MARGIN)
        with _SPACES_LOCK:
            while len(_SPACES_FIGURES) >= 16:
                _SPACES_FIGURES.pop(next(iter(_SPACES_FIGURES)))
            _SPACES_FIGURES[(res.key, measure)] = fig
    return fig


def spaces_view(tok: dict | None, measure: str | None, cfg) -> tuple:
    """(figure, status) of the open ensemble's full-space comparison, from the cache only.

    The figure is `figures.fusion.spaces_figure` (NMI or VI matrix [K, K] with standard errors on
    hover, I(X;U) per model); when the comparison is not cached: a blank figure and a hint to compute.
    """
    from vaefrag import spaces

    tok = valid_token(tok)
    if not tok:
        return _blank("no ensemble open"), None
    try:
        ens = _ensemble(tok, cfg)
        res = spaces.ensemble_spaces(ens, cache_dir=cfg.cache_dir, compute=False)
    except (ValueError, FileNotFoundError) as exc:
        return _blank(), alert(str(exc))
    if res is None:
        k = ens.n_models
        return (_blank("not computed yet: press Compute"),
                alert(f"The full latent spaces of {tok['ensemble']} are not computed yet. Compute estimates "
                      f"I(X;U) of each of the {k} models and NMI / VI of every pair by Monte Carlo "
                      f"({2 * k + k * (k - 1) // 2} estimates, cached afterwards).", "info"))
    fig = _spaces_figure(res, measure if measure in ("nmi", "vi") else "nmi")
    return fig, html.Span(f"{res.n_models} models, {res.n_samples} Monte Carlo draws over {res.n_points} points "
                          "(hover a cell for its standard error).", className="vf-hint")


def spaces_request(n_clicks, tok) -> dict | None:
    """The spaces job's parameters for a click on Compute (None: nothing to do)."""
    tok = valid_token(tok)
    return {"ensemble": tok["ensemble"]} if n_clicks and tok else None


def spaces_start(n_clicks, tok, client, runner) -> tuple:
    """A click on Compute: the `jobs.start` outputs of the spaces job, its status saying what runs
    (it replaces "not computed yet"), or `jobs.idle` when there is nothing to compute."""
    params = spaces_request(n_clicks, tok)
    if params is None:
        return jobs_ui.idle()
    msg = alert(f"Computing the full latent spaces of {params['ensemble']} (Monte Carlo estimates, cached "
                "afterwards) ...", "info")
    return jobs_ui.start(runner, jobs_ui.SPACES, params, client, status=msg)


def spaces_finish(result, params: dict, _hints=None) -> tuple:
    """(status, ``SPACES_DONE`` store) once the job cached the comparison; the view then reads the cache."""
    return no_update, {"ensemble": params["ensemble"], "key": result["key"]}


def spaces_job(set_progress, n_clicks, tok: dict | None, cfg) -> tuple:
    """The spaces job run in this process (what a worker runs): (``SPACES_DONE`` store, status)."""
    params = spaces_request(n_clicks, tok)
    if params is None:
        return no_update, no_update
    try:
        res = tasks.run("spaces", params, cfg.root, cfg.cache_dir, _progress(set_progress))
    except (ValueError, FileNotFoundError) as exc:
        return no_update, alert(f"Full latent spaces of {params['ensemble']} failed: {exc}")
    status, done = spaces_finish(res, params)
    return done, status


# ------------------------------------------------------------------------------------------ fusion
def color_options(tok: dict | None, current: str | None, cfg) -> tuple:
    """(options, value) of the fused-space colouring: point index and every factor of the ensemble.

    Keeps ``current`` when the ensemble still offers it, else the first factor (or the index);
    no_update while no analysis is open.
    """
    tok = valid_token(tok)
    if not tok:
        return no_update, no_update
    opts = [{"label": "point index", "value": "index"}]
    try:
        ens = _ensemble(tok, cfg)
    except (ValueError, FileNotFoundError):
        ens = None
    if ens is not None and ens.factors is not None:
        names = list(ens.factor_names) or [f"factor {j}" for j in range(ens.factors.shape[1])]
        opts += [{"label": n, "value": f"factor:{j}"} for j, n in enumerate(names)]
    values = [o["value"] for o in opts]
    return opts, current if current in values else values[min(1, len(values) - 1)]


def factor_values(ens, color: str | None) -> tuple[np.ndarray | None, str]:
    """Values [N] and name to colour the fused space by (``"factor:<j>"``); (None, "point") for the index."""
    if ens.factors is not None and isinstance(color, str) and color.startswith("factor:"):
        j = color.partition(":")[2]
        if j.isdigit() and int(j) < ens.factors.shape[1]:
            j = int(j)
            return ens.factors[:, j], (ens.factor_names[j] if j < len(ens.factor_names) else f"factor {j}")
    return None, "point"


def _current(sel, tok):
    """The selection if it belongs to the analysis on screen (else None)."""
    if sel and tok and sel.get("key") not in (None, tok.get("key")):
        return None
    return sel


def selected_channels(a, sel) -> tuple[np.ndarray, str]:
    """(model, latent) pairs [C, 2] of the selection, capped at `MAX_INPUTS` (the most informative,
    in selection order), and a note when the cap applied. ValueError for positions outside the
    analysis' kept channels."""
    pos = sel.get("channels")
    if not isinstance(pos, list) or not all(type(c) is int and 0 <= c < len(a.kept) for c in pos):
        raise ValueError(f"selection: expected positions in [0, {len(a.kept)}) of the kept channels")
    kept = np.asarray(a.kept, dtype=np.int64)[np.asarray(pos, dtype=np.int64)]
    note = ""
    if len(kept) > MAX_INPUTS:
        top = np.sort(np.argsort(-np.asarray(a.info)[kept], kind="stable")[:MAX_INPUTS])
        note = (f" At most {MAX_INPUTS} channels are fused: the {MAX_INPUTS} most informative of the "
                f"{len(kept)} selected.")
        kept = kept[top]
    return np.asarray(a.channel_ids, dtype=np.int64)[kept], note


def fuse_request(n_clicks, tok, sel, objective, color, cfg, *, steps: int = FUSE_STEPS) -> tuple:
    """A click on Fuse selection -> ("job", params, hints) for the fusion job, or ("answer",
    (fused figure, agreement figure, status, ``FUSION`` store)) when there is nothing to run."""
    from vaefrag import fusion

    if not n_clicks:
        return "answer", (no_update,) * 4
    tok = valid_token(tok)
    a = data.analysis_from_token(tok, cfg.cache_dir)
    if a is None:
        return "answer", (no_update, no_update, alert("No analysis loaded yet: wait for the matrix, then select.",
                                                      "info"), no_update)
    sel = _current(sel if isinstance(sel, dict) else None, tok)
    if not sel or not sel.get("channels"):
        return "answer", (_blank("nothing to fuse"), _blank(), alert(
            "Nothing to fuse: select a hotspot (a band above the matrix, a row of the hotspot list) or "
            "channels on the map (lasso), then press Fuse selection.", "info"), None)
    objective = objective if isinstance(objective, str) and objective in fusion.OBJECTIVES else "nmi"
    try:
        pairs, note = selected_channels(a, sel)
    except ValueError as exc:
        return "answer", (no_update, no_update, alert(f"Fusion failed: {exc}"), no_update)
    params = {"ensemble": tok["ensemble"], "channels": pairs.tolist(), "objective": objective, "steps": int(steps)}
    hints = {"note": note, "color": color if isinstance(color, str) and len(color) < 40 else None,
             "key": tok.get("key")}
    return "job", params, hints


def fuse_finish(res, params: dict, hints: dict, cfg) -> tuple:
    """(status, fused-space figure, agreement figure, ``FUSION`` store) of a finished fusion."""
    from vaefrag import fusion

    try:
        ens = _ensemble(params, cfg)
    except (ValueError, FileNotFoundError) as exc:
        return alert(f"Fusion failed: {exc}"), no_update, no_update, no_update
    hints = hints if isinstance(hints, dict) else {}
    color, note = hints.get("color"), hints.get("note") if isinstance(hints.get("note"), str) else ""
    pairs = np.asarray(params["channels"], dtype=np.int64)
    factor, name = factor_values(ens, color)
    fused = fused_space_figure(res, factor=factor, factor_name=name)
    fused.update_layout(height=BEYOND_HEIGHT, margin=_MARGIN, title_font_size=13)
    agree = fusion_agreement_figure(res, [channel_label(m, c) for m, c in pairs])
    agree.update_layout(height=BEYOND_HEIGHT, margin=_MARGIN, title={"text": "agreement with each input",
                                                                     "font": {"size": 13}})
    status = alert(f"Fused {len(pairs)} channels into {FUSE_K} dimensions ({fusion.OBJECTIVES[params['objective']]}, "
                   f"{params['steps']} steps): mean NMI with the inputs {res.mean_nmi:.3f}, I(X;F) {res.info:.2f} bits."
                   + note[:200], "ok")
    key = hints.get("key") if isinstance(hints.get("key"), str) else None
    store = {"ensemble": params["ensemble"], "key": key, "channels": pairs.tolist(),
             "n_points": int(res.mu.shape[0]), "color": color}
    return status, fused, agree, store


def fuse_job(set_progress, n_clicks, tok: dict | None, sel: dict | None, objective: str | None,
             color: str | None, cfg, *, steps: int = FUSE_STEPS) -> tuple:
    """The fusion job run in this process (what a worker runs): (fused-space figure, agreement
    figure, status, ``FUSION`` store). An empty selection gives blank figures and an alert; bad
    input an error alert."""
    what, *rest = fuse_request(n_clicks, tok, sel, objective, color, cfg, steps=steps)
    if what == "answer":
        return rest[0]
    params, hints = rest
    try:
        set_progress(("0", "1", f"fusing {len(params['channels'])} channels ..."))
        res = tasks.run("fusion", params, cfg.root, cfg.cache_dir, _progress(set_progress))
    except (ValueError, FileNotFoundError, FloatingPointError) as exc:
        return no_update, no_update, alert(f"Fusion failed: {exc}"), no_update
    status, fused, agree, store = fuse_finish(res, params, hints, cfg)
    return fused, agree, status, store


def recolor(color: str | None, store: dict | None, triggers, cfg):
    """A Patch of the fused space's marker colours for ``color``; no_update when no fusion is shown,
    or when the figure just arrived (``triggers`` = {FUSION}) drawn with this colour already."""
    if not (isinstance(store, dict) and isinstance(store.get("ensemble"), str) and type(store.get("n_points")) is int):
        return no_update
    if set(triggers or ()) == {ids.FUSION} and store.get("color") == color:
        return no_update
    try:
        ens = _ensemble({"ensemble": store["ensemble"]}, cfg)
    except (ValueError, FileNotFoundError):
        return no_update
    factor, name = factor_values(ens, color)
    n = int(store["n_points"])
    if factor is not None and len(factor) != n:
        return no_update
    patch = Patch()
    marker = patch["data"][_MARKERS]["marker"]
    for prop, value in fused_marker_colors(n, factor, name).items():
        marker[prop] = value.tolist() if isinstance(value, np.ndarray) else value
    return patch


def reset_fusion(tok: dict | None, store: dict | None) -> tuple:
    """Blank the fusion views when another ensemble opens (a recompute of the same one keeps them);
    with no fusion shown only the status is cleared."""
    tok = valid_token(tok)
    if not isinstance(store, dict):
        return no_update, no_update, None, no_update
    if tok and store.get("ensemble") == tok.get("ensemble"):
        return no_update, no_update, no_update, no_update
    return _blank(), _blank(), None, None


# ------------------------------------------------------------------------------ compare ensembles
def compare_options(tok: dict | None, current: str | None, cfg) -> tuple:
    """(options, value) of the ensemble to compare with: the other ensembles under ``cfg.root`` whose
    manifests name the same fingerprint points (`crossrun.fingerprint_signature`) or do not say;
    broken ones are listed disabled with their error (`store.ensemble_problem`); keeps ``current``
    if offered."""
    from vaefrag import crossrun, store

    tok = valid_token(tok)
    if not tok:
        return no_update, no_update

    def signature(name):
        try:
            return crossrun.fingerprint_signature(store.read_manifest(data.ensemble_path(cfg.root, name) / store.MANIFEST))
        except (OSError, ValueError, AttributeError, TypeError):
            return None

    mine = signature(tok.get("ensemble"))
    opts = []
    for n in data.ensemble_names(cfg.root):
        if n == tok.get("ensemble"):
            continue
        problem = store.ensemble_problem(cfg.root / n)
        if problem is not None:           # listed, with its error, but not offered
            opts.append({"label": f"{n} (broken: {problem.replace(str(cfg.root), '')[:120]})", "value": n,
                         "disabled": True})
        elif mine is None or signature(n) in (None, mine):
            opts.append({"label": n, "value": n})
    names = [o["value"] for o in opts if not o.get("disabled")]
    return opts, current if current in names else (names[0] if names else None)


def compare_request(n_clicks, tok, other) -> tuple:
    """A click on Compare -> ("job", params) or ("answer", (figure, status))."""
    tok = valid_token(tok)
    if not n_clicks or not tok:
        return "answer", (no_update, no_update)
    if not isinstance(other, str) or not other:
        return "answer", (_blank(), alert("Pick another ensemble to compare with. Only ensembles fingerprinted on "
                                          "the same points are offered (same dataset, fingerprint size and seed).",
                                          "info"))
    p = dict(data.DEFAULT_PARAMS)
    p.update({k: v for k, v in tok.get("params", {}).items() if k in p})
    return "job", {"ensemble": tok["ensemble"], "other": other, **p}


def compare_finish(res, params: dict, _hints=None) -> tuple:
    """(status, figure) of a finished comparison."""
    from vaefrag import crossrun
    from vaefrag.figures.crossrun import ensemble_match_figure

    fig = ensemble_match_figure(res, crossrun.DEFAULT_MATCH_NMI, height=BEYOND_HEIGHT)
    fig.update_layout(margin=_MARGIN)
    found = sum(m.models_matched > 0 for m in res.matches_a)
    status = alert(f"{len(res.matches_a)} hotspots in {res.name_a}, {len(res.matches_b)} in {res.name_b}; "
                   f"{found} of {res.name_a}'s are carried by at least one model of {res.name_b}. "
                   "Labels: in how many models of the other ensemble a channel has NMI >= "
                   f"{crossrun.DEFAULT_MATCH_NMI:g} with the hotspot's medoid.", "ok")
    return status, fig


def compare_job(set_progress, n_clicks, tok: dict | None, other: str | None, cfg) -> tuple:
    """The comparison job run in this process (what a worker runs): `crossrun.compare_ensembles` of
    the open ensemble (A) with ``other`` (B) with the open analysis' parameters. Returns (figure,
    status); ensembles on different points, or without hotspots, give an alert and a blank figure."""
    what, rest = compare_request(n_clicks, tok, other)
    if what == "answer":
        return rest
    try:
        set_progress(("0", "1", "loading the ensembles ..."))
        res = tasks.run("compare", rest, cfg.root, cfg.cache_dir, _progress(set_progress))
    except (ValueError, FileNotFoundError) as exc:
        return _blank(), alert(f"Comparing {rest['ensemble']} with {other} failed: {exc}")
    status, fig = compare_finish(res, rest)
    return fig, status


def _triggers() -> set[str]:
    return {t["prop_id"].rsplit(".", 1)[0] for t in ctx.triggered if t.get("prop_id") not in (None, ".")}


def first_values(tok: dict | None, cfg) -> dict:
    """{(id, property): value} of the panel for the page as served (`callbacks.first_page`): the
    full-space view (NMI), the fused-space colourings and the ensembles to compare with."""
    out = dict(zip([(ids.SPACES_GRAPH, "figure"), (ids.SPACES_STATUS, "children")], spaces_view(tok, "nmi", cfg)))
    out.update(zip([(ids.FUSE_COLOR, "options"), (ids.FUSE_COLOR, "value")], color_options(tok, None, cfg)))
    out.update(zip([(ids.COMPARE_WITH, "options"), (ids.COMPARE_WITH, "value")], compare_options(tok, None, cfg)))
    return out


#: the fusion status after a new selection: "Nothing to fuse ..." (`fuse_request`) cleared, else unchanged
SETTLE_JS = """
function(_sel, status) {
    const text = status && status.props ? status.props.children : status;
    return (typeof text === 'string' && text.startsWith('Nothing to fuse')) ? null : window.dash_clientside.no_update;
}
"""


# ----------------------------------------------------------------------------------------- register
def register(app, cfg) -> None:
    @app.callback(Output(ids.SPACES_GRAPH, "figure"), Output(ids.SPACES_STATUS, "children"),
                  Input(ids.ANALYSIS, "data"), Input(ids.SPACES_MEASURE, "value"), Input(ids.SPACES_DONE, "data"),
                  prevent_initial_call=True)
    def _spaces(tok, measure, _done):
        return spaces_view(tok, measure, cfg)

    runner = cfg.runner

    jobs_ui.register_start(app, jobs_ui.SPACES, [Input(ids.SPACES_COMPUTE, "n_clicks"), State(ids.ANALYSIS, "data"),
                                                 State(ids.CLIENT, "data")],
                           lambda n_clicks, tok, client: spaces_start(n_clicks, tok, client, runner))
    jobs_ui.register(app, runner, jobs_ui.SPACES, outputs=[Output(ids.SPACES_DONE, "data")], finish=spaces_finish)

    @app.callback(Output(ids.FUSE_COLOR, "options"), Output(ids.FUSE_COLOR, "value"),
                  Input(ids.ANALYSIS, "data"), State(ids.FUSE_COLOR, "value"), prevent_initial_call=True)
    def _colors(tok, current):
        return color_options(tok, current, cfg)

    fuse_outputs = [Output(ids.FUSED, "figure"), Output(ids.FUSE_AGREEMENT, "figure"), Output(ids.FUSION, "data")]

    def start_fusion(n_clicks, tok, sel, objective, color, client):
        what, *rest = fuse_request(n_clicks, tok, sel, objective, color, cfg)
        if what == "answer":
            fused, agree, status, store = rest[0]
            return (*jobs_ui.idle(status), fused, agree, store)
        return (*jobs_ui.start(runner, jobs_ui.FUSION, rest[0], client, rest[1]), no_update, no_update, no_update)

    jobs_ui.register_start(app, jobs_ui.FUSION, [Input(ids.FUSE, "n_clicks"), State(ids.ANALYSIS, "data"),
                                                 State(ids.SELECTION, "data"), State(ids.FUSE_OBJECTIVE, "value"),
                                                 State(ids.FUSE_COLOR, "value"), State(ids.CLIENT, "data")],
                           start_fusion, extra_outputs=fuse_outputs)
    jobs_ui.register(app, runner, jobs_ui.FUSION, outputs=fuse_outputs,
                     finish=lambda res, params, hints: fuse_finish(res, params, hints, cfg))

    @app.callback(Output(ids.COMPARE_WITH, "options"), Output(ids.COMPARE_WITH, "value"),
                  Input(ids.ANALYSIS, "data"), State(ids.COMPARE_WITH, "value"), prevent_initial_call=True)
    def _compare_options(tok, current):
        return compare_options(tok, current, cfg)

    def start_compare(n_clicks, tok, other, client):
        what, rest = compare_request(n_clicks, tok, other)
        if what == "answer":
            fig, status = rest
            return (*jobs_ui.idle(status), fig)
        return (*jobs_ui.start(runner, jobs_ui.COMPARE, rest, client), no_update)

    jobs_ui.register_start(app, jobs_ui.COMPARE, [Input(ids.COMPARE, "n_clicks"), State(ids.ANALYSIS, "data"),
                                                  State(ids.COMPARE_WITH, "value"), State(ids.CLIENT, "data")],
                           start_compare, extra_outputs=[Output(ids.COMPARE_GRAPH, "figure")])
    jobs_ui.register(app, runner, jobs_ui.COMPARE, outputs=[Output(ids.COMPARE_GRAPH, "figure")], finish=compare_finish)

    # "Nothing to fuse: select ..." is answered by a new selection (in the browser: every click changes
    # the selection, and a request of its own would delay the traversals)
    app.clientside_callback(SETTLE_JS, Output(ids.FUSE_STATUS, "children", allow_duplicate=True),
                            Input(ids.SELECTION, "data"), State(ids.FUSE_STATUS, "children"), prevent_initial_call=True)

    @app.callback(Output(ids.FUSED, "figure", allow_duplicate=True), Input(ids.FUSE_COLOR, "value"),
                  Input(ids.FUSION, "data"), prevent_initial_call=True)
    def _recolor(color, store):
        return recolor(color, store, _triggers(), cfg)

    @app.callback(Output(ids.FUSED, "figure", allow_duplicate=True),
                  Output(ids.FUSE_AGREEMENT, "figure", allow_duplicate=True),
                  Output(ids.FUSE_STATUS, "children", allow_duplicate=True),
                  Output(ids.FUSION, "data", allow_duplicate=True),
                  Input(ids.ANALYSIS, "data"), State(ids.FUSION, "data"), prevent_initial_call=True)
    def _reset(tok, store):
        return reset_fusion(tok, store)
