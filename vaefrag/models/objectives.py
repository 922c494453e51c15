"""VAE objectives, one loss per member: beta-VAE, beta-TCVAE and the annealed-capacity VAE.

Each objective maps a minibatch ``(x, decoder output, mu, logvar, z)`` with a member axis to the
per-member loss [K] (mean over the batch, in nats). The sum over members is what is minimised; as
members share no parameters, that trains each member on its own loss.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def reconstruction(x: torch.Tensor, out: torch.Tensor, likelihood: str, obs_std: float = 0.1) -> torch.Tensor:
    """Negative log-likelihood summed over input dims, per item and member.

    x, out : [B, K, *shape] (out holds logits for Bernoulli, means for Gaussian) -> [B, K]
    """
    if likelihood == "bernoulli":
        nll = F.binary_cross_entropy_with_logits(out, x, reduction="none")
    elif likelihood == "gaussian":
        nll = 0.5 * ((x - out) / obs_std) ** 2 + math.log(obs_std * math.sqrt(2 * math.pi))
    else:
        raise ValueError(f"likelihood must be 'bernoulli' or 'gaussian', got {likelihood!r}")
    return nll.flatten(2).sum(-1)


def kl_per_dim(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, exp(logvar)) || N(0, 1)) per latent dim: [B, K, L] -> [B, K, L] nats."""
    return 0.5 * (mu.pow(2) + logvar.exp() - logvar - 1)


def _log_normal(z, mu, logvar):
    return -0.5 * (math.log(2 * math.pi) + logvar + (z - mu).pow(2) / logvar.exp())


class Objective:
    """Base class; subclasses define ``loss``. Hyperparameters are the constructor's keyword arguments."""

    name = ""
    defaults: dict = {}

    def __init__(self, **hyper):
        unknown = sorted(set(hyper) - set(self.defaults))
        if unknown:
            raise ValueError(f"family {self.name!r}: unknown hyperparameters {unknown}; expected {sorted(self.defaults)}")
        self.hyper = {**self.defaults, **{k: v for k, v in hyper.items() if v is not None}}
        for key, value in self.hyper.items():
            if not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
                raise ValueError(f"family {self.name!r}: {key} must be a finite number >= 0, got {value!r}")

    def hyperparameters(self) -> dict:
        return dict(self.hyper)

    def loss(self, x, out, mu, logvar, z, *, likelihood, obs_std=0.1, step=0, total_steps=1, dataset_size=1):
        """Per-member loss [K]; x, out [B, K, *shape]; mu, logvar, z [B, K, L]."""
        raise NotImplementedError


class BetaVAE(Objective):
    """Higgins et al. (2017): E[-log p(x|z)] + beta KL(q(z|x) || p(z))."""

    name = "beta-vae"
    defaults = {"beta": 4.0}

    def loss(self, x, out, mu, logvar, z, *, likelihood, obs_std=0.1, step=0, total_steps=1, dataset_size=1):
        rec = reconstruction(x, out, likelihood, obs_std)
        kl = kl_per_dim(mu, logvar).sum(-1)
        return (rec + self.hyper["beta"] * kl).mean(0)


class AnnealedVAE(Objective):
    """Burgess et al. (2018): E[-log p(x|z)] + gamma |KL - C(t)|, C growing linearly from 0 to
    ``capacity`` nats over the first ``anneal_fraction`` of training."""

    name = "annealed-vae"
    defaults = {"gamma": 100.0, "capacity": 25.0, "anneal_fraction": 0.8}

    def loss(self, x, out, mu, logvar, z, *, likelihood, obs_std=0.1, step=0, total_steps=1, dataset_size=1):
        rec = reconstruction(x, out, likelihood, obs_std)
        kl = kl_per_dim(mu, logvar).sum(-1).mean(0)
        frac = self.hyper["anneal_fraction"]
        t = 1.0 if frac <= 0 else min(1.0, step / max(1.0, frac * total_steps))
        cap = self.hyper["capacity"] * t
        return rec.mean(0) + self.hyper["gamma"] * (kl - cap).abs()


class BetaTCVAE(Objective):
    """Chen et al. (2018): reconstruction + alpha MI + beta TC + gamma dimension-wise KL, with
    q(z) estimated by minibatch-weighted sampling over the batch (per member)."""

    name = "beta-tcvae"
    defaults = {"alpha": 1.0, "beta": 6.0, "gamma": 1.0}

    def loss(self, x, out, mu, logvar, z, *, likelihood, obs_std=0.1, step=0, total_steps=1, dataset_size=1):
        rec = reconstruction(x, out, likelihood, obs_std)
        b = z.shape[0]
        log_qz_x = _log_normal(z, mu, logvar).sum(-1)  # [B, K]
        log_pz = _log_normal(z, torch.zeros_like(z), torch.zeros_like(z)).sum(-1)
        # pairwise log q(z_i | x_j): [B_i, B_j, K, L]
        mat = _log_normal(z[:, None], mu[None], logvar[None])
        norm = math.log(b * max(int(dataset_size), b))
        log_qz = torch.logsumexp(mat.sum(-1), dim=1) - norm  # [B, K]
        log_prod = (torch.logsumexp(mat, dim=1) - norm).sum(-1)  # [B, K]
        h = self.hyper
        per = rec + h["alpha"] * (log_qz_x - log_qz) + h["beta"] * (log_qz - log_prod) + h["gamma"] * (log_prod - log_pz)
        return per.mean(0)


#: family name -> objective class (the keys are the CLI choices)
FAMILIES: dict[str, type[Objective]] = {c.name: c for c in (BetaVAE, BetaTCVAE, AnnealedVAE)}


def make_objective(family: str, **hyper) -> Objective:
    """Objective of a registered family; ValueError names unknown families or hyperparameters."""
    if family not in FAMILIES:
        raise ValueError(f"family: unknown name {family!r}; expected one of {sorted(FAMILIES)}")
    return FAMILIES[family](**hyper)
