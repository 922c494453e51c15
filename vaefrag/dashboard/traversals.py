"""Traversal images for a selection (no Dash): which channels to show, decoded grids as PNG URIs.

A hotspot shows its medoid and up to eight other members from *different* models (per model the
member closest to the medoid), each traversed with the sign that aligns it with the medoid
(`traversal.align_signs`). One channel shows its own traversal; a model or a lasso set shows
up to nine of its channels. Members are loaded once per process (`data.load_member`); base inputs
enter through their stored posterior means, so a click runs only the decoders.
"""
from __future__ import annotations

import functools
from pathlib import Path

import numpy as np

from vaefrag import traversal
from vaefrag.dashboard import data
from vaefrag.figures.views import channel_label, png_data_uri, traversal_image

MAX_CARDS = 9


def channels_to_show(analysis, sel: dict | None) -> list[int]:
    """Kept indices to traverse for a selection, reference (medoid / first) first."""
    if not sel or not sel.get("channels"):
        return []
    kept_models = np.asarray(analysis.channel_ids)[np.asarray(analysis.kept, dtype=np.int64), 0]
    if sel["kind"] == "hotspot":
        h = next((h for h in analysis.hotspots if h.id == sel["hotspot"]), None)
        if h is None:
            return []
        medoid = int(h.medoid)
        nmi = np.asarray(analysis.nmi)
        best: dict[int, int] = {}
        for c in (int(c) for c in h.members):
            m = int(kept_models[c])
            if c == medoid or m == kept_models[medoid]:
                continue
            if m not in best or nmi[medoid, c] > nmi[medoid, best[m]]:
                best[m] = c
        others = sorted(best.values(), key=lambda c: -nmi[medoid, c])
        return [medoid] + others[:MAX_CARDS - 1]
    if sel["kind"] == "channel":
        return [int(sel["channel"])]
    chans = [int(c) for c in sel["channels"]]
    if sel["kind"] == "model":
        info = np.asarray(analysis.info)[np.asarray(analysis.kept)[chans]]
        chans = [chans[i] for i in np.argsort(-info, kind="stable")]
    return chans[:MAX_CARDS]


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


@functools.lru_cache(maxsize=512)
def _card_uri(path: str, stamp: int, model: int, latent: int, sign: int, steps: int, lo: float, hi: float,
              rows: tuple) -> str:
    """PNG data URI of one channel's traversal grid, memoised by everything it depends on
    (the ensemble's posteriors file time stamp included), so going back to a hotspot is instant."""
    ens = data.load_ensemble(path)
    vals = traversal.traversal_values(ens.mu[model, :, latent], steps, (lo, hi), sign)
    grid = decode_grid(data.load_member(path, model), ens.mu[model, list(rows)], latent, vals)
    return png_data_uri(traversal_image(grid, gap=1))


def cards(path, analysis, sel: dict | None, *, steps: int = 7, quantiles=(0.05, 0.95), n_bases: int = 2,
          seed: int = 0, picked=None) -> list[dict]:
    """Traversal cards of a selection.

    Returns
    -------
    list of dicts: ``label`` (``m3:z2``), ``model``, ``latent``, ``kept``, ``sign`` (+1 / -1),
    ``info`` (bits), ``uri`` (PNG data URI of the [bases x steps] grid), ``reference`` (bool).

    Raises ValueError when the ensemble cannot be traversed (no weights or no fingerprint inputs).
    """
    chans = channels_to_show(analysis, sel)
    if not chans:
        return []
    ens = data.load_ensemble(path)
    if not ens.has_weights:
        raise ValueError(f"ensemble {ens.name}: no member weights (imported posteriors), so no traversals")
    if ens.x is None:
        raise ValueError(f"ensemble {ens.name}: no fingerprint inputs (fingerprint.npz 'x'), so no traversals")
    lo, hi = (float(q) for q in quantiles)
    if not 0.0 <= lo < hi <= 1.0:
        raise ValueError(f"range: expected 0 <= low < high <= 1, got {quantiles}")
    steps = int(min(max(int(steps or 7), 2), 15))
    kept = np.asarray(analysis.kept, dtype=np.int64)
    ids = np.asarray(analysis.channel_ids)[kept[chans]]                 # [S, 2]
    mus = ens.mu[ids[:, 0], :, ids[:, 1]]                               # [S, N]
    signs = traversal.align_signs(mus, 0) if len(chans) > 1 else np.ones(1, dtype=np.int64)
    rows = base_rows(ens.n_points, n_bases, seed, picked)
    out = []
    rpath, stamp = str(Path(path).resolve()), (Path(path) / "posteriors.npz").stat().st_mtime_ns
    for i, ((m, z), s) in enumerate(zip(ids, signs)):
        uri = _card_uri(rpath, stamp, int(m), int(z), int(s), steps, lo, hi, tuple(int(r) for r in rows))
        out.append({"label": channel_label(m, z), "model": int(m), "latent": int(z), "kept": int(chans[i]),
                    "sign": int(s), "info": float(analysis.info[kept[chans[i]]]), "reference": i == 0,
                    "uri": uri})
    return out


def thumbnails(path, count: int = 24, seed: int = 0) -> list[tuple[int, str]]:
    """(fingerprint row, PNG data URI) of ``count`` fingerprint inputs to pick bases from ([] for vectors)."""
    ens = data.load_ensemble(path)
    if ens.x is None or ens.x.ndim != 4:
        return []
    rows = base_rows(ens.n_points, min(count, ens.n_points), seed)
    imgs = traversal.to_uint8(ens.x[rows])                              # [n, C, H, W]
    imgs = imgs[:, 0] if imgs.shape[1] == 1 else np.moveaxis(imgs, 1, -1)
    return [(int(r), png_data_uri(im)) for r, im in zip(rows, imgs)]
