"""What a neuron did in its last forward: spikes fired and neurons simulated."""

from __future__ import annotations

import torch


class SpikeActivity:
    """Mixin that records the spike count of a neuron's last forward.

    Counts are kept as detached tensors so that recording never forces a GPU
    synchronisation; reading a property converts them.
    """

    _last_spikes: torch.Tensor | None = None
    _last_numel: int = 0

    def record_activity(self, spikes: torch.Tensor) -> None:
        self._last_spikes = spikes.detach().sum()
        self._last_numel = spikes.numel()

    @property
    def spike_count(self) -> int:
        """Number of spikes fired in the last forward (0 before any forward)."""
        return 0 if self._last_spikes is None else int(self._last_spikes.item())

    @property
    def neuron_steps(self) -> int:
        """Neurons times steps simulated in the last forward (T * B * F)."""
        return self._last_numel

    @property
    def firing_rate(self) -> float:
        """Spikes per neuron per step in the last forward, in [0, 1]."""
        return self.spike_count / self._last_numel if self._last_numel else 0.0
