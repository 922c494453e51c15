"""Figures of `tracking.Tracking`: a clustering-tree-like picture of hotspots along a sweep or training.

Levels (swept values, checkpoints) run along x; each hotspot is a node sized by its channels and
coloured by its best factor; links between hotspots of neighbouring levels are drawn with width and
opacity by their mean cross NMI. ``tree_layout`` places the nodes (shared by the matplotlib figure
of the CLI and the plotly figure of the dashboard).
"""
from __future__ import annotations

import numpy as np

#: colours of best factors (matplotlib's tab10), grey for none
FACTOR_COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
                 "#bcbd22", "#17becf")
NO_FACTOR = "#b0b0b0"


def factor_order(tracking, factor_names=None) -> list[str]:
    """Factor names in colour order: ``factor_names`` first, then any other best factor met."""
    names = list(factor_names or [])
    for lv in tracking.levels:
        for f in lv.best_factor:
            if f and f not in names:
                names.append(f)
    return names


def factor_color(name, names) -> str:
    return NO_FACTOR if not name else FACTOR_COLORS[names.index(name) % len(FACTOR_COLORS)]


def tree_layout(tracking, factor_names=None) -> list[np.ndarray]:
    """Node heights per level: V arrays [H_i] in [0, 1]; a level's nodes are spread evenly, ordered
    by best factor at the first level, then by the mean height of the nodes they link from (the
    linked parent's barycentre; unlinked ones by factor), which keeps continued fragments level."""
    names = factor_order(tracking, factor_names)
    heights = []
    for i, lv in enumerate(tracking.levels):
        h = lv.n_hotspots
        fkey = np.array([names.index(f) if f else len(names) for f in lv.best_factor], dtype=float)
        if i == 0 or not h:
            key = fkey
        else:
            prev = heights[-1]
            w = np.nan_to_num(tracking.weights[i - 1], nan=0.0)
            w = np.where(w >= tracking.min_link, w, 0.0)
            key = np.empty(h)
            for b in range(h):
                key[b] = (w[:, b] @ prev) / w[:, b].sum() if w[:, b].sum() > 0 else 1.0 + fkey[b] / (len(names) + 1)
        order = np.lexsort((fkey, key))
        pos = np.empty(h)
        pos[order] = (np.arange(h) + 0.5) / max(h, 1)
        heights.append(pos)
    return heights


def _node_text(lv, b: int) -> str:
    f = lv.best_factor[b] or "-"
    return f"{b + 1}: {f} ({lv.sizes[b]})"


