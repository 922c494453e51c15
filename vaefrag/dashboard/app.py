"""App factory: `create_app(ensembles_dir, default=None, cache_dir=None) -> dash.Dash`.

The layout is rebuilt on every page load (so uploaded ensembles appear in the list); callbacks
are registered once, by theme (`callbacks.analysis`, `.views`, `.traversal`, `.export`, `.beyond`). Long
work (an analysis, full spaces, fusion, a comparison) runs as jobs of a `jobs.JobRunner`: spawned
worker processes, never forks of the server. The server refuses requests for other hosts (DNS
rebinding), bodies over `MAX_REQUEST_BYTES`, and sends security headers; a callback that fails on a
malformed request answers 400 / no update, never a 500 page. Nothing imports UMAP here: maps
come precomputed from the cached `analysis.analyze`. While the server starts, the default ensemble's cached
analysis is loaded and its first-page figures are built (memoised, shared by every user) and the
layout carries them, so the first page draws without waiting for a callback; torch,
which only traversals need, is imported by a thread once the first page is served.
"""
from __future__ import annotations

from pathlib import Path

import logging
import threading
import time

import dash
import flask

from vaefrag.dashboard import data, ids
from vaefrag.dashboard import sweep as sweep_view
from vaefrag.dashboard.callbacks import jobs as jobs_ui
from vaefrag.dashboard.callbacks import analysis as cb_analysis
from vaefrag.dashboard.callbacks import beyond as cb_beyond
from vaefrag.dashboard.callbacks import export as cb_export
from vaefrag.dashboard.callbacks import first_page
from vaefrag.dashboard.callbacks import traversal as cb_traversal
from vaefrag.dashboard.callbacks import views as cb_views
from vaefrag.dashboard.config import Config
from vaefrag.dashboard.jobs import JobRunner
from vaefrag.dashboard.layout import MAX_UPLOAD_BYTES, hydrate, serve_layout

log = logging.getLogger(__name__)

#: CSS and static files (package data, so a wheel install serves them)
ASSETS = Path(__file__).resolve().parents[1] / "assets"
#: seconds without a request before `vaefrag serve` starts and warms the job workers (when the default
#: analysis is cached; a job submitted before starts them itself)
WORKER_QUIET_S = 2.0
#: host names answered by default (a page on another name reaching a local server is DNS rebinding)
LOCAL_HOSTS = ("localhost", "127.0.0.1", "::1")
#: largest request body accepted (an upload of `layout.MAX_UPLOAD_BYTES` travels base64 in JSON: 4/3)
MAX_REQUEST_BYTES = MAX_UPLOAD_BYTES * 4 // 3 + 2**20
#: headers sent with every response
SECURITY_HEADERS = {"X-Content-Type-Options": "nosniff", "X-Frame-Options": "DENY",
                    "Content-Security-Policy": "frame-ancestors 'none'", "Referrer-Policy": "same-origin"}
#: version of the plotly.js partial bundle in assets/ (npm plotly.js-cartesian-dist-min: bar, heatmap,
#: scatter, ... the trace types the dashboard draws). It is 1.5 MB against the full bundle's 4.8 MB, so
#: the browser parses plotly in a third of the time; dcc.Graph uses it because it defines window.Plotly.
PLOTLY_BUNDLE_VERSION = "4.1.1"


def assets_ignore() -> str:
    """Regex of assets Dash must not serve: the partial plotly bundle unless it is the plotly.js
    version of the installed plotly.py (then dcc.Graph loads plotly.py's full bundle, as usual)."""
    from plotly.offline import get_plotlyjs_version

    return "" if get_plotlyjs_version() == PLOTLY_BUNDLE_VERSION else r"plotly-cartesian-.*\.js$"


def pick_default(names: list[str], default: str | None = None) -> str | None:
    """The ensemble opened first: ``default`` if listed, else one named like 'sprites', else the first."""
    if default is not None:
        if default not in names:
            raise ValueError(f"default: no ensemble named {default!r} (have: {', '.join(names) or 'none'})")
        return default
    for n in names:
        if n == "sprites":
            return n
    for n in names:
        if "sprites" in n:
            return n
    return names[0] if names else None


