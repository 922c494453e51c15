"""`vaefrag bench NAME`: benchmark scripts that print ratios measured side by side in one run."""
from __future__ import annotations

import importlib
import pkgutil

import vaefrag.benchmarks


def available() -> list[str]:
    return sorted(m.name for m in pkgutil.iter_modules(vaefrag.benchmarks.__path__) if not m.name.startswith("_"))


def register(subparsers) -> None:
    p = subparsers.add_parser("bench", help="benchmarks that print ratios measured side by side",
                              description="Run a benchmark script; extra arguments go to the script.")
    p.add_argument("name", choices=available(), help="which benchmark")
    p.add_argument("rest", nargs="...", help="arguments for the benchmark (see `vaefrag bench NAME --help`)")
    p.set_defaults(func=run)


def run(args) -> int:
    return int(importlib.import_module(f"vaefrag.benchmarks.{args.name}").main(args.rest) or 0)
