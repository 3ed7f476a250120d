"""The HDF5 store: an MMSA feature pickle as an h5py file that training reads batch by batch.

Layout: one group per top-level key (``/train``, ``/valid``, ``/test``), one
dataset per key of the pickle, under the same names. Feature arrays are
chunked by rows, so reading a batch touches only that batch's rows; nothing is
compressed, so reads cost no CPU. Strings (``raw_text``, ``id``) are
variable-length UTF-8. Attributes record what each value was in the pickle (an
array of which dtype, a list, a number, a string), so that
:func:`convert_hdf5_to_pickle` gives back the same keys and arrays. Values are
stored as they are, non-finite cells included; the number of non-finite cells
of ``text``, ``audio`` and ``vision`` is stored with them so loading can report
it without a pass over the data.

Converting needs the pickle in memory once (that is how pickles load); training
from the store then needs only a batch at a time.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from .cleaning import FEATURE_KEYS, count_nonfinite
from .errors import DataError
from .files import atomic_output, detect_format, estimated_size, same_file
from .safe_pickle import restricted_load
from .validate import inspect_splits

__all__ = ["convert_pickle_to_hdf5", "convert_hdf5_to_pickle", "write_store", "read_store", "open_store",
           "STORE_FORMAT", "STORE_VERSION"]

STORE_FORMAT = "snn-msa MMSA feature store"
STORE_VERSION = 1
CHUNK_BYTES = 256 * 2**10
NONFINITE_ATTRS = {"-inf": "nonfinite_neg_inf", "+inf": "nonfinite_pos_inf", "nan": "nonfinite_nan"}


def _h5py():
    import h5py

    return h5py


def _row_chunks(shape: tuple[int, ...], itemsize: int) -> tuple[int, ...] | None:
    if not shape or shape[0] == 0 or 0 in shape:
        return None
    row_bytes = max(1, int(np.prod(shape[1:], dtype=np.int64)) * itemsize)
    return (max(1, min(shape[0], CHUNK_BYTES // row_bytes)),) + tuple(shape[1:])


def _string_items(values: Any) -> list[str] | None:
    items = list(values)
    return items if all(isinstance(x, str) for x in items) else None


def _write_value(group: Any, key: str, value: Any, file: str, split: str | None) -> None:
    h5py = _h5py()
    strings = h5py.string_dtype("utf-8")
    if isinstance(value, Mapping):
        sub = group.create_group(key, track_order=True)
        sub.attrs["py_kind"] = "dict"
        for k, v in value.items():
            if not isinstance(k, str):
                raise DataError(f"has a key {k!r} that is not a string; HDF5 names must be strings.", file=file, split=split, key=key)
            _write_value(sub, k, v, file, split if split is not None else key)
        return
    if value is None:
        ds = group.create_dataset(key, data=h5py.Empty("f"))
        ds.attrs["py_kind"] = "none"
        return
    if isinstance(value, str):
        ds = group.create_dataset(key, data=value, dtype=strings)
        ds.attrs["py_kind"] = "str"
        return
    if isinstance(value, (bool, int, float, complex, np.generic)):
        ds = group.create_dataset(key, data=np.asarray(value))
        ds.attrs["py_kind"] = "numpy-scalar" if isinstance(value, np.generic) else "scalar"
        if not isinstance(value, np.generic):
            ds.attrs["py_type"] = type(value).__name__
        return
    if isinstance(value, (list, tuple)):
        kind = type(value).__name__
        items = _string_items(value)
        if items is not None:
            ds = group.create_dataset(key, data=np.array(items, dtype=object), dtype=strings)
        else:
            try:
                array = np.asarray(value)
            except ValueError:
                array = np.empty(0, dtype=object)
            if array.dtype.kind not in "biufc" and len(value):
                raise DataError(f"is a {kind} of {type(value[0]).__name__}; the store holds numbers and strings only.", file=file, split=split, key=key)
            ds = group.create_dataset(key, data=array if len(value) else np.zeros(0), chunks=_row_chunks(array.shape, array.dtype.itemsize))
        ds.attrs["py_kind"] = kind
        ds.attrs["items"] = "numpy" if len(value) and isinstance(value[0], np.generic) else "python"
        return
    if isinstance(value, np.ndarray):
        if value.dtype.kind in "biufcS":
            ds = group.create_dataset(key, data=value, chunks=_row_chunks(value.shape, value.dtype.itemsize))
        elif value.dtype.kind == "U" or (value.dtype.kind == "O" and _string_items(value.reshape(-1)) is not None):
            ds = group.create_dataset(key, data=value.astype(object), dtype=strings)
            ds.attrs["str_dtype"] = value.dtype.str if value.dtype.kind == "U" else "object"
        else:
            raise DataError(f"is an array of {value.dtype} holding non-string objects; the store holds numbers and strings only.", file=file, split=split, key=key)
        ds.attrs["py_kind"] = "ndarray"
        if split is not None and key in FEATURE_KEYS and value.dtype.kind == "f":
            counts = count_nonfinite(value)
            for kind, attr in NONFINITE_ATTRS.items():
                ds.attrs[attr] = counts[kind]
        return
    raise DataError(f"is a {type(value).__name__}; the store holds dicts, arrays, lists, strings and numbers only.", file=file, split=split, key=key)


def write_store(data: Mapping, path: str | os.PathLike, *, source: str | None = None) -> Path:
    """Write an MMSA feature dict to an HDF5 store at ``path``, atomically.

    The free space is checked against :func:`~snn_msa.data.files.estimated_size`
    before the HDF5 library is called: on a full disk it can crash the whole
    process (a segmentation fault after its own tracebacks), past any ``except``.

    Raises:
        snn_msa.atomic.WriteError: too little free space, or the write failed;
            ``path`` is left as it was.
    """
    if not isinstance(data, Mapping):
        raise DataError(f"holds a {type(data).__name__}; expected a dict of splits.", file=source)
    h5py = _h5py()
    name = source or os.fspath(path)
    with atomic_output(path, needed=estimated_size(data)) as tmp:
        with h5py.File(tmp, "w", track_order=True) as f:  # keys keep the pickle's order
            f.attrs["format"] = STORE_FORMAT
            f.attrs["format_version"] = STORE_VERSION
            if source is not None:
                f.attrs["source"] = os.path.basename(source)
            for key, value in data.items():
                if not isinstance(key, str):
                    raise DataError(f"has a top-level key {key!r} that is not a string.", file=name)
                _write_value(f, key, value, name, None)
            from .nonfinite import record_valid_counts  # here: nonfinite imports this module

            record_valid_counts(f, name)
    return Path(path)


def _read_value(node: Any) -> Any:
    h5py = _h5py()
    kind = node.attrs.get("py_kind", "dict" if isinstance(node, h5py.Group) else "ndarray")
    if isinstance(node, h5py.Group):
        return {k: _read_value(node[k]) for k in node}
    if kind == "none":
        return None
    is_string = h5py.check_string_dtype(node.dtype) is not None
    value = node.asstr()[()] if is_string else node[()]
    if kind == "str":
        return value
    if kind in ("scalar", "numpy-scalar"):
        if kind == "numpy-scalar":
            return value[()] if isinstance(value, np.ndarray) else value
        return {"bool": bool, "int": int, "float": float, "complex": complex}[node.attrs["py_type"]](value)
    if kind in ("list", "tuple"):
        items = list(value) if node.attrs.get("items") == "numpy" else np.asarray(value).tolist()
        if is_string:
            items = [str(x) for x in value]
        return items if kind == "list" else tuple(items)
    if is_string:
        str_dtype = node.attrs.get("str_dtype", "object")
        array = np.empty(np.shape(value), dtype=object)
        array[...] = value
        return array if str_dtype == "object" else array.astype(str_dtype)
    return value


def open_store(path: str | os.PathLike) -> Any:
    """Open an HDF5 store read-only (an ``h5py.File``); corrupt files raise :class:`DataError`."""
    h5py = _h5py()
    name = os.fspath(path)
    try:
        return h5py.File(name, "r")
    except OSError as err:
        raise DataError(f"could not open the HDF5 file ({err}): it looks truncated or corrupt. Convert it again.", file=name) from None


def read_store(path: str | os.PathLike) -> dict:
    """The whole store as the dict the pickle held (every array read into memory)."""
    with open_store(path) as f:
        try:
            return {k: _read_value(f[k]) for k in f}
        except (OSError, KeyError, ValueError) as err:
            raise DataError(f"could not read the HDF5 file ({err}): it looks truncated or corrupt.", file=os.fspath(path)) from None


def stored_nonfinite(dataset: Any) -> dict[str, int] | None:
    """Non-finite counts recorded at conversion, or ``None`` for a store written elsewhere."""
    if not all(attr in dataset.attrs for attr in NONFINITE_ATTRS.values()):
        return None
    return {kind: int(dataset.attrs[attr]) for kind, attr in NONFINITE_ATTRS.items()}


def _check_paths(src: str | os.PathLike, dst: str | os.PathLike, want: str) -> None:
    if os.path.exists(dst) and same_file(src, dst):
        raise DataError("the output is the input file; give another output name.", file=os.fspath(dst))
    found = detect_format(src)
    if found != want:
        raise DataError(f"is {'an HDF5 store' if found == 'hdf5' else 'a pickle'}, not {'a pickle' if want == 'pickle' else 'an HDF5 store'}.", file=os.fspath(src))


def _require_valid(data: Any, name: str) -> None:
    inspect_splits(data, name).raise_first_error()


def convert_pickle_to_hdf5(src: str | os.PathLike, dst: str | os.PathLike) -> Path:
    """Convert an MMSA feature pickle to an HDF5 store (safe load, checked, written atomically).

    Raises:
        DataError: the pickle is unsafe, corrupt or not a valid MMSA feature file,
            or ``dst`` is ``src``. ``dst`` is then left as it was.
    """
    _check_paths(src, dst, "pickle")
    data = restricted_load(src)
    _require_valid(data, os.fspath(src))
    return write_store(data, dst, source=os.fspath(src))


def convert_hdf5_to_pickle(src: str | os.PathLike, dst: str | os.PathLike) -> Path:
    """Convert an HDF5 store back to an MMSA feature pickle with the same keys and arrays (atomic)."""
    _check_paths(src, dst, "hdf5")
    data = read_store(src)
    _require_valid(data, os.fspath(src))
    from .synthetic import write_pickle

    return write_pickle(data, dst)
