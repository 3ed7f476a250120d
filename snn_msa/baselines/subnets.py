"""The pre-fusion sub-networks of the late-fusion baselines (TFN's, used by LF-DNN, TFN, LMF and their multi-task forms).

- :class:`SubNet` (audio, vision): BatchNorm, dropout, three ``Linear + ReLU``:
  :math:`h = \\mathrm{ReLU}(W_3 \\mathrm{ReLU}(W_2 \\mathrm{ReLU}(W_1 \\mathrm{drop}(\\mathrm{BN}(x)))))`.
- :class:`TextSubNet` (text): an LSTM over the real tokens; its last hidden
  state, dropout and one ``Linear`` give the text embedding.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence


class SubNet(nn.Module):
    """TFN's feed-forward sub-network of an utterance-level feature vector ``[B, in_size]`` -> ``[B, hidden]``."""

    def __init__(self, in_size: int, hidden: int, dropout: float):
        super().__init__()
        self.norm = nn.BatchNorm1d(in_size)
        self.drop = nn.Dropout(dropout)
        self.linear_1 = nn.Linear(in_size, hidden)
        self.linear_2 = nn.Linear(hidden, hidden)
        self.linear_3 = nn.Linear(hidden, hidden)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # A training batch of one sample has no batch statistics; normalise it with the running ones.
        batch_stats = self.training and x.shape[0] > 1
        normed = F.batch_norm(x, self.norm.running_mean, self.norm.running_var, self.norm.weight, self.norm.bias,
                              batch_stats, self.norm.momentum, self.norm.eps)
        y = F.relu(self.linear_1(self.drop(normed)))
        y = F.relu(self.linear_2(y))
        return F.relu(self.linear_3(y))


class TextSubNet(nn.Module):
    """An LSTM over ``[B, L, in_size]`` (real tokens only), last hidden state -> dropout -> ``Linear`` -> ``[B, out]``."""

    def __init__(self, in_size: int, hidden: int, out_size: int, dropout: float):
        super().__init__()
        self.rnn = nn.LSTM(in_size, hidden, batch_first=True)
        self.dropout = nn.Dropout(dropout)
        self.linear_1 = nn.Linear(hidden, out_size)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        return self.linear_1(self.dropout(last_lstm_state(self.rnn, x, lengths)))


def last_lstm_state(rnn: nn.LSTM, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """The last layer's hidden state after each sample's last real step (padding never enters the LSTM)."""
    packed = pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
    _, (h_n, _) = rnn(packed)
    return h_n[-1]


def post_head(in_size: int, hidden: int, dropout: float) -> nn.Sequential:
    """MMSA's post-fusion MLP: dropout, ``Linear + ReLU``, ``Linear + ReLU``, ``Linear`` to one scalar."""
    return nn.Sequential(nn.Dropout(dropout), nn.Linear(in_size, hidden), nn.ReLU(), nn.Linear(hidden, hidden),
                         nn.ReLU(), nn.Linear(hidden, 1))


def append_one(h: torch.Tensor) -> torch.Tensor:
    """:math:`[1; h]`: a constant 1 prepended to each row, so products keep the lower-order terms."""
    return torch.cat([torch.ones_like(h[:, :1]), h], dim=1)
