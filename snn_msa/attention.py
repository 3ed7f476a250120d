r"""Spike-generated self-attention (paper eqs. 3-6) and its connected variant.

For a time-major input :math:`X \in \mathbb{R}^{L \times B \times d_m}`:

.. math::
    X_{norm} = scale_1\,\mathrm{LN}(X), \quad X_{spike} = \mathrm{LIF}(X_{norm}), \\
    Q = X_{spike}W_Q,\; K = X_{spike}W_K,\; V = X_{spike}W_V, \\
    \mathrm{SGSA}_h(X) = \mathrm{softmax}\!\Big(\frac{Q_h K_h^T}{scale_{2,h}}\Big) V_h, \quad
    scale_{2,h} = \sqrt{\sigma^2(W_Q^h)\,\sigma^2(W_K^h)\, d\, d_m^2 f^2},

with :math:`d = d_m / h` the head width and :math:`f` the firing rate of
:math:`X_{spike}` (spikes / (steps x neurons)) of one sample over its valid
positions, measured in this forward pass: one :math:`scale_2` per sample and
head. MHSGSA concatenates the heads (eq. 6). CMHSGSA is the same with the
connected neuron LIF'. The non-spiking twin uses the identity for the
neuron and :math:`scale_2 = \sqrt{d}` (vanilla attention).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .neurons import LIF, ConnectedLIF, NeuronSettings
from .neurons.activity import valid_counts


class IdentityNeuron(nn.Identity):
    """The non-spiking twin's neuron: passes its input through (``valid`` is accepted and ignored)."""

    def forward(self, x: torch.Tensor, valid: torch.Tensor | None = None) -> torch.Tensor:
        return x


def make_neuron(kind: str, features: int, settings: NeuronSettings) -> nn.Module:
    """A neuron of ``kind`` ``"lif"``, ``"connected"`` or ``"identity"`` (the non-spiking twin)."""
    if kind == "lif":
        p = settings.lif
        return LIF(tau=p.tau, v_threshold=p.v_threshold, v_rest=p.v_rest, alpha=p.alpha)
    if kind == "connected":
        p = settings.lif
        return ConnectedLIF(features, strength=settings.strength, tau=p.tau, v_threshold=p.v_threshold,
                            v_rest=p.v_rest, alpha=p.alpha, backend=settings.backend)
    if kind == "identity":
        return IdentityNeuron()
    raise ValueError(f"unknown neuron kind {kind!r}; use 'lif', 'connected' or 'identity'.")


def sample_firing_rate(spikes: torch.Tensor, valid: torch.Tensor | None) -> torch.Tensor:
    """Each sample's firing rate ``[B]``: its spikes over its valid positions' neuron-steps, detached.

    A sample with no spike gets the floor of one spike in its valid positions,
    so that :math:`scale_2 > 0` (with no spike Q = K = 0 and any scale works).
    """
    count, steps = valid_counts(spikes, valid)
    steps = steps.clamp_min(1.0)
    return torch.maximum(count, torch.ones_like(count)) / steps


class MHSGSA(nn.Module):
    r"""Multi-head spike-generated self-attention, eqs. 3-6 (CMHSGSA with ``neuron="connected"``).

    Input ``x`` is time-major ``[L, B, d_m]``; ``valid`` is ``[L, B]`` (True for
    real positions, False for padding) or None. Returns ``(attention, x_norm)``,
    both ``[L, B, d_m]``: the concatenated heads and :math:`X_{norm}`, which the
    layer's residual needs.

    :math:`f` is measured per sample on its own valid positions (the paper
    defines it on one sequence, :math:`X_{spike} \in \mathbb{R}^{T \times d_m}`),
    so :math:`scale_2` has one value per sample and head and a sample's output
    does not depend on the other samples of its batch. After each forward,
    ``last_firing_rate`` holds :math:`f` (``[B]``) and ``last_scale2`` the
    per-sample, per-head :math:`scale_2` (``[B, heads]``), both detached tensors
    on the input's device (reading them is the caller's choice of a host sync).
    """

    def __init__(
        self,
        dim: int,
        heads: int,
        scale1: float = 0.5,
        neuron: str = "lif",
        settings: NeuronSettings | None = None,
    ):
        super().__init__()
        if dim % heads:
            raise ValueError(f"model width {dim} must be divisible by the number of heads {heads}.")
        self.dim, self.heads, self.head_dim = dim, heads, dim // heads
        self.scale1 = float(scale1)
        self.spiking = neuron != "identity"
        self.norm = nn.LayerNorm(dim)
        self.neuron = make_neuron(neuron, dim, settings or NeuronSettings())
        self.query = nn.Linear(dim, dim, bias=False)
        self.key = nn.Linear(dim, dim, bias=False)
        self.value = nn.Linear(dim, dim, bias=False)
        self.last_firing_rate: torch.Tensor | None = None
        self.last_scale2: torch.Tensor | None = None

    def scale2(self, firing_rate: torch.Tensor) -> torch.Tensor:
        r""":math:`scale_2 = \sqrt{\sigma^2(W_Q^h)\sigma^2(W_K^h) d}\; d_m f` per sample and head (detached).

        ``firing_rate`` is ``[B]`` (one :math:`f` per sample); returns ``[B, heads]``.
        The twin returns :math:`\sqrt{d}` everywhere.
        """
        if not self.spiking:
            return firing_rate.new_full((firing_rate.shape[0], self.heads), math.sqrt(self.head_dim))
        wq = self.query.weight.detach().view(self.heads, self.head_dim, self.dim)
        wk = self.key.weight.detach().view(self.heads, self.head_dim, self.dim)
        var_q = wq.flatten(1).var(dim=1, unbiased=False)
        var_k = wk.flatten(1).var(dim=1, unbiased=False)
        per_head = torch.sqrt(var_q * var_k * self.head_dim) * self.dim
        return firing_rate.unsqueeze(1) * per_head.to(firing_rate.dtype).unsqueeze(0)

    def forward(self, x: torch.Tensor, valid: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        L, B, _ = x.shape
        x_norm = self.scale1 * self.norm(x)
        x_spike = self.neuron(x_norm, valid)
        rate = sample_firing_rate(x_spike, valid) if self.spiking else x_norm.new_ones(B).detach()
        scale2 = self.scale2(rate).to(x.dtype)

        def heads(t: torch.Tensor) -> torch.Tensor:  # [L, B, d_m] -> [B, h, L, d]
            return t.view(L, B, self.heads, self.head_dim).permute(1, 2, 0, 3)

        q = heads(self.query(x_spike)) / scale2.view(B, self.heads, 1, 1)
        k, v = heads(self.key(x_spike)), heads(self.value(x_spike))
        mask = None if valid is None else valid.t().view(B, 1, 1, L)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, scale=1.0)
        self.last_firing_rate = rate if self.spiking else None
        self.last_scale2 = scale2.detach()
        return out.permute(2, 0, 1, 3).reshape(L, B, self.dim), x_norm
