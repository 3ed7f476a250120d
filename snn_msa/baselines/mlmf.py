r"""MLMF: the multi-task LMF of CH-SIMS (Yu et al., ACL 2020), in MMSA's form.

LMF's low-rank fusion for :math:`O_M` plus one MLP head per modality, trained
as MLF-DNN's (:mod:`.mlf_dnn`): :math:`\mathcal{L} = \sum_{k \in \{M,T,A,V\}} w_k |O_k - y_k|`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..contract import ModelOutput
from .base import BaselineConfig
from .lmf import LowRankFusion
from .mlf_dnn import MultiTaskHeads


@dataclass(frozen=True)
class MLMFConfig(BaselineConfig):
    """MLMF's hyperparameters (MMSA's names; defaults: MMSA 2.2.1 on CH-SIMS, its only data set).

    Attributes:
        hidden_dims: sub-network widths (text LSTM, audio, vision); the text embedding is half the LSTM's width.
        post_text_dim, post_audio_dim, post_video_dim: the modality heads' widths.
        dropouts: dropout of the audio, vision and text sub-networks.
        post_dropouts: dropout of the text, audio and vision heads (a fourth value kept for MMSA's config shape).
        rank: the rank of the fusion weight.
        factor_lr: Adam's learning rate of the fusion factors.
        loss_weights: the heads' loss weights ``(M, T, A, V)``.
        sub_weight_decay: Adam weight decay of the text, audio and vision sub-networks.
    """

    hidden_dims: tuple[int, int, int] = (256, 32, 256)
    post_text_dim: int = 8
    post_audio_dim: int = 4
    post_video_dim: int = 32
    dropouts: tuple[float, float, float] = (0.3, 0.3, 0.3)
    post_dropouts: tuple[float, float, float, float] = (0.4, 0.4, 0.4, 0.4)
    rank: int = 3
    factor_lr: float = 0.001
    loss_weights: tuple[float, float, float, float] = (0.2, 1.0, 0.4, 0.8)
    sub_weight_decay: tuple[float, float, float] = (1e-4, 0.0, 1e-4)


class MLMF(MultiTaskHeads):
    """Multi-task LMF; see the module docstring."""

    def __init__(self, config: MLMFConfig):
        super().__init__()
        self.config = c = config
        text_out = c.hidden_dims[0] // 2
        self._build_encoders(c.hidden_dims, text_out, c.dropouts)
        self._build_modality_heads(text_out)
        self.fusion = LowRankFusion(c.hidden_dims[1], c.hidden_dims[2], text_out, c.rank)

    def forward(self, text=None, audio=None, vision=None, audio_lengths=None, vision_lengths=None,
                text_lengths=None) -> ModelOutput:
        h = self.encode(text, audio, vision, audio_lengths, vision_lengths, text_lengths)
        predictions = {"M": self.fusion(h["audio"], h["vision"], h["text"]), **self.modality_predictions(h)}
        return ModelOutput(predictions=predictions, features=h)

    def optimizer_groups(self, lr: float, weight_decay: float) -> list[dict[str, Any]]:
        """MLF-DNN's groups, with the fusion factors split off at ``factor_lr``."""
        factors = {id(p) for p in self.fusion.parameters()}
        groups = [{**g, "params": [p for p in g["params"] if id(p) not in factors]}
                  for g in super().optimizer_groups(lr, weight_decay)]
        return groups + [{"params": list(self.fusion.parameters()), "lr": self.config.factor_lr,
                          "weight_decay": weight_decay}]
