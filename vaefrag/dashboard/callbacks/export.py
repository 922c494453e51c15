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
    """NMI, VI, ordering, reachability, 1-based hotspot numbers (0: none), channel ids, information,
    factor NMI and maps as npz bytes (`results.Analysis.export_arrays`)."""
    a = data.analysis_from_token(tok, cfg.cache_dir)
    if a is None:
        raise ValueError("no analysis loaded yet")
    buf = io.BytesIO()
    np.savez_compressed(buf, **a.export_arrays())
    return buf.getvalue()


def export(trigger, tok, fmt, measure, steps, n_bases, seed, cfg, sel=None) -> tuple:
    """(download dict or no_update, status) for an export button; ``sel``: the shared selection."""
    if not tok:
        return no_update, alert("Nothing to export yet: no analysis is loaded.")
    stem = f"vaefrag-{tok['ensemble']}-{tok['params']['measure']}"
    try:
        if trigger == ids.EXPORT_FIGURE:
            blob = paper_bytes(tok, fmt or "pdf", measure, cfg, steps=steps, n_bases=min(int(n_bases or 3), 3),
                               seed=seed, sel=sel)
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
