"""VAEs written outside vaefrag (tutorial style), and their ONNX export, for the bring-your-own tests."""
from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn


class TutorialVAE(nn.Module):
    """A small convolutional VAE as a PyTorch tutorial writes one: ``encode`` -> (mu, logvar),
    ``decode`` -> sigmoid images [B, C, S, S]. ``channels_last=True`` takes and gives [B, S, S, C]
    (as a Keras model does) and its encoder returns (z_mean, z_log_var, z)."""

    def __init__(self, latents: int = 3, side: int = 8, channels: int = 1, channels_last: bool = False, seed: int = 0):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.latents, self.side, self.channels, self.channels_last = latents, side, channels, channels_last
        self.conv = nn.Conv2d(channels, 4, 3, padding=1)
        self.enc = nn.Linear(4 * side * side, 2 * latents)
        self.dec = nn.Sequential(nn.Linear(latents, 16), nn.Tanh(), nn.Linear(16, channels * side * side))
        with torch.no_grad():
            for p in self.parameters():
                p.copy_(torch.randn(p.shape, generator=g) * 0.5)

    def encode(self, x):
        if self.channels_last:
            x = x.permute(0, 3, 1, 2)
        h = torch.relu(self.conv(x)).flatten(1)
        out = self.enc(h)
        mu, logvar = out[:, :self.latents], out[:, self.latents:] - 1.0
        if self.channels_last:
            return mu, logvar, mu          # Keras encoders often return (z_mean, z_log_var, z)
        return mu, logvar

    def decode(self, z):
        y = torch.sigmoid(self.dec(z)).reshape(-1, self.channels, self.side, self.side)
        return y.permute(0, 2, 3, 1) if self.channels_last else y


class Method(nn.Module):
    def __init__(self, owner, name):
        super().__init__()
        self.owner, self.name_ = owner, name

    def forward(self, t):
        return getattr(self.owner, self.name_)(t)


def export(module: nn.Module, example: torch.Tensor, path: Path, *, dynamo: bool = True, dynamic: bool = True):
    """``torch.onnx.export`` as a user runs it (the new exporter by default; the legacy one for speed)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    module.eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if dynamo:
            shapes = ({0: torch.export.Dim("batch", min=1)},) if dynamic else None
            torch.onnx.export(module, (example,), str(path), dynamo=True, dynamic_shapes=shapes, verbose=False)
        else:
            axes = {"input": {0: "batch"}} if dynamic else None
            torch.onnx.export(module, (example,), str(path), dynamo=False, input_names=["input"], dynamic_axes=axes)
    return path


def export_vaes(vaes, x_model: np.ndarray, out: Path, *, dynamo: bool = False, encoders: bool = True):
    """decoders/decoder_K.onnx (and encoders/encoder_K.onnx) of each VAE; returns (dec_dir, enc_dir)."""
    dec_dir, enc_dir = out / "decoders", out / "encoders"
    for k, vae in enumerate(vaes):
        z = torch.zeros(2, vae.latents)
        export(Method(vae, "decode"), z, dec_dir / f"model_{k:02d}.onnx", dynamo=dynamo)
        if encoders:
            export(Method(vae, "encode"), torch.from_numpy(x_model[:2]), enc_dir / f"model_{k:02d}.onnx", dynamo=dynamo)
    return dec_dir, (enc_dir if encoders else None)


def posteriors(vaes, x_model: np.ndarray):
    """mu, logvar [K, N, L] of the VAEs in torch."""
    with torch.no_grad():
        outs = [vae.encode(torch.from_numpy(x_model)) for vae in vaes]
    return (np.stack([o[0].numpy() for o in outs]).astype(np.float32),
            np.stack([o[1].numpy() for o in outs]).astype(np.float32))


def torch_grid(vae, base_mu: np.ndarray, latent: int, values) -> np.ndarray:
    """Traversal grid decoded in torch, uint8 [R, V, H, W] (or [R, V, H, W, C]), computed here
    independently of vaefrag.traversal."""
    r, v = len(base_mu), len(values)
    z = np.repeat(np.asarray(base_mu, np.float32)[:, None, :], v, 1)
    z[:, :, latent] = np.asarray(values, np.float32)[None]
    with torch.no_grad():
        y = vae.decode(torch.from_numpy(z.reshape(r * v, -1))).numpy()
    if not vae.channels_last:
        y = np.moveaxis(y, 1, -1)          # -> [B, H, W, C]
    y = y.reshape((r, v) + y.shape[1:])
    if y.shape[-1] == 1:
        y = y[..., 0]
    return np.clip(np.rint(y.astype(np.float64) * 255), 0, 255).astype(np.uint8)
