"""Training and evaluation of every zoo model: one trainer, MMSA's procedure.

>>> from snn_msa.training import TrainSettings
>>> TrainSettings(model="sgmt-tav", epochs=3).recipe().max_epochs
3

- :class:`TrainSettings`: what to run (model, data, seeds, recipe overrides).
- :func:`train`: trains once per seed, tests each seed's best weights once and
  returns (and writes) ``results.json``.
- :func:`evaluate_checkpoint`: rebuilds a model from a checkpoint alone and
  scores it on a split.
"""

from .errors import CheckpointError, NonFiniteLossError, TrainingError
from .evaluate import evaluate_checkpoint
from .settings import Recipe, TrainSettings, resolve_device
from .trainer import train

__all__ = [
    "CheckpointError",
    "NonFiniteLossError",
    "Recipe",
    "TrainSettings",
    "TrainingError",
    "evaluate_checkpoint",
    "resolve_device",
    "train",
]