def tracking_figure(tracking, factor_names=None, title: str = "", x_label: str = "level"):
    """Matplotlib figure: the tree (left) and per-level counts (right). Returns the Figure."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = factor_order(tracking, factor_names)
    heights = tree_layout(tracking, factor_names)
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(11, 5.2), gridspec_kw={"width_ratios": [2.2, 1]})
    levels = tracking.levels
    max_size = max([int(lv.sizes.max()) for lv in levels if lv.n_hotspots] or [1])
    for (i, a, b, nmi) in tracking.links:
        ax.plot([i, i + 1], [heights[i][a], heights[i + 1][b]], color="#333333", lw=0.5 + 4 * nmi,
                alpha=0.25 + 0.7 * nmi, zorder=1, solid_capstyle="round")
        ax.text(i + 0.5, (heights[i][a] + heights[i + 1][b]) / 2, f"{nmi:.2f}", fontsize=6, ha="center",
                va="center", color="#333333", zorder=3,
                bbox={"boxstyle": "round,pad=0.1", "fc": "white", "ec": "none", "alpha": 0.7})
    for i, lv in enumerate(levels):
        for b in range(lv.n_hotspots):
            ax.scatter([i], [heights[i][b]], s=60 + 900 * lv.sizes[b] / max_size, zorder=2,
                       color=factor_color(lv.best_factor[b], names), edgecolor="black", linewidth=0.6)
            ax.text(i + 0.09, heights[i][b] + 0.035, _node_text(lv, b), fontsize=7, zorder=4)
        if not lv.n_hotspots:
            ax.text(i, 0.5, "no hotspots", fontsize=7, ha="center", color="#777777")
    ax.set_xticks(range(len(levels)), [lv.label for lv in levels])
    ax.set_xlim(-0.4, len(levels) - 0.4)
    ax.set_ylim(-0.05, 1.08)
    ax.set_yticks([])
    ax.set_xlabel(x_label)
    for side in ("top", "right", "left"):
        ax.spines[side].set_visible(False)
    handles = [plt.Line2D([], [], marker="o", ls="", color=factor_color(n, names), label=n) for n in names]
    if handles:
        ax.legend(handles=handles, title="best factor", fontsize=7, title_fontsize=7, loc="upper left",
                  bbox_to_anchor=(0.0, -0.1), ncol=min(len(handles), 6), frameon=False)
    ax.set_title(f"hotspots (size = channels) linked by mean cross NMI >= {tracking.min_link:g}", fontsize=9)
    xs = np.arange(len(levels))
    ax2.plot(xs, [lv.n_hotspots for lv in levels], "o-", color="#1f77b4", label="hotspots")
    ax2.set_ylabel("hotspots", color="#1f77b4")
    ax2.set_xticks(xs, [lv.label for lv in levels], rotation=30, fontsize=7)
    ax2.set_ylim(bottom=0)
    twin = ax2.twinx()
    twin.plot(xs, [lv.fraction_in_hotspots for lv in levels], "s--", color="#d62728",
              label="informative channels in hotspots")
    twin.plot(xs, [lv.n_models.mean() / lv.models_total if lv.n_hotspots and lv.models_total else np.nan
                   for lv in levels], "^:", color="#2ca02c", label="models per hotspot / models (mean)")
    twin.set_ylim(0, 1.05)
    twin.set_ylabel("fraction")
    lines = ax2.get_lines() + twin.get_lines()
    ax2.legend(lines, [ln.get_label() for ln in lines], fontsize=7, loc="lower left")
    ax2.set_title("per level", fontsize=9)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def tracking_plotly(tracking, factor_names=None, title: str = "", x_label: str = "level", height: int = 460):
    """Plotly figure of the tree; each node's ``customdata`` is [level index, hotspot index (0-based)]."""
    import plotly.graph_objects as go

    names = factor_order(tracking, factor_names)
    heights = tree_layout(tracking, factor_names)
    levels = tracking.levels
    fig = go.Figure()
    # a link's line ends at the centres of its two nodes: it takes no hover (plotly would give a click
    # on a node's centre to the line); its text hovers on an invisible marker at its middle
    mid_x, mid_y, mid_text = [], [], []
    for (i, a, b, nmi) in tracking.links:
        fig.add_trace(go.Scatter(x=[i, i + 1], y=[heights[i][a], heights[i + 1][b]], mode="lines",
                                 line={"width": 0.5 + 6 * nmi, "color": f"rgba(50,50,50,{0.2 + 0.7 * nmi:.2f})"},
                                 hoverinfo="skip", showlegend=False))
        mid_x.append(i + 0.5)
        mid_y.append(float(heights[i][a] + heights[i + 1][b]) / 2)
        mid_text.append(f"{levels[i].label} #{a + 1} -> {levels[i + 1].label} #{b + 1}: mean NMI {nmi:.3f}")
    if mid_x:
        fig.add_trace(go.Scatter(x=mid_x, y=mid_y, mode="markers", name="links", showlegend=False,
                                 marker={"size": 10, "color": "rgba(0,0,0,0)"}, hovertext=mid_text,
                                 hoverinfo="text"))
    max_size = max([int(lv.sizes.max()) for lv in levels if lv.n_hotspots] or [1])
    for name in names + [None]:
        xs, ys, sizes, custom, hover = [], [], [], [], []
        for i, lv in enumerate(levels):
            for b in range(lv.n_hotspots):
                if (lv.best_factor[b] or None) != name:
                    continue
                xs.append(i)
                ys.append(float(heights[i][b]))
                sizes.append(10 + 40 * lv.sizes[b] / max_size)
                custom.append([i, b])
                hover.append(f"{lv.label}, hotspot {b + 1}<br>{lv.sizes[b]} channels in {lv.n_models[b]} models"
                             f"<br>best factor {lv.best_factor[b] or '-'} (NMI {lv.best_factor_nmi[b]:.2f})"
                             f"<br>mean info {lv.mean_info[b]:.2f} bits, mean NMI {lv.mean_nmi[b]:.2f}")
        if not xs:
            continue
        fig.add_trace(go.Scatter(x=xs, y=ys, mode="markers+text", name=name or "no factor",
                                 marker={"size": sizes, "color": factor_color(name, names),
                                         "line": {"width": 1, "color": "black"}},
                                 text=[str(c[1] + 1) for c in custom], textposition="middle center",
                                 customdata=custom, hovertext=hover, hoverinfo="text"))
    fig.update_xaxes(tickvals=list(range(len(levels))), ticktext=[lv.label for lv in levels],
                     title={"text": x_label}, range=[-0.5, len(levels) - 0.5])
    fig.update_yaxes(visible=False, range=[-0.05, 1.05])
    fig.update_layout(height=height, template="plotly_white", clickmode="event",
                      legend={"title": {"text": "best factor"}},
                      title={"text": title or f"hotspots linked by mean cross NMI >= {tracking.min_link:g} "
                                              "(click a hotspot to open it)", "font": {"size": 13}})
    return fig


