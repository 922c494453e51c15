"""Fusion of channels into one representation by optimizing the differentiable measures.

Given C input channels (weak learners, a hotspot, any selection) on the same N fingerprint
points, `fuse` optimizes free posterior parameters, a mean and a log-variance in k dimensions for
every fingerprint point, with torch (Adam) to maximize one of

    "nmi"  : the average NMI(F, U_c) with the inputs, with the fused space's I(F;F') in the
             normalisation floored at I(U_c;U_c') (see `objective_value`),
    "vi"   : the average exp(-VI(F, U_c)) (VI in bits),
    "info" : the average information I(F; U_c) shared with each input (bits),

where F is the fused channel and every term uses the Bhattacharyya fingerprints of DESIGN §2.
The result holds the fused posteriors, their fingerprint and the NMI / VI with each input.

`continuity` is the measure of the ring study (Murphy, Dillavou & Bassett, arXiv:2405.21042,
SO(2) fusion): the largest Bhattacharyya distance between posteriors of neighbouring angles,
divided by its 90th percentile; near 1 for a continuous ring, large where the ring is cut.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np
import torch

from vaefrag import measures

Progress = Callable[..., None]

#: fusion objectives: name -> description
OBJECTIVES = {"nmi": "average NMI with the inputs", "vi": "average exp(-VI) with the inputs (VI in bits)",
              "info": "average information shared with the inputs (bits)"}


# --------------------------------------------------------------------------- differentiable measures


def _info(bc: torch.Tensor) -> torch.Tensor:
    """I(X;U) in bits from fingerprints [..., N, N]."""
    return -torch.log2(bc.mean(-1)).mean(-1)


def input_terms(bc_in: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Constant terms of the inputs [C, N, N]: I(X;U_c) [C] and I(X;U_c,U_c') [C] in bits."""
    return _info(bc_in), _info(bc_in * bc_in)


def fused_measures(bc_f: torch.Tensor, bc_in: torch.Tensor, info_in=None, selfjoint_in=None) -> dict:
    """Differentiable measures between a fused channel and C inputs.

    Parameters
    ----------
    bc_f : [N, N] fingerprint of the fused channel (from `measures.bhattacharyya_torch`).
    bc_in : [C, N, N] fingerprints of the inputs (constants).
    info_in, selfjoint_in : [C] precomputed `input_terms(bc_in)` (optional).

    Returns
    -------
    dict of tensors: "info" (scalar I(X;F)), "self_info" (I(F;F')), "mutual" [C] (I(F;U_c)),
    "nmi" [C], "vi" [C] (bits), and the inputs' "info_in" [C] and "selfjoint_in" [C] (I(X;U_c,U_c')).
    """
    if info_in is None or selfjoint_in is None:
        info_in, selfjoint_in = input_terms(bc_in)
    n = bc_f.shape[-1]
    info_f = _info(bc_f)
    selfjoint_f = _info(bc_f * bc_f)
    # I(X;F,U_c) = -(1/N) sum_i log2((1/N) sum_j BC_F(i,j) BC_c(i,j)): a row-wise dot product
    rows = torch.einsum("ij,cij->ci", bc_f, bc_in) / n
    joint = -torch.log2(rows).mean(-1)                                   # [C]
    mutual = info_f + info_in - joint
    self_f = 2 * info_f - selfjoint_f
    self_in = 2 * info_in - selfjoint_in
    nmi = mutual / torch.sqrt((self_f * self_in).clamp_min(1e-30))
    vi = 2 * joint - selfjoint_f - selfjoint_in
    return {"info": info_f, "self_info": self_f, "mutual": mutual, "nmi": nmi, "vi": vi,
            "info_in": info_in, "selfjoint_in": selfjoint_in}


