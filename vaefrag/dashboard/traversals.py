"""Traversal cards for a selection (no Dash): which channels to show, decoded grids as PNG URIs or points.

Every member of a selection is traversable, in pages of `PAGE_SIZE` (or all at once): a hotspot
shows its medoid first and then every other member by decreasing NMI with the medoid, so the
typical members come first and the atypical ones (channels that mix factors) last, still
reachable; a lasso set the same around its first channel; a model its channels by information.
Each is traversed with the sign that aligns it with the first (`traversal.align_signs`).
Members are loaded once per process (`data.load_member`); base inputs enter through their stored
posterior means, so a click runs only the decoders. Images are sent at their own resolution and
shown `display_scale` times larger with nearest-neighbour scaling (crisp pixels, small payload);
vector outputs come back as points (the panel draws them in the plane).
"""
from __future__ import annotations

import functools
import logging
import math
import queue
import threading
import time
from pathlib import Path

import numpy as np

from vaefrag import traversal
from vaefrag.dashboard import data
from vaefrag.figures.views import channel_label, png_data_uri, traversal_image

log = logging.getLogger(__name__)

#: cards per page of the traversal panel
PAGE_SIZE = 12
#: the panel's default settings (the layout's inputs, the URL's defaults, the background prefetch)
STEPS, BASES, SEED, RANGE = 7, 2, 0, (0.05, 0.95)
#: an image cell is shown at least this many screen pixels high (integer nearest-neighbour scale)
MIN_CELL_PX = 40


def display_scale(height: int) -> int:
    """Integer magnification of an image of ``height`` pixels: the smallest making it >= `MIN_CELL_PX`."""
    return max(1, math.ceil(MIN_CELL_PX / max(int(height), 1)))


def channels_to_show(analysis, sel: dict | None) -> list[int]:
    """Every kept index of a selection, in the order the panel shows them (reference first).

    Hotspot: medoid, then the other members by decreasing NMI with it (ties by kept index).
    Lasso set: its first channel, then the others by NMI with it. Model: by decreasing information.
    One channel: itself.
    """
    if not sel or not sel.get("channels"):
        return []
    nmi = np.nan_to_num(np.asarray(analysis.nmi, dtype=np.float64), nan=-1.0)
    if sel["kind"] == "hotspot":
        h = next((h for h in analysis.hotspots if h.id == sel["hotspot"]), None)
        if h is None:
            return []
        ref, members = int(h.medoid), [int(c) for c in h.members]
    elif sel["kind"] == "channel":
        return [int(sel["channel"])]
    elif sel["kind"] == "model":
        chans = [int(c) for c in sel["channels"]]
        info = np.asarray(analysis.info)[np.asarray(analysis.kept)[chans]]
        return [chans[i] for i in np.argsort(-info, kind="stable")]
    else:
        members = [int(c) for c in sel["channels"]]
        ref = members[0]
    others = sorted((c for c in members if c != ref), key=lambda c: (-nmi[ref, c], c))
    return [ref] + others


def page_of(chans: list[int], page: int = 0, show_all: bool = False) -> tuple[list[int], int, int]:
    """(the channels on ``page``, the page shown (clamped), the number of pages)."""
    if show_all or len(chans) <= PAGE_SIZE:
        return list(chans), 0, 1
    pages = math.ceil(len(chans) / PAGE_SIZE)
    page = min(max(int(page or 0), 0), pages - 1)
    return list(chans[page * PAGE_SIZE:(page + 1) * PAGE_SIZE]), page, pages


def base_rows(n_points: int, n_bases: int = 2, seed: int = 0, picked=None) -> np.ndarray:
    """Fingerprint rows used as base inputs: ``picked`` indices, else ``n_bases`` drawn with ``seed``."""
    if picked:
        rows = np.asarray([int(p) for p in picked if 0 <= int(p) < n_points], dtype=np.int64)
        if rows.size:
            return rows
    n = int(min(max(int(n_bases or 1), 1), n_points))
    return np.sort(np.random.default_rng(int(seed or 0)).choice(n_points, size=n, replace=False))


