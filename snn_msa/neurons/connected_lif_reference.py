r"""The connected LIF (the paper's LIF'), written as plainly as possible.

This is the specification that the fast backends are tested against:

.. math::
    U[t] = V[t] + \frac{1}{\tau}\Big(I[t] + \sum_j \omega_{ij} s_j[t-1] - (V[t] - V_{rest})\Big), \\
    s[t] = H(U[t] - V_{th}), \quad V[t+1] = s[t] V_{rest} + (1 - s[t]) U[t], \\
    V[0] = V_{rest}, \quad s[-1] = 0.

Gradients come from autograd through SpikingJelly's ATan surrogate.
"""

from __future__ import annotations

import torch
from spikingjelly.activation_based import surrogate

from .parameters import LIFParameters


def connected_lif_reference(x: torch.Tensor, omega: torch.Tensor, params: LIFParameters) -> torch.Tensor:
    """Run the connected LIF over a ``[T, B, F]`` input with recurrent weights ``omega`` ``[F, F]``.

    Returns the spikes ``[T, B, F]`` (0.0 or 1.0). ``omega[i, j]`` is the weight
    from neuron ``j`` to neuron ``i``.

    >>> x = torch.tensor([[[2.0, 0.0]], [[0.0, 0.0]]])          # T=2, B=1, F=2
    >>> omega = torch.tensor([[0.0, 0.0], [5.0, 0.0]])          # neuron 0 excites neuron 1
    >>> connected_lif_reference(x, omega, LIFParameters()).squeeze(1).tolist()
    [[1.0, 0.0], [0.0, 1.0]]
    """
    spike_fn = surrogate.ATan(alpha=params.alpha)
    T, B, F = x.shape
    v = torch.full((B, F), params.v_rest, dtype=x.dtype, device=x.device)
    s_prev = torch.zeros(B, F, dtype=x.dtype, device=x.device)
    spikes = []
    for t in range(T):
        current = x[t] + s_prev @ omega.t()
        u = v + (current - (v - params.v_rest)) / params.tau
        s = spike_fn(u - params.v_threshold)
        v = s * params.v_rest + (1 - s) * u
        spikes.append(s)
        s_prev = s
    return torch.stack(spikes)
