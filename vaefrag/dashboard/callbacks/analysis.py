"""Callbacks that choose, load, compute and import analyses (and the URL that bookmarks them).

Flow: URL / ensemble / "Recompute" -> `open_analysis` (`request_from`: ensemble + parameters, then
`resolve_request`): a cached analysis becomes the ``ANALYSIS`` token at once; otherwise the request
goes to ``PENDING`` and `start_job` hands it to the app's job runner (`dashboard.jobs`: a worker process,
not the server); `callbacks.jobs` polls it (progress bar) and `finish_job` turns its result into the
token (`preview_job` shows its structure stage first, while stability, maps and scores compute);
Cancel (`cancelled_job`) returns the controls to the analysis on screen.
The layout already carries the default ensemble's token and figures when its analysis is cached.
Uploads are validated, imported with `store.import_posteriors`, and then opened the same way.

The plain functions take the values Dash would pass plus the app `Config` and return what the
callback returns, so tests call them without a server.
"""
from __future__ import annotations

import base64
import binascii
import re
import tempfile
import uuid
from pathlib import Path
from urllib.parse import parse_qs

from dash import Input, Output, State, ctx, html, no_update

from vaefrag import store
from vaefrag.dashboard import data, ids
from vaefrag.dashboard.callbacks import jobs as jobs_ui
from vaefrag.dashboard.callbacks.controls import already_shown
from vaefrag.dashboard.layout import MAX_UPLOAD_BYTES

SHOW, HIDE = jobs_ui.SHOW, jobs_ui.HIDE
#: decompressed size allowed for the arrays of one upload (the request's memory budget)
MAX_UPLOAD_ARRAYS = 256 * 2**20


def alert(message: str, kind: str = "error") -> html.Div:
    """An alert box (kind: error, info, ok)."""
    return html.Div(message, className=f"vf-alert vf-alert-{kind}", role="alert")


# ----------------------------------------------------------------------------------- URL state
def parse_query(search: str | None) -> dict:
    """``?ensemble=a&measure=vi&thr=0.02&ms=3&xi=0.1&nmin=0&hotspot=2&view=vi&map=mds`` -> dict of strings."""
    if not isinstance(search, str):
        return {}
    q = parse_qs(search[:4000].lstrip("?"), keep_blank_values=False)
    return {k: v[-1] for k, v in q.items() if v}


def request_from(search, ensemble, measure, thr, ms, xi, trigger, cfg, min_nmi=None) -> tuple:
    """Build the analysis request.

    On the first call (``trigger`` None or the URL) the URL query wins and the controls are set
    from it; afterwards the controls win. Returns (request, status, ensemble, measure, thr, ms,
    xi, matrix view, map method, min_nmi) where unchanged controls are ``no_update``.
    """
    names = data.ensemble_names(cfg.root)
    keep = (no_update,) * 8
    if trigger in (None, ids.URL_QUERY):
        q = parse_query(search)
        name = q.get("ensemble") if q.get("ensemble") in names else (ensemble if ensemble in names else cfg.default)
        if name is None:
            return None, alert(f"No ensembles under {cfg.root}: upload a posteriors .npz or train one "
                               "(vaefrag train).", "info"), *keep
        try:
            params = _clean(q.get("measure"), q.get("thr"), q.get("ms"), q.get("xi"), q.get("nmin"))
        except ValueError as exc:
            params = data.clean_params()
            status = alert(f"Ignored the parameters in the URL: {exc}")
        else:
            status = None
        req = {"ensemble": name, "params": params}
        if re.fullmatch(r"[0-9]{1,6}", q.get("hotspot", "")) and int(q["hotspot"]) >= 1:
            req["hotspot"] = int(q["hotspot"]) - 1          # the URL numbers hotspots from 1, as the page
        view = q.get("view") if q.get("view") in ("nmi", "vi") else no_update
        mmap = q.get("map") if q.get("map") in ("umap", "mds") else no_update
        return (req, status, name, params["measure"], params["info_threshold"], params["min_samples"],
                params["xi"], view, mmap, params["min_nmi"])
    if not isinstance(ensemble, str) or ensemble not in names:
        return no_update, alert(f"No ensemble named {str(ensemble)[:80]!r} under {cfg.root}."), *keep
    try:
        params = _clean(measure, thr, ms, xi, min_nmi)
    except ValueError as exc:
        return no_update, alert(str(exc)), *keep
    return ({"ensemble": ensemble, "params": params}, None, *keep)


