"""A memory-aware energy estimate after Lemaire et al. (2022), per layer.

SpikingJelly 2.x implements Lemaire's model (``estimate_lemaire_energy``) for
``Linear``, ``Conv`` and LIF/IF neurons over a whole model. Here the same rules
are applied per layer, so they can be summed into a table, and extended to what
SpikingJelly's version omits (attention products, LayerNorm, softmax, residual
adds and the connected neuron's recurrence). On the layers both cover the two
agree exactly (``tests/test_energy_counting.py``).

Energy of a layer: operations (``AC x E_add + MAC x (E_mul + E_add)``), address
arithmetic (``acc_addr x E_add``) and memory (bytes moved, each byte priced by
the size of the buffer it moves through, interpolated on Lemaire's SRAM curve).

Differences from SpikingJelly's rules, all chosen to make the estimate per sample:

- buffer sizes are per sample (a tensor's bytes divided by the batch size), so
  the estimate does not depend on the batch size; with batch 1 they are equal;
- a layer with real input always writes its output (SpikingJelly writes it only
  when the model has no spiking neurons; in SGMT such outputs go to a LayerNorm,
  not into a membrane);
- elementwise steps ("other" operations) are priced as one multiply-add each,
  read their input and write their output.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

from spikingjelly.activation_based.op_counter import LemaireEnergyCostConfig

from .constants import FIFO_CAPACITY, WORD_BYTES

COST = LemaireEnergyCostConfig()
"""Lemaire's costs as SpikingJelly ships them: 32-bit integer add and multiply, 45 nm SRAM curve."""


@dataclass
class MemoryTally:
    """What one layer costs in the memory-aware estimate, summed over the samples counted.

    Attributes:
        ac, mac: additions and multiply-adds (Lemaire's operation counts, bias adds included).
        acc_addr: address additions.
        memory_pj: energy of the bytes moved, already priced by buffer size.
        bytes: bytes moved.
    """

    ac: int = 0
    mac: int = 0
    acc_addr: int = 0
    memory_pj: float = 0.0
    bytes: int = 0

    def add(self, other: "MemoryTally") -> None:
        for f in fields(self):
            setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))

    def move(self, nbytes: int, capacity_bytes: float) -> None:
        """Move ``nbytes`` through a buffer of ``capacity_bytes`` (priced per byte by its size)."""
        self.bytes += int(nbytes)
        self.memory_pj += int(nbytes) * COST.memory_cost_pj(float(capacity_bytes))

    def energy(self) -> dict[str, float]:
        """``{"energy_pj", "ops_pj", "addressing_pj", "memory_pj"}`` under Lemaire's costs."""
        ops = self.ac * COST.e_add_pj + self.mac * (COST.e_mul_pj + COST.e_add_pj)
        addressing = self.acc_addr * COST.e_add_pj
        return {"energy_pj": ops + addressing + self.memory_pj, "ops_pj": ops, "addressing_pj": addressing,
                "memory_pj": self.memory_pj}


def spike_synapses(*, active: int, fan_out: int, bias_outputs: int, params: int, output_capacity: float) -> MemoryTally:
    """A weight layer driven by ``active`` input spikes (Lemaire's event-driven rule).

    Each spike reads its ``fan_out`` weights and reads and writes as many
    accumulators; the spike itself comes through a FIFO.

    Args:
        active: input spikes.
        fan_out: outputs each spike reaches.
        bias_outputs: output elements that get a bias added (0 without a bias).
        params: weights (and bias) the layer holds, for the size of its buffer.
        output_capacity: values in the per-sample accumulator buffer.
    """
    t = MemoryTally()
    synops = active * fan_out
    t.ac = synops + bias_outputs
    t.acc_addr = synops
    t.move(active * WORD_BYTES, FIFO_CAPACITY * WORD_BYTES)
    t.move((synops + bias_outputs) * WORD_BYTES, params * WORD_BYTES)
    t.move(synops * WORD_BYTES, output_capacity * WORD_BYTES)  # read accumulators
    t.move(synops * WORD_BYTES, output_capacity * WORD_BYTES)  # write them back
    return t


def dense_synapses(*, macs: int, inputs: int, outputs: int, bias_outputs: int, params: float, input_capacity: float,
                   output_capacity: float, input_reads: int | None = None, extra_addr: int = 0) -> MemoryTally:
    """A weight (or matrix) product on real inputs (Lemaire's dense rule).

    Args:
        macs: multiply-accumulates.
        inputs, outputs: input values read and output values written.
        bias_outputs: output elements that get a bias added.
        params: values of the stationary operand (weights, or K / V per head), for its buffer size.
        input_capacity, output_capacity: values in the per-sample input and output buffers.
        input_reads: input values read, if not ``inputs`` (a convolution reads each
            input once per weight that touches it).
        extra_addr: further address additions (a convolution adds ``C_out x kernel`` per sample).
    """
    t = MemoryTally()
    t.mac = macs
    t.ac = bias_outputs
    t.acc_addr = inputs + outputs + extra_addr
    t.move((inputs if input_reads is None else input_reads) * WORD_BYTES, input_capacity * WORD_BYTES)
    t.move((macs + bias_outputs) * WORD_BYTES, params * WORD_BYTES)
    t.move(outputs * WORD_BYTES, output_capacity * WORD_BYTES)
    return t


def neuron_steps(*, steps: int, spikes: int, features: int) -> MemoryTally:
    """A LIF neuron layer: one multiply-add (leak) per neuron step, one add per spike,
    membrane read and written every step, spikes written to a FIFO."""
    t = MemoryTally()
    t.mac = steps
    t.ac = spikes
    t.move(steps * WORD_BYTES, features * WORD_BYTES)
    t.move(steps * WORD_BYTES, features * WORD_BYTES)
    t.move(spikes * WORD_BYTES, FIFO_CAPACITY * WORD_BYTES)
    return t


def elementwise(*, ops: int, elements: int, capacity: float, params: int = 0, param_reads: int = 0) -> MemoryTally:
    """An elementwise step (LayerNorm, softmax, adds): ``ops`` multiply-adds, input read, output written."""
    t = MemoryTally()
    t.mac = ops
    t.move(elements * WORD_BYTES, capacity * WORD_BYTES)
    t.move(elements * WORD_BYTES, capacity * WORD_BYTES)
    if param_reads:
        t.move(param_reads * WORD_BYTES, params * WORD_BYTES)
    return t
