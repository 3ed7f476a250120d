r"""Hand-written BPTT for the connected LIF: the fast CPU path and the model of the CUDA kernel.

Forward (per step, ``r[t] = s[t-1] \omega^T``, row vectors per batch element):

.. math::
    U[t] = V[t] + (I[t] + r[t] - (V[t] - V_{rest}))/\tau,\quad
    s[t] = H(U[t] - V_{th}),\quad V[t+1] = s[t]V_{rest} + (1-s[t])U[t].

Backward, with :math:`\sigma'` the ATan surrogate derivative at :math:`U[t]-V_{th}`,
:math:`g_s[t]` the incoming gradient of the spikes, and carries
:math:`g_V[T] = 0`, :math:`g_I[T] = 0`:

.. math::
    \bar g_s[t] = g_s[t] + g_I[t+1]\,\omega, \quad
    g_U[t] = \bar g_s[t]\sigma' + g_V[t+1]\big((1 - s[t]) + (V_{rest} - U[t])\sigma'\big), \\
    g_I[t] = g_U[t]/\tau, \quad g_V[t] = g_U[t] - g_U[t]/\tau.

The reset is not detached (the :math:`(V_{rest} - U)\sigma'` term), as in SpikingJelly's
default. Only ``U`` is saved; spikes are recomputed from it.
"""

from __future__ import annotations

import torch

from .parameters import LIFParameters, atan_surrogate_grad


def connected_lif_forward(x: torch.Tensor, omega: torch.Tensor, p: LIFParameters) -> tuple[torch.Tensor, torch.Tensor]:
    """Forward over all steps without autograd; returns ``(spikes, U)``, both ``[T, B, F]``."""
    T = x.shape[0]
    spikes = torch.empty_like(x)
    charged = torch.empty_like(x)
    v = torch.full_like(x[0], p.v_rest)
    omega_t = omega.t()
    for t in range(T):
        current = x[t] if t == 0 else x[t] + spikes[t - 1] @ omega_t
        u = v + (current - (v - p.v_rest)) / p.tau
        s = (u >= p.v_threshold).to(x.dtype)
        v = s * p.v_rest + (1 - s) * u
        spikes[t] = s
        charged[t] = u
    return spikes, charged


def connected_lif_backward(grad_spikes: torch.Tensor, charged: torch.Tensor, omega: torch.Tensor, p: LIFParameters) -> torch.Tensor:
    """BPTT through :func:`connected_lif_forward`; returns the gradient of the input ``[T, B, F]``."""
    T = charged.shape[0]
    grad_x = torch.empty_like(charged)
    grad_v = torch.zeros_like(charged[0])
    grad_i_next = None
    for t in range(T - 1, -1, -1):
        u = charged[t]
        sg = atan_surrogate_grad(u - p.v_threshold, p.alpha)
        s = (u >= p.v_threshold).to(u.dtype)
        gs = grad_spikes[t] if grad_i_next is None else grad_spikes[t] + grad_i_next @ omega
        reset_grad = (1 - s) + (p.v_rest - u) * sg
        gu = gs * sg + grad_v * reset_grad
        gi = gu / p.tau
        grad_x[t] = gi
        grad_v = gu - gi
        grad_i_next = gi
    return grad_x


class ConnectedLIFFunction(torch.autograd.Function):
    """Autograd Function: no graph over the T steps, one saved tensor (U)."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, omega: torch.Tensor, params: LIFParameters) -> torch.Tensor:
        spikes, charged = connected_lif_forward(x, omega, params)
        ctx.save_for_backward(charged, omega)
        ctx.params = params
        return spikes

    @staticmethod
    def backward(ctx, grad_spikes: torch.Tensor):
        charged, omega = ctx.saved_tensors
        grad_x = connected_lif_backward(grad_spikes.contiguous(), charged, omega, ctx.params)
        return grad_x, None, None
