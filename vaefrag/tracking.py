"""Tracking hotspots along an ordered series of analyses (a sweep's values, or training checkpoints).

Pure numpy over already computed analyses and cross-level NMI matrices (no I/O): the callers
(:mod:`vaefrag.sweep`, :mod:`vaefrag.dynamics`) compute each level's analysis and, for every pair
of neighbouring levels i and i+1, the rectangular NMI between their kept channels
(``crossrun.compare_ensembles``); the link weight between hotspot a of level i and hotspot b of
level i+1 is the mean of that NMI over their members, W_i[a, b].

Events, between neighbouring levels i -> i+1, with links L_i = {(a, b): W_i[a, b] >= min_link}:

- ``continues``: a has exactly one link, to b, and b has exactly one link, from a.
- ``splits``:    a (level i) links to two or more hotspots of level i+1 (its ``targets``).
- ``merges``:    b (level i+1) is linked from two or more hotspots of level i (its ``sources``).
- ``appears``:   b (level i+1) has no link from level i.
- ``fades``:     a (level i) has no link to level i+1.

A hotspot can take part in a split and a merge at once (many-to-many links); each is reported.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

#: default link threshold on the mean cross NMI between two hotspots of neighbouring levels
DEFAULT_MIN_LINK = 0.25

EVENT_KINDS = ("continues", "splits", "merges", "appears", "fades")


@dataclass
class LevelSummary:
    """One level (a swept value or a checkpoint) and its hotspots.

    sizes, n_models [H] (channels, models in each hotspot); best_factor [H] (name or None);
    best_factor_nmi, mean_info, mean_nmi [H]; n_channels: all channels; n_informative: channels
    above the information threshold; in_hotspots: informative channels inside a hotspot;
    mean_channel_info: mean information over all channels (bits); scores: name -> mean over models
    (NaN where unavailable); models_total: models in the level's ensemble.
    """

    label: str
    value: float
    sizes: np.ndarray
    n_models: np.ndarray
    best_factor: list
    best_factor_nmi: np.ndarray
    mean_info: np.ndarray
    mean_nmi: np.ndarray
    n_channels: int
    n_informative: int
    in_hotspots: int
    mean_channel_info: float
    scores: dict = field(default_factory=dict)
    models_total: int = 0

    @property
    def n_hotspots(self) -> int:
        return int(len(self.sizes))

    @property
    def fraction_in_hotspots(self) -> float:
        return self.in_hotspots / self.n_informative if self.n_informative else float("nan")


@dataclass
class Event:
    """``kind`` (one of :data:`EVENT_KINDS`) between levels ``level`` and ``level + 1``;
    ``sources`` hotspot ids at ``level``, ``targets`` at ``level + 1`` (0-based), ``nmi`` the link
    weights involved."""

    kind: str
    level: int
    sources: tuple
    targets: tuple
    nmi: tuple = ()


@dataclass
class Tracking:
    """levels [V]; weights: V-1 matrices [H_i, H_{i+1}] (mean cross NMI, NaN where undefined);
    links: (level, a, b, nmi) with nmi >= min_link; events: list of :class:`Event`."""

    levels: list
    weights: list
    links: list
    events: list
    min_link: float

    def events_of(self, kind: str) -> list:
        return [e for e in self.events if e.kind == kind]


def summarize_level(analysis, label: str, value: float) -> LevelSummary:
    """A :class:`LevelSummary` from an ``analysis.Analysis`` (duck-typed: hotspots, info, kept, model_table)."""
    hs = analysis.hotspots
    names = list(analysis.factor_names or [])
    kept_in = sum(h.size for h in hs)
    scores = {}
    for name in ("mig", "sap", "udr", "final_loss", "info", "n_informative"):
        v = np.asarray(analysis.model_table.get(name, []), dtype=np.float64)
        scores[name] = float(np.nanmean(v)) if v.size and np.isfinite(v).any() else float("nan")
    return LevelSummary(
        label=label, value=float(value), sizes=np.array([h.size for h in hs], dtype=np.int64),
        n_models=np.array([h.n_models for h in hs], dtype=np.int64),
        best_factor=[names[h.best_factor] if h.best_factor is not None and names else None for h in hs],
        best_factor_nmi=np.array([h.best_factor_nmi for h in hs], dtype=np.float64),
        mean_info=np.array([h.mean_info for h in hs], dtype=np.float64),
        mean_nmi=np.array([h.mean_nmi for h in hs], dtype=np.float64),
        n_channels=int(len(analysis.info)), n_informative=int(len(analysis.kept)), in_hotspots=int(kept_in),
        mean_channel_info=float(np.mean(analysis.info)) if len(analysis.info) else float("nan"), scores=scores,
        models_total=int(analysis.n_models))


def hotspot_link_weights(cross_nmi: np.ndarray, members_a: list, members_b: list) -> np.ndarray:
    """Mean cross NMI between hotspots: cross_nmi [Mk_a, Mk_b] over kept channels, members_* lists of
    index arrays into the kept channels -> [H_a, H_b] (NaN where no pair is defined)."""
    cross_nmi = np.asarray(cross_nmi, dtype=np.float64)
    out = np.full((len(members_a), len(members_b)), np.nan)
    for i, ma in enumerate(members_a):
        for j, mb in enumerate(members_b):
            block = cross_nmi[np.ix_(np.asarray(ma, int), np.asarray(mb, int))]
            if np.isfinite(block).any():
                out[i, j] = np.nanmean(block)
    return out


def find_events(weights: list, sizes: list, min_link: float = DEFAULT_MIN_LINK) -> tuple[list, list]:
    """Links and events (see module docstring) from V-1 link-weight matrices.

    Parameters
    ----------
    weights : list of V-1 arrays [H_i, H_{i+1}].  sizes : list of V hotspot counts H_i.
    min_link : NMI from which two hotspots of neighbouring levels are linked.

    Returns
    -------
    links : list of (level, a, b, nmi); events : list of :class:`Event`, ordered by level.
    """
    if len(weights) != max(len(sizes) - 1, 0):
        raise ValueError(f"weights: expected {len(sizes) - 1} matrices for {len(sizes)} levels, got {len(weights)}")
    links, events = [], []
    for i, w in enumerate(weights):
        w = np.asarray(w, dtype=np.float64).reshape(sizes[i], sizes[i + 1])
        linked = np.where(np.isfinite(w), w, -np.inf) >= min_link
        for a, b in zip(*np.nonzero(linked)):
            links.append((i, int(a), int(b), float(w[a, b])))
        out_deg, in_deg = linked.sum(1), linked.sum(0)
        for a in range(sizes[i]):
            targets = tuple(int(b) for b in np.nonzero(linked[a])[0])
            if out_deg[a] == 0:
                events.append(Event("fades", i, (a,), ()))
            elif out_deg[a] == 1 and in_deg[targets[0]] == 1:
                events.append(Event("continues", i, (a,), targets, (float(w[a, targets[0]]),)))
            elif out_deg[a] >= 2:
                events.append(Event("splits", i, (a,), targets, tuple(float(w[a, b]) for b in targets)))
        for b in range(sizes[i + 1]):
            sources = tuple(int(a) for a in np.nonzero(linked[:, b])[0])
            if in_deg[b] == 0:
                events.append(Event("appears", i, (), (b,)))
            elif in_deg[b] >= 2:
                events.append(Event("merges", i, sources, (b,), tuple(float(w[a, b]) for a in sources)))
    return links, events


def track(levels: list, weights: list, min_link: float = DEFAULT_MIN_LINK) -> Tracking:
    """Track hotspots along ``levels`` (list of :class:`LevelSummary`) given the V-1 link-weight
    matrices ``weights`` [H_i, H_{i+1}] (:func:`hotspot_link_weights`)."""
    if not 0.0 < min_link <= 1.0:
        raise ValueError(f"min_link: expected a number in (0, 1], got {min_link}")
    links, events = find_events(weights, [lv.n_hotspots for lv in levels], min_link)
    return Tracking(levels=list(levels), weights=[np.asarray(w, dtype=np.float64) for w in weights],
                    links=links, events=events, min_link=float(min_link))


def level_rows(tracking: Tracking) -> list[dict]:
    """One row per level: label, value, hotspots, channels in hotspots, informative channels and the
    fraction of them in hotspots, mean hotspot size (channels) and mean models per hotspot over the
    ensemble's models, mean channel information, mean model scores, and event counts: ``appears``,
    ``splits``, ``merges`` arriving at this level from the previous one, ``fades_after``: this
    level's hotspots with no link to the next."""
    rows = []
    for i, lv in enumerate(tracking.levels):
        counts = {k: 0 for k in EVENT_KINDS}
        for e in tracking.events:
            if e.level == i - 1 and e.kind in ("appears", "splits", "merges"):
                counts[e.kind] += 1
            if e.level == i and e.kind == "fades":
                counts[e.kind] += 1
        rows.append({"level": lv.label, "value": lv.value, "hotspots": lv.n_hotspots,
                     "channels_in_hotspots": lv.in_hotspots, "informative": lv.n_informative,
                     "fraction_in_hotspots": lv.fraction_in_hotspots,
                     "mean_hotspot_size": float(lv.sizes.mean()) if lv.n_hotspots else float("nan"),
                     "mean_models_fraction": float(lv.n_models.mean() / lv.models_total)
                     if lv.n_hotspots and lv.models_total else float("nan"),
                     "mean_channel_info": lv.mean_channel_info,
                     **{f"mean_{k}": v for k, v in lv.scores.items()},
                     "appears": counts["appears"], "splits": counts["splits"], "merges": counts["merges"],
                     "fades_after": counts["fades"]})
    return rows


def hotspot_rows(tracking: Tracking) -> list[dict]:
    """One row per hotspot node: level, hotspot (1-based), size, models, best factor and its NMI, mean info."""
    rows = []
    for i, lv in enumerate(tracking.levels):
        for h in range(lv.n_hotspots):
            rows.append({"level": lv.label, "value": lv.value, "hotspot": h + 1, "channels": int(lv.sizes[h]),
                         "models": int(lv.n_models[h]), "best_factor": lv.best_factor[h] or "",
                         "best_factor_nmi": float(lv.best_factor_nmi[h]), "mean_info": float(lv.mean_info[h])})
    return rows


def event_rows(tracking: Tracking) -> list[dict]:
    """One row per event: kind, from level, to level, source and target hotspots (1-based), NMIs."""
    lv = tracking.levels
    return [{"event": e.kind, "from": lv[e.level].label, "to": lv[e.level + 1].label,
             "sources": " ".join(str(a + 1) for a in e.sources), "targets": " ".join(str(b + 1) for b in e.targets),
             "nmi": " ".join(f"{v:.3f}" for v in e.nmi)} for e in tracking.events]
