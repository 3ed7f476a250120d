"""Spiking neurons, time-major multistep layout ``[T, B, F]``.

- :class:`LIF`: the paper's eq. 1 on SpikingJelly's ``LIFNode``.
- :class:`ConnectedLIF`: the paper's LIF' with a fixed recurrent matrix, in three
  backends (``reference``, ``torch``, ``cupy``).
"""

from .connected_lif import BACKENDS, ConnectedLIF
from .connected_lif_reference import connected_lif_reference
from .lif import LIF
from .parameters import LIFParameters, NeuronSettings

__all__ = ["BACKENDS", "ConnectedLIF", "LIF", "LIFParameters", "NeuronSettings", "connected_lif_reference"]