def decode_grid(model, base_mu, latent: int, values) -> np.ndarray:
    """`traversal.traverse` from stored posterior means: the fingerprint's encodings are already in
    ``posteriors.npz``, so only the decoder runs (one batch).

    base_mu : [R, L] posterior means of the base inputs; values : [V].
    Returns uint8 [R, V, H, W(, C)] images or float32 [R, V, D] vectors, as `traversal.traverse`.
    """
    import torch

    base = np.asarray(base_mu, dtype=np.float32)
    vals = np.asarray(values, dtype=np.float32).reshape(-1)
    r, v, n_lat = len(base), vals.size, base.shape[1]
    z = np.repeat(base[:, None, :], v, axis=1)
    z[:, :, latent] = vals[None, :]
    with torch.no_grad():
        out = model.decode(torch.from_numpy(z.reshape(r * v, n_lat))).float().cpu().numpy()
    out = out.reshape((r, v) + out.shape[1:])
    if out.ndim == 5:                                   # [R, V, C, H, W]
        out = out[:, :, 0] if out.shape[2] == 1 else np.moveaxis(out, 2, -1)
        return traversal.to_uint8(out)
    return out.astype(np.float32)


@functools.lru_cache(maxsize=1024)
def _card_grid(path: str, stamp: int, model: int, latent: int, sign: int, steps: int, lo: float, hi: float,
               rows: tuple) -> tuple:
    """One channel's decoded traversal, memoised by everything it depends on (the ensemble's
    posteriors file time stamp included), so going back to a hotspot is instant:
    ("image", PNG data URI, (height, width) of one cell) or ("vector", float32 [R, V, D])."""
    ens = data.load_ensemble(path)
    vals = traversal.traversal_values(ens.mu[model, :, latent], steps, (lo, hi), sign)
    grid = decode_grid(data.load_member(path, model), ens.mu[model, list(rows)], latent, vals)
    if grid.dtype != np.uint8:
        grid.setflags(write=False)
        return ("vector", grid)
    return ("image", png_data_uri(traversal_image(grid, gap=1)), tuple(int(v) for v in grid.shape[2:4]))


def cards(path, analysis, sel: dict | None, *, steps: int = STEPS, quantiles=RANGE, n_bases: int = BASES,
          seed: int = SEED, picked=None, page: int = 0, show_all: bool = False) -> tuple[list[dict], dict]:
    """Traversal cards of (one page of) a selection.

    Returns
    -------
    cards : list of dicts: ``label`` (``m3:z2``), ``model``, ``latent``, ``kept``, ``sign`` (+1 / -1),
        ``info`` (bits), ``nmi`` (with the reference), ``reference`` (bool), ``rank`` (1-based place in
        the selection), and either ``uri`` (PNG data URI of the [bases x steps] grid), ``cell``
        (its cell's height, width) and ``scale`` (`display_scale`), or ``points`` (float32 [bases, steps, D]).
    pager : {"page", "pages", "first", "last", "total"} (``first`` / ``last`` 1-based ranks shown).

    Raises ValueError when the ensemble cannot be traversed (no weights or no fingerprint inputs)
    or a setting is out of range (steps outside 2..15, range not 0 <= low < high <= 1).
    """
    chans = channels_to_show(analysis, sel)
    if not chans:
        return [], {"page": 0, "pages": 0, "first": 0, "last": 0, "total": 0}
    ens = data.load_ensemble(path)
    if not ens.has_weights:
        raise ValueError(f"ensemble {ens.name}: no member weights (imported posteriors), so no traversals")
    if ens.x is None:
        raise ValueError(f"ensemble {ens.name}: no fingerprint inputs (fingerprint.npz 'x'), so no traversals")
    lo, hi = (float(q) for q in quantiles)
    if not 0.0 <= lo < hi <= 1.0:
        raise ValueError(f"range: expected 0 <= low < high <= 1, got {quantiles}")
    if not 2 <= int(steps) <= 15:
        raise ValueError(f"steps: expected an integer from 2 to 15, got {steps}")
    shown, page, pages = page_of(chans, page, show_all)
    start = chans.index(shown[0])
    kept = np.asarray(analysis.kept, dtype=np.int64)
    ids = np.asarray(analysis.channel_ids)[kept[chans]]                 # [S, 2] all of the selection
    mus = ens.mu[ids[:, 0], :, ids[:, 1]]                               # [S, N]
    signs = traversal.align_signs(mus, 0) if len(chans) > 1 else np.ones(1, dtype=np.int64)
    rows = tuple(int(r) for r in base_rows(ens.n_points, n_bases, seed, picked))
    nmi = np.asarray(analysis.nmi, dtype=np.float64)
    out = []
    rpath, stamp = str(Path(path).resolve()), (Path(path) / "posteriors.npz").stat().st_mtime_ns
    for i in range(start, start + len(shown)):
        (m, z), s = ids[i], signs[i]
        got = _card_grid(rpath, stamp, int(m), int(z), int(s), int(steps), lo, hi, rows)
        card = {"label": channel_label(m, z), "model": int(m), "latent": int(z), "kept": int(chans[i]),
                "sign": int(s), "info": float(analysis.info[kept[chans[i]]]), "reference": i == 0,
                "nmi": float(nmi[chans[0], chans[i]]), "rank": i + 1}
        if got[0] == "image":
            card.update(uri=got[1], cell=got[2], scale=display_scale(got[2][0]))
        else:
            card["points"] = got[1]
        out.append(card)
    pager = {"page": page, "pages": pages, "first": start + 1, "last": start + len(shown), "total": len(chans)}
    return out, pager