def resolve_request(req: dict | None, cfg) -> tuple:
    """A request -> (analysis token or no_update, pending request or None, status)."""
    if not req:
        return no_update, no_update, no_update
    try:
        path = data.ensemble_path(cfg.root, req["ensemble"])
        found = data.cached_analysis(path, req["params"], cfg.cache_dir)
    except (ValueError, FileNotFoundError) as exc:
        return no_update, no_update, alert(str(exc))
    if found is not None:
        extra = _extra(req) if req.get("hotspot", 0) < len(found.hotspots) else {}
        return data.token(req["ensemble"], req["params"], found.key) | extra, no_update, None
    msg = f"Computing the analysis of {req['ensemble']} (cached afterwards) ..."
    return no_update, req, alert(msg, "info")


def open_analysis(search, ensemble, measure, thr, ms, xi, trigger, current, cfg, min_nmi=None, view=None,
                  map_method=None) -> tuple:
    """`request_from` then `resolve_request` in one round trip.

    Returns (analysis token, pending request, status, then the control values of `request_from`;
    ``no_update`` for a control that already shows its value: ``ensemble`` ... ``min_nmi``,
    ``view`` (matrix measure) and ``map_method`` are what the controls show).
    A token equal to ``current`` but for its hotspot hint is ``no_update``, so the views are not
    redrawn with what they already show ("Recompute" then says so; a hotspot the URL names is
    selected by `views.update_selection`).
    """
    req, status, *controls = request_from(search, ensemble, measure, thr, ms, xi, trigger, cfg, min_nmi)
    # a control that already shows its value is not set again (that would fire its dependents for nothing)
    shown = (ensemble, measure, thr, ms, xi, view, map_method, min_nmi)
    controls = [no_update if already_shown(new, old) else new for new, old in zip(controls, shown)]
    if req is no_update:
        return (no_update, no_update, status, *controls)
    tok, pending, resolved = resolve_request(req, cfg)
    if isinstance(pending, dict):
        # a request equal to one cancelled before must start again: the store only fires on a change
        pending = {**pending, "request": uuid.uuid4().hex[:12]}
    if tok is not no_update and isinstance(current, dict) and _without_hotspot(tok) == _without_hotspot(current):
        # the analysis on screen (a bookmarked hotspot of it is selected from the URL by the selection
        # callback: the views need not be sent and drawn again)
        tok = no_update
        if trigger == ids.APPLY:
            status = alert("Nothing to recompute: the analysis on screen has these parameters.", "info")
    if resolved is not no_update and resolved is not None:
        status = resolved
    return (tok, pending, status, *controls)


def _without_hotspot(tok: dict) -> dict:
    return {k: v for k, v in tok.items() if k != "hotspot"}


def _extra(req: dict) -> dict:
    return {"hotspot": req["hotspot"]} if "hotspot" in req else {}


def job_params(pending) -> dict:
    """The analysis job's parameters from a pending request: {"ensemble", measure, info_threshold,
    min_samples, xi, min_nmi}, re-validated (the request passed through the browser). ValueError when malformed."""
    if not isinstance(pending, dict) or not isinstance(pending.get("params"), dict):
        raise ValueError("analysis request: expected {'ensemble': name, 'params': {...}}")
    p = pending["params"]
    if set(p) - set(data.DEFAULT_PARAMS):
        raise ValueError(f"analysis request: unexpected parameters {sorted(set(p) - set(data.DEFAULT_PARAMS))}")
    params = _clean(p.get("measure"), p.get("info_threshold"), p.get("min_samples"), p.get("xi"), p.get("min_nmi"))
    return {"ensemble": pending.get("ensemble"), **params}


