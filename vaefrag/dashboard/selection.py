"""The one shared selection, as a small JSON dict kept in ``dcc.Store`` (pure functions, no Dash).

A selection is ``None`` (nothing) or::

    {"kind": "hotspot" | "channel" | "channels" | "model",
     "channels": [kept indices],          # what every view highlights
     "hotspot": id or None, "model": k or None, "channel": kept index or None}

Kept indices index ``analysis.kept`` (the channels above the information threshold). Events are
read from plotly ``customdata`` / categorical labels and table ``row_id`` values, never from
coordinates.
"""
from __future__ import annotations

import numpy as np

from vaefrag.figures.views import channel_label


def _sel(kind: str, channels, hotspot=None, model=None, channel=None) -> dict:
    return {"kind": kind, "channels": sorted(int(c) for c in channels),
            "hotspot": None if hotspot is None else int(hotspot), "model": None if model is None else int(model),
            "channel": None if channel is None else int(channel)}


def hotspot(analysis, hid) -> dict | None:
    """Select hotspot ``hid`` (all its members); None if no such hotspot."""
    for h in analysis.hotspots:
        if int(h.id) == int(hid):
            return _sel("hotspot", h.members, hotspot=h.id)
    return None


def channel(analysis, idx) -> dict | None:
    """Select one kept channel."""
    idx = int(idx)
    if not 0 <= idx < len(analysis.kept):
        return None
    return _sel("channel", [idx], channel=idx)


def channels(analysis, idxs) -> dict | None:
    """Select a set of kept channels (a lasso / box); one channel -> `channel`; empty -> None."""
    mk = len(analysis.kept)
    idxs = sorted({int(i) for i in idxs if 0 <= int(i) < mk})
    if not idxs:
        return None
    if len(idxs) == 1:
        return channel(analysis, idxs[0])
    return _sel("channels", idxs)


def model(analysis, k) -> dict | None:
    """Select the kept channels of model ``k`` (possibly none)."""
    k = int(k)
    kept_models = np.asarray(analysis.channel_ids)[np.asarray(analysis.kept, dtype=np.int64), 0]
    if not 0 <= k < analysis.n_models:
        return None
    return _sel("model", np.flatnonzero(kept_models == k), model=k)


def label_index(analysis) -> dict[str, int]:
    """Channel label (``m3:z2``) -> kept index."""
    ids = np.asarray(analysis.channel_ids)[np.asarray(analysis.kept, dtype=np.int64)]
    return {channel_label(m, z): i for i, (m, z) in enumerate(ids)}


def from_matrix_click(analysis, click: dict | None) -> dict | None:
    """A click on the matrix figure: a reachability bar (customdata [kept, hotspot, ...]) selects its
    hotspot (or the channel outside hotspots); a matrix cell inside a hotspot's diagonal block
    selects that hotspot, any other cell its row channel; a factor-profile cell its row channel.
    Cells name channels by label, or by OPTICS position when the matrix is pooled."""
    if not click or not click.get("points"):
        return None
    pt = click["points"][0]
    cd = pt.get("customdata")
    if isinstance(cd, (list, tuple)) and len(cd) >= 2:        # reachability bar
        kept_idx, hs = int(cd[0]), int(cd[1])
        return hotspot(analysis, hs) if hs >= 0 else channel(analysis, kept_idx)
    lookup = label_index(analysis)
    order = np.asarray(analysis.ordering, dtype=np.int64)

    def kept_index(v):      # a channel label, or an OPTICS position (the axes of a pooled matrix)
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            pos = int(round(v))
            return int(order[pos]) if 0 <= pos < order.size else None
        return lookup.get(str(v))

    row, col = kept_index(pt.get("y")), kept_index(pt.get("x"))
    if row is None:
        return None
    labels = np.asarray(analysis.labels)
    if col is not None and labels[row] >= 0 and labels[row] == labels[col]:
        return hotspot(analysis, int(labels[row]))
    return channel(analysis, row)


def from_map(analysis, data: dict | None) -> dict | None:
    """A click or a lasso / box selection on the map (points carry customdata [kept, ...])."""
    if not data or not data.get("points"):
        return None
    idxs = [p["customdata"][0] for p in data["points"] if isinstance(p.get("customdata"), (list, tuple))]
    return channels(analysis, idxs)


def from_table(analysis, kind: str, cell: dict | None) -> dict | None:
    """An active cell of the hotspot table (row_id = hotspot id) or model table (row_id = model)."""
    if not cell or cell.get("row_id") is None:
        return None
    return hotspot(analysis, cell["row_id"]) if kind == "hotspot" else model(analysis, cell["row_id"])


def describe(analysis, sel: dict | None) -> str:
    """One line about the selection for the traversal panel."""
    if not sel:
        return "Nothing selected: click a hotspot band, a list row, a matrix block or a map point."
    n = len(sel["channels"])
    if sel["kind"] == "hotspot":
        h = next((h for h in analysis.hotspots if h.id == sel["hotspot"]), None)
        extra = "" if h is None else f", {h.n_models} models, {h.mean_info:.2f} bits"
        return f"Hotspot {sel['hotspot'] + 1}: {n} channels{extra}. Medoid first, others sign-aligned to it."
    if sel["kind"] == "model":
        return f"Model {sel['model']}: {n} informative channels."
    ids = np.asarray(analysis.channel_ids)[np.asarray(analysis.kept, dtype=np.int64)]
    if sel["kind"] == "channel":
        m, z = ids[sel["channel"]]
        return f"Channel model {m}, latent {z}: {float(analysis.info[analysis.kept[sel['channel']]]):.3f} bits."
    return f"{n} channels selected (first nine shown, aligned to the first)."
