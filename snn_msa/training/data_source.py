"""Which data a run trains on, how a checkpoint records it, and how evaluation finds it again.

A checkpoint records the dataset profile, the file's absolute path (or that the
data was the built-in synthetic set, with its sizes and seed) and a fingerprint
of each split (ids, labels, lengths and a few rows of features), so evaluation
can rebuild the same data or tell that a given file is not the one the run used.
"""

from __future__ import annotations

import hashlib
import os
from typing import Any

import numpy as np

from ..data import DataError, MSADataset, load_dataset
from ..data.nonfinite import as_record
from .errors import CheckpointError, TrainingError
from .settings import TrainSettings
from ..data.validate import SPLITS

SYNTHETIC_SEED = 0  # the seed of the built-in synthetic data every command uses


def load_training_data(settings: TrainSettings, dataset: MSADataset | None = None) -> MSADataset:
    """``dataset`` if given (checked against ``settings.dataset``), else the file or synthetic data named by ``settings``."""
    if dataset is None:
        path = None if settings.data is None else os.path.expanduser(settings.data)
        return load_dataset(path, settings.dataset, seed=SYNTHETIC_SEED, allow_nonfinite=settings.allow_nonfinite)
    if settings.dataset is not None:
        wanted = settings.dataset  # already a profile name (TrainSettings checks it)
        if dataset.profile.name != wanted:
            raise TrainingError(
                f"the dataset given is {dataset.profile.name!r} ({dataset.source}) but the settings name {wanted!r}; "
                "leave dataset out or make them agree."
            )
    return dataset


def fingerprint(split, rows: int = 8) -> str:
    """A short hash of a split: its ids, labels and lengths, and the features of a few evenly spaced rows.

    Equal data gives an equal print; a changed file or a changed synthetic
    generator almost surely does not. Reading only ``rows`` rows of features
    keeps it cheap for MOSEI-sized HDF5 stores.
    """
    digest = hashlib.sha256()
    digest.update("\n".join(map(str, split.ids)).encode())
    for name in split.label_names:
        digest.update(np.ascontiguousarray(split.labels(name), dtype=np.float32).tobytes())
    for modality in ("text", "audio", "vision"):
        lengths = split.lengths(modality)
        digest.update(b"-" if lengths is None else np.ascontiguousarray(lengths, dtype=np.int64).tobytes())
    n = len(split)
    if n:
        batch = split.batch(np.unique(np.linspace(0, n - 1, num=min(rows, n)).astype(np.int64)))
        for modality in ("text", "audio", "vision"):
            digest.update(batch[modality].numpy().astype(np.float32).tobytes())
    return digest.hexdigest()[:16]


def data_spec(dataset: MSADataset, path: str | None) -> dict[str, Any]:
    """What a checkpoint records about the data (plain values only)."""
    built_in = dataset.is_builtin
    return {
        "source": dataset.source,
        "path": None if built_in or path is None else os.path.abspath(os.path.expanduser(path)),
        "built_in": built_in,
        "synthetic": bool(dataset.is_synthetic),
        "profile": dataset.profile.name,
        "feature_dims": list(dataset.feature_dims),
        "seq_lens": list(dataset.seq_lens),
        "sizes": {s: len(dataset.splits[s]) for s in SPLITS},
        "synthetic_seed": SYNTHETIC_SEED if built_in else None,
        "fingerprints": {s: fingerprint(dataset.splits[s]) for s in SPLITS},
        "nonfinite": as_record(dataset.valid_nonfinite, dataset.nonfinite_allowed),
    }


def load_eval_data(spec: dict[str, Any], data: str | os.PathLike | None = None, dataset: MSADataset | None = None, *,
                   allow_nonfinite: bool = False, require_labels: bool = True) -> MSADataset:
    """The data to evaluate a checkpoint on: ``dataset``, else the file ``data``, else the data the run used.

    A file given here is matched to a profile by its own dims, so a file of
    other dims reaches the caller's check against the model (a clearer message).
    ``allow_nonfinite`` and ``require_labels`` are passed to :func:`~snn_msa.data.load_dataset`.
    """
    options = {"allow_nonfinite": allow_nonfinite, "require_labels": require_labels}
    if dataset is not None:
        return dataset
    if data is not None:
        return load_dataset(os.path.expanduser(os.fspath(data)), **options)
    if spec.get("built_in"):
        sizes = tuple(spec["sizes"][s] for s in SPLITS)
        rebuilt = load_dataset(None, spec["profile"], synthetic_sizes=sizes, seed=spec.get("synthetic_seed") or 0)
        if {s: fingerprint(rebuilt.splits[s]) for s in SPLITS} != spec.get("fingerprints"):
            raise CheckpointError(
                "the run trained on synthetic data that cannot be rebuilt here (it was made with other settings "
                "or another version of snn-msa); pass the data with --data."
            )
        return rebuilt
    path = spec.get("path")
    if path and os.path.exists(path):
        return load_dataset(path, spec["profile"], **options)
    where = f" ({path} no longer exists)" if path else ""
    raise DataError(f"the checkpoint's run trained on {spec.get('source')}{where}; give the feature file with --data.")


def load_inspection_data(spec: dict[str, Any] | None, data: str | os.PathLike | MSADataset | None = None,
                         profile: str | None = None, *, allow_nonfinite: bool = False) -> MSADataset:
    """The data a command that inspects one model runs on (``snn-msa energy``, ``snn-msa diagnose``).

    ``data`` (a file, or an :class:`~snn_msa.data.MSADataset` already loaded), else the data of the checkpoint
    whose data record is ``spec``, else the built-in synthetic data shaped like ``profile``. A ``profile``
    given must be the data's (a :class:`~snn_msa.data.DataError` says so otherwise).
    """
    if isinstance(data, MSADataset):
        dataset = data
    elif spec is not None:
        dataset = load_eval_data(spec, data, allow_nonfinite=allow_nonfinite)
    else:
        path = None if data is None else os.path.expanduser(os.fspath(data))
        return load_dataset(path, profile, seed=SYNTHETIC_SEED, allow_nonfinite=allow_nonfinite)  # checks profile itself
    if profile is not None and dataset.profile.name != profile:
        raise DataError(f"--dataset {profile} was given, but the data ({dataset.source}) is {dataset.profile.name}; "
                        f"leave out --dataset, or give a {profile} file with --data.")
    return dataset


def same_data(spec: dict[str, Any], dataset: MSADataset, split: str) -> bool:
    """Whether ``dataset``'s ``split`` is the one the run used (by fingerprint)."""
    prints = spec.get("fingerprints") or {}
    return prints.get(split) == fingerprint(dataset.splits[split])
