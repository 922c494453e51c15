"""The static paper figure of an analysis (matplotlib, no pyplot: safe in servers and threads).

Layout (print size, 7 in wide, 7 pt text):

    [            ] [ reachability profile, hotspots shaded + numbered ] [   ] [ traversal of  ]
    [ factor-NMI ] [                                                  ] [cb ] [ each hotspot's]
    [ profiles   ] [ ordered NMI (or VI) matrix, hotspot blocks boxed ] [   ] [ medoid        ]

`save_figure` writes PDF / SVG with embedded (TrueType) fonts and PNG at 300 dpi.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from vaefrag.figures.palette import HOTSPOT_PALETTE, hotspot_color

__all__ = ["paper_figure", "save_figure", "mosaic", "HOTSPOT_COLORS", "PRINT_RC", "FORMATS"]

#: hotspot colours: the dashboard's (`figures.palette`), so hotspot 3 is the same colour on the page and in print
HOTSPOT_COLORS = list(HOTSPOT_PALETTE)
#: factor profile colours
FACTOR_COLORS = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000", "#999999"]
PRINT_RC = {"font.size": 7, "axes.titlesize": 7, "axes.labelsize": 7, "xtick.labelsize": 6, "ytick.labelsize": 6,
            "legend.fontsize": 6, "axes.linewidth": 0.6, "xtick.major.width": 0.6, "ytick.major.width": 0.6,
            "xtick.major.size": 2.5, "ytick.major.size": 2.5, "lines.linewidth": 0.9,
            "font.family": "sans-serif", "font.sans-serif": ["DejaVu Sans", "Arial", "Helvetica"],
            "pdf.fonttype": 42, "ps.fonttype": 42, "svg.fonttype": "none"}
FORMATS = ("pdf", "svg", "png")


def mosaic(grid, pad: int = 1, fill: int = 255) -> np.ndarray:
    """Tile a traversal grid uint8 [R, V, H, W(, C)] into one image [R*(H+pad)-pad, V*(W+pad)-pad(, C)]."""
    g = np.asarray(grid)
    if g.ndim not in (4, 5):
        raise ValueError(f"grid: expected images [R, V, H, W] or [R, V, H, W, C], got shape {g.shape}")
    r, v, h, w = g.shape[:4]
    out = np.full((r * (h + pad) - pad, v * (w + pad) - pad) + g.shape[4:], fill, dtype=g.dtype)
    for i in range(r):
        for j in range(v):
            out[i * (h + pad):i * (h + pad) + h, j * (w + pad):j * (w + pad) + w] = g[i, j]
    return out


def _runs(positions: np.ndarray) -> list[tuple[int, int]]:
    """Contiguous runs [(start, stop)] of sorted integer positions."""
    if positions.size == 0:
        return []
    breaks = np.flatnonzero(np.diff(positions) > 1)
    starts = np.r_[positions[0], positions[breaks + 1]]
    stops = np.r_[positions[breaks], positions[-1]]
    return list(zip(starts.tolist(), stops.tolist()))


def paper_figure(analysis, traversals=None, measure: str | None = None, *, width: float = 7.0,
                 max_traversals: int = 8, selected=None, hotspot: int | None = None):
    """Build the paper figure of an `analysis.Analysis`.

    Parameters
    ----------
    analysis : the result of `analysis.analyze`.
    traversals : optional dict hotspot id -> grid of the hotspot's medoid (from
        `traversal.hotspot_traversals`): uint8 images [R, V, H, W(, C)], or float [R, V, D] vector
        outputs, drawn as points in the plane along the traversal (D >= 2; light to dark) or as the
        output against the step (D = 1); None leaves out the traversal column.
    measure : "nmi" or "vi" for the matrix; default: the measure the hotspots were found with.
    width : figure width in inches (7 = a two-column page).  max_traversals : hotspots shown at most.
    selected : kept indices of a selection (the dashboard's), marked with ticks above the
        reachability profile and on the matrix diagonal.  hotspot : id of the selected hotspot, whose
        traversal is shown first.

    Returns
    -------
    matplotlib.figure.Figure
    """
    import matplotlib
    from matplotlib.figure import Figure
    from matplotlib.patches import Rectangle

    a = analysis
    measure = measure or a.params.get("measure", "nmi")
    if measure not in ("nmi", "vi"):
        raise ValueError(f"measure: expected 'nmi' or 'vi', got {measure!r}")
    mk = len(a.kept)
    if mk == 0:
        raise ValueError(f"analysis of {a.ensemble_name}: no channel carries information above the "
                         f"threshold ({a.params.get('info_threshold')} bits); nothing to draw")
    order = np.asarray(a.ordering)
    pos = np.empty(mk, dtype=int)
    pos[order] = np.arange(mk)
    mat = (a.nmi if measure == "nmi" else a.vi)[np.ix_(order, order)]
    shown = sorted(a.hotspots, key=lambda h: h.id != hotspot)[:max_traversals]   # selected one first
    sel = np.asarray([] if selected is None else selected, dtype=np.int64).reshape(-1)
    if sel.size and (sel.min() < 0 or sel.max() >= mk):
        raise ValueError(f"selected: expected kept channel indices in [0, {mk}), got {sel.min()}..{sel.max()}")
    trav = {int(k): v for k, v in (traversals or {}).items()}
    trav_list = [(h, trav[h.id]) for h in shown if h.id in trav]

    with matplotlib.rc_context(PRINT_RC):
        has_trav = bool(trav_list)
        height = width * (0.66 if has_trav else 0.8)
        fig = Figure(figsize=(width, height), layout=None)
        cols = [1.1, 4.0, 0.12, 0.55, 2.2] if has_trav else [1.1, 4.0, 0.12]
        gs = fig.add_gridspec(2, len(cols), width_ratios=cols, height_ratios=[1.0, 4.0], left=0.07,
                              right=0.985 if has_trav else 0.93, bottom=0.09, top=0.93, wspace=0.06, hspace=0.05)
        ax_r = fig.add_subplot(gs[0, 1])
        ax_m = fig.add_subplot(gs[1, 1])
        ax_p = fig.add_subplot(gs[1, 0], sharey=ax_m)
        ax_c = fig.add_subplot(gs[1, 2])

        # --- reachability profile (top)
        reach = np.asarray(a.reachability, dtype=float).copy()
        finite = reach[np.isfinite(reach)]
        top = (finite.max() if finite.size else 1.0) * 1.08
        reach[~np.isfinite(reach)] = top
        ax_r.bar(np.arange(mk), reach, width=1.0, color="#4d4d4d", linewidth=0)
        ax_r.set_xlim(-0.5, mk - 0.5)
        ax_r.set_ylim(-top * 0.12 if sel.size else 0, top * 1.18)
        ax_r.set_ylabel("reachability")
        ax_r.yaxis.tick_right()
        ax_r.yaxis.set_label_position("right")
        ax_r.tick_params(axis="x", bottom=False, labelbottom=False)
        for side in ("top", "left"):
            ax_r.spines[side].set_visible(False)

        # --- ordered matrix (centre)
        cmap = "Blues" if measure == "nmi" else "Blues_r"
        vmax = 1.0 if measure == "nmi" else float(np.nanpercentile(mat, 95)) or 1.0
        im = ax_m.imshow(mat, cmap=cmap, vmin=0.0, vmax=vmax, interpolation="nearest", aspect="auto")
        ax_m.set_xlabel(f"channels in OPTICS order ({mk} of {len(a.channel_ids)} above "
                        f"{a.params.get('info_threshold', 0.01):g} bits)")
        ax_m.tick_params(axis="y", left=False, labelleft=False)
        cb = fig.colorbar(im, cax=ax_c)
        cb.set_label("NMI" if measure == "nmi" else "VI (bits)")
        cb.outline.set_linewidth(0.5)

        for h in a.hotspots:
            color = hotspot_color(h.id)
            for s, e in _runs(np.sort(pos[h.members])):
                ax_r.axvspan(s - 0.5, e + 0.5, color=color, alpha=0.35, linewidth=0)
                ax_m.add_patch(Rectangle((s - 0.5, s - 0.5), e - s + 1, e - s + 1, fill=False, edgecolor=color,
                                         linewidth=1.0))
            centre = 0.5 * (pos[h.members].min() + pos[h.members].max())
            ax_r.text(centre, top * 1.04, str(h.id + 1), ha="center", va="bottom", fontsize=6.5,
                      fontweight="bold", color=color)

        if sel.size:                         # the selection: ticks above the profile, dots on the diagonal
            xs = np.sort(pos[sel])          # under the bars: the hotspot numbers stay free above them
            ax_r.plot(xs, np.full(xs.size, -top * 0.06), "|", color="black", markersize=3, markeredgewidth=0.6)
            ax_m.plot(xs, xs, "o", color="black", markersize=1.2, markeredgewidth=0)
            what = f"selection: {sel.size} channel{'s' if sel.size != 1 else ''}"
            ax_r.set_title(what + ("" if hotspot is None else f" (hotspot {hotspot + 1})"), loc="left",
                           fontsize=6.5, pad=2)

        # --- factor-NMI profiles (left), rows aligned with the matrix
        if a.factor_nmi is not None and len(a.factor_names or []) > 0:
            prof = np.asarray(a.factor_nmi)[order]
            edges = np.arange(mk + 1) - 0.5
            for j, name in enumerate(a.factor_names):
                ax_p.stairs(np.nan_to_num(prof[:, j]), edges, orientation="horizontal", baseline=None,
                            color=FACTOR_COLORS[j % len(FACTOR_COLORS)], label=name, linewidth=0.8)
            ax_p.set_xlim(0, 1.0)
            ax_p.set_xticks([0.5, 1.0])          # no 0 tick: it would touch the matrix's first tick
            ax_p.set_xlabel("NMI with factor")
            ax_leg = fig.add_subplot(gs[0, 0])
            ax_leg.axis("off")
            handles, labels = ax_p.get_legend_handles_labels()
            ax_leg.legend(handles, labels, loc="center left", bbox_to_anchor=(-0.1, 0.45), frameon=False,
                          ncol=1 if len(labels) <= 6 else 2, handlelength=1.2, columnspacing=0.8,
                          borderaxespad=0.0, labelspacing=0.15, title="factor", title_fontsize=6,
                          alignment="left")
        else:
            ax_p.stairs(np.asarray(a.info)[np.asarray(a.kept)][order], np.arange(mk + 1) - 0.5,
                        orientation="horizontal", baseline=None, color="black", linewidth=0.8)
            ax_p.set_xlabel("I(X;U) (bits)")
        ax_p.set_ylim(mk - 0.5, -0.5)
        ax_p.set_ylabel("channels in OPTICS order")
        ax_p.invert_xaxis()
        for side in ("top", "left"):
            ax_p.spines[side].set_visible(False)
        ax_p.tick_params(axis="y", left=False, right=False, labelleft=False)

        # --- traversals (right)
        if has_trav:
            sub = gs[:, 4].subgridspec(max(len(trav_list), 3), 1, hspace=0.55)   # few hotspots: top-aligned
            for i, (h, grid) in enumerate(trav_list):
                ax = fig.add_subplot(sub[i])
                g = np.asarray(grid)
                if g.ndim == 3:                     # vector outputs [R, V, D]: points along the traversal
                    _draw_vector_traversal(ax, g, hotspot_color(h.id))
                else:
                    img = mosaic(g)
                    ax.imshow(img, cmap="gray" if img.ndim == 2 else None, vmin=0, vmax=255, interpolation="nearest")
                m, c = a.channel_ids[a.kept[h.medoid]]
                factor = ""
                if h.best_factor is not None and h.best_factor < len(a.factor_names):
                    factor = f"  ({a.factor_names[h.best_factor]}, NMI {h.best_factor_nmi:.2f})"
                ax.set_title(f"hotspot {h.id + 1}: m{m}:z{c}{factor}", loc="left", pad=1.5, fontsize=6,
                             color="black")
                ax.set_xticks([])
                ax.set_yticks([])
                for spine in ax.spines.values():
                    spine.set_edgecolor(hotspot_color(h.id))
                    spine.set_linewidth(1.2)
        n_h = len(a.hotspots)
        fig.suptitle(f"{a.ensemble_name}: {n_h} hotspot{'' if n_h == 1 else 's'} among {mk} informative channels "
                     f"of {a.n_models} models", x=0.07, ha="left", y=0.985, fontsize=7.5)
    return fig


def _draw_vector_traversal(ax, grid: np.ndarray, color: str) -> None:
    """Vector outputs [R, V, D] on ``ax``: each base input's path through the first two output
    coordinates (D >= 2, equal aspect) or the output against the step (D = 1); markers light to dark
    along the traversal, the last one a triangle."""
    r, v, d = grid.shape
    shade = np.linspace(0.25, 1.0, v)
    for i in range(r):
        x, y = (grid[i, :, 0], grid[i, :, 1]) if d >= 2 else (np.arange(v), grid[i, :, 0])
        ax.plot(x, y, "-", color=color, linewidth=0.6, alpha=0.8)
        ax.scatter(x[:-1], y[:-1], c=shade[:-1], cmap="Greys", vmin=0, vmax=1, s=5, linewidths=0)
        ax.scatter(x[-1:], y[-1:], c="black", marker="^", s=9, linewidths=0)
    if d >= 2:
        ax.set_aspect("equal", adjustable="datalim")
    ax.margins(0.08)


def save_figure(fig, path, fmt: str | None = None, *, dpi: int = 300) -> Path:
    """Write a figure as PDF / SVG (vector, TrueType fonts embedded / text kept as text) or PNG.

    ``fmt`` defaults to the file suffix. Returns the path written.
    """
    import matplotlib

    path = Path(path)
    fmt = (fmt or path.suffix.lstrip(".")).lower()
    if fmt not in FORMATS:
        raise ValueError(f"format: expected one of {FORMATS}, got {fmt!r} (file {path})")
    path.parent.mkdir(parents=True, exist_ok=True)
    with matplotlib.rc_context(PRINT_RC):
        fig.savefig(path, format=fmt, dpi=dpi, metadata={"Creator": "vaefrag"} if fmt != "png" else None)
    return path
