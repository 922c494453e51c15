"""Interactive plotly views of an `analysis.Analysis` (no Dash here: they work in a notebook too).

Every point of a view carries the kept-channel index (an index into ``analysis.kept``) in its
``customdata`` (first column), so a click or a lasso identifies channels without coordinates.
Matrix axes are categorical channel labels ``"m<model>:z<latent>"``, which identify cells too.

Builders
--------
matrix_figure : reachability profile (hotspots shaded and numbered) above the OPTICS-ordered
    NMI or VI matrix, with the factor-NMI profiles beside it.
map_figure : the 2-D channel map (UMAP or MDS) coloured by hotspot, model, information or a factor.
hotspot_table_rows / model_table_rows / channel_summary : plain rows for tables and hover text.
png_data_uri / traversal_image : uint8 images -> small PNG data URIs.
"""
from __future__ import annotations

import base64
import io

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from vaefrag.figures.palette import HOTSPOT_PALETTE, NOISE_COLOR, hotspot_color, hotspot_name, model_colors

__all__ = ["PALETTE", "NOISE_COLOR", "hotspot_color", "channel_label", "hotspot_spans", "best_factors",
           "matrix_figure", "matrix_selection", "map_figure", "map_groups", "map_selection", "hotspot_table_rows",
           "model_table_rows", "png_data_uri", "traversal_image", "empty_figure", "hotspot_name", "PRINT_SIZE"]

#: the one palette (`figures.palette`): the same hotspot colours in the paper figure and exports
PALETTE = list(HOTSPOT_PALETTE)
SELECT_COLOR = "#111111"
FONT = dict(family="Inter, 'Helvetica Neue', Arial, sans-serif", size=12, color="#1f2933")
#: export size of the plotly camera button (pixels at scale 1 ~ a two-column paper figure)
PRINT_SIZE = {"matrix": (900, 760), "map": (600, 520)}


def channel_label(model: int, latent: int) -> str:
    """Display name of a channel, e.g. ``m3:z2``."""
    return f"m{int(model)}:z{int(latent)}"


def _kept_ids(analysis) -> np.ndarray:
    """[Mk, 2] (model, latent) of the kept channels."""
    return np.asarray(analysis.channel_ids)[np.asarray(analysis.kept, dtype=np.int64)]


def hotspot_spans(analysis) -> list[tuple[int, int, int]]:
    """(hotspot id, first, last) positions along the OPTICS ordering, one per hotspot."""
    pos = np.empty(len(analysis.ordering), dtype=np.int64)
    pos[np.asarray(analysis.ordering, dtype=np.int64)] = np.arange(len(analysis.ordering))
    spans = []
    for h in analysis.hotspots:
        p = pos[np.asarray(h.members, dtype=np.int64)]
        if p.size:
            spans.append((int(h.id), int(p.min()), int(p.max())))
    return spans


def best_factors(analysis) -> tuple[list[str], np.ndarray]:
    """Per kept channel: name of the factor with the highest NMI ('' without factors) and that NMI [Mk]."""
    mk = len(analysis.kept)
    fn = analysis.factor_nmi
    if fn is None or np.size(fn) == 0:
        return [""] * mk, np.full(mk, np.nan)
    fn = np.nan_to_num(np.asarray(fn, dtype=np.float64), nan=-1.0)
    j = fn.argmax(1)
    names = list(analysis.factor_names) or [f"factor {i}" for i in range(fn.shape[1])]
    return [names[i] if i < len(names) else f"factor {i}" for i in j], fn[np.arange(mk), j]


def empty_figure(message: str = "", height: int = 300) -> go.Figure:
    """A blank figure with a centred message (while loading, or for an empty selection).

    No template (plain white): a template would add ~6 KB to every placeholder the page sends and
    cost plotly ~15 ms of copying per figure.
    """
    layout = dict(template="none", height=height, margin=dict(l=10, r=10, t=10, b=10), font=FONT,
                  paper_bgcolor="white", plot_bgcolor="white", xaxis=dict(visible=False), yaxis=dict(visible=False))
    if message:
        layout["annotations"] = [dict(text=message, showarrow=False, x=0.5, y=0.5, xref="paper", yref="paper",
                                      font=dict(size=14, color="#6b7280"))]
    return go.Figure(layout=layout)


