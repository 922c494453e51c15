"""The page as served: what every view's callback would compute for it, carried by the layout.

A callback with an initial call costs the browser a request and a re-render of the page after the
layout has arrived, and the callbacks that read its outputs wait for it (on a 500-channel ensemble
the initial calls made three waves of requests and delayed the first full render by ~1 s). So no
view callback has an initial call: each callbacks module says, in ``first_values(tok, cfg)``,
what its outputs are for the page as served (analysis ``tok`` at the default parameters, nothing
selected, the layout's settings), computed by the same functions its callbacks call, and
`values` gathers them for `layout.hydrate`. The callbacks then run only on a change.
"""
from __future__ import annotations

import threading

from vaefrag.dashboard import data
from vaefrag.dashboard import sweep as sweep_view
from vaefrag.dashboard import traversals
from vaefrag.dashboard.callbacks import analysis, beyond, traversal, views

#: the modules whose outputs the page carries
MODULES = (analysis, views, traversal, beyond, sweep_view)

#: one first page is built at a time (the start-up thread and early page loads wait for it, not
#: build its figures twice)
_LOCK = threading.Lock()


def values(name: str | None, cfg) -> tuple[dict | None, dict]:
    """(token of ensemble ``name``'s analysis at the default parameters, or None when it is not
    cached; {(id, property): value} of every view for the page as served with it)."""
    with _LOCK:
        tok = views.default_token(name, cfg)
        out: dict = {}
        for module in MODULES:
            out.update(module.first_values(tok, cfg))
        return tok, out


def prefetch(name: str | None, cfg):
    """Decode the first page of traversals of every hotspot of ensemble ``name``'s default analysis
    in the background, now (`traversals.prefetch`); the server calls it once the first page is served
    and torch is imported. Returns the prefetch's Event, or None when nothing was queued."""
    tok = views.default_token(name, cfg)
    a = data.analysis_from_token(tok, cfg.cache_dir) if tok else None
    if a is None:
        return None
    return traversals.prefetch(data.ensemble_path(cfg.root, name), a, delay=0.0)
