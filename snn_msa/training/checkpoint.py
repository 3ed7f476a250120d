"""Checkpoints: written atomically with a SHA-256 digest, read with ``torch.load(weights_only=True)``.

A checkpoint is a dict of tensors, dicts, lists, strings and numbers only, so
the safe loader admits it and no code runs when it is read. Two kinds per seed:

- ``best.pt``: the best weights and everything needed to rebuild the model and
  its data (zoo name, full model config, feature dims, dataset profile, data
  source, the resolved recipe, best epoch, validation and test metrics).
- ``last.pt``: the state to continue an interrupted run (model, optimizer,
  best weights so far, counters, history and the RNG states of torch, numpy and
  Python, so a resumed run equals an uninterrupted one).

Integrity: ``torch.save`` writes a zip archive. :func:`save_checkpoint` adds
one more member to it, ``<archive>/.snn_msa_sha256``, holding the SHA-256
digest of every other member (name, length and bytes, in archive order; see
:func:`archive_digest`), and writes the whole file in one atomic replace.
:func:`load_checkpoint` recomputes the digest before ``torch.load`` reads a
byte, so a damaged file (flipped bits, a truncated copy) is a
:class:`CheckpointError`, not a model with wrong weights. torch ignores the
extra member. A checkpoint written before digests existed has none: it is
still read, after Python's zip reader has checked the CRC-32 that the archive
stores for each member (which catches the same accidental damage, though not
a deliberate edit), and the returned dict says ``"integrity": "crc32"``.
"""

from __future__ import annotations

import hashlib
import io
import os
import pickle
import random
import zipfile
from dataclasses import asdict, is_dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..atomic import write_atomic
from ..registry import UnknownModelError, create_model
from .errors import CheckpointError
from .results import json_safe

FORMAT = "snn-msa-checkpoint"
VERSION = 1
KINDS = ("best", "last")
DIGEST_MEMBER = ".snn_msa_sha256"  # inside the archive's top folder, beside torch's data.pkl


def save_checkpoint(payload: dict[str, Any], path: str | os.PathLike, kind: str) -> Path:
    """Write ``payload`` with its SHA-256 digest to ``path`` atomically (a temporary file, then ``os.replace``).

    A crash while writing leaves the previous file at ``path`` untouched; a full
    disk or an I/O error is a one-line :class:`~snn_msa.atomic.WriteError`.
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}.")
    buffer = io.BytesIO()
    torch.save({"format": FORMAT, "version": VERSION, "kind": kind, **payload}, buffer)
    with zipfile.ZipFile(buffer, "a") as archive:
        top = archive.namelist()[0].split("/")[0]
        archive.writestr(f"{top}/{DIGEST_MEMBER}", archive_digest(archive))
    return write_atomic(path, buffer.getvalue())


def archive_digest(archive: zipfile.ZipFile) -> str:
    r"""SHA-256 (hex) over every member of ``archive`` but the digest itself, in archive order.

    .. math:: \mathrm{sha256}\big(\Vert_i\; \mathrm{name}_i \,\|\, 0 \,\|\, \mathrm{len}_i \,\|\, \mathrm{bytes}_i\big)

    with each name UTF-8 and each length 8 bytes little-endian, so no two
    different archives give the same stream. Reading a member also checks its
    CRC-32 (``zipfile`` raises ``BadZipFile`` on a mismatch).
    """
    digest = hashlib.sha256()
    for info in archive.infolist():
        if info.filename.endswith("/" + DIGEST_MEMBER):
            continue
        digest.update(info.filename.encode("utf-8") + b"\0" + info.file_size.to_bytes(8, "little"))
        with archive.open(info) as member:
            for block in iter(lambda: member.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def verify_checkpoint(path: str | os.PathLike) -> str:
    """Check that the file at ``path`` is the archive :func:`save_checkpoint` wrote, byte for byte.

    Returns:
        ``"sha256"`` when its digest matches; ``"crc32"`` for a checkpoint
        written before digests (only the per-member CRC-32 could be checked).

    Raises:
        CheckpointError: the archive is unreadable, a member fails its CRC-32, or
            the digest does not match.
    """
    name = os.fspath(path)
    damaged = (f"{name}: the checkpoint is damaged: {{}}. It cannot be trusted; use another copy, or the other "
               "checkpoint of the run (best.pt or last.pt), or train again.")
    try:
        with zipfile.ZipFile(name) as archive:
            stored = [i for i in archive.infolist() if i.filename.endswith("/" + DIGEST_MEMBER)]
            actual = archive_digest(archive)
            if not stored:
                return "crc32"
            expected = archive.read(stored[0]).decode("ascii", "replace").strip()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, ValueError, RuntimeError) as error:
        raise CheckpointError(damaged.format(f"its zip archive cannot be read ({error})")) from None
    if actual != expected:
        raise CheckpointError(damaged.format(f"its SHA-256 digest is {actual[:16]}..., not the {expected[:16]}... "
                                             "stored when it was written"))
    return "sha256"


def load_checkpoint(path: str | os.PathLike, kind: str | None = None) -> dict[str, Any]:
    """Read a checkpoint safely (digest checked, ``weights_only=True``, onto the CPU) and check that it is ours.

    The one way every command reads a checkpoint (eval, resume, energy, predict).
    The returned dict has ``"integrity"``: ``"sha256"`` (digest checked) or
    ``"crc32"`` (a checkpoint from before digests; see the module docstring).

    Raises:
        CheckpointError: the file is missing, damaged (digest or CRC mismatch),
            holds code or foreign objects, is not an snn-msa checkpoint, or is
            not of ``kind``.
    """
    name = os.fspath(path)
    if not os.path.isfile(name):
        hint = " (it is a folder; give DIR/seed-<s>/best.pt)" if os.path.isdir(name) else ""
        raise CheckpointError(f"{name}: no such checkpoint file{hint}.")
    if not zipfile.is_zipfile(name):
        raise CheckpointError(f"{name}: not a readable torch checkpoint (torch.save writes a zip archive; this file "
                              "is not one, or it was cut short).")
    integrity = verify_checkpoint(name)
    try:
        ckpt = torch.load(name, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        lines = [ln.strip() for ln in str(error).splitlines() if "Unsupported" in ln or "WeightsUnpickler" in ln]
        detail = f" ({lines[0].split('. Please')[0]})" if lines else ""
        raise CheckpointError(
            f"{name}: refused to load: it holds objects other than tensors, dicts, lists, strings and numbers, "
            f"so it is not an snn-msa checkpoint and loading it could run code{detail}."
        ) from None
    except (RuntimeError, EOFError, OSError, zipfile.BadZipFile, ValueError) as error:
        raise CheckpointError(f"{name}: not a readable torch checkpoint; the file may be cut short ({error}).") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise CheckpointError(f"{name}: not an snn-msa checkpoint (no {FORMAT!r} marker); give a best.pt or last.pt written by 'snn-msa train'.")
    if ckpt.get("version") != VERSION:
        raise CheckpointError(f"{name}: checkpoint version {ckpt.get('version')!r}; this snn-msa reads version {VERSION}.")
    if kind is not None and ckpt.get("kind") != kind:
        raise CheckpointError(f"{name}: a {ckpt.get('kind')!r} checkpoint where a {kind!r} one was expected.")
    ckpt["integrity"] = integrity
    return ckpt


def model_config(model: nn.Module) -> dict[str, Any] | None:
    """The model's full config as plain data, if it has a dataclass ``config`` (every SGMT entry)."""
    config = getattr(model, "config", None)
    if config is None or not is_dataclass(config):
        return None
    return json_safe(asdict(config))