def _selected_mask(mk: int, selected) -> np.ndarray | None:
    if selected is None:
        return None
    sel = np.asarray(list(selected), dtype=np.int64)
    sel = sel[(sel >= 0) & (sel < mk)]
    mask = np.zeros(mk, dtype=bool)
    mask[sel] = True
    return mask


def _runs(positions) -> list[tuple[int, int]]:
    """Contiguous runs (first, last) of sorted integer positions."""
    runs: list[tuple[int, int]] = []
    for p in positions:
        if runs and p == runs[-1][1] + 1:
            runs[-1] = (runs[-1][0], int(p))
        else:
            runs.append((int(p), int(p)))
    return runs


#: the matrix is drawn with at most this many rows and columns; larger ones are block means
MAX_MATRIX_SIDE = 480


def pooled_matrix(mat: np.ndarray, side: int = MAX_MATRIX_SIDE) -> tuple[np.ndarray, np.ndarray]:
    """Block means of an ordered square matrix so that at most `side` rows and columns remain.

    mat [Mk, Mk] -> (pooled [P, P], centres [P]): P = min(Mk, side) runs of consecutive rows, as
    `np.array_split` cuts them; centres are each run's middle index. Mk <= side: unchanged.
    """
    mk = mat.shape[0]
    if mk <= side:
        return mat, np.arange(mk)
    sizes = np.array([len(b) for b in np.array_split(np.arange(mk), side)])
    starts = np.r_[0, np.cumsum(sizes)[:-1]]
    sums = np.add.reduceat(np.add.reduceat(mat, starts, axis=0), starts, axis=1)
    return sums / np.outer(sizes, sizes), starts + (sizes - 1) // 2


def matrix_selection(analysis, selected=None, hotspot: int | None = None, channel: int | None = None) -> list[dict]:
    """The selection-dependent part of `matrix_figure`: its ``layout.shapes``.

    Hotspot outlines on the matrix diagonal (the selected hotspot thick and dark), for the
    selected channels a dark overlay on each contiguous run of them in the reachability profile,
    and for one selected ``channel`` (kept index) a dark outline of its row and its column in the
    matrix, so a single channel is found at a glance.
    Only shapes change with the selection, so a browser redraws
    nothing else (plotly redraws shapes alone) and a click stays fast for big matrices.
    """
    order = np.asarray(analysis.ordering, dtype=np.int64)
    mk = order.size
    mask = _selected_mask(mk, selected)
    has_f = analysis.factor_nmi is not None and np.size(analysis.factor_nmi) > 0
    xref, yref = ("x3", "y3") if has_f else ("x2", "y2")
    shapes = []
    for hid, a, b in hotspot_spans(analysis):
        sel = hotspot is not None and hid == hotspot
        shapes.append(dict(type="rect", x0=a - 0.5, x1=b + 0.5, y0=a - 0.5, y1=b + 0.5, xref=xref, yref=yref,
                           line=dict(color=SELECT_COLOR if sel else hotspot_color(hid), width=3 if sel else 1.2),
                           fillcolor="rgba(0,0,0,0)"))
    if mask is not None:
        for a, b in _runs(np.flatnonzero(mask[order])):
            shapes.append(dict(type="rect", x0=a - 0.5, x1=b + 0.5, y0=0, y1=1, xref="x", yref="y domain",
                               line=dict(width=0), fillcolor="rgba(17,17,17,0.18)", layer="above"))
    if channel is not None and 0 <= int(channel) < mk:
        p = int(np.flatnonzero(order == int(channel))[0])
        for x0, x1, y0, y1 in ((p - 0.5, p + 0.5, -0.5, mk - 0.5), (-0.5, mk - 0.5, p - 0.5, p + 0.5)):
            shapes.append(dict(type="rect", x0=x0, x1=x1, y0=y0, y1=y1, xref=xref, yref=yref, name="channel cue",
                               line=dict(color=SELECT_COLOR, width=1.5), fillcolor="rgba(17,17,17,0.10)",
                               layer="above"))
    return shapes


