"""One training epoch and one evaluation pass, for any zoo model.

Every zoo model takes ``(text, audio, vision, audio_lengths=, vision_lengths=,
text_lengths=)`` and returns a :class:`~snn_msa.contract.ModelOutput`, and has
``model.loss(output, labels)``; that is all this module relies on.

Per-batch numbers stay tensors and are summed on the device; the only
per-batch host sync in training is the finiteness check of the loss, which must
stop a run before a NaN reaches the weights.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

import numpy as np
import torch
from torch import nn

from .errors import NonFiniteLossError

INPUT_KEYS = ("text", "audio", "vision", "text_lengths", "audio_lengths", "vision_lengths")


@dataclass
class TrainEpoch:
    """What one training epoch measured.

    Attributes:
        loss: the model's multi-task loss, averaged over samples.
        samples: samples seen.
    """

    loss: float
    samples: int


@dataclass
class Evaluation:
    """One pass over a split in eval mode.

    Attributes:
        loss: mean absolute error of the multimodal head ``M`` against the
            unclipped labels: the early-stopping criterion (MMSA's validation "Loss").
        total_loss: the model's multi-task loss, averaged over samples.
        predictions, labels: the ``M`` predictions and labels, in split order.
        firing_rates: each spiking layer's firing rate over the split: its spikes over
            its valid (sample, step, neuron) positions, padding excluded.
        mean_firing_rate: all spikes over all valid neuron-steps of every spiking
            layer (None for a non-spiking model).
        sample_firing_rates: each sample's firing rate, in split order (None for a
            non-spiking model).
        ids: the sample ids, in split order.
        activity: per spiking layer, its (spikes, valid neuron-steps) totals over the
            split, from which the rates follow (evaluations of parts of a split add up).
    """

    loss: float
    total_loss: float
    predictions: np.ndarray
    labels: np.ndarray
    firing_rates: dict[str, float] = field(default_factory=dict)
    mean_firing_rate: float | None = None
    sample_firing_rates: np.ndarray | None = None
    ids: list = field(default_factory=list)
    activity: dict[str, tuple[float, float]] = field(default_factory=dict)


def activity_rates(activity: dict[str, tuple[float, float]]) -> tuple[dict[str, float], float | None]:
    """Per-layer firing rates and the rate of all layers together from (spikes, valid neuron-steps) totals.

    >>> activity_rates({"a": (3.0, 10.0), "b": (1.0, 30.0)})
    ({'a': 0.3, 'b': 0.03333333333333333}, 0.1)
    """
    rates = {name: spikes / max(steps, 1.0) for name, (spikes, steps) in activity.items()}
    if not activity:
        return rates, None
    spikes = sum(s for s, _ in activity.values())
    steps = sum(n for _, n in activity.values())
    return rates, spikes / max(steps, 1.0)


def to_device(batch: dict[str, Any], device: torch.device) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """The model's keyword inputs and the labels of a loader batch, on ``device``."""
    non_blocking = device.type == "cuda"
    inputs = {}
    for key in INPUT_KEYS:
        value = batch.get(key)
        inputs[key] = None if value is None else value.to(device, non_blocking=non_blocking)
    labels = {k: v.to(device, non_blocking=non_blocking) for k, v in batch["labels"].items()}
    return inputs, labels


def train_epoch(
    model: nn.Module,
    batches: Iterable[dict[str, Any]],
    optimizer: torch.optim.Optimizer,
    device: torch.device,
    grad_clip: float = 0.0,
    on_batch: Callable[[float], None] | None = None,
    all_sum: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> TrainEpoch:
    """One pass of Adam over ``batches``; raises :class:`NonFiniteLossError` before a bad step.

    ``on_batch`` receives each batch's loss (for a progress bar).

    Under torchrun (``all_sum`` sums over the ranks, ``model`` is the DDP
    wrapper) each batch is this rank's share of a global batch and carries
    ``samples``, ``global_samples`` and ``loss_scale`` (see
    :mod:`snn_msa.training.distributed`): the loss is scaled so that DDP's
    average of the gradients is the global batch's gradient, and the loss
    checked and reported is the global batch's, equal on every rank.
    """
    loss_of = getattr(model, "module", model).loss
    model.train()
    total = torch.zeros((), dtype=torch.float64, device=device)
    samples = 0
    for index, batch in enumerate(batches):
        inputs, labels = to_device(batch, device)
        output = model(**inputs)
        loss, _ = loss_of(output, labels)
        if all_sum is None:
            n = labels["M"].shape[0]
            batch_sum = loss.detach().double() * n
        else:
            n = batch["global_samples"]
            batch_sum = all_sum(loss.detach().double() * batch["samples"])
            loss = loss * batch["loss_scale"]
        value = float(batch_sum) / n
        if not math.isfinite(value):
            raise NonFiniteLossError(f"the training loss is {value} at batch {index + 1}")
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if grad_clip > 0:
            nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
        optimizer.step()
        total += batch_sum
        samples += n
        if on_batch is not None:
            on_batch(value)
    if samples == 0:
        raise ValueError("the training split gave no batch; it needs at least one sample.")
    return TrainEpoch(loss=float(total) / samples, samples=samples)


@torch.inference_mode()
def evaluate(model: nn.Module, batches: Iterable[dict[str, Any]], device: torch.device) -> Evaluation:
    """Predictions of the ``M`` head over ``batches`` in eval mode (no dropout, no autograd)."""
    model.eval()
    preds, labels_m, ids = [], [], []
    l1_sum = torch.zeros((), dtype=torch.float64, device=device)
    total_sum = torch.zeros((), dtype=torch.float64, device=device)
    spike_sums: dict[str, torch.Tensor] = {}
    step_sums: dict[str, torch.Tensor] = {}
    sample_rates = []
    samples = 0
    for batch in batches:
        inputs, labels = to_device(batch, device)
        output = model(**inputs)
        total, _ = model.loss(output, labels)
        pred = output.predictions["M"].detach()
        target = labels["M"].to(pred.dtype).view_as(pred)
        n = target.shape[0]
        l1_sum += (pred - target).abs().double().sum()
        total_sum += total.double() * n
        for name, (spikes, steps) in output.activity.items():
            spike_sums[name] = spike_sums.get(name, 0) + spikes.double().sum()
            step_sums[name] = step_sums.get(name, 0) + steps.double().sum()
        if output.activity:
            sample_rates.append(output.sample_firing_rate.float().cpu())
        preds.append(pred.float().cpu())
        labels_m.append(target.float().cpu())
        ids.extend(batch.get("ids") or [])
        samples += n
    if samples == 0:
        raise ValueError("the split gave no batch; it needs at least one sample.")
    activity = {name: (float(spike_sums[name]), float(step_sums[name])) for name in spike_sums}
    firing_rates, mean_firing_rate = activity_rates(activity)
    return Evaluation(
        loss=float(l1_sum) / samples,
        total_loss=float(total_sum) / samples,
        predictions=torch.cat(preds).numpy(),
        labels=torch.cat(labels_m).numpy(),
        firing_rates=firing_rates,
        mean_firing_rate=mean_firing_rate,
        sample_firing_rates=torch.cat(sample_rates).numpy() if sample_rates else None,
        ids=list(ids),
        activity=activity,
    )
