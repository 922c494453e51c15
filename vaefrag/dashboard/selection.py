"""The one shared selection, as a small JSON dict kept in ``dcc.Store`` (pure functions, no Dash).

A selection is ``None`` (nothing) or::

    {"kind": "hotspot" | "channel" | "channels" | "model",
     "channels": [kept indices],          # what every view highlights
     "hotspot": id or None, "model": k or None, "channel": kept index or None,
     "key": analysis cache key, "n": sequence number}

Kept indices index ``analysis.kept`` (the channels above the information threshold). Events are
read from plotly ``customdata`` / categorical labels / annotation names, AG Grid ``cellClicked``
row ids and channel labels (``m5:z2``), never from coordinates. ``n`` grows with every user
action (`stamp`), so a repeated request (the same row clicked again after a lasso) is still a new
selection that every view follows (the map's ``selectionrevision`` is ``n``).

The URL carries a selection as one of ``hotspot=3`` (numbered from 1, as on the page),
``channel=m5:z2``, ``model=4`` or ``channels=m1:z0,m2:z3,...`` (`to_query` / `from_query`).
"""
from __future__ import annotations

import re

import numpy as np

from vaefrag.figures.views import channel_label

#: query keys that carry a selection (`to_query`)
QUERY_KEYS = ("hotspot", "channel", "model", "channels")
_LABEL = re.compile(r"^\s*m(\d+)\s*:\s*z(\d+)\s*$", re.IGNORECASE)


def _sel(kind: str, channels, hotspot=None, model=None, channel=None) -> dict:
    return {"kind": kind, "channels": sorted(int(c) for c in channels),
            "hotspot": None if hotspot is None else int(hotspot), "model": None if model is None else int(model),
            "channel": None if channel is None else int(channel)}


def stamp(sel: dict | None, current: dict | None, key: str | None) -> dict | None:
    """``sel`` tagged with the analysis ``key`` and the next sequence number after ``current``'s."""
    if sel is None:
        return None
    n = int((current or {}).get("n") or 0) + 1
    return {**sel, "key": key, "n": n}


def same(a: dict | None, b: dict | None) -> bool:
    """Whether two selections select the same thing (sequence numbers aside)."""
    strip = (lambda s: None if s is None else {k: v for k, v in s.items() if k not in ("n", "carried")})
    return strip(a) == strip(b)


def hotspot(analysis, hid) -> dict | None:
    """Select hotspot ``hid`` (all its members); None if no such hotspot."""
    try:
        hid = int(hid)
    except (TypeError, ValueError):
        return None
    for h in analysis.hotspots:
        if int(h.id) == hid:
            return _sel("hotspot", h.members, hotspot=h.id)
    return None


def channel(analysis, idx) -> dict | None:
    """Select one kept channel."""
    try:
        idx = int(idx)
    except (TypeError, ValueError):
        return None
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
    try:
        k = int(k)
    except (TypeError, ValueError):
        return None
    kept_models = np.asarray(analysis.channel_ids)[np.asarray(analysis.kept, dtype=np.int64), 0]
    if not 0 <= k < analysis.n_models:
        return None
    return _sel("model", np.flatnonzero(kept_models == k), model=k)


def label_index(analysis) -> dict[str, int]:
    """Channel label (``m3:z2``) -> kept index."""
    ids = np.asarray(analysis.channel_ids)[np.asarray(analysis.kept, dtype=np.int64)]
    return {channel_label(m, z): i for i, (m, z) in enumerate(ids)}


def parse_label(text) -> tuple[int, int]:
    """``"m5:z2"`` (spaces and case ignored) -> (5, 2). Raises ValueError naming what was expected."""
    m = _LABEL.match(str(text or ""))
    if not m:
        raise ValueError(f"channel: expected a channel like m5:z2 (model 5, latent 2), got {text!r}")
    return int(m.group(1)), int(m.group(2))


def by_label(analysis, text) -> dict:
    """The channel named ``text`` (``m5:z2``). Raises ValueError when the text is not a channel
    label, the channel does not exist, or it carries too little information to be analysed."""
    mdl, lat = parse_label(text)
    if not (0 <= mdl < analysis.n_models and 0 <= lat < analysis.n_latents):
        raise ValueError(f"channel {channel_label(mdl, lat)}: no such channel (models 0..{analysis.n_models - 1}, "
                         f"latents 0..{analysis.n_latents - 1})")
    idx = label_index(analysis).get(channel_label(mdl, lat))
    if idx is None:
        flat = mdl * analysis.n_latents + lat
        bits = float(np.asarray(analysis.info)[flat])
        raise ValueError(f"channel {channel_label(mdl, lat)} carries {bits:.3f} bits, below the information "
                         f"threshold ({analysis.params.get('info_threshold')} bits): left out of the analysis")
    return channel(analysis, idx)


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


def from_annotation(analysis, data: dict | None) -> dict | None:
    """A click on a hotspot number above the matrix (``clickAnnotationData``; the annotation's
    ``name`` is ``hotspot:<id>``)."""
    name = str(((data or {}).get("annotation") or {}).get("name") or "")
    if not name.startswith("hotspot:"):
        return None
    return hotspot(analysis, name.split(":", 1)[1])


