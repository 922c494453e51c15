"""Read-only configuration shared by the callbacks of one app (never mutated after start)."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Config:
    """root: directory of ensembles; cache_dir: analysis cache; default: ensemble opened first;
    runner: the app's `jobs.JobRunner` (long work in worker processes)."""

    root: Path
    cache_dir: Path
    default: str | None = None
    runner: object = None
