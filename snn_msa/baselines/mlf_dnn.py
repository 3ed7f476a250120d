r"""MLF-DNN: the multi-task LF-DNN of CH-SIMS (Yu et al., ACL 2020), in MMSA's form.

LF-DNN plus one MLP head per modality on its own embedding, each trained on
that modality's label (``regression_labels_T/A/V``) where the data has them:

.. math:: \mathcal{L} = w_M |O_M - y_M| + \sum_{m \in \{T, A, V\}} w_m |O_m(h_m) - y_m|.

Each sub-network has its own weight decay (MMSA's ``text/audio/video_weight_decay``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from ..contract import ModelOutput
from .base import BaselineConfig
from .lf_dnn import LateFusionEncoders
from .subnets import post_head


@dataclass(frozen=True)
class MLFDNNConfig(BaselineConfig):
    """MLF-DNN's hyperparameters (MMSA's names; defaults: MMSA 2.2.1 on CH-SIMS, its only data set).

    Attributes:
        hidden_dims: sub-network widths (text LSTM, audio, vision).
        text_out: the text embedding's width.
        post_fusion_dim, post_text_dim, post_audio_dim, post_video_dim: the heads' widths.
        dropouts: dropout of the audio, vision and text sub-networks.
        post_dropouts: dropout of the text, audio, vision and fusion heads.
        loss_weights: the heads' loss weights ``(M, T, A, V)``.
        sub_weight_decay: Adam weight decay of the text, audio and vision sub-networks.
    """

    hidden_dims: tuple[int, int, int] = (64, 32, 64)
    text_out: int = 32
    post_fusion_dim: int = 32
    post_text_dim: int = 16
    post_audio_dim: int = 4
    post_video_dim: int = 32
    dropouts: tuple[float, float, float] = (0.3, 0.3, 0.3)
    post_dropouts: tuple[float, float, float, float] = (0.5, 0.5, 0.5, 0.5)
    loss_weights: tuple[float, float, float, float] = (0.6, 0.2, 0.8, 0.8)
    sub_weight_decay: tuple[float, float, float] = (1e-4, 1e-3, 1e-4)


class MultiTaskHeads(LateFusionEncoders):
    """The per-modality heads and per-sub-network weight decay of MMSA's multi-task late-fusion models."""

    def _build_modality_heads(self, text_out: int) -> None:
        c = self.config
        self.post_text = post_head(text_out, c.post_text_dim, c.post_dropouts[0])
        self.post_audio = post_head(c.hidden_dims[1], c.post_audio_dim, c.post_dropouts[1])
        self.post_video = post_head(c.hidden_dims[2], c.post_video_dim, c.post_dropouts[2])
        self.loss_weights = dict(zip("MTAV", self.config.loss_weights))

    def modality_predictions(self, h: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """``{"T", "A", "V"}``: each modality's own prediction from its embedding."""
        return {"T": self.post_text(h["text"]).squeeze(-1), "A": self.post_audio(h["audio"]).squeeze(-1),
                "V": self.post_video(h["vision"]).squeeze(-1)}

    def optimizer_groups(self, lr: float, weight_decay: float) -> list[dict[str, Any]]:
        """Each sub-network at its own weight decay, the rest at the recipe's (as MMSA)."""
        subnets = (self.text_subnet, self.audio_subnet, self.video_subnet)
        groups = [{"params": list(s.parameters()), "lr": lr, "weight_decay": wd}
                  for s, wd in zip(subnets, self.config.sub_weight_decay)]
        taken = {id(p) for g in groups for p in g["params"]}
        rest = [p for p in self.parameters() if id(p) not in taken]
        return groups + [{"params": rest, "lr": lr, "weight_decay": weight_decay}]


class MLFDNN(MultiTaskHeads):
    """Multi-task LF-DNN; see the module docstring."""

    def __init__(self, config: MLFDNNConfig):
        super().__init__()
        self.config = c = config
        self._build_encoders(c.hidden_dims, c.text_out, c.dropouts)
        self._build_modality_heads(c.text_out)
        fused = c.text_out + c.hidden_dims[1] + c.hidden_dims[2]
        self.post_fusion = post_head(fused, c.post_fusion_dim, c.post_dropouts[3])

    def forward(self, text=None, audio=None, vision=None, audio_lengths=None, vision_lengths=None,
                text_lengths=None) -> ModelOutput:
        h = self.encode(text, audio, vision, audio_lengths, vision_lengths, text_lengths)
        fusion = torch.cat([h["audio"], h["vision"], h["text"]], dim=-1)
        predictions = {"M": self.post_fusion(fusion).squeeze(-1), **self.modality_predictions(h)}
        return ModelOutput(predictions=predictions, features={**h, "fusion": fusion})
