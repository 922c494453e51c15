"""Figures of fused representations, full-latent-space comparisons and the ring study.

Plotly builders (for the dashboard and notebooks) and one matplotlib figure (the ring study).
They take arrays / result objects, never Dash state.
"""
from __future__ import annotations

import numpy as np


def _ellipse_path(mu: np.ndarray, logvar: np.ndarray, n: int = 24) -> tuple[np.ndarray, np.ndarray]:
    """One-sigma ellipses of posteriors [N, 2] as one polyline separated by NaN."""
    t = np.linspace(0, 2 * np.pi, n)
    sd = np.exp(0.5 * logvar)
    xs = mu[:, :1] + sd[:, :1] * np.cos(t)
    ys = mu[:, 1:2] + sd[:, 1:2] * np.sin(t)
    pad = np.full((len(mu), 1), np.nan)
    return np.hstack([xs, pad]).ravel(), np.hstack([ys, pad]).ravel()


#: a factor with at most this many distinct values is coloured in bands, one per value
DISCRETE_MAX = 12


def fused_marker_colors(n: int, factor=None, factor_name: str = "factor") -> dict:
    """Marker colour properties of `fused_space_figure` for n points: the point index on Viridis; a
    factor [n] with at most `DISCRETE_MAX` values (a label such as shape) in one band per value of a
    stepped colour bar whose ticks name the values (the colour is the value's rank); else a factor on
    the cyclic HSV scale with its range widened by one step between values, so that the smallest and
    largest values get different colours and an angle-like factor wraps around. Colour scales are
    explicit [[position, colour], ...] lists (plotly.js itself has no "HSV")."""
    from plotly.colors import get_colorscale, sample_colorscale

    if factor is None:
        return {"color": np.arange(n), "colorscale": get_colorscale("Viridis"), "cmin": None, "cmax": None,
                "colorbar": {"title": {"text": "point"}}}
    color = np.asarray(factor).reshape(-1)
    if color.shape[0] != n:
        raise ValueError(f"factor: expected {n} values (one per fingerprint point), got {color.shape[0]}")
    if not np.issubdtype(color.dtype, np.number):
        return {"color": color, "colorscale": get_colorscale("HSV"), "cmin": None, "cmax": None,
                "colorbar": {"title": {"text": factor_name}}}
    vals = np.unique(color[np.isfinite(color)]).astype(float)
    if 1 <= len(vals) <= DISCRETE_MAX:
        k = len(vals)
        bands = sample_colorscale(get_colorscale("HSV"), [i / k for i in range(k)])
        scale = [[pos, c] for i, c in enumerate(bands) for pos in (i / k, (i + 1) / k)]
        rank = np.searchsorted(vals, color.astype(float)).astype(float)
        rank[~np.isfinite(color)] = np.nan
        return {"color": rank, "colorscale": scale, "cmin": -0.5, "cmax": k - 0.5,
                "colorbar": {"title": {"text": factor_name}, "tickvals": list(range(k)),
                             "ticktext": [f"{v:g}" for v in vals]}}
    step = float(np.median(np.diff(vals))) if len(vals) > 1 else 1.0
    lo, hi = (float(vals[0]), float(vals[-1]) + step) if len(vals) else (None, None)
    return {"color": color, "colorscale": get_colorscale("HSV"), "cmin": lo, "cmax": hi,
            "colorbar": {"title": {"text": factor_name}}}


def fused_space_figure(result, factor=None, factor_name: str = "factor", ellipses: bool = True):
    """2-D scatter of the fused means with one-sigma uncertainty ellipses, coloured by a factor.

    Parameters
    ----------
    result : `vaefrag.fusion.FusionResult` (k = 1 is drawn against the point index, k > 2 uses
        the first two dimensions).
    factor : [N] values to colour by (e.g. a factor label or an angle); default the point index.
    """
    import plotly.graph_objects as go

    mu, lv = np.asarray(result.mu), np.asarray(result.logvar)
    n = mu.shape[0]
    if mu.shape[1] == 1:
        mu = np.hstack([mu, np.arange(n)[:, None].astype(float)])
        lv = np.hstack([lv, np.full((n, 1), -np.inf)])
    colors = fused_marker_colors(n, factor, factor_name)
    fig = go.Figure()
    if ellipses:
        ex, ey = _ellipse_path(mu[:, :2], lv[:, :2])
        fig.add_trace(go.Scatter(x=ex, y=ey, mode="lines", line={"width": 0.6, "color": "rgba(80,80,80,0.35)"},
                                 hoverinfo="skip", showlegend=False))
    fig.add_trace(go.Scatter(
        x=mu[:, 0], y=mu[:, 1], mode="markers", customdata=np.arange(n),
        marker={**colors, "size": 6},
        hovertemplate="point %{customdata}<br>mean (%{x:.2f}, %{y:.2f})<extra></extra>", showlegend=False))
    fig.update_layout(title=f"fused space ({result.objective}, {len(result.nmi_inputs)} inputs): "
                            f"mean NMI {result.mean_nmi:.3f}, I(X;F) {result.info:.2f} bits",
                      xaxis_title="dim 1", yaxis_title="dim 2" if result.mu.shape[1] > 1 else "point",
                      yaxis={"scaleanchor": "x"} if result.mu.shape[1] > 1 else {}, template="plotly_white")
    return fig


