"""Built-in synthetic data in the MMSA feature format, with a signal that needs all three modalities.

Every command runs on this when no ``--data`` is given. The arrays have the
profile's real sequence lengths and feature dims; only the sample counts are
small. Each sample draws three independent scores ``z_t, z_a, z_v`` uniform in
[-1, 1] and hides each in one modality as a short *event* at a random time
within the sample's real frames:

- text: channels 0-7 carry ``1.5 z_t s`` (``s`` a fixed sign pattern) at
  ``TEXT_STEPS`` consecutive tokens;
- audio: channels 0-3 carry a burst of height ``2 z_a`` lasting ``La / 20`` frames;
- vision: channels 0-3 are offset by ``1.5 z_v`` for ``Lv / 5`` frames.

Everything else is Gaussian noise (std 0.5). The multimodal label is ``M = hi * (z_t + z_a + z_v) / 3`` with ``hi`` the top of
the profile's label range (1 for CH-SIMS, 3 for MOSI/MOSEI): a model that reads
only two modalities misses a third of the signal. SIMS-like data also get
``regression_labels_T/A/V = hi * z_t, z_a, z_v``. Audio and vision lengths vary
per sample (zeros after the length), as do text lengths (in the ``text_bert``
attention mask), and about one sample in twenty has a ``-inf`` cell in audio,
as real files do.

>>> data = make_synthetic("mosi", sizes=(4, 2, 2), seed=1)
>>> data["train"]["audio"].shape, data["train"]["vision"].shape, sorted(data)
((4, 375, 5), (4, 500, 20), ['test', 'train', 'valid'])
"""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import numpy as np

from ..profiles import DatasetProfile, get_profile
from .files import atomic_output, estimated_size

__all__ = ["make_synthetic", "write_pickle", "DEFAULT_SIZES", "SYNTHETIC_ID_PREFIX"]

DEFAULT_SIZES = (192, 48, 48)
SYNTHETIC_ID_PREFIX = "synthetic_"
NOISE_STD = 0.5
TEXT_SIGN = np.array([1, -1, 1, 1, -1, 1, -1, -1], dtype=np.float32)
TEXT_STEPS = 4  # positions per half of the text pattern
SIGNAL_CHANNELS = 4  # audio and vision channels that carry the signal
_SPLIT_SEEDS = {"train": 0, "valid": 1, "test": 2}


def _lengths(rng: np.random.Generator, n: int, full: int, least: int) -> np.ndarray:
    least = min(full, max(1, least))
    return rng.integers(least, full + 1, size=n).astype(np.int64)


def _zero_after(x: np.ndarray, lengths: np.ndarray) -> None:
    x[np.arange(x.shape[1])[None, :] >= lengths[:, None]] = 0.0