def _clean(measure, thr, ms, xi, min_nmi=None) -> dict:
    """Validated analysis parameters from the controls / URL / a request (`tasks.clean_analysis_params`)."""
    from vaefrag.dashboard import tasks

    return tasks.clean_analysis_params(measure, thr, ms, xi, min_nmi)


def _hotspot_hint(hints) -> dict:
    h = hints.get("hotspot") if isinstance(hints, dict) else None
    return {"hotspot": h} if type(h) is int and 0 <= h < 10**6 else {}


def finish_job(result, params: dict, hints: dict, cfg) -> tuple:
    """(status, analysis token, upload status) once an analysis job is done: the token of the
    analysis the job cached (the job's own parameters, from the server), the hotspot of the URL if
    the analysis has it; the upload's "analysing it ..." note is cleared."""
    key = result.get("key") if isinstance(result, dict) else None
    found = data.analysis_from_token({"key": key}, cfg.cache_dir) if key else None
    if found is None:
        return alert(f"The analysis of {params.get('ensemble')} finished but is not in the cache "
                     f"({cfg.cache_dir}): is it writable?"), no_update, None
    aparams = {k: params[k] for k in data.DEFAULT_PARAMS}
    extra = _hotspot_hint(hints)
    if extra and extra["hotspot"] >= len(found.hotspots):
        extra = {}
    return None, data.token(params["ensemble"], aparams, key) | extra, None


def preview_job(partial, params: dict, hints: dict, cfg):
    """What a running analysis job's structure stage shows (`finish_job` of its {"key"}): the token
    of the structure-only analysis and a note that stability and the maps follow; None if it is not
    in the cache."""
    status, tok, _ = finish_job(partial, params, hints, cfg)
    if tok is no_update:
        return None
    msg = alert(f"Hotspots of {params.get('ensemble')} shown; stability, maps and scores are computing ...", "info")
    return msg, tok, no_update


def cancelled_job(current: dict | None, ensemble, cfg=None) -> tuple:
    """(status, ensemble, measure, threshold, min_samples, xi, upload status, min_nmi) after Cancel:
    the controls return to the parameters of the analysis on screen."""
    if not isinstance(current, dict) or not isinstance(current.get("params"), dict):
        return (alert("Cancelled.", "info"),) + (no_update,) * 5 + (None, no_update)
    p = current["params"]
    name = current.get("ensemble")
    msg = alert(f"Cancelled. The controls show the analysis on screen ({name}).", "info")
    shown = data.analysis_from_token(current, cfg.cache_dir) if cfg is not None else None
    if shown is not None and shown.pending:             # a preview: the job stopped after its hotspots
        msg = alert(f"Cancelled. The page shows the hotspots of that analysis of {name} without its stability, "
                    "maps and scores; Recompute finishes it.", "info")
    return (msg, name if name != ensemble else no_update, p.get("measure"), p.get("info_threshold"),
            p.get("min_samples"), p.get("xi"), None, p.get("min_nmi", data.DEFAULT_PARAMS["min_nmi"]))


def compute_job(set_progress, pending: dict | None, cfg) -> tuple:
    """The analysis job run here, in this process (what a worker runs, for tests and scripts):
    (token, status) like the page gets it."""
    from vaefrag.dashboard import tasks

    if not pending:
        return no_update, no_update

    def progress(done, total, message=""):
        set_progress((str(done), str(max(total, 1)), f"{message} ({done}/{total})"))

    try:
        params = job_params(pending)
        result = tasks.run("analysis", params, cfg.root, cfg.cache_dir, progress)
    except (ValueError, FileNotFoundError) as exc:
        return no_update, alert(f"Analysis of {pending.get('ensemble')} failed: {exc}")
    status, tok, _ = finish_job(result, tasks.check_params("analysis", params), _hotspot_hint(pending), cfg)
    return tok, status


