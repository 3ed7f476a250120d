r"""``ConnectedLIF``: the paper's LIF' with a fixed random recurrent matrix :math:`\omega`.

.. math::
    U_i[t] = V_i[t] + \frac{1}{\tau}\Big(I_i[t] + \sum_{j=1}^{F}\omega_{ij}s_j[t-1] - (V_i[t] - V_{rest})\Big),
    \quad \omega = \text{strength}\cdot\mathcal{N}(0, 1)^{F\times F}.

Spike and reset follow eq. 1; ``s[-1] = 0``. The recurrent input uses the previous
step's spikes, the only causal reading of the paper's sum over :math:`s_j`.
"""

from __future__ import annotations

import math
import warnings

import torch

from . import connected_lif_cupy
from .activity import SpikeActivity, valid_counts
from .connected_lif_reference import connected_lif_reference
from .connected_lif_torch import ConnectedLIFFunction
from .parameters import NEURON_BACKENDS, LIFParameters, check_sequence_input

BACKENDS = NEURON_BACKENDS


#: CUDA devices whose ``auto`` fallback to the torch backend has been warned about (once each).
_FALLBACK_WARNED: set[int] = set()


def _cupy_cannot_run(reason: str) -> RuntimeError:
    return RuntimeError(
        f"backend='cupy' cannot run: {reason}. Install the CuPy build that matches your CUDA "
        "driver (pip install 'snn-msa[cuda12]' or 'snn-msa[cuda13]'), or use backend='torch'."
    )


def resolve_backend(backend: str, x: torch.Tensor) -> str:
    """The backend that runs ``x``.

    ``auto`` is ``cupy`` on a CUDA tensor when the CuPy kernels compile and run on
    its device, else ``torch``; the check runs once per process and device
    (:func:`~snn_msa.neurons.connected_lif_cupy.kernel_unavailable_reason`), and
    a CUDA tensor that falls back to ``torch`` gives one ``RuntimeWarning`` per
    device saying why. ``cupy`` where the kernels cannot run is an error that
    says what to do.
    """
    if backend not in ("auto", "cupy"):
        return backend
    if not x.is_cuda:
        if backend == "auto":
            return "torch"
        reason = connected_lif_cupy.cupy_unavailable_reason()
        if reason is not None:
            raise _cupy_cannot_run(reason)
        raise RuntimeError(
            "backend='cupy' needs the input on a CUDA device; move the model and data with "
            ".to('cuda') or use backend='torch' on the CPU."
        )
    index = x.device.index if x.device.index is not None else torch.cuda.current_device()
    reason = connected_lif_cupy.kernel_unavailable_reason(index)
    if reason is None:
        return "cupy"
    if backend == "cupy":
        raise _cupy_cannot_run(reason)
    if index not in _FALLBACK_WARNED:
        _FALLBACK_WARNED.add(index)
        warnings.warn(
            f"ConnectedLIF backend='auto' runs the slower torch backend on cuda:{index}: {reason}. "
            "Install the CuPy build that matches your CUDA driver (pip install 'snn-msa[cuda12]' "
            "or 'snn-msa[cuda13]') for the CuPy kernels, or pass backend='torch' to silence this.",
            RuntimeWarning,
            stacklevel=3,
        )
    return "torch"


class ConnectedLIF(SpikeActivity, torch.nn.Module):
    r"""Connected multistep LIF neuron, input and output ``[T, B, F]``.

    Args:
        features: number of neurons F (the last input dimension).
        strength: scale of the fixed recurrent matrix, ``omega = strength * N(0, 1)``; >= 0.
        tau, v_threshold, v_rest, alpha: as in :class:`~snn_msa.neurons.LIF`.
        seed: seed of ``omega``'s draw (``None``: torch's global generator).
        backend: ``"auto"``, ``"reference"``, ``"torch"`` or ``"cupy"``.

    ``omega`` is a buffer (saved in the state dict, never trained). Besides the
    firing rate, the neuron records the accumulates its recurrence cost in the
    last forward: every spike at ``t-1`` feeds ``F`` neurons at ``t``
    (:attr:`recurrent_accumulates`).

    >>> torch.manual_seed(0) is not None
    True
    >>> neuron = ConnectedLIF(4, strength=0.01, seed=0)
    >>> neuron(torch.full((2, 1, 4), 3.0)).sum().item()
    8.0
    >>> neuron.recurrent_accumulates   # 4 spikes at t=0 feed 4 neurons each at t=1
    16
    """

    def __init__(
        self,
        features: int,
        strength: float = 0.01,
        tau: float = 2.0,
        v_threshold: float = 1.0,
        v_rest: float = 0.0,
        alpha: float = 2.0,
        seed: int | None = None,
        backend: str = "auto",
    ):
        super().__init__()
        if not isinstance(features, int) or features < 1:
            raise ValueError(f"features must be a positive integer (got {features!r}).")
        if not (isinstance(strength, (int, float)) and math.isfinite(strength) and strength >= 0):
            raise ValueError(f"strength must be a finite number >= 0 (got {strength!r}).")
        if backend not in BACKENDS:
            raise ValueError(f"backend must be one of {', '.join(BACKENDS)} (got {backend!r}).")
        self.params = LIFParameters(tau=tau, v_threshold=v_threshold, v_rest=v_rest, alpha=alpha)
        self.features = features
        self.strength = float(strength)
        self.backend = backend
        generator = None if seed is None else torch.Generator().manual_seed(seed)
        omega = torch.randn(features, features, generator=generator) * self.strength
        self.register_buffer("omega", omega)
        self._last_recurrent_spikes: torch.Tensor | None = None

    def forward(self, x: torch.Tensor, valid: torch.Tensor | None = None) -> torch.Tensor:
        """Spikes ``[T, B, F]``; ``valid`` (``[T, B]`` bool) only says which positions the activity counts."""
        check_sequence_input(x, self.features, "ConnectedLIF")
        backend = resolve_backend(self.backend, x)
        # The kernel computes half-precision inputs in float32: omega must not be rounded first.
        omega = self.omega.to(x.device, connected_lif_cupy.kernel_dtype(x.dtype) if backend == "cupy" else x.dtype)
        if backend == "reference":
            spikes = connected_lif_reference(x, omega, self.params)
        elif backend == "torch":
            spikes = ConnectedLIFFunction.apply(x, omega, self.params)
        else:
            from .connected_lif_cupy import ConnectedLIFCupyFunction

            spikes = ConnectedLIFCupyFunction.apply(x, omega, self.params)
        self.record_activity(spikes, valid)
        # Spikes at t-1 drive the recurrence at t, so the last step's spikes feed nothing;
        # spikes at padded positions are not counted (a deployed model runs no padding).
        feeding, _ = valid_counts(spikes[:-1], None if valid is None else valid[:-1])
        self._last_recurrent_spikes = feeding.sum()
        return spikes

    @property
    def recurrent_accumulates(self) -> int:
        """Accumulates of the recurrence in the last forward: sum over t of nnz(s[t-1]) * F.

        With ``strength == 0`` there are no synapses, so the recurrence costs nothing.
        """
        if self._last_recurrent_spikes is None or self.strength == 0:
            return 0
        return int(self._last_recurrent_spikes.item()) * self.features

    def extra_repr(self) -> str:
        p = self.params
        return (
            f"features={self.features}, strength={self.strength}, tau={p.tau}, "
            f"v_threshold={p.v_threshold}, v_rest={p.v_rest}, backend={self.backend!r}"
        )
