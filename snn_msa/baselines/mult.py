r"""MulT: Multimodal Transformer for unaligned sequences (Tsai et al., ACL 2019), in MMSA's form.

1. Each modality: a temporal ``Conv1d`` to width :math:`d`, scaled by
   :math:`\sqrt d`, plus sinusoidal positions, dropout.
2. Six crossmodal transformers, one per ordered pair: target :math:`\beta`
   attends to source :math:`\alpha` with queries from :math:`\beta` and keys and
   values from :math:`\alpha` (pre-LayerNorm blocks):
   :math:`Z \leftarrow Z + \mathrm{MHA}(\mathrm{LN}(Z), \mathrm{LN}(X_\alpha), \mathrm{LN}(X_\alpha))` (one LN),
   :math:`Z \leftarrow Z + \mathrm{FFN}(\mathrm{LN}(Z))`, with
   :math:`\mathrm{MHA}(Q, K, V) = \mathrm{softmax}(Q W_Q (K W_K)^\top / \sqrt{d_h}) V W_V`.
3. Per target modality the two crossmodal outputs are joined (width :math:`2d`)
   and pass a self-attention transformer; its output at the last real step
   (MulT takes the last step) is the modality's representation.
4. The three representations (:math:`6d`) pass a residual MLP to one number.

Padded key positions are masked; as in MMSA (``attn_mask``), query :math:`i`
also skips keys :math:`j \ge i + 1 + |L_k - L_q|` (MulT's future mask).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..contract import ModelOutput
from .base import BaselineConfig, BaselineModel, last_valid, valid_mask

PAIRS = (("text", "audio"), ("text", "vision"), ("audio", "text"), ("audio", "vision"), ("vision", "text"),
         ("vision", "audio"))  # (target, source)


@dataclass(frozen=True)
class MulTConfig(BaselineConfig):
    """MulT's hyperparameters (MMSA's names; defaults: MMSA 2.2.1 on CH-SIMS).

    Attributes:
        dst_feature_dim_nheads: the width :math:`d` and the attention heads.
        nlevels: crossmodal layers per pair (the self-attention stacks have ``max(nlevels, 3)``).
        conv1d_kernel_size_l, conv1d_kernel_size_a, conv1d_kernel_size_v: the input convolutions' kernels.
        attn_dropout: attention dropout when text is the source, and of the three self-attention stacks.
        attn_dropout_a, attn_dropout_v: attention dropout when audio, vision is the source (as MulT's ``get_network``).
        relu_dropout, res_dropout, embed_dropout: feed-forward, residual and embedding dropout.
        text_dropout: dropout on the text features.
        output_dropout: dropout of the output MLP.
        attn_mask: MulT's future mask (MMSA: true).
    """

    dst_feature_dim_nheads: tuple[int, int] = (50, 10)
    nlevels: int = 2
    conv1d_kernel_size_l: int = 5
    conv1d_kernel_size_a: int = 1
    conv1d_kernel_size_v: int = 1
    attn_dropout: float = 0.2
    attn_dropout_a: float = 0.1
    attn_dropout_v: float = 0.0
    relu_dropout: float = 0.0
    res_dropout: float = 0.2
    embed_dropout: float = 0.1
    text_dropout: float = 0.3
    output_dropout: float = 0.1
    attn_mask: bool = True

    def __post_init__(self) -> None:
        super().__post_init__()
        d, heads = self.dst_feature_dim_nheads
        kernels = (self.conv1d_kernel_size_l, self.conv1d_kernel_size_a, self.conv1d_kernel_size_v)
        if d < 1 or heads < 1 or d % heads:
            raise ValueError(f"dst_feature_dim_nheads needs a width that is a multiple of the heads, got {(d, heads)}.")
        if any(k < 1 or k % 2 == 0 for k in kernels):
            raise ValueError(f"the conv1d kernel sizes must be positive odd numbers, got {kernels}.")


def sinusoidal_positions(length: int, dim: int, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """``[L, dim]`` sinusoids (fairseq's layout, as MulT: sines in the first half, cosines in the second)."""
    half = dim // 2
    scale = math.log(10000) / max(half - 1, 1)
    freqs = torch.exp(torch.arange(half, device=device, dtype=dtype) * -scale)
    angles = torch.arange(1, length + 1, device=device, dtype=dtype).unsqueeze(1) * freqs.unsqueeze(0)
    table = torch.cat([torch.sin(angles), torch.cos(angles)], dim=1)
    return F.pad(table, (0, dim % 2))


def future_mask(queries: int, keys: int, device: torch.device) -> torch.Tensor:
    """MulT's ``buffered_future_mask``: True (blocked) where key ``j >= i + 1 + |keys - queries|``."""
    return torch.ones(queries, keys, dtype=torch.bool, device=device).triu(1 + abs(keys - queries))


class CrossmodalLayer(nn.Module):
    """One pre-LayerNorm transformer block; self-attention when no source is given."""

    def __init__(self, dim: int, heads: int, attn_dropout: float, relu_dropout: float, res_dropout: float):
        super().__init__()
        self.attention = nn.MultiheadAttention(dim, heads, dropout=attn_dropout)
        # MulT normalises queries and keys/values with one LayerNorm.
        self.norm_attn, self.norm_ff = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.fc1, self.fc2 = nn.Linear(dim, 4 * dim), nn.Linear(4 * dim, dim)
        self.relu_dropout, self.res_dropout = relu_dropout, res_dropout

    def forward(self, x, source, key_padding, mask):
        q = self.norm_attn(x)
        kv = q if source is None else self.norm_attn(source)
        attended, _ = self.attention(q, kv, kv, key_padding_mask=key_padding, attn_mask=mask, need_weights=False)
        x = x + F.dropout(attended, self.res_dropout, self.training)
        h = F.dropout(F.relu(self.fc1(self.norm_ff(x))), self.relu_dropout, self.training)
        return x + F.dropout(self.fc2(h), self.res_dropout, self.training)


class CrossmodalTransformer(nn.Module):
    """``layers`` blocks and a final LayerNorm over time-major ``[L, B, dim]``."""

    def __init__(self, dim: int, heads: int, layers: int, attn_dropout: float, c: MulTConfig):
        super().__init__()
        self.layers = nn.ModuleList(CrossmodalLayer(dim, heads, attn_dropout, c.relu_dropout, c.res_dropout)
                                    for _ in range(layers))
        self.norm = nn.LayerNorm(dim)
        self.future = c.attn_mask

    def forward(self, x, source=None, source_valid=None):
        keys = x if source is None else source
        mask = future_mask(x.shape[0], keys.shape[0], x.device) if self.future else None
        padding = None if source_valid is None else ~source_valid
        for layer in self.layers:
            x = layer(x, source, padding, mask)
        return self.norm(x)


class MulT(BaselineModel):
    """Multimodal Transformer; see the module docstring."""

    def __init__(self, config: MulTConfig):
        super().__init__()
        self.config = c = config
        d, heads = c.dst_feature_dim_nheads
        kernels = {"text": c.conv1d_kernel_size_l, "audio": c.conv1d_kernel_size_a, "vision": c.conv1d_kernel_size_v}
        dropout = {"text": c.attn_dropout, "audio": c.attn_dropout_a, "vision": c.attn_dropout_v}
        dims = dict(zip(("text", "audio", "vision"), c.feature_dims))
        self.projections = nn.ModuleDict({m: nn.Conv1d(dims[m], d, kernels[m], padding=kernels[m] // 2, bias=False)
                                          for m in dims})
        self.crossmodal = nn.ModuleDict({f"{t}_with_{s}": CrossmodalTransformer(d, heads, c.nlevels, dropout[s], c)
                                         for t, s in PAIRS})
        self.memory = nn.ModuleDict({m: CrossmodalTransformer(2 * d, heads, max(c.nlevels, 3), c.attn_dropout, c)
                                     for m in dims})
        self.proj1, self.proj2, self.out_layer = nn.Linear(6 * d, 6 * d), nn.Linear(6 * d, 6 * d), nn.Linear(6 * d, 1)
        self.width = d

    def forward(self, text=None, audio=None, vision=None, audio_lengths=None, vision_lengths=None,
                text_lengths=None) -> ModelOutput:
        c = self.config
        xs, lengths = self.inputs(text, audio, vision, text_lengths, audio_lengths, vision_lengths)
        xs["text"] = F.dropout(xs["text"], c.text_dropout, self.training)
        seqs, valid = {}, {}
        for m, x in xs.items():
            valid[m] = valid_mask(lengths[m], x.shape[1])  # [B, L]
            h = self.projections[m](x.transpose(1, 2)).permute(2, 0, 1)  # [L, B, d]
            h = math.sqrt(self.width) * h + sinusoidal_positions(h.shape[0], self.width, h.device, h.dtype).unsqueeze(1)
            seqs[m] = F.dropout(h, c.embed_dropout, self.training)
        pooled = {}
        for m in seqs:
            crossed = [self.crossmodal[f"{m}_with_{s}"](seqs[m], seqs[s], valid[s]) for t, s in PAIRS if t == m]
            joint = self.memory[m](torch.cat(crossed, dim=-1), None, valid[m])
            pooled[m] = last_valid(joint.transpose(0, 1), lengths[m])
        fused = torch.cat([pooled["text"], pooled["audio"], pooled["vision"]], dim=-1)
        h = self.proj2(F.dropout(F.relu(self.proj1(fused)), c.output_dropout, self.training)) + fused
        return ModelOutput(predictions={"M": self.out_layer(h).squeeze(-1)}, features={**pooled, "fusion": h})
