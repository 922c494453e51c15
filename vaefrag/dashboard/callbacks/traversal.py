"""Callbacks of the traversal panel: decoded grids of the selection, and the strip of base inputs."""
from __future__ import annotations

import logging

from dash import ALL, Input, Output, State, ctx, dcc, html, no_update

from vaefrag.dashboard import data, ids
from vaefrag.dashboard import selection as selmod
from vaefrag.dashboard import traversals as trav
from vaefrag.dashboard.callbacks.controls import traversal_settings
from vaefrag.figures.views import hotspot_color, vector_traversal_figure

log = logging.getLogger(__name__)


def _card(c: dict, color: str, steps: int, n_rows: int, backdrop) -> html.Figure:
    flip = " (traversed in reverse to align with the first)" if c["sign"] < 0 else ""
    title = f"model {c['model']}, latent {c['latent']}: {c['info']:.2f} bits{flip}"
    cap = [html.B(c["label"]), html.Span(f" {c['info']:.2f} bits"),
           html.Span(" reference" if c["reference"] else f" · NMI {c['nmi']:.2f}", className="vf-card-nmi",
                     title="NMI with the first channel (the hotspot's medoid)"),
           html.Span(" ↺" if c["sign"] < 0 else "", title="traversed in reverse to align with the first")]
    if "uri" in c:
        (h, w), k = c["cell"], c["scale"]
        width, height = (steps * w + steps - 1) * k, (n_rows * h + n_rows - 1) * k
        body = html.Img(src=c["uri"], className=ids.TRAV_IMAGE, title=title, alt=c["label"],
                        style={"width": f"{width}px", "height": f"{height}px"})
    else:
        size = 170 + 12 * min(steps, 15)
        body = dcc.Graph(figure=vector_traversal_figure(c["points"], backdrop, color, size=size),
                         config={"staticPlot": True, "displayModeBar": False}, className=ids.TRAV_IMAGE,
                         style={"width": f"{size}px", "height": f"{size}px"})
    return html.Figure([body, html.Figcaption(cap)], className="vf-card" + (" vf-card-ref" if c["reference"] else ""),
                       style={"borderColor": color}, title=title)


def pager_text(pager: dict) -> str:
    if not pager.get("total"):
        return ""
    if pager["pages"] <= 1:
        return f"all {pager['total']} members" if pager["total"] > 1 else ""
    return f"members {pager['first']}-{pager['last']} of {pager['total']} (page {pager['page'] + 1} of {pager['pages']})"


def traversal_panel(tok, sel, steps, qrange, n_bases, seed, picked, cfg, *, page: int = 0,
                    show_all: bool = False) -> tuple:
    """(cards, description, pager) of the current selection's traversals.

    Raises ValueError (from `controls.traversal_settings`) for steps / bases / seed out of range.
    """
    settings = traversal_settings(steps, n_bases, seed)
    if not sel:              # no analysis needed for the hint (the first page shows it before one loads)
        return [], selmod.describe(None, None), {}
    a = data.analysis_from_token(tok, cfg.cache_dir)
    if a is None:
        return [], "", {}
    desc = selmod.describe(a, sel)
    try:
        path = data.ensemble_path(cfg.root, tok["ensemble"])
        cards, pager = trav.cards(path, a, sel, steps=settings["steps"], quantiles=tuple(qrange or trav.RANGE),
                                  n_bases=settings["bases"], seed=settings["seed"], picked=picked, page=page,
                                  show_all=show_all)
        backdrop = trav.fingerprint_points(path) if any("points" in c for c in cards) else None
    except (ValueError, FileNotFoundError) as exc:
        return [html.Div(str(exc), className="vf-alert vf-alert-info")], desc, {}
    color = hotspot_color(sel["hotspot"]) if sel.get("hotspot") is not None else "#9ca3af"
    n_rows = len(picked) if picked else settings["bases"]
    return [_card(c, color, settings["steps"], n_rows, backdrop) for c in cards], desc, pager


def base_strip(tok, seed, cfg, *, prefetch: bool = True) -> list:
    """Clickable thumbnails of fingerprint inputs (pattern ids `ids.base_thumb`). Each analysis
    shown also starts the background decoding of its hotspots' traversals (`traversals.prefetch`;
    not with ``prefetch=False``: the page as served, whose decoding the server starts once it is idle)."""
    if not tok:
        return []
    try:
        path = data.ensemble_path(cfg.root, tok["ensemble"])
        thumbs = trav.thumbnails(path, 24, int(seed or 0) + 1)
    except (ValueError, FileNotFoundError, TypeError):
        return []
    a = data.analysis_from_token(tok, cfg.cache_dir) if prefetch else None
    if a is not None:
        trav.prefetch(path, a)
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


#: previous / next page of members; a new selection starts at the first page (clientside: no round trip)
PAGE_JS = """
function(prev, next, sel, page) {
    const t = (window.dash_clientside.callback_context.triggered[0] || {}).prop_id || '';
    if (t.startsWith('%(prev)s.')) { return Math.max(0, (page || 0) - 1); }
    if (t.startsWith('%(next)s.')) { return (page || 0) + 1; }
    return page ? 0 : window.dash_clientside.no_update;
}
""" % {"prev": ids.TRAV_PREV, "next": ids.TRAV_NEXT}


