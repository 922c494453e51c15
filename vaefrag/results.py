"""Result types, their serialisation (npz + JSON, never pickle) and the channel index helpers.

One home for what the engine returns: `Hotspot` and `Analysis` (one ensemble), `SpacesResult`
(full latent spaces), `HotspotMatch` / `EnsembleComparison` (two ensembles). Numpy and JSON only,
so the dashboard can read cached results without importing torch or scikit-learn.

Channel indices (DESIGN §3): a *flat* channel c = model * L + latent indexes the M channels of
an ensemble; a *kept* index i indexes the Mk channels above the information threshold
(``kept[i] = c``); an *OPTICS position* p is a place along the ordering (``ordering[p] = i``).
Hotspot ids are 0-based inside the code and shown 1-based (`hotspot_number`) everywhere a
person reads them (tables, CSV, NPZ, figures, URLs).
"""
from __future__ import annotations

import io
import json
from dataclasses import dataclass, field

import numpy as np

__all__ = ["Hotspot", "Analysis", "SpacesResult", "HotspotMatch", "EnsembleComparison", "hotspot_rows",
           "hotspot_number", "hotspot_numbers", "optics_positions", "kept_index_of_flat", "pack", "unpack",
           "HOTSPOT_ROW_FIELDS", "STAGES"]

#: the stages after the measures, in the order `analyze` runs them
STAGES = ("structure", "stability", "maps", "scores")

#: columns of `hotspot_rows`
HOTSPOT_ROW_FIELDS = ("hotspot", "size", "models", "mean_info_bits", "mean_nmi", "best_factor", "best_factor_nmi",
                      "stability", "nmi_ci_lo", "nmi_ci_hi", "medoid_model", "medoid_latent")


# --------------------------------------------------------------------------- serialisation


def pack(arrays: dict, meta: dict) -> bytes:
    """npz bytes of named arrays plus a JSON ``meta`` dict (what cache entries hold; no pickle)."""
    buf = io.BytesIO()
    np.savez(buf, meta=np.array(json.dumps(meta)), **arrays)
    return buf.getvalue()


