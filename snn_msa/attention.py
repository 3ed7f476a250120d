r"""Spike-generated self-attention (paper eqs. 3-6) and its connected variant.

For a time-major input :math:`X \in \mathbb{R}^{L \times B \times d_m}`:

.. math::
    X_{norm} = scale_1\,\mathrm{LN}(X), \quad X_{spike} = \mathrm{LIF}(X_{norm}), \\
    Q = X_{spike}W_Q,\; K = X_{spike}W_K,\; V = X_{spike}W_V, \\
    \mathrm{SGSA}_h(X) = \mathrm{softmax}\!\Big(\frac{Q_h K_h^T}{scale_{2,h}}\Big) V_h, \quad
    scale_{2,h} = \sqrt{\sigma^2(W_Q^h)\,\sigma^2(W_K^h)\, d\, d_m^2 f^2},

with :math:`d = d_m / h` the head width and :math:`f` the firing rate of
:math:`X_{spike}` (spikes / (steps x neurons), over valid positions) measured in
this forward pass. MHSGSA concatenates the heads (eq. 6). CMHSGSA is the same
with the connected neuron LIF'. The non-spiking twin uses the identity for the
neuron and :math:`scale_2 = \sqrt{d}` (vanilla attention).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .neurons import LIF, ConnectedLIF


def make_neuron(kind: str, features: int, *, strength: float, tau: float, v_threshold: float, backend: str) -> nn.Module:
    """A neuron of ``kind`` ``"lif"``, ``"connected"`` or ``"identity"`` (the non-spiking twin)."""
    if kind == "lif":
        return LIF(tau=tau, v_threshold=v_threshold)
    if kind == "connected":
        return ConnectedLIF(features, strength=strength, tau=tau, v_threshold=v_threshold, backend=backend)
    if kind == "identity":
        return nn.Identity()
    raise ValueError(f"unknown neuron kind {kind!r}; use 'lif', 'connected' or 'identity'.")


def masked_firing_rate(spikes: torch.Tensor, valid: torch.Tensor | None) -> torch.Tensor:
    """Mean of ``spikes`` [L, B, F] over valid positions (``valid`` [L, B] bool), detached."""
    spikes = spikes.detach()
    if valid is None:
        return spikes.mean()
    weights = valid.to(spikes.dtype).unsqueeze(-1)
    return (spikes * weights).sum() / (weights.sum() * spikes.shape[-1]).clamp_min(1.0)


class MHSGSA(nn.Module):
    r"""Multi-head spike-generated self-attention, eqs. 3-6 (CMHSGSA with ``neuron="connected"``).

    Input ``x`` is time-major ``[L, B, d_m]``; ``valid`` is ``[L, B]`` (True for
    real positions, False for padding) or None. Returns ``(attention, x_norm)``,
    both ``[L, B, d_m]``: the concatenated heads and :math:`X_{norm}`, which the
    layer's residual needs.

    After each forward, ``last_firing_rate`` holds :math:`f` and ``last_scale2``
    the per-head :math:`scale_2` (a tensor of ``heads`` values).
    """

    def __init__(
        self,
        dim: int,
        heads: int,
        scale1: float = 0.5,
        neuron: str = "lif",
        strength: float = 0.01,
        tau: float = 2.0,
        v_threshold: float = 1.0,
        backend: str = "auto",
    ):
        super().__init__()
        if dim % heads:
            raise ValueError(f"model width {dim} must be divisible by the number of heads {heads}.")
        self.dim, self.heads, self.head_dim = dim, heads, dim // heads
        self.scale1 = float(scale1)
        self.spiking = neuron != "identity"
        self.norm = nn.LayerNorm(dim)
        self.neuron = make_neuron(neuron, dim, strength=strength, tau=tau, v_threshold=v_threshold, backend=backend)
        self.query = nn.Linear(dim, dim, bias=False)
        self.key = nn.Linear(dim, dim, bias=False)
        self.value = nn.Linear(dim, dim, bias=False)
        self.last_firing_rate: float | None = None
        self.last_scale2: torch.Tensor | None = None

    def scale2(self, firing_rate: torch.Tensor) -> torch.Tensor:
        r"""Per-head :math:`scale_2 = \sqrt{\sigma^2(W_Q^h)\sigma^2(W_K^h) d}\; d_m f` (detached).

        The twin returns :math:`\sqrt{d}` for every head. A firing rate of zero
        gives Q = K = 0, so any positive scale keeps the softmax finite; the rate
        is floored at one spike in the whole input.
        """
        if not self.spiking:
            return torch.full((self.heads,), math.sqrt(self.head_dim))
        wq = self.query.weight.detach().view(self.heads, self.head_dim, self.dim)
        wk = self.key.weight.detach().view(self.heads, self.head_dim, self.dim)
        var_q = wq.flatten(1).var(dim=1, unbiased=False)
        var_k = wk.flatten(1).var(dim=1, unbiased=False)
        return torch.sqrt(var_q * var_k * self.head_dim) * self.dim * firing_rate

    def forward(self, x: torch.Tensor, valid: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        L, B, _ = x.shape
        x_norm = self.scale1 * self.norm(x)
        x_spike = self.neuron(x_norm)
        if self.spiking:
            rate = masked_firing_rate(x_spike, valid)
            rate = torch.maximum(rate, rate.new_tensor(1.0 / x_spike.numel()))
        else:
            rate = x_norm.new_tensor(1.0)
        scale2 = self.scale2(rate).to(x.device, x.dtype)

        def heads(t: torch.Tensor) -> torch.Tensor:  # [L, B, d_m] -> [B, h, L, d]
            return t.view(L, B, self.heads, self.head_dim).permute(1, 2, 0, 3)

        q = heads(self.query(x_spike)) / scale2.view(1, -1, 1, 1)
        k, v = heads(self.key(x_spike)), heads(self.value(x_spike))
        mask = None if valid is None else valid.t().view(B, 1, 1, L)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, scale=1.0)
        self.last_firing_rate = float(rate) if self.spiking else None
        self.last_scale2 = scale2.detach()
        return out.permute(2, 0, 1, 3).reshape(L, B, self.dim), x_norm
