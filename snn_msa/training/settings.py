"""What a training run is asked to do (:class:`TrainSettings`) and the recipe it resolves to.

Every zoo entry carries its recipe on its card (``get_card(name).recipe_for(profile)``,
a :class:`~snn_msa.recipe.Recipe`); a setting left at ``None`` takes the entry's
value, anything else overrides it.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Mapping

import torch

from ..profiles import get_profile
from ..recipe import Recipe
from ..registry import UnknownModelError, get_card
from .errors import TrainingError

DEVICES = ("auto", "cpu", "cuda")
DEFAULT_SEEDS = (1111,)
CLI_THREADS = 1  # what snn-msa train uses unless --threads says otherwise
@dataclass(frozen=True)
class TrainSettings:
    """One ``snn-msa train`` run: which model, which data, and any change to the entry's recipe.

    Attributes:
        model: zoo entry name (see ``snn-msa models``).
        dataset: dataset profile (sims, simsv2, mosi, mosei); ``None`` takes it from
            the file, or ``sims`` for the built-in synthetic data.
        data: an MMSA feature file (.pkl or .h5); ``None`` trains on built-in
            synthetic data shaped like the profile.
        seeds: one run per seed; several give mean and standard deviation.
        epochs: the most epochs (``None``: the entry's ``max_epochs``). Early
            stopping on the validation loss still applies.
        lr, batch_size, patience, weight_decay, grad_clip: ``None`` keeps the
            entry's default (``grad_clip=0`` switches clipping off).
        device: ``auto`` (CUDA when available), ``cpu`` or ``cuda``.
        threads: torch's CPU threads during the run, restored afterwards
            (``None``: leave the process's setting). ``snn-msa train`` passes
            1: the model is bound by its loops over time steps, a second thread
            gains little on an idle machine and loses up to four times when
            other processes share the cores, and a fixed count keeps results
            equal across machines (docs/training.md, Speed).
        out: the run folder (``None``: ``runs/<model>-<dataset>-<time>``).
        model_overrides: keyword overrides of the model's defaults, for example
            ``{"scale1": 1.0, "strength": 0.05}``; ``None`` values are dropped.
        resume: continue the run in ``out`` from its last completed epoch.
        overwrite: replace a finished or started run in ``out``.
        quiet: print nothing (no progress bar, no epoch lines).
        allow_nonfinite: accept data with more than the documented share of
            non-finite feature cells (``snn_msa.data.nonfinite``); they are set to 0.
        tensorboard: a folder for TensorBoard event files (``<dir>/seed-<s>``);
            ``None`` writes none.
    """

    model: str
    dataset: str | None = None
    data: str | None = None
    seeds: tuple[int, ...] = DEFAULT_SEEDS
    epochs: int | None = None
    lr: float | None = None
    batch_size: int | None = None
    patience: int | None = None
    weight_decay: float | None = None
    grad_clip: float | None = None
    device: str = "auto"
    threads: int | None = None
    out: str | None = None
    model_overrides: Mapping[str, Any] = field(default_factory=dict)
    resume: bool = False
    overwrite: bool = False
    quiet: bool = False
    allow_nonfinite: bool = False
    tensorboard: str | None = None

    def __post_init__(self) -> None:
        seeds = (self.seeds,) if isinstance(self.seeds, int) else tuple(self.seeds)
        if not seeds or any(isinstance(s, bool) or not isinstance(s, int) or s < 0 for s in seeds):
            raise TrainingError(f"seeds must be one or more non-negative integers, got {self.seeds!r}.")
        if len(set(seeds)) != len(seeds):
            raise TrainingError(f"seeds must not repeat, got {', '.join(map(str, seeds))}.")
        object.__setattr__(self, "seeds", seeds)
        object.__setattr__(self, "model_overrides", {k: v for k, v in dict(self.model_overrides).items() if v is not None})
        if self.dataset is not None:
            try:
                object.__setattr__(self, "dataset", get_profile(self.dataset).name)
            except ValueError as error:
                raise TrainingError(str(error)) from None
        if self.out is not None:
            object.__setattr__(self, "out", str(self.out))
        if self.data is not None:
            object.__setattr__(self, "data", str(self.data))
        if self.tensorboard is not None:
            object.__setattr__(self, "tensorboard", str(self.tensorboard))
        _check_positive("epochs", self.epochs, integer=True)
        _check_positive("batch_size", self.batch_size, integer=True)
        _check_positive("patience", self.patience, integer=True)
        _check_positive("threads", self.threads, integer=True)
        _check_positive("lr", self.lr)
        _check_non_negative("weight_decay", self.weight_decay)
        _check_non_negative("grad_clip", self.grad_clip)
        if self.device not in DEVICES:
            raise TrainingError(f"device must be one of {', '.join(DEVICES)}, got {self.device!r}.")
        if self.resume and self.overwrite:
            raise TrainingError("resume and overwrite exclude each other: resume continues the run in out, overwrite replaces it.")

    def recipe(self, profile: str | None = None) -> Recipe:
        """The entry's recipe on the ``profile`` data set (default: this run's) with this run's overrides applied."""
        try:
            card = get_card(self.model)
        except UnknownModelError as error:
            raise TrainingError(str(error)) from None
        return card.recipe_for(profile or self.dataset).with_changes(
            lr=self.lr, batch_size=self.batch_size, max_epochs=self.epochs, patience=self.patience,
            weight_decay=self.weight_decay, grad_clip=self.grad_clip,
        )

    def out_dir(self, profile: str) -> Path:
        """The run folder: ``out``, or ``runs/<model>-<dataset>-<YYYYmmdd-HHMMSS>``."""
        if self.out is not None:
            return Path(self.out).expanduser()
        return Path("runs") / f"{self.model}-{profile}-{time.strftime('%Y%m%d-%H%M%S')}"

    def with_changes(self, **changes: Any) -> "TrainSettings":
        """A copy with some fields changed (the settings are frozen)."""
        return replace(self, **changes)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form (lists for tuples)."""
        d = asdict(self)
        d["seeds"] = list(self.seeds)
        d["model_overrides"] = dict(self.model_overrides)
        return d


def _check_positive(name: str, value: Any, integer: bool = False) -> None:
    if value is None:
        return
    kind = int if integer else (int, float)
    if isinstance(value, bool) or not isinstance(value, kind) or not math.isfinite(value) or value <= 0:
        want = "a positive integer" if integer else "a positive number"
        raise TrainingError(f"{name} must be {want}, got {value!r}.")


def _check_non_negative(name: str, value: Any) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
        raise TrainingError(f"{name} must be a number >= 0, got {value!r}.")


def use_threads(threads: int | None) -> int:
    """Set torch's CPU threads (``None`` or 0: leave them) and return the count before, to restore."""
    before = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    return before


def resolve_device(device: str) -> torch.device:
    """``auto`` is CUDA when torch sees a device, else the CPU; ``cuda`` without one is an error."""
    if device not in DEVICES:
        raise TrainingError(f"device must be one of {', '.join(DEVICES)}, got {device!r}.")
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        build = f"torch {torch.__version__}" + (" (a CPU-only build)" if torch.version.cuda is None else "")
        raise TrainingError(f"--device cuda was asked for, but {build} sees no CUDA device; use --device cpu or auto.")
    return torch.device(device)
