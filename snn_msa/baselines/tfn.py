r"""TFN: Tensor Fusion Network (Zadeh et al., EMNLP 2017), in MMSA's form.

The embeddings :math:`h_a, h_v, h_t` of the late-fusion sub-networks are each
extended by a constant 1 and fused by their three-fold outer product, which
holds every unimodal, bimodal and trimodal product term:

.. math:: z = \begin{bmatrix} 1 \\ h_a \end{bmatrix} \otimes \begin{bmatrix} 1 \\ h_v \end{bmatrix}
          \otimes \begin{bmatrix} 1 \\ h_t \end{bmatrix} \in \mathbb{R}^{(d_a+1)(d_v+1)(d_t+1)},

flattened in that order (audio slowest, text fastest). An MLP maps :math:`z` to
one number, squashed to the label range as MMSA does: :math:`O_M = 6\sigma(\cdot) - 3`.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..contract import ModelOutput
from .lf_dnn import LateFusionEncoders
from .base import BaselineConfig
from .subnets import append_one, post_head


@dataclass(frozen=True)
class TFNConfig(BaselineConfig):
    """TFN's hyperparameters (MMSA's names; defaults: MMSA 2.2.1 on CH-SIMS).

    Attributes:
        hidden_dims: sub-network widths (text LSTM, audio, vision).
        text_out: the text embedding's width.
        post_fusion_dim: the fusion MLP's width.
        dropouts: dropout of the audio, vision and text sub-networks and of the fusion MLP.
        output_range: the prediction lies in ``(-output_range / 2, output_range / 2)`` (MMSA: 6).
    """

    hidden_dims: tuple[int, int, int] = (128, 32, 128)
    text_out: int = 256
    post_fusion_dim: int = 32
    dropouts: tuple[float, float, float, float] = (0.4, 0.4, 0.4, 0.4)
    output_range: float = 6.0


def tensor_fusion(h_audio: torch.Tensor, h_vision: torch.Tensor, h_text: torch.Tensor) -> torch.Tensor:
    """TFN's fusion: the flattened outer product of ``[1; h_a]``, ``[1; h_v]`` and ``[1; h_t]``, per sample."""
    a, v, t = append_one(h_audio), append_one(h_vision), append_one(h_text)
    # Two batched outer products (as MMSA): the same numbers as einsum("ba,bv,bt->bavt"), whose backward
    # was ten times slower on the CPU (docs/baselines.md).
    av = torch.bmm(a.unsqueeze(2), v.unsqueeze(1)).flatten(1)  # [B, (d_a+1)(d_v+1)]
    return torch.bmm(av.unsqueeze(2), t.unsqueeze(1)).flatten(1)


class TFN(LateFusionEncoders):
    """Tensor Fusion Network; see the module docstring."""

    def __init__(self, config: TFNConfig):
        super().__init__()
        self.config = c = config
        self._build_encoders(c.hidden_dims, c.text_out, c.dropouts)
        fused = (c.hidden_dims[1] + 1) * (c.hidden_dims[2] + 1) * (c.text_out + 1)
        self.post_fusion = post_head(fused, c.post_fusion_dim, c.dropouts[3])

    def forward(self, text=None, audio=None, vision=None, audio_lengths=None, vision_lengths=None,
                text_lengths=None) -> ModelOutput:
        h = self.encode(text, audio, vision, audio_lengths, vision_lengths, text_lengths)
        fusion = tensor_fusion(h["audio"], h["vision"], h["text"])
        out = self.post_fusion(fusion).squeeze(-1)
        prediction = torch.sigmoid(out) * self.config.output_range - self.config.output_range / 2
        return ModelOutput(predictions={"M": prediction}, features={**h, "fusion": fusion})
