r"""The basic layer of the single-modal and fusion networks (paper eq. 7).

.. math::
    Y_{norm} = scale_1\,\mathrm{LN}(\mathrm{MHSGSA}(X)), \quad
    Y_{spike} = \mathrm{LIF}(Y_{norm}), \quad
    Y_{out} = \mathrm{linear}(Y_{spike}), \\
    R_{norm} = scale_1\,\mathrm{LN}(Y_{out}), \quad
    R = R_{norm} + X_{norm} + Y_{norm}.

The fusion layer is the same block with every LIF replaced by LIF' (CMHSGSA).
"""

from __future__ import annotations

import torch
from torch import nn

from .attention import MHSGSA, make_neuron
from .neurons import NeuronSettings


class SpikingLayer(nn.Module):
    """One eq.-7 layer over a time-major ``[L, B, d_m]`` sequence.

    ``neuron`` is ``"lif"`` (single-modal network), ``"connected"`` (fusion
    network) or ``"identity"`` (the non-spiking twin).
    """

    def __init__(
        self,
        dim: int,
        heads: int,
        scale1: float = 0.5,
        neuron: str = "lif",
        settings: NeuronSettings | None = None,
        dropout: float = 0.0,
    ):
        super().__init__()
        settings = settings or NeuronSettings()
        self.scale1 = float(scale1)
        self.attention = MHSGSA(dim, heads, scale1, neuron, settings)
        self.attention_norm = nn.LayerNorm(dim)
        self.ffn_neuron = make_neuron(neuron, dim, settings)
        self.ffn = nn.Linear(dim, dim)
        self.ffn_norm = nn.LayerNorm(dim)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, valid: torch.Tensor | None = None) -> torch.Tensor:
        attention, x_norm = self.attention(x, valid)
        y_norm = self.scale1 * self.attention_norm(attention)
        y_out = self.ffn(self.ffn_neuron(y_norm, valid))
        r_norm = self.scale1 * self.ffn_norm(self.dropout(y_out))
        return r_norm + x_norm + y_norm
