"""Atomic file writes: a temporary file beside the target, then ``os.replace``.

A crash or an error while writing leaves the previous file (or none) in place,
never half a file. Every writer of the project (checkpoints, results, tables,
plots, HDF5 stores and pickles) goes through :func:`atomic_path` or
:func:`write_atomic`, so a full disk or an I/O error is reported the same way
everywhere: a :class:`WriteError` whose message is one line naming the file,
what went wrong and, where it is known, how much space was needed and how much
is free.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import tempfile
from pathlib import Path
from typing import Iterator

#: Text in the ``RuntimeError`` that torch's zip writer raises when a write fails
#: (torch reports a full disk as "[enforce fail at inline_container.cc:...] unexpected pos").
TORCH_WRITE_FAILURE = ("inline_container.cc", "PytorchStreamWriter")


class WriteError(OSError):
    """A file could not be written: full disk, quota, permissions, an I/O error.

    The message is one line: the target path, the reason, and (for a full
    disk) the space needed where it is known and the space free. The target is
    left as it was before the write began.
    """


def human_bytes(n: int | float) -> str:
    """``1536`` -> ``"1.5 KiB"``.

    >>> human_bytes(512), human_bytes(3 * 1024**2)
    ('512 B', '3.0 MiB')
    """
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{int(value)} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GiB"  # pragma: no cover - the loop returns


def free_bytes(folder: str | os.PathLike) -> int | None:
    """Free space of the file system that holds ``folder`` (``None`` when it cannot be read)."""
    try:
        return shutil.disk_usage(folder).free
    except OSError:
        return None


def require_free_space(path: str | os.PathLike, needed: int) -> None:
    """Raise :class:`WriteError` when ``needed`` bytes will not fit beside ``path``.

    Writers whose library cannot survive a full disk (HDF5 can crash the
    process) call this before they start.
    """
    target = Path(path)
    free = free_bytes(target.parent)
    if free is not None and needed > free:
        raise WriteError(f"{target}: could not write it: it needs about {human_bytes(needed)} and the file system of "
                         f"{target.parent} has {human_bytes(free)} free. Free some space or write elsewhere; "
                         f"{_kept(target)}.")


def _reason(error: BaseException, folder: Path, needed: int | None) -> str:
    """Why a write failed, in words, with the space figures where they help."""
    code = getattr(error, "errno", None)
    free = free_bytes(folder)
    space = "" if free is None else f"{human_bytes(free)} free in {folder}"
    if needed is not None and space:
        space = f"it needs about {human_bytes(needed)}, {space}"
    torch_failure = isinstance(error, RuntimeError) and any(mark in str(error) for mark in TORCH_WRITE_FAILURE)
    if code in (errno.ENOSPC, errno.EDQUOT) or (torch_failure and free is not None and free < max(needed or 0, 2**20)):
        what = "the disk quota is exceeded" if code == errno.EDQUOT else "no space left on the device"
        return f"{what}" + (f" ({space})" if space else "") + ". Free some space or write elsewhere"
    if code in (errno.EACCES, errno.EPERM):
        return f"permission denied in {folder}. Choose a folder you can write to"
    if code == errno.EROFS:
        return f"{folder} is on a read-only file system. Choose another folder"
    if torch_failure:
        return f"torch's writer stopped ({str(error).strip()})" + (f"; {space}" if space else "")
    if isinstance(error, OSError):
        name = errno.errorcode.get(code, "") if code is not None else ""
        detail = error.strerror or str(error) or type(error).__name__
        return f"{detail}" + (f" ({name})" if name else "")
    return str(error) or type(error).__name__  # pragma: no cover - only OSError and torch's RuntimeError arrive


def is_write_failure(error: BaseException) -> bool:
    """Whether ``error`` is an I/O failure of a write (any ``OSError``, or torch's writer's ``RuntimeError``)."""
    if isinstance(error, OSError):
        return True
    return isinstance(error, RuntimeError) and any(mark in str(error) for mark in TORCH_WRITE_FAILURE)


def write_failure(target: str | os.PathLike, error: BaseException, needed: int | None = None) -> WriteError:
    """The one-line :class:`WriteError` for ``error`` raised while writing ``target``."""
    target = Path(target)
    return WriteError(f"{target}: could not write it: {_reason(error, target.parent, needed)}; {_kept(target)}.")


def _kept(target: Path) -> str:
    return "the previous file is unchanged" if target.exists() else "no partial file was left"


def _default_mode(target: Path) -> int:
    """The mode the file gets: the old file's, else what a plain ``open()`` would give under the umask."""
    if target.exists():
        return target.stat().st_mode & 0o7777
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, needed: int | None = None) -> Iterator[str]:
    """Yield a temporary path beside ``path``; move it onto ``path`` only if the block succeeds.

    Args:
        path: the file to write.
        needed: the bytes the write will take, where the caller knows them: the
            free space is checked first and a failure message says how much was
            needed.

    Raises:
        WriteError: the write failed with an ``OSError`` (full disk, quota,
            permissions, I/O) or torch's writer failed; the temporary file is
            removed and ``path`` left as it was. Other errors pass through
            unchanged (after the same clean-up).
    """
    target = Path(path)
    if needed is not None:
        require_free_space(target, needed)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=target.parent)
        os.close(fd)
    except OSError as error:
        raise write_failure(target, error, needed) from None
    try:
        yield tmp
        os.chmod(tmp, _default_mode(target))  # mkstemp makes the file private (0600)
        os.replace(tmp, target)
    except BaseException as error:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if isinstance(error, WriteError) or not is_write_failure(error):
            raise
        raise write_failure(target, error, needed) from None


def write_atomic(path: str | os.PathLike, data: str | bytes) -> Path:
    """Write ``data`` (text as UTF-8) to ``path`` atomically and durably, creating its folder if needed.

    Raises:
        WriteError: the folder cannot be created or the file cannot be written;
            ``path`` is left as it was.
    """
    target = Path(path)
    payload = data.encode("utf-8") if isinstance(data, str) else data
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise write_failure(target, error) from None
    with atomic_path(target, needed=len(payload)) as tmp, open(tmp, "wb") as stream:
        stream.write(payload)
        stream.flush()
        os.fsync(stream.fileno())
    return target