def from_map(analysis, data: dict | None) -> dict | None:
    """A click or a lasso / box selection on the map (points carry customdata [kept, ...])."""
    if not data or not data.get("points"):
        return None
    idxs = [p["customdata"][0] for p in data["points"] if isinstance(p.get("customdata"), (list, tuple))]
    return channels(analysis, idxs)


def from_grid(analysis, kind: str, cell: dict | None) -> dict | None:
    """A clicked cell (AG Grid ``cellClicked``) of the hotspot table (row id = hotspot id) or the
    model table (row id = model)."""
    if not cell or cell.get("rowId") in (None, ""):
        return None
    return hotspot(analysis, cell["rowId"]) if kind == "hotspot" else model(analysis, cell["rowId"])


def to_query(analysis, sel: dict | None) -> dict[str, str]:
    """The URL parameters of a selection (see the module docstring); {} for none."""
    if not sel:
        return {}
    if sel["kind"] == "hotspot":
        return {"hotspot": str(int(sel["hotspot"]) + 1)}
    if sel["kind"] == "model":
        return {"model": str(int(sel["model"]))}
    ids = np.asarray(analysis.channel_ids)[np.asarray(analysis.kept, dtype=np.int64)]
    if sel["kind"] == "channel":
        return {"channel": channel_label(*ids[sel["channel"]])}
    return {"channels": ",".join(channel_label(*ids[c]) for c in sel["channels"])}


def from_query(analysis, q: dict) -> dict | None:
    """The selection named by URL parameters (`to_query`), or None when they name none / nothing
    that exists in this analysis."""
    if q.get("hotspot", "").isdigit() and int(q["hotspot"]) >= 1:
        return hotspot(analysis, int(q["hotspot"]) - 1)
    if q.get("channel"):
        try:
            return by_label(analysis, q["channel"])
        except ValueError:
            return None
    if q.get("model", "").isdigit():
        return model(analysis, int(q["model"]))
    if q.get("channels"):
        lookup = label_index(analysis)
        return channels(analysis, [lookup[t.strip()] for t in q["channels"].split(",") if t.strip() in lookup])
    return None


def carry_over(old, new, sel: dict | None) -> dict | None:
    """The selection ``sel`` of analysis ``old`` in analysis ``new`` of the same ensemble (a recompute
    with other parameters): the same channels by (model, latent) label, the same model, and for a
    hotspot the new hotspot holding most of its members (None when none does)."""
    if not sel:
        return None
    if sel["kind"] == "model":
        return model(new, sel["model"])
    old_ids = np.asarray(old.channel_ids)[np.asarray(old.kept, dtype=np.int64)]
    lookup = label_index(new)
    moved = [lookup[channel_label(*old_ids[c])] for c in sel["channels"] if channel_label(*old_ids[c]) in lookup]
    if sel["kind"] == "hotspot":
        labels = np.asarray(new.labels)[moved] if moved else np.zeros(0, dtype=np.int64)
        labels = labels[labels >= 0]
        if not labels.size:
            return None
        counts = np.bincount(labels)
        out = hotspot(new, int(counts.argmax()))
        if out is not None:       # said beside the traversals: the hotspot number may change
            out["carried"] = {"hotspot": int(sel["hotspot"]), "size": len(sel["channels"]), "kept": int(counts.max())}
        return out
    return channels(new, moved)


def _carried_note(sel: dict) -> str:
    """" Carried over from hotspot K ..." for a hotspot selection `carry_over` made, else ""."""
    c = sel.get("carried")
    keys = ("hotspot", "size", "kept")
    if not (isinstance(c, dict) and all(type(c.get(k)) is int and 0 <= c[k] < 10**6 for k in keys)):
        return ""
    return (f" Carried over from hotspot {c['hotspot'] + 1} of the previous parameters: {c['kept']} of its "
            f"{c['size']} channels are in this one.")


def describe(analysis, sel: dict | None) -> str:
    """One line about the selection for the traversal panel."""
    if not sel:
        return ("Nothing selected: click a hotspot number, band or table row, a matrix block or a map point, "
                "lasso points in the map, or type a channel (m5:z2).")
    n = len(sel["channels"])
    if sel["kind"] == "hotspot":
        h = next((h for h in analysis.hotspots if h.id == sel["hotspot"]), None)
        extra = "" if h is None else f" from {h.n_models} models, {h.mean_info:.2f} bits on average"
        return (f"Hotspot {sel['hotspot'] + 1}: {n} channels{extra}. Medoid first, the others by NMI with it "
                "(most typical first), each traversed in the direction that aligns it with the medoid."
                + _carried_note(sel))
    if sel["kind"] == "model":
        return f"Model {sel['model']}: {n} informative channels, most informative first."
    ids = np.asarray(analysis.channel_ids)[np.asarray(analysis.kept, dtype=np.int64)]
    if sel["kind"] == "channel":
        m, z = ids[sel["channel"]]
        return f"Channel model {m}, latent {z}: {float(analysis.info[analysis.kept[sel['channel']]]):.3f} bits."
    return f"{n} channels selected: the first one first, the others by NMI with it, aligned to it."
