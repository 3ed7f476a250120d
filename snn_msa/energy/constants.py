"""Energy constants and the operation counts that stand for one elementwise step.

The 45 nm figures are Horowitz (ISSCC 2014) for 32-bit floating point, the
values the SNN literature and SpikingJelly's ``SimpleEnergyCostConfig.fp32()``
use. The memory-aware estimate takes its costs from SpikingJelly's
``LemaireEnergyCostConfig`` (Lemaire et al. 2022), so they live in one place.
"""

from __future__ import annotations

E_AC_PJ = 0.9
"""Energy of one 32-bit float accumulate (add), 45 nm, in pJ."""

E_MAC_PJ = 4.6
"""Energy of one 32-bit float multiply-accumulate (3.7 pJ multiply + 0.9 pJ add), 45 nm, in pJ."""

WORD_BYTES = 4
"""Bytes per stored value in the memory-aware estimate (32-bit words, as Lemaire et al.)."""

FIFO_CAPACITY = 1000
"""Spike messages an input/output FIFO holds in the memory-aware estimate (Lemaire's setting)."""

OTHER_OPS = {
    "layernorm": 7,  # per element: mean add, subtract, square, variance add, normalise, affine multiply and add
    "softmax": 5,  # per score: max compare, subtract, exp, sum, divide
    "neuron": 5,  # per neuron and step: charge (subtract, scale, add), threshold compare, reset
    "bias": 1,  # per output element of a layer with a bias
    "batchnorm": 2,  # per element in evaluation: the running statistics fold into one multiply and one add
    "activation": 1,  # per element of an activation module (ReLU, GELU, Tanh, Sigmoid...)
    "elementwise": 1,  # per output element of an elementwise step (add, mul...), per input element of a reduction
    "lstm_cell": 9,  # per hidden unit and step: 3 sigmoid + 2 tanh gates, f*c, i*g, their add, o*tanh(c)
    "gru_cell": 8,  # per hidden unit and step: 2 sigmoid + 1 tanh gates, r*(W h + b), (1-z) n + z h (4)
    "rnn_cell": 1,  # per hidden unit and step: the tanh (or ReLU)
}
"""Elementary operations counted as "other" for each kind of step; none are AC or MAC."""


def energy_45nm_pj(ac: float, mac: float) -> float:
    """The 45 nm estimate :math:`E = 0.9\\,\\mathrm{pJ} \\cdot AC + 4.6\\,\\mathrm{pJ} \\cdot MAC`.

    >>> energy_45nm_pj(ac=10, mac=1)
    13.6
    """
    return round(E_AC_PJ * ac + E_MAC_PJ * mac, 9)
