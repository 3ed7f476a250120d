"""One row of the energy count (:class:`LayerCount`) and the spike test every rule uses."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from . import memory


@dataclass
class LayerCount:
    """Counts of one row, summed over every sample counted.

    Attributes:
        name: dotted module name (functional rows get a suffix: ``.scores``, ``.recurrence``...).
        module: class of the module (or name of the function) the row comes from.
        operation: what is computed (``linear``, ``Q K^T``, ``LIF update``...).
        operands: ``spike x weight``, ``real x weight``, ``real x real``, ``real`` or ``real -> spike``.
        stage, modality: from the model's energy scopes (``-`` where it gives none).
        dense: multiply-accumulates a dense implementation does for this row (synaptic rows only).
        ac, mac, other: accumulates, multiply-accumulates, other elementary operations.
        spikes_in, elements_in: input spikes and input elements (rows with spike input).
        spikes_out, elements_out: output spikes and neuron steps (neuron rows).
        memory: the row's tally in the memory-aware estimate.
    """

    name: str
    module: str
    operation: str
    operands: str
    dense: int = 0
    ac: int = 0
    mac: int = 0
    other: int = 0
    spikes_in: int = 0
    elements_in: int = 0
    spikes_out: int = 0
    elements_out: int = 0
    memory: memory.MemoryTally = field(default_factory=memory.MemoryTally)
    stage: str = "-"
    modality: str = "-"

    def add(self, other: "LayerCount") -> None:
        """Add ``other``'s counts (the same row in another call or batch) to this row."""
        for key in ("dense", "ac", "mac", "other", "spikes_in", "elements_in", "spikes_out", "elements_out"):
            setattr(self, key, getattr(self, key) + getattr(other, key))
        self.memory.add(other.memory)

    @property
    def input_firing_rate(self) -> float | None:
        """Input spikes over input elements (rows with spike input), else None."""
        return self.spikes_in / self.elements_in if self.elements_in else None

    @property
    def output_firing_rate(self) -> float | None:
        """Output spikes over neuron steps (neuron rows), else None."""
        return self.spikes_out / self.elements_out if self.elements_out else None


def is_spike(x: torch.Tensor) -> bool:
    """Whether every element of ``x`` is 0 or 1 (SpikingJelly's test for a spike tensor).

    >>> is_spike(torch.tensor([0.0, 1.0])), is_spike(torch.tensor([0.5]))
    (True, False)
    """
    return x.dtype == torch.bool or bool((x.eq(0) | x.eq(1)).all())


def nnz(x: torch.Tensor) -> int:
    """Non-zero elements of ``x``."""
    return int(torch.count_nonzero(x))
