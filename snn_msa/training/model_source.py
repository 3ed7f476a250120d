"""A model and its data for the commands that inspect one: a trained checkpoint or an untrained zoo entry."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from ..data import MSADataset
from .data_source import load_inspection_data
from .errors import TrainingError
from .evaluate import model_from_checkpoint


@dataclass
class ModelWithData:
    """What an inspecting command works on.

    Attributes:
        model: the network, on the CPU, in eval mode.
        name: its zoo name.
        dataset: the loaded data (the checkpoint's own unless another file was given).
        weights: where the weights come from, in words.
        checkpoint: the loaded checkpoint dict, or None for an untrained entry.
    """

    model: nn.Module
    name: str
    dataset: MSADataset
    weights: str
    checkpoint: dict[str, Any] | None = None


def model_with_data(
    model_name: str | None = None,
    checkpoint: str | os.PathLike | None = None,
    data: str | os.PathLike | None = None,
    profile: str | None = None,
    *,
    overrides: dict[str, Any] | None = None,
    seed: int = 0,
    allow_nonfinite: bool = False,
) -> ModelWithData:
    """The trained model of ``checkpoint`` with its data, or the untrained entry ``model_name`` (seeded) on ``data``.

    ``profile`` (a profile name), when given, must be the data's; the data is
    found as :func:`~snn_msa.training.data_source.load_inspection_data` finds it.
    Raises :class:`TrainingError` (a one-line message) for a name/checkpoint
    mismatch, an unknown model or data whose feature dims do not fit, and
    :class:`~snn_msa.data.DataError` for data that cannot be used or is not of ``profile``.
    ``allow_nonfinite`` accepts data with many non-finite cells (``snn_msa.data.nonfinite``).
    """
    from ..registry import create_model

    if checkpoint is not None:
        path = os.fspath(checkpoint)
        ckpt, model = model_from_checkpoint(path)
        spec = ckpt["model"]
        if model_name is not None and model_name != spec["name"]:
            raise TrainingError(f"--model {model_name} but the checkpoint {path} holds {spec['name']!r}; leave --model "
                                "out or give the matching checkpoint.")
        ds = load_inspection_data(ckpt["data"], data, profile, allow_nonfinite=allow_nonfinite)
        result = ModelWithData(model, spec["name"], ds, f"trained weights from {path}", ckpt)
        dims = tuple(spec["feature_dims"])
    else:
        if model_name is None:
            raise TrainingError("give a model (--model NAME) or a checkpoint (--checkpoint PATH).")
        ds = load_inspection_data(None, data, profile, allow_nonfinite=allow_nonfinite)
        torch.manual_seed(seed)
        try:
            model = create_model(model_name, feature_dims=tuple(ds.feature_dims),
                                 **{k: v for k, v in (overrides or {}).items() if v is not None})
        except ValueError as error:
            raise TrainingError(f"{error} See 'snn-msa models'.") from None
        result = ModelWithData(model, model_name, ds, f"untrained (torch seed {seed})")
        dims = tuple(ds.feature_dims)
    if tuple(ds.feature_dims) != dims:
        raise TrainingError(f"the model takes feature dims {dims} (text, audio, vision) but {ds.source} has "
                            f"{tuple(ds.feature_dims)}; give matching data with --data.")
    result.model.to("cpu").eval()
    return result
