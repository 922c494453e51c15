"""`vaefrag serve` and `python app.py`: start the dashboard (127.0.0.1:8050 by default, debug off)."""
from __future__ import annotations

import logging
import sys
from pathlib import Path

log = logging.getLogger(__name__)


def add_arguments(p) -> None:
    """Options shared by `vaefrag serve` and `python app.py`."""
    p.add_argument("--host", default="127.0.0.1",
                   help="interface to bind (default 127.0.0.1: this machine only; 0.0.0.0 exposes it)")
    p.add_argument("--port", type=int, default=8050, help="port (default 8050)")
    p.add_argument("--ensembles", default=None, metavar="DIR",
                   help="directory of ensembles to list; uploads are stored here (default $VAEFRAG_ENSEMBLES, "
                        "else ./data/ensembles, else the checkout's; see store.ensembles_root)")
    p.add_argument("--default", metavar="NAME", help="ensemble opened first (default: the sprites one)")
    p.add_argument("--cache-dir", metavar="DIR", help="analysis cache (default $VAEFRAG_CACHE or ~/.cache/vaefrag)")
    p.add_argument("--debug", action="store_true", help="Dash debug mode (dev tools, reloader); never on a shared host")


def register(subparsers) -> None:
    p = subparsers.add_parser("serve", help="start the dashboard",
                              description="Start the Dash dashboard on the ensembles of a directory. The first "
                                          "visit of an ensemble computes its analysis in the background (progress "
                                          "bar in the page) and caches it; later starts are fast.")
    add_arguments(p)
    p.set_defaults(func=run)


def import_dash_for_serving() -> None:
    """Import dash without its notebook integration, which imports IPython when it is installed
    (0.8 s, a third of the server's start); a standalone server never runs in a notebook.
    Nothing changes where IPython or dash is loaded already (e.g. inside Jupyter)."""
    if "dash" in sys.modules or "IPython" in sys.modules:
        return
    sys.modules["IPython"] = None          # `import IPython` raises ImportError while dash loads
    try:
        import dash  # noqa: F401
    finally:
        del sys.modules["IPython"]


def run(args) -> int:
    import_dash_for_serving()
    from vaefrag.dashboard.app import create_app

    if not 0 < args.port < 65536:
        raise ValueError(f"--port: expected a port in 1..65535, got {args.port}")
    from vaefrag.store import ensembles_root

    root = ensembles_root(args.ensembles)
    if root.exists() and not root.is_dir():
        raise ValueError(f"--ensembles: {root} is not a directory")
    # the server decodes small traversal batches, one request per thread: one torch thread each is
    # fastest and does not oversubscribe the cores (set once, when torch is imported, never in a callback)
    app = create_app(root, default=args.default, cache_dir=args.cache_dir, torch_threads=1)
    log.info("vaefrag dashboard on http://%s:%d/ (ensembles in %s)", args.host, args.port, root)
    app.run(host=args.host, port=args.port, debug=bool(args.debug), use_reloader=False)
    return 0
