"""Export callbacks: the paper figure (PDF / SVG / PNG, `figures.paper`), hotspot CSV, matrices NPZ."""
from __future__ import annotations

import csv
import io
import tempfile
from pathlib import Path

import numpy as np
from dash import Input, Output, State, ctx, dcc, no_update

from vaefrag.dashboard import data, ids
from vaefrag.dashboard.callbacks.analysis import alert
from vaefrag.dashboard.callbacks.controls import traversal_settings
from vaefrag.figures.palette import hotspot_color, hotspot_number
from vaefrag.figures.views import channel_label


def paper_bytes(tok, fmt: str, measure: str, cfg, *, steps: int = 7, n_bases: int = 3, seed: int = 0,
                sel: dict | None = None) -> bytes:
    """The paper figure of the analysis as ``fmt`` bytes, with medoid traversals when the ensemble has
    weights; ``sel`` (the shared selection, if it belongs to this analysis) is marked in it."""
    from vaefrag import traversal
    from vaefrag.figures.paper import FORMATS, paper_figure, save_figure

    if fmt not in FORMATS:
        raise ValueError(f"format: expected one of {FORMATS}, got {fmt!r}")
    a = data.analysis_from_token(tok, cfg.cache_dir)
    if a is None:
        raise ValueError("no analysis loaded yet")
    ens = data.load_ensemble(data.ensemble_path(cfg.root, tok["ensemble"]))
    travs = None
    if ens.has_weights and ens.x is not None and a.hotspots:
        travs = traversal.hotspot_traversals(ens, a, n_values=int(steps or 7), n_rows=int(n_bases or 3),
                                             seed=int(seed or 0))
    if sel and sel.get("key") not in (None, a.key):
        sel = None                                   # a selection left over from another analysis
    fig = paper_figure(a, travs, measure=measure or a.measure, selected=(sel or {}).get("channels"),
                       hotspot=(sel or {}).get("hotspot"))
    with tempfile.TemporaryDirectory(prefix="vaefrag-export-") as tmp:
        return save_figure(fig, Path(tmp) / f"figure.{fmt}", fmt).read_bytes()


def hotspots_csv(tok, cfg) -> str:
    """The hotspot table (`analysis.hotspot_rows`) as CSV text."""
    a = data.analysis_from_token(tok, cfg.cache_dir)
    if a is None:
        raise ValueError("no analysis loaded yet")
    from vaefrag.analysis import hotspot_rows

    rows = hotspot_rows(a)
    buf = io.StringIO()
    fields = list(rows[0]) if rows else ["hotspot", "size", "models", "mean_info_bits", "best_factor", "stability"]
    w = csv.DictWriter(buf, fieldnames=fields, lineterminator="\n")
    w.writeheader()
    w.writerows(rows)
    return buf.getvalue()


def matrices_npz(tok, cfg) -> bytes:
    """NMI, VI, ordering, reachability, labels (0-based ids, -1 none), hotspot numbers (as on the page:
    1-based, 0 none) and colours, channel ids and labels (``m3:z2``), information and factor NMI as npz bytes."""
    a = data.analysis_from_token(tok, cfg.cache_dir)
    if a is None:
        raise ValueError("no analysis loaded yet")
    arrays = {"nmi": a.nmi, "vi": a.vi, "kept": a.kept, "channel_ids": a.channel_ids, "info": a.info,
              "self_info": a.self_info, "ordering": a.ordering, "reachability": a.reachability, "labels": a.labels,
              # what the page, the CSV and the paper figure show: hotspot numbers from 1 (0 = none), the colours
              "hotspot_numbers": np.asarray([hotspot_number(x) for x in a.labels], dtype=np.int64),
              "hotspot_colors": np.asarray([hotspot_color(h.id) for h in a.hotspots], dtype=str),
              "channel_labels": np.asarray([channel_label(m, z) for m, z in a.channel_ids[a.kept]], dtype=str)}
    if a.factor_nmi is not None:
        arrays["factor_nmi"] = a.factor_nmi
        arrays["factor_names"] = np.asarray(a.factor_names, dtype=str)
    for k, v in a.maps.items():
        arrays[f"map_{k}"] = v
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    return buf.getvalue()


def export(trigger, tok, fmt, measure, steps, n_bases, seed, cfg, sel=None) -> tuple:
    """(download dict or no_update, status) for an export button; ``sel``: the shared selection."""
    if not tok:
        return no_update, alert("Nothing to export yet: no analysis is loaded.")
    stem = f"vaefrag-{tok['ensemble']}-{tok['params']['measure']}"
    try:
        if trigger == ids.EXPORT_FIGURE:
            t = traversal_settings(steps, n_bases, seed)          # the traversal panel's settings, checked
            blob = paper_bytes(tok, fmt or "pdf", measure, cfg, steps=t["steps"], n_bases=min(t["bases"], 3),
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
