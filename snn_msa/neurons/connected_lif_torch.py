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

Why the loops look the way they do: on the CPU each step is a handful of tiny
tensor ops, so their count and their allocations, not arithmetic, set the time.
Every op writes into preallocated memory (``out=``); the terms of the backward
that do not depend on the carried gradient (:math:`\sigma'`, the reset factor)
are computed for all steps at once before the loop; and the recurrent product is
skipped when :math:`\omega` is all zero. Each element still goes through the
same IEEE operations as in :func:`~snn_msa.neurons.connected_lif_reference`, so
without recurrence the results agree bit for bit (up to the sign of zero
potentials). With recurrence the product is the same BLAS call as the
reference's, but BLAS may round differently at another thread count (see
below), so ``U`` can differ in the last bit in float32.

On the CPU the loops over T run with one intra-op thread when a step is small
(``B * F * F`` up to :data:`SINGLE_THREAD_MAX_MACS`): such a step is below
ATen's grain size except for the recurrent product, whose BLAS call would
otherwise fork and join its threads at every step. Measured on 2 cores
(``docs/neurons.md``): within noise on a quiet machine, 3 to 20 times faster
when another process shares the cores, because every forked call waits for a
descheduled thread. The thread count is restored afterwards; it is
process-wide meanwhile.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator

import torch

from .parameters import LIFParameters, atan_surrogate_grad


#: Largest per-step recurrent product (multiply-accumulates) that runs its loop on one CPU thread.
SINGLE_THREAD_MAX_MACS = 1 << 21


@contextlib.contextmanager
def loop_threads(reference: torch.Tensor, features: int) -> Iterator[None]:
    """Run the block with one intra-op thread if ``reference`` ``[.., B, F]`` is a small CPU step."""
    batch = math.prod(reference.shape[1:-1])
    previous = torch.get_num_threads()
    if reference.device.type != "cpu" or previous == 1 or batch * features * features > SINGLE_THREAD_MAX_MACS:
        yield
        return
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def _has_recurrence(omega: torch.Tensor) -> bool:
    # One reduction per call; with strength 0 the product adds only zeros and is skipped.
    return bool(omega.any())


def connected_lif_forward(x: torch.Tensor, omega: torch.Tensor, p: LIFParameters) -> tuple[torch.Tensor, torch.Tensor]:
    """Forward over all steps without autograd; returns ``(spikes, U)``, both ``[T, B, F]``.

    >>> x = torch.tensor([[[2.0, 0.0]], [[0.0, 0.0]]])
    >>> spikes, charged = connected_lif_forward(x, torch.tensor([[0.0, 0.0], [5.0, 0.0]]), LIFParameters())
    >>> spikes.squeeze(1).tolist(), charged.squeeze(1).tolist()
    ([[1.0, 0.0], [0.0, 1.0]], [[1.0, 0.0], [0.0, 2.5]])
    """
    T = x.shape[0]
    spikes = torch.empty_like(x)
    charged = torch.empty_like(x)
    recurrent = T > 1 and _has_recurrence(omega)
    # 0-dim tensors instead of Python numbers: an op with a Python scalar wraps it in
    # a new tensor every call, which doubles the cost of these tiny ops.
    tau, v_threshold, v_rest = (torch.tensor(c, dtype=x.dtype, device=x.device) for c in (p.tau, p.v_threshold, p.v_rest))
    v = torch.full_like(x[0], p.v_rest)
    current = torch.empty_like(x[0])
    drive = torch.empty_like(x[0])
    silent = torch.empty_like(x[0])
    omega_t = omega.t()
    with loop_threads(x, omega.shape[0]):
        for t in range(T):
            if recurrent and t > 0:
                # Same call as the reference (s @ omega.t()), so the same summation order.
                torch.mm(spikes[t - 1], omega_t, out=current)
                current.add_(x[t])
            else:
                current.copy_(x[t])
            u = charged[t]
            # u = v + (current - (v - v_rest)) / tau, one IEEE op at a time as in the reference.
            if p.v_rest == 0.0:
                torch.sub(current, v, out=drive)
            else:
                torch.sub(v, v_rest, out=drive)
                torch.sub(current, drive, out=drive)
            drive.div_(tau)
            torch.add(v, drive, out=u)
            torch.ge(u, v_threshold, out=spikes[t])
            # v = s * v_rest + (1 - s) * u; both products are exact since s is 0 or 1.
            torch.lt(u, v_threshold, out=silent)
            torch.mul(u, silent, out=v)
            if p.v_rest != 0.0:
                v.add_(spikes[t], alpha=p.v_rest)
    return spikes, charged


def connected_lif_backward(grad_spikes: torch.Tensor, charged: torch.Tensor, omega: torch.Tensor, p: LIFParameters) -> torch.Tensor:
    """BPTT through :func:`connected_lif_forward`; returns the gradient of the input ``[T, B, F]``."""
    T = charged.shape[0]
    # Everything that depends on U alone, for all steps in a few large ops.
    surrogate = atan_surrogate_grad(charged - p.v_threshold, p.alpha)
    spikes = (charged >= p.v_threshold).to(charged.dtype)
    reset_grad = torch.rsub(spikes, 1).add_((p.v_rest - charged).mul_(surrogate))  # (1 - s) + (v_rest - U) sg
    recurrent = T > 1 and _has_recurrence(omega)
    grad_x = torch.empty_like(charged)
    grad_v = torch.zeros_like(charged[0])
    grad_s = torch.empty_like(charged[0])
    grad_u = torch.empty_like(charged[0])
    carried = torch.empty_like(charged[0])
    tau = torch.tensor(p.tau, dtype=charged.dtype, device=charged.device)
    with loop_threads(charged, omega.shape[0]):
        for t in range(T - 1, -1, -1):
            if recurrent and t < T - 1:
                torch.mm(grad_x[t + 1], omega, out=grad_s)  # g_I[t+1] @ omega
                grad_s.add_(grad_spikes[t])
                torch.mul(grad_s, surrogate[t], out=grad_u)
            else:
                torch.mul(grad_spikes[t], surrogate[t], out=grad_u)
            torch.mul(grad_v, reset_grad[t], out=carried)
            grad_u.add_(carried)
            gi = grad_x[t]
            torch.div(grad_u, tau, out=gi)
            torch.sub(grad_u, gi, out=grad_v)
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
