"""The URL: a bookmark of everything on screen, and Back / Forward through the selections.

The query carries the ensemble and analysis parameters (``ensemble measure thr ms xi nmin``, read by
`callbacks.analysis.open_analysis`), the selection (``hotspot`` numbered from 1, ``channel=m5:z2``,
``model``, ``channels=m1:z0,...``: `selection.to_query`), the views (``view`` nmi / vi, ``map``
umap / mds, ``color``) and the traversal settings (``steps bases seed range all``).

The server callbacks read the query from ``URL_QUERY``, which a clientside callback relays from
dcc.Location's ``search``, except the empty query of the page as served (it shows what that asks
for). Unchanged controls are not set again (`controls.already_shown`).

Another clientside callback writes the URL: a new selection the user asked for is a new history entry
(``pushState``), anything else replaces the current one. Back / Forward fire ``popstate``; a
listener hands the query to the ``URL_POP`` store, from which the selection callback
(`views.update_selection`) and `controls_from_query` restore the page. A selection restored so
is marked ``from_url`` and is not pushed again (Forward stays possible).
"""
from __future__ import annotations

from dash import Input, Output, State, ctx, no_update

from vaefrag.dashboard import ids
from vaefrag.dashboard import traversals as trav
from vaefrag.dashboard.callbacks.analysis import parse_query
from vaefrag.dashboard.callbacks.controls import already_shown
from vaefrag.params import DEFAULT_MIN_NMI

#: the traversal / view controls the URL restores: (query key, component id, default)
CONTROL_KEYS = (("color", ids.MAP_COLOR, "hotspot"), ("steps", ids.TRAV_STEPS, trav.STEPS),
                ("bases", ids.TRAV_NBASE, trav.BASES), ("seed", ids.TRAV_SEED, trav.SEED))

URL_JS = """
function(tok, sel, view, mapm, color, steps, nbase, seed, range, all) {
    const nu = window.dash_clientside.no_update;
    if (!window.__vfPopListener) {
        window.__vfPopListener = true;
        window.addEventListener('popstate', function () {
            window.dash_clientside.set_props('%(pop)s', {data: {search: window.location.search, t: Date.now()}});
        });
    }
    if (!tok) { return nu; }
    const p = tok.params, q = new URLSearchParams();
    q.set('ensemble', tok.ensemble); q.set('measure', p.measure); q.set('thr', p.info_threshold);
    if (p.min_samples !== null && p.min_samples !== undefined) { q.set('ms', p.min_samples); }
    if (p.xi !== null && p.xi !== undefined) { q.set('xi', p.xi); }
    if (p.min_nmi !== null && p.min_nmi !== undefined && p.min_nmi !== %(min_nmi)s) { q.set('nmin', p.min_nmi); }
    const mine = (sel && sel.key === tok.key) ? sel : null;
    if (mine && mine.query) { for (const k of Object.keys(mine.query)) { q.set(k, mine.query[k]); } }
    if (view && view !== 'nmi') { q.set('view', view); }
    if (mapm && mapm !== 'umap') { q.set('map', mapm); }
    if (color && color !== 'hotspot') { q.set('color', color); }
    if (steps !== null && steps !== undefined && String(steps) !== '%(steps)s') { q.set('steps', steps); }
    if (nbase !== null && nbase !== undefined && String(nbase) !== '%(bases)s') { q.set('bases', nbase); }
    if (seed !== null && seed !== undefined && String(seed) !== '%(seed)s') { q.set('seed', seed); }
    if (range && (range[0] !== %(lo)r || range[1] !== %(hi)r)) { q.set('range', range[0] + '-' + range[1]); }
    if (all && all.length) { q.set('all', '1'); }
    const s = '?' + q.toString();
    const n = mine ? mine.n : null;
    const first = window.__vfSelN === undefined;
    const changed = n !== window.__vfSelN;
    window.__vfSelN = n;
    if (window.location.search === s) { return s; }
    if (!first && changed && !(mine && mine.from_url)) {
        window.history.pushState(null, '', s);       // a new selection: Back returns to the one before
    } else {
        window.history.replaceState(null, '', s);
    }
    return s;
}
""" % {"pop": ids.URL_POP, "min_nmi": repr(DEFAULT_MIN_NMI), "steps": trav.STEPS, "bases": trav.BASES,
       "seed": trav.SEED, "lo": trav.RANGE[0], "hi": trav.RANGE[1]}


def controls_from_query(search: str | None) -> tuple:
    """Values of the map colour and traversal controls named in a URL query (no_update for the
    ones it does not name; a value the control cannot take is left to its own validation)."""
    q = parse_query(search)
    out = [q.get(key, default) if q else no_update for key, _, default in CONTROL_KEYS]
    rng = no_update
    if q:
        rng = list(trav.RANGE)
        lo, sep, hi = q.get("range", "").partition("-")
        try:
            lo_f, hi_f = float(lo), float(hi)
            if sep and 0 <= lo_f < hi_f <= 1:
                rng = [lo_f, hi_f]
        except ValueError:
            pass
    show_all = (["all"] if q.get("all") == "1" else []) if q else no_update
    return (*out, rng, show_all)


#: URL.search -> ``URL_QUERY``, except the empty query of the page as served when it carries an
#: analysis (what an empty query asks for: the callbacks reading the query would only answer "no
#: change", and three requests at load delay the first render by a few hundred ms)
RELAY_JS = """
function(search, tok) {
    const nu = window.dash_clientside.no_update;
    if (typeof search !== 'string') { return nu; }
    if (!window.__vfQuerySeen) {
        window.__vfQuerySeen = true;
        if (!search && tok) { return nu; }
    }
    return search;
}
"""


def register(app, cfg) -> None:
    app.clientside_callback(RELAY_JS, Output(ids.URL_QUERY, "data"), Input(ids.URL, "search"), State(ids.ANALYSIS, "data"))
    app.clientside_callback(URL_JS, Output(ids.URL_STATE, "data"), Input(ids.ANALYSIS, "data"),
                            Input(ids.SELECTION, "data"), Input(ids.MATRIX_MEASURE, "value"),
                            Input(ids.MAP_METHOD, "value"), Input(ids.MAP_COLOR, "value"),
                            Input(ids.TRAV_STEPS, "value"), Input(ids.TRAV_NBASE, "value"),
                            Input(ids.TRAV_SEED, "value"), Input(ids.TRAV_RANGE, "value"), Input(ids.TRAV_ALL, "value"))

    shown = [cid for _, cid, _ in CONTROL_KEYS] + [ids.TRAV_RANGE, ids.TRAV_ALL]

    @app.callback(*[Output(cid, "value", allow_duplicate=True) for _, cid, _ in CONTROL_KEYS],
                  Output(ids.TRAV_RANGE, "value"), Output(ids.TRAV_ALL, "value"),
                  Input(ids.URL_QUERY, "data"), Input(ids.URL_POP, "data"), *[State(cid, "value") for cid in shown],
                  prevent_initial_call=True)
    def _controls(search, pop, *values):
        if ctx.triggered_id == ids.URL_POP:
            search = (pop or {}).get("search")
        return tuple(no_update if already_shown(new, old) else new
                     for new, old in zip(controls_from_query(search), values))
