"""Checks of the typed control values: an error beside each input, Recompute blocked while one is wrong.

The inputs are text (`layout.number_input`), so every value typed reaches the server as typed;
nothing is replaced by a default behind the user's back. The analysis parameters are checked by
`data.clean_params` (the one place their ranges live), one control at a time so each error
stands beside its own input; the traversal settings by `traversal_settings`.
"""
from __future__ import annotations

import math

from dash import Input, Output

from vaefrag.dashboard import data, ids

#: traversal settings: (name, low, high) of the integer inputs
TRAVERSAL_LIMITS = {"steps": (3, 15), "bases": (1, 6), "seed": (0, 2**32 - 1)}
_ANALYSIS_FIELDS = {ids.INFO_THRESHOLD: ("info_threshold", "information threshold"),
                    ids.MIN_SAMPLES: ("min_samples", "min_samples"), ids.XI: ("xi", "xi")}


def _number(value, name: str) -> float | None:
    """A typed value as a float (None for empty). Raises ValueError naming the control."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    try:
        x = float(str(value).strip())
    except ValueError:
        raise ValueError(f"{name}: expected a number, got {value!r}") from None
    if not math.isfinite(x):
        raise ValueError(f"{name}: expected a finite number, got {value!r}")
    return x


def analysis_errors(thr, ms, xi) -> tuple[str, str, str, bool]:
    """(error beside the threshold, min_samples, xi, Recompute disabled) for typed values."""
    errors = []
    for control, value in ((ids.INFO_THRESHOLD, thr), (ids.MIN_SAMPLES, ms), (ids.XI, xi)):
        field, name = _ANALYSIS_FIELDS[control]
        try:
            x = _number(value, name)
            data.clean_params(**{field: x})
            errors.append("")
        except ValueError as exc:
            errors.append(str(exc))
    return (*errors, any(errors))


def traversal_settings(steps, bases, seed) -> dict:
    """The traversal settings as integers {"steps", "bases", "seed"}.

    Raises ValueError naming the setting and its range when a value is not an integer in range
    (`TRAVERSAL_LIMITS`); empty means the default (7 steps, 2 bases, seed 0).
    """
    out = {}
    for name, value, default in (("steps", steps, 7), ("bases", bases, 2), ("seed", seed, 0)):
        lo, hi = TRAVERSAL_LIMITS[name]
        x = _number(value, name)
        if x is None:
            out[name] = default
            continue
        if x != int(x) or not lo <= x <= hi:
            raise ValueError(f"{name}: expected an integer from {lo} to {hi}, got {value!r}")
        out[name] = int(x)
    return out


def register(app, cfg) -> None:
    @app.callback(Output(ids.error_id(ids.INFO_THRESHOLD), "children"), Output(ids.error_id(ids.MIN_SAMPLES), "children"),
                  Output(ids.error_id(ids.XI), "children"), Output(ids.APPLY, "disabled", allow_duplicate=True),
                  Input(ids.INFO_THRESHOLD, "value"), Input(ids.MIN_SAMPLES, "value"), Input(ids.XI, "value"),
                  prevent_initial_call=True)
    def _check(thr, ms, xi):
        return analysis_errors(thr, ms, xi)
