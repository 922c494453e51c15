"""Monte Carlo information of full latent spaces over a whole dataset (DESIGN §2, last bullet).

For spaces that carry more than log2(N) bits the fingerprint saturates; these estimators sample
x from the dataset and u ~ p(u|x) instead. Units are bits; errors are standard errors.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from vaefrag.measures.validation import _check_posteriors, resolve_device

#: below this I(U;U') (bits) a full space counts as carrying nothing, and its NMI is undefined
_MC_MIN_SELF_INFO = 1e-9

def monte_carlo_terms(mu, logvar, idx, noise, block: int = 256, dev="cpu") -> np.ndarray:
    """Per-sample terms of the Monte Carlo I(X;U): log2 p(u|x) - log2 (1/D) sum_x' p(u|x').

    Parameters
    ----------
    mu, logvar : [D, d] posteriors of the D dataset points.
    idx : [S] indices of the points x drawn;  noise : [S, d] standard normal draws, u = mu + sd * noise.
    block : draws per batch (capped to keep [block, D, d] near 64 MiB);  dev : torch device.

    Returns
    -------
    [S] float64 terms in bits; their mean is I(X;U), their standard error its error. Shared
    ``idx`` / ``noise`` across spaces give correlated terms for delta-method errors.
    """
    mu_t = torch.as_tensor(mu, dtype=torch.float64, device=dev)           # [D, d]
    lv_t = torch.as_tensor(logvar, dtype=torch.float64, device=dev)
    inv_var = torch.exp(-lv_t)
    const = -0.5 * lv_t.sum(-1)                                            # [D] (2 pi terms cancel)
    out = []
    d_total = mu.shape[0]
    block = max(1, min(block, 2**23 // max(1, d_total * mu.shape[1])))
    for start in range(0, len(idx), block):
        sel = torch.as_tensor(idx[start:start + block], device=dev)
        eps = torch.as_tensor(noise[start:start + block], dtype=torch.float64, device=dev)
        u = mu_t[sel] + torch.exp(0.5 * lv_t[sel]) * eps                   # [B, d]
        log_own = const[sel] - 0.5 * eps.square().sum(-1)
        # log N(u | mu_x', var_x') for all x' up to the shared constant: [B, D]
        quad = ((u.unsqueeze(1) - mu_t).square_().mul_(inv_var)).sum(-1)
        log_all = const - 0.5 * quad
        log_mix = torch.logsumexp(log_all, dim=1) - math.log(d_total)
        out.append(((log_own - log_mix) / math.log(2.0)).cpu().numpy())
    return np.concatenate(out)


def monte_carlo_info(mu, logvar, *, n_samples: int = 2000, seed: int = 0, device="auto",
                     block: int = 256, return_terms: bool = False):
    """Monte Carlo estimate of I(U;X) over a whole dataset, in bits.

    I(U;X) = E_{x, u~p(u|x)}[log p(u|x) - log (1/D) sum_x' p(u|x')], x uniform over the D points.

    Parameters
    ----------
    mu, logvar : [D, d] posteriors of every point of the dataset.
    n_samples : number of (x, u) draws.

    Returns
    -------
    (estimate, standard error) in bits; with return_terms also the per-sample terms [n_samples].
    """
    mu, logvar = _check_posteriors(mu, logvar, ndim=2, min_points=1)
    if n_samples < 2:
        raise ValueError(f"n_samples: expected >= 2, got {n_samples}")
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, mu.shape[0], n_samples)
    noise = rng.standard_normal((n_samples, mu.shape[1]))
    terms = monte_carlo_terms(mu, logvar, idx, noise, block, resolve_device(device))
    est, err = float(terms.mean()), float(terms.std(ddof=1) / math.sqrt(n_samples))
    return (est, err, terms) if return_terms else (est, err)


@dataclass
class SpaceComparison:
    """Full-latent-space comparison of two models over a dataset (bits; errors are standard errors)."""

    info_a: float
    info_a_err: float
    info_b: float
    info_b_err: float
    mutual: float
    mutual_err: float
    nmi: float
    nmi_err: float
    vi: float
    vi_err: float
    n_samples: int


def compare_spaces(mu_a, logvar_a, mu_b, logvar_b, *, n_samples: int = 2000, seed: int = 0,
                   device="auto", block: int = 256) -> SpaceComparison:
    """Monte Carlo NMI and VI between the full latent spaces of two models.

    Parameters
    ----------
    mu_a, logvar_a : [D, da];  mu_b, logvar_b : [D, db], both on the same D data points.

    I(X;U,U') tiles a posterior with itself, I(X;U,V) concatenates the two posteriors; all five
    estimates use the same draws of x, and errors are propagated with the delta method from the
    covariance of the per-sample terms.
    """
    mu_a, logvar_a = _check_posteriors(mu_a, logvar_a, "mu_a", ndim=2, min_points=1)
    mu_b, logvar_b = _check_posteriors(mu_b, logvar_b, "mu_b", ndim=2, min_points=1)
    if mu_a.shape[0] != mu_b.shape[0]:
        raise ValueError(f"mu_b: expected {mu_a.shape[0]} data points (those of mu_a), got {mu_b.shape[0]}")
    if n_samples < 2:
        raise ValueError(f"n_samples: expected >= 2, got {n_samples}")
    dev = resolve_device(device)
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, mu_a.shape[0], n_samples)
    spaces = {
        "a": (mu_a, logvar_a),
        "b": (mu_b, logvar_b),
        "aa": (np.concatenate([mu_a, mu_a], 1), np.concatenate([logvar_a, logvar_a], 1)),
        "bb": (np.concatenate([mu_b, mu_b], 1), np.concatenate([logvar_b, logvar_b], 1)),
        "ab": (np.concatenate([mu_a, mu_b], 1), np.concatenate([logvar_a, logvar_b], 1)),
    }
    terms = {}
    for key, (m, lv) in spaces.items():
        noise = rng.standard_normal((n_samples, m.shape[1]))
        terms[key] = monte_carlo_terms(m, lv, idx, noise, block, dev)
    t = np.stack([terms[k] for k in ("a", "b", "aa", "bb", "ab")])        # [5, S]
    ia, ib, iaa, ibb, iab = t.mean(1)
    cov = np.cov(t) / n_samples                                            # covariance of the means
    mutual = ia + ib - iab
    self_a, self_b = 2 * ia - iaa, 2 * ib - ibb
    g_mut = np.array([1.0, 1.0, 0.0, 0.0, -1.0])        # gradients w.r.t. (ia, ib, iaa, ibb, iab)
    g_vi = np.array([0.0, 0.0, -1.0, -1.0, 2.0])
    se = lambda g: float(math.sqrt(max(g @ cov @ g, 0.0)))
    if min(self_a, self_b) > _MC_MIN_SELF_INFO:
        denom = math.sqrt(self_a * self_b)
        nmi = mutual / denom
        g_sa = np.array([2.0, 0.0, -1.0, 0.0, 0.0])
        g_sb = np.array([0.0, 2.0, 0.0, -1.0, 0.0])
        nmi_err = se(g_mut / denom - 0.5 * nmi * (g_sa / self_a + g_sb / self_b))
    else:  # a space without information: NMI is 0/0
        nmi, nmi_err = float("nan"), float("nan")
    return SpaceComparison(
        info_a=float(ia), info_a_err=se(np.eye(5)[0]), info_b=float(ib), info_b_err=se(np.eye(5)[1]),
        mutual=float(mutual), mutual_err=se(g_mut), nmi=float(nmi), nmi_err=nmi_err,
        vi=float(2 * iab - iaa - ibb), vi_err=se(g_vi), n_samples=n_samples)