def objective_value(meas: dict, objective: str) -> torch.Tensor:
    """The scalar to maximize: mean NMI, mean exp(-VI) or mean shared information.

    For "nmi" the fused space's I(F;F') in the normalisation is floored at each input's I(U;U'):
    I(F;U) / sqrt(max(I(F;F'), I(U;U')) I(U;U')). This equals NMI whenever F carries at least as
    much as the input (as a fusion should), and removes a degenerate optimum of the plain ratio:
    for nearly identical broad posteriors, numerator and denominator of the Bhattacharyya NMI
    estimate are both first order in the small differences, their ratio can exceed 1, and Adam
    finds a fused space of ~0 bits with "NMI" 1.3 (measured on the ring study before the floor).
    """
    if objective == "nmi":
        self_in = 2 * meas["info_in"] - meas["selfjoint_in"]
        floor = torch.maximum(meas["self_info"], self_in)
        return (meas["mutual"] / torch.sqrt((floor * self_in).clamp_min(1e-30))).mean()
    if objective == "vi":
        return torch.exp(-meas["vi"]).mean()
    if objective == "info":
        return meas["mutual"].mean()
    raise ValueError(f"objective: expected one of {sorted(OBJECTIVES)}, got {objective!r}")


def fusion_objective(mu: torch.Tensor, logvar: torch.Tensor, bc_in: torch.Tensor, objective: str = "nmi"):
    """Objective of fused posteriors mu, logvar [N, k] against input fingerprints [C, N, N]."""
    bc_f = measures.bhattacharyya_torch(mu, logvar)
    return objective_value(fused_measures(bc_f, bc_in), objective)


# --------------------------------------------------------------------------- inputs


