"""The training recipe: one typed, frozen object, defined once.

A zoo card carries its entry's recipe (and, where the entry's source gives
different values per data set, one recipe per data set); a training run
resolves the card's recipe for its data set and applies its own overrides
(:meth:`snn_msa.training.TrainSettings.recipe`).

>>> Recipe(lr=5e-4).with_changes(batch_size=16)
Recipe(lr=0.0005, batch_size=16, max_epochs=40, patience=8, weight_decay=0.0, grad_clip=1.0)
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace
from typing import Any


@dataclass(frozen=True)
class Recipe:
    """The optimisation recipe of one run: Adam, early stopping on the validation loss.

    The defaults are MMSA's usual values (learning rate 1e-3, batch 32, early
    stop after 8 epochs without a better validation loss) and ours for what
    MMSA leaves open (at most 40 epochs, gradient norm clipped at 1).

    Attributes:
        lr: Adam's learning rate.
        batch_size: samples per batch, for training and for evaluation.
        max_epochs: the most epochs to train; early stopping may end the run sooner.
        patience: epochs without a better validation loss before stopping (MMSA: 8).
        weight_decay: Adam's L2 weight decay.
        grad_clip: the largest gradient norm (clipped above it); 0 switches clipping off.
    """

    lr: float = 1e-3
    batch_size: int = 32
    max_epochs: int = 40
    patience: int = 8
    weight_decay: float = 0.0
    grad_clip: float = 1.0

    def __post_init__(self) -> None:
        checks = (
            ("lr", self.lr, False, True),
            ("batch_size", self.batch_size, True, True),
            ("max_epochs", self.max_epochs, True, True),
            ("patience", self.patience, True, True),
            ("weight_decay", self.weight_decay, False, False),
            ("grad_clip", self.grad_clip, False, False),
        )
        for name, value, integer, positive in checks:
            kind = int if integer else (int, float)
            ok = not isinstance(value, bool) and isinstance(value, kind) and math.isfinite(value)
            if not ok or (value <= 0 if positive else value < 0):
                want = ("a positive " if positive else "a non-negative ") + ("integer" if integer else "number")
                raise ValueError(f"recipe {name} must be {want}, got {value!r}.")
        for name in ("lr", "weight_decay", "grad_clip"):
            object.__setattr__(self, name, float(getattr(self, name)))

    def with_changes(self, **changes: Any) -> "Recipe":
        """A copy with the given fields replaced; ``None`` values keep this recipe's value."""
        return replace(self, **{k: v for k, v in changes.items() if v is not None})

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return asdict(self)

    def describe(self) -> str:
        """One short line: ``lr 0.001, batch 32, wd 0, clip 1``."""
        return f"lr {self.lr:g}, batch {self.batch_size}, wd {self.weight_decay:g}, clip {self.grad_clip:g}"
