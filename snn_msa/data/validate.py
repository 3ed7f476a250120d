"""Checking an MMSA feature dict (from a pickle or an HDF5 store) before it is used.

:func:`inspect_splits` walks every split and key and collects every problem it
finds instead of stopping at the first, so ``snn-msa data check`` can list them
all; :func:`resolve_profile` then matches the file to a dataset profile and
checks its labels against the profile's range. Loading raises the first error.

Only shapes are read from the big feature arrays; lengths, labels and ids are
read whole (they are small).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from ..profiles import PROFILES, DatasetProfile, get_profile
from .errors import DataError

SPLITS = ("train", "valid", "test")
MODALITIES = ("text", "audio", "vision")
LABEL_KEY = "regression_labels"
MODALITY_LABEL_KEYS = {m: f"regression_labels_{m}" for m in "TAV"}
LENGTH_KEYS = {"audio": "audio_lengths", "vision": "vision_lengths"}
# Keys that hold one entry per sample, so their first dimension must agree.
PER_SAMPLE_KEYS = (
    "text", "text_bert", "audio", "vision", "audio_lengths", "vision_lengths", "raw_text", "id",
    "regression_labels", "regression_labels_T", "regression_labels_A", "regression_labels_V",
    "classification_labels", "classification_labels_T", "classification_labels_A", "classification_labels_V",
)
LABEL_TOLERANCE = 1e-4
#: The deepest list nesting a field may have (MMSA fields have at most 3 dimensions; this leaves room).
MAX_NESTING = 8


@dataclass
class Problem:
    """One thing wrong with a feature file; ``severity`` is ``"error"`` or ``"warning"``."""

    severity: str
    message: str
    split: str | None = None
    key: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"severity": self.severity, "split": self.split, "key": self.key, "message": self.message}

    def to_error(self, file: str) -> DataError:
        """This problem as a :class:`DataError` naming ``file``."""
        return DataError(self.message, file=file, split=self.split, key=self.key)


@dataclass
class SplitInfo:
    """What :func:`inspect_splits` learned about one split (small arrays read whole)."""

    name: str
    n: int = 0
    shapes: dict[str, tuple[int, ...]] = field(default_factory=dict)
    lengths: dict[str, np.ndarray | None] = field(default_factory=dict)
    labels: dict[str, np.ndarray] = field(default_factory=dict)
    ids: list[str] = field(default_factory=list)
    zero_lengths: dict[str, int] = field(default_factory=dict)
    ok: bool = True

    @property
    def seq_lens(self) -> tuple[int, int, int]:
        """Padded sequence lengths (text, audio, vision)."""
        return tuple(int(self.shapes[m][1]) for m in MODALITIES)  # type: ignore[return-value]

    @property
    def feature_dims(self) -> tuple[int, int, int]:
        """Feature dimensions (text, audio, vision)."""
        return tuple(int(self.shapes[m][2]) for m in MODALITIES)  # type: ignore[return-value]


@dataclass
class Inspection:
    """The outcome of :func:`inspect_splits` and :func:`resolve_profile`."""

    file: str
    splits: dict[str, SplitInfo]
    problems: list[Problem]
    feature_dims: tuple[int, int, int] | None = None
    seq_lens: tuple[int, int, int] | None = None
    aligned: bool = False
    has_modality_labels: bool = False
    profile: DatasetProfile | None = None

    def sorted_problems(self) -> list[Problem]:
        """Problems of the whole file first, then by split (train, valid, test), in the order found."""
        rank = {None: -1, **{s: i for i, s in enumerate(SPLITS)}}
        return sorted(self.problems, key=lambda p: rank.get(p.split, len(SPLITS)))

    def errors(self) -> list[Problem]:
        """The problems that make the file unusable, sorted as :meth:`sorted_problems`."""
        return [p for p in self.sorted_problems() if p.severity == "error"]

    def raise_first_error(self) -> None:
        """Raise the first error as a :class:`DataError`; the message counts the rest."""
        errors = self.errors()
        if errors:
            err = errors[0].to_error(self.file)
            if len(errors) > 1:
                more = len(errors) - 1
                err = DataError(
                    f"{err.reason} ({more} more problem{'s' if more > 1 else ''}: run 'snn-msa data check {self.file}')",
                    file=self.file, split=err.split, key=err.key,
                )
            raise err


class NestedTooDeep(ValueError):
    """A list nested deeper than :data:`MAX_NESTING` levels (no MMSA field is)."""


def shape_of(value: Any) -> tuple[int, ...]:
    """Shape of an array, an ``h5py.Dataset`` or a (nested) list, without reading datasets.

    Lists are walked down their first items in a loop, not by recursion, so a
    hostile file nested 100,000 levels deep gives :class:`NestedTooDeep`, not a
    ``RecursionError``.

    >>> shape_of([[1, 2, 3], [4, 5, 6]])
    (2, 3)
    """
    shape: list[int] = []
    while isinstance(value, (list, tuple)):
        if len(shape) >= MAX_NESTING:
            raise NestedTooDeep(f"is a list nested more than {MAX_NESTING} levels deep; an MMSA field has at most "
                                "3 dimensions. The file is damaged or was not written by MMSA's tools.")
        shape.append(len(value))
        if not len(value) or not isinstance(value[0], (list, tuple, np.ndarray)):
            return tuple(shape)
        value = value[0]
    if hasattr(value, "shape"):
        return tuple(shape) + tuple(int(s) for s in value.shape)
    return tuple(shape)


def read_small(value: Any) -> np.ndarray:
    """A whole small array (lengths, labels, ids) from any of the containers a file may use."""
    if isinstance(value, np.ndarray):
        return value
    if isinstance(value, (list, tuple)):
        return np.asarray(value)
    import h5py

    if isinstance(value, h5py.Dataset) and h5py.check_string_dtype(value.dtype) is not None:
        return value.asstr()[()]
    return np.asarray(value[()])


def dtype_kind(value: Any) -> str:
    """numpy dtype kind (``"f"``, ``"i"``, ``"U"``, ``"O"`` ...) without reading a dataset."""
    if hasattr(value, "dtype") and not isinstance(value, (list, tuple)):
        import h5py

        if h5py.check_string_dtype(value.dtype) is not None:
            return "U"
        return value.dtype.kind
    return np.asarray(value[:1] if isinstance(value, (list, tuple)) else value).dtype.kind


def _as_vector(values: np.ndarray, split: str, key: str, n: int, problems: list[Problem]) -> np.ndarray | None:
    """A ``[N]`` or ``[N, 1]`` array as ``[N]``; anything else is a rank problem."""
    if values.ndim == 2 and values.shape[1] == 1:
        values = values[:, 0]
    if values.ndim != 1:
        problems.append(Problem("error", f"has shape {list(values.shape)}; expected [N] or [N, 1] (one value per sample).", split, key))
        return None
    if values.shape[0] != n:
        return None  # the sample-count check reports it
    return values


def _inspect_split(name: str, split: Mapping, problems: list[Problem], text_key: str, require_labels: bool = True) -> SplitInfo:
    info = SplitInfo(name)
    errors_before = sum(p.severity == "error" for p in problems)
    unreadable: set[str] = set()  # reported once here, skipped by the checks below
    for key, value in split.items():
        try:
            info.shapes[str(key)] = shape_of(value)
        except NestedTooDeep as error:
            problems.append(Problem("error", str(error), name, str(key)))
            info.shapes[str(key)] = ()
            unreadable.add(str(key))

    required = (text_key, "audio", "vision") + ((LABEL_KEY,) if require_labels else ())
    for key in required:
        if key not in split:
            problems.append(Problem(
                "error",
                f"missing. Every split of an MMSA feature file needs {', '.join(required)} "
                f"(this split has: {', '.join(sorted(map(str, split))) or 'nothing'}).",
                name, key,
            ))
    for key, what in (("id", f"ids '{name}-0', '{name}-1', ... are used instead"),
                      ("raw_text", "MMSA's own loader needs it; snn-msa does not")):
        if key not in split:
            problems.append(Problem("warning", f"missing; {what}.", name, key))

    # Feature arrays: rank 3, numeric.
    for modality in MODALITIES:
        key = text_key if modality == "text" else modality
        if key not in split or key in unreadable:
            continue
        shape = info.shapes[key]
        if len(shape) != 3:
            problems.append(Problem("error", f"has shape {list(shape)}; expected [N, L, D] (samples, sequence, features).", name, key))
        elif dtype_kind(split[key]) not in "fiub":
            problems.append(Problem("error", f"holds {dtype_kind(split[key])!r}-kind values; expected numbers.", name, key))

    # Sample counts.
    reference = next((k for k in (text_key, "audio", "vision", LABEL_KEY) if k in split and info.shapes[k]), None)
    if reference is None:
        info.ok = False
        return info
    n = info.n = info.shapes[reference][0]
    for key in PER_SAMPLE_KEYS + ((text_key,) if text_key not in PER_SAMPLE_KEYS else ()):
        if key in split and key != reference and key not in unreadable:
            shape = info.shapes[key]
            if not shape:
                problems.append(Problem("error", f"is a single value; expected one entry per sample ({n}).", name, key))
            elif shape[0] != n:
                problems.append(Problem(
                    "error", f"has {shape[0]} samples but {reference!r} has {n}: the arrays of a split must describe the same samples.", name, key,
                ))
    if n == 0:
        problems.append(Problem("error", "is empty (0 samples); every split needs at least one sample.", name, reference))

    # Labels.
    for key in (LABEL_KEY, *MODALITY_LABEL_KEYS.values()):
        if key not in split:
            continue
        values = read_small(split[key])
        if values.dtype.kind not in "fiub":
            problems.append(Problem("error", f"holds {values.dtype.kind!r}-kind values; expected numbers.", name, key))
            continue
        vector = _as_vector(values, name, key, n, problems)
        if vector is None:
            continue
        vector = vector.astype(np.float32)
        bad = int((~np.isfinite(vector)).sum())
        if bad:
            first = int(np.flatnonzero(~np.isfinite(vector))[0])
            problems.append(Problem("error", f"{bad} label(s) are not finite (first at sample {first}); labels are never cleaned, fix the file.", name, key))
            continue
        info.labels["M" if key == LABEL_KEY else key[-1]] = vector
    present = [m for m, key in MODALITY_LABEL_KEYS.items() if key in split]
    if present and len(present) < 3:
        for m, key in MODALITY_LABEL_KEYS.items():
            if m not in present:
                problems.append(Problem(
                    "error",
                    f"missing while {', '.join(MODALITY_LABEL_KEYS[p] for p in present)} "
                    "{} present; per-modality labels come as T, A and V together.".format("is" if len(present) == 1 else "are"),
                    name, key,
                ))

    # Lengths: text from the text_bert attention mask, audio and vision as stored.
    seq = {m: info.shapes[text_key if m == "text" else m][1] for m in MODALITIES
           if (text_key if m == "text" else m) in split and len(info.shapes[text_key if m == "text" else m]) == 3}
    info.lengths = {m: None for m in MODALITIES}
    if "text_bert" in split:
        shape = info.shapes["text_bert"]
        if len(shape) != 3 or shape[1] != 3:
            problems.append(Problem("error", f"has shape {list(shape)}; expected [N, 3, L] (token ids, attention mask, segment ids).", name, "text_bert"))
        elif "text" in seq and shape[2] != seq["text"]:
            problems.append(Problem("error", f"covers {shape[2]} tokens but {text_key!r} has {seq['text']} positions.", name, "text_bert"))
        elif shape[0] == n:
            bert = split["text_bert"]
            mask = np.asarray(bert)[:, 1, :] if isinstance(bert, (list, tuple)) else np.asarray(bert[:, 1, :])
            info.lengths["text"] = np.rint(mask.astype(np.float64).sum(axis=1)).astype(np.int64)
    for modality, key in LENGTH_KEYS.items():
        if key not in split:
            continue
        values = read_small(split[key])
        if values.dtype.kind not in "fiub":
            problems.append(Problem("error", f"holds {values.dtype.kind!r}-kind values; expected whole numbers.", name, key))
            continue
        vector = _as_vector(values, name, key, n, problems)
        if vector is None:
            continue
        if vector.dtype.kind == "f" and not (np.isfinite(vector).all() and (vector == np.round(vector)).all()):
            problems.append(Problem("error", "holds values that are not whole numbers; lengths count frames.", name, key))
            continue
        vector = vector.astype(np.int64)
        if (vector < 0).any():
            i = int(np.flatnonzero(vector < 0)[0])
            problems.append(Problem("error", f"sample {i} has length {int(vector[i])}; lengths cannot be negative.", name, key))
            continue
        if modality in seq and (vector > seq[modality]).any():
            over = np.flatnonzero(vector > seq[modality])
            i = int(over[0])
            problems.append(Problem(
                "error",
                f"{len(over)} length(s) exceed the {seq[modality]} frames of {modality!r} "
                f"(first: sample {i} has length {int(vector[i])}); the lengths do not belong to these arrays.",
                name, key,
            ))
            continue
        info.lengths[modality] = vector
    for modality, vector in info.lengths.items():
        if vector is not None and (vector == 0).any():
            key = LENGTH_KEYS.get(modality, "text_bert")
            info.zero_lengths[key] = int((vector == 0).sum())
            problems.append(Problem(
                "warning",
                f"{info.zero_lengths[key]} sample(s) have length 0 (no frames); they are kept and the model reads at least one frame.",
                name, key,
            ))

    if "id" in split and info.shapes.get("id", ())[:1] == (n,):
        ids = read_small(split["id"])
        info.ids = [x.decode("utf-8", "replace") if isinstance(x, bytes) else str(x) for x in ids.reshape(-1).tolist()]
    else:
        info.ids = [f"{name}-{i}" for i in range(n)]
    info.ok = sum(p.severity == "error" for p in problems) == errors_before
    return info


def inspect_splits(top: Any, file: str, *, text_key: str = "text", require_labels: bool = True) -> Inspection:
    """Check the structure of an MMSA feature dict: splits, keys, ranks, counts, labels, lengths.

    Args:
        top: the unpickled dict, or a mapping of ``h5py`` groups.
        file: the file's name, for messages.
        text_key: which key holds the text features.
        require_labels: a split without ``regression_labels`` is an error
            (``False`` for inference on new features: labels are checked when present).

    >>> import numpy as np
    >>> split = {"text": np.zeros((2, 4, 8)), "audio": np.zeros((2, 5, 3)), "vision": np.zeros((2, 6, 2)),
    ...          "regression_labels": np.zeros(2), "audio_lengths": [5, 9]}
    >>> found = inspect_splits({"train": split, "valid": split, "test": split}, "tiny.pkl")
    >>> print(found.errors()[0].to_error("tiny.pkl"))
    tiny.pkl: split 'train', key 'audio_lengths': 1 length(s) exceed the 5 frames of 'audio' (first: sample 1 has length 9); the lengths do not belong to these arrays.
    """
    problems: list[Problem] = []
    found = Inspection(file, {}, problems)
    if not isinstance(top, Mapping):
        problems.append(Problem("error", f"the file holds a {type(top).__name__}; an MMSA feature file holds a dict with the splits 'train', 'valid' and 'test'."))
        return found
    for name in SPLITS:
        if name not in top:
            problems.append(Problem(
                "error",
                f"missing. An MMSA feature file has the splits train, valid and test (this one has: {', '.join(sorted(map(str, top))) or 'nothing'}).",
                name,
            ))
            continue
        split = top[name]
        if not isinstance(split, Mapping):
            problems.append(Problem("error", f"is a {type(split).__name__}; expected a dict of arrays.", name))
            continue
        try:
            found.splits[name] = _inspect_split(name, split, problems, text_key, require_labels)
        except RecursionError:  # a hostile nesting that shape_of's cap does not see (inside an object array)
            problems.append(Problem("error", "holds values nested too deeply to read; the file is damaged or was not "
                                    "written by MMSA's tools.", name))

    usable = [s for s in found.splits.values() if all(
        len(s.shapes.get(text_key if m == "text" else m, ())) == 3 for m in MODALITIES)]
    if usable:
        first = usable[0]
        found.feature_dims, found.seq_lens = first.feature_dims, first.seq_lens
        for other in usable[1:]:
            for i, modality in enumerate(MODALITIES):
                key = text_key if modality == "text" else modality
                if other.feature_dims[i] != first.feature_dims[i]:
                    problems.append(Problem("error", f"has {other.feature_dims[i]} features per frame but split {first.name!r} has {first.feature_dims[i]}; all splits must use the same features.", other.name, key))
                if other.seq_lens[i] != first.seq_lens[i]:
                    problems.append(Problem("error", f"is padded to {other.seq_lens[i]} frames but split {first.name!r} to {first.seq_lens[i]}; pad every split to the same length.", other.name, key))
    infos = list(found.splits.values())
    for what, keys in (("per-modality labels", tuple(MODALITY_LABEL_KEYS.values())), ("audio lengths", ("audio_lengths",)), ("vision lengths", ("vision_lengths",))):
        has = {s.name: any(k in s.shapes for k in keys) for s in infos}
        if any(has.values()) and not all(has.values()):
            for s in infos:
                if not has[s.name]:
                    problems.append(Problem("error", f"missing here but present in {', '.join(n for n, h in has.items() if h)}; every split must carry the {what} or none.", s.name, keys[0]))
    found.has_modality_labels = bool(infos) and all(all(m in s.labels for m in "TAV") for s in infos)
    found.aligned = bool(infos) and not any(k in s.shapes for s in infos for k in LENGTH_KEYS.values())
    return found


def _dims_text(dims: tuple[int, ...]) -> str:
    return "(" + ", ".join(map(str, dims)) + ")"


def _label_peak(found: Inspection) -> float:
    """The largest absolute label of any split (0 without labels)."""
    return max((float(np.abs(v).max()) for s in found.splits.values() for v in s.labels.values() if v.size), default=0.0)


def resolve_profile(found: Inspection, profile: str | None) -> DatasetProfile | None:
    """Match the file to a dataset profile (the one named ``profile``, or inferred) and check labels against its range.

    Adds problems to ``found``; returns the profile, or ``None`` when none fits.
    """
    problems = found.problems
    matched: DatasetProfile | None = None
    dims = found.feature_dims
    matching = [p for p in PROFILES.values() if dims is not None and p.feature_dims == dims]
    if profile is not None:
        try:
            matched = get_profile(profile)
        except ValueError as err:
            problems.append(Problem("error", str(err)))
            return None
        if dims is not None and matched.feature_dims != dims:
            differ = [m for m, a, b in zip(MODALITIES, dims, matched.feature_dims) if a != b]
            hint = (f"they match {matching[0].title}: use --dataset {matching[0].name}" if matching
                    else "they match no known data set: leave out --dataset to take the dims from the file")
            problems.append(Problem(
                "error",
                f"the feature dims (text, audio, vision) are {_dims_text(dims)} but --dataset {matched.name} "
                f"expects {_dims_text(matched.feature_dims)} ({' and '.join(differ)} differ{'s' if len(differ) == 1 else ''}); {hint}.",
            ))
            found.profile = matched
            return matched  # its label range says nothing about a file of another data set
    elif dims is not None:
        if len(matching) > 1:
            matching = [p for p in matching if _label_peak(found) <= p.label_range[1] + LABEL_TOLERANCE] or matching
        if len(matching) == 1:
            matched = matching[0]
        elif not matching and found.splits:
            # Features of the user's own choice: the shapes come from the file; the
            # labels decide the conventions (label range and metric family).
            base = PROFILES["mosi"] if _label_peak(found) > 1 + LABEL_TOLERANCE else PROFILES["sims"]
            matched = replace(base, title=f"{base.title}-style data", feature_dims=dims,
                              seq_lens=found.seq_lens or base.seq_lens)
            problems.append(Problem(
                "warning",
                f"the feature dims (text, audio, vision) {_dims_text(dims)} match no known data set; "
                f"treating the file as {base.name}-style data (labels within [{base.label_range[0]:g}, "
                f"{base.label_range[1]:g}], {base.metric_family.upper()} metrics). Pass --dataset NAME to say otherwise.",
            ))
        else:
            known = "; ".join(f"{p.name} {_dims_text(p.feature_dims)}" for p in PROFILES.values())
            problems.append(Problem(
                "error",
                f"cannot tell which data set this is: the feature dims (text, audio, vision) are {_dims_text(dims)}"
                + (f", which fit {', '.join(p.name for p in matching)}" if matching else f"; the known ones are {known}")
                + ". Pass --dataset NAME.",
            ))
    found.profile = matched
    if matched is None:
        return None
    lo, hi = matched.label_range
    for s in found.splits.values():
        for label, values in s.labels.items():
            if not values.size:
                continue
            vmin, vmax = float(values.min()), float(values.max())
            if vmin < lo - LABEL_TOLERANCE or vmax > hi + LABEL_TOLERANCE:
                outside = int(((values < lo - LABEL_TOLERANCE) | (values > hi + LABEL_TOLERANCE)).sum())
                others = [p.name for p in PROFILES.values() if p.label_range[0] - LABEL_TOLERANCE <= vmin and vmax <= p.label_range[1] + LABEL_TOLERANCE]
                hint = f" Is this a {'/'.join(others)} file? Pass --dataset accordingly." if others else " Fix the labels."
                key = LABEL_KEY if label == "M" else MODALITY_LABEL_KEYS[label]
                problems.append(Problem(
                    "error",
                    f"{outside} label(s) lie outside {matched.title}'s range [{lo:g}, {hi:g}] (they span [{vmin:.3g}, {vmax:.3g}]).{hint}",
                    s.name, key,
                ))
    if matched.modality_labels and found.splits and not found.has_modality_labels and not any(
        k in s.shapes for s in found.splits.values() for k in MODALITY_LABEL_KEYS.values()
    ):
        problems.append(Problem(
            "warning",
            f"{matched.title} files usually carry regression_labels_T/A/V; without them the single-modal heads train on the multimodal label.",
        ))
    return matched