def fingerprint_points(path, limit: int = 600) -> np.ndarray | None:
    """Up to ``limit`` fingerprint inputs of a vector-output ensemble [n, D] (the backdrop of its
    traversal plots), or None for images."""
    ens = data.load_ensemble(path)
    if ens.x is None or ens.x.ndim != 2:
        return None
    rows = np.unique(np.linspace(0, len(ens.x) - 1, min(len(ens.x), limit)).astype(np.int64))   # spread over all
    return np.asarray(ens.x[rows], dtype=np.float32)
def thumbnails(path, count: int = 24, seed: int = 0) -> list[tuple[int, str]]:
    """(fingerprint row, PNG data URI) of ``count`` fingerprint inputs to pick bases from ([] for vectors)."""
    ens = data.load_ensemble(path)
    if ens.x is None or ens.x.ndim != 4:
        return []
    rows = base_rows(ens.n_points, min(count, ens.n_points), seed)
    imgs = traversal.to_uint8(ens.x[rows])                              # [n, C, H, W]
    imgs = imgs[:, 0] if imgs.shape[1] == 1 else np.moveaxis(imgs, 1, -1)
    return [(int(r), png_data_uri(im)) for r, im in zip(rows, imgs)]


# ------------------------------------------------------------------------------ prefetching
#: analyses whose traversals were queued (bounded: the oldest are forgotten, and may be queued again)
_PREFETCH_MEMORY = 256


class _Prefetcher:
    """One daemon thread that decodes queued (due time, job) items in order; it never delays the
    process's exit (a ThreadPoolExecutor would wait at exit for every queued item)."""

    def __init__(self):
        self._queue: queue.Queue = queue.Queue()
        self._seen: dict = {}                        # insertion-ordered set of queued keys
        self._lock = threading.Lock()
        self._thread = None

    def add(self, key, due: float, job) -> threading.Event | None:
        """Queue ``job`` (a callable) to run at perf_counter ``due``, once per ``key``; returns an
        Event set when it has run, or None when ``key`` was queued before."""
        with self._lock:
            if key in self._seen:
                return None
            self._seen[key] = True
            while len(self._seen) > _PREFETCH_MEMORY:
                self._seen.pop(next(iter(self._seen)))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="vaefrag-prefetch", daemon=True)
                self._thread.start()
        done = threading.Event()
        self._queue.put((due, job, done))
        return done

    def _run(self):
        while True:
            due, job, done = self._queue.get()
            time.sleep(max(0.0, due - time.perf_counter()))
            try:
                job()
            except Exception as exc:  # noqa: BLE001 - a cache warmer never fails the page
                log.warning("prefetching traversals: %s", exc)
            finally:
                done.set()


_PREFETCH = _Prefetcher()


def prefetch(path, analysis, *, delay: float = 4.0, **settings) -> threading.Event | None:
    """Decode, in a background thread, the first page of traversals of every hotspot of ``analysis``
    with the panel's default settings (or ``settings``, keywords of `cards`), so that a first click
    on a hotspot is served from the memo (`_card_grid`). Once per (ensemble, analysis, settings);
    runs ``delay`` seconds after the call at the earliest (after the page's first render).
    Returns an Event set once it ran, or None when nothing was queued (queued before, no weights,
    no hotspots, or an analysis whose channels the ensemble does not have)."""
    try:
        ens = data.load_ensemble(path)
    except (ValueError, OSError):
        return None
    ids = np.asarray(analysis.channel_ids)
    if not ens.has_weights or ens.x is None or not analysis.hotspots or not len(ids):
        return None
    if ids[:, 0].max() >= ens.n_models or ids[:, 1].max() >= ens.n_latents:
        return None                                  # a token naming another ensemble's analysis
    key = (str(Path(path).resolve()), analysis.key, tuple(sorted(settings.items())))

    def run():
        for h in analysis.hotspots:
            cards(path, analysis, {"kind": "hotspot", "hotspot": int(h.id), "channels": [int(c) for c in h.members]},
                  **settings)

    return _PREFETCH.add(key, time.perf_counter() + delay, run)
