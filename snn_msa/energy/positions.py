r"""What a model tells the energy counter: the stage of each part and its valid positions.

The counter cannot guess which (sample, step) positions of a tensor are real
and which are padding, nor what a part of a model is for. A model says so with
one optional method, the **energy-scope protocol**::

    def energy_scopes(self, text, audio, vision, audio_lengths=None,
                      vision_lengths=None, text_lengths=None) -> list[Scope]:

It takes the arguments of ``forward`` and returns one :class:`Scope` per part
(a module-name prefix). Every row the counter records under a module is
labelled with the stage and modality of the longest prefix that covers it, and
counts only the positions that the scope's ``valid`` mask marks real. A model
without the method is counted at every position (padding included), with a
warning in the report.

Which axis of a tensor is the batch and which the time depends on the module:
``Conv1d`` inputs are ``[B, C, L]``, an LSTM says ``batch_first``, neurons are
time-major ``[L, B, F]``; for everything else (``Linear``, ``LayerNorm``,
elementwise steps) the scope's ``layout`` says it. A tensor whose leading axes
do not match the mask (pooled features ``[B, F]``, say) is counted whole.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import torch

LAYOUTS = ("batch-first", "time-major")


@dataclass(frozen=True)
class Scope:
    """The stage, modality and valid positions of the modules under ``prefix``.

    Attributes:
        prefix: dotted module-name prefix (``""`` is the whole model).
        stage: what the part does (``projection``, ``single-modal``, ``fusion``, ``head``...).
        modality: ``text``, ``audio``, ``vision``, ``joint`` or ``-``.
        valid: ``[B, L]`` bool, True at real positions; None when every position is real.
        layout: how sequence tensors ``[., ., F]`` under the prefix are laid out.
    """

    prefix: str
    stage: str
    modality: str = "-"
    valid: torch.Tensor | None = None
    layout: str = "batch-first"

    def __post_init__(self) -> None:
        if self.layout not in LAYOUTS:
            raise ValueError(f"layout must be one of {LAYOUTS}, got {self.layout!r}.")
        if self.valid is not None and (self.valid.dim() != 2 or self.valid.dtype != torch.bool):
            raise ValueError(f"valid must be a [B, L] bool tensor, got {self.valid.dtype} {tuple(self.valid.shape)}.")

    def covers(self, name: str) -> bool:
        """Whether module ``name`` lies under this scope's prefix.

        >>> Scope("heads.T", "head").covers("heads.T.1"), Scope("heads.T", "head").covers("heads.TAV.1")
        (True, False)
        """
        return self.prefix == "" or name == self.prefix or name.startswith(self.prefix + ".")

    def mask_for(self, x: torch.Tensor, layout: str | None = None) -> torch.Tensor | None:
        """The valid mask laid out like the two leading axes of ``x`` (``[B, L]`` or ``[L, B]``), or None.

        ``layout`` overrides the scope's (a module that knows its own layout passes it).

        >>> scope = Scope("", "-", valid=torch.tensor([[True, False, False], [True, True, True]]), layout="time-major")
        >>> scope.mask_for(torch.zeros(3, 2, 4)).sum().item(), scope.mask_for(torch.zeros(2, 4))
        (4, None)
        """
        if self.valid is None or x.dim() < 2:
            return None
        batch, length = self.valid.shape
        mask = self.valid.t() if (layout or self.layout) == "time-major" else self.valid
        return mask.to(x.device) if tuple(x.shape[:2]) == tuple(mask.shape) else None


    def valid_elements(self, x: torch.Tensor, layout: str | None = None) -> int | None:
        """Elements of ``x`` at valid positions: its two leading axes as :meth:`mask_for` reads them, or
        attention heads ``[B, h, L, d]``; None if no axes of ``x`` match the mask.

        >>> scope = Scope("", "-", valid=torch.tensor([[True, False, False], [True, True, True]]))
        >>> scope.valid_elements(torch.zeros(2, 3, 5)), scope.valid_elements(torch.zeros(2, 4, 3, 8))
        (20, 128)
        """
        mask = self.mask_for(x, layout)
        if mask is not None:
            return int(mask.sum()) * math.prod(x.shape[2:])
        if self.valid is not None and x.dim() == 4 and (x.shape[0], x.shape[2]) == tuple(self.valid.shape):
            return int(self.valid.sum()) * x.shape[1] * x.shape[3]
        return None


def find_scope(scopes: Sequence[Scope], name: str) -> Scope | None:
    """The scope with the longest prefix that covers module ``name``.

    >>> scopes = [Scope("", "pooling"), Scope("heads", "head")]
    >>> find_scope(scopes, "heads.M.0").stage, find_scope(scopes, "fusion.0").stage
    ('head', 'pooling')
    """
    best = None
    for scope in scopes:
        if scope.covers(name) and (best is None or len(scope.prefix) > len(best.prefix)):
            best = scope
    return best


def valid_mask(lengths: torch.Tensor | None, length: int, batch: int) -> torch.Tensor | None:
    """``[B, L]`` bool mask from per-sample lengths (clamped to [1, L], as the models do), None without lengths.

    >>> valid_mask(torch.tensor([1, 3]), 3, 2).tolist()
    [[True, False, False], [True, True, True]]
    """
    if lengths is None:
        return None
    lengths = torch.as_tensor(lengths).long().view(-1).clamp(1, length)
    if lengths.numel() != batch:
        raise ValueError(f"got {lengths.numel()} lengths for a batch of {batch}.")
    return torch.arange(length, device=lengths.device).unsqueeze(0) < lengths.unsqueeze(1)


def model_scopes(model: torch.nn.Module, inputs: dict) -> list[Scope] | None:
    """The model's scopes for keyword ``inputs`` (None if it does not implement ``energy_scopes``)."""
    method = getattr(model, "energy_scopes", None)
    if method is None:
        return None
    scopes = list(method(**inputs))
    for scope in scopes:
        if not isinstance(scope, Scope):
            raise TypeError(f"{type(model).__name__}.energy_scopes must return Scope objects, got {type(scope).__name__}.")
    return scopes
