"""`vaefrag serve` and `python app.py`: serve the dashboard with waitress (127.0.0.1:8050 by default).

waitress is a production WSGI server (pure Python, threads). The server answers only the host names
of ``--allowed-hosts`` (default: localhost, plus the ``--host`` address), refuses bodies over
`app.MAX_REQUEST_BYTES` before reading them, and stops its jobs on SIGTERM / Ctrl-C. Long work runs
in ``--workers`` spawned worker processes (or on the Dask cluster at ``--scheduler``).
"""
from __future__ import annotations

import logging
import signal
import socket
from pathlib import Path

from vaefrag.commands._args import int_in

log = logging.getLogger(__name__)

_ANY = ("0.0.0.0", "::", "")


def add_arguments(p) -> None:
    """Options shared by `vaefrag serve` and `python app.py`."""
    p.add_argument("--host", default="127.0.0.1",
                   help="interface to bind (default 127.0.0.1: this machine only; 0.0.0.0 exposes it)")
    p.add_argument("--port", type=int_in(1, 65535), default=8050, help="port (default 8050)")
    p.add_argument("--allowed-hosts", metavar="NAMES", default=None,
                   help="comma-separated host names the server answers (Host header; default: localhost names "
                        "and --host; with --host 0.0.0.0 also this machine's name); '*' answers any")
    p.add_argument("--ensembles", default=None, metavar="DIR",
                   help="directory of ensembles to list; uploads are stored here (default $VAEFRAG_ENSEMBLES, "
                        "else ./data/ensembles, else the checkout's; see store.ensembles_root)")
    p.add_argument("--default", metavar="NAME", help="ensemble opened first (default: the sprites one)")
    p.add_argument("--cache-dir", metavar="DIR", help="analysis cache (default $VAEFRAG_CACHE or ~/.cache/vaefrag)")
    p.add_argument("--workers", type=int_in(1, 64), default=None,
                   help="job worker processes (default: half the CPUs, at most 4)")
    p.add_argument("--scheduler", metavar="ADDRESS", default=None,
                   help="run jobs on the Dask cluster at tcp://host:port (its workers must see --ensembles "
                        "and --cache-dir at the same paths)")
    p.add_argument("--job-time-limit", type=int_in(1, 7 * 86400), default=1800, metavar="S",
                   help="seconds a job may run (default 1800)")
    p.add_argument("--max-jobs", type=int_in(1, 1000), default=16, help="jobs queued or running at once (default 16)")
    p.add_argument("--max-jobs-per-client", type=int_in(1, 100), default=3,
                   help="jobs one page may run at once (default 3)")
    p.add_argument("--worker-memory", default="4GiB", metavar="SIZE",
                   help="memory limit of each worker (the per-job budget; default 4GiB)")
    p.add_argument("--no-warm", action="store_true",
                   help="do not start and warm the job workers at start-up (they start with the first job)")
    p.add_argument("--threads", type=int_in(1, 256), default=8, help="request threads (default 8)")
    p.add_argument("--debug", action="store_true",
                   help="Flask's development server with Dash dev tools; never on a shared host")


def register(subparsers) -> None:
    p = subparsers.add_parser("serve", help="start the dashboard",
                              description="Serve the Dash dashboard on the ensembles of a directory (waitress). The "
                                          "first visit of an ensemble computes its analysis in a worker process "
                                          "(progress bar in the page) and caches it; later starts are fast.")
    add_arguments(p)
    p.set_defaults(func=run)


def allowed_hosts(host: str, names: str | None) -> tuple[str, ...]:
    """Host names to answer: ``names`` (comma-separated) if given, else the localhost names and
    ``host`` (and this machine's name when ``host`` binds every interface)."""
    from vaefrag.dashboard.app import LOCAL_HOSTS

    if names:
        return tuple(n.strip().lower() for n in names.split(",") if n.strip())
    out = [*LOCAL_HOSTS]
    if host in _ANY:
        out += [socket.gethostname().lower(), socket.getfqdn().lower()]
    else:
        out.append(host.lower())
    return tuple(dict.fromkeys(out))


def run(args) -> int:
    from vaefrag.dashboard.app import MAX_REQUEST_BYTES, create_app

    from vaefrag.store import ensembles_root

    root = ensembles_root(args.ensembles)
    if root.exists() and not root.is_dir():
        raise ValueError(f"--ensembles: {root} is not a directory")
    if args.cache_dir and Path(args.cache_dir).exists() and not Path(args.cache_dir).is_dir():
        raise ValueError(f"--cache-dir: {args.cache_dir} is not a directory")
    if args.scheduler and not str(args.scheduler).startswith(("tcp://", "tls://", "inproc://", "ws://", "wss://")):
        raise ValueError(f"--scheduler: expected an address like tcp://host:8786, got {args.scheduler!r}")
    hosts = allowed_hosts(args.host, args.allowed_hosts)
    # the server decodes small traversal batches, one request per thread: one torch thread each is
    # fastest and does not oversubscribe the cores (set once, when torch is imported, never in a callback)
    app = create_app(root, default=args.default, cache_dir=args.cache_dir, torch_threads=1, allowed_hosts=hosts,
                     scheduler=args.scheduler, n_workers=args.workers, time_limit=args.job_time_limit,
                     max_jobs=args.max_jobs, max_per_client=args.max_jobs_per_client, memory_limit=args.worker_memory,
                     start_workers=not args.no_warm)    # once the first page is answered and quiet
    runner = app.vaefrag_runner
    log.info("vaefrag dashboard on http://%s:%d/ (ensembles in %s)", args.host, args.port, root)
    try:
        if args.debug:
            app.run(host=args.host, port=args.port, debug=True, use_reloader=False)
            return 0
        import waitress

        server = waitress.create_server(app.server, host=args.host, port=args.port, threads=args.threads,
                                        max_request_body_size=MAX_REQUEST_BYTES, ident="vaefrag",
                                        channel_timeout=60)

        def stop(signum, _frame):
            log.info("vaefrag serve: %s, stopping the jobs and the server", signal.Signals(signum).name)
            raise SystemExit(0)

        signal.signal(signal.SIGTERM, stop)
        server.run()                            # returns on SystemExit / KeyboardInterrupt
    finally:
        runner.close()
    return 0
