"""What a run prints: a progress bar per epoch and one line per epoch.

Lines go through ``echo`` (stdout by default; the CLI sends them to stderr
under ``--json`` so stdout stays pure JSON). The bar goes to stderr and only
shows on a terminal (tqdm's ``disable=None``), so logs and CI output stay clean.
"""

from __future__ import annotations

import sys
from typing import Callable, Iterable, Iterator, TypeVar

from tqdm.auto import tqdm

from .results import format_metrics

T = TypeVar("T")


class Progress:
    """Prints a run's start, epoch and end lines; silent when ``quiet``.

    >>> p = Progress(echo=print)
    >>> p.epoch(3, 40, train_loss=0.8123, valid_loss=0.3012, metrics={"Mult_acc_2": 0.71}, keys=["Mult_acc_2"],
    ...         rate=0.0312, seconds=12.3, best=True)
    epoch  3/40  train 0.8123  valid 0.3012 *  Mult_acc_2 0.7100  rate 0.0312  12.3s
    """

    def __init__(self, quiet: bool = False, echo: Callable[[str], None] | None = None, bars: bool | None = None):
        self.quiet = quiet
        self._echo = echo or (lambda line: print(line, flush=True))
        # tqdm's None means: show on a terminal only.
        self.bars = False if quiet else bars

    def line(self, text: str) -> None:
        """Print one line unless quiet."""
        if not self.quiet:
            self._echo(text)

    def bar(self, items: Iterable[T], total: int, description: str) -> Iterator[T]:
        """``items`` wrapped in a transient progress bar on stderr."""
        disable = True if self.bars is False else (None if self.bars is None else False)
        return iter(tqdm(items, total=total, desc=description, leave=False, file=sys.stderr, disable=disable,
                         dynamic_ncols=True, unit="batch"))

    def epoch(
        self,
        epoch: int,
        max_epochs: int,
        *,
        train_loss: float,
        valid_loss: float,
        metrics: dict[str, float | None],
        keys: list[str],
        rate: float | None,
        seconds: float,
        best: bool,
    ) -> None:
        """The epoch line: losses, validation metrics, mean firing rate, time; ``*`` marks a new best."""
        width = len(str(max_epochs))
        parts = [
            f"epoch {epoch:>{width}}/{max_epochs}",
            f"train {train_loss:.4f}",
            f"valid {valid_loss:.4f}" + (" *" if best else ""),
            format_metrics(metrics, keys),
        ]
        if rate is not None:
            parts.append(f"rate {rate:.4f}")
        parts.append(f"{seconds:.1f}s")
        self.line("  ".join(p for p in parts if p))
