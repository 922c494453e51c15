"""The one palette of the project: hotspot colours, model colours and hotspot numbers.

The dashboard (plotly), the paper figure (matplotlib), the CSV and the NPZ export all take their
colours and numbers from here, so hotspot 3 is the same colour and the same number everywhere.

- Hotspots: 16 qualitative colours readable on white (ColorBrewer Dark2 + Set1 + 2), cycled by id;
  grey for channels outside every hotspot.
- Models: `model_colors(n)` gives ``n`` colours that stay distinct for 50 models (farthest-point
  choice in CIE Lab among 144 candidates), so no two models of a 50-model ensemble share a colour.
- Numbers: hotspot ids are 0-based inside (analysis, selection); a person reads ``id + 1``.
"""
from __future__ import annotations

import colorsys
import functools

import numpy as np

from vaefrag.results import hotspot_number

#: qualitative palette for hotspots (ColorBrewer Dark2 + Set1, readable on white), cycled by id
HOTSPOT_PALETTE = ("#1b9e77", "#d95f02", "#7570b3", "#e7298a", "#66a61e", "#e6ab02", "#a6761d", "#377eb8",
                   "#e41a1c", "#984ea3", "#ff7f00", "#4daf4a", "#f781bf", "#999933", "#17becf", "#8c564b")
#: channels outside every hotspot
NOISE_COLOR = "#b8bec6"

#: candidate colours for models: 24 hues x 3 lightness x 2 saturation levels (HLS)
_HUES, _LIGHTS, _SATS = 24, (0.32, 0.47, 0.62), (0.60, 0.95)


def hotspot_color(hid: int) -> str:
    """Colour (``#rrggbb``) of hotspot id ``hid`` (0-based); grey for ``hid < 0`` (no hotspot)."""
    hid = int(hid)
    return NOISE_COLOR if hid < 0 else HOTSPOT_PALETTE[hid % len(HOTSPOT_PALETTE)]


def hotspot_name(hid: int) -> str:
    """"hotspot 3" for id 2 (`results.hotspot_number`), "no hotspot" for -1."""
    return "no hotspot" if int(hid) < 0 else f"hotspot {hotspot_number(hid)}"


def _lab(rgb01: np.ndarray) -> np.ndarray:
    """sRGB in [0, 1] [n, 3] -> CIE L*a*b* [n, 3] (D65), where Euclidean distance ~ perceived difference."""
    c = np.where(rgb01 > 0.04045, ((rgb01 + 0.055) / 1.055) ** 2.4, rgb01 / 12.92)
    m = np.array([[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722], [0.0193, 0.1192, 0.9505]])
    xyz = c @ m.T / np.array([0.95047, 1.0, 1.08883])
    f = np.where(xyz > 0.008856, np.cbrt(xyz), 7.787 * xyz + 16 / 116)
    return np.c_[116 * f[:, 1] - 16, 500 * (f[:, 0] - f[:, 1]), 200 * (f[:, 1] - f[:, 2])]


@functools.lru_cache(maxsize=8)
def _model_palette(n: int) -> tuple[str, ...]:
    cands = [colorsys.hls_to_rgb(h / _HUES, light, sat) for light in _LIGHTS for sat in _SATS for h in range(_HUES)]
    rgb01 = np.asarray(cands)
    lab = _lab(rgb01)
    chosen = [0]
    dist = np.linalg.norm(lab - lab[0], axis=1)
    while len(chosen) < min(n, len(cands)):
        k = int(np.argmax(dist))                 # farthest from every colour chosen so far
        chosen.append(k)
        dist = np.minimum(dist, np.linalg.norm(lab - lab[k], axis=1))
    hexes = ["#%02x%02x%02x" % tuple(int(round(v * 255)) for v in rgb01[k]) for k in chosen]
    return tuple(hexes[i % len(hexes)] for i in range(n))


def model_colors(n: int) -> list[str]:
    """``n`` distinct colours (``#rrggbb``) for models 0..n-1.

    Chosen greedily, each the candidate farthest (in CIE Lab) from all colours chosen before it,
    among 144 hues x lightness x saturation levels readable on white: the first colours differ most,
    and 50 models still differ by a clearly visible step (the palette beyond 144 models repeats).
    """
    return list(_model_palette(int(n)))


def model_color(k: int, n: int) -> str:
    """Colour of model ``k`` of ``n``."""
    return model_colors(max(int(n), int(k) + 1))[int(k)]


def rgb(color: str) -> np.ndarray:
    """``#rrggbb`` -> float [3] in [0, 1]."""
    c = color.lstrip("#")
    return np.asarray([int(c[i:i + 2], 16) / 255.0 for i in (0, 2, 4)])
