"""VAE encoder/decoder networks for K members at once, rebuilt from a small JSON-able spec.

A spec (``make_spec``) is a dict::

    {"kind": "conv" | "mlp", "input_shape": [C, H, W] | [D], "latents": L,
     "width": conv channels, "hidden": hidden units, "likelihood": "bernoulli" | "gaussian",
     "obs_std": std of the Gaussian likelihood, "decoder": "mirror" | "broadcast"}

Convolutional networks (square images whose side is a power of two >= 8) halve the resolution with
4x4 stride-2 convolutions down to 4x4, then two linear layers; the "mirror" decoder mirrors them.
The "broadcast" decoder (Watters et al. 2019, arXiv:1901.07017) gives every pixel the whole latent
vector plus the pixel's own (x, y) coordinates and maps them to the pixel with a small MLP shared by
all pixels (``width`` units, two hidden layers): position is then easy to read off one latent each,
which is what makes x, y and size come out as separate channels. Other inputs use an MLP on the
flattened input (their decoder is always "mirror").
"""
from __future__ import annotations

import math

import torch
from torch import nn

from vaefrag.models.layers import BConv2d, BConvTranspose2d, BLinear, MemberLayer

LIKELIHOODS = ("bernoulli", "gaussian")
DECODERS = ("mirror", "broadcast")


def make_spec(input_shape, latents: int, *, width: int = 32, hidden: int = 256,
              likelihood: str = "bernoulli", obs_std: float = 0.1, kind: str | None = None,
              decoder: str = "mirror") -> dict:
    """Network spec for inputs of ``input_shape`` (see module docstring); validates every field."""
    shape = [int(s) for s in input_shape]
    if not isinstance(latents, int) or latents < 1:
        raise ValueError(f"latents must be an int >= 1, got {latents!r}")
    if not isinstance(width, int) or width < 1 or not isinstance(hidden, int) or hidden < 1:
        raise ValueError(f"width and hidden must be ints >= 1, got {width!r}, {hidden!r}")
    if likelihood not in LIKELIHOODS:
        raise ValueError(f"likelihood must be one of {LIKELIHOODS}, got {likelihood!r}")
    if not (obs_std > 0 and math.isfinite(obs_std)):
        raise ValueError(f"obs_std must be finite and > 0, got {obs_std!r}")
    conv_ok = (len(shape) == 3 and shape[1] == shape[2] and shape[1] >= 8
               and shape[1] & (shape[1] - 1) == 0)
    if kind is None:
        kind = "conv" if conv_ok else "mlp"
    if kind not in ("conv", "mlp") or (kind == "conv" and not conv_ok):
        raise ValueError(f"kind {kind!r} does not fit input shape {shape} (conv needs [C, S, S], S a power of 2 >= 8)")
    if decoder not in DECODERS or (decoder == "broadcast" and kind != "conv"):
        raise ValueError(f"decoder must be one of {DECODERS} ('broadcast' for images only), got {decoder!r}")
    return {"kind": kind, "input_shape": shape, "latents": latents, "width": width, "hidden": hidden,
            "likelihood": likelihood, "obs_std": float(obs_std), "decoder": decoder}


def _check_spec(spec: dict) -> dict:
    try:
        return make_spec(spec["input_shape"], spec["latents"], width=spec["width"], hidden=spec["hidden"],
                         likelihood=spec["likelihood"], obs_std=spec.get("obs_std", 0.1), kind=spec["kind"],
                         decoder=spec.get("decoder", "mirror"))
    except KeyError as exc:
        raise ValueError(f"model spec: missing field {exc.args[0]!r}") from None


