"""TensorBoard event files of a training run (``snn-msa train --tensorboard DIR``).

One folder per seed, ``DIR/seed-<s>``, with one point per epoch (the step is
the epoch number) of:

- ``loss/train``: the multi-task training loss; ``loss/valid``: the validation
  MAE of head M (the early-stopping criterion); ``loss/valid_total``: the
  multi-task validation loss;
- ``valid/<metric>``: every MMSA metric of the validation split (``Mult_acc_2``,
  ``MAE``, ``Corr`` ...);
- ``firing_rate/<layer>``: each spiking layer's firing rate on the validation
  split (spikes over valid positions), and ``firing_rate/mean``: all spikes
  over all valid neuron-steps (the rate of the epoch line);
- ``lr``: the optimizer's learning rate in that epoch;

and, at the best epoch once training ends, ``test/<metric>`` and ``loss/test``.
A resumed run drops the points after the epoch it resumes from and goes on.
"""

from __future__ import annotations

import math
import os
from typing import Any


class EpochLog:
    """Writes one seed's per-epoch scalars with ``torch.utils.tensorboard.SummaryWriter``.

    Args:
        folder: the seed's log folder; ``None`` writes nothing (every method does nothing).
        resume_from: the last epoch already done when a run is resumed; points
            logged after it (by a run killed mid-way) are dropped.
    """

    def __init__(self, folder: str | os.PathLike | None, resume_from: int = 0) -> None:
        self._writer = None
        if folder is None:
            return
        from torch.utils.tensorboard import SummaryWriter

        self._writer = SummaryWriter(log_dir=os.fspath(folder), purge_step=resume_from + 1 if resume_from else None)

    def epoch(self, epoch: int, *, train_loss: float, valid_loss: float, valid_total_loss: float,
              metrics: dict[str, float | None], firing_rates: dict[str, float], mean_rate: float | None,
              lr: float) -> None:
        """Log one finished epoch and flush, so a killed run keeps what it logged."""
        if self._writer is None:
            return
        self._scalar("loss/train", train_loss, epoch)
        self._scalar("loss/valid", valid_loss, epoch)
        self._scalar("loss/valid_total", valid_total_loss, epoch)
        for key, value in metrics.items():
            self._scalar(f"valid/{key}", value, epoch)
        for layer, rate in firing_rates.items():
            self._scalar(f"firing_rate/{layer}", rate, epoch)
        self._scalar("firing_rate/mean", mean_rate, epoch)
        self._scalar("lr", lr, epoch)
        self._writer.flush()

    def test(self, best_epoch: int, metrics: dict[str, float | None], loss: float) -> None:
        """Log the test metrics of the best epoch's weights, at that epoch."""
        if self._writer is None:
            return
        for key, value in metrics.items():
            self._scalar(f"test/{key}", value, best_epoch)
        self._scalar("loss/test", loss, best_epoch)
        self._writer.flush()

    def close(self) -> None:
        """Flush and close the event file."""
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    def _scalar(self, tag: str, value: Any, step: int) -> None:
        # A metric that is undefined (None, NaN: e.g. Corr of constant predictions) is left out, not drawn as 0.
        if value is None or not math.isfinite(float(value)):
            return
        self._writer.add_scalar(tag, float(value), step)
