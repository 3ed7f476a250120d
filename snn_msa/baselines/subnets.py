"""The pre-fusion sub-networks of the late-fusion baselines (TFN's, used by LF-DNN, TFN, LMF and their multi-task forms).

- :class:`SubNet` (audio, vision): BatchNorm, dropout, three ``Linear + ReLU``:
  :math:`h = \\mathrm{ReLU}(W_3 \\mathrm{ReLU}(W_2 \\mathrm{ReLU}(W_1 \\mathrm{drop}(\\mathrm{BN}(x)))))`.
- :class:`TextSubNet` (text): an LSTM over the (zero-padded) tokens; its final
  hidden state and one ``Linear`` give the text embedding.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


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
    """An LSTM over ``[B, L, in_size]``, its final hidden state -> dropout -> ``Linear`` -> ``[B, out]``.

    As in MMSA, the dropout is zero for this one-layer LSTM (MMSA's ``TextSubNet``
    sets it to 0 whenever ``num_layers == 1``), so the text dropout value has no effect.
    """

    def __init__(self, in_size: int, hidden: int, out_size: int, dropout: float):
        super().__init__()
        del dropout  # kept in the signature: the configs carry MMSA's value, which MMSA ignores too
        self.rnn = nn.LSTM(in_size, hidden, batch_first=True)
        self.linear_1 = nn.Linear(hidden, out_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear_1(final_lstm_state(self.rnn, x))


def final_lstm_state(rnn: nn.LSTM, x: torch.Tensor) -> torch.Tensor:
    """The last layer's hidden state after the whole (zero-padded) sequence, as MMSA reads it.

    The padding is zero (the models zero it), so the state depends only on a
    sample's real steps and the file's padded length, never on the rest of its
    batch. Reading the state at each sample's last real step instead (a packed
    sequence) learned the text signal of synthetic CH-SIMS data far worse: see
    docs/baselines.md.
    """
    _, (h_n, _) = rnn(x)
    return h_n[-1]


def post_head(in_size: int, hidden: int, dropout: float) -> nn.Sequential:
    """MMSA's post-fusion MLP: dropout, ``Linear + ReLU``, ``Linear + ReLU``, ``Linear`` to one scalar."""
    return nn.Sequential(nn.Dropout(dropout), nn.Linear(in_size, hidden), nn.ReLU(), nn.Linear(hidden, hidden),
                         nn.ReLU(), nn.Linear(hidden, 1))


def append_one(h: torch.Tensor) -> torch.Tensor:
    """:math:`[1; h]`: a constant 1 prepended to each row, so products keep the lower-order terms."""
    return torch.cat([torch.ones_like(h[:, :1]), h], dim=1)
