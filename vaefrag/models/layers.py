"""Member-batched layers: K independent networks evaluated as one (grouped convolutions, batched GEMMs).

Activations carry a member axis right after the batch axis: ``[B, K, ...]``. Every parameter has
the member axis first (``[K, ...]``), so member ``k``'s weights are ``param[k]`` and a K-member
model is exactly K independent models: no parameter or gradient is shared between members.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


class MemberLayer(nn.Module):
    """Base class: ``reset_member(k, generator)`` re-initialises member k only (PyTorch's default init)."""

    n_members: int

    def fan_in(self) -> int:
        raise NotImplementedError

    @torch.no_grad()
    def reset_member(self, k: int, generator: torch.Generator) -> None:
        bound = 1.0 / math.sqrt(self.fan_in())
        for p in (self.weight, self.bias):
            u = torch.rand(p.shape[1:], generator=generator, dtype=torch.float64)
            p[k] = ((2 * u - 1) * bound).to(p.dtype)


class BLinear(MemberLayer):
    """K linear maps: x [B, K, in] -> [B, K, out]."""

    def __init__(self, n_members: int, d_in: int, d_out: int):
        super().__init__()
        self.n_members, self.d_in, self.d_out = n_members, d_in, d_out
        self.weight = nn.Parameter(torch.zeros(n_members, d_in, d_out))
        self.bias = nn.Parameter(torch.zeros(n_members, d_out))

    def fan_in(self) -> int:
        return self.d_in

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.member_major(x.transpose(0, 1)).transpose(0, 1)

    def member_major(self, x: torch.Tensor) -> torch.Tensor:
        """The same maps on member-major activations: x [K, N, in] -> [K, N, out] (no transposes,
        for large N such as every pixel of a batch)."""
        return torch.baddbmm(self.bias[:, None, :], x, self.weight)


class BConv2d(MemberLayer):
    """K convolutions as one grouped convolution: x [B, K, Cin, H, W] -> [B, K, Cout, H', W']."""

    def __init__(self, n_members: int, c_in: int, c_out: int, kernel: int = 4, stride: int = 2, padding: int = 1):
        super().__init__()
        self.n_members, self.c_in, self.c_out = n_members, c_in, c_out
        self.kernel, self.stride, self.padding = kernel, stride, padding
        self.weight = nn.Parameter(torch.zeros(n_members, c_out, c_in, kernel, kernel))
        self.bias = nn.Parameter(torch.zeros(n_members, c_out))

    def fan_in(self) -> int:
        return self.c_in * self.kernel**2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, k = x.shape[:2]
        xi = x.reshape(b, k * self.c_in, *x.shape[3:])
        if self.c_in <= 3:  # input layer: the channels-last kernels are several times faster on CPU
            xi = xi.contiguous(memory_format=torch.channels_last)
        y = F.conv2d(
            xi,
            self.weight.reshape(k * self.c_out, self.c_in, self.kernel, self.kernel),
            self.bias.reshape(-1), stride=self.stride, padding=self.padding, groups=k,
        )
        return y.reshape(b, k, self.c_out, *y.shape[2:])


class BConvTranspose2d(MemberLayer):
    """K transposed convolutions as one grouped one: x [B, K, Cin, H, W] -> [B, K, Cout, H', W']."""

    def __init__(self, n_members: int, c_in: int, c_out: int, kernel: int = 4, stride: int = 2, padding: int = 1):
        super().__init__()
        self.n_members, self.c_in, self.c_out = n_members, c_in, c_out
        self.kernel, self.stride, self.padding = kernel, stride, padding
        self.weight = nn.Parameter(torch.zeros(n_members, c_in, c_out, kernel, kernel))
        self.bias = nn.Parameter(torch.zeros(n_members, c_out))

    def fan_in(self) -> int:
        # as torch.nn.ConvTranspose2d: fan-in computed from weight dim 1
        return self.c_out * self.kernel**2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, k = x.shape[:2]
        xi = x.reshape(b, k * self.c_in, *x.shape[3:])
        if self.c_out <= 3:  # output layer: as for the input layer
            xi = xi.contiguous(memory_format=torch.channels_last)
        y = F.conv_transpose2d(
            xi,
            self.weight.reshape(k * self.c_in, self.c_out, self.kernel, self.kernel),
            self.bias.reshape(-1), stride=self.stride, padding=self.padding, groups=k,
        )
        return y.reshape(b, k, self.c_out, *y.shape[2:])