def dynamics_figure(dyn, title: str = ""):
    """Matplotlib figure of `dynamics.Dynamics`: mean full-space NMI and VI between repeat runs
    against the training step (bars: spread over pairs; caps: Monte Carlo error of the mean), with
    the hotspot count when tracked. Returns the Figure."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps = np.asarray(dyn.steps)
    fig, axes = plt.subplots(1, 3 if dyn.tracking is not None else 2, figsize=(11, 3.6))
    for ax, mean, sd, mc, name, color in ((axes[0], dyn.nmi_mean, dyn.nmi_sd, dyn.nmi_mc_err, "NMI", "#1f77b4"),
                                          (axes[1], dyn.vi_mean, dyn.vi_sd, dyn.vi_mc_err, "VI (bits)", "#d62728")):
        ax.fill_between(steps, mean - sd, mean + sd, color=color, alpha=0.15, lw=0, label="spread over pairs (sd)")
        ax.errorbar(steps, mean, yerr=2 * mc, fmt="o-", color=color, capsize=3, label="mean, 2 x MC error")
        ax.set_xlabel("training step")
        ax.set_xticks(steps, [str(int(v)) for v in steps], fontsize=7)
        ax.set_ylabel(f"full-space {name} between runs")
        ax.legend(fontsize=7)
    axes[0].set_ylim(0, 1.05)
    if dyn.tracking is not None:
        lv = dyn.tracking.levels
        axes[2].plot(steps, [v.n_hotspots for v in lv], "o-", color="#2ca02c", label="hotspots")
        axes[2].set_xlabel("training step")
        axes[2].set_xticks(steps, [str(int(v)) for v in steps], fontsize=7)
        axes[2].set_ylabel("channel hotspots", color="#2ca02c")
        axes[2].set_ylim(bottom=0)
        twin = axes[2].twinx()
        twin.plot(steps, [v.fraction_in_hotspots for v in lv], "s--", color="#7f7f7f",
                  label="informative channels in hotspots")
        twin.set_ylim(0, 1.05)
        twin.set_ylabel("fraction")
        lines = axes[2].get_lines() + twin.get_lines()
        axes[2].legend(lines, [ln.get_label() for ln in lines], fontsize=6, loc="lower right")
    fig.suptitle(title or f"{dyn.ensemble_name}: repeat runs over training ({dyn.n_samples} Monte Carlo draws)",
                 fontsize=10)
    fig.tight_layout()
    return fig


def dynamics_plotly(dyn, height: int = 440):
    """Plotly timeline of `dynamics.Dynamics`: mean full-space NMI and VI between repeat runs per
    checkpoint (error bars: 2 x Monte Carlo error of the mean; hover: the spread over pairs), and
    the number of channel hotspots when tracked."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    tracked = dyn.tracking is not None
    cols = 3 if tracked else 2
    titles = ["full-space NMI between runs", "full-space VI between runs (bits)"] + (["channel hotspots"] if tracked else [])
    fig = make_subplots(rows=1, cols=cols, subplot_titles=titles)
    steps = [int(s) for s in dyn.steps]
    for col, (mean, sd, mc, color) in enumerate(((dyn.nmi_mean, dyn.nmi_sd, dyn.nmi_mc_err, "#1f77b4"),
                                                 (dyn.vi_mean, dyn.vi_sd, dyn.vi_mc_err, "#d62728")), start=1):
        fig.add_trace(go.Scatter(x=steps, y=list(map(float, mean)), mode="lines+markers", line={"color": color},
                                 error_y={"type": "data", "array": [2 * float(v) for v in mc], "visible": True},
                                 customdata=np.c_[sd, mc], showlegend=False,
                                 hovertemplate="step %{x}<br>mean %{y:.3f}<br>spread over pairs (sd) "
                                               "%{customdata[0]:.3f}<br>MC error %{customdata[1]:.3f}<extra></extra>"),
                      row=1, col=col)
    if tracked:
        lv = dyn.tracking.levels
        fig.add_trace(go.Scatter(x=steps, y=[v.n_hotspots for v in lv], mode="lines+markers",
                                 line={"color": "#2ca02c"}, showlegend=False,
                                 customdata=[[v.fraction_in_hotspots, v.in_hotspots] for v in lv],
                                 hovertemplate="step %{x}<br>%{y} hotspots<br>%{customdata[1]} channels in them "
                                               "(%{customdata[0]:.0%} of the informative)<extra></extra>"),
                      row=1, col=3)
        top = max([v.n_hotspots for v in lv] or [1])
        fig.update_yaxes(dtick=max(1, -(-top // 6)), rangemode="tozero", row=1, col=3)    # counts: whole ticks
    fig.update_xaxes(title_text="training step", tickvals=steps)
    fig.update_yaxes(range=[0, 1.05], row=1, col=1)
    fig.update_layout(height=height, template="plotly_white",
                      title={"text": f"{dyn.ensemble_name}: repeat runs over training ({dyn.n_samples} Monte Carlo "
                                     "draws per estimate)", "font": {"size": 13}})
    return fig
