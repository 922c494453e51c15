"""Dash side of the job runner (`dashboard.jobs`): start, poll (dcc.Interval) and cancel callbacks.

Every job panel (analysis, full spaces, fusion, compare) has a start button, a Cancel button, a
progress bar with its text, a status area, and two hidden components made here: a ``dcc.Store``
with the job's id and an interval that polls it. The job's parameters live on the server (the
runner); the store holds only the id and display hints, validated when read. The page's client id
(``ids.CLIENT``, made per page load) names the subscriber; it is used for the per-client cap only.
"""
from __future__ import annotations

import re
import uuid
from dataclasses import dataclass

from dash import Input, Output, State, dcc, no_update

from vaefrag.dashboard import ids
from vaefrag.dashboard.jobs import JobRefused

SHOW = {"display": "block"}
HIDE = {"display": "none"}
#: polling period of a running job (ms): the next poll is asked this long after the last one was answered
POLL_MS = 500
#: the wait for a poll's answer before it is asked again (ms; see `register`)
STALL_MS = 15_000
_CLIENT_RE = re.compile(r"^[0-9a-f]{32}$")


@dataclass(frozen=True)
class JobPanel:
    """Component ids of one job panel."""

    kind: str
    button: str
    cancel: str
    panel: str
    progress: str
    text: str
    status: str

    @property
    def store(self) -> str:
        return f"vf-job-{self.kind}"

    @property
    def interval(self) -> str:
        return f"vf-job-{self.kind}-poll"


ANALYSIS = JobPanel("analysis", ids.APPLY, ids.CANCEL, ids.JOB_PANEL, ids.PROGRESS, ids.PROGRESS_TEXT, ids.STATUS)
SPACES = JobPanel("spaces", ids.SPACES_COMPUTE, ids.SPACES_CANCEL, ids.SPACES_JOB_PANEL, ids.SPACES_PROGRESS,
                  ids.SPACES_PROGRESS_TEXT, ids.SPACES_STATUS)
FUSION = JobPanel("fusion", ids.FUSE, ids.FUSE_CANCEL, ids.FUSE_JOB_PANEL, ids.FUSE_PROGRESS, ids.FUSE_PROGRESS_TEXT,
                  ids.FUSE_STATUS)
COMPARE = JobPanel("compare", ids.COMPARE, ids.COMPARE_CANCEL, ids.COMPARE_JOB_PANEL, ids.COMPARE_PROGRESS,
                   ids.COMPARE_PROGRESS_TEXT, ids.COMPARE_STATUS)
PANELS = (ANALYSIS, SPACES, FUSION, COMPARE)


def components() -> list:
    """The page's client id store and each panel's job store and poll interval (added to the layout)."""
    out = [dcc.Store(id=ids.CLIENT, data=uuid.uuid4().hex)]
    for p in PANELS:
        out += [dcc.Store(id=p.store), dcc.Interval(id=p.interval, interval=POLL_MS, disabled=True)]   # no data: see layout
    return out


def client_id(value) -> str:
    """The page's client id if well formed, else "anonymous" (a forged id only changes the cap it counts to)."""
    return value if isinstance(value, str) and _CLIENT_RE.match(value) else "anonymous"


def job_ref(store) -> tuple[str | None, dict]:
    """(job id, display hints) from a job store, or (None, {}) when it is malformed."""
    if not isinstance(store, dict) or not isinstance(store.get("id"), str) or not re.fullmatch(r"[0-9a-f]{24}", store["id"]):
        return None, {}
    hints = store.get("hints")
    return store["id"], hints if isinstance(hints, dict) else {}


def start(runner, panel: JobPanel, params: dict, client, hints: dict | None = None, *, status=None) -> tuple:
    """Submit a job: (store, interval disabled, panel style, button disabled, cancel disabled, status);
    ``status`` replaces what the panel said before (None: nothing, the progress bar speaks).
    A refused job (cap, bad parameters) gives an error alert and leaves the panel idle."""
    from vaefrag.dashboard.callbacks.analysis import alert

    try:
        jid = runner.submit(panel.kind, params, client_id(client))
    except JobRefused as exc:
        return None, True, HIDE, False, True, alert(f"Not started: {exc}")
    return {"id": jid, "hints": hints or {}}, False, SHOW, True, False, status


def idle(status=no_update) -> tuple:
    """The `start` outputs of a job that was not submitted (``status`` shown)."""
    return no_update, True, HIDE, False, True, status


def _start_outputs(panel: JobPanel) -> list:
    return [Output(panel.store, "data", allow_duplicate=True), Output(panel.interval, "disabled", allow_duplicate=True),
            Output(panel.panel, "style", allow_duplicate=True), Output(panel.button, "disabled", allow_duplicate=True),
            Output(panel.cancel, "disabled", allow_duplicate=True), Output(panel.status, "children", allow_duplicate=True)]