def start_job(pending, client, runner) -> tuple:
    """Submit the pending request to the runner (`jobs_ui.start` outputs)."""
    if not pending:
        return jobs_ui.idle()
    try:
        params = job_params(pending)
    except ValueError as exc:
        return jobs_ui.idle(alert(str(exc)))
    msg = alert(f"Computing the analysis of {params['ensemble']} (cached afterwards) ...", "info")
    return jobs_ui.start(runner, jobs_ui.ANALYSIS, params, client, _hotspot_hint(pending), status=msg)


# ------------------------------------------------------------------------------------- upload
def _unique_name(root: Path, stem: str) -> str:
    base = store.safe_name(stem)
    names = set(data.ensemble_names(root))
    name, i = base, 2
    while name in names or (root / name).exists():
        name, i = f"{base}-{i}", i + 1
    return name


def handle_upload(contents: str | None, filename: str | None, cfg) -> tuple:
    """Validate and import an uploaded posteriors .npz.

    Returns (alert, ensemble options, ensemble value). Bad uploads give an error alert and leave
    the ensemble list unchanged; nothing half-written stays on disk (`store.write_ensemble` is atomic).
    """
    if not contents:
        return no_update, no_update, no_update
    if not isinstance(contents, str) or not isinstance(filename, (str, type(None))):
        return alert("Upload rejected: expected one file"), no_update, no_update
    fname = Path(str(filename or "upload.npz")[:200]).name
    try:
        if not fname.lower().endswith(".npz"):
            raise ValueError(f"{fname}: expected a .npz file (numpy savez) with 'mu' and 'logvar' [K, N, L]")
        head, _, b64 = contents.partition(",")
        if len(b64) * 3 // 4 > MAX_UPLOAD_BYTES:
            raise ValueError(f"{fname}: larger than the upload limit of {MAX_UPLOAD_BYTES // 2**20} MiB")
        try:
            raw = base64.b64decode(b64, validate=True)
        except (binascii.Error, ValueError):
            raise ValueError(f"{fname}: the upload is not valid base64 data") from None
        if not raw.startswith(b"PK"):
            raise ValueError(f"{fname}: not an npz file (expected a zip archive written by numpy.savez)")
        name = _unique_name(cfg.root, Path(fname).stem)
        with tempfile.TemporaryDirectory(prefix="vaefrag-upload-") as tmp:
            src = Path(tmp) / "posteriors.npz"
            src.write_bytes(raw)
            store.check_archive(src, max_bytes=MAX_UPLOAD_ARRAYS)   # from the zip directory and .npy headers
            store.import_posteriors(src, name, cfg.root)
    except (ValueError, OSError) as exc:
        msg = str(exc).replace(str(Path(tempfile.gettempdir())), "<upload>")
        return alert(f"Upload rejected: {msg}"), no_update, no_update
    return (alert(f"Imported {fname} as ensemble '{name}'; analysing it ...", "ok"), data.ensemble_options(cfg.root), name)


def ensemble_info(tok: dict | None, cfg) -> str:
    """'K models x L latents, N points (dataset)' of the open ensemble."""
    if not isinstance(tok, dict) or not isinstance(tok.get("ensemble"), str):
        return ""
    try:
        ens = data.load_ensemble(data.ensemble_path(cfg.root, tok["ensemble"]))
    except (ValueError, FileNotFoundError):
        return ""
    ds = (ens.manifest.get("dataset") or {}).get("name", "")
    weights = "" if ens.has_weights else ", no weights"
    return f"{ens.n_models} models x {ens.n_latents} latents, N={ens.n_points}" + (f" ({ds}{weights})" if ds else "")


def alert_text(children) -> str:
    """The text of an `alert` as Dash sends it back (a component dict), or ''."""
    if isinstance(children, dict):
        inner = (children.get("props") or {}).get("children")
        return inner if isinstance(inner, str) else ""
    return children if isinstance(children, str) else ""


def settled_upload_status(tok, upload_status):
    """The upload note once an analysis is on screen: "... analysing it ..." becomes "Imported ..."
    (the analysis may have come from the cache, with no job to clear it); else no_update."""
    text = alert_text(upload_status)
    if tok and text.endswith("; analysing it ..."):
        return alert(text[: -len("; analysing it ...")] + ".", "ok")
    return no_update


