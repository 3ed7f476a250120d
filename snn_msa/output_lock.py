"""One run per output folder: an OS-level lock held on ``--out`` for as long as a run writes there.

:func:`hold_output` takes an exclusive ``flock`` (through py-filelock's
``FileLock``) on ``DIR/.snn-msa.lock`` and writes who holds it beside the lock,
in ``DIR/.snn-msa.lock.holder`` (JSON: pid, host, command, start time). The
operating system drops a ``flock`` when its process ends, however it ends, so
a run killed with SIGKILL leaves no stale lock: the next run (``--resume``)
takes the folder over and says whose holder record it found. A second run
aimed at a held folder does not wait: it stops at once with
:class:`OutputBusyError`, whose one-line message names the folder and the
holder.

The lock is per process and re-entrant: a process that already holds a folder
(the command line around the trainer, say) passes through a second
``hold_output`` on it. Different folders are independent, so an experiment
holding ``DIR`` trains its runs in ``DIR/runs/<name>``, each held in turn.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import os
import socket
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from filelock import FileLock, Timeout

from .atomic import write_atomic, write_failure

LOCK_NAME = ".snn-msa.lock"
HOLDER_NAME = ".snn-msa.lock.holder"

# Folders this process holds (resolved path -> how many nested holds), so a nested hold passes through.
_HELD: dict[str, int] = {}


class OutputBusyError(RuntimeError):
    """The output folder is held by another running process; the message names the folder and the holder."""


@dataclass(frozen=True)
class OutputHold:
    """A held output folder.

    Attributes:
        folder: the folder held.
        taken_over: the holder record left by a run that ended without
            releasing the folder (killed, crashed, power lost), or ``None``.
    """

    folder: Path
    taken_over: dict[str, Any] | None = None


def describe_holder(holder: dict[str, Any] | None) -> str:
    """``"pid 4242 on host-a ('snn-msa train ...', since 2026-12-01 21:40:00 UTC)"``; a fallback when unknown.

    >>> describe_holder({"pid": 7, "host": "lab", "command": "snn-msa train", "started": "2026-12-01 21:40:00 UTC"})
    "pid 7 on lab ('snn-msa train', since 2026-12-01 21:40:00 UTC)"
    """
    if not holder:
        return "a process that has not yet recorded itself (it is starting)"
    return (f"pid {holder.get('pid', '?')} on {holder.get('host', '?')} "
            f"({holder.get('command', '?')!r}, since {holder.get('started', '?')})")


def read_holder(folder: str | os.PathLike) -> dict[str, Any] | None:
    """The holder record of ``folder``, or ``None`` when there is none or it cannot be read."""
    try:
        record = json.loads((Path(folder) / HOLDER_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) else None


def _this_process(command: str | None) -> dict[str, Any]:
    return {
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "command": command or " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]),
        "started": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC"),
    }


@contextlib.contextmanager
def hold_output(folder: str | os.PathLike, command: str | None = None) -> Iterator[OutputHold]:
    """Hold ``folder`` (created if missing) for this process while the block runs.

    Args:
        folder: the output folder (``--out``).
        command: how the holder record names this run (default: the command line).

    Raises:
        OutputBusyError: another process holds ``folder``; nothing was written.
        snn_msa.atomic.WriteError: the folder or its lock file cannot be created.
    """
    path = Path(folder).expanduser()
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise write_failure(path / LOCK_NAME, error) from None
    key = str(path.resolve())
    if key in _HELD:
        _HELD[key] += 1
        try:
            yield OutputHold(path)
        finally:
            _HELD[key] -= 1
        return

    lock = FileLock(str(path / LOCK_NAME))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        raise OutputBusyError(
            f"{path} is in use by another run: {describe_holder(read_holder(path))}. Wait for it to finish, stop it, "
            "or choose another --out."
        ) from None
    except OSError as error:
        raise write_failure(path / LOCK_NAME, error) from None
    _HELD[key] = 1
    try:
        stale = read_holder(path)  # a record we can lock over was left by a process that is gone
        write_atomic(path / HOLDER_NAME, json.dumps(_this_process(command), indent=2) + "\n")
        yield OutputHold(path, stale)
    finally:
        del _HELD[key]
        with contextlib.suppress(OSError):
            (path / HOLDER_NAME).unlink()
        lock.release()