def create_app(ensembles_dir="data/ensembles", default: str | None = None, cache_dir=None,
               torch_threads: int | None = None, *, allowed_hosts=LOCAL_HOSTS, runner: JobRunner | None = None,
               start_workers: bool = False, **runner_options) -> dash.Dash:
    """Build the dashboard for the ensembles under ``ensembles_dir``.

    Parameters
    ----------
    ensembles_dir : directory holding one directory per ensemble (uploads are written there too).
    default : name of the ensemble opened first (default: the sprites one, else the first).
    cache_dir : analysis cache (default `analysis.default_cache_dir()`).
    torch_threads : torch CPU threads, set when torch is imported (None: torch's default).
    allowed_hosts : host names (without port) the server answers; None or "*" in it: any.
    runner : the job runner (default: a new `jobs.JobRunner` with ``runner_options``, e.g.
        scheduler, n_workers, time_limit, max_jobs, max_per_client, memory_limit); it starts its
        workers with the first job. ``app.vaefrag_runner`` holds it (close it to stop the jobs).
    start_workers : start the runner's workers before the first job: at once, without a warm-up,
        when the default ensemble's analysis is not cached (the first page waits for a job), else
        once the first page is answered and quiet for `WORKER_QUIET_S` (its own requests go first),
        warmed (`jobs._warm_worker`).

    Raises ValueError when ``default`` names no ensemble under ``ensembles_dir`` or that is not a
    directory, FileNotFoundError when its parent does not exist.
    """
    root = Path(ensembles_dir)
    if root.exists() and not root.is_dir():
        raise ValueError(f"ensembles_dir: {root} is not a directory")
    if not root.parent.is_dir():
        raise FileNotFoundError(f"ensembles_dir: {root.parent} does not exist")
    root.mkdir(exist_ok=True)                 # uploads go here
    cache = Path(cache_dir) if cache_dir else data.default_cache_dir()
    runner = runner or JobRunner(root, cache, **runner_options)
    cfg = Config(root=root, cache_dir=cache, default=pick_default(data.ensemble_names(root), default), runner=runner)
    app = dash.Dash(__name__, title="vaefrag", assets_folder=str(ASSETS), assets_ignore=assets_ignore(),
                    update_title=None, suppress_callback_exceptions=False, on_error=_callback_error)
    app.vaefrag_runner = runner

    def layout():
        names = data.ensemble_names(cfg.root)
        default_name = cfg.default if cfg.default in names else pick_default(names)
        # Dash also builds the page to check its ids: when the layout is assigned (outside a request)
        # and on the first request of any kind (the index page, whose HTML does not carry the layout).
        # Those checks get the page without the first page's figures, which a thread builds while the
        # server starts and the browser loads the scripts; only the layout request waits for them.
        wanted = flask.has_request_context() and flask.request.path.endswith("_dash-layout")
        tok, values = first_page.values(default_name, cfg) if wanted else (None, {})
        page = serve_layout(data.ensemble_options(cfg.root), default_name, tok)
        page.children = [*page.children, *jobs_ui.components()]
        missing = hydrate(page, values)
        if missing:
            log.warning("first page: no component for %s", sorted(missing))
        return page

    app.layout = layout
    for module in (cb_analysis, cb_views, cb_traversal, cb_export, cb_beyond, sweep_view):
        module.register(app, cfg)
    _server_timing(app.server)
    _guard(app.server, allowed_hosts)
    preload = cfg.root / cfg.default if cfg.default else None
    early = threading.Event()             # the workers were started for the first page's job

    def first():
        """Load the default analysis and build its first page while the server starts and the browser
        loads the scripts (~0.5 s; the first layout request waits for it). When it is not cached the
        page's first request starts a job: spawn the workers now, without a warm-up task that job
        would queue behind (it imports what it needs itself)."""
        if first_page.values(cfg.default, cfg)[0] is None and start_workers and preload is not None:
            early.set()
            runner.start(warm=False)

    def start_later():
        first_thread.join()
        if not early.is_set():
            runner.start()

    first_thread = threading.Thread(target=first, name="vaefrag-first-page", daemon=True)
    first_thread.start()
    import PIL.Image  # noqa: F401  (plotly's JSON encoder imports it on a request thread: never half-imported)

    # torch (imported with its thread count) and the first page's traversals decoded once the page is
    # answered; the workers (a process importing torch and scikit-learn: seconds of CPU) when the page
    # has been quiet a while, e.g. not while someone clicks through the hotspots (a job starts them anyway)
    _when_idle(app.server, [(0.3, lambda: data.import_numerics(torch_threads, preload)),
                            (0.3, lambda: first_page.prefetch(cfg.default, cfg))]
               + ([(WORKER_QUIET_S, start_later)] if start_workers else []))
    return app


def valid_token(tok) -> bool:
    """True for None or an analysis token as `data.token` makes it (+ an optional hotspot)."""
    if tok is None:
        return True
    if not isinstance(tok, dict) or set(tok) - {"ensemble", "params", "key", "hotspot"}:
        return False
    params = tok.get("params")
    return (isinstance(tok.get("ensemble"), str) and len(tok["ensemble"]) <= 240
            and isinstance(tok.get("key"), str) and len(tok["key"]) <= 128
            and isinstance(params, dict) and set(params) <= set(data.DEFAULT_PARAMS)
            and all(v is None or (isinstance(v, (str, int, float)) and not isinstance(v, bool)) for v in params.values())
            and ("hotspot" not in tok or (type(tok["hotspot"]) is int and 0 <= tok["hotspot"] < 10**6)))