def matrix_figure(analysis, measure: str = "nmi", selected=None, hotspot: int | None = None,
                  height: int = 640, channel: int | None = None) -> go.Figure:
    """Reachability profile, ordered similarity matrix and factor-NMI profiles (the paper's figure).

    Parameters
    ----------
    analysis : `Analysis` (ordering, reachability, labels, hotspots, nmi/vi [Mk, Mk], factor_nmi [Mk, F]).
    measure : "nmi" (dark = similar) or "vi" (bits; dark = similar, i.e. small VI).
    selected : kept indices to highlight (None: no selection).  hotspot : id to outline on the matrix.
    channel : one selected kept index, whose row and column are outlined.

    Returns
    -------
    go.Figure with traces "reachability" (bars, customdata [kept index, hotspot, model, latent,
    info, best factor]), "hotspot band" (full-height bars over each hotspot, same customdata with
    the band's hotspot), "matrix" and "factor NMI" (without factors: absent); the matrix axes are
    channel labels in OPTICS order; the selection is drawn as shapes (`matrix_selection`).
    Beyond `MAX_MATRIX_SIDE` kept channels the matrix shows block means (`pooled_matrix`) and all
    axes are OPTICS positions 0..Mk-1 instead of labels; the profiles keep every channel.
    """
    if measure not in ("nmi", "vi"):
        raise ValueError(f"measure: expected 'nmi' or 'vi', got {measure!r}")
    order = np.asarray(analysis.ordering, dtype=np.int64)
    mk = order.size
    if mk == 0:
        return empty_figure("no informative channels above the threshold", height)
    ids = _kept_ids(analysis)[order]
    labels_txt = [channel_label(m, z) for m, z in ids]
    hs_labels = np.asarray(analysis.labels, dtype=np.int64)[order]
    info = np.asarray(analysis.info, dtype=np.float64)[np.asarray(analysis.kept)][order]
    reach = np.asarray(analysis.reachability, dtype=np.float64)
    finite = reach[np.isfinite(reach)]
    cap = float(finite.max()) * 1.05 if finite.size else 1.0
    reach = np.where(np.isfinite(reach), reach, cap)
    has_f = analysis.factor_nmi is not None and np.size(analysis.factor_nmi) > 0
    fig = make_subplots(rows=2, cols=2 if has_f else 1, shared_xaxes="columns", shared_yaxes="rows",
                        row_heights=[0.2, 0.8], column_widths=[0.84, 0.16] if has_f else None,
                        horizontal_spacing=0.015, vertical_spacing=0.02)
    mat = np.asarray(analysis.nmi if measure == "nmi" else analysis.vi, dtype=np.float64)[np.ix_(order, order)]
    if measure == "vi":
        mat = np.maximum(mat, 0.0)
    # a big matrix is drawn as block means on numeric axes (OPTICS positions 0..Mk-1): a category
    # axis would draw each block one category wide and leave gaps
    mat, centres = pooled_matrix(mat, MAX_MATRIX_SIDE)
    pooled = centres.size < mk
    xs = np.arange(mk) if pooled else labels_txt
    fnames, fvals = best_factors(analysis)
    custom = np.c_[order, hs_labels, ids, np.round(info, 3)].astype(object)
    custom = np.c_[custom, np.asarray(fnames, dtype=object)[order]]
    colors = [hotspot_color(h) for h in hs_labels]
    bar = go.Bar(x=xs, y=np.round(reach, 4), marker=dict(color=colors, line=dict(width=0)),
                 customdata=custom, name="reachability", showlegend=False,
                 hovertext=[hotspot_name(h) for h in hs_labels],
                 hovertemplate="model %{customdata[2]}, latent %{customdata[3]}<br>info %{customdata[4]} bits"
                               "<br>best factor %{customdata[5]}<br>%{hovertext}"
                               "<br>reachability %{y:.3f}<extra></extra>")
    fig.add_trace(bar, row=1, col=1)
    # hotspot bands: full-height translucent bars over each hotspot's span (click one to select it)
    spans = hotspot_spans(analysis)
    band_pos = [p for _, a, b in spans for p in range(a, b + 1)]
    band_hs = [h for h, a, b in spans for _ in range(a, b + 1)]
    band_cd = custom[band_pos].copy() if band_pos else np.zeros((0, custom.shape[1]), dtype=object)
    if band_pos:
        band_cd[:, 1] = band_hs
    fig.add_trace(go.Bar(x=[xs[p] for p in band_pos], y=[cap] * len(band_pos), customdata=band_cd,
                         marker=dict(color=[hotspot_color(h) for h in band_hs], opacity=0.16, line=dict(width=0)),
                         name="hotspot band", showlegend=False, hovertext=[hotspot_name(h) for h in band_hs],
                         hovertemplate="%{hovertext} (click to select)<extra></extra>"), row=1, col=1)
    mat = np.round(mat, 3).astype(np.float32)
    name = "NMI" if measure == "nmi" else "VI (bits)"
    axis = centres if pooled else labels_txt
    hover = (f"blocks of ~{mk / centres.size:.1f} channels at OPTICS positions %{{y}} vs %{{x}}<br>mean "
             if pooled else "%{y} vs %{x}<br>")
    fig.add_trace(go.Heatmap(z=mat, x=axis, y=axis, name="matrix", colorscale="Blues" if measure == "nmi" else "Blues_r",
                             zmin=0.0, zmax=1.0 if measure == "nmi" else None, showscale=True,
                             colorbar=dict(title=dict(text=name, side="right"), thickness=10,
                                           len=0.36 if has_f else 0.55, y=0.62 if has_f else 0.38,
                                           x=1.0 if not has_f else 1.02),
                             hovertemplate=hover + name + " %{z:.3f}<extra></extra>"),
                  row=2, col=1)
    if has_f:
        fn = np.round(np.asarray(analysis.factor_nmi, dtype=np.float64)[order], 3).astype(np.float32)
        fl = list(analysis.factor_names) or [f"factor {j}" for j in range(fn.shape[1])]
        fig.add_trace(go.Heatmap(z=fn, x=fl, y=xs, name="factor NMI", colorscale="Oranges", zmin=0.0, zmax=1.0,
                                 showscale=True, colorbar=dict(title=dict(text="NMI with factor", side="right"),
                                                               thickness=10, len=0.36, y=0.0, yanchor="bottom",
                                                               x=1.02),
                                 hovertemplate=("position %{y}" if pooled else "%{y}")
                                 + ": NMI with %{x} %{z:.3f}<extra></extra>"),
                      row=2, col=2)
        fig.update_xaxes(side="bottom", tickangle=-60, row=2, col=2)
    # hotspot numbers above the profile, blocks outlined on the matrix diagonal
    # the numbers are buttons: a click selects the hotspot (dcc.Graph clickAnnotationData; `name`
    # carries the id)
    for hid, a, b in spans:
        c = hotspot_color(hid)
        fig.add_annotation(x=(a + b) / 2, y=1.0, yref="y domain", xref="x", text=f"<b>{hid + 1}</b>", showarrow=False,
                           font=dict(color=c, size=13), yanchor="bottom", row=1, col=1, captureevents=True,
                           name=f"hotspot:{hid}", hovertext=f"{hotspot_name(hid)}: click to select",
                           bgcolor="rgba(255,255,255,0.85)", borderpad=1)
    for shape in matrix_selection(analysis, selected, hotspot, channel):
        fig.add_shape(**shape)
    dense = mk > 60
    fig.update_xaxes(showticklabels=not dense, tickangle=-90, tickfont=dict(size=8), row=2, col=1)
    fig.update_yaxes(showticklabels=not dense, tickfont=dict(size=8), autorange="reversed", row=2, col=1)
    fig.update_xaxes(showticklabels=False, row=1, col=1)
    fig.update_yaxes(title=dict(text="reachability", font=dict(size=10)), row=1, col=1, rangemode="tozero")
    # fixed margins: plotly's automargin would draw the figure twice (rotated factor names push the
    # bottom margin), which doubles its first draw in the browser (~0.6 -> 0.3 s at 460 channels)
    fig.update_xaxes(automargin=False)
    fig.update_yaxes(automargin=False)
    fig.update_layout(height=height, margin=dict(l=50 if dense else 70, r=20, t=44, b=75 if dense else 90),
                      font=FONT, template="plotly_white", bargap=0, barmode="overlay", dragmode="zoom", uirevision="matrix",
                      clickmode="event")
    if dense:
        fig.update_xaxes(title=dict(text=f"{mk} channels in OPTICS order", font=dict(size=11)), row=2, col=1)
    return fig