def unpack(data: bytes) -> tuple[dict, dict]:
    """(arrays, meta) from `pack` bytes; never unpickles (object arrays raise ValueError)."""
    with np.load(io.BytesIO(data), allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    return arrays, json.loads(str(arrays.pop("meta")))


def _f(x) -> float | None:
    return None if x is None or not np.isfinite(x) else float(x)


def _g(v) -> float:
    return float("nan") if v is None else float(v)


# --------------------------------------------------------------------------- index helpers


def hotspot_number(hotspot_id: int) -> int:
    """The number a person reads for 0-based hotspot id ``hotspot_id`` (1, 2, ...)."""
    return int(hotspot_id) + 1


def hotspot_numbers(labels) -> np.ndarray:
    """[Mk] 0-based labels (-1: no hotspot) -> [Mk] 1-based hotspot numbers (0: no hotspot)."""
    lab = np.asarray(labels, dtype=np.int64)
    return np.where(lab >= 0, lab + 1, 0)


def optics_positions(ordering) -> np.ndarray:
    """[Mk] OPTICS ordering (kept index at each position) -> [Mk] position of each kept index."""
    order = np.asarray(ordering, dtype=np.int64)
    pos = np.empty(order.size, dtype=np.int64)
    pos[order] = np.arange(order.size)
    return pos


def kept_index_of_flat(kept, n_channels: int) -> np.ndarray:
    """[M] kept index of every flat channel (-1 for channels left out)."""
    out = np.full(int(n_channels), -1, dtype=np.int64)
    out[np.asarray(kept, dtype=np.int64)] = np.arange(len(kept))
    return out


# --------------------------------------------------------------------------- one ensemble


@dataclass
class Hotspot:
    """One hotspot (a group of nearly identical channels).

    members : int [size] indices into the kept channels (in OPTICS order).
    channels : int [size, 2] (model, latent) of the members.
    medoid : kept index of the member with the least summed distance to the others.
    mean_info : mean information of the members (bits).  mean_nmi : mean NMI between distinct members.
    best_factor : factor column with the highest mean NMI over members (None without factors).
    stability : fraction of resamples that find it again (NaN until computed).
    nmi_ci : (lo, hi) resampling interval of ``mean_nmi`` (NaN until computed).
    """

    id: int
    members: np.ndarray
    channels: np.ndarray
    size: int
    n_models: int
    mean_info: float
    mean_nmi: float
    medoid: int
    best_factor: int | None = None
    best_factor_nmi: float = float("nan")
    stability: float = float("nan")
    nmi_ci: tuple = (float("nan"), float("nan"))

    @property
    def number(self) -> int:
        """1-based number shown to people."""
        return hotspot_number(self.id)

    def to_json(self) -> dict:
        return {"id": self.id, "members": self.members.tolist(), "channels": self.channels.tolist(), "size": self.size,
                "n_models": self.n_models, "mean_info": self.mean_info, "mean_nmi": _f(self.mean_nmi),
                "medoid": self.medoid, "best_factor": self.best_factor, "best_factor_nmi": _f(self.best_factor_nmi),
                "stability": _f(self.stability), "nmi_ci": [_f(v) for v in self.nmi_ci]}

    @classmethod
    def from_json(cls, d: dict) -> "Hotspot":
        return cls(id=d["id"], members=np.asarray(d["members"], dtype=np.int64),
                   channels=np.asarray(d["channels"], dtype=np.int64).reshape(-1, 2), size=d["size"],
                   n_models=d["n_models"], mean_info=d["mean_info"], mean_nmi=_g(d["mean_nmi"]), medoid=d["medoid"],
                   best_factor=d["best_factor"], best_factor_nmi=_g(d["best_factor_nmi"]),
                   stability=_g(d["stability"]), nmi_ci=tuple(_g(v) for v in d["nmi_ci"]))


@dataclass
class Analysis:
    """Everything known about an ensemble's channels (see docs/architecture.md).

    channel_ids [M, 2] (model, latent); info, self_info [M] (bits); kept [Mk] indices into M of
    the channels above the threshold; nmi, vi [Mk, Mk]; factor_nmi [Mk, F] or None;
    ordering [Mk] (indices into kept); reachability [Mk] (OPTICS order); labels [Mk];
    hotspots list[Hotspot] (members / medoid index kept); maps name -> [Mk, 2];
    model_table name -> [K] ("info": summed channel information, "n_informative", "mig", "sap",
    "udr", "final_loss"; NaN where unavailable); timings name -> seconds; key: cache key;
    pending: stages not computed in this result (`analyze(stages=...)`), () when complete.
    """

    ensemble_name: str
    params: dict
    channel_ids: np.ndarray
    info: np.ndarray
    self_info: np.ndarray
    kept: np.ndarray
    nmi: np.ndarray
    vi: np.ndarray
    factor_names: list
    factor_nmi: np.ndarray | None
    ordering: np.ndarray
    reachability: np.ndarray
    labels: np.ndarray
    hotspots: list
    maps: dict
    model_table: dict
    timings: dict = field(default_factory=dict)
    key: str = ""
    from_cache: bool = False
    pending: tuple = ()

    @property
    def n_models(self) -> int:
        return int(self.channel_ids[:, 0].max()) + 1 if len(self.channel_ids) else 0

    @property
    def n_latents(self) -> int:
        return int(self.channel_ids[:, 1].max()) + 1 if len(self.channel_ids) else 0

    @property
    def measure(self) -> str:
        return self.params.get("measure", "nmi")

    def distance(self) -> np.ndarray:
        """[Mk, Mk] the distances OPTICS clustered (`structure.channel_distances`)."""
        from vaefrag.structure import channel_distances

        return channel_distances(self.nmi, self.vi, self.measure)

    # ------------------------------------------------------------------ index helpers
    def positions(self) -> np.ndarray:
        """[Mk] OPTICS position of each kept channel (`optics_positions`)."""
        return optics_positions(self.ordering)

    def kept_of_flat(self) -> np.ndarray:
        """[M] kept index of each flat channel, -1 for those left out."""
        return kept_index_of_flat(self.kept, len(self.channel_ids))

    def model_latent(self, kept_index: int) -> tuple[int, int]:
        """(model, latent) of a kept channel."""
        m, l_ = self.channel_ids[self.kept[int(kept_index)]]
        return int(m), int(l_)

    # ------------------------------------------------------------------ (de)serialisation, no pickle
    def to_bytes(self) -> bytes:
        arrays = {"channel_ids": self.channel_ids, "info": self.info, "self_info": self.self_info,
                  "kept": self.kept, "nmi": self.nmi, "vi": self.vi, "ordering": self.ordering,
                  "reachability": self.reachability, "labels": self.labels}
        if self.factor_nmi is not None:
            arrays["factor_nmi"] = self.factor_nmi
        arrays.update({f"map_{k}": v for k, v in self.maps.items()})
        arrays.update({f"model_{k}": np.asarray(v, dtype=np.float64) for k, v in self.model_table.items()})
        meta = {"ensemble_name": self.ensemble_name, "params": self.params, "factor_names": list(self.factor_names),
                "timings": self.timings, "key": self.key, "hotspots": [h.to_json() for h in self.hotspots],
                "pending": list(self.pending)}
        return pack(arrays, meta)

    @classmethod
    def from_bytes(cls, data: bytes) -> "Analysis":
        arr, meta = unpack(data)
        return cls(ensemble_name=meta["ensemble_name"], params=meta["params"], channel_ids=arr["channel_ids"],
                   info=arr["info"], self_info=arr["self_info"], kept=arr["kept"], nmi=arr["nmi"], vi=arr["vi"],
                   factor_names=meta["factor_names"], factor_nmi=arr.get("factor_nmi"), ordering=arr["ordering"],
                   reachability=arr["reachability"], labels=arr["labels"],
                   hotspots=[Hotspot.from_json(h) for h in meta["hotspots"]],
                   maps={k[4:]: v for k, v in arr.items() if k.startswith("map_")},
                   model_table={k[6:]: v for k, v in arr.items() if k.startswith("model_")},
                   timings=meta["timings"], key=meta["key"], pending=tuple(meta.get("pending", ())))

    def export_arrays(self) -> dict:
        """The arrays a person exports (NPZ): matrices, orderings, 1-based ``hotspot`` numbers per kept
        channel (0: in no hotspot), information, factor NMI and the maps."""
        arrays = {"nmi": self.nmi, "vi": self.vi, "kept": self.kept, "channel_ids": self.channel_ids,
                  "info": self.info, "self_info": self.self_info, "ordering": self.ordering,
                  "reachability": self.reachability, "hotspot": hotspot_numbers(self.labels),
                  "factor_names": np.asarray(self.factor_names, dtype=str)}
        if self.factor_nmi is not None:
            arrays["factor_nmi"] = self.factor_nmi
        arrays.update({f"map_{k}": v for k, v in self.maps.items()})
        return arrays


def hotspot_rows(analysis: Analysis) -> list[dict]:
    """One dict per hotspot for tables / CSV (`HOTSPOT_ROW_FIELDS`); ``hotspot`` is the 1-based number."""
    rows = []
    for h in analysis.hotspots:
        mm, ml = analysis.model_latent(h.medoid)
        fname = (analysis.factor_names[h.best_factor] if h.best_factor is not None
                 and h.best_factor < len(analysis.factor_names) else
                 ("" if h.best_factor is None else f"factor {h.best_factor}"))
        rows.append({"hotspot": h.number, "size": h.size, "models": h.n_models, "mean_info_bits": h.mean_info,
                     "mean_nmi": h.mean_nmi, "best_factor": fname, "best_factor_nmi": h.best_factor_nmi,
                     "stability": h.stability, "nmi_ci_lo": h.nmi_ci[0], "nmi_ci_hi": h.nmi_ci[1],
                     "medoid_model": mm, "medoid_latent": ml})
    return rows


# --------------------------------------------------------------------------- full latent spaces

_SPACE_ARRAYS = ("info", "info_err", "self_info", "self_info_err", "mutual", "mutual_err", "nmi", "nmi_err", "vi",
                 "vi_err")


@dataclass
class SpacesResult:
    """Model x model comparison of full latent spaces (bits; *_err are standard errors).

    info, info_err [K]: I(X;U_k);  self_info, self_info_err [K]: I(U_k;U_k');
    mutual, nmi, vi (+ _err) [K, K]: I(U_a;U_b), NMI, VI between whole spaces (NaN NMI for a space
    without information);  n_samples, n_points: Monte Carlo draws and dataset points;
    params: settings;  key: cache key;  from_cache: served from the cache.
    """

    info: np.ndarray
    info_err: np.ndarray
    self_info: np.ndarray
    self_info_err: np.ndarray
    mutual: np.ndarray
    mutual_err: np.ndarray
    nmi: np.ndarray
    nmi_err: np.ndarray
    vi: np.ndarray
    vi_err: np.ndarray
    n_samples: int
    n_points: int
    params: dict = field(default_factory=dict)
    ensemble_name: str = ""
    key: str = ""
    from_cache: bool = False
    timings: dict = field(default_factory=dict)

    @property
    def n_models(self) -> int:
        return int(self.info.shape[0])

    def to_bytes(self) -> bytes:
        """npz bytes (no pickle) for the cache."""
        meta = {"n_samples": self.n_samples, "n_points": self.n_points, "params": self.params,
                "ensemble_name": self.ensemble_name, "key": self.key, "timings": self.timings}
        return pack({k: getattr(self, k) for k in _SPACE_ARRAYS}, meta)

    @classmethod
    def from_bytes(cls, data: bytes) -> "SpacesResult":
        arr, meta = unpack(data)
        return cls(**{k: arr[k] for k in _SPACE_ARRAYS}, **meta)


# --------------------------------------------------------------------------- two ensembles


@dataclass
class HotspotMatch:
    """Where one hotspot of an ensemble is found in the other.

    hotspot : its id (0-based; shown as ``hotspot + 1``).  best_hotspot : the other ensemble's
    hotspot id with the highest mean NMI to its members (None: the other has none); best_hotspot_nmi :
    that mean. best_channel : (model, latent) of the other's channel most similar to the medoid,
    with best_channel_nmi; models_matched : how many of the other's models have a channel with
    NMI >= `match_nmi` to the medoid, of n_models_other.
    """

    hotspot: int
    best_factor: str | None
    best_hotspot: int | None
    best_hotspot_nmi: float
    best_channel: tuple[int, int] | None
    best_channel_nmi: float
    models_matched: int
    n_models_other: int


@dataclass
class EnsembleComparison:
    """Kept channels of A [Ma] against kept channels of B [Mb] on shared fingerprint points.

    channel_ids_a [Ma, 2], channel_ids_b [Mb, 2] (model, latent); nmi, vi [Ma, Mb];
    hotspot_nmi [Ha, Hb]: mean NMI between the members of A's hotspot and B's;
    matches_a / matches_b: one `HotspotMatch` per hotspot of A (found in B) and of B (found in A).
    """

    name_a: str
    name_b: str
    channel_ids_a: np.ndarray
    channel_ids_b: np.ndarray
    nmi: np.ndarray
    vi: np.ndarray
    hotspot_nmi: np.ndarray
    matches_a: list
    matches_b: list
    analysis_a: object
    analysis_b: object