def fusion_agreement_figure(result, labels=None):
    """Bar chart of the fused representation's NMI with each input channel."""
    import plotly.graph_objects as go

    c = len(result.nmi_inputs)
    labels = [f"input {i}" for i in range(c)] if labels is None else [str(x) for x in labels]
    fig = go.Figure(go.Bar(x=labels, y=result.nmi_inputs, customdata=np.stack([result.vi_inputs,
                                                                                result.input_info], 1),
                           hovertemplate="%{x}<br>NMI %{y:.3f}<br>VI %{customdata[0]:.2f} bits"
                                         "<br>I(X;U) %{customdata[1]:.2f} bits<extra></extra>"))
    fig.update_layout(yaxis={"title": "NMI with the fused space", "range": [0, 1.05]}, template="plotly_white")
    return fig


def spaces_figure(result, measure: str = "nmi", labels=None):
    """Model x model matrix of full-space NMI or VI (standard error on hover) beside each model's
    I(X;U) with error bars. `result` is a `vaefrag.spaces.SpacesResult`."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    if measure not in ("nmi", "vi"):
        raise ValueError(f"measure: expected 'nmi' or 'vi', got {measure!r}")
    k = result.n_models
    labels = [f"model {i}" for i in range(k)] if labels is None else [str(x) for x in labels]
    val, err = getattr(result, measure), getattr(result, f"{measure}_err")
    fig = make_subplots(rows=1, cols=2, column_widths=[0.62, 0.38], horizontal_spacing=0.12,
                        subplot_titles=(f"full-space {measure.upper()}", "I(X;U) per model (bits)"))
    fig.add_trace(go.Heatmap(z=val, x=labels, y=labels, customdata=err,
                             colorscale="Viridis" if measure == "nmi" else "Viridis_r",
                             zmin=0, zmax=1 if measure == "nmi" else None,
                             hovertemplate="%{y} / %{x}<br>" + measure.upper() +
                                           " %{z:.3f} ± %{customdata:.3f}<extra></extra>",
                             colorbar={"x": 0.56}), row=1, col=1)
    fig.add_trace(go.Bar(x=labels, y=result.info, error_y={"type": "data", "array": result.info_err},
                         hovertemplate="%{x}<br>%{y:.2f} bits<extra></extra>", showlegend=False), row=1, col=2)
    fig.update_yaxes(autorange="reversed", row=1, col=1)
    fig.update_layout(template="plotly_white",
                      title=f"{result.ensemble_name}: {result.n_samples} Monte Carlo draws over "
                            f"{result.n_points} points")
    return fig


def ring_study_figure(rows, examples=None):
    """Matplotlib figure of the ring study: continuity against ensemble size per objective
    (median and range over repeats, log axes; one cut in one repeat would dominate a mean), and
    optional example fused spaces.

    rows : output of `vaefrag.fusion.ring_study`;  examples : list of (title, FusionResult, angle).
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    examples = list(examples or [])
    fig, axes = plt.subplots(1, 1 + len(examples), figsize=(5 + 3.2 * len(examples), 3.8), squeeze=False)
    ax = axes[0, 0]
    for i, obj in enumerate(sorted({r["objective"] for r in rows})):
        sizes = sorted({r["size"] for r in rows if r["objective"] == obj})
        vals = [[r["continuity"] for r in rows if r["objective"] == obj and r["size"] == s] for s in sizes]
        mean = np.array([np.median(v) for v in vals])
        lo, hi = mean - np.array([np.min(v) for v in vals]), np.array([np.max(v) for v in vals]) - mean
        ax.errorbar(np.array(sizes) * 1.06 ** (i - 1), mean, yerr=[lo, hi], marker="dos"[i % 3], lw=2,
                    capsize=3, label=obj)
    ax.set_xscale("log")
    ax.set_yscale("log")
    sizes = sorted({r["size"] for r in rows})
    from matplotlib.ticker import NullFormatter

    ax.set_xticks(sizes, [str(s) for s in sizes])
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel("ensemble size")
    ax.set_ylabel("continuity (max / 90th pct neighbour D_B)")
    ax.legend(title="objective")
    for ax, (title, res, angle) in zip(axes[0, 1:], examples):
        ax.scatter(res.mu[:, 0], res.mu[:, 1], c=np.mod(angle, 2 * np.pi), cmap="hsv", s=8)
        ax.set_title(title, fontsize=9)
        ax.set_aspect("equal", adjustable="datalim")
        ax.set_xticks([])
        ax.set_yticks([])
    fig.tight_layout()
    return fig


__all__ = ["fused_marker_colors", "fused_space_figure", "fusion_agreement_figure", "spaces_figure",
           "ring_study_figure"]