def map_groups(analysis, color: str = "hotspot") -> list[tuple[str, str, np.ndarray]]:
    """The traces of `map_figure`: (name, colour, kept indices) in trace order.

    "hotspot" and "model" colourings give one trace per group; "info" / "factor:<j>" give one
    trace of every channel (colour "" = by colour scale).
    """
    mk = len(analysis.kept)
    if color == "hotspot":
        labels = np.asarray(analysis.labels, dtype=np.int64)
        return [("noise" if g < 0 else hotspot_name(g), hotspot_color(int(g)), np.flatnonzero(labels == g))
                for g in np.unique(labels)]
    if color == "model":
        models = _kept_ids(analysis)[:, 0]
        colors = model_colors(analysis.n_models)
        return [(f"model {g}", colors[int(g)], np.flatnonzero(models == g)) for g in np.unique(models)]
    return [("all", "", np.arange(mk))]


def map_selection(analysis, color: str = "hotspot", selected=None) -> list:
    """``selectedpoints`` of each `map_figure` trace (None each without a selection)."""
    mask = _selected_mask(len(analysis.kept), selected)
    return [None if mask is None else np.flatnonzero(mask[idx]).tolist() for _, _, idx in map_groups(analysis, color)]


def map_figure(analysis, method: str = "umap", color: str = "hotspot", selected=None,
               height: int = 460, revision=0) -> go.Figure:
    """The 2-D channel map.

    Parameters
    ----------
    analysis : `Analysis` with ``maps[method]`` [Mk, 2].
    method : "umap" or "mds" (falls back to the other one when missing).
    color : "hotspot", "model", "info" or "factor:<j>" (NMI with factor j).
    selected : kept indices to highlight; the rest are dimmed.
    revision : ``layout.selectionrevision``. Plotly keeps a lasso / box selection made in the
        browser over the figure's ``selectedpoints`` until this changes; each new selection of the
        dashboard gets a new revision, so the map always shows the last selection, wherever it came from.

    Returns
    -------
    go.Figure whose points carry customdata [kept index, model, latent, info, best factor, hotspot].
    """
    maps = analysis.maps or {}
    if method not in maps:
        if not maps:
            pending = "maps" in getattr(analysis, "pending", ())
            return empty_figure("channel maps not computed yet (they follow the hotspots)" if pending
                                else "no channel map in this analysis", height)
        method = next(iter(maps))
    xy = np.asarray(maps[method], dtype=np.float64)
    mk = len(xy)
    if mk == 0:
        return empty_figure("no informative channels", height)
    ids = _kept_ids(analysis)
    info = np.asarray(analysis.info, dtype=np.float64)[np.asarray(analysis.kept)]
    labels = np.asarray(analysis.labels, dtype=np.int64)
    fnames, _ = best_factors(analysis)
    custom = np.c_[np.arange(mk), ids, np.round(info, 3), np.asarray(fnames, dtype=object), labels].astype(object)
    mask = _selected_mask(mk, selected)
    hover = ("model %{customdata[1]}, latent %{customdata[2]}<br>info %{customdata[3]} bits"
             "<br>best factor %{customdata[4]}<br>%{hovertext}<extra></extra>")
    fig = go.Figure()
    marker = dict(size=9, line=dict(width=0.6, color="white"))

    def add(idx, name, col, **extra):
        tr = go.Scatter(x=np.round(xy[idx, 0], 4), y=np.round(xy[idx, 1], 4), mode="markers", name=name,
                        customdata=custom[idx], hovertext=[hotspot_name(h) for h in labels[idx]],
                        hovertemplate=hover, marker={**marker, "color": col, **extra})
        tr.selected = dict(marker=dict(size=12))
        tr.unselected = dict(marker=dict(opacity=0.15))
        if mask is not None:
            tr.selectedpoints = np.flatnonzero(mask[idx]).tolist()
        fig.add_trace(tr)

    if color in ("hotspot", "model"):
        for name, col, idx in map_groups(analysis, color):
            add(idx, name, col)
    else:
        if color == "info":
            vals, title = info, "info (bits)"
        elif color.startswith("factor:") and analysis.factor_nmi is not None:
            j = int(color.split(":", 1)[1])
            vals = np.asarray(analysis.factor_nmi, dtype=np.float64)[:, j]
            names = list(analysis.factor_names)
            title = f"NMI {names[j] if j < len(names) else j}"
        else:
            raise ValueError(f"color: expected 'hotspot', 'model', 'info' or 'factor:<j>', got {color!r}")
        add(np.arange(mk), title, np.round(vals, 4), colorscale="Viridis", showscale=True,
            colorbar=dict(title=dict(text=title, side="right"), thickness=10))
    fig.update_layout(height=height, margin=dict(l=30, r=10, t=30, b=10), font=FONT, template="plotly_white",
                      dragmode="lasso", clickmode="event+select", uirevision=f"map-{method}",
                      selectionrevision=str(revision), selections=[],
                      legend=dict(itemsizing="constant", font=dict(size=11), orientation="h", x=0, y=-0.02,
                                  yanchor="top"),
                      xaxis=dict(showticklabels=False, zeroline=False, title=None),
                      yaxis=dict(showticklabels=False, zeroline=False, title=dict(text=f"{method.upper()}", standoff=4)))
    return fig


