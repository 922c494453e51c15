"""Fingerprint sources: Bhattacharyya coefficients of diagonal Gaussian posteriors, whole or
as rows BC[i, :, :] for a block of fingerprint points (see the package docstring)."""
from __future__ import annotations

import math

import numpy as np
import torch

from vaefrag.measures.validation import _as_real_array, _check_posteriors

#: log-variances are clipped to this range after per-channel centering, so exp() never overflows
_LOGVAR_CLIP = 60.0

# --------------------------------------------------------------------------- fingerprints


def bhattacharyya_torch(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """Differentiable Bhattacharyya coefficients.

    Parameters
    ----------
    mu, logvar : tensors [..., N, d]

    Returns
    -------
    bc : tensor [..., N, N], BC(i, j) = exp(-D_ij), 1 on the diagonal.
    """
    mi, mj = mu.unsqueeze(-2), mu.unsqueeze(-3)           # [..., N, 1, d], [..., 1, N, d]
    li, lj = logvar.unsqueeze(-2), logvar.unsqueeze(-3)
    log_s = torch.logaddexp(li, lj) - math.log(2.0)       # ln((v_i + v_j) / 2)
    dist = 0.125 * (mi - mj).square() * torch.exp(-log_s) + 0.5 * (log_s - 0.5 * (li + lj))
    return torch.exp(-dist.sum(-1).clamp_min(0.0))


def bhattacharyya(mu, logvar) -> np.ndarray:
    """Bhattacharyya coefficients between all pairs of diagonal Gaussian posteriors.

    Parameters
    ----------
    mu, logvar : arrays [..., N, d]

    Returns
    -------
    bc : float64 array [..., N, N]
    """
    mu = _as_real_array(mu, "mu")
    logvar = _as_real_array(logvar, "logvar")
    if mu.ndim < 2:
        raise ValueError(f"mu: expected shape [..., N, d], got {mu.shape}")
    _check_posteriors(mu, logvar, ndim=mu.ndim, min_points=1)
    with torch.no_grad():
        bc = bhattacharyya_torch(torch.as_tensor(mu, dtype=torch.float64),
                                 torch.as_tensor(logvar, dtype=torch.float64))
    return bc.numpy()


def info_from_bc_torch(bc: torch.Tensor) -> torch.Tensor:
    """I(X;U) in bits from a fingerprint [..., N, N] -> [...]; differentiable."""
    n = bc.shape[-1]
    return -torch.log2(bc.mean(-1)).mean(-1) if n else bc.sum((-1, -2))


# --------------------------------------------------------------------------- sources of fingerprint rows


class _GaussianRows:
    """Produces rows BC[:, I, :] of M channels' fingerprints for a block I of points."""

    def __init__(self, mu: np.ndarray, logvar: np.ndarray, device, dtype):
        # BC is invariant to rescaling a channel: centre each dimension's log-variance (and scale
        # its means to match) so exp() stays in range for log-variances far from 0.
        shift = np.median(logvar, axis=1, keepdims=True)                   # [M, 1, d]
        lv = np.clip(logvar - shift, -_LOGVAR_CLIP, _LOGVAR_CLIP)
        mu = mu * np.exp(-0.5 * shift)
        t = lambda a: torch.as_tensor(np.ascontiguousarray(a.transpose(2, 0, 1)), dtype=dtype, device=device)
        self.mu, self.lv = t(mu), t(lv)                                    # [d, M, N]
        self.var = torch.exp(self.lv)
        self.root4 = torch.exp(0.25 * self.lv)                             # var^(1/4)
        self.device, self.dtype = device, dtype
        self.n_channels, self.n_points = mu.shape[0], mu.shape[1]
        self.dims = mu.shape[2]
        self._scratch = None                                               # [1 or 2, B, M, N]
        self._tiny = float(torch.finfo(dtype).tiny) ** 0.5                 # below it: 0 (no subnormals)

    def rows(self, start: int, stop: int, out: torch.Tensor) -> torch.Tensor:
        """BC[start:stop] written into `out` [B, M, N] (B = stop - start); returns `out`.

        Per dimension, BC = exp(-D) = sqrt(2) (v_i v_j)^(1/4) (v_i + v_j)^(-1/2) exp(-dmu^2 / (4 (v_i + v_j))),
        evaluated with in-place passes and no logarithm. The scratch buffers are kept between
        calls: a fresh block-sized tensor per call costs page faults that outweigh the arithmetic.
        Coefficients below sqrt(smallest normal) (2^-63 in float32) are set to 0: they and their
        products would be subnormal numbers, which make the GEMM several times slower (narrow
        posteriors of trained models: 6.4 s instead of 1.2 s for 200 channels), and they change a
        row sum, whose own diagonal term is 1, by less than N * 2^-63.
        """
        b = out.shape[0]
        if self._scratch is None or self._scratch.shape[1] < b or self._scratch.shape[2:] != out.shape[1:]:
            self._scratch = torch.empty((min(self.dims, 2), *out.shape), dtype=self.dtype, device=self.device)
        q = self._scratch[0, :b]
        for k in range(self.dims):
            mu, var, root4 = self.mu[k], self.var[k], self.root4[k]         # [M, N]
            mi, vi, ri = (a[:, start:stop].T.unsqueeze(-1) for a in (mu, var, root4))  # [B, M, 1]
            term = out if k == 0 else self._scratch[1, :b]
            torch.add(vi, var, out=q).rsqrt_()                             # (v_i + v_j)^(-1/2)
            torch.sub(mi, mu, out=term)
            term.mul_(q).square_().mul_(-0.25).exp_()                      # exp(-dmu^2 / (4 (v_i + v_j)))
            term.mul_(q).mul_(root4).mul_(ri * math.sqrt(2.0))
            if k > 0:
                out.mul_(term)
        out.clamp_(max=1.0)
        return torch.nn.functional.threshold_(out, self._tiny, 0.0)


class _LabelRows:
    """Rows of hard-clustering fingerprints BC_C(i, j) = 1[c_i = c_j] for F factors."""

    def __init__(self, labels: np.ndarray, device, dtype):
        self.labels = torch.as_tensor(labels.T.astype(np.int64), device=device)   # [F, N]
        self.device, self.dtype = device, dtype
        self.n_channels, self.n_points = self.labels.shape

    def rows(self, start: int, stop: int, out: torch.Tensor) -> torch.Tensor:
        li = self.labels[:, start:stop].T.unsqueeze(-1)                    # [B, F, 1]
        return out.copy_(li == self.labels)                                # [B, F, N]