class EnsembleVAE(nn.Module):
    """K independent VAEs evaluated as one network.

    Parameters
    ----------
    spec : dict
        Network spec (see :func:`make_spec`).
    n_members : int
        K, the number of members.
    """

    def __init__(self, spec: dict, n_members: int):
        super().__init__()
        self.spec = _check_spec(spec)
        self.n_members = K = int(n_members)
        s = self.spec
        self.input_shape = tuple(s["input_shape"])
        L, w, h = s["latents"], s["width"], s["hidden"]
        self.latents = L
        relu = nn.ReLU()
        if s["kind"] == "conv":
            c, side = self.input_shape[0], self.input_shape[1]
            n_down = int(math.log2(side // 4))
            enc = []
            for i in range(n_down):
                enc += [BConv2d(K, c if i == 0 else w, w), relu]
            self.enc_conv = nn.Sequential(*enc)
            self.enc_fc = nn.Sequential(BLinear(K, w * 16, h), relu, BLinear(K, h, 2 * L))
            if s["decoder"] == "broadcast":
                self.dec_z, self.dec_xy = BLinear(K, L, w), BLinear(K, 2, w)
                self.dec_pixel = nn.Sequential(relu, BLinear(K, w, w), relu, BLinear(K, w, c))
                axis = torch.linspace(-1, 1, side)
                grid = torch.stack(torch.meshgrid(axis, axis, indexing="xy"), -1).reshape(1, -1, 2)
                self.register_buffer("pixel_xy", grid, persistent=False)  # [1, S*S, 2] (x, y)
            else:
                self.dec_fc = nn.Sequential(BLinear(K, L, h), relu, BLinear(K, h, w * 16), relu)
                dec = []
                for i in range(n_down):
                    last = i == n_down - 1
                    dec += [BConvTranspose2d(K, w, c if last else w)] + ([] if last else [relu])
                self.dec_conv = nn.Sequential(*dec)
        else:
            d = int(math.prod(self.input_shape))
            self.enc_conv = nn.Sequential()
            self.enc_fc = nn.Sequential(BLinear(K, d, h), relu, BLinear(K, h, h), relu, BLinear(K, h, 2 * L))
            self.dec_fc = nn.Sequential(BLinear(K, L, h), relu, BLinear(K, h, h), relu, BLinear(K, h, d))
            self.dec_conv = nn.Sequential()

    @property
    def likelihood(self) -> str:
        return self.spec["likelihood"]

    def member_layers(self) -> list[MemberLayer]:
        return [m for m in self.modules() if isinstance(m, MemberLayer)]

    def init_members(self, seeds) -> None:
        """Initialise member k from ``seeds[k]`` alone (so its init does not depend on K)."""
        if len(seeds) != self.n_members:
            raise ValueError(f"seeds: expected {self.n_members} seeds, got {len(seeds)}")
        for k, seed in enumerate(seeds):
            g = torch.Generator().manual_seed(int(seed))
            for layer in self.member_layers():
                layer.reset_member(k, g)

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x [B, *input_shape] (shared by all members) or [B, K, *input_shape] -> mu, logvar [B, K, L]."""
        nd = len(self.input_shape)
        if x.dim() == nd + 1:
            x = x.unsqueeze(1).expand(x.shape[0], self.n_members, *x.shape[1:])
        b, k = x.shape[:2]
        if self.spec["kind"] == "conv":
            hdn = self.enc_conv(x).reshape(b, k, -1)
        else:
            hdn = x.reshape(b, k, -1)
        out = self.enc_fc(hdn)
        return out[..., : self.latents], out[..., self.latents:]

    def decode_logits(self, z: torch.Tensor) -> torch.Tensor:
        """z [B, K, L] -> logits (Bernoulli) or means (Gaussian) [B, K, *input_shape]."""
        b, k = z.shape[:2]
        if self.spec["decoder"] == "broadcast":
            c, side = self.input_shape[0], self.input_shape[1]
            # member-major [K, B * S * S, w] activations: one batched GEMM per layer, no transposes
            xy = self.dec_xy.member_major(self.pixel_xy.expand(k, -1, 2))  # [K, P, w], P = S*S pixels
            hdn = self.dec_z.member_major(z.transpose(0, 1))[:, :, None] + xy[:, None]  # [K, B, P, w]
            hdn = hdn.reshape(k, b * side * side, -1)
            for layer in self.dec_pixel:
                hdn = layer.member_major(hdn) if isinstance(layer, BLinear) else layer(hdn)
            return hdn.reshape(k, b, side, side, c).permute(1, 0, 4, 2, 3)
        hdn = self.dec_fc(z)
        if self.spec["kind"] == "conv":
            w = self.spec["width"]
            return self.dec_conv(hdn.reshape(b, k, w, 4, 4))
        return hdn.reshape(b, k, *self.input_shape)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """z [B, K, L] -> reconstructions [B, K, *input_shape] (probabilities in [0, 1] for Bernoulli)."""
        out = self.decode_logits(z)
        return torch.sigmoid(out) if self.likelihood == "bernoulli" else out

    def member_state(self, k: int) -> dict[str, torch.Tensor]:
        """Member k's parameters without the member axis: name -> tensor (detached copy)."""
        return {name: p.detach()[k].clone() for name, p in self.named_parameters()}

    @torch.no_grad()
    def load_member_state(self, k: int, state: dict) -> None:
        """Set member k's parameters; the keys and shapes must match exactly (strict)."""
        params = dict(self.named_parameters())
        missing, extra = sorted(set(params) - set(state)), sorted(set(state) - set(params))
        if missing or extra:
            raise ValueError(f"member weights: missing {missing}, unexpected {extra}")
        for name, p in params.items():
            t = torch.as_tensor(state[name])
            if tuple(t.shape) != tuple(p.shape[1:]):
                raise ValueError(f"member weights: {name!r} has shape {tuple(t.shape)}, expected {tuple(p.shape[1:])}")
            p[k] = t.to(p.dtype)


class Member(nn.Module):
    """One VAE (a K=1 :class:`EnsembleVAE` without the member axis), as returned by ``members.load_member``.

    ``encode(x [B, *input_shape]) -> (mu [B, L], logvar [B, L])``;
    ``decode(z [B, L]) -> [B, *input_shape]`` (in [0, 1] for Bernoulli likelihoods).
    """

    def __init__(self, spec: dict):
        super().__init__()
        self.net = EnsembleVAE(spec, 1)
        self.spec = self.net.spec
        self.latents = self.net.latents
        self.input_shape = self.net.input_shape

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mu, logvar = self.net.encode(x)
        return mu[:, 0], logvar[:, 0]

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.net.decode(z[:, None])[:, 0]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(x)[0])

    def load_state(self, state: dict) -> "Member":
        self.net.load_member_state(0, state)
        return self