def _make_split(profile: DatasetProfile, split: str, n: int, seed: int, aligned: bool,
                seq_lens: tuple[int, int, int]) -> dict:
    rng = np.random.default_rng([seed, _SPLIT_SEEDS[split]])
    lt, la, lv = seq_lens
    if aligned:
        la = lv = lt
    dt, da, dv = profile.feature_dims
    hi = profile.label_range[1]
    z = rng.uniform(-1.0, 1.0, size=(n, 3)).astype(np.float32)
    zt, za, zv = z[:, 0], z[:, 1], z[:, 2]
    rows = np.arange(n)

    frames_t = np.arange(lt)[None, :]

    def event_mask(lengths: np.ndarray, full: int, width: int) -> np.ndarray:
        """[n, full] True on ``width`` consecutive frames at a random start inside each sample's length."""
        start = (rng.random(n) * (np.maximum(lengths - width, 0) + 1)).astype(np.int64)
        frames = np.arange(full)[None, :]
        return (frames >= start[:, None]) & (frames < (start + width)[:, None])

    # Text: an event of TEXT_STEPS tokens (inside [CLS] ... [SEP]) carrying 1.5 z_t s.
    text_len = _lengths(rng, n, lt, max(2 * TEXT_STEPS, lt // 2))
    text = rng.standard_normal((n, lt, dt), dtype=np.float32) * NOISE_STD
    channels = min(len(TEXT_SIGN), dt)
    steps = min(TEXT_STEPS, lt)
    at = event_mask(text_len, lt, steps)
    text[:, :, :channels] += (at[:, :, None] * (1.5 * zt)[:, None, None] * TEXT_SIGN[None, None, :channels]).astype(np.float32)
    _zero_after(text, text_len)
    text_bert = np.zeros((n, 3, lt), dtype=np.float32)
    text_bert[:, 0] = rng.integers(672, 8000, size=(n, lt))
    text_bert[:, 0, 0] = 101  # [CLS]
    text_bert[rows, 0, text_len - 1] = 102  # [SEP]
    text_bert[:, 1] = frames_t < text_len[:, None]
    text_bert[:, 0] *= text_bert[:, 1]

    # Audio: a burst of height 2 z_a.
    audio_len = np.full(n, la, dtype=np.int64) if aligned else _lengths(rng, n, la, la // 3)
    audio = rng.standard_normal((n, la, da), dtype=np.float32) * NOISE_STD
    burst = event_mask(audio_len, la, max(2, la // 20))
    ach = min(SIGNAL_CHANNELS, da)
    audio[:, :, :ach] += (burst * (2.0 * za)[:, None])[:, :, None].astype(np.float32)
    _zero_after(audio, audio_len)
    hit = np.flatnonzero(rng.random(n) < 0.05)
    if hit.size:
        channel = da - 1 if da > ach else 0
        audio[hit, rng.integers(0, audio_len[hit].clip(min=1)), channel] = -np.inf

    # Vision: an offset of 1.5 z_v for a fifth of the frames.
    vision_len = np.full(n, lv, dtype=np.int64) if aligned else _lengths(rng, n, lv, lv // 3)
    vision = rng.standard_normal((n, lv, dv), dtype=np.float32) * NOISE_STD
    window = event_mask(vision_len, lv, max(2, lv // 5))
    vch = min(SIGNAL_CHANNELS, dv)
    vision[:, :, :vch] += (window * (1.5 * zv)[:, None])[:, :, None].astype(np.float32)
    _zero_after(vision, vision_len)

    ids = [f"{SYNTHETIC_ID_PREFIX}{profile.name}_{split}${'_$'}{i:05d}" for i in range(n)]
    out = {
        "raw_text": np.array([f"synthetic {profile.title} sample {i} ({split})" for i in range(n)]),
        "id": np.array(ids),
        "text": text,
        "text_bert": text_bert,
        "audio": audio,
        "vision": vision,
        "regression_labels": (hi * z.mean(axis=1)).astype(np.float32),
    }
    if not aligned:
        # MMSA's feature tools write the lengths as lists of ints.
        out["audio_lengths"] = audio_len.tolist()
        out["vision_lengths"] = vision_len.tolist()
    if profile.modality_labels:
        for m, column in zip("TAV", (zt, za, zv)):
            out[f"regression_labels_{m}"] = (hi * column).astype(np.float32)
    return out


def make_synthetic(
    profile_name: str = "sims",
    sizes: tuple[int, int, int] = DEFAULT_SIZES,
    seed: int = 0,
    *,
    aligned: bool = False,
    seq_lens: tuple[int, int, int] | None = None,
) -> dict:
    """An MMSA-format feature dict shaped like ``profile_name``, deterministic in ``seed``.

    Args:
        profile_name: ``sims``, ``simsv2``, ``mosi`` or ``mosei``.
        sizes: samples in (train, valid, test), each at least 1.
        seed: the same seed gives the same arrays.
        aligned: every modality padded to the text length and no
            ``audio_lengths``/``vision_lengths``, like MMSA's aligned files.
        seq_lens: padded lengths (text, audio, vision) instead of the
            profile's, for tiny test data; text needs at least 8 positions.

    >>> tiny = make_synthetic("sims", (2, 1, 1), seq_lens=(8, 10, 12))
    >>> tiny["valid"]["vision"].shape, sorted(k for k in tiny["valid"] if k.startswith("regression"))
    ((1, 12, 709), ['regression_labels', 'regression_labels_A', 'regression_labels_T', 'regression_labels_V'])
    """
    profile = get_profile(profile_name)
    sizes = tuple(int(s) for s in sizes)
    if len(sizes) != 3 or min(sizes) < 1:
        raise ValueError(f"sizes must be three positive sample counts (train, valid, test); got {sizes}.")
    lens = tuple(int(x) for x in (seq_lens or profile.seq_lens))
    if len(lens) != 3 or lens[0] < 2 * TEXT_STEPS or min(lens) < 1:
        raise ValueError(f"seq_lens must be three lengths (text, audio, vision) with text at least {2 * TEXT_STEPS}; got {lens}.")
    return {split: _make_split(profile, split, n, seed, aligned, lens)  # type: ignore[arg-type]
            for split, n in zip(("train", "valid", "test"), sizes)}


def write_pickle(data: dict, path: str | os.PathLike) -> Path:
    """Pickle ``data`` to ``path`` as MMSA does (protocol 4), through a temporary file in the same folder.

    Raises:
        snn_msa.atomic.WriteError: too little free space (checked first), or the
            write failed; ``path`` is left as it was.
    """
    with atomic_output(path, needed=estimated_size(data)) as tmp:
        with open(tmp, "wb") as f:
            pickle.dump(data, f, protocol=4)
    return Path(path)
