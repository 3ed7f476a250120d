"""Neuron parameters and the ATan surrogate, shared by every neuron backend."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class LIFParameters:
    r"""Parameters of the paper's LIF neuron (eq. 1), in units of the input current.

    Attributes:
        tau: membrane time constant in steps (dimensionless, > 1). The potential
            relaxes towards ``v_rest`` by a factor ``1 - 1/tau`` per step.
        v_threshold: firing threshold :math:`V_{th}`.
        v_rest: resting (and hard-reset) potential :math:`V_{rest}`.
        alpha: sharpness of the ATan surrogate gradient
            :math:`g'(x) = \frac{\alpha}{2(1 + (\frac{\pi}{2}\alpha x)^2)}`.

    >>> LIFParameters(tau=2.0).tau
    2.0
    >>> LIFParameters(tau=1.0)
    Traceback (most recent call last):
    ...
    ValueError: tau must be greater than 1 (got 1.0): with tau <= 1 the membrane does not leak stably.
    """

    tau: float = 2.0
    v_threshold: float = 1.0
    v_rest: float = 0.0
    alpha: float = 2.0

    def __post_init__(self) -> None:
        if not (isinstance(self.tau, (int, float)) and math.isfinite(self.tau) and self.tau > 1.0):
            raise ValueError(
                f"tau must be greater than 1 (got {self.tau}): with tau <= 1 the membrane does not leak stably."
            )
        if not math.isfinite(self.v_threshold) or not math.isfinite(self.v_rest):
            raise ValueError("v_threshold and v_rest must be finite numbers.")
        if self.v_threshold <= self.v_rest:
            raise ValueError(
                f"v_threshold ({self.v_threshold}) must lie above v_rest ({self.v_rest})."
            )
        if not (math.isfinite(self.alpha) and self.alpha > 0):
            raise ValueError(f"alpha must be a positive number (got {self.alpha}).")


@dataclass(frozen=True)
class NeuronSettings:
    r"""Every neuron setting of a spiking model, passed whole (norse's ``LIFCell(p=...)`` shape).

    SGMT's config stores one of these; :class:`~snn_msa.layers.SpikingLayer` and
    :class:`~snn_msa.attention.MHSGSA` take it as one argument and hand it to
    every neuron they build.

    Attributes:
        tau, v_threshold, v_rest, alpha: the LIF constants (see :class:`LIFParameters`).
            SGMT's threshold is 0.75, not the bare neuron's 1: with V_th = 1 a
            trained model at the paper's scale1 = 0.5 fires about 0.004, below
            the paper's 0.03; with 0.75 it fires about 0.02, at no loss of
            accuracy (docs/experiments.md, "Table 4's firing-rate column").
        strength: the connected neuron's coupling, :math:`\omega = strength \cdot \mathcal{N}(0, 1)`; >= 0.
        backend: the connected neuron's backend (``auto``, ``reference``, ``torch``, ``cupy``).

    >>> NeuronSettings(strength=0.05).lif
    LIFParameters(tau=2.0, v_threshold=0.75, v_rest=0.0, alpha=2.0)
    >>> NeuronSettings(strength=-1.0)
    Traceback (most recent call last):
    ...
    ValueError: strength must be a finite number >= 0 (got -1.0).
    """

    tau: float = 2.0
    v_threshold: float = 0.75
    v_rest: float = 0.0
    alpha: float = 2.0
    strength: float = 0.01
    backend: str = "auto"

    def __post_init__(self) -> None:
        self.lif  # validates the LIF constants
        if not (isinstance(self.strength, (int, float)) and math.isfinite(self.strength) and self.strength >= 0):
            raise ValueError(f"strength must be a finite number >= 0 (got {self.strength!r}).")
        if self.backend not in NEURON_BACKENDS:
            raise ValueError(f"backend must be one of {', '.join(NEURON_BACKENDS)} (got {self.backend!r}).")

    @property
    def lif(self) -> LIFParameters:
        """The LIF constants alone."""
        return LIFParameters(tau=self.tau, v_threshold=self.v_threshold, v_rest=self.v_rest, alpha=self.alpha)


NEURON_BACKENDS = ("auto", "reference", "torch", "cupy")


def atan_surrogate_grad(x: torch.Tensor, alpha: float) -> torch.Tensor:
    r"""Derivative of the ATan surrogate, :math:`\frac{\alpha}{2(1 + (\frac{\pi}{2}\alpha x)^2)}`.

    Written as SpikingJelly 2.x writes it, so that our backward passes agree with
    ``LIFNode`` to the last bit.

    >>> float(atan_surrogate_grad(torch.tensor(0.0), 2.0))
    1.0
    """
    z = x * (math.pi / 2 * alpha)
    return (alpha / 2) / (1 + z * z)


def check_sequence_input(x: torch.Tensor, features: int | None, who: str) -> None:
    """Raise a clear error unless ``x`` is a floating ``[T, B, F]`` tensor (F = ``features`` if given)."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{who} expects a torch.Tensor of shape [T, B, F], got {type(x).__name__}.")
    if x.dim() != 3:
        raise ValueError(
            f"{who} expects input of shape [T, B, F] (time-major; T = sequence length), "
            f"got a tensor of rank {x.dim()} with shape {tuple(x.shape)}."
        )
    if not x.is_floating_point():
        raise TypeError(f"{who} expects a floating-point input, got {x.dtype}.")
    if features is not None and x.shape[-1] != features:
        raise ValueError(
            f"{who} was built for {features} features but got input with {x.shape[-1]} "
            f"(shape {tuple(x.shape)})."
        )