#: what `panel_outputs` returns, in order
PANEL_OUTPUTS = [(ids.TRAVERSALS, "children"), (ids.SELECTION_INFO, "children"), (ids.HIGHLIGHT, "data"),
                 (ids.TRAV_PAGER, "children"), (ids.TRAV_ERROR, "children"), (ids.TRAV_PREV, "disabled"),
                 (ids.TRAV_NEXT, "disabled")]


def panel_outputs(tok, sel, shown, new_sel: bool, steps, qrange, n_bases, seed, picked, page, show_all, cfg) -> tuple:
    """The traversal panel's outputs (`PANEL_OUTPUTS`) for selection ``sel``; ``shown`` is the
    selection the linked views follow (``HIGHLIGHT``), ``new_sel`` whether ``sel`` just changed.
    The views follow a new selection (the highlight); an unchanged one (e.g. none, on the first
    page) would only make them redraw what they show."""
    shown = None if shown == ids.HIGHLIGHT_AS_SERVED else shown
    highlight = sel if new_sel and sel != shown else no_update
    try:
        cards, desc, pager = traversal_panel(tok, sel, steps, qrange, n_bases, seed, picked, cfg,
                                             page=0 if new_sel else int(page or 0), show_all=bool(show_all))
    except ValueError as exc:           # a traversal setting out of range: said beside the inputs
        return no_update, no_update, highlight, no_update, str(exc), no_update, no_update
    except Exception as exc:  # the linked views must still follow the selection
        log.exception("traversals failed")
        return ([html.Div(f"Traversals failed: {exc}", className="vf-alert vf-alert-error")], "", highlight,
                "", "", True, True)
    pages, at = pager.get("pages", 0), pager.get("page", 0)
    return cards, desc, highlight, pager_text(pager), "", at <= 0, at >= pages - 1


def first_values(tok: dict | None, cfg) -> dict:
    """{(id, property): value} of the panel for the page as served (nothing selected, the layout's
    settings): what `panel_outputs` and `base_strip` give, for `callbacks.first_page`."""
    out = dict(zip(PANEL_OUTPUTS, panel_outputs(tok, None, ids.HIGHLIGHT_AS_SERVED, True, trav.STEPS,
                                                 list(trav.RANGE), trav.BASES, trav.SEED, None, 0, [], cfg)))
    out[(ids.BASE_STRIP, "children")] = base_strip(tok, trav.SEED, cfg, prefetch=False)     # `first_page.prefetch`
    return out


def register(app, cfg) -> None:
    app.clientside_callback(PAGE_JS, Output(ids.TRAV_PAGE, "data"), Input(ids.TRAV_PREV, "n_clicks"),
                            Input(ids.TRAV_NEXT, "n_clicks"), Input(ids.SELECTION, "data"), State(ids.TRAV_PAGE, "data"),
                            prevent_initial_call=True)

    @app.callback(*[Output(*o) for o in PANEL_OUTPUTS],
                  Input(ids.SELECTION, "data"), Input(ids.TRAV_STEPS, "value"), Input(ids.TRAV_RANGE, "value"),
                  Input(ids.TRAV_NBASE, "value"), Input(ids.TRAV_SEED, "value"), Input(ids.TRAV_BASES, "data"),
                  Input(ids.TRAV_PAGE, "data"), Input(ids.TRAV_ALL, "value"),
                  State(ids.ANALYSIS, "data"), State(ids.HIGHLIGHT, "data"), prevent_initial_call=True)
    def _traversals(sel, steps, qrange, n_bases, seed, picked, page, show_all, tok, shown):
        new_sel = any(t["prop_id"].startswith(ids.SELECTION + ".") for t in ctx.triggered) or not ctx.triggered
        return panel_outputs(tok, sel, shown, new_sel, steps, qrange, n_bases, seed, picked, page, show_all, cfg)

    @app.callback(Output(ids.BASE_STRIP, "children"), Input(ids.ANALYSIS, "data"), Input(ids.TRAV_SEED, "value"),
                  prevent_initial_call=True)
    def _strip(tok, seed):
        return base_strip(tok, seed, cfg)

    @app.callback(Output(ids.TRAV_BASES, "data"), Input({"type": ids.BASE_THUMB_TYPE, "index": ALL}, "n_clicks"),
                  Input(ids.BASE_RANDOM, "n_clicks"), State(ids.TRAV_BASES, "data"), prevent_initial_call=True)
    def _pick(clicks, _random, picked):
        return pick_bases(ctx.triggered_id, clicks, picked)

    @app.callback(Output({"type": ids.BASE_THUMB_TYPE, "index": ALL}, "className"), Input(ids.TRAV_BASES, "data"),
                  State({"type": ids.BASE_THUMB_TYPE, "index": ALL}, "id"), prevent_initial_call=True)
    def _thumbs(picked, thumb_ids):
        return thumb_classes(picked, thumb_ids)
