r"""Does the spiking path carry the signal? Per-layer activity and a spike knock-out.

For every neuron layer, over the valid (sample, step) positions of a split:

- ``firing_rate``: spikes / (valid positions x neurons);
- ``silent_neurons``: the share of the layer's neurons that never fire;
- ``silent_steps``: the share of valid (sample, step) positions at which no
  neuron of the layer fires (an all-zero row of :math:`X_{spike}`).

The **knock-out** evaluates the split twice: as the model is, and with every
spike set to zero (each neuron's output replaced by zeros). In SGMT the
prediction then flows only through the real-valued residual
:math:`X_{norm} + Y_{norm}`; the change in MAE and Corr is how much of the
prediction the spikes carry. A network is reported as effectively silent when
its rate is below :data:`SILENT_RATE` or zeroing its spikes moves neither MAE by
:data:`KNOCKOUT_MAE` (relative) nor Corr by :data:`KNOCKOUT_CORR`.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Iterator

import numpy as np
import torch
from torch import nn

from .metrics import msa_metrics
from .neurons.activity import SpikeActivity
from .training.loop import evaluate

SILENT_RATE = 1e-3
KNOCKOUT_MAE = 0.02  # relative change of MAE
KNOCKOUT_CORR = 0.02  # absolute change of Corr


class _LayerTally:
    """Spikes per neuron and silent (sample, step) positions of one layer, summed over batches."""

    def __init__(self) -> None:
        self.per_neuron: torch.Tensor | None = None
        self.positions = 0
        self.silent_positions = 0

    def add(self, spikes: torch.Tensor, valid: torch.Tensor | None) -> None:
        spikes = spikes.detach()
        if valid is None:
            valid = torch.ones(spikes.shape[:2], dtype=torch.bool, device=spikes.device)
        weights = valid.to(spikes.dtype).unsqueeze(-1)
        counts = (spikes * weights).sum(dim=(0, 1)).double().cpu()
        self.per_neuron = counts if self.per_neuron is None else self.per_neuron + counts
        fired = spikes.sum(dim=-1) > 0
        self.positions += int(valid.sum())
        self.silent_positions += int((valid & ~fired).sum())

    def summary(self) -> dict[str, float]:
        neurons = self.per_neuron.numel()
        spikes = float(self.per_neuron.sum())
        return {
            "neurons": neurons,
            "firing_rate": spikes / max(self.positions * neurons, 1),
            "silent_neurons": float((self.per_neuron == 0).double().mean()),
            "silent_steps": self.silent_positions / max(self.positions, 1),
        }


def _neurons(model: nn.Module) -> dict[str, nn.Module]:
    return {name: m for name, m in model.named_modules() if isinstance(m, SpikeActivity)}


@contextmanager
def _tallied(model: nn.Module, tallies: dict[str, _LayerTally]) -> Iterator[None]:
    def hook(name):
        def record(module, args, output):
            valid = args[1] if len(args) > 1 else None
            tallies.setdefault(name, _LayerTally()).add(output, valid)

        return record

    handles = [m.register_forward_hook(hook(name)) for name, m in _neurons(model).items()]
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()


@contextmanager
def spikes_knocked_out(model: nn.Module) -> Iterator[None]:
    """Within the block, every neuron of ``model`` outputs zeros (no spike reaches any synapse)."""
    handles = [m.register_forward_hook(lambda module, args, output: torch.zeros_like(output))
               for m in _neurons(model).values()]
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()


def _scores(model: nn.Module, split, profile: str, batch_size: int, device: torch.device) -> dict[str, float]:
    result = evaluate(model, split.loader(batch_size), device)
    return msa_metrics(result.predictions, result.labels, profile, decimals=None)


def spike_diagnosis(model: nn.Module, split, profile: str, *, batch_size: int = 32,
                    device: torch.device | str = "cpu") -> dict[str, Any]:
    """Per-layer activity and the knock-out of ``model`` on ``split`` (an ``MSASplit``) of a ``profile`` data set.

    Returns ``{"spiking", "layers": {name: {neurons, firing_rate, silent_neurons,
    silent_steps}}, "firing_rate", "metrics", "knocked_out_metrics", "knockout":
    {"MAE", "Corr"} (knocked out minus as is), "silent", "warnings"}``.
    A non-spiking model has no layers and no knock-out.
    """
    device = torch.device(device)
    model.to(device).eval()
    tallies: dict[str, _LayerTally] = {}
    with _tallied(model, tallies):
        metrics = _scores(model, split, profile, batch_size, device)
    if not tallies:
        return {"spiking": False, "layers": {}, "firing_rate": None, "metrics": metrics,
                "knocked_out_metrics": None, "knockout": None, "silent": None, "warnings": []}
    layers = {name: tally.summary() for name, tally in tallies.items()}
    spikes = sum(float(t.per_neuron.sum()) for t in tallies.values())
    steps = sum(t.positions * t.per_neuron.numel() for t in tallies.values())
    rate = spikes / max(steps, 1)
    with spikes_knocked_out(model):
        knocked = _scores(model, split, profile, batch_size, device)
    change = {key: knocked[key] - metrics[key] for key in ("MAE", "Corr")}
    warnings = []
    if rate < SILENT_RATE:
        warnings.append(f"the network is effectively silent: it fires {rate:.5f} of the time on valid positions "
                        f"(below {SILENT_RATE}).")
    relative_mae = abs(change["MAE"]) / max(abs(metrics["MAE"]), 1e-12)
    corr_change = 0.0 if np.isnan(change["Corr"]) else abs(change["Corr"])
    if relative_mae < KNOCKOUT_MAE and corr_change < KNOCKOUT_CORR:
        warnings.append("zeroing every spike changes MAE by {:.1%} and Corr by {:.3f}: the predictions flow through "
                        "the real-valued residual, not through the spikes.".format(relative_mae, corr_change))
    silent_layers = [name for name, layer in layers.items() if layer["firing_rate"] == 0.0]
    if silent_layers:
        warnings.append(f"{len(silent_layers)} of {len(layers)} neuron layers never fire: {', '.join(silent_layers)}.")
    return {
        "spiking": True,
        "layers": layers,
        "firing_rate": rate,
        "metrics": metrics,
        "knocked_out_metrics": knocked,
        "knockout": change,
        "silent": bool(rate < SILENT_RATE or (relative_mae < KNOCKOUT_MAE and corr_change < KNOCKOUT_CORR)),
        "warnings": warnings,
    }


def format_diagnosis(report: dict[str, Any]) -> str:
    """The diagnosis as a terminal table (at most about 100 columns)."""
    head = report["header"]
    lines = [head, ""]
    if not report["spiking"]:
        return "\n".join(lines + ["This model has no spiking neurons: nothing to diagnose."])
    width = max(len(n) for n in report["layers"])
    lines.append(f"{'neuron layer':<{width}}  {'rate':>8}  {'silent neurons':>14}  {'all-zero steps':>14}")
    for name, layer in report["layers"].items():
        lines.append(f"{name:<{width}}  {layer['firing_rate']:>8.4f}  {layer['silent_neurons']:>14.1%}"
                     f"  {layer['silent_steps']:>14.1%}")
    lines.append(f"{'all layers':<{width}}  {report['firing_rate']:>8.4f}")
    m, k = report["metrics"], report["knocked_out_metrics"]
    lines += ["", "knock-out (every spike set to zero):",
              f"  MAE   {m['MAE']:.4f} -> {k['MAE']:.4f}  ({report['knockout']['MAE']:+.4f})",
              f"  Corr  {m['Corr']:.4f} -> {k['Corr']:.4f}  ({report['knockout']['Corr']:+.4f})"]
    lines += [""] + [f"warning: {w}" for w in report["warnings"]] if report["warnings"] else \
        ["", "The spiking path carries part of the prediction."]
    return "\n".join(lines)
