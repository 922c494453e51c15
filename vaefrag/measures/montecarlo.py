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


def compare_many_spaces(mus, logvars, *, n_samples: int = 2000, seed: int = 0, device="auto", block: int = 256,
                        progress=None) -> dict:
    """The one Monte Carlo estimator of full-space measures: every space against every other.

    Parameters
    ----------
    mus, logvars : K arrays [D, d_k] (or one array [K, D, d]): posteriors of K spaces on the same D points.
    n_samples : draws of (x, u) per estimate.  seed : seed of the draws.
    progress : optional callable(done, total, message) over the K + K + K(K-1)/2 estimates.

    Common random numbers: one draw of the points x for every estimate and one noise draw per
    space, reused wherever that space appears (its independent copy U' has its own), so the
    per-sample terms are correlated and the delta-method errors of NMI and VI come from their
    joint covariance. I(X;U) from each space, I(X;U,U') from it tiled with itself, I(X;U,V)
    from two spaces concatenated.

    Returns
    -------
    dict of "info", "info_err", "self_info", "self_info_err" [K] and "mutual", "nmi", "vi"
    (+ "_err") [K, K], in bits (NMI NaN for a space without information).
    """
    if isinstance(mus, np.ndarray) and mus.ndim == 3:
        mus, logvars = list(mus), list(logvars)
    if len(mus) != len(logvars) or not len(mus):
        raise ValueError(f"mus, logvars: expected equally many spaces (>= 1), got {len(mus)} and {len(logvars)}")
    checked = [_check_posteriors(m, lv, "mu" if i == 0 else f"mu_{i}", ndim=2, min_points=1)
               for i, (m, lv) in enumerate(zip(mus, logvars))]
    d = checked[0][0].shape[0]
    for i, (m, _) in enumerate(checked):
        if m.shape[0] != d:
            raise ValueError(f"mu_{i}: expected {d} data points (those of the first space), got {m.shape[0]}")
    if int(n_samples) != n_samples or n_samples < 2:
        raise ValueError(f"n_samples: expected an integer >= 2, got {n_samples}")
    n_samples = int(n_samples)
    k = len(checked)
    dev = resolve_device(device)
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, d, n_samples)
    noise = [rng.standard_normal((n_samples, m.shape[1])) for m, _ in checked]      # shared by all uses of a space
    noise2 = [rng.standard_normal((n_samples, m.shape[1])) for m, _ in checked]     # the independent copy U'
    total = 2 * k + k * (k - 1) // 2
    done = [0]

    def terms(m, lv, eps, msg):
        out = monte_carlo_terms(m, lv, idx, eps, block, dev)
        done[0] += 1
        if progress is not None:
            progress(done[0], total, msg)
        return out

    cat = lambda *a: np.concatenate(a, 1)
    t_single = np.stack([terms(m, lv, noise[a], f"I(X;U) space {a}") for a, (m, lv) in enumerate(checked)])
    t_self = np.stack([terms(cat(m, m), cat(lv, lv), cat(noise[a], noise2[a]), f"I(X;U,U') space {a}")
                       for a, (m, lv) in enumerate(checked)])
    t_pair = {}
    for a in range(k):
        for b in range(a + 1, k):
            (ma, la), (mb, lb) = checked[a], checked[b]
            t_pair[a, b] = terms(cat(ma, mb), cat(la, lb), cat(noise[a], noise[b]), f"I(X;U,V) spaces {a}, {b}")
    var_of_mean = lambda t: t.var(-1, ddof=1) / n_samples
    info = t_single.mean(-1)
    s_terms = 2 * t_single - t_self                                          # per-sample I(U;U') terms
    self_info, self_info_err = s_terms.mean(-1), np.sqrt(var_of_mean(s_terms))
    mutual, vi, nmi = np.zeros((k, k)), np.zeros((k, k)), np.full((k, k), np.nan)
    mutual_err, vi_err, nmi_err = np.zeros((k, k)), np.zeros((k, k)), np.full((k, k), np.nan)
    for a in range(k):
        for b in range(a, k):
            if a == b:
                m_t, v_t = s_terms[a], np.zeros(n_samples)                  # I(U;U'), VI(U,U) = 0 exactly
            else:
                m_t = t_single[a] + t_single[b] - t_pair[a, b]
                v_t = 2 * t_pair[a, b] - t_self[a] - t_self[b]
            mutual[a, b] = mutual[b, a] = m_t.mean()
            mutual_err[a, b] = mutual_err[b, a] = math.sqrt(var_of_mean(m_t))
            vi[a, b] = vi[b, a] = v_t.mean()
            vi_err[a, b] = vi_err[b, a] = math.sqrt(var_of_mean(v_t))
            sa, sb = self_info[a], self_info[b]
            if min(sa, sb) > _MC_MIN_SELF_INFO:
                r = m_t.mean() / math.sqrt(sa * sb)
                # delta method on (mutual, self_a, self_b) with their joint sample covariance
                g = np.array([1 / math.sqrt(sa * sb), -0.5 * r / sa, -0.5 * r / sb])
                cov = np.atleast_2d(np.cov(np.stack([m_t, s_terms[a], s_terms[b]]))) / n_samples
                nmi[a, b] = nmi[b, a] = r
                nmi_err[a, b] = nmi_err[b, a] = math.sqrt(max(float(g @ cov @ g), 0.0))
    return {"info": info, "info_err": np.sqrt(var_of_mean(t_single)), "self_info": self_info,
            "self_info_err": self_info_err, "mutual": mutual, "mutual_err": mutual_err, "nmi": nmi,
            "nmi_err": nmi_err, "vi": vi, "vi_err": vi_err, "n_samples": n_samples, "n_points": d}


def compare_spaces(mu_a, logvar_a, mu_b, logvar_b, *, n_samples: int = 2000, seed: int = 0,
                   device="auto", block: int = 256) -> SpaceComparison:
    """Monte Carlo NMI and VI between the full latent spaces of two models (`compare_many_spaces`
    for the pair).

    Parameters
    ----------
    mu_a, logvar_a : [D, da];  mu_b, logvar_b : [D, db], both on the same D data points.
    """
    mu_a, logvar_a = _check_posteriors(mu_a, logvar_a, "mu_a", ndim=2, min_points=1)
    mu_b, logvar_b = _check_posteriors(mu_b, logvar_b, "mu_b", ndim=2, min_points=1)
    if mu_a.shape[0] != mu_b.shape[0]:
        raise ValueError(f"mu_b: expected {mu_a.shape[0]} data points (those of mu_a), got {mu_b.shape[0]}")
    r = compare_many_spaces([mu_a, mu_b], [logvar_a, logvar_b], n_samples=n_samples, seed=seed, device=device,
                            block=block)
    return SpaceComparison(
        info_a=float(r["info"][0]), info_a_err=float(r["info_err"][0]), info_b=float(r["info"][1]),
        info_b_err=float(r["info_err"][1]), mutual=float(r["mutual"][0, 1]), mutual_err=float(r["mutual_err"][0, 1]),
        nmi=float(r["nmi"][0, 1]), nmi_err=float(r["nmi_err"][0, 1]), vi=float(r["vi"][0, 1]),
        vi_err=float(r["vi_err"][0, 1]), n_samples=int(n_samples))
