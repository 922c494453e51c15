"""Training dynamics: how repeat runs differ along training, from the posteriors stored at checkpoints.

``vaefrag train --checkpoints C`` stores every member's posteriors on the fingerprint at C points of
training (``store.load_checkpoints``: mu, logvar [C, K, N, L]). Per checkpoint this module computes

- the full-latent-space NMI / VI between every pair of repeat runs (the Monte Carlo estimator of
  :mod:`vaefrag.spaces`, with its standard errors), summarised over the K(K-1)/2 pairs by their
  mean, the spread of the pairs (standard deviation) and the Monte Carlo error of the mean
  (root-sum-square of the pair errors over the number of pairs: an upper-bound-free estimate that
  treats the pairs' errors as independent);
- the channel hotspots, tracked from checkpoint to checkpoint with the sweep machinery
  (:func:`vaefrag.sweep.track_ensembles`: links by mean cross NMI; appears / splits / merges / fades).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from vaefrag import store


class DynamicsError(ValueError):
    """An ensemble cannot be studied over training (no checkpoints)."""


def full_space_comparison(mu, logvar, *, n_samples: int = 2000, seed: int = 0, device="auto", progress=None):
    """NMI / VI between the full latent spaces of K models on the same points (bits, with errors).

    mu, logvar [K, N, L] -> an object with nmi, nmi_err, vi, vi_err [K, K] and info [K]. The one
    place that calls the Monte Carlo space estimator (``spaces.compare_model_spaces``).
    """
    from vaefrag import spaces

    return spaces.compare_model_spaces(mu, logvar, n_samples=n_samples, seed=seed, device=device, progress=progress)


@dataclass
class Dynamics:
    """Repeat runs along training.

    steps [C]; nmi, nmi_err, vi, vi_err [C, K, K] full-space measures between models (bits);
    info [C, K] I(X;U) per model; pair summaries [C]: nmi_mean, nmi_sd (spread over pairs),
    nmi_mc_err (Monte Carlo error of the mean), vi_mean, vi_sd, vi_mc_err; tracking:
    `tracking.Tracking` over the checkpoints (None when not asked for); n_samples: draws per estimate.
    """

    ensemble_name: str
    steps: np.ndarray
    nmi: np.ndarray
    nmi_err: np.ndarray
    vi: np.ndarray
    vi_err: np.ndarray
    info: np.ndarray
    nmi_mean: np.ndarray
    nmi_sd: np.ndarray
    nmi_mc_err: np.ndarray
    vi_mean: np.ndarray
    vi_sd: np.ndarray
    vi_mc_err: np.ndarray
    n_samples: int
    tracking: object = None
    analyses: list = None


def _pair_summary(mat: np.ndarray, err: np.ndarray) -> tuple[float, float, float]:
    k = mat.shape[0]
    iu = np.triu_indices(k, 1)
    vals, errs = mat[iu], err[iu]
    ok = np.isfinite(vals)
    if not ok.any():
        return float("nan"), float("nan"), float("nan")
    vals, errs = vals[ok], errs[ok]
    sd = float(vals.std(ddof=1)) if len(vals) > 1 else 0.0
    return float(vals.mean()), sd, float(math.sqrt(np.nansum(errs ** 2)) / len(vals))


def checkpoint_ensembles(ensemble) -> tuple[np.ndarray, list]:
    """The checkpoints of an ensemble as in-memory ensembles (same points, inputs and factors).

    Returns steps [C] and C `store.Ensemble` named ``NAME@step``. Raises DynamicsError without checkpoints.
    """
    ens = ensemble if isinstance(ensemble, store.Ensemble) else store.load_ensemble(ensemble)
    ck = store.load_checkpoints(ens)
    if ck is None:
        raise DynamicsError(f"{ens.path / store.CHECKPOINTS}: missing; the ensemble was trained without "
                            "checkpoints (train it with `vaefrag train --checkpoints C`)")
    out = []
    for c, step in enumerate(ck["steps"]):
        # members without their final losses: those belong to the end of training, not to this step
        manifest = {**ens.manifest, "name": f"{ens.name}@{int(step)}",
                    "members": [{"id": m.get("id", k), "seed": m.get("seed")} for k, m in
                                enumerate(ens.manifest.get("members") or [{}] * ens.n_models)]}
        out.append(store.Ensemble(path=ens.path, manifest=manifest, mu=ck["mu"][c], logvar=ck["logvar"][c], x=ens.x,
                                  factors=ens.factors, factor_names=list(ens.factor_names)))
    return ck["steps"], out


def training_dynamics(ensemble, *, n_samples: int = 2000, seed: int = 0, device="auto", track: bool = True,
                      min_link: float | None = None, cache_dir=None, progress=None, **analysis_params) -> Dynamics:
    """Full-space NMI / VI between repeat runs and tracked hotspots at every stored checkpoint.

    Parameters
    ----------
    ensemble : `store.Ensemble` or directory, trained with ``--checkpoints``.
    n_samples, seed : Monte Carlo draws per estimate and their seed (the same at every checkpoint).
    track : also find and track channel hotspots (``analysis_params``: hotspot options of
        ``analysis.analyze``; ``min_link``: link threshold).
    progress : optional callable(done, total, message) over checkpoints.
    """
    ens = ensemble if isinstance(ensemble, store.Ensemble) else store.load_ensemble(ensemble)
    steps, ckpts = checkpoint_ensembles(ens)
    if ens.n_models < 2:
        raise DynamicsError(f"{ens.path}: has {ens.n_models} model; repeat runs need at least 2")
    c_n, k = len(steps), ens.n_models
    nmi, nmi_err, vi, vi_err = (np.full((c_n, k, k), np.nan) for _ in range(4))
    info = np.full((c_n, k), np.nan)
    sums = np.full((6, c_n), np.nan)
    for c, e in enumerate(ckpts):
        res = full_space_comparison(e.mu, e.logvar, n_samples=n_samples, seed=seed, device=device)
        nmi[c], nmi_err[c], vi[c], vi_err[c], info[c] = res.nmi, res.nmi_err, res.vi, res.vi_err, res.info
        sums[:3, c] = _pair_summary(res.nmi, res.nmi_err)
        sums[3:, c] = _pair_summary(res.vi, res.vi_err)
        if progress is not None:
            progress(c + 1, c_n + (1 if track else 0), f"spaces at step {int(steps[c])}")
    tracking = analyses = None
    if track:
        from vaefrag.sweep import track_ensembles

        tracking, analyses = track_ensembles(ckpts, [f"step {int(s)}" for s in steps], [float(s) for s in steps],
                                             min_link=min_link, cache_dir=cache_dir, device=device,
                                             **analysis_params)
        if progress is not None:
            progress(c_n + 1, c_n + 1, "hotspots tracked")
    return Dynamics(ensemble_name=ens.name, steps=np.asarray(steps), nmi=nmi, nmi_err=nmi_err, vi=vi, vi_err=vi_err,
                    info=info, nmi_mean=sums[0], nmi_sd=sums[1], nmi_mc_err=sums[2], vi_mean=sums[3], vi_sd=sums[4],
                    vi_mc_err=sums[5], n_samples=int(n_samples), tracking=tracking, analyses=analyses)


def dynamics_rows(dyn: Dynamics) -> list[dict]:
    """One row per checkpoint: step, mean NMI / VI between repeat runs (spread, Monte Carlo error),
    mean I(X;U), and the hotspot count when tracked."""
    rows = []
    for c, step in enumerate(dyn.steps):
        row = {"step": int(step), "nmi_mean": dyn.nmi_mean[c], "nmi_sd": dyn.nmi_sd[c],
               "nmi_mc_err": dyn.nmi_mc_err[c], "vi_mean_bits": dyn.vi_mean[c], "vi_sd": dyn.vi_sd[c],
               "vi_mc_err": dyn.vi_mc_err[c], "info_mean_bits": float(np.nanmean(dyn.info[c]))}
        if dyn.tracking is not None:
            row["hotspots"] = dyn.tracking.levels[c].n_hotspots
        rows.append(row)
    return rows