def register_start(app, panel: JobPanel, inputs: list, submit, extra_outputs=()) -> None:
    """``submit(*values)`` -> the `start` / `idle` tuple (then the values of ``extra_outputs``), on
    ``inputs`` (Input / State list)."""
    extra = [Output(o.component_id, o.component_property, allow_duplicate=True) for o in extra_outputs]
    app.callback(*_start_outputs(panel), *extra, *inputs, prevent_initial_call=True)(submit)


def time_left(seconds) -> str:
    """", about 40 s left" / ", about 3 min left" for the progress text; "" when unknown or under 2 s."""
    if not isinstance(seconds, (int, float)) or not 2 <= seconds < 10**6:
        return ""
    return f", about {seconds:.0f} s left" if seconds < 90 else f", about {seconds / 60:.0f} min left"


def poll_outputs(runner, store, client, finish, preview, n_out: int) -> tuple:
    """One poll of a panel's job: (bar value, bar max, bar text, *`start` outputs, *``n_out`` values);
    ``finish`` / ``preview`` as in `register`."""
    from vaefrag.dashboard.callbacks.analysis import alert

    jid, hints = job_ref(store)
    if jid is None:
        return (no_update,) * 3 + (None, True, HIDE, False, True, no_update) + (no_update,) * n_out
    s = runner.poll(jid, client_id(client))
    bar = (str(s["done"]), str(max(s["total"], 1)),
           f"{s['message']} ({s['done']}/{s['total']}{time_left(s.get('left_s'))})")
    if s["state"] in ("queued", "running"):
        part = s.get("partial")                 # given once per page by the runner
        if preview is not None and part is not None:
            shown = preview(part, s.get("params"), hints)
            if shown is not None:
                status, *values = shown
                return bar + (no_update,) * 5 + (status,) + tuple(values)
        return bar + (no_update,) * 6 + (no_update,) * n_out
    end = (None, True, HIDE, False, True)
    bar = ("0", "1", "")                        # the panel hides: the next job's bar starts empty
    if s["state"] == "done":
        status, *values = finish(s["result"], s.get("params"), hints)
        return bar + end + (status,) + tuple(values)
    if s["state"] == "unknown":
        msg = alert("The job is no longer known to the server (restarted?): press the button again.", "info")
    elif s["state"] == "cancelled":
        msg = alert(f"Stopped: {s['error'] or 'cancelled'}.", "info")
    else:
        msg = alert(f"Failed: {s['error']}")
    return bar + end + (msg,) + (no_update,) * n_out


def register(app, runner, panel: JobPanel, *, outputs: list, finish, preview=None, cancelled=None,
             cancel_outputs=(), cancel_states=()) -> None:
    """Poll and cancel callbacks of ``panel``.

    finish(result, params, hints) -> (status, *values of ``outputs``) when the job is done (params:
    the job's own, from the server); preview(partial, params, hints) -> the same, or None, for an
    intermediate result of a running job (the runner hands each page each one once; a running poll
    never writes the job store, so a late answer cannot bring back a cancelled job);
    cancelled(*cancel_states) -> (status, *values of ``cancel_outputs``) after a cancel (default:
    an info alert, nothing else).
    """
    from vaefrag.dashboard.callbacks.analysis import alert

    dup = [Output(o.component_id, o.component_property, allow_duplicate=True) for o in outputs]
    common = [Output(panel.progress, "value", allow_duplicate=True), Output(panel.progress, "max", allow_duplicate=True),
              Output(panel.text, "children", allow_duplicate=True), *_start_outputs(panel)]
    n_out = len(outputs)

    # While a poll runs the interval waits STALL_MS; once the poll is answered (an error answer too)
    # it ticks POLL_MS later. Dash drops the answer of a callback asked again while it runs, so a poll
    # slower than POLL_MS (a busy server, the poll that builds the result's figures) was dropped at
    # every tick, and a job it reported finished was never shown. A poll that gets no answer at all
    # (the server restarting) is asked again after STALL_MS, which then says what became of the job.
    @app.callback(*common, *dup, Input(panel.interval, "n_intervals"), State(panel.store, "data"),
                  State(ids.CLIENT, "data"), prevent_initial_call=True,
                  running=[(Output(panel.interval, "interval"), STALL_MS, POLL_MS)])
    def _poll(_n, store, client):
        return poll_outputs(runner, store, client, finish, preview, n_out)

    cdup = [Output(o.component_id, o.component_property, allow_duplicate=True) for o in cancel_outputs]

    @app.callback(*common, *cdup, Input(panel.cancel, "n_clicks"), State(panel.store, "data"),
                  State(ids.CLIENT, "data"), *cancel_states, prevent_initial_call=True)
    def _cancel(_n, store, client, *states):
        jid, _ = job_ref(store)
        if jid is not None:
            runner.cancel(jid, client_id(client))
        if cancelled is None:
            status, extra = alert("Cancelled.", "info"), ()
        else:
            status, *extra = cancelled(*states)
        return ("0", "1", "", None, True, HIDE, False, True, status, *extra)      # the next job's bar starts empty
