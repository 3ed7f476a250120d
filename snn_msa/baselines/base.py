r"""What every baseline shares: input checks, valid-position helpers and the L1 loss.

The loss is MMSA's regression criterion, summed over the model's heads with
its weights: :math:`\mathcal{L} = \sum_k w_k \,\mathrm{mean}|O_k - y_k|`; a
single-task model has only ``M`` (weight 1), a multi-task one also ``T``, ``A``,
``V``, each trained on its own label where the data has one (CH-SIMS, SIMS v2),
else on ``M`` (MOSI, MOSEI).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any, Mapping

import torch
from torch import nn

from ..contract import ModelOutput, weighted_l1_loss

MODALITIES = ("text", "audio", "vision")


@dataclass(frozen=True)
class BaselineConfig:
    """Base of the baselines' configs: the input dims, and lists (from JSON or a checkpoint) made tuples.

    A subclass's defaults are MMSA 2.2.1's CH-SIMS values; the zoo builder
    replaces them with MMSA's values for the data set the model is built for.
    """

    feature_dims: tuple[int, int, int]

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, list):
                object.__setattr__(self, f.name, tuple(value))
        dims = tuple(int(d) for d in self.feature_dims)
        if len(dims) != 3 or min(dims) < 1:
            raise ValueError(f"feature_dims must be three positive ints (text, audio, vision), got {self.feature_dims!r}.")
        object.__setattr__(self, "feature_dims", dims)
        for f in fields(self):
            value = getattr(self, f.name)
            values = value if isinstance(value, tuple) else (value,)
            if f.name.endswith(("dropout", "dropouts")) and not all(0.0 <= float(v) < 1.0 for v in values):
                raise ValueError(f"{f.name} must be in [0, 1), got {value!r} (config: {self.describe()}).")
            if f.name.endswith(("dim", "dims", "size", "rank", "heads", "layers", "levels", "kernels")) and \
                    not all(int(v) >= 1 for v in values):
                raise ValueError(f"{f.name} must be positive, got {value!r} (config: {self.describe()}).")

    def describe(self) -> str:
        return ", ".join(f"{k}={v}" for k, v in asdict(self).items())


def check_input(name: str, x: Any, dim: int, feature_dims: tuple[int, int, int]) -> torch.Tensor:
    """``x`` if it is a batch-first ``[B, L, dim]`` tensor, else an error that says what was expected."""
    if x is None:
        raise ValueError(f"this model uses {name} but got {name}=None; pass a [B, L, {dim}] tensor.")
    if not isinstance(x, torch.Tensor) or x.dim() != 3 or x.shape[-1] != dim:
        shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise ValueError(f"{name} must be a batch-first tensor [B, L, {dim}] (the model was built for "
                         f"feature_dims={feature_dims}); got {shape}.")
    return x


def valid_lengths(lengths: Any, length: int, batch: int, device: torch.device) -> torch.Tensor:
    """``[B]`` long lengths clamped to ``[1, length]`` (all ``length`` when ``lengths`` is None)."""
    if lengths is None:
        return torch.full((batch,), length, dtype=torch.long, device=device)
    lengths = torch.as_tensor(lengths, device=device).long().view(-1)
    if lengths.numel() != batch:
        raise ValueError(f"got {lengths.numel()} lengths for a batch of {batch}.")
    return lengths.clamp(1, length)


def valid_mask(lengths: torch.Tensor, length: int) -> torch.Tensor:
    """``[B, L]`` bool mask, True at a sample's real positions."""
    return torch.arange(length, device=lengths.device).unsqueeze(0) < lengths.unsqueeze(1)


def masked_mean(x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    r"""Mean over the valid frames of ``[B, L, D]``: :math:`\bar x_b = \frac{1}{n_b}\sum_{t<n_b} x_{b,t}` -> ``[B, D]``.

    This is MMSA's ``need_normalized`` input of the late-fusion models, taken
    over the real frames only (MMSA averages the padding in too).
    """
    w = valid_mask(lengths, x.shape[1]).to(x.dtype).unsqueeze(-1)
    return (x * w).sum(dim=1) / w.sum(dim=1)


def last_valid(x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Each sample's state at its last real position: ``[B, L, D]`` -> ``[B, D]``."""
    index = (lengths - 1).view(-1, 1, 1).expand(-1, 1, x.shape[-1])
    return x.gather(1, index).squeeze(1)


def align_to(x: torch.Tensor, lengths: torch.Tensor, target_lengths: torch.Tensor, steps: int) -> torch.Tensor:
    r"""Average each sample's valid frames into as many segments as its text has tokens (MMSA's aligned files).

    Segment :math:`i < T_b` of sample :math:`b` with :math:`n_b` real frames and
    :math:`T_b` real tokens is the mean of frames
    :math:`\lfloor i n_b / T_b \rfloor \le j < \lceil (i+1) n_b / T_b \rceil` (never empty);
    segments from :math:`T_b` to ``steps`` are zero, like the padding of an aligned file.
    Returns ``[B, steps, D]``.
    """
    n = lengths.view(-1, 1, 1).to(x.dtype)  # [B, 1, 1]
    t = target_lengths.view(-1, 1, 1).to(x.dtype)
    i = torch.arange(steps, device=x.device, dtype=x.dtype).view(1, -1, 1)
    j = torch.arange(x.shape[1], device=x.device, dtype=x.dtype).view(1, 1, -1)
    start, stop = torch.floor(i * n / t), torch.ceil((i + 1) * n / t)
    weights = ((j >= start) & (j < stop) & (i < t)).to(x.dtype)  # [B, steps, L]
    return weights @ x / weights.sum(-1, keepdim=True).clamp(min=1)


class BaselineModel(nn.Module):
    """Base of the baselines: the shared input handling and loss; subclasses set ``config`` and ``loss_weights``.

    ``loss_weights`` maps each head to its weight (``{"M": 1.0}`` for a single-task model).
    """

    config: Any
    loss_weights: Mapping[str, float] = {"M": 1.0}

    def inputs(self, text, audio, vision, text_lengths, audio_lengths, vision_lengths) -> tuple[dict, dict]:
        """The checked inputs (on the model's device and dtype) and their ``[B]`` valid lengths, by modality."""
        given = {"text": text, "audio": audio, "vision": vision}
        given_lengths = {"text": text_lengths, "audio": audio_lengths, "vision": vision_lengths}
        param = next(self.parameters())
        xs, lengths, batch = {}, {}, None
        for m, dim in zip(MODALITIES, self.config.feature_dims):
            x = check_input(m, given[m], dim, self.config.feature_dims).to(param.device, param.dtype)
            if batch is None:
                batch = x.shape[0]
            elif x.shape[0] != batch:
                raise ValueError(f"all modalities need the same batch size; {m} has {x.shape[0]}, expected {batch}.")
            lengths[m] = valid_lengths(given_lengths[m], x.shape[1], batch, x.device)
            xs[m] = x * valid_mask(lengths[m], x.shape[1]).unsqueeze(-1).to(x.dtype)  # padding holds no signal
        return xs, lengths

    def loss(self, output: ModelOutput, labels: Mapping[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
        """Weighted L1 over the heads; returns the total and each head's unweighted L1."""
        return weighted_l1_loss(output, labels, self.loss_weights)

    def optimizer_groups(self, lr: float, weight_decay: float) -> list[dict[str, Any]]:
        """Adam's parameter groups (one group at the recipe's lr and weight decay unless a model tunes parts)."""
        return [{"params": list(self.parameters()), "lr": lr, "weight_decay": weight_decay}]