def _num(x, digits: int = 3):
    return None if x is None or not np.isfinite(x) else round(float(x), digits)


def hotspot_table_rows(analysis) -> list[dict]:
    """One row per hotspot: id, number (id + 1, what the table shows), size, models, info (bits), best
    factor (+ NMI), stability, medoid."""
    rows = []
    ids = _kept_ids(analysis)
    names = list(analysis.factor_names)
    for h in analysis.hotspots:
        bf = "" if h.best_factor is None else (names[h.best_factor] if h.best_factor < len(names)
                                               else f"factor {h.best_factor}")
        m, z = ids[h.medoid]
        rows.append({"id": int(h.id), "number": int(h.id) + 1, "size": int(h.size), "models": int(h.n_models),
                     "info": _num(h.mean_info), "nmi": _num(h.mean_nmi), "factor": bf,
                     "factor_nmi": _num(h.best_factor_nmi), "stability": _num(h.stability, 2),
                     "medoid": channel_label(m, z)})
    return rows


def model_table_rows(analysis) -> list[dict]:
    """One row per model: info (summed bits), informative channels, MIG, SAP, UDR, final loss, hotspots."""
    table = analysis.model_table or {}
    k = analysis.n_models
    ids = _kept_ids(analysis)
    labels = np.asarray(analysis.labels)
    rows = []
    for m in range(k):
        hs = sorted({int(h) for h in labels[ids[:, 0] == m] if h >= 0})
        row = {"model": m, "hotspots": len(hs)}
        for key in ("info", "n_informative", "mig", "sap", "udr", "final_loss"):
            v = table.get(key)
            row[key] = _num(v[m]) if v is not None and m < len(v) else None
        rows.append(row)
    return rows


