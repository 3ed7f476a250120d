"""What kind of file a path holds, and writing files so that no half is ever left."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from ..atomic import atomic_path
from .errors import DataError

HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
PICKLE_SUFFIXES = (".pkl", ".pickle", ".pk")
HDF5_SUFFIXES = (".h5", ".hdf5", ".hdf")

# Signatures of files people mistake for feature files, for a better message.
_OTHER_SIGNATURES = {
    b"\x1f\x8b": "a gzip archive (decompress it first)",
    b"PK\x03\x04": "a zip archive, perhaps a .npz or a torch checkpoint (unpack it first)",
    b"\x93NUMPY": "a single .npy array, not an MMSA feature dict",
    b"BZh": "a bzip2 archive (decompress it first)",
    b"\xfd7zXZ": "an xz archive (decompress it first)",
}


def _hdf5_at(head: bytes, stream, size: int) -> bool:
    if head.startswith(HDF5_SIGNATURE):
        return True
    # An HDF5 superblock may follow a user block of 512, 1024, 2048, ... bytes.
    offset = 512
    while offset + len(HDF5_SIGNATURE) <= size:
        stream.seek(offset)
        if stream.read(len(HDF5_SIGNATURE)) == HDF5_SIGNATURE:
            return True
        offset *= 2
    return False


def detect_format(path: str | os.PathLike) -> str:
    """``"hdf5"`` or ``"pickle"``, judged by the file's first bytes, not its name.

    Raises:
        DataError: the file is missing, empty, or neither a pickle nor HDF5.
    """
    name = os.fspath(path)
    if not os.path.exists(name):
        raise DataError("no such file. Check the path given to --data.", file=name)
    if os.path.isdir(name):
        raise DataError("is a folder; give the feature file inside it (for example unaligned.pkl).", file=name)
    size = os.path.getsize(name)
    if size == 0:
        raise DataError("the file is empty (0 bytes): the copy or conversion that made it did not finish.", file=name)
    with open(name, "rb") as stream:
        head = stream.read(16)
        if _hdf5_at(head, stream, size):
            return "hdf5"
    # Protocol 2+ pickles open with PROTO n; protocols 0 and 1 with a container opcode.
    if (len(head) > 1 and head[0] == 0x80 and 2 <= head[1] <= 5) or head[:1] in (b"(", b"}", b"]"):
        return "pickle"
    for signature, what in _OTHER_SIGNATURES.items():
        if head.startswith(signature):
            raise DataError(f"this is {what}; expected an MMSA feature pickle or an snn-msa HDF5 store.", file=name)
    raise DataError(
        f"not a pickle or an HDF5 file (it starts with {head[:8]!r}); expected an MMSA feature pickle "
        "(.pkl) or an HDF5 store made by 'snn-msa data convert'.",
        file=name,
    )


def format_from_suffix(path: str | os.PathLike) -> str | None:
    """``"pickle"``, ``"hdf5"`` or ``None`` from the file name's extension.

    >>> format_from_suffix("x/unaligned.PKL"), format_from_suffix("a.h5"), format_from_suffix("a.txt")
    ('pickle', 'hdf5', None)
    """
    suffix = Path(path).suffix.lower()
    if suffix in PICKLE_SUFFIXES:
        return "pickle"
    if suffix in HDF5_SUFFIXES:
        return "hdf5"
    return None


def same_file(a: str | os.PathLike, b: str | os.PathLike) -> bool:
    """Whether two paths name the same file (also through links)."""
    try:
        return os.path.samefile(a, b)
    except OSError:
        return Path(a).resolve() == Path(b).resolve()


#: What a written feature file may take beyond its arrays' bytes: HDF5 chunk and
#: string overhead, pickle framing. Measured with benchmarks/write_size_margin.py:
#: synthetic SIMS- and MOSI-shaped files are within 2 % of their arrays' bytes
#: (docs/data.md); the margin is generous on purpose.
SIZE_MARGIN = 0.10
SIZE_SLACK = 1 << 20


def estimated_size(data: Any) -> int:
    """Bytes a feature dict takes when written (its arrays' bytes, plus :data:`SIZE_MARGIN` and :data:`SIZE_SLACK`).

    A walk in a loop over dicts, lists and arrays (no recursion, so a hostile
    nesting cannot overflow the stack); strings count their UTF-8 bytes, every
    other leaf 8 bytes.

    >>> estimated_size({"train": {"audio": np.zeros((2, 3, 4), np.float32)}}) == int(96 * 1.1) + (1 << 20)
    True
    """
    total, pending = 0, [data]
    while pending:
        value = pending.pop()
        if isinstance(value, Mapping):
            pending.extend(value.values())
        elif isinstance(value, (list, tuple)):
            pending.extend(value)
        elif isinstance(value, np.ndarray) and value.dtype.kind == "O":
            pending.extend(value.reshape(-1).tolist())
        elif isinstance(value, np.ndarray):
            total += value.nbytes
        elif isinstance(value, (str, bytes)):
            total += len(value.encode("utf-8") if isinstance(value, str) else value)
        else:
            total += 8
    return int(total * (1 + SIZE_MARGIN)) + SIZE_SLACK


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike, needed: int | None = None) -> Iterator[str]:
    """Yield a temporary path beside ``path``; move it onto ``path`` only if the block succeeds.

    On any error the temporary file is removed and an existing ``path`` is left
    as it was. With ``needed`` (bytes), a file system with less free space is
    refused before anything is written (see :func:`snn_msa.atomic.require_free_space`).

    Raises:
        DataError: ``path`` is a folder, or its folder does not exist.
        snn_msa.atomic.WriteError: not enough free space, or the write failed.
    """
    target = Path(path)
    if target.is_dir():
        raise DataError("is a folder; give a file name to write.", file=str(target))
    if not target.parent.exists():
        raise DataError(f"the folder {str(target.parent)!r} does not exist; create it first.", file=str(target))
    with atomic_path(target, needed=needed) as tmp:
        yield tmp
