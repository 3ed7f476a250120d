r"""MFN: Memory Fusion Network (Zadeh et al., AAAI 2018), in MMSA's form.

One LSTM cell per modality runs over the (aligned) time steps; the
Delta-memory Attention Network looks at each modality's memory cells before and
after step :math:`t`, and a Multi-view Gated Memory :math:`u` accumulates what it finds:

.. math::
    c^{[t-1,t]} = [c_{t-1}; c_t], \quad a = \mathrm{softmax}(D_a(c^{[t-1,t]})), \quad
    \hat c = c^{[t-1,t]} \odot a,

    \hat u = \tanh(D_u(\hat c)), \quad \gamma_1 = \sigma(D_{\gamma_1}([\hat c; u_{t-1}])), \quad
    \gamma_2 = \sigma(D_{\gamma_2}([\hat c; u_{t-1}])),

    u_t = \gamma_1 \odot u_{t-1} + \gamma_2 \odot \hat u,

with each :math:`D` a two-layer MLP (``Linear``, ReLU, dropout, ``Linear``). The
prediction is an MLP of :math:`[h_T; u_T]`. A sample's state stops changing
after its last real step, so padding never enters it. On unaligned data audio
and vision are first averaged into as many segments as the text has tokens.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..contract import ModelOutput
from .base import BaselineConfig, BaselineModel, align_to, valid_mask


@dataclass(frozen=True)
class MFNConfig(BaselineConfig):
    """MFN's hyperparameters (MMSA's names, its ``*Config`` pairs flattened; defaults: MMSA 2.2.1 on CH-SIMS).

    Attributes:
        hidden_dims: LSTM widths (text, audio, vision).
        memsize: the gated memory's width.
        windowsize: steps the attention looks at (the paper's and MMSA's 2: t-1 and t).
        nn1_dim, nn1_dropout: the attention MLP :math:`D_a`.
        nn2_dim, nn2_dropout: the memory proposal MLP :math:`D_u`.
        gamma1_dim, gamma1_dropout, gamma2_dim, gamma2_dropout: the gates' MLPs.
        out_dim, out_dropout: the output MLP.
    """

    hidden_dims: tuple[int, int, int] = (64, 16, 64)
    memsize: int = 64
    windowsize: int = 2
    nn1_dim: int = 128
    nn1_dropout: float = 0.2
    nn2_dim: int = 128
    nn2_dropout: float = 0.0
    gamma1_dim: int = 64
    gamma1_dropout: float = 0.2
    gamma2_dim: int = 64
    gamma2_dropout: float = 0.7
    out_dim: int = 64
    out_dropout: float = 0.7

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.windowsize != 2:
            raise ValueError(f"windowsize must be 2 (memory cells at t-1 and t, as MFN defines it), got {self.windowsize}.")


def _mlp(in_size: int, hidden: int, out_size: int, dropout: float) -> nn.Sequential:
    return nn.Sequential(nn.Linear(in_size, hidden), nn.ReLU(), nn.Dropout(dropout), nn.Linear(hidden, out_size))


class DeltaMemory(nn.Module):
    """MFN's Delta-memory Attention and Multi-view Gated Memory: one step ``(c_prev, c_new, u) -> u_next``."""

    def __init__(self, cells: int, memsize: int, c: MFNConfig):
        super().__init__()
        window = 2 * cells
        self.attention = _mlp(window, c.nn1_dim, window, c.nn1_dropout)
        self.proposal = _mlp(window, c.nn2_dim, memsize, c.nn2_dropout)
        self.gamma1 = _mlp(window + memsize, c.gamma1_dim, memsize, c.gamma1_dropout)
        self.gamma2 = _mlp(window + memsize, c.gamma2_dim, memsize, c.gamma2_dropout)

    def forward(self, c_prev: torch.Tensor, c_new: torch.Tensor, memory: torch.Tensor) -> torch.Tensor:
        window = torch.cat([c_prev, c_new], dim=1)
        attended = window * F.softmax(self.attention(window), dim=1)
        proposal = torch.tanh(self.proposal(attended))
        both = torch.cat([attended, memory], dim=1)
        return torch.sigmoid(self.gamma1(both)) * memory + torch.sigmoid(self.gamma2(both)) * proposal


class MFN(BaselineModel):
    """Memory Fusion Network; see the module docstring."""

    def __init__(self, config: MFNConfig):
        super().__init__()
        self.config = c = config
        self.cells = nn.ModuleList(nn.LSTMCell(d_in, d_h) for d_in, d_h in zip(c.feature_dims, c.hidden_dims))
        self.memory = DeltaMemory(sum(c.hidden_dims), c.memsize, c)
        self.output = _mlp(sum(c.hidden_dims) + c.memsize, c.out_dim, 1, c.out_dropout)

    def forward(self, text=None, audio=None, vision=None, audio_lengths=None, vision_lengths=None,
                text_lengths=None) -> ModelOutput:
        xs, lengths = self.inputs(text, audio, vision, text_lengths, audio_lengths, vision_lengths)
        steps, batch = xs["text"].shape[1], xs["text"].shape[0]
        seqs = [xs["text"], align_to(xs["audio"], lengths["audio"], lengths["text"], steps),
                align_to(xs["vision"], lengths["vision"], lengths["text"], steps)]
        live = valid_mask(lengths["text"], steps).to(xs["text"].dtype)  # [B, T]
        hs = [xs["text"].new_zeros(batch, d) for d in self.config.hidden_dims]
        cs = [xs["text"].new_zeros(batch, d) for d in self.config.hidden_dims]
        memory = xs["text"].new_zeros(batch, self.config.memsize)
        for t in range(steps):
            keep = live[:, t:t + 1]
            new = [cell(seq[:, t], (h, c)) for cell, seq, h, c in zip(self.cells, seqs, hs, cs)]
            new_memory = self.memory(torch.cat(cs, dim=1), torch.cat([c for _, c in new], dim=1), memory)
            memory = keep * new_memory + (1 - keep) * memory
            hs = [keep * h_new + (1 - keep) * h for (h_new, _), h in zip(new, hs)]
            cs = [keep * c_new + (1 - keep) * c for (_, c_new), c in zip(new, cs)]
        final = torch.cat([*hs, memory], dim=1)
        return ModelOutput(predictions={"M": self.output(final).squeeze(-1)}, features={"fusion": final})
