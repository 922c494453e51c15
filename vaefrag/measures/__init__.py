"""Bhattacharyya fingerprints and the generalized NMI / VI between latent channels.

Pure numerics (numpy in and out, torch inside for speed; no I/O). Units are bits.
Definitions follow shared/DESIGN.md §2 (Murphy, Dillavou & Bassett, arXiv:2405.21042):

- A channel U has a diagonal Gaussian posterior N(mu_i, diag(exp(logvar_i))) for each of the
  N fingerprint points x_i. Its fingerprint is the N x N matrix of Bhattacharyya coefficients
  BC_U(i, j) = exp(-D_ij).
- I(X;U) = -(1/N) sum_i log2((1/N) sum_j BC_U(i, j)); joint channels multiply fingerprints.
- NMI(U, V) = I(U;V) / sqrt(I(U;U') I(V;V')),  VI(U, V) = 2 I(X;U,V) - I(X;U,U') - I(X;V,V').

For a channel that carries (almost) no information, I(U;U') ~ 0 and NMI is 0/0: undefined.
`compare_channels` reports it as NaN and marks the channel in `informative` (False); VI stays
defined for every channel.

The pairwise part is one batched matrix product per block of fingerprint points:
S_i[a, b] = (1/N) sum_j BC_a(i, j) BC_b(i, j) for all channel pairs (a, b) at once.
"""
from vaefrag.measures.channels import (
    DEFAULT_BLOCK_CHANNELS,
    ChannelComparison,
    channel_ids,
    compare_channels,
    group_latents,
    resampled_measures,
    split_channels,
)
from vaefrag.measures.fingerprints import bhattacharyya, bhattacharyya_torch, info_from_bc_torch
from vaefrag.measures.tiles import (
    CPU_BLOCK_BYTES,
    DEFAULT_MEMORY_BUDGET,
    TileResult,
    TileTask,
    map_tiles_here,
    pair_tile,
    plan_tiles,
    run_tile_task,
)
from vaefrag.measures.montecarlo import (SpaceComparison, compare_many_spaces, compare_spaces, monte_carlo_info,
                                        monte_carlo_terms)
from vaefrag.measures.validation import resolve_device

__all__ = [
    "bhattacharyya",
    "bhattacharyya_torch",
    "info_from_bc_torch",
    "channel_ids",
    "split_channels",
    "group_latents",
    "ChannelComparison",
    "compare_channels",
    "resampled_measures",
    "TileResult",
    "pair_tile",
    "TileTask",
    "plan_tiles",
    "run_tile_task",
    "map_tiles_here",
    "monte_carlo_info",
    "monte_carlo_terms",
    "SpaceComparison",
    "compare_spaces",
    "compare_many_spaces",
    "resolve_device",
    "DEFAULT_MEMORY_BUDGET",
    "DEFAULT_BLOCK_CHANNELS",
    "CPU_BLOCK_BYTES",
]
