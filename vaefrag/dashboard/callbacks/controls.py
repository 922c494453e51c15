"""Checks of the typed control values: an error beside each input, Recompute blocked while one is wrong.

The inputs are text (`layout.number_input`), so every value typed reaches the server as typed;
nothing is replaced by a default behind the user's back. The analysis parameters are checked by
`data.clean_params` (the one place their ranges live), one control at a time so each error
stands beside its own input; the traversal settings by `traversal_settings`.
"""
from __future__ import annotations

import math

from dash import Input, Output, no_update

from vaefrag.dashboard import data, ids
from vaefrag.dashboard import traversals as trav

#: traversal settings: (name, low, high) of the integer inputs
TRAVERSAL_LIMITS = {"steps": (3, 15), "bases": (1, 6), "seed": (0, 2**32 - 1)}
_ANALYSIS_FIELDS = {ids.INFO_THRESHOLD: ("info_threshold", "information threshold"),
                    ids.MIN_SAMPLES: ("min_samples", "min_samples"), ids.XI: ("xi", "xi"),
                    ids.MIN_NMI: ("min_nmi", "min_nmi")}


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


def already_shown(new, shown) -> bool:
    """Whether a control showing ``shown`` already shows ``new`` (a typed "0.01" shows 0.01, "" shows
    None): setting it again would fire every callback reading it for nothing."""
    if new is no_update:
        return False
    norm = [None if v is None or (isinstance(v, str) and not v.strip()) else v for v in (new, shown)]
    if norm[0] == norm[1]:
        return True
    try:
        return float(str(norm[0]).strip()) == float(str(norm[1]).strip())
    except (TypeError, ValueError):
        return False


def analysis_errors(thr, ms, xi, min_nmi=None) -> tuple[str, str, str, str, bool]:
    """(error beside the threshold, min_samples, xi, min_nmi, Recompute disabled) for typed values."""
    errors = []
    for control, value in ((ids.INFO_THRESHOLD, thr), (ids.MIN_SAMPLES, ms), (ids.XI, xi), (ids.MIN_NMI, min_nmi)):
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
    for name, value, default in (("steps", steps, trav.STEPS), ("bases", bases, trav.BASES), ("seed", seed, trav.SEED)):
        lo, hi = TRAVERSAL_LIMITS[name]
        x = _number(value, name)
        if x is None:
            out[name] = default
            continue
        if x != int(x) or not lo <= x <= hi:
            raise ValueError(f"{name}: expected an integer from {lo} to {hi}, got {value!r}")
        out[name] = int(x)
    return out


def preset_controls(name) -> tuple:
    """(min_samples, xi, min_nmi) control values of preset ``name`` (`params.PRESETS`; a value the
    preset leaves to the default: the default, None meaning "auto"). Unknown names: no_update."""
    from vaefrag.params import PRESETS

    if not isinstance(name, str) or name not in PRESETS:
        return no_update, no_update, no_update
    p = data.clean_params(preset=name)
    return p["min_samples"], p["xi"], p["min_nmi"]


def register(app, cfg) -> None:
    @app.callback(Output(ids.error_id(ids.INFO_THRESHOLD), "children"), Output(ids.error_id(ids.MIN_SAMPLES), "children"),
                  Output(ids.error_id(ids.XI), "children"), Output(ids.error_id(ids.MIN_NMI), "children"),
                  Output(ids.APPLY, "disabled", allow_duplicate=True),
                  Input(ids.INFO_THRESHOLD, "value"), Input(ids.MIN_SAMPLES, "value"), Input(ids.XI, "value"),
                  Input(ids.MIN_NMI, "value"), prevent_initial_call=True)
    def _check(thr, ms, xi, min_nmi):
        return analysis_errors(thr, ms, xi, min_nmi)

    @app.callback(Output(ids.MIN_SAMPLES, "value", allow_duplicate=True), Output(ids.XI, "value", allow_duplicate=True),
                  Output(ids.MIN_NMI, "value", allow_duplicate=True), Output(ids.PRESET, "value"),
                  Input(ids.PRESET, "value"), prevent_initial_call=True)
    def _preset(name):
        # the menu goes back to "choose a preset": the fields, not the menu, say what is set
        return (*preset_controls(name), None if name is not None else no_update)
