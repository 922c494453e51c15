"""`vaefrag bench NAME`: benchmark scripts that print ratios measured side by side in one run."""
from __future__ import annotations

import importlib
import pkgutil

import vaefrag.benchmarks


#: benchmarks that live with what they measure (the dashboard is the top floor: this layer must not import it)
ELSEWHERE = {"dashboard": "vaefrag.dashboard.bench"}


def available() -> list[str]:
    here = [m.name for m in pkgutil.iter_modules(vaefrag.benchmarks.__path__) if not m.name.startswith("_")]
    return sorted(set(here) | set(ELSEWHERE))


def register(subparsers) -> None:
    p = subparsers.add_parser("bench", help="benchmarks that print ratios measured side by side",
                              description="Run a benchmark script; extra arguments go to the script.")
    p.add_argument("name", choices=available(), help="which benchmark")
    p.add_argument("rest", nargs="...", help="arguments for the benchmark (see `vaefrag bench NAME --help`)")
    p.set_defaults(func=run)


def run(args) -> int:
    module = ELSEWHERE.get(args.name, f"vaefrag.benchmarks.{args.name}")
    return int(importlib.import_module(module).main(args.rest) or 0)
