"""One dataset type for every source: an MMSA pickle, an HDF5 store, or built-in synthetic data.

>>> data = load_dataset(None, "mosi", synthetic_sizes=(6, 2, 2))
>>> data.is_synthetic, data.feature_dims, len(data.splits["train"])
(True, (768, 5, 20), 6)
>>> batch = next(iter(data.splits["train"].loader(batch_size=4, shuffle=True, seed=1)))
>>> tuple(batch["audio"].shape), batch["text_lengths"].dtype, sorted(batch["labels"])
((4, 375, 5), torch.int64, ['M'])
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from ..profiles import DatasetProfile, get_profile
from .cleaning import FEATURE_KEYS, clean_features, count_nonfinite
from .errors import DataError
from .files import detect_format
from .hdf5_store import open_store, stored_nonfinite
from .nonfinite import NonfiniteCount, count_splits, judge
from .safe_pickle import restricted_load
from .synthetic import DEFAULT_SIZES, looks_synthetic, make_synthetic
from .validate import SPLITS, Inspection, SplitInfo, inspect_splits, resolve_profile

__all__ = ["load_dataset", "MSADataset", "MSASplit", "BatchLoader"]


class _MemoryFeatures:
    """Cleaned float32 feature arrays held in memory."""

    storage = "memory"

    def __init__(self, text: np.ndarray, audio: np.ndarray, vision: np.ndarray) -> None:
        self.arrays = (text, audio, vision)

    def rows(self, index: np.ndarray) -> tuple[np.ndarray, ...]:
        return tuple(a[index] for a in self.arrays)


class _H5File:
    """An HDF5 store opened read-only, reopened after a fork (h5py handles do not survive one)."""

    def __init__(self, path: str, handle: Any) -> None:
        self.path, self._handle, self._pid = path, handle, os.getpid()

    @property
    def handle(self) -> Any:
        if self._pid != os.getpid() or not self._handle:
            self._handle, self._pid = open_store(self.path), os.getpid()
        return self._handle

    def close(self) -> None:
        if self._handle:
            self._handle.close()


class _H5Features:
    """Feature arrays read from an HDF5 store a batch of rows at a time, cleaned as they are read."""

    storage = "hdf5"

    def __init__(self, store: _H5File, split: str, keys: tuple[str, str, str]) -> None:
        self.store, self.split, self.keys = store, split, keys
        self.rows_read = 0  # rows fetched from disk per modality, for tests and profiling

    def rows(self, index: np.ndarray) -> tuple[np.ndarray, ...]:
        # Read runs of consecutive rows as slices: h5py's fancy indexing with a
        # list of rows is about ten times slower than reading row by row.
        unique, inverse = np.unique(index, return_inverse=True)
        breaks = np.flatnonzero(np.diff(unique) != 1) + 1
        runs = [(int(r[0]), int(r[-1]) + 1) for r in np.split(unique, breaks) if r.size]
        group = self.store.handle[self.split]
        out = []
        for key in self.keys:
            column = group[key]  # the key's HDF5 dataset
            block = np.empty((unique.size,) + column.shape[1:], dtype=column.dtype)
            at = 0
            try:
                for start, stop in runs:
                    block[at : at + stop - start] = column[start:stop]
                    at += stop - start
            except (OSError, RuntimeError) as err:
                raise DataError(f"could not read rows from the HDF5 store ({err}): the file looks damaged.",
                                file=self.store.path, split=self.split, key=key) from None
            out.append(clean_features(block[inverse])[0])
        self.rows_read += int(unique.size)
        return tuple(out)


class MSASplit:
    """One split (train, valid or test): features, lengths, labels and ids of its samples.

    Attributes:
        name: ``"train"``, ``"valid"`` or ``"test"``.
        ids: one id per sample.
        storage: ``"memory"`` or ``"hdf5"`` (read batch by batch).
    """

    def __init__(self, name: str, features: Any, labels: dict[str, np.ndarray],
                 lengths: dict[str, np.ndarray | None], ids: list[str]) -> None:
        self.name = name
        self._features = features
        self._labels = labels
        self._lengths = lengths
        self.ids = ids
        self.storage: str = features.storage

    def __len__(self) -> int:
        return len(self.ids)

    def __repr__(self) -> str:
        return f"MSASplit({self.name!r}, {len(self)} samples, {self.storage})"

    @property
    def label_names(self) -> tuple[str, ...]:
        """``("M",)``, or ``("M", "T", "A", "V")`` with per-modality labels."""
        return tuple(self._labels)

    def labels(self, name: str = "M") -> np.ndarray:
        """All labels of this split as float32 ``[N]``: ``"M"`` (multimodal) or ``"T"``, ``"A"``, ``"V"``."""
        if name not in self._labels:
            raise KeyError(f"split {self.name!r} has no {name!r} labels (it has {', '.join(self._labels)}); "
                           "MOSI and MOSEI carry only the multimodal label 'M'.")
        return self._labels[name].copy()

    def lengths(self, modality: str) -> np.ndarray | None:
        """Valid frames per sample of ``"text"``, ``"audio"`` or ``"vision"``; ``None`` means all frames."""
        values = self._lengths[modality]
        return None if values is None else values.copy()

    def batch(self, index: Any) -> dict[str, Any]:
        """The samples at ``index`` as one batch dict (see :meth:`loader`)."""
        import torch

        index = np.asarray(index, dtype=np.int64).reshape(-1)
        text, audio, vision = self._features.rows(index)

        def lengths(modality: str) -> Any:
            values = self._lengths[modality]
            return None if values is None else torch.from_numpy(values[index])

        return {
            "text": torch.from_numpy(text),
            "audio": torch.from_numpy(audio),
            "vision": torch.from_numpy(vision),
            "text_lengths": lengths("text"),
            "audio_lengths": lengths("audio"),
            "vision_lengths": lengths("vision"),
            "labels": {k: torch.from_numpy(v[index]) for k, v in self._labels.items()},
            "ids": [self.ids[i] for i in index.tolist()],
        }

    def loader(self, batch_size: int, shuffle: bool = False, seed: int = 0, drop_last: bool = False,
               epoch: int = 0) -> "BatchLoader":
        """Batches of this split: a re-iterable that gives the same batches each time it is iterated.

        Each batch is ``{"text": float32 [B, Lt, Dt], "audio": [B, La, Da],
        "vision": [B, Lv, Dv], "text_lengths"/"audio_lengths"/"vision_lengths":
        int64 [B] or None, "labels": {"M": float32 [B], and "T", "A", "V" when
        the file has them}, "ids": list of B str}``.

        Args:
            batch_size: samples per batch.
            shuffle: visit the samples in a random order drawn from ``(seed, epoch)``.
            seed: the run's seed.
            drop_last: leave out a last batch smaller than ``batch_size``.
            epoch: shuffles differ between epochs and repeat for the same epoch.
        """
        return BatchLoader(self, batch_size, shuffle, seed, drop_last, epoch)


@dataclass(frozen=True)
class BatchLoader:
    """A split's batches in a fixed order; see :meth:`MSASplit.loader`."""

    split: MSASplit
    batch_size: int
    shuffle: bool = False
    seed: int = 0
    drop_last: bool = False
    epoch: int = 0

    def __post_init__(self) -> None:
        if int(self.batch_size) < 1:
            raise ValueError(f"batch_size must be at least 1 (got {self.batch_size}).")

    def order(self) -> np.ndarray:
        """The sample order this loader visits."""
        n = len(self.split)
        if not self.shuffle:
            return np.arange(n)
        return np.random.default_rng([int(self.seed), int(self.epoch)]).permutation(n)

    def __len__(self) -> int:
        n = len(self.split)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        order = self.order()
        for b in range(len(self)):
            yield self.split.batch(order[b * self.batch_size : (b + 1) * self.batch_size])


