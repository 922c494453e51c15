"""Export callbacks: the paper figure (PDF / SVG / PNG, `figures.paper`), hotspot CSV, matrices NPZ."""
from __future__ import annotations

import csv
import io
import tempfile
from pathlib import Path

import numpy as np
from dash import Input, Output, State, ctx, dcc, no_update

from vaefrag import store
from vaefrag.dashboard import data, ids
from vaefrag.dashboard.callbacks.analysis import alert
from vaefrag.dashboard.callbacks.controls import traversal_settings
from vaefrag.figures.palette import hotspot_color
from vaefrag.figures.views import channel_label


#: base images per hotspot in the paper figure (the page offers up to 6 for its own traversals)
PAPER_MAX_BASES = 3


def paper_bytes(tok, fmt: str, measure: str, cfg, *, steps: int = 7, n_bases: int = 3, seed: int = 0,
                sel: dict | None = None) -> bytes:
    """The paper figure of the analysis as ``fmt`` bytes, with medoid traversals when the ensemble has
    weights; ``sel`` (the shared selection, if it belongs to this analysis) is marked in it."""
    from vaefrag import traversal
    from vaefrag.figures.paper import FORMATS, paper_figure, save_figure

    if not isinstance(fmt, str) or fmt not in FORMATS:
        raise ValueError(f"format: expected one of {FORMATS}, got {str(fmt)[:20]!r}")
    if measure not in (None, "nmi", "vi"):
        raise ValueError(f"matrix: expected 'nmi' or 'vi', got {str(measure)[:20]!r}")
    t = traversal_settings(steps, n_bases, seed)        # the one check of traversal settings (ValueError)
    steps, n_bases, seed = t["steps"], min(t["bases"], PAPER_MAX_BASES), t["seed"]
    if not isinstance(sel, dict):
        sel = None
    a = data.analysis_from_token(tok, cfg.cache_dir)
    if a is None:
        raise ValueError("no analysis loaded yet")
    ens = data.load_ensemble(data.ensemble_path(cfg.root, tok["ensemble"]))
    travs = None
    if ens.has_weights and ens.x is not None and a.hotspots:
        travs = traversal.hotspot_traversals(ens, a, n_values=steps, n_rows=n_bases, seed=seed)
    if sel and sel.get("key") not in (None, a.key):
        sel = None                                   # a selection left over from another analysis
    fig = paper_figure(a, travs, measure=measure or a.measure, selected=(sel or {}).get("channels"),
                       hotspot=(sel or {}).get("hotspot"))
    with tempfile.TemporaryDirectory(prefix="vaefrag-export-") as tmp:
        return save_figure(fig, Path(tmp) / f"figure.{fmt}", fmt).read_bytes()


def hotspots_csv(tok, cfg) -> str:
    """The hotspot table (`results.hotspot_rows`, hotspots numbered from 1 as on the page) as CSV text."""
    a = data.analysis_from_token(tok, cfg.cache_dir)
    if a is None:
        raise ValueError("no analysis loaded yet")
    from vaefrag.results import HOTSPOT_ROW_FIELDS, hotspot_rows

    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(HOTSPOT_ROW_FIELDS), lineterminator="\n")
    w.writeheader()
    w.writerows(hotspot_rows(a))
    return buf.getvalue()


def matrices_npz(tok, cfg) -> bytes:
    """NMI, VI, ordering, reachability, 1-based hotspot numbers (``hotspot``, 0: none) and the hotspot
    colours, channel ids and labels (``m3:z2``), information, factor NMI and maps as npz bytes
    (`results.Analysis.export_arrays` plus the page's colours and labels)."""
    a = data.analysis_from_token(tok, cfg.cache_dir)
    if a is None:
        raise ValueError("no analysis loaded yet")
    arrays = a.export_arrays()
    arrays["hotspot_colors"] = np.asarray([hotspot_color(h.id) for h in a.hotspots], dtype=str)
    arrays["channel_labels"] = np.asarray([channel_label(m, z) for m, z in a.channel_ids[a.kept]], dtype=str)
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    return buf.getvalue()


def export(trigger, tok, fmt, measure, steps, n_bases, seed, cfg, sel=None) -> tuple:
    """(download dict or no_update, status) for an export button; ``sel``: the shared selection."""
    if not (isinstance(tok, dict) and isinstance(tok.get("ensemble"), str) and isinstance(tok.get("params"), dict)
            and isinstance(tok.get("key"), str)):
        return no_update, alert("Nothing to export yet: no analysis is loaded.")
    measure_name = tok["params"].get("measure") if tok["params"].get("measure") in ("nmi", "vi") else "nmi"
    stem = f"vaefrag-{store.safe_name(tok['ensemble'][:100])}-{measure_name}"
    try:
        if trigger == ids.EXPORT_FIGURE:
            t = traversal_settings(steps, n_bases, seed)          # the traversal panel's settings, checked
            blob = paper_bytes(tok, fmt or "pdf", measure, cfg, steps=t["steps"], n_bases=min(t["bases"], PAPER_MAX_BASES),
                               seed=t["seed"], sel=sel)
            return dcc.send_bytes(blob, f"{stem}.{fmt or 'pdf'}"), None
        if trigger == ids.EXPORT_CSV:
            return dcc.send_string(hotspots_csv(tok, cfg), f"{stem}-hotspots.csv"), None
        if trigger == ids.EXPORT_NPZ:
            return dcc.send_bytes(matrices_npz(tok, cfg), f"{stem}-matrices.npz"), None
    except (ValueError, FileNotFoundError) as exc:
        return no_update, alert(f"Export failed: {exc}")
    return no_update, no_update


def register(app, cfg) -> None:
    @app.callback(Output(ids.DOWNLOAD, "data"), Output(ids.STATUS, "children", allow_duplicate=True),
                  Input(ids.EXPORT_FIGURE, "n_clicks"), Input(ids.EXPORT_CSV, "n_clicks"),
                  Input(ids.EXPORT_NPZ, "n_clicks"), State(ids.ANALYSIS, "data"), State(ids.EXPORT_FORMAT, "value"),
                  State(ids.MATRIX_MEASURE, "value"), State(ids.TRAV_STEPS, "value"), State(ids.TRAV_NBASE, "value"),
                  State(ids.TRAV_SEED, "value"), State(ids.SELECTION, "data"), prevent_initial_call=True)
    def _export(_f, _c, _n, tok, fmt, measure, steps, n_bases, seed, sel):
        return export(ctx.triggered_id, tok, fmt, measure, steps, n_bases, seed, cfg, sel)
