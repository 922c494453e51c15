"""Callbacks of the traversal panel: decoded grids of the selection, and the strip of base inputs."""
from __future__ import annotations

import logging

from dash import ALL, Input, Output, State, ctx, html, no_update

from vaefrag.dashboard import data, ids
from vaefrag.dashboard import selection as selmod
from vaefrag.dashboard import traversals as trav
from vaefrag.figures.views import hotspot_color

log = logging.getLogger(__name__)


def _card(c: dict, color: str) -> html.Figure:
    flip = " (flipped)" if c["sign"] < 0 else ""
    title = f"model {c['model']}, latent {c['latent']}: {c['info']:.2f} bits{flip}"
    cap = [html.B(c["label"]), html.Span(f" {c['info']:.2f} bits"), html.Span(" ↺" if c["sign"] < 0 else "",
                                                                              title="traversed in reverse to align")]
    return html.Figure([html.Img(src=c["uri"], className=ids.TRAV_IMAGE, title=title, alt=c["label"]),
                        html.Figcaption(cap)], className="vf-card" + (" vf-card-ref" if c["reference"] else ""),
                       style={"borderColor": color})


def traversal_panel(tok, sel, steps, qrange, n_bases, seed, picked, cfg) -> tuple:
    """(cards, description) of the current selection's traversals."""
    if not sel:              # no analysis needed for the hint (the first page shows it before one loads)
        return [], selmod.describe(None, None)
    a = data.analysis_from_token(tok, cfg.cache_dir)
    if a is None:
        return [], ""
    desc = selmod.describe(a, sel)
    try:
        path = data.ensemble_path(cfg.root, tok["ensemble"])
        cards = trav.cards(path, a, sel, steps=steps or 7, quantiles=tuple(qrange or (0.05, 0.95)),
                           n_bases=n_bases or 2, seed=seed or 0, picked=picked)
    except (ValueError, FileNotFoundError) as exc:
        return [html.Div(str(exc), className="vf-alert vf-alert-info")], desc
    color = hotspot_color(sel["hotspot"]) if sel.get("hotspot") is not None else "#9ca3af"
    return [_card(c, color) for c in cards], desc


def base_strip(tok, seed, cfg) -> list:
    """Clickable thumbnails of fingerprint inputs (pattern ids `ids.base_thumb`)."""
    if not tok:
        return []
    try:
        thumbs = trav.thumbnails(data.ensemble_path(cfg.root, tok["ensemble"]), 24, int(seed or 0) + 1)
    except (ValueError, FileNotFoundError):
        return []
    return [html.Img(src=uri, id=ids.base_thumb(row), n_clicks=0, className="vf-thumb", title=f"fingerprint item {row}")
            for row, uri in thumbs]


def pick_bases(trigger, n_clicks_list, picked) -> list | None:
    """Toggle a clicked thumbnail in the picked base rows; the 'random' button clears the picks."""
    if trigger == ids.BASE_RANDOM:
        return None
    if isinstance(trigger, dict) and trigger.get("type") == ids.BASE_THUMB_TYPE:
        if not any(n_clicks_list or []):      # the strip was just rebuilt: no real click
            return no_update
        row = int(trigger["index"])
        picked = list(picked or [])
        picked = [p for p in picked if p != row] if row in picked else (picked + [row])[-6:]
        return picked or None
    return no_update


def thumb_classes(picked, thumb_ids) -> list[str]:
    """CSS classes of the thumbnails: picked ones marked."""
    chosen = set(picked or [])
    return ["vf-thumb vf-thumb-picked" if t["index"] in chosen else "vf-thumb" for t in thumb_ids]


def register(app, cfg) -> None:
    @app.callback(Output(ids.TRAVERSALS, "children"), Output(ids.SELECTION_INFO, "children"),
                  Output(ids.HIGHLIGHT, "data"),
                  Input(ids.SELECTION, "data"), Input(ids.TRAV_STEPS, "value"), Input(ids.TRAV_RANGE, "value"),
                  Input(ids.TRAV_NBASE, "value"), Input(ids.TRAV_SEED, "value"), Input(ids.TRAV_BASES, "data"),
                  State(ids.ANALYSIS, "data"), State(ids.HIGHLIGHT, "data"))
    def _traversals(sel, steps, qrange, n_bases, seed, picked, tok, shown):
        # the linked views follow a new selection; an unchanged one (e.g. none, on the first page) would
        # only make them redraw what they show
        shown = None if shown == ids.HIGHLIGHT_AS_SERVED else shown
        fresh = (any(t["prop_id"].startswith(ids.SELECTION + ".") for t in ctx.triggered) or not ctx.triggered) \
            and sel != shown
        try:
            cards, desc = traversal_panel(tok, sel, steps, qrange, n_bases, seed, picked, cfg)
        except Exception as exc:  # the linked views must still follow the selection
            log.exception("traversals failed")
            cards, desc = [html.Div(f"Traversals failed: {exc}", className="vf-alert vf-alert-error")], ""
        return cards, desc, sel if fresh else no_update

    @app.callback(Output(ids.BASE_STRIP, "children"), Input(ids.ANALYSIS, "data"), Input(ids.TRAV_SEED, "value"))
    def _strip(tok, seed):
        return base_strip(tok, seed, cfg)

    @app.callback(Output(ids.TRAV_BASES, "data"), Input({"type": ids.BASE_THUMB_TYPE, "index": ALL}, "n_clicks"),
                  Input(ids.BASE_RANDOM, "n_clicks"), State(ids.TRAV_BASES, "data"), prevent_initial_call=True)
    def _pick(clicks, _random, picked):
        return pick_bases(ctx.triggered_id, clicks, picked)

    @app.callback(Output({"type": ids.BASE_THUMB_TYPE, "index": ALL}, "className"), Input(ids.TRAV_BASES, "data"),
                  State({"type": ids.BASE_THUMB_TYPE, "index": ALL}, "id"))
    def _thumbs(picked, thumb_ids):
        return thumb_classes(picked, thumb_ids)