def first_values(tok: dict | None, cfg) -> dict:
    """{(id, property): value} of this module's outputs for the page as served (`callbacks.first_page`)."""
    return {(ids.ENSEMBLE_INFO, "children"): ensemble_info(tok, cfg)}


# ----------------------------------------------------------------------------------- register
# the URL writer (selection, views, traversal settings, history) is `callbacks.url`


def register(app, cfg) -> None:
    @app.callback(Output(ids.ANALYSIS, "data"), Output(ids.PENDING, "data"), Output(ids.STATUS, "children"),
                  Output(ids.ENSEMBLE, "value"), Output(ids.MEASURE, "value"), Output(ids.INFO_THRESHOLD, "value"),
                  Output(ids.MIN_SAMPLES, "value"), Output(ids.XI, "value"), Output(ids.MATRIX_MEASURE, "value"),
                  Output(ids.MAP_METHOD, "value"), Output(ids.MIN_NMI, "value"),
                  Input(ids.URL_QUERY, "data"), Input(ids.ENSEMBLE, "value"), Input(ids.APPLY, "n_clicks"),
                  State(ids.MEASURE, "value"), State(ids.INFO_THRESHOLD, "value"), State(ids.MIN_SAMPLES, "value"),
                  State(ids.XI, "value"), State(ids.MIN_NMI, "value"), State(ids.ANALYSIS, "data"),
                  State(ids.MATRIX_MEASURE, "value"), State(ids.MAP_METHOD, "value"), prevent_initial_call=True)
    def _open(search, ensemble, _n, measure, thr, ms, xi, min_nmi, current, view, map_method):
        return open_analysis(search, ensemble, measure, thr, ms, xi, ctx.triggered_id, current, cfg, min_nmi,
                             view, map_method)

    runner = cfg.runner
    jobs_ui.register_start(app, jobs_ui.ANALYSIS, [Input(ids.PENDING, "data"), State(ids.CLIENT, "data")],
                           lambda pending, client: start_job(pending, client, runner))
    jobs_ui.register(app, runner, jobs_ui.ANALYSIS,
                     outputs=[Output(ids.ANALYSIS, "data"), Output(ids.UPLOAD_STATUS, "children")],
                     finish=lambda result, params, hints: finish_job(result, params, hints, cfg),
                     preview=lambda partial, params, hints: preview_job(partial, params, hints, cfg),
                     cancelled=lambda current, ensemble: cancelled_job(current, ensemble, cfg),
                     cancel_outputs=[Output(ids.ENSEMBLE, "value"), Output(ids.MEASURE, "value"),
                                     Output(ids.INFO_THRESHOLD, "value"), Output(ids.MIN_SAMPLES, "value"),
                                     Output(ids.XI, "value"), Output(ids.UPLOAD_STATUS, "children"),
                                     Output(ids.MIN_NMI, "value")],
                     cancel_states=[State(ids.ANALYSIS, "data"), State(ids.ENSEMBLE, "value")])

    @app.callback(Output(ids.UPLOAD_STATUS, "children"), Output(ids.ENSEMBLE, "options"),
                  Output(ids.ENSEMBLE, "value", allow_duplicate=True),
                  Input(ids.UPLOAD, "contents"), State(ids.UPLOAD, "filename"), prevent_initial_call=True)
    def _upload(contents, filename):
        return handle_upload(contents, filename, cfg)

    @app.callback(Output(ids.ENSEMBLE_INFO, "children"), Input(ids.ANALYSIS, "data"), prevent_initial_call=True)
    def _info(tok):
        return ensemble_info(tok, cfg)

    @app.callback(Output(ids.UPLOAD_STATUS, "children", allow_duplicate=True), Input(ids.ANALYSIS, "data"),
                  State(ids.UPLOAD_STATUS, "children"), prevent_initial_call=True)
    def _settle(tok, upload_status):
        return settled_upload_status(tok, upload_status)

