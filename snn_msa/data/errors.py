"""The one error type of the data layer."""

from __future__ import annotations

import os


class DataError(Exception):
    """A feature file that cannot be used, with where the problem is and what to do.

    The message names the file, and the split and key where they are known, so
    that the command line can print it as it is (``click.ClickException``).

    >>> str(DataError("labels lie outside [-1, 1]", file="a.pkl", split="test", key="regression_labels"))
    "a.pkl: split 'test', key 'regression_labels': labels lie outside [-1, 1]"
    """

    def __init__(
        self,
        message: str,
        *,
        file: str | os.PathLike | None = None,
        split: str | None = None,
        key: str | None = None,
    ) -> None:
        self.file = None if file is None else os.fspath(file)
        self.split = split
        self.key = key
        self.reason = message
        super().__init__(where(self.file, split, key) + message)


def where(file: str | None, split: str | None = None, key: str | None = None) -> str:
    """The ``"FILE: split 'S', key 'K': "`` prefix of a message; empty parts are left out.

    >>> where("a.pkl", "train")
    "a.pkl: split 'train': "
    """
    parts = []
    if split is not None:
        parts.append(f"split {split!r}")
    if key is not None:
        parts.append(f"key {key!r}")
    head = ", ".join(parts)
    if file is not None:
        head = f"{file}: {head}" if head else str(file)
    return f"{head}: " if head else ""