def png_data_uri(image, scale: int = 1) -> str:
    """uint8 image [H, W] or [H, W, C] (C in 1, 3, 4) -> ``data:image/png;base64,...``.

    ``scale`` enlarges by pixel repetition (crisp small sprites).
    """
    from PIL import Image

    a = np.asarray(image)
    if a.dtype != np.uint8:
        raise ValueError(f"image: expected uint8, got {a.dtype}")
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[:, :, 0]
    if a.ndim not in (2, 3) or (a.ndim == 3 and a.shape[2] not in (3, 4)):
        raise ValueError(f"image: expected [H, W] or [H, W, 3|4], got shape {a.shape}")
    if scale > 1:
        a = np.repeat(np.repeat(a, scale, 0), scale, 1)
    buf = io.BytesIO()
    Image.fromarray(a).save(buf, format="PNG", optimize=False, compress_level=1)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def traversal_image(grid, gap: int = 2, background: int = 255) -> np.ndarray:
    """Tile a traversal grid into one image.

    grid : uint8 [R, V, H, W] or [R, V, H, W, C] (rows = base inputs, columns = latent values),
    or float [R, V, D] vectors (drawn as a heat strip per row, scaled to the grid's range).
    Returns uint8 [R*H + gaps, V*W + gaps(, C)].
    """
    g = np.asarray(grid)
    if g.ndim == 3:                          # vectors: each value becomes a 6x6 cell
        lo, hi = float(np.min(g)), float(np.max(g))
        v = ((g - lo) / (hi - lo if hi > lo else 1.0) * 255).astype(np.uint8)
        g = np.repeat(np.repeat(v[:, :, None, :], 6, axis=2), 6, axis=3)
    if g.ndim not in (4, 5) or g.dtype != np.uint8:
        raise ValueError(f"grid: expected uint8 [R, V, H, W(, C)], got {g.dtype} shape {g.shape}")
    r, v, h, w = g.shape[:4]
    extra = g.shape[4:]
    out = np.full((r * h + (r - 1) * gap, v * w + (v - 1) * gap) + extra, background, dtype=np.uint8)
    for i in range(r):
        for j in range(v):
            out[i * (h + gap):i * (h + gap) + h, j * (w + gap):j * (w + gap) + w] = g[i, j]
    return out


