r"""What a neuron did in its last forward: spikes fired and neurons simulated, per sample.

Only valid positions count. A batch of sequences is padded to one length, but
padding is an artifact of batching, not work a deployed model does, so the
firing rate is

.. math::
    f = \frac{\sum_{b,t,i} s_{t,b,i}\, m_{t,b}}{F \sum_{b,t} m_{t,b}}

with :math:`m_{t,b} = 1` at a real (sample, step) position and 0 at padding.
"""

from __future__ import annotations

import torch


def valid_counts(spikes: torch.Tensor, valid: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-sample spike counts and valid neuron-steps of ``spikes`` ``[T, B, F]``, both ``[B]``.

    ``valid`` is ``[T, B]`` bool (True at real positions) or None (all real).
    Detached; no host synchronisation.

    >>> s = torch.ones(3, 2, 4)
    >>> spikes, steps = valid_counts(s, torch.tensor([[True, True], [True, False], [False, False]]))
    >>> spikes.tolist(), steps.tolist()
    ([8.0, 4.0], [8.0, 4.0])
    """
    spikes = spikes.detach()
    T, B, F = spikes.shape
    if valid is None:
        return spikes.sum(dim=(0, 2)), spikes.new_full((B,), float(T * F))
    weights = valid.to(spikes.dtype)
    # An elementwise product, not a matmul: operation counters must not take this bookkeeping for synapses.
    return (spikes.sum(dim=2) * weights).sum(dim=0), weights.sum(dim=0) * F


class SpikeActivity:
    """Mixin that records, per sample, the spikes and valid neuron-steps of a neuron's last forward.

    Counts are kept as detached ``[B]`` tensors so that recording never forces a
    GPU synchronisation; reading a property converts them.
    """

    _sample_spikes: torch.Tensor | None = None
    _sample_steps: torch.Tensor | None = None

    def record_activity(self, spikes: torch.Tensor, valid: torch.Tensor | None = None) -> None:
        self._sample_spikes, self._sample_steps = valid_counts(spikes, valid)

    @property
    def sample_activity(self) -> tuple[torch.Tensor, torch.Tensor] | None:
        """``(spikes, neuron_steps)`` per sample of the last forward, two ``[B]`` tensors (None before any)."""
        if self._sample_spikes is None:
            return None
        return self._sample_spikes, self._sample_steps

    @property
    def spike_count(self) -> int:
        """Spikes fired at valid positions in the last forward (0 before any forward)."""
        return 0 if self._sample_spikes is None else int(self._sample_spikes.sum().item())

    @property
    def neuron_steps(self) -> int:
        """Neurons times valid steps simulated in the last forward (T * B * F without padding)."""
        return 0 if self._sample_steps is None else int(self._sample_steps.sum().item())

    @property
    def firing_rate(self) -> float:
        """Spikes per neuron per valid step in the last forward, in [0, 1]."""
        steps = self.neuron_steps
        return self.spike_count / steps if steps else 0.0