@dataclass(eq=False)
class MSADataset:
    """A multimodal sentiment data set: three splits plus what is known about them.

    Attributes:
        splits: ``"train"``, ``"valid"``, ``"test"`` -> :class:`MSASplit`.
        profile: the dataset profile the file matches.
        feature_dims: feature dims (text, audio, vision), read from the file.
        seq_lens: padded sequence lengths (text, audio, vision), read from the file.
        has_modality_labels: every split has ``regression_labels_T/A/V``.
        aligned: the file has no ``audio_lengths``/``vision_lengths`` (MMSA's aligned files).
        source: the file's path, or a description of the built-in data.
        is_synthetic: built-in synthetic data, or a file written by ``snn-msa data synth``.
        cleaning: ``{split: {key: cells}}``, non-finite feature cells set to 0.
        nonfinite: the same counts split by kind (``"-inf"``, ``"+inf"``, ``"nan"``).
        valid_nonfinite: ``{split: {modality: NonfiniteCount}}``, the non-finite
            cells at valid positions and their share (see :mod:`snn_msa.data.nonfinite`).
        nonfinite_allowed: loaded with ``allow_nonfinite=True``.
        storage: ``"memory"`` or ``"hdf5"``.
    """

    splits: dict[str, MSASplit]
    profile: DatasetProfile
    feature_dims: tuple[int, int, int]
    seq_lens: tuple[int, int, int]
    has_modality_labels: bool
    aligned: bool
    source: str
    is_synthetic: bool
    cleaning: dict[str, dict[str, int]]
    nonfinite: dict[str, dict[str, dict[str, int]]] = field(default_factory=dict)
    valid_nonfinite: dict[str, dict[str, NonfiniteCount]] = field(default_factory=dict)
    nonfinite_allowed: bool = False
    storage: str = "memory"
    _close: Callable[[], None] | None = field(default=None, repr=False)

    @property
    def is_builtin(self) -> bool:
        """Whether this is the built-in synthetic data (no ``--data`` given), not a file."""
        return self.source.startswith("built-in")

    def sizes_text(self) -> str:
        """The samples of the train, valid and test splits, as ``"192/48/48"``."""
        return "/".join(str(len(self.splits[s])) for s in SPLITS)

    def describe(self) -> str:
        """One line for command output: what was loaded, and that it is synthetic when it is."""
        sizes = self.sizes_text()
        cleaned = sum(sum(v.values()) for v in self.cleaning.values())
        parts = [
            f"train/valid/test {sizes}",
            "aligned" if self.aligned else "unaligned",
            f"lengths (t, a, v) {self.seq_lens}",
            f"dims {self.feature_dims}",
            "per-modality labels" if self.has_modality_labels else "multimodal labels only",
        ]
        if cleaned:
            parts.append(f"{cleaned} non-finite feature cell{'s' if cleaned != 1 else ''} set to 0")
        if self.is_builtin:
            head = f"{self.source} (SYNTHETIC: no --data given, so results say nothing about {self.profile.title})"
        else:
            kind = "HDF5 store, read per batch" if self.storage == "hdf5" else "pickle, in memory"
            head = f"{self.profile.title} from {self.source} ({kind})"
            if self.is_synthetic:
                head += " [SYNTHETIC data written by 'snn-msa data synth']"
        return f"{head}: " + ", ".join(parts)

    def close(self) -> None:
        """Close the HDF5 file behind an HDF5-backed dataset (nothing to do in memory)."""
        if self._close is not None:
            self._close()
            self._close = None

    def __enter__(self) -> "MSADataset":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def _profile_or_error(name: str) -> DatasetProfile:
    try:
        return get_profile(name)
    except ValueError as err:
        raise DataError(str(err)) from None


