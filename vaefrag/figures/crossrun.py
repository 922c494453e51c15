"""Plotly figure of `crossrun.EnsembleComparison`: which hotspots two ensembles share."""
from __future__ import annotations

import numpy as np
import plotly.graph_objects as go


def _labels(matches, letter: str, other: str) -> list[str]:
    return [f"{letter}{m.hotspot + 1} {m.best_factor or ''} (in {m.models_matched}/{m.n_models_other} of {other})"
            .replace("  ", " ") for m in matches]


def ensemble_match_figure(res, match_nmi: float = 0.5, height: int = 440) -> go.Figure:
    """Mean NMI between the hotspots of A (rows) and of B (columns), each cell printed.

    Row and column labels name the hotspot, its best factor and in how many models of the other
    ensemble a channel reaches NMI >= ``match_nmi`` with its medoid. res: `EnsembleComparison`.
    """
    z = np.asarray(res.hotspot_nmi, dtype=float)
    if z.size == 0:
        fig = go.Figure()
        missing = res.name_a if not res.matches_a else res.name_b
        fig.add_annotation(text=f"{missing} has no hotspots to compare", showarrow=False, x=0.5, y=0.5,
                           xref="paper", yref="paper")
        fig.update_layout(height=height, template="plotly_white", xaxis_visible=False, yaxis_visible=False)
        return fig
    rows = _labels(res.matches_a, "A", "B")
    cols = _labels(res.matches_b, "B", "A")
    text = np.where(np.isfinite(z), np.char.mod("%.2f", np.nan_to_num(z)), "")
    fig = go.Figure(go.Heatmap(z=np.round(z, 3), x=cols, y=rows, colorscale="Blues", zmin=0.0, zmax=1.0,
                               text=text, texttemplate="%{text}", colorbar={"title": {"text": "mean NMI"}},
                               hovertemplate="%{y}<br>%{x}<br>mean NMI %{z:.3f}<extra></extra>"))
    fig.update_yaxes(autorange="reversed", title={"text": f"A = {res.name_a}"}, automargin=True)
    fig.update_xaxes(title={"text": f"B = {res.name_b}"}, automargin=True)
    fig.update_layout(height=height, template="plotly_white",
                      title={"text": f"hotspots shared by two ensembles (a hotspot counts as found in a model "
                                     f"with a channel of NMI >= {match_nmi:g} to its medoid)",
                             "font": {"size": 13}})
    return fig
