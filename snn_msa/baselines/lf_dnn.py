r"""LF-DNN: late fusion of per-modality networks (Williams et al., 2018, "DNN multimodal fusion techniques
for predicting video sentiment"), in MMSA's form.

Each modality is encoded on its own, then the embeddings are joined and a
small MLP predicts: audio and vision are averaged over their real frames and
pass a :class:`~.subnets.SubNet`; text passes an LSTM
(:class:`~.subnets.TextSubNet`). With :math:`h_m` the embeddings,

.. math:: O_M = \mathrm{MLP}([h_a; h_v; h_t]).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..contract import ModelOutput
from .base import BaselineConfig, BaselineModel, masked_mean
from .subnets import SubNet, TextSubNet, post_head


@dataclass(frozen=True)
class LFDNNConfig(BaselineConfig):
    """LF-DNN's hyperparameters (MMSA's names; defaults: MMSA 2.2.1 on CH-SIMS).

    Attributes:
        hidden_dims: sub-network widths (text LSTM, audio, vision).
        text_out: the text embedding's width.
        post_fusion_dim: the fusion MLP's width.
        dropouts: dropout of the audio, vision and text sub-networks and of the fusion MLP.
    """

    hidden_dims: tuple[int, int, int] = (128, 32, 128)
    text_out: int = 256
    post_fusion_dim: int = 32
    dropouts: tuple[float, float, float, float] = (0.3, 0.3, 0.3, 0.5)


class LateFusionEncoders(BaselineModel):
    """The three pre-fusion sub-networks that LF-DNN, TFN, LMF and their multi-task forms share."""

    def _build_encoders(self, hidden_dims, text_out: int, dropouts) -> None:
        text_in, audio_in, vision_in = self.config.feature_dims
        text_hidden, audio_hidden, vision_hidden = hidden_dims
        audio_drop, vision_drop, text_drop = dropouts[:3]
        self.audio_subnet = SubNet(audio_in, audio_hidden, audio_drop)
        self.video_subnet = SubNet(vision_in, vision_hidden, vision_drop)
        self.text_subnet = TextSubNet(text_in, text_hidden, text_out, text_drop)

    def encode(self, text, audio, vision, audio_lengths, vision_lengths, text_lengths) -> dict[str, torch.Tensor]:
        """The embeddings ``{"text", "audio", "vision"}`` of one batch."""
        xs, lengths = self.inputs(text, audio, vision, text_lengths, audio_lengths, vision_lengths)
        return {
            "text": self.text_subnet(xs["text"]),
            "audio": self.audio_subnet(masked_mean(xs["audio"], lengths["audio"])),
            "vision": self.video_subnet(masked_mean(xs["vision"], lengths["vision"])),
        }


class LFDNN(LateFusionEncoders):
    """LF-DNN; see the module docstring."""

    def __init__(self, config: LFDNNConfig):
        super().__init__()
        self.config = c = config
        self._build_encoders(c.hidden_dims, c.text_out, c.dropouts)
        fused = c.text_out + c.hidden_dims[1] + c.hidden_dims[2]
        self.post_fusion = post_head(fused, c.post_fusion_dim, c.dropouts[3])

    def forward(self, text=None, audio=None, vision=None, audio_lengths=None, vision_lengths=None,
                text_lengths=None) -> ModelOutput:
        h = self.encode(text, audio, vision, audio_lengths, vision_lengths, text_lengths)
        fusion = torch.cat([h["audio"], h["vision"], h["text"]], dim=-1)
        return ModelOutput(predictions={"M": self.post_fusion(fusion).squeeze(-1)}, features={**h, "fusion": fusion})