def _checked(top: Any, name: str, profile: str | None, allow_nonfinite: bool,
             require_labels: bool = True) -> tuple[Inspection, dict]:
    """Inspect, match the profile (``profile`` or inferred), count non-finite cells at valid positions; raise the
    first error."""
    found = inspect_splits(top, name, require_labels=require_labels)
    resolve_profile(found, profile)
    found.raise_first_error()
    counts = count_splits(top, found.splits)
    found.problems.extend(judge(counts, allow_nonfinite))
    found.raise_first_error()
    assert found.profile is not None and found.feature_dims is not None and found.seq_lens is not None
    return found, counts


def _labels(found: Inspection, info: SplitInfo) -> dict[str, Any]:
    """A split's labels: ``M``, and ``T``/``A``/``V`` where every split has them."""
    return {k: info.labels[k] for k in ("M", "T", "A", "V") if k in info.labels and (k == "M" or found.has_modality_labels)}


def _dataset(found: Inspection, splits: dict[str, MSASplit], nonfinite: dict, *, source: str,
             is_synthetic: bool, storage: str, valid_nonfinite: dict, allowed: bool,
             close: Callable[[], None] | None = None) -> MSADataset:
    return MSADataset(
        splits=splits,
        profile=found.profile,  # type: ignore[arg-type]
        feature_dims=found.feature_dims,  # type: ignore[arg-type]
        seq_lens=found.seq_lens,  # type: ignore[arg-type]
        has_modality_labels=found.has_modality_labels,
        aligned=found.aligned,
        source=source,
        is_synthetic=is_synthetic,
        cleaning={s: {k: sum(c.values()) for k, c in per.items()} for s, per in nonfinite.items()},
        nonfinite=nonfinite,
        valid_nonfinite=valid_nonfinite,
        nonfinite_allowed=allowed,
        storage=storage,
        _close=close,
    )