def _check_inputs(mu, logvar) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Channels as lists of [N, d_c] float64 arrays; accepts [C, N, d] arrays or sequences."""
    if mu is None or logvar is None:
        raise ValueError("mu, logvar: expected the posteriors of the channels to fuse, got None")
    if isinstance(mu, np.ndarray) and mu.ndim == 3:
        mu, logvar = list(mu), list(np.asarray(logvar))
    mu, logvar = list(mu), list(logvar)
    if len(mu) == 0:
        raise ValueError("mu: expected at least one channel to fuse, got an empty selection")
    if len(mu) != len(logvar):
        raise ValueError(f"logvar: expected {len(mu)} channels (those of mu), got {len(logvar)}")
    out_mu, out_lv = [], []
    n0 = None
    for c, (m, lv) in enumerate(zip(mu, logvar)):
        m = np.asarray(m, dtype=np.float64)
        lv = np.asarray(lv, dtype=np.float64)
        if m.ndim == 1:
            m, lv = m[:, None], lv.reshape(-1, 1)
        if m.ndim != 2 or m.shape != lv.shape:
            raise ValueError(f"mu[{c}], logvar[{c}]: expected equal shapes [N, d], got {m.shape}, {lv.shape}")
        n0 = m.shape[0] if n0 is None else n0
        if m.shape[0] != n0:
            raise ValueError(f"mu[{c}]: expected {n0} fingerprint points (those of channel 0), got {m.shape[0]}; "
                             "channels to fuse must share one fingerprint sample")
        if not (np.all(np.isfinite(m)) and np.all(np.isfinite(lv))):
            raise ValueError(f"mu[{c}], logvar[{c}]: expected finite values")
        out_mu.append(m)
        out_lv.append(lv)
    if n0 < 2:
        raise ValueError(f"mu: expected at least 2 fingerprint points, got {n0}")
    return out_mu, out_lv


def select_channels(mu, logvar, channels) -> tuple[np.ndarray, np.ndarray]:
    """Posteriors of chosen channels of an ensemble.

    Parameters
    ----------
    mu, logvar : [K, N, L] posteriors of K models.
    channels : (model, latent) pairs [C, 2].

    Returns
    -------
    mu_c, logvar_c : [C, N, 1], one 1-D channel per selected pair.
    """
    mu, logvar = np.asarray(mu), np.asarray(logvar)
    if mu.ndim != 3 or mu.shape != logvar.shape:
        raise ValueError(f"mu, logvar: expected equal shapes [K, N, L], got {mu.shape}, {logvar.shape}")
    idx = np.asarray(channels, dtype=np.int64).reshape(-1, 2) if len(channels) else np.zeros((0, 2), np.int64)
    if len(idx) == 0:
        raise ValueError("channels: expected at least one (model, latent) pair, got an empty selection")
    k, _, l_ = mu.shape
    if idx[:, 0].min() < 0 or idx[:, 0].max() >= k or idx[:, 1].min() < 0 or idx[:, 1].max() >= l_:
        raise ValueError(f"channels: expected models in [0, {k}) and latents in [0, {l_}), got {idx.tolist()}")
    return mu[idx[:, 0], :, idx[:, 1]][..., None], logvar[idx[:, 0], :, idx[:, 1]][..., None]


# --------------------------------------------------------------------------- fusion


@dataclass
class FusionResult:
    """A fused representation and its agreement with the inputs.

    mu, logvar [N, k]: fused posteriors;  bc [N, N]: its fingerprint;  info, self_info: I(X;F),
    I(F;F') (bits);  nmi_inputs, vi_inputs, mutual_inputs [C]: NMI, VI (bits), I(F;U_c) with each
    input;  input_info [C]: I(X;U_c);  history [steps]: objective after each step;
    objective, k, params: the settings.
    """

    mu: np.ndarray
    logvar: np.ndarray
    bc: np.ndarray
    info: float
    self_info: float
    nmi_inputs: np.ndarray
    vi_inputs: np.ndarray
    mutual_inputs: np.ndarray
    input_info: np.ndarray
    history: np.ndarray
    objective: str
    k: int
    params: dict = field(default_factory=dict)

    @property
    def mean_nmi(self) -> float:
        return float(np.mean(self.nmi_inputs))


def mds_init(bc: np.ndarray, k: int) -> np.ndarray:
    """Initial fused means [N, k]: classical MDS of the inputs' mean fingerprint.

    The Bhattacharyya distance of the mean fingerprint, D = -ln(mean_c BC_c) [N, N], is turned into
    the distance sqrt(8 D) that two unit-variance Gaussians at that distance would have, and
    embedded in k dimensions (top eigenvectors of the double-centred squared distances). Like
    UMAP's spectral start, it begins the optimizer at the inputs' consensus geometry instead of
    noise, which a random start must untangle (cuts in the ring study were its local optima).
    """
    bc = np.asarray(bc, dtype=np.float64)
    d2 = -8.0 * np.log(np.clip(bc.mean(0), 1e-300, None))           # squared distances [N, N]
    n = d2.shape[0]
    j = np.eye(n) - 1.0 / n
    b = -0.5 * j @ d2 @ j
    vals, vecs = np.linalg.eigh((b + b.T) / 2)
    top = np.argsort(vals)[::-1][:k]
    return vecs[:, top] * np.sqrt(np.clip(vals[top], 0, None))


def fuse(mu, logvar, k: int = 2, objective: str = "nmi", *, steps: int = 1500, lr: float = 0.05,
         seed: int = 0, init: str = "mds", init_scale: float = 1.0, dtype: str = "float32", device="cpu",
         progress: Progress | None = None) -> FusionResult:
    """Fuse C channels into one k-dimensional representation.

    Parameters
    ----------
    mu, logvar : [C, N, d] arrays, or sequences of C arrays [N, d_c] (dimensions may differ),
        posteriors of the channels on the same N fingerprint points.
    k : dimensions of the fused space (>= 1).
    objective : "nmi", "vi" or "info" (see `OBJECTIVES`).
    steps, lr : Adam steps and learning rate.  seed : seed of the initial means.
    init : "mds" starts the means at `mds_init` (classical MDS of the inputs' mean fingerprint);
        "random" draws them from N(0, init_scale^2). Log-variances start at 0.
    init_scale : standard deviation of the random initial means.
    dtype : "float32" or "float64".  device : torch device.
    progress : optional callable(done, total, message), called every ~1% of the steps.

    Returns
    -------
    `FusionResult` (final measures evaluated in float64).
    """
    if objective not in OBJECTIVES:
        raise ValueError(f"objective: expected one of {sorted(OBJECTIVES)}, got {objective!r}")
    if int(k) != k or k < 1:
        raise ValueError(f"k: expected an integer >= 1 (dimensions of the fused space), got {k}")
    if int(steps) != steps or steps < 1:
        raise ValueError(f"steps: expected an integer >= 1, got {steps}")
    if not (np.isfinite(lr) and lr > 0):
        raise ValueError(f"lr: expected a finite number > 0, got {lr}")
    if not (np.isfinite(init_scale) and init_scale > 0):
        raise ValueError(f"init_scale: expected a finite number > 0, got {init_scale}")
    if init not in ("mds", "random"):
        raise ValueError(f"init: expected 'mds' or 'random', got {init!r}")
    if dtype not in ("float32", "float64"):
        raise ValueError(f"dtype: expected 'float32' or 'float64', got {dtype!r}")
    mus, lvs = _check_inputs(mu, logvar)
    k, steps = int(k), int(steps)
    n = mus[0].shape[0]
    dev = measures.resolve_device(device)
    dt = getattr(torch, dtype)
    bc_np = np.stack([measures.bhattacharyya(m, lv) for m, lv in zip(mus, lvs)])     # [C, N, N]
    bc_in = torch.as_tensor(bc_np, dtype=dt, device=dev)
    info_in, selfjoint_in = input_terms(bc_in)
    gen = torch.Generator().manual_seed(int(seed))
    start = init_scale * torch.randn(n, k, generator=gen, dtype=torch.float64)
    if init == "mds":
        start = torch.as_tensor(mds_init(bc_np, k)) + 1e-3 * start
    f_mu = start.to(dt).to(dev).requires_grad_()
    f_lv = torch.zeros(n, k, dtype=dt, device=dev, requires_grad=True)
    opt = torch.optim.Adam([f_mu, f_lv], lr=lr)
    history = np.empty(steps)
    every = max(1, steps // 100)
    for step in range(steps):
        bc_f = measures.bhattacharyya_torch(f_mu, f_lv)
        value = objective_value(fused_measures(bc_f, bc_in, info_in, selfjoint_in), objective)
        if not torch.isfinite(value):
            raise FloatingPointError(f"fusion diverged at step {step} (objective {value.item()}); lower lr")
        opt.zero_grad(set_to_none=True)
        (-value).backward()
        opt.step()
        history[step] = value.item()
        if progress is not None and ((step + 1) % every == 0 or step + 1 == steps):
            progress(step + 1, steps, f"{objective} {history[step]:.4f}")
    out_mu = f_mu.detach().double().cpu()
    out_lv = f_lv.detach().double().cpu()
    with torch.no_grad():
        bc_f = measures.bhattacharyya_torch(out_mu, out_lv)
        meas = fused_measures(bc_f, torch.as_tensor(bc_np))
    return FusionResult(
        mu=out_mu.numpy(), logvar=out_lv.numpy(), bc=bc_f.numpy(), info=float(meas["info"]),
        self_info=float(meas["self_info"]), nmi_inputs=meas["nmi"].numpy(), vi_inputs=meas["vi"].numpy(),
        mutual_inputs=meas["mutual"].numpy(), input_info=_info(torch.as_tensor(bc_np)).numpy(), history=history,
        objective=objective, k=k,
        params={"steps": steps, "lr": float(lr), "seed": int(seed), "init": init, "init_scale": float(init_scale),
                "dtype": dtype, "n_inputs": len(mus), "n_points": n})


def fuse_selection(mu, logvar, channels, **kwargs) -> FusionResult:
    """Fuse chosen channels of an ensemble: mu, logvar [K, N, L], channels (model, latent) pairs;
    keyword arguments as for `fuse`."""
    mu_c, lv_c = select_channels(mu, logvar, channels)
    return fuse(mu_c, lv_c, **kwargs)


# --------------------------------------------------------------------------- ring study


def continuity(mu, logvar, angle=None, percentile: float = 90.0, wrap: bool = True) -> float:
    """Largest Bhattacharyya distance between neighbouring posteriors over its `percentile`.

    Parameters
    ----------
    mu, logvar : [N, k] posteriors of points on a ring.
    angle : [N] angles of the points (default: the points are already in ring order).
    wrap : include the pair (last, first) that closes the ring.

    Returns
    -------
    max(D) / percentile(D) >= 1 over the neighbour distances D = -ln BC; about 1 when the
    representation is continuous along the ring, large when it is cut somewhere.
    """
    mu = np.asarray(mu, dtype=np.float64)
    logvar = np.asarray(logvar, dtype=np.float64)
    if mu.ndim == 1:
        mu, logvar = mu[:, None], logvar.reshape(-1, 1)
    if mu.ndim != 2 or mu.shape != logvar.shape or mu.shape[0] < 3:
        raise ValueError(f"mu, logvar: expected equal shapes [N, k] with N >= 3, got {mu.shape}, {logvar.shape}")
    if not 0 < percentile < 100:
        raise ValueError(f"percentile: expected a number in (0, 100), got {percentile}")
    order = np.arange(len(mu))
    if angle is not None:
        angle = np.asarray(angle, dtype=np.float64).reshape(-1)
        if angle.shape[0] != mu.shape[0]:
            raise ValueError(f"angle: expected {mu.shape[0]} angles (one per point), got {angle.shape[0]}")
        order = np.argsort(np.mod(angle, 2 * np.pi), kind="stable")
    a, b = order, np.roll(order, -1)
    if not wrap:
        a, b = a[:-1], b[:-1]
    s = 0.5 * (np.exp(logvar[a]) + np.exp(logvar[b]))
    dist = (0.125 * (mu[a] - mu[b]) ** 2 / s + 0.5 * (np.log(s) - 0.5 * (logvar[a] + logvar[b]))).sum(-1)
    ref = np.percentile(dist, percentile)
    return float(dist.max() / ref) if ref > 0 else float("inf")


def ring_study(mu, logvar, angle, *, sizes: Sequence[int] = (2, 5, 10, 20),
               objectives: Sequence[str] = ("nmi", "vi", "info"), repeats: int = 1, k: int = 2,
               steps: int = 1500, lr: float = 0.05, seed: int = 0, init: str = "mds",
               progress: Progress | None = None) -> list[dict]:
    """Fuse ensembles of 1-D weak learners on a ring and measure the continuity of the result.

    Parameters
    ----------
    mu, logvar : [K, N, 1] posteriors of K one-latent models on N ring points.
    angle : [N] angle of every fingerprint point.
    sizes : ensemble sizes (each <= K); repeat r uses a seeded random subset of the models.
    objectives, repeats, k, steps, lr, seed, init : fusion settings (see `fuse`).

    Returns
    -------
    One dict per run: objective, size, repeat, models (list), continuity, mean_nmi, info_bits,
    plus the continuity of each input model ("input_continuity_median").
    """
    mu, logvar = np.asarray(mu, dtype=np.float64), np.asarray(logvar, dtype=np.float64)
    if mu.ndim != 3 or mu.shape != logvar.shape:
        raise ValueError(f"mu, logvar: expected equal shapes [K, N, L], got {mu.shape}, {logvar.shape}")
    n_models = mu.shape[0]
    bad = [s for s in sizes if not 1 <= int(s) <= n_models]
    if bad or not len(sizes):
        raise ValueError(f"sizes: expected ensemble sizes in [1, {n_models}], got {list(sizes)}")
    in_cont = [continuity(mu[m], logvar[m], angle) for m in range(n_models)]
    rng = np.random.default_rng(seed)
    subsets = {(s, r): sorted(rng.choice(n_models, size=int(s), replace=False).tolist())
               for r in range(repeats) for s in sizes}
    runs = [(o, s, r) for o in objectives for s in sizes for r in range(repeats)]
    rows = []
    for done, (obj, size, rep) in enumerate(runs):
        models = subsets[(size, rep)]
        res = fuse(mu[models], logvar[models], k=k, objective=obj, steps=steps, lr=lr, seed=seed + rep,
                   init=init)
        rows.append({"objective": obj, "size": int(size), "repeat": rep, "models": models,
                     "continuity": continuity(res.mu, res.logvar, angle), "mean_nmi": res.mean_nmi,
                     "info_bits": res.info, "input_continuity_median": float(np.median([in_cont[m] for m in models]))})
        if progress is not None:
            progress(done + 1, len(runs), f"{obj} size {size}")
    return rows


__all__ = ["OBJECTIVES", "FusionResult", "fuse", "mds_init", "fuse_selection", "select_channels", "fused_measures",
           "input_terms", "objective_value", "fusion_objective", "continuity", "ring_study"]
