r"""LMF: Low-rank Multimodal Fusion (Liu et al., ACL 2018), in MMSA's form.

TFN's fused tensor times a weight is computed without building the tensor:
the weight is a sum of :math:`r` rank-one terms, one factor
:math:`W_m^{(i)} \in \mathbb{R}^{d_m+1}` per modality and rank, so

.. math:: O_M = \sum_{i=1}^{r} w_i \prod_{m \in \{a, v, t\}} [1; h_m]^\top W_m^{(i)} + b,

with learned rank weights :math:`w_i` (MMSA's ``fusion_weights``) and bias :math:`b`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from ..contract import ModelOutput
from .base import BaselineConfig
from .lf_dnn import LateFusionEncoders
from .subnets import append_one


@dataclass(frozen=True)
class LMFConfig(BaselineConfig):
    """LMF's hyperparameters (MMSA's names; defaults: MMSA 2.2.1 on CH-SIMS).

    Attributes:
        hidden_dims: sub-network widths (text LSTM, audio, vision); the text embedding is half the LSTM's width.
        dropouts: dropout of the audio, vision and text sub-networks (a fourth value is kept for MMSA's
            config shape; MMSA defines a post-fusion dropout it never applies, and so do we).
        rank: the rank :math:`r` of the fusion weight.
        factor_lr: Adam's learning rate of the factors, rank weights and bias (the rest use the recipe's).
    """

    hidden_dims: tuple[int, int, int] = (64, 16, 64)
    dropouts: tuple[float, float, float, float] = (0.2, 0.2, 0.2, 0.2)
    rank: int = 4
    factor_lr: float = 0.0005


class LowRankFusion(nn.Module):
    """The low-rank factors of LMF: ``forward(h_audio, h_vision, h_text) -> [B]``."""

    def __init__(self, audio_dim: int, vision_dim: int, text_dim: int, rank: int):
        super().__init__()
        self.audio_factor = nn.Parameter(torch.empty(rank, audio_dim + 1, 1))
        self.video_factor = nn.Parameter(torch.empty(rank, vision_dim + 1, 1))
        self.text_factor = nn.Parameter(torch.empty(rank, text_dim + 1, 1))
        self.fusion_weights = nn.Parameter(torch.empty(1, rank))
        self.fusion_bias = nn.Parameter(torch.zeros(1, 1))
        for factor in (self.audio_factor, self.video_factor, self.text_factor, self.fusion_weights):
            nn.init.xavier_normal_(factor)

    def forward(self, h_audio: torch.Tensor, h_vision: torch.Tensor, h_text: torch.Tensor) -> torch.Tensor:
        per_rank = (append_one(h_audio) @ self.audio_factor) * (append_one(h_vision) @ self.video_factor) \
            * (append_one(h_text) @ self.text_factor)  # [rank, B, 1]
        return (self.fusion_weights @ per_rank.squeeze(-1) + self.fusion_bias).squeeze(0)


class LMF(LateFusionEncoders):
    """Low-rank Multimodal Fusion; see the module docstring."""

    def __init__(self, config: LMFConfig):
        super().__init__()
        self.config = c = config
        text_out = c.hidden_dims[0] // 2
        self._build_encoders(c.hidden_dims, text_out, c.dropouts)
        self.fusion = LowRankFusion(c.hidden_dims[1], c.hidden_dims[2], text_out, c.rank)

    def forward(self, text=None, audio=None, vision=None, audio_lengths=None, vision_lengths=None,
                text_lengths=None) -> ModelOutput:
        h = self.encode(text, audio, vision, audio_lengths, vision_lengths, text_lengths)
        return ModelOutput(predictions={"M": self.fusion(h["audio"], h["vision"], h["text"])}, features=h)

    def optimizer_groups(self, lr: float, weight_decay: float) -> list[dict[str, Any]]:
        """The fusion factors at ``factor_lr`` (MMSA's intent; see docs/baselines.md), the rest at ``lr``."""
        factors = set(map(id, self.fusion.parameters()))
        rest = [p for p in self.parameters() if id(p) not in factors]
        return [{"params": list(self.fusion.parameters()), "lr": self.config.factor_lr, "weight_decay": weight_decay},
                {"params": rest, "lr": lr, "weight_decay": weight_decay}]
