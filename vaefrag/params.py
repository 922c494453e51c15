"""The analysis parameters: one object with the defaults, the presets and the one validation.

`AnalysisParams` is what `analysis.analyze`, `structure.HotspotFinder`, the CLI (`analyze`,
`export`, `compare`) and the dashboard read. Its `_parameter_constraints` (in the style of
scikit-learn's estimators) say what each field accepts; `validate` checks them all and raises
`ParameterError` (a ValueError) naming the parameter, so every front end shows the same message.
Numpy + stdlib only (the dashboard imports it on its start-up path).
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import ClassVar

__all__ = ["AnalysisParams", "ParameterError", "PRESETS", "MAPS", "MEASURES", "DEFAULT_INFO_THRESHOLD",
           "DEFAULT_MIN_NMI", "DEFAULT_XI", "DEFAULT_N_BOOTSTRAP", "STRUCTURE_FIELDS"]

#: channel maps `analyze` can compute
MAPS = ("mds", "umap")
#: distances between channels
MEASURES = ("nmi", "vi")
#: bits below which a channel carries nothing and is left out of the structure
DEFAULT_INFO_THRESHOLD = 0.01
#: smallest mean within-hotspot NMI: twice the finite-sample NMI (~0.15) of independent
#: high-information channels on 200 points, so groups of unrelated channels are not hotspots
DEFAULT_MIN_NMI = 0.3
#: OPTICS xi default: steepness of reachability valleys that delimit a hotspot
DEFAULT_XI = 0.05
#: resamples of the fingerprint points for hotspot stability
DEFAULT_N_BOOTSTRAP = 20

#: upper bounds: every number that sizes work is bounded (resamples cost R x M^2 memory and R refits;
#: information never exceeds log2 N <= 64 bits)
MAX_N_BOOTSTRAP = 1000
MAX_MIN_SAMPLES = 100_000
MAX_INFO_THRESHOLD = 64

#: the fields the structure stage (OPTICS and the hotspot filter) depends on
STRUCTURE_FIELDS = ("measure", "info_threshold", "min_samples", "xi", "min_nmi")

#: named parameter sets; "paper" is the reference code's OPTICS procedure (arXiv:2405.21042):
#: min_samples 20, xi 0.05, every OPTICS cluster a hotspot (no mean-NMI filter)
PRESETS: dict[str, dict] = {
    "default": {},
    "paper": {"min_samples": 20, "xi": 0.05, "min_nmi": 0.0},
}


class ParameterError(ValueError):
    """A bad analysis parameter; ``param`` names it (e.g. "min_samples")."""

    def __init__(self, param: str, message: str):
        super().__init__(f"{param}: {message}")
        self.param = param
        self.detail = message


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


@dataclass(frozen=True)
class AnalysisParams:
    """Parameters of one analysis (JSON-able; part of the cache keys).

    measure : "nmi" (distance -ln NMI) or "vi".  info_threshold : bits below which a channel is left out.
    min_samples : OPTICS neighbourhood (None: about half the number of models).  xi : OPTICS
    steepness (None: 0.05).  min_nmi : smallest mean NMI inside a hotspot (0: no filter).
    n_bootstrap : resamples for stability (0: none).  maps : which channel maps.  seed : of resamples and maps.
    """

    measure: str = "nmi"
    info_threshold: float = DEFAULT_INFO_THRESHOLD
    min_samples: int | None = None
    xi: float | None = None
    min_nmi: float = DEFAULT_MIN_NMI
    n_bootstrap: int = DEFAULT_N_BOOTSTRAP
    maps: tuple = MAPS
    seed: int = 0

    #: what each field accepts: name -> (check, what is expected); filled in below
    _parameter_constraints: ClassVar[dict] = {}

    def __post_init__(self):
        object.__setattr__(self, "maps", tuple(self.maps or ()))
        self.validate()

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_values(cls, *, preset: str | None = None, **values) -> "AnalysisParams":
        """Parameters from loosely typed values (CLI strings, dashboard controls).

        None or '' take the default (or the preset's value); numbers given as strings or floats
        are converted where that is exact ("7", 7.0 -> 7 for min_samples). ``preset`` names an
        entry of `PRESETS` whose values stand in for the missing ones. Unknown names raise.
        """
        base = preset_values(preset)
        names = {f.name for f in dataclasses.fields(cls)}
        for name in values:
            if name not in names:
                raise ParameterError(name, f"not an analysis parameter (expected one of {sorted(names)})")
        out = dict(base)
        for name, value in values.items():
            if value is None or (isinstance(value, str) and value.strip() == ""):
                continue
            out[name] = _coerce(name, value)
        return cls(**out)

    def replace(self, **changes) -> "AnalysisParams":
        return dataclasses.replace(self, **changes)

    # ------------------------------------------------------------------ validation
    def validate(self) -> None:
        """Raise `ParameterError` naming the first field that is out of range."""
        for name, (ok, expected) in CONSTRAINTS.items():
            value = getattr(self, name)
            if not ok(value):
                raise ParameterError(name, f"expected {expected}, got {value!r}")

    # ------------------------------------------------------------------ views
    def to_dict(self) -> dict:
        """JSON-normalised dict (the shape `Analysis.params` has always had)."""
        return {"measure": self.measure, "info_threshold": float(self.info_threshold),
                "min_samples": None if self.min_samples is None else int(self.min_samples),
                "xi": None if self.xi is None else float(self.xi), "min_nmi": float(self.min_nmi),
                "n_bootstrap": int(self.n_bootstrap), "maps": list(self.maps), "seed": int(self.seed)}

    def structure(self) -> dict:
        """The fields the structure stage depends on (its cache key's part)."""
        d = self.to_dict()
        return {k: d[k] for k in STRUCTURE_FIELDS}

    def finder_kwargs(self) -> dict:
        """Keywords of `structure.HotspotFinder`."""
        return {"measure": self.measure, "info_threshold": float(self.info_threshold),
                "min_samples": self.min_samples, "xi": self.xi, "min_nmi": float(self.min_nmi)}


def preset_values(preset: str | None) -> dict:
    """The values of a named preset (None: none)."""
    if preset in (None, "", "default"):
        return {}
    if preset not in PRESETS:
        raise ParameterError("preset", f"expected one of {sorted(PRESETS)}, got {preset!r}")
    return dict(PRESETS[preset])


def _coerce(name: str, value):
    """CLI / dashboard values -> the field's type (exact conversions only; the rest is left to validate)."""
    if name in ("min_samples", "n_bootstrap", "seed"):
        try:
            f = float(value)
        except (TypeError, ValueError):
            raise ParameterError(name, f"expected an integer, got {value!r}") from None
        if not math.isfinite(f) or f != int(f):
            raise ParameterError(name, f"expected an integer, got {value!r}")
        return int(f)
    if name in ("info_threshold", "xi", "min_nmi"):
        try:
            return float(value)
        except (TypeError, ValueError):
            raise ParameterError(name, f"expected a number, got {value!r}") from None
    if name == "maps":
        if isinstance(value, str):
            items = tuple(v.strip().lower() for v in value.split(",") if v.strip())
            return () if items in ((), ("none",)) else items
        return tuple(value)
    if name == "measure" and isinstance(value, str):
        return value.strip().lower()
    return value


CONSTRAINTS = {
    "measure": (lambda v: v in MEASURES, "'nmi' or 'vi'"),
    "info_threshold": (lambda v: _number(v) and 0 <= v <= MAX_INFO_THRESHOLD,
                       f"a number in [0, {MAX_INFO_THRESHOLD}] (bits)"),
    "min_samples": (lambda v: v is None or (_is_int(v) and 2 <= v <= MAX_MIN_SAMPLES),
                    f"an integer in [2, {MAX_MIN_SAMPLES}] or None"),
    "xi": (lambda v: v is None or (_number(v) and 0 < v < 1), "a number in (0, 1) or None"),
    "min_nmi": (lambda v: _number(v) and 0 <= v <= 1, "a number in [0, 1]"),
    "n_bootstrap": (lambda v: _is_int(v) and 0 <= v <= MAX_N_BOOTSTRAP, f"an integer in [0, {MAX_N_BOOTSTRAP}]"),
    "maps": (lambda v: all(m in MAPS for m in v) and len(set(v)) == len(v), f"a subset of {MAPS}"),
    "seed": (lambda v: _is_int(v) and 0 <= v < 2**32, "an integer in [0, 2**32)"),
}
AnalysisParams._parameter_constraints = CONSTRAINTS
