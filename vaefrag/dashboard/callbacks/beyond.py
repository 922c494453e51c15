"""Callbacks of the "beyond channels" panel: full latent spaces of the models, fusion of the selection,
and the hotspots the open ensemble shares with another (`crossrun`).

Full latent spaces: `spaces_view` draws `spaces.ensemble_spaces` of the open ensemble when it is in
the cache (``cfg.cache_dir``; it never computes there); the "Compute" button runs `spaces_job`, a
background callback with progress bar and cancel, which fills the cache and then tells the view
through the ``SPACES_DONE`` store.

Fusion: "Fuse selection" runs `fuse_job`, a background callback that fuses the channels of the shared
selection (at most `MAX_INPUTS`, the most informative) with `fusion.fuse_selection` into `FUSE_K`
dimensions and returns the fused-space and agreement figures. The fused posteriors are not kept on
the server: a change of the colour choice patches the markers' colours (`recolor`), and the
``FUSION`` store says which ensemble and channels the figures show.

The plain functions take the values Dash passes plus the app `Config` and return what the callback
returns, so tests call them without a server. Numeric modules (torch) are imported on first use.
"""
from __future__ import annotations

import numpy as np
from dash import Input, Output, Patch, State, ctx, html, no_update

from vaefrag.dashboard import data, ids
from vaefrag.dashboard.callbacks.analysis import HIDE, SHOW, alert
from vaefrag.dashboard.layout import BEYOND_HEIGHT
from vaefrag.figures.fusion import (fused_marker_colors, fused_space_figure, fusion_agreement_figure,
                                   spaces_figure)
from vaefrag.figures.views import empty_figure

#: at most this many channels are fused (the most informative of a larger selection)
MAX_INPUTS = 40
#: fusion settings: dimensions, Adam steps and learning rate, seed. With lr 0.1 the objective is
#: within 0.5 % of its 300-step value after 150 steps (sprites, N=1000); a step costs 0.1-0.2 s of
#: one CPU core for 10-40 inputs, plus ~6 s to set up 40 inputs: about 20-35 s in all.
FUSE_K, FUSE_STEPS, FUSE_LR, FUSE_SEED = 2, 150, 0.1, 0
#: index of the marker trace in `fused_space_figure` (drawn after the ellipses)
_MARKERS = 1
_MARGIN = {"l": 50, "r": 20, "t": 60, "b": 50}


def _blank(message: str = ""):
    return empty_figure(message, BEYOND_HEIGHT)


def _ensemble(tok: dict, cfg):
    """The open ensemble (memoised `store.Ensemble`); ValueError / FileNotFoundError for a bad name."""
    return data.load_ensemble(data.ensemble_path(cfg.root, tok["ensemble"]))


def _progress(set_progress):
    def progress(done, total, message=""):
        set_progress((str(done), str(max(total, 1)), f"{message} ({done}/{total})"))

    return progress


# ----------------------------------------------------------------------------- full latent spaces
def spaces_view(tok: dict | None, measure: str | None, cfg) -> tuple:
    """(figure, status) of the open ensemble's full-space comparison, from the cache only.

    The figure is `figures.fusion.spaces_figure` (NMI or VI matrix [K, K] with standard errors on
    hover, I(X;U) per model); when the comparison is not cached: a blank figure and a hint to compute.
    """
    from vaefrag import spaces

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
    fig = spaces_figure(res, measure if measure in ("nmi", "vi") else "nmi")
    fig.update_layout(height=BEYOND_HEIGHT, margin=_MARGIN)
    return fig, html.Span(f"{res.n_models} models, {res.n_samples} Monte Carlo draws over {res.n_points} points "
                          "(hover a cell for its standard error).", className="vf-hint")


