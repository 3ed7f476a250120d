"""Built-in synthetic data in the MMSA feature format, with the statistics of real features
and a signal that needs all three modalities.

Every command runs on this when no ``--data`` is given. The arrays have the
profile's real sequence lengths and feature dims; only the sample counts are
small. Spiking neurons integrate over time, so i.i.d. unit-scale noise says
little about how they behave on real files; the background therefore mimics
real features (docs/data.md gives the why of each choice):

- **smooth in time**: each channel is an AR(1) process ``x[t] = rho x[t-1] +
  sqrt(1 - rho^2) e[t]`` with ``rho`` per modality (``SMOOTHNESS``: text 0.6,
  token embeddings of neighbouring words are correlated; audio 0.9 and vision
  0.85, frame features change slowly);
- **channels of very different scales and offsets** in audio and vision (as
  COVAREP's and OpenFace's are: pitch in Hz beside 0/1 voicing flags, landmark
  pixels beside action-unit intensities): channel ``c`` is ``offset_c +
  scale_c x``, with ``scale_c`` log-uniform over ``CHANNEL_DECADES`` (a
  factor of 30 between channels) and ``|offset_c|`` up to one scale;
- **outlier channels in text**: ``TEXT_OUTLIERS`` channels carry a large constant
  offset (as a few of BERT's hidden dimensions do);
- ``-inf`` in a few audio cells, as real SIMS/MOSEI files have.

The channel statistics are drawn once per seed and shared by the splits, as a
real data set's are. Each sample draws three independent scores ``z_t, z_a,
z_v`` uniform in [-1, 1] and hides each in one modality as a short *event* at a
random time within the sample's real frames, in units of the carrying
channels' own scale:

- text: channels 0-7 carry ``3 z_t s`` (``s`` a fixed sign pattern) at
  ``TEXT_STEPS`` consecutive tokens;
- audio: channels 0-3 carry a burst of height ``4 z_a`` lasting ``La / 10`` frames;
- vision: channels 0-3 are offset by ``3 z_v`` for ``Lv / 4`` frames
  (``EVENT_HEIGHT``, ``EVENT_FRACTION``: a smooth background hides an event of
  a given size more than i.i.d. noise does, so the events are larger than in
  the first, i.i.d. version of this generator).

The background has std ``NOISE_STD`` in those units. The multimodal label is
``M = hi * (z_t + z_a + z_v) / 3`` with ``hi`` the top of the profile's label
range (1 for CH-SIMS, 3 for MOSI/MOSEI): a model that reads only two
modalities misses a third of the signal. SIMS-like data also get
``regression_labels_T/A/V = hi * z_t, z_a, z_v``. Audio and vision lengths vary
per sample (zeros after the length), as do text lengths (in the ``text_bert``
attention mask).

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
from .validate import SPLITS, Inspection

__all__ = ["make_synthetic", "write_pickle", "channel_statistics", "DEFAULT_SIZES", "SYNTHETIC_ID_PREFIX"]

DEFAULT_SIZES = (192, 48, 48)
SYNTHETIC_ID_PREFIX = "synthetic_"
NOISE_STD = 0.5
TEXT_SIGN = np.array([1, -1, 1, 1, -1, 1, -1, -1], dtype=np.float32)
TEXT_STEPS = 4  # positions per half of the text pattern
EVENT_HEIGHT = {"text": 3.0, "audio": 4.0, "vision": 3.0}  # in units of the carrying channel's scale
EVENT_FRACTION = {"audio": 1 / 10, "vision": 1 / 4}  # event length over the padded length
SIGNAL_CHANNELS = 4  # audio and vision channels that carry the signal
SMOOTHNESS = {"text": 0.6, "audio": 0.9, "vision": 0.85}  # AR(1) coefficient per modality
CHANNEL_DECADES = (-0.75, 0.75)  # log10 range of audio and vision channel scales: 30 x between channels
SIGNAL_DECADES = (-0.5, 0.5)  # the channels that carry the signal sit mid-range
TEXT_OUTLIERS = 3  # text channels with a large constant offset
_SPLIT_SEEDS = {"train": 0, "valid": 1, "test": 2}


def _smooth_noise(rng: np.random.Generator, shape: tuple[int, int, int], rho: float) -> np.ndarray:
    """``[n, L, D]`` AR(1) noise along axis 1 with unit stationary variance."""
    n, length, dim = shape
    x = rng.standard_normal((length, n, dim), dtype=np.float32)  # time-major: each step is contiguous
    x[1:] *= np.float32(np.sqrt(1.0 - rho * rho))
    for t in range(1, length):
        x[t] += np.float32(rho) * x[t - 1]
    return np.ascontiguousarray(x.transpose(1, 0, 2))


def channel_statistics(profile: DatasetProfile, seed: int) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per-channel ``(scale, offset)`` of each modality, fixed for a seed and shared by the splits.

    >>> stats = channel_statistics(get_profile("sims"), 0)
    >>> scale, offset = stats["audio"]
    >>> bool(scale.max() / scale.min() > 10), scale.shape
    (True, (33,))
    """
    rng = np.random.default_rng([seed, 99])
    dt, da, dv = profile.feature_dims
    stats = {}
    for modality, dim in (("audio", da), ("vision", dv)):
        decades = rng.uniform(*CHANNEL_DECADES, size=dim)
        decades[:SIGNAL_CHANNELS] = rng.uniform(*SIGNAL_DECADES, size=min(SIGNAL_CHANNELS, dim))
        scale = (10.0 ** decades).astype(np.float32)
        offset = (scale * rng.uniform(-1.0, 1.0, size=dim)).astype(np.float32)
        stats[modality] = (scale, offset)
    scale = (10.0 ** rng.uniform(-0.3, 0.3, size=dt)).astype(np.float32)
    offset = np.zeros(dt, dtype=np.float32)
    outliers = rng.choice(np.arange(len(TEXT_SIGN), dt), size=min(TEXT_OUTLIERS, max(dt - len(TEXT_SIGN), 0)),
                          replace=False) if dt > len(TEXT_SIGN) else np.array([], dtype=np.int64)
    offset[outliers] = rng.choice([-1.0, 1.0], size=len(outliers)) * rng.uniform(8.0, 12.0, size=len(outliers))
    scale[outliers] *= 4.0
    stats["text"] = (scale, offset)
    return stats


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
    stats = channel_statistics(profile, seed)

    def background(modality: str, length: int, dim: int) -> np.ndarray:
        return _smooth_noise(rng, (n, length, dim), SMOOTHNESS[modality]) * np.float32(NOISE_STD)

    def to_channel_units(modality: str, x: np.ndarray) -> np.ndarray:
        scale, offset = stats[modality]
        x *= scale
        x += offset
        return x

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
    text = background("text", lt, dt)
    channels = min(len(TEXT_SIGN), dt)
    steps = min(TEXT_STEPS, lt)
    at = event_mask(text_len, lt, steps)
    text[:, :, :channels] += (at[:, :, None] * (EVENT_HEIGHT["text"] * zt)[:, None, None] * TEXT_SIGN[None, None, :channels]).astype(np.float32)
    text = to_channel_units("text", text)
    _zero_after(text, text_len)
    text_bert = np.zeros((n, 3, lt), dtype=np.float32)
    text_bert[:, 0] = rng.integers(672, 8000, size=(n, lt))
    text_bert[:, 0, 0] = 101  # [CLS]
    text_bert[rows, 0, text_len - 1] = 102  # [SEP]
    text_bert[:, 1] = frames_t < text_len[:, None]
    text_bert[:, 0] *= text_bert[:, 1]

    # Audio: a burst of height 2 z_a.
    audio_len = np.full(n, la, dtype=np.int64) if aligned else _lengths(rng, n, la, la // 3)
    audio = background("audio", la, da)
    burst = event_mask(audio_len, la, max(2, round(la * EVENT_FRACTION["audio"])))
    ach = min(SIGNAL_CHANNELS, da)
    audio[:, :, :ach] += (burst * (EVENT_HEIGHT["audio"] * za)[:, None])[:, :, None].astype(np.float32)
    audio = to_channel_units("audio", audio)
    _zero_after(audio, audio_len)
    hit = np.flatnonzero(rng.random(n) < 0.05)
    if hit.size:
        channel = da - 1 if da > ach else 0
        audio[hit, rng.integers(0, audio_len[hit].clip(min=1)), channel] = -np.inf

    # Vision: an offset of 1.5 z_v for a fifth of the frames.
    vision_len = np.full(n, lv, dtype=np.int64) if aligned else _lengths(rng, n, lv, lv // 3)
    vision = background("vision", lv, dv)
    window = event_mask(vision_len, lv, max(2, round(lv * EVENT_FRACTION["vision"])))
    vch = min(SIGNAL_CHANNELS, dv)
    vision[:, :, :vch] += (window * (EVENT_HEIGHT["vision"] * zv)[:, None])[:, :, None].astype(np.float32)
    vision = to_channel_units("vision", vision)
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
            for split, n in zip(SPLITS, sizes)}


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


def looks_synthetic(found: Inspection) -> bool:
    """Whether a file's samples all carry the ids this module gives (a file written by ``snn-msa data synth``)."""
    return bool(found.splits) and all(
        s.ids and all(i.startswith(SYNTHETIC_ID_PREFIX) for i in s.ids) for s in found.splits.values())
