r"""Counting rules of spiking neurons: ours (``LIF``, ``ConnectedLIF``) and any SpikingJelly node.

Neurons are time-major (``[L, B, F]``, SpikingJelly's multistep layout), so the
valid mask is read that way whatever the scope's layout. A neuron row counts
the neuron updates (other operations) and the output spikes, from which the
report gives the firing rate. ``ConnectedLIF`` adds a ``.recurrence`` row: the
omega accumulates :math:`\sum_t \mathrm{nnz}(s[t-1]) \cdot F` over valid
steps, work done inside its own kernel that no dispatch-level counter sees.
"""

from __future__ import annotations

import torch
from spikingjelly.activation_based.neuron import BaseNode

from ..neurons import LIF, ConnectedLIF
from . import memory
from .constants import OTHER_OPS
from .rows import LayerCount, nnz
from .rules import Call, module_rule


def neuron_row(call: Call, operation: str) -> tuple[LayerCount, torch.Tensor | None]:
    """The update row of a neuron layer, and the ``[L, B]`` valid mask used (None: all positions)."""
    out = call.output.detach()
    mask = call.mask(out, "time-major") if out.dim() >= 3 else None
    spikes = out.reshape(-1, out.shape[-1]) if mask is None else out[mask]
    row = call.row("", type(call.target).__name__, operation, "real -> spike")
    row.spikes_out, row.elements_out = nnz(spikes), spikes.numel()
    row.other = row.elements_out * OTHER_OPS["neuron"]
    row.memory = memory.neuron_steps(steps=row.elements_out, spikes=row.spikes_out, features=out.shape[-1])
    return row, mask


@module_rule(LIF)
def lif(call: Call) -> list[LayerCount]:
    return [neuron_row(call, "LIF update")[0]]


@module_rule(BaseNode)
def spikingjelly_node(call: Call) -> list[LayerCount]:
    """Any SpikingJelly neuron (``LIFNode``, ``IFNode``...), single- or multi-step."""
    return [neuron_row(call, f"{type(call.target).__name__} update")[0]]


@module_rule(ConnectedLIF)
def connected_lif(call: Call) -> list[LayerCount]:
    """Neuron updates, and the recurrence: spikes at valid step t-1 feed all F neurons at step t."""
    neuron = call.target
    row, mask = neuron_row(call, "connected LIF update")
    spikes = call.output.detach()
    features = neuron.features
    if mask is None:
        feeding = nnz(spikes[:-1])
        steps = max(spikes.shape[0] - 1, 0) * spikes.shape[1]
        accumulates = feeding * features if neuron.strength > 0 else 0  # strength 0: no synapses
        # Called without padding, the neuron's own report must agree (with padding it counts valid positions only).
        if call.arg("valid", 1) is None and accumulates != neuron.recurrent_accumulates:
            raise RuntimeError(f"{call.name}: the neuron reports {neuron.recurrent_accumulates} recurrent "
                               f"accumulates, its spikes give {accumulates}.")
    else:
        # Valid positions only, in order: each sample's last valid position feeds nothing.
        per_sample = (spikes * mask.unsqueeze(-1)).sum(dim=(0, 2))
        order = torch.arange(1, mask.shape[0] + 1, device=mask.device).unsqueeze(1)
        last = (mask.long() * order).argmax(dim=0)
        at_last = spikes[last, torch.arange(mask.shape[1], device=mask.device)].sum(dim=-1)
        feeding = int((per_sample - at_last).sum())
        steps = int((mask.sum(dim=0) - 1).clamp_min(0).sum())
        accumulates = feeding * features if neuron.strength > 0 else 0  # strength 0: no synapses
    recurrence = call.row(".recurrence", "ConnectedLIF", "omega recurrence", "spike x weight",
                          dense=steps * features * features, ac=accumulates, spikes_in=feeding,
                          elements_in=steps * features)
    recurrence.memory = memory.spike_synapses(active=feeding, fan_out=features, bias_outputs=0,
                                              params=features * features, output_capacity=features)
    return [row, recurrence]
