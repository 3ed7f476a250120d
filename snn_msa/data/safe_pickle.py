"""Loading MMSA feature pickles without letting them run code.

A pickle is a small program: its ``GLOBAL`` opcodes name any importable
callable and its ``REDUCE`` opcodes call it, so ``pickle.load`` on a file from
elsewhere can run anything. :class:`RestrictedUnpickler` resolves only the
globals that numpy arrays, numpy scalars and plain containers need; any other
name is refused when the unpickler meets it, which is before it could be called.

What is admitted (numpy 1.x writes ``numpy.core``, numpy 2.x ``numpy._core``):

- ``numpy.ndarray``, ``numpy.dtype`` and ``numpy.(_)core.multiarray._reconstruct``:
  every array pickled with protocols 0 to 4;
- ``numpy.(_)core.numeric._frombuffer``: arrays pickled with protocol 5;
- ``numpy.(_)core.multiarray.scalar``: numpy scalars (``np.float32(1.0)``);
- ``builtins.complex`` (a number) and ``_codecs.encode`` restricted to the
  ``latin1`` codec, which protocols 0 to 2 use to store bytes;
- ``collections.OrderedDict``: a dict, as some tools write the splits.

Dicts, lists, tuples, strings, bytes, ints, floats, booleans and ``None`` have
their own opcodes and need no global at all.

>>> import io, pickle, numpy as np
>>> restricted_loads(pickle.dumps({"audio": np.zeros((2, 3), np.float32)}))["audio"].shape
(2, 3)
>>> restricted_loads(pickle.dumps(print))
Traceback (most recent call last):
...
snn_msa.data.errors.DataError: <bytes>: refused to load the global 'builtins.print': a feature file may only hold numpy arrays, lists, dicts, strings and numbers, and a pickle that names anything else could run code when loaded. Nothing from the file was run. Re-create the file with MMSA's tools, or load it yourself only if you trust where it came from.
"""

from __future__ import annotations

import collections
import importlib
import io
import os
import pickle
from typing import Any, Callable

import numpy as np

from .errors import DataError

__all__ = ["RestrictedUnpickler", "restricted_load", "restricted_loads", "ALLOWED_GLOBALS"]


def _numpy_core(submodule: str, name: str) -> Callable:
    # numpy 2 renamed numpy.core to numpy._core; resolve to the real object
    # without importing the deprecated alias.
    for package in ("numpy._core", "numpy.core"):
        try:
            module = importlib.import_module(f"{package}.{submodule}")
        except ImportError:
            continue
        if hasattr(module, name):
            return getattr(module, name)
    raise ImportError(f"numpy has no {submodule}.{name}")  # pragma: no cover


class _Refused(pickle.UnpicklingError):
    """An admitted global called with arguments it is not admitted for."""


def _latin1_encode(text: str, encoding: str = "utf-8") -> bytes:
    """``_codecs.encode`` as protocols 0-2 use it for bytes; other codecs are refused."""
    if not (isinstance(text, str) and isinstance(encoding, str) and encoding.lower().replace("-", "").replace("_", "") == "latin1"):
        raise _Refused(f"refused to call _codecs.encode with the codec {encoding!r}; only 'latin1' is admitted")
    return text.encode("latin1")


def _build_allowed() -> dict[tuple[str, str], Any]:
    reconstruct = _numpy_core("multiarray", "_reconstruct")
    scalar = _numpy_core("multiarray", "scalar")
    frombuffer = _numpy_core("numeric", "_frombuffer")
    allowed: dict[tuple[str, str], Any] = {
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): np.dtype,
        ("builtins", "complex"): complex,
        ("__builtin__", "complex"): complex,  # protocols 0-2 write Python 2's name
        ("_codecs", "encode"): _latin1_encode,
        ("collections", "OrderedDict"): collections.OrderedDict,
    }
    for package in ("numpy.core", "numpy._core"):
        allowed[(f"{package}.multiarray", "_reconstruct")] = reconstruct
        allowed[(f"{package}.multiarray", "scalar")] = scalar
        allowed[(f"{package}.numeric", "_frombuffer")] = frombuffer
    return allowed


ALLOWED_GLOBALS: dict[tuple[str, str], Any] = _build_allowed()
"""``(module, name)`` -> the object handed to the unpickler; nothing else resolves."""


class RestrictedUnpickler(pickle.Unpickler):
    """A :class:`pickle.Unpickler` whose ``find_class`` admits only :data:`ALLOWED_GLOBALS`.

    Args:
        file: a binary file object positioned at the pickle.
        name: the file's name, for error messages.
    """

    def __init__(self, file: io.BufferedIOBase, name: str = "<pickle>") -> None:
        # latin1: Python 2 pickles store an array's bytes as a str; latin1 gives them back
        # unchanged (numpy's advice). Pickles written by Python 3 hold no such strings.
        super().__init__(file, encoding="latin1")
        self.name = name

    def find_class(self, module: str, name: str) -> Any:  # noqa: D102 - pickle hook
        try:
            return ALLOWED_GLOBALS[(module, name)]
        except KeyError:
            raise DataError(
                f"refused to load the global '{module}.{name}': a feature file may only hold numpy "
                "arrays, lists, dicts, strings and numbers, and a pickle that names anything else "
                "could run code when loaded. Nothing from the file was run. Re-create the file with "
                "MMSA's tools, or load it yourself only if you trust where it came from.",
                file=self.name,
            ) from None

    def persistent_load(self, pid: Any) -> Any:  # noqa: D102 - pickle hook
        raise DataError(f"refused a persistent id ({pid!r}): not a plain MMSA feature pickle.", file=self.name)


def _load(stream: io.BufferedIOBase, name: str) -> Any:
    try:
        return RestrictedUnpickler(stream, name).load()
    except DataError:
        raise
    except _Refused as err:
        raise DataError(f"{err}: not a plain MMSA feature pickle. Nothing from the file was run.", file=name) from None
    except MemoryError:
        raise DataError("ran out of memory while loading the pickle; convert it to HDF5 on a "
                        "machine with more memory (snn-msa data convert IN.pkl OUT.h5).", file=name) from None
    except Exception as err:  # corrupt input surfaces as many exception types
        detail = str(err) or type(err).__name__
        raise DataError(
            f"could not read the pickle ({detail}): the file looks truncated or corrupt. "
            "Copy it again or re-create it.",
            file=name,
        ) from None


def restricted_load(path: str | os.PathLike) -> Any:
    """Unpickle the file at ``path`` with :class:`RestrictedUnpickler`.

    Raises:
        DataError: a refused global, or a truncated or corrupt pickle.
    """
    name = os.fspath(path)
    with open(name, "rb") as stream:
        return _load(stream, name)


def restricted_loads(data: bytes, name: str = "<bytes>") -> Any:
    """Unpickle ``data`` with :class:`RestrictedUnpickler` (see :func:`restricted_load`)."""
    return _load(io.BytesIO(data), name)
