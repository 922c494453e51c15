"""argparse types shared by the sub-commands: bounded numbers, devices, directories.

Every number that sizes work (steps, values, points, threads, batch sizes, ...) is parsed with a
bound, so a typo such as ``--values 100000`` is one line of error, not a 20 GB allocation.
"""
from __future__ import annotations

import argparse
import math
import re
from pathlib import Path


def int_in(lo: int, hi: int):
    """An argparse type: an integer in [lo, hi]."""
    def parse(text: str) -> int:
        try:
            v = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer in [{lo}, {hi}], got {text!r}") from None
        if not lo <= v <= hi:
            raise argparse.ArgumentTypeError(f"expected an integer in [{lo}, {hi}], got {v}")
        return v

    parse.__name__ = "integer"
    return parse


def float_in(lo: float, hi: float, *, open_lo: bool = False):
    """An argparse type: a finite number in [lo, hi] (or (lo, hi] with ``open_lo``)."""
    def parse(text: str) -> float:
        try:
            v = float(text)
        except ValueError:
            v = math.nan
        ok = math.isfinite(v) and (lo < v if open_lo else lo <= v) and v <= hi
        if not ok:
            bracket = "(" if open_lo else "["
            raise argparse.ArgumentTypeError(f"expected a number in {bracket}{lo:g}, {hi:g}], got {text!r}")
        return v

    parse.__name__ = "number"
    return parse


_DEVICE = re.compile(r"^(auto|cpu|mps|cuda(:\d{1,2})?)$")


def device(text: str) -> str:
    """An argparse type: auto, cpu, mps, cuda or cuda:N."""
    if not _DEVICE.match(text):
        raise argparse.ArgumentTypeError(f"expected auto, cpu, cuda, cuda:N or mps, got {text!r}")
    return text


def directory(text: str) -> str:
    """An argparse type: a directory path that is not an existing file (it may not exist yet)."""
    p = Path(text)
    if p.exists() and not p.is_dir():
        raise argparse.ArgumentTypeError(f"{text} exists and is not a directory")
    return text


class OneLineParser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line (``PROG: error: MESSAGE``) and exit status 2."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")