def model_spec(model: nn.Module, feature_dims: tuple[int, int, int]) -> dict[str, Any]:
    """What rebuilds ``model``: its zoo name, overrides, full config and input dims."""
    return {
        "name": model.zoo_name,
        "overrides": json_safe(model.zoo_overrides),
        "config": model_config(model),
        "feature_dims": list(feature_dims),
    }


def rebuild_model(spec: dict[str, Any], source: str = "checkpoint") -> nn.Module:
    """Build the model a :func:`model_spec` describes (weights not loaded).

    The full stored config is passed as overrides, so a later change of an
    entry's defaults does not change a model rebuilt from an old checkpoint.
    """
    config = dict(spec.get("config") or {})
    config.pop("feature_dims", None)
    overrides = config or dict(spec.get("overrides") or {})
    try:
        model = create_model(spec["name"], feature_dims=tuple(spec["feature_dims"]), **overrides)
    except UnknownModelError as error:
        raise CheckpointError(f"{source}: {error} (the checkpoint names a model this snn-msa does not have).") from None
    except (ValueError, TypeError) as error:
        raise CheckpointError(f"{source}: cannot rebuild its model: {error}") from None
    model.zoo_overrides = dict(spec.get("overrides") or {})
    return model


def load_weights(model: nn.Module, state: dict[str, torch.Tensor], source: str = "checkpoint") -> None:
    """``load_state_dict(strict=True)`` with a message that says which file does not fit."""
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as error:
        raise CheckpointError(f"{source}: its weights do not fit the rebuilt model: {error}") from None


def rng_state() -> dict[str, Any]:
    """The global RNG states of torch (CPU and CUDA), numpy and Python, as safe-loadable data."""
    np_state = np.random.get_state()
    py_version, py_state, py_gauss = random.getstate()
    state = {
        "torch": torch.get_rng_state(),
        "numpy": {
            "name": np_state[0],
            "keys": torch.from_numpy(np_state[1].astype(np.int64)),
            "pos": int(np_state[2]),
            "has_gauss": int(np_state[3]),
            "cached_gaussian": float(np_state[4]),
        },
        "python": {"version": py_version, "state": torch.tensor(py_state, dtype=torch.int64), "gauss": py_gauss},
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what :func:`rng_state` saved."""
    torch.set_rng_state(state["torch"])
    n = state["numpy"]
    np.random.set_state((n["name"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["cached_gaussian"]))
    p = state["python"]
    random.setstate((p["version"], tuple(int(v) for v in p["state"].tolist()), p["gauss"]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def cpu_state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    """A detached CPU copy of the model's weights (safe to keep while training goes on)."""
    return {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}

