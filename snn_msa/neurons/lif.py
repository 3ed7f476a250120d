r"""The paper's LIF neuron (eq. 1) on SpikingJelly 2.x's multistep ``LIFNode``.

.. math::
    U[t] = V[t] + \frac{1}{\tau}\big(I[t] - (V[t] - V_{rest})\big), \quad
    s[t] = H(U[t] - V_{th}), \quad
    V[t+1] = s[t] V_{rest} + (1 - s[t]) U[t], \quad V[0] = V_{rest}.
"""

from __future__ import annotations

import torch
from spikingjelly.activation_based import neuron, surrogate

from .activity import SpikeActivity
from .parameters import LIFParameters, check_sequence_input


class LIF(SpikeActivity, torch.nn.Module):
    r"""Multistep LIF neuron, input and output ``[T, B, F]`` (time-major).

    A thin wrapper of SpikingJelly's ``LIFNode(decay_input=True, v_reset=v_rest,
    surrogate_function=ATan(alpha), detach_reset=False, step_mode="m")`` that
    resets its own membrane at the start of every forward, so callers never call
    ``reset_net``, and records its firing rate (see :class:`SpikeActivity`).

    >>> lif = LIF()
    >>> lif(torch.full((3, 1, 2), 2.0)).squeeze(1).tolist()   # U = 1.0 at t=0 fires
    [[1.0, 1.0], [1.0, 1.0], [1.0, 1.0]]
    >>> lif.firing_rate
    1.0
    """

    def __init__(self, tau: float = 2.0, v_threshold: float = 1.0, v_rest: float = 0.0, alpha: float = 2.0):
        super().__init__()
        self.params = LIFParameters(tau=tau, v_threshold=v_threshold, v_rest=v_rest, alpha=alpha)
        self.node = neuron.LIFNode(
            tau=tau,
            decay_input=True,
            v_threshold=v_threshold,
            v_reset=v_rest,
            surrogate_function=surrogate.ATan(alpha=alpha),
            detach_reset=False,
            step_mode="m",
        )

    def forward(self, x: torch.Tensor, valid: torch.Tensor | None = None) -> torch.Tensor:
        """Spikes ``[T, B, F]``; ``valid`` (``[T, B]`` bool) only says which positions the activity counts."""
        check_sequence_input(x, None, "LIF")
        self.node.reset()
        spikes = self.node(x)
        self.node.reset()  # drop the final membrane so no graph outlives the call
        self.record_activity(spikes, valid)
        return spikes

    def extra_repr(self) -> str:
        p = self.params
        return f"tau={p.tau}, v_threshold={p.v_threshold}, v_rest={p.v_rest}, alpha={p.alpha}"