def _from_dict(data: Any, source: str, profile: str | None, *, built_in: bool = False,
               allow_nonfinite: bool = False, require_labels: bool = True) -> MSADataset:
    found, valid_counts = _checked(data, source, profile, allow_nonfinite, require_labels)
    splits, nonfinite = {}, {}
    for name, info in found.splits.items():
        arrays, counts = [], {}
        for key in FEATURE_KEYS:
            cleaned, counts[key] = clean_features(data[name][key])
            data[name][key] = cleaned  # drop the uncleaned copy as soon as possible
            arrays.append(cleaned)
        nonfinite[name] = counts
        splits[name] = MSASplit(name, _MemoryFeatures(*arrays), _labels(found, info), info.lengths, info.ids)
    return _dataset(found, splits, nonfinite, source=source, is_synthetic=built_in or looks_synthetic(found),
                    storage="memory", valid_nonfinite=valid_counts, allowed=allow_nonfinite)


def _from_store(path: str, profile: str | None, allow_nonfinite: bool = False, require_labels: bool = True) -> MSADataset:
    handle = open_store(path)
    try:
        try:
            found, valid_counts = _checked(handle, path, profile, allow_nonfinite, require_labels)
            nonfinite = {}
            for name in found.splits:
                group = handle[name]
                nonfinite[name] = {key: stored_nonfinite(group[key]) or count_nonfinite(group[key]) for key in FEATURE_KEYS}
        except (OSError, RuntimeError) as err:
            raise DataError(f"could not read the HDF5 store ({err}): it looks truncated or damaged. Convert it again.", file=path) from None
    except BaseException:
        handle.close()
        raise
    store = _H5File(path, handle)
    splits = {name: MSASplit(name, _H5Features(store, name, FEATURE_KEYS), _labels(found, info), info.lengths, info.ids)
              for name, info in found.splits.items()}
    return _dataset(found, splits, nonfinite, source=path, is_synthetic=looks_synthetic(found), storage="hdf5",
                    valid_nonfinite=valid_counts, allowed=allow_nonfinite, close=store.close)


def load_dataset(
    path: str | os.PathLike | None = None,
    dataset: str | None = None,
    *,
    synthetic_sizes: tuple[int, int, int] | None = None,
    seed: int = 0,
    allow_nonfinite: bool = False,
    require_labels: bool = True,
) -> MSADataset:
    """Load MMSA features from a pickle or an HDF5 store, or make the built-in synthetic data.

    Args:
        path: an MMSA feature pickle or an HDF5 store (told apart by content);
            ``None`` for built-in synthetic data.
        dataset: profile name (``sims``, ``simsv2``, ``mosi``, ``mosei``). With a
            file it must match the file's feature dims; left out, it is inferred
            from them. Without a file it shapes the synthetic data (default ``sims``).
        synthetic_sizes: (train, valid, test) samples of the synthetic data;
            default ``(192, 48, 48)``. Ignored with a file.
        seed: seed of the synthetic data. Ignored with a file.
        allow_nonfinite: accept a modality with more than
            :data:`~snn_msa.data.nonfinite.MAX_NONFINITE_SHARE` non-finite cells at
            its valid positions (they are set to 0); without it that is an error.
        require_labels: ``False`` accepts a file without ``regression_labels``
            (inference on new features); its splits then have no labels.

    Raises:
        DataError: the file is unsafe, damaged, not a valid MMSA feature file
            for the profile, or too much of a modality is not finite; the message
            names file, split and key.
    """
    if path is None:
        profile = _profile_or_error(dataset or "sims")
        try:
            data = make_synthetic(profile.name, synthetic_sizes or DEFAULT_SIZES, seed)
        except ValueError as err:
            raise DataError(str(err)) from None
        return _from_dict(data, f"built-in synthetic data shaped like {profile.title}", profile.name, built_in=True)
    name = os.path.expanduser(os.fspath(path))
    if dataset is not None:
        _profile_or_error(dataset)
    if detect_format(name) == "hdf5":
        return _from_store(name, dataset, allow_nonfinite, require_labels)
    return _from_dict(restricted_load(name), name, dataset, allow_nonfinite=allow_nonfinite, require_labels=require_labels)