def vector_traversal_figure(points, backdrop=None, color: str = "#3f51b5", size: int = 200) -> go.Figure:
    """A traversal of a channel of a model with vector outputs, drawn as what the outputs are.

    points : float [R, V, D] decoded outputs (R base inputs, V values along the channel).
    backdrop : optional float [n, D] data points, drawn light grey beneath (the data's shape).
    D >= 2: the first two output coordinates in the plane, each base input's path a line of V
    markers shaded from light (first value) to dark (last) with an arrow-like end marker; D = 1:
    the output against the step.
    """
    pts = np.asarray(points, dtype=np.float64)
    if pts.ndim != 3:
        raise ValueError(f"points: expected [R, V, D], got shape {pts.shape}")
    r, v, d = pts.shape
    fig = go.Figure()
    steps = np.arange(v)
    if d >= 2 and backdrop is not None and np.asarray(backdrop).ndim == 2 and np.asarray(backdrop).shape[1] >= 2:
        bd = np.asarray(backdrop, dtype=np.float64)
        fig.add_trace(go.Scatter(x=np.round(bd[:, 0], 3), y=np.round(bd[:, 1], 3), mode="markers", hoverinfo="skip",
                                 marker=dict(size=3, color="#d1d5db"), showlegend=False))
    for i in range(r):
        x, y = (pts[i, :, 0], pts[i, :, 1]) if d >= 2 else (steps, pts[i, :, 0])
        fig.add_trace(go.Scatter(x=np.round(x, 4), y=np.round(y, 4), mode="lines+markers", showlegend=False,
                                 line=dict(color=color, width=1.2),
                                 marker=dict(size=[6] * (v - 1) + [10], color=steps, colorscale="Blues", cmin=-2,
                                             cmax=v - 1, symbol=["circle"] * (v - 1) + ["triangle-up"],
                                             line=dict(width=0.5, color=color)),
                                 hovertemplate=f"base {i + 1}, step %{{customdata}}<br>(%{{x:.2f}}, %{{y:.2f}})"
                                               "<extra></extra>", customdata=steps + 1))
    axis = dict(showgrid=False, zeroline=False, showticklabels=False)
    fig.update_layout(template="none", width=size, height=size, margin=dict(l=4, r=4, t=4, b=4),
                      paper_bgcolor="white", plot_bgcolor="white", font=FONT, xaxis=axis,
                      yaxis={**axis, "scaleanchor": "x"} if d >= 2 else axis, dragmode=False)
    return fig
