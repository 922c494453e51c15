"""Decoded latent traversals: what a channel encodes, as a grid of images.

Rows are base inputs, columns are values along one latent; every other latent keeps the base
input's posterior mean. The range of values comes from quantiles of that channel's posterior
means over the fingerprint sample. Channels of one hotspot are aligned in sign (a channel whose
means anti-correlate with the medoid's is traversed in reverse) so their grids read the same way.
The whole grid is decoded in one batch, from the base inputs' posterior means (so decoder-only
members, such as ONNX decoders imported with `vaefrag import --decoders`, traverse too). Saving
images is a separate step (the caller's).
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

__all__ = ["traversal_values", "align_signs", "decode_traversal", "traverse", "to_uint8", "channel_traversals", "hotspot_traversals",
           "member_traversals"]


def traversal_values(channel_mu, n_values: int = 7, quantiles=(0.05, 0.95), sign: int = 1) -> np.ndarray:
    """Latent values to traverse a channel.

    Parameters
    ----------
    channel_mu : [N] posterior means of the channel over the fingerprint.
    n_values : number of columns.  quantiles : (lo, hi) in [0, 1], lo < hi.
    sign : +1, or -1 to run the traversal in the opposite direction (sign alignment).

    Returns
    -------
    [n_values] float64: ``sign * linspace(q_lo, q_hi)`` of ``sign * channel_mu``.
    """
    m = np.asarray(channel_mu, dtype=np.float64).reshape(-1)
    if m.size == 0 or not np.all(np.isfinite(m)):
        raise ValueError("channel_mu: expected a non-empty vector of finite posterior means")
    if int(n_values) != n_values or n_values < 2:
        raise ValueError(f"n_values: expected an integer >= 2, got {n_values}")
    lo, hi = quantiles
    if not 0.0 <= lo < hi <= 1.0:
        raise ValueError(f"quantiles: expected 0 <= lo < hi <= 1, got {quantiles}")
    if sign not in (1, -1):
        raise ValueError(f"sign: expected +1 or -1, got {sign}")
    q = np.quantile(sign * m, [lo, hi])
    return sign * np.linspace(q[0], q[1], int(n_values))


def _ranks(a: np.ndarray) -> np.ndarray:
    return np.argsort(np.argsort(a, axis=-1, kind="stable"), axis=-1).astype(np.float64)


def align_signs(channel_mus, reference: int = 0) -> np.ndarray:
    """Signs that align channels with a reference channel.

    Parameters
    ----------
    channel_mus : [S, N] posterior means of S channels over the fingerprint.
    reference : row of the reference channel (e.g. the hotspot medoid).

    Returns
    -------
    int [S] of +1 / -1: -1 where the channel's means anti-correlate (Spearman) with the reference's.
    """
    m = np.asarray(channel_mus, dtype=np.float64)
    if m.ndim != 2 or m.shape[1] < 2:
        raise ValueError(f"channel_mus: expected [S, N] with N >= 2, got shape {m.shape}")
    if not 0 <= reference < m.shape[0]:
        raise ValueError(f"reference: expected a row in [0, {m.shape[0]}), got {reference}")
    r = _ranks(m)
    r -= r.mean(1, keepdims=True)
    corr = r @ r[reference]
    return np.where(corr < 0, -1, 1).astype(np.int64)


def to_uint8(x) -> np.ndarray:
    """Values in [0, 1] -> uint8 in [0, 255] (rounded, clipped)."""
    return np.clip(np.rint(np.asarray(x, dtype=np.float64) * 255.0), 0, 255).astype(np.uint8)


def decode_traversal(model, base_mu, latent: int, values, *, device="cpu") -> np.ndarray:
    """Decode a traversal grid from the base inputs' posterior means (only the decoder runs).

    Parameters
    ----------
    model : anything with ``decode(z [B, L]) -> x`` in [0, 1] on torch tensors (`members.load_member`:
        our network or an ONNX member).
    base_mu : [R, L] posterior means of the base inputs (rows).
    latent : the latent index to traverse.  values : [V] values it takes (columns).

    Returns
    -------
    Images: uint8 [R, V, H, W] (one channel) or [R, V, H, W, C]; vectors: float32 [R, V, D].
    """
    import torch

    base = np.asarray(base_mu, dtype=np.float32)
    vals = np.asarray(values, dtype=np.float32).reshape(-1)
    if base.ndim != 2 or len(base) == 0:
        raise ValueError(f"base_mu: expected [R, L] posterior means of at least one input, got shape {base.shape}")
    if vals.size == 0 or not np.all(np.isfinite(vals)):
        raise ValueError("values: expected at least one finite value")
    r, v, n_lat = len(base), vals.size, base.shape[1]
    if not 0 <= latent < n_lat:
        raise ValueError(f"latent: expected an index in [0, {n_lat}), got {latent}")
    z = np.repeat(base[:, None, :], v, axis=1)
    z[:, :, latent] = vals[None, :]
    with torch.no_grad():
        out = model.decode(torch.from_numpy(z.reshape(r * v, n_lat)).to(device))
    out = torch.as_tensor(out).float().cpu().numpy()
    out = out.reshape((r, v) + out.shape[1:])
    if out.ndim == 5:                                  # [R, V, C, H, W]
        out = out[:, :, 0] if out.shape[2] == 1 else np.moveaxis(out, 2, -1)
        return to_uint8(out)
    return out.astype(np.float32)


def traverse(model, base_inputs, latent: int, values, *, device="cpu") -> np.ndarray:
    """Decode a traversal grid of new inputs: encode them, then `decode_traversal` from their means.

    Parameters
    ----------
    model : a VAE with ``encode(x) -> (mu, logvar)`` [B, L] and ``decode(z) -> x`` in [0, 1]
        (e.g. ``members.load_member``).
    base_inputs : [R, *input_shape] inputs (images [R, C, H, W] or vectors [R, D]); one row each.
    latent : the latent index to traverse.  values : [V] values it takes (columns).

    Returns
    -------
    Images: uint8 [R, V, H, W] (one channel) or [R, V, H, W, C]; vectors: float32 [R, V, D].
    """
    import torch

    x = np.asarray(base_inputs, dtype=np.float32)
    if x.ndim < 2 or len(x) == 0:
        raise ValueError(f"base_inputs: expected a batch [R, ...] of at least one input, got shape {x.shape}")
    with torch.no_grad():
        mu, _ = model.encode(torch.from_numpy(x).to(device))
    return decode_traversal(model, torch.as_tensor(mu).float().cpu().numpy(), latent, values, device=device)


def channel_traversals(ensemble, channels: Sequence, *, n_values: int = 7, n_rows: int = 3,
                       quantiles=(0.05, 0.95), align: bool = True, rows=None, seed: int = 0,
                       device="cpu") -> tuple[list[np.ndarray], np.ndarray]:
    """Traversal grids of several channels of an ensemble on shared base inputs.

    Parameters
    ----------
    ensemble : `store.Ensemble` with weights (or ONNX decoders) and fingerprint inputs ``x``; the
        base inputs enter through their stored posterior means (only the decoders run).
    channels : (model, latent) pairs; with ``align`` the first one is the sign reference (the medoid).
    n_values, quantiles : columns and their range (`traversal_values`).
    n_rows : base inputs, drawn from the fingerprint with ``seed`` unless ``rows`` (indices) is given.

    Returns
    -------
    grids : list of arrays from `traverse`, one per channel.  signs : int [len(channels)].
    """
    from vaefrag.members import load_member

    if not getattr(ensemble, "has_weights", False):
        raise ValueError(f"ensemble {getattr(ensemble, 'name', '?')}: traversals need member weights or ONNX "
                         "decoders, and this ensemble has none (imported posteriors only; see vaefrag import --decoders)")
    if ensemble.x is None:
        raise ValueError(f"ensemble {ensemble.name}: traversals need the fingerprint inputs 'x' (fingerprint.npz)")
    ch = np.asarray(channels, dtype=np.int64).reshape(-1, 2)
    if ch.size == 0:
        raise ValueError("channels: expected at least one (model, latent) pair")
    k, n, l_ = ensemble.mu.shape
    if ch[:, 0].min() < 0 or ch[:, 0].max() >= k or ch[:, 1].min() < 0 or ch[:, 1].max() >= l_:
        raise ValueError(f"channels: expected models in [0, {k}) and latents in [0, {l_}), got {ch.tolist()}")
    if rows is None:
        rows = np.sort(np.random.default_rng(seed).choice(n, size=min(n_rows, n), replace=False))
    rows = np.asarray(rows, dtype=np.int64)
    mus = ensemble.mu[ch[:, 0], :, ch[:, 1]]                   # [S, N]
    signs = align_signs(mus, 0) if align else np.ones(len(ch), dtype=np.int64)
    grids, models = [], {}
    for (m, lat), s, mu_c in zip(ch, signs, mus):
        if m not in models:
            models[m] = load_member(ensemble, int(m), device=device)
        vals = traversal_values(mu_c, n_values, quantiles, int(s))
        grids.append(decode_traversal(models[m], ensemble.mu[m, rows], int(lat), vals, device=device))
    return grids, signs


def hotspot_traversals(ensemble, analysis, *, n_values: int = 7, n_rows: int = 3, quantiles=(0.05, 0.95),
                       seed: int = 0, device="cpu") -> dict[int, np.ndarray]:
    """Traversal grid of each hotspot's medoid channel, on shared base inputs.

    ensemble : `store.Ensemble` with weights; analysis : its `analysis.Analysis`.
    Returns dict hotspot id -> grid (see `traverse`); empty without hotspots.
    """
    if not analysis.hotspots:
        return {}
    medoids = [analysis.channel_ids[analysis.kept[h.medoid]] for h in analysis.hotspots]
    grids, _ = channel_traversals(ensemble, medoids, n_values=n_values, n_rows=n_rows, quantiles=quantiles,
                                  align=False, seed=seed, device=device)
    return {h.id: g for h, g in zip(analysis.hotspots, grids)}


def member_traversals(ensemble, analysis, hotspot: int, *, n_values: int = 7, n_rows: int = 3,
                      quantiles=(0.05, 0.95), seed: int = 0, device="cpu"):
    """Sign-aligned traversals of every member of one hotspot, the medoid first.

    Returns
    -------
    channels : int [S, 2] (model, latent), medoid first;  grids : list of S grids;
    signs : int [S], -1 where a member runs opposite to the medoid (shown flipped back).
    """
    ids = {h.id: h for h in analysis.hotspots}
    if hotspot not in ids:
        raise ValueError(f"hotspot: expected one of {sorted(ids)}, got {hotspot}")
    h = ids[hotspot]
    order = [h.medoid] + [int(m) for m in h.members if m != h.medoid]
    channels = analysis.channel_ids[analysis.kept[order]]
    grids, signs = channel_traversals(ensemble, channels, n_values=n_values, n_rows=n_rows, quantiles=quantiles,
                                      align=True, seed=seed, device=device)
    return channels, grids, signs