def _callback_error(exc: Exception):
    """Dash's handler of an exception in a callback: one log line, and no update for the page (Dash
    answers 204) instead of a 500. Callbacks validate their inputs; this is the net under them."""
    outs = dash.callback_context.outputs_list
    first = (outs[0] if isinstance(outs, list) and outs else outs) or {}
    first = first if isinstance(first, dict) else {}
    log.warning("callback %s.%s (input %s) failed: %s: %s", first.get("id"), first.get("property"),
                dash.callback_context.triggered_id, type(exc).__name__, str(exc)[:300])
    return None


def _guard(server, allowed_hosts) -> None:
    """Host allow-list, body limit, security headers, and 400 (not 500) for malformed requests."""
    hosts = None if allowed_hosts is None or "*" in allowed_hosts else {h.lower().strip("[]") for h in allowed_hosts}
    server.config["MAX_CONTENT_LENGTH"] = MAX_REQUEST_BYTES

    @server.before_request
    def _host():
        if hosts is None:
            return None
        host = flask.request.host.lower()
        name = host[1:host.index("]")] if host.startswith("[") and "]" in host else host.rsplit(":", 1)[0]
        if name not in hosts:
            return flask.Response(f"host {name!r} is not served here (see --allowed-hosts)\n", status=400,
                                  mimetype="text/plain")
        return None

    @server.before_request
    def _stores():
        """Refuse callback requests carrying a malformed analysis token (a client store, never trusted)."""
        if not flask.request.path.endswith("_dash-update-component"):
            return None
        body = flask.request.get_json(silent=True)
        if not isinstance(body, dict):
            return flask.Response("bad request: expected a JSON object\n", status=400, mimetype="text/plain")
        for item in [*(body.get("inputs") or []), *(body.get("state") or [])]:
            if isinstance(item, dict) and item.get("id") == ids.ANALYSIS and not valid_token(item.get("value")):
                return flask.Response("bad request: malformed analysis token\n", status=400, mimetype="text/plain")
        return None

    @server.after_request
    def _headers(response):
        for k, v in SECURITY_HEADERS.items():
            response.headers.setdefault(k, v)
        return response

    @server.errorhandler(Exception)
    def _error(exc):
        from werkzeug.exceptions import HTTPException

        if isinstance(exc, HTTPException):
            return exc
        # Dash's dispatcher raises on a malformed callback request (missing keys, wrong types)
        log.warning("request %s failed: %s: %s", flask.request.path, type(exc).__name__, str(exc)[:300])
        return flask.Response("bad request\n", status=400, mimetype="text/plain")


def _when_idle(server, work: list, latest: float = 30.0) -> None:
    """Run the (quiet seconds, callable) items of ``work`` in order, in a thread, each once the first
    page is answered (its layout or a callback request seen) and the server has had no request for
    its quiet seconds, or at the latest ``latest`` seconds after start. What runs here (importing
    torch, decoding traversals, spawning the job workers: seconds of CPU) would otherwise compete
    with the page's requests and the browser for the cores. A failure is logged, never raised."""
    seen = {"page": False, "last": time.perf_counter()}

    @server.after_request
    def _note(response):
        seen["last"] = time.perf_counter()
        seen["page"] = seen["page"] or flask.request.path.endswith(("_dash-update-component", "_dash-layout"))
        return response

    def run():
        start = time.perf_counter()
        for quiet, job in work:
            while time.perf_counter() - start < latest:
                if seen["page"] and time.perf_counter() - seen["last"] > quiet:
                    break
                time.sleep(0.05)
            try:
                job()
            except Exception as exc:  # noqa: BLE001 - start-up work never takes the server down
                log.warning("start-up work %s failed: %s", getattr(job, "__name__", job), exc)

    threading.Thread(target=run, name="vaefrag-when-idle", daemon=True).start()


def _server_timing(server) -> None:
    """Send each response's server time as a ``Server-Timing`` header (what the benchmark reads)."""
    @server.before_request
    def _start():
        flask.g.vaefrag_t0 = time.perf_counter()

    @server.after_request
    def _stop(response):
        t0 = getattr(flask.g, "vaefrag_t0", None)
        if t0 is not None:
            response.headers["Server-Timing"] = f"app;dur={(time.perf_counter() - t0) * 1000:.1f}"
        return response

