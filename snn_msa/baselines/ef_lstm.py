r"""EF-LSTM: early fusion, then an LSTM (Williams et al., 2018, "Recognizing emotions in video using
multimodal DNN feature fusion"), in MMSA's form.

The three modalities are joined frame by frame, :math:`x_t = [t_t; a_t; v_t]`,
normalised, and read by a stacked LSTM; its final hidden state (after the
zero-padded sequence, as MMSA) gives the prediction through ``Linear + ReLU`` and ``Linear``. MMSA needs aligned files
for this; on unaligned data audio and vision are first averaged into as many
segments as the sample's text has tokens (:func:`~.base.align_to`).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..contract import ModelOutput
from .base import BaselineConfig, BaselineModel, align_to
from .subnets import final_lstm_state


@dataclass(frozen=True)
class EFLSTMConfig(BaselineConfig):
    """EF-LSTM's hyperparameters (MMSA's names; defaults: MMSA 2.2.1 on CH-SIMS).

    Attributes:
        hidden_dims: the LSTM's width.
        num_layers: stacked LSTM layers.
        dropout: between LSTM layers and before each output layer.
    """

    hidden_dims: int = 32
    num_layers: int = 3
    dropout: float = 0.5


class EFLSTM(BaselineModel):
    """Early-fusion LSTM; see the module docstring."""

    def __init__(self, config: EFLSTMConfig):
        super().__init__()
        self.config = c = config
        in_size = sum(c.feature_dims)
        # MMSA's BatchNorm1d(seq_len) normalises each time step; over features it does not tie the model to one length.
        self.norm = nn.BatchNorm1d(in_size)
        self.lstm = nn.LSTM(in_size, c.hidden_dims, num_layers=c.num_layers, dropout=c.dropout if c.num_layers > 1 else 0.0,
                            batch_first=True)
        self.dropout = nn.Dropout(c.dropout)
        self.linear = nn.Linear(c.hidden_dims, c.hidden_dims)
        self.out = nn.Linear(c.hidden_dims, 1)

    def forward(self, text=None, audio=None, vision=None, audio_lengths=None, vision_lengths=None,
                text_lengths=None) -> ModelOutput:
        xs, lengths = self.inputs(text, audio, vision, text_lengths, audio_lengths, vision_lengths)
        steps = xs["text"].shape[1]
        joined = torch.cat([xs["text"], align_to(xs["audio"], lengths["audio"], lengths["text"], steps),
                            align_to(xs["vision"], lengths["vision"], lengths["text"], steps)], dim=-1)
        batch_stats = self.training and joined.shape[0] > 1
        n = self.norm
        joined = F.batch_norm(joined.transpose(1, 2), n.running_mean, n.running_var, n.weight, n.bias, batch_stats,
                              n.momentum, n.eps).transpose(1, 2)
        h = self.dropout(final_lstm_state(self.lstm, joined))
        h = self.dropout(F.relu(self.linear(h)))
        return ModelOutput(predictions={"M": self.out(h).squeeze(-1)}, features={"fusion": h})