def spaces_job(set_progress, n_clicks, tok: dict | None, cfg) -> tuple:
    """Background job: compute (or load) `spaces.ensemble_spaces` of the open ensemble.

    Returns (``SPACES_DONE`` store {"ensemble", "key"}, status); the view then reads the cache.
    """
    from vaefrag import spaces

    if not n_clicks or not tok:
        return no_update, no_update
    try:
        set_progress(("0", "1", "loading the ensemble ..."))
        ens = _ensemble(tok, cfg)
        res = spaces.ensemble_spaces(ens, cache_dir=cfg.cache_dir, progress=_progress(set_progress))
    except (ValueError, FileNotFoundError) as exc:
        return no_update, alert(f"Full latent spaces of {tok['ensemble']} failed: {exc}")
    return {"ensemble": tok["ensemble"], "key": res.key}, no_update


# ------------------------------------------------------------------------------------------ fusion
def color_options(tok: dict | None, current: str | None, cfg) -> tuple:
    """(options, value) of the fused-space colouring: point index and every factor of the ensemble.

    Keeps ``current`` when the ensemble still offers it, else the first factor (or the index);
    no_update while no analysis is open.
    """
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
    in selection order), and a note when the cap applied."""
    kept = np.asarray(a.kept, dtype=np.int64)[np.asarray(sel["channels"], dtype=np.int64)]
    note = ""
    if len(kept) > MAX_INPUTS:
        top = np.sort(np.argsort(-np.asarray(a.info)[kept], kind="stable")[:MAX_INPUTS])
        note = (f" At most {MAX_INPUTS} channels are fused: the {MAX_INPUTS} most informative of the "
                f"{len(kept)} selected.")
        kept = kept[top]
    return np.asarray(a.channel_ids, dtype=np.int64)[kept], note


def fuse_job(set_progress, n_clicks, tok: dict | None, sel: dict | None, objective: str | None,
             color: str | None, cfg, *, steps: int = FUSE_STEPS) -> tuple:
    """Background job: fuse the selected channels into `FUSE_K` dimensions.

    Returns (fused-space figure, agreement figure, status, ``FUSION`` store). An empty selection
    gives blank figures and an alert; bad input an error alert (the app keeps serving).
    """
    from vaefrag import fusion

    if not n_clicks:
        return no_update, no_update, no_update, no_update
    a = data.analysis_from_token(tok, cfg.cache_dir)
    if a is None:
        return no_update, no_update, alert("No analysis loaded yet: wait for the matrix, then select.", "info"), \
            no_update
    sel = _current(sel, tok)
    if not sel or not sel.get("channels"):
        return (_blank("nothing to fuse"), _blank(), alert(
            "Nothing to fuse: select a hotspot (a band above the matrix, a row of the hotspot list) or "
            "channels on the map (lasso), then press Fuse selection.", "info"), None)
    objective = objective if objective in fusion.OBJECTIVES else "nmi"
    try:
        pairs, note = selected_channels(a, sel)
        set_progress(("0", "1", f"fusing {len(pairs)} channels ..."))
        ens = _ensemble(tok, cfg)
        res = fusion.fuse_selection(ens.mu, ens.logvar, pairs, k=FUSE_K, objective=objective, steps=steps,
                                    lr=FUSE_LR, seed=FUSE_SEED, progress=_progress(set_progress))
    except (ValueError, FileNotFoundError, FloatingPointError) as exc:
        return no_update, no_update, alert(f"Fusion failed: {exc}"), no_update
    factor, name = factor_values(ens, color)
    fused = fused_space_figure(res, factor=factor, factor_name=name)
    fused.update_layout(height=BEYOND_HEIGHT, margin=_MARGIN, title_font_size=13)
    agree = fusion_agreement_figure(res, [f"model {m}, channel {c}" for m, c in pairs])
    agree.update_layout(height=BEYOND_HEIGHT, margin=_MARGIN, title={"text": "agreement with each input",
                                                                     "font": {"size": 13}})
    status = alert(f"Fused {len(pairs)} channels into {FUSE_K} dimensions ({fusion.OBJECTIVES[objective]}, "
                   f"{steps} steps): mean NMI with the inputs {res.mean_nmi:.3f}, I(X;F) {res.info:.2f} bits."
                   + note, "ok")
    store = {"ensemble": tok["ensemble"], "key": tok.get("key"), "channels": pairs.tolist(),
             "n_points": int(res.mu.shape[0]), "color": color}
    return fused, agree, status, store


def recolor(color: str | None, store: dict | None, triggers, cfg):
    """A Patch of the fused space's marker colours for ``color``; no_update when no fusion is shown,
    or when the figure just arrived (``triggers`` = {FUSION}) drawn with this colour already."""
    if not store:
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
    if not store:
        return no_update, no_update, None, no_update
    if tok and store.get("ensemble") == tok.get("ensemble"):
        return no_update, no_update, no_update, no_update
    return _blank(), _blank(), None, None


# ------------------------------------------------------------------------------ compare ensembles
def compare_options(tok: dict | None, current: str | None, cfg) -> tuple:
    """(options, value) of the ensemble to compare with: the other ensembles under ``cfg.root`` whose
    manifests name the same fingerprint points (`crossrun.fingerprint_signature`) or do not say;
    keeps ``current`` if offered."""
    import json

    from vaefrag import crossrun

    if not tok:
        return no_update, no_update

    def signature(name):
        try:
            return crossrun.fingerprint_signature(json.loads((cfg.root / name / "ensemble.json").read_text()))
        except (OSError, ValueError, AttributeError):
            return None

    mine = signature(tok.get("ensemble"))
    names = [n for n in data.ensemble_names(cfg.root) if n != tok.get("ensemble")
             and (mine is None or signature(n) in (None, mine))]
    opts = [{"label": n, "value": n} for n in names]
    return opts, current if current in names else (names[0] if names else None)


def compare_job(set_progress, n_clicks, tok: dict | None, other: str | None, cfg) -> tuple:
    """Background job: `crossrun.compare_ensembles` of the open ensemble (A) with ``other`` (B), with
    the open analysis' parameters (both analyses from / into the cache).

    Returns (figure, status). Ensembles on different fingerprint points, or without hotspots, give
    an alert and a blank figure (the app keeps serving).
    """
    from vaefrag import crossrun
    from vaefrag.figures.crossrun import ensemble_match_figure

    if not n_clicks or not tok:
        return no_update, no_update
    if not other:
        return _blank(), alert("Pick another ensemble to compare with. Only ensembles fingerprinted on the "
                               "same points are offered (same dataset, fingerprint size and seed).", "info")
    try:
        set_progress(("0", "1", "loading the ensembles ..."))
        path_a = data.ensemble_path(cfg.root, tok["ensemble"])
        path_b = data.ensemble_path(cfg.root, other)
        res = crossrun.compare_ensembles(path_a, path_b, cache_dir=cfg.cache_dir,
                                         progress=_progress(set_progress), **tok.get("params", {}))
    except (ValueError, FileNotFoundError) as exc:
        return _blank(), alert(f"Comparing {tok['ensemble']} with {other} failed: {exc}")
    fig = ensemble_match_figure(res, crossrun.DEFAULT_MATCH_NMI, height=BEYOND_HEIGHT)
    fig.update_layout(margin=_MARGIN)
    found = sum(m.models_matched > 0 for m in res.matches_a)
    status = alert(f"{len(res.matches_a)} hotspots in {res.name_a}, {len(res.matches_b)} in {res.name_b}; "
                   f"{found} of {res.name_a}'s are carried by at least one model of {res.name_b}. "
                   "Labels: in how many models of the other ensemble a channel has NMI >= "
                   f"{crossrun.DEFAULT_MATCH_NMI:g} with the hotspot's medoid.", "ok")
    return fig, status


def _triggers() -> set[str]:
    return {t["prop_id"].rsplit(".", 1)[0] for t in ctx.triggered if t.get("prop_id") not in (None, ".")}


# ----------------------------------------------------------------------------------------- register
def register(app, cfg) -> None:
    @app.callback(Output(ids.SPACES_GRAPH, "figure"), Output(ids.SPACES_STATUS, "children"),
                  Input(ids.ANALYSIS, "data"), Input(ids.SPACES_MEASURE, "value"), Input(ids.SPACES_DONE, "data"))
    def _spaces(tok, measure, _done):
        return spaces_view(tok, measure, cfg)

    @app.callback(Output(ids.SPACES_DONE, "data"), Output(ids.SPACES_STATUS, "children", allow_duplicate=True),
                  Input(ids.SPACES_COMPUTE, "n_clicks"), State(ids.ANALYSIS, "data"), background=True,
                  prevent_initial_call=True, interval=500,
                  progress=[Output(ids.SPACES_PROGRESS, "value"), Output(ids.SPACES_PROGRESS, "max"),
                            Output(ids.SPACES_PROGRESS_TEXT, "children")],
                  running=[(Output(ids.SPACES_JOB_PANEL, "style"), SHOW, HIDE),
                           (Output(ids.SPACES_COMPUTE, "disabled"), True, False),
                           (Output(ids.SPACES_CANCEL, "disabled"), False, True)],
                  cancel=[Input(ids.SPACES_CANCEL, "n_clicks")])
    def _spaces_job(set_progress, n_clicks, tok):
        data.one_torch_thread_in_job()
        return spaces_job(set_progress, n_clicks, tok, cfg)

    @app.callback(Output(ids.FUSE_COLOR, "options"), Output(ids.FUSE_COLOR, "value"),
                  Input(ids.ANALYSIS, "data"), State(ids.FUSE_COLOR, "value"))
    def _colors(tok, current):
        return color_options(tok, current, cfg)

    @app.callback(Output(ids.FUSED, "figure"), Output(ids.FUSE_AGREEMENT, "figure"),
                  Output(ids.FUSE_STATUS, "children"), Output(ids.FUSION, "data"),
                  Input(ids.FUSE, "n_clicks"), State(ids.ANALYSIS, "data"), State(ids.SELECTION, "data"),
                  State(ids.FUSE_OBJECTIVE, "value"), State(ids.FUSE_COLOR, "value"), background=True,
                  prevent_initial_call=True, interval=500,
                  progress=[Output(ids.FUSE_PROGRESS, "value"), Output(ids.FUSE_PROGRESS, "max"),
                            Output(ids.FUSE_PROGRESS_TEXT, "children")],
                  running=[(Output(ids.FUSE_JOB_PANEL, "style"), SHOW, HIDE), (Output(ids.FUSE, "disabled"), True, False),
                           (Output(ids.FUSE_CANCEL, "disabled"), False, True)],
                  cancel=[Input(ids.FUSE_CANCEL, "n_clicks")])
    def _fuse(set_progress, n_clicks, tok, sel, objective, color):
        data.one_torch_thread_in_job()
        return fuse_job(set_progress, n_clicks, tok, sel, objective, color, cfg)

    @app.callback(Output(ids.COMPARE_WITH, "options"), Output(ids.COMPARE_WITH, "value"),
                  Input(ids.ANALYSIS, "data"), State(ids.COMPARE_WITH, "value"))
    def _compare_options(tok, current):
        return compare_options(tok, current, cfg)

    @app.callback(Output(ids.COMPARE_GRAPH, "figure"), Output(ids.COMPARE_STATUS, "children"),
                  Input(ids.COMPARE, "n_clicks"), State(ids.ANALYSIS, "data"), State(ids.COMPARE_WITH, "value"),
                  background=True, prevent_initial_call=True, interval=500,
                  progress=[Output(ids.COMPARE_PROGRESS, "value"), Output(ids.COMPARE_PROGRESS, "max"),
                            Output(ids.COMPARE_PROGRESS_TEXT, "children")],
                  running=[(Output(ids.COMPARE_JOB_PANEL, "style"), SHOW, HIDE),
                           (Output(ids.COMPARE, "disabled"), True, False),
                           (Output(ids.COMPARE_CANCEL, "disabled"), False, True)],
                  cancel=[Input(ids.COMPARE_CANCEL, "n_clicks")])
    def _compare(set_progress, n_clicks, tok, other):
        data.one_torch_thread_in_job()
        return compare_job(set_progress, n_clicks, tok, other, cfg)

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
