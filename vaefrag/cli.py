"""`vaefrag` / `python -m vaefrag`: the command-line entry point.

Each sub-command lives in `vaefrag/commands/<name>.py` (the dashboard's own, `serve`, in
`vaefrag/dashboard/serve.py`, the top floor) and exposes
`register(subparsers)` which adds its parser and sets `func=run` where
`run(args) -> int`. Modules are imported lazily on dispatch so `--help` stays fast. Every command
gets ``--ensembles DIR`` (the one ensembles root, `store.ensembles_root`); ENSEMBLE arguments are
names under it or paths (`store.resolve_ensemble`).
"""
from __future__ import annotations

import argparse
import importlib
import logging
import sys

#: sub-command name -> (module under vaefrag.commands, or a full module path, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "bench": ("bench", "benchmarks that print ratios measured side by side"),
    "train": ("train", "train an ensemble of VAEs"),
    "fingerprint": ("fingerprint", "re-encode a new fingerprint sample with every member"),
    "import": ("import_", "make an ensemble from posteriors in an npz file"),
    "analyze": ("analyze", "hotspots, maps and scores of an ensemble (cached)"),
    "export": ("export", "write the paper figure and data of an ensemble"),
    "compare": ("compare", "the fragments two ensembles share (same fingerprint points)"),
    "serve": ("vaefrag.dashboard.serve", "start the dashboard"),
    "spaces": ("spaces", "compare full latent spaces of an ensemble's models"),
    "fuse": ("fuse", "fuse a set of channels into one representation"),
    "benchmark-measures": ("benchmark_measures", "NMI/VI against CKA on synthetic spaces"),
    "sweep": ("sweep", "ensembles along one recipe value: train, make, track hotspots"),
    "dynamics": ("dynamics", "full-space NMI/VI between repeat runs and hotspots over training"),
}


class CLIError(Exception):
    """An error the CLI reports as one line and exit status 2."""


ENSEMBLES_HELP = ("directory of ensembles; ENSEMBLE arguments may be names under it "
                  "(default $VAEFRAG_ENSEMBLES, else ./data/ensembles, else the checkout's or "
                  "~/.local/share/vaefrag/ensembles)")


def add_ensembles_option(p) -> None:
    """The ``--ensembles DIR`` option every command shares (`store.ensembles_root`)."""
    if "--ensembles" not in p._option_string_actions:
        p.add_argument("--ensembles", metavar="DIR", default=None, help=ENSEMBLES_HELP)


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The parser; ``only`` names the one command whose module is imported and registered
    (the others get a one-line stub; ``only=""``: stubs only, for a fast ``vaefrag --help``)."""
    from vaefrag.commands._args import OneLineParser

    parser = OneLineParser(prog="vaefrag", description=__doc__.splitlines()[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module, help_) in COMMANDS.items():
        if only is not None and name != only:
            sub.add_parser(name, help=help_, add_help=False)
            continue
        path = module if "." in module else f"vaefrag.commands.{module}"
        try:
            mod = importlib.import_module(path)
        except ModuleNotFoundError as exc:
            if exc.name != path:
                raise
            continue  # command not built yet
        mod.register(sub)
        add_ensembles_option(sub.choices[name])
    return parser


def _one_line(exc: BaseException) -> str:
    """The message of an error on one line; an OSError names its file and the system's reason."""
    if isinstance(exc, OSError) and exc.strerror and not isinstance(exc, CLIError):
        where = exc.filename if exc.filename is not None else ""
        msg = f"{where}: {exc.strerror}" if where else exc.strerror
    else:
        msg = str(exc) or type(exc).__name__
    return " ".join(msg.split())


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    command = next((a for a in argv if not a.startswith("-")), None)
    parser = build_parser(only=command if command in COMMANDS else "")
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:               # --help, or a usage error already reported in one line
        return int(exc.code or 0)
    # our messages at INFO (DEBUG with --verbose); other libraries' (fontTools, werkzeug ...) at WARNING
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING, format="%(message)s")
    logging.getLogger("vaefrag").setLevel(logging.DEBUG if args.verbose else logging.INFO)
    if not getattr(args, "func", None):
        parser.print_help()
        return 0 if args.command is None else 2
    try:
        return int(args.func(args) or 0)
    except (CLIError, ValueError, OSError) as exc:
        print(f"vaefrag {args.command}: error: {_one_line(exc)}", file=sys.stderr)
        return 2
    except RecursionError:
        print(f"vaefrag {args.command}: error: input nested too deeply", file=sys.stderr)
        return 2
    except MemoryError:
        print(f"vaefrag {args.command}: error: out of memory (use smaller sizes)", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"vaefrag {args.command}: interrupted", file=sys.stderr)
        return 130
