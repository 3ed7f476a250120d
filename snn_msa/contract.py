"""The contract every zoo model keeps, so one trainer, one metrics module and one energy counter serve them all.

A model is an ``nn.Module`` called as::

    model(text, audio, vision, audio_lengths=None, vision_lengths=None, text_lengths=None) -> ModelOutput

with batch-first MMSA tensors ``[B, L_m, D_m]`` (a modality the model does not
use may be ``None``) and optional ``[B]`` lengths (the valid prefix of each
sequence), and has ``loss(output, labels) -> (total, {head: l1})``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping, Protocol, runtime_checkable

import torch


@dataclass
class ModelOutput:
    """What every zoo model returns.

    Attributes:
        predictions: one ``[B]`` tensor per head (``"M"`` is the prediction).
        features: pooled ``[B, d]`` representations (per modality, ``"fusion"``).
        firing_rates: firing rate of every spiking neuron layer in this forward, by
            module name: spikes over valid (sample, step, neuron) positions, 0-dim
            detached tensors (empty for a non-spiking model).
        activity: per layer, ``(spikes, neuron_steps)``, two ``[B]`` detached
            tensors counted on each sample's valid positions; the source of
            ``firing_rates`` and :attr:`sample_firing_rate`, and what lets an
            epoch's rate be summed exactly over batches.
    """

    predictions: dict[str, torch.Tensor]
    features: dict[str, torch.Tensor] = field(default_factory=dict)
    firing_rates: dict[str, torch.Tensor] = field(default_factory=dict)
    activity: dict[str, tuple[torch.Tensor, torch.Tensor]] = field(default_factory=dict)

    def __getitem__(self, head: str) -> torch.Tensor:
        return self.predictions[head]

    @property
    def prediction(self) -> torch.Tensor:
        return self.predictions["M"]

    @property
    def sample_firing_rate(self) -> torch.Tensor | None:
        """Each sample's firing rate ``[B]``: its spikes over its valid neuron-steps, all spiking layers together."""
        if not self.activity:
            return None
        spikes = torch.stack([s for s, _ in self.activity.values()]).sum(dim=0)
        steps = torch.stack([n for _, n in self.activity.values()]).sum(dim=0)
        return spikes / steps.clamp_min(1.0)

    def mean_firing_rate(self) -> float | None:
        """All spikes over all valid neuron-steps of every spiking layer, or None for a non-spiking model."""
        if not self.activity:
            return None
        spikes = sum(s.sum() for s, _ in self.activity.values())
        steps = sum(n.sum() for _, n in self.activity.values())
        return float(spikes / steps.clamp_min(1.0))


@runtime_checkable
class MSAModel(Protocol):
    """The forward signature and loss every zoo model has (checked by the registry tests)."""

    def __call__(
        self,
        text: torch.Tensor | None = None,
        audio: torch.Tensor | None = None,
        vision: torch.Tensor | None = None,
        audio_lengths: torch.Tensor | None = None,
        vision_lengths: torch.Tensor | None = None,
        text_lengths: torch.Tensor | None = None,
    ) -> ModelOutput: ...

    def loss(self, output: ModelOutput, labels: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]: ...


def weighted_l1_loss(output: ModelOutput, labels: Mapping[str, torch.Tensor],
                     weights: Mapping[str, float]) -> tuple[torch.Tensor, dict[str, float]]:
    r"""The multi-task loss every zoo model uses, :math:`\sum_k \lambda_k \,\mathrm{mean}|O_k - y_k|`.

    ``labels`` holds ``"M"`` and, where the data has them, ``"T"``, ``"A"``,
    ``"V"``; a head without a label of its own (a pre-fusion head, or a
    single-modal head on MOSI/MOSEI) trains on ``"M"``. Returns the total and
    each head's unweighted L1.
    """
    if "M" not in labels:
        raise KeyError("labels must hold the multimodal label under 'M'.")
    total, parts = None, {}
    for head, weight in weights.items():
        target = labels.get(head) if head != "M" else None
        target = labels["M"] if target is None else target
        pred = output.predictions[head]
        l1 = (pred - target.to(pred.device, pred.dtype).view_as(pred)).abs().mean()
        parts[head] = float(l1.detach())
        total = weight * l1 if total is None else total + weight * l1
    return total, parts


def spiking_activity(model: torch.nn.Module) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """Per-sample ``(spikes, neuron_steps)`` of every neuron of ``model`` in its last forward, by module name.

    Any module that records activity (our :class:`~snn_msa.neurons.LIF` and
    :class:`~snn_msa.neurons.ConnectedLIF`, or a user's neuron with the same
    :class:`~snn_msa.neurons.activity.SpikeActivity` mixin) is found.
    """
    from .neurons.activity import SpikeActivity

    found = {}
    for name, module in model.named_modules():
        if isinstance(module, SpikeActivity) and module.sample_activity is not None:
            found[name] = module.sample_activity
    return found


def firing_rates_of(activity: dict[str, tuple[torch.Tensor, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """Per-layer firing rate (0-dim tensors) from per-sample activity: spikes over valid neuron-steps."""
    return {name: spikes.sum() / steps.sum().clamp_min(1.0) for name, (spikes, steps) in activity.items()}
