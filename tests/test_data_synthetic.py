"""Built-in synthetic data: MMSA format, profile shapes, and a signal that needs all modalities and timing."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from snn_msa.data import load_dataset
from snn_msa.data.synthetic import (DEFAULT_SIZES, EVENT_FRACTION, EVENT_HEIGHT, TEXT_SIGN, channel_statistics,
                                    make_synthetic, write_pickle)
from snn_msa.profiles import PROFILES, get_profile


def mmsa_reads(path, mode: str, use_bert: bool, need_data_aligned: bool, dataset_name: str) -> dict:
    """A plain restatement of MMSA/data_loader.py MMDataset.__init_msa (MMSA 2.x)."""
    with open(path, "rb") as f:
        data = pickle.load(f)
    out = {
        "text": data[mode]["text_bert" if use_bert else "text"].astype(np.float32),
        "vision": data[mode]["vision"].astype(np.float32),
        "audio": data[mode]["audio"].astype(np.float32),
        "raw_text": data[mode]["raw_text"],
        "ids": data[mode]["id"],
        "labels": {"M": np.array(data[mode]["regression_labels"]).astype(np.float32)},
    }
    if dataset_name == "sims":
        for m in "TAV":
            out["labels"][m] = data[mode]["regression_labels_" + m].astype(np.float32)
    if not need_data_aligned:
        out["audio_lengths"] = list(data[mode]["audio_lengths"])
        out["vision_lengths"] = list(data[mode]["vision_lengths"])
    out["audio"][out["audio"] == -np.inf] = 0
    return out


@pytest.mark.parametrize("name", list(PROFILES))
def test_profile_shapes_and_mmsa_loader(tmp_path, name):
    profile = PROFILES[name]
    path = write_pickle(make_synthetic(name, (3, 2, 2), seed=1), tmp_path / f"{name}.pkl")
    lt, la, lv = profile.seq_lens
    dt, da, dv = profile.feature_dims
    for mode, n in zip(("train", "valid", "test"), (3, 2, 2)):
        for use_bert in (False, True):
            got = mmsa_reads(path, mode, use_bert, False, "sims" if profile.modality_labels else name)
            assert got["text"].shape == ((n, lt, dt) if not use_bert else (n, 3, lt))
            assert got["audio"].shape == (n, la, da) and got["vision"].shape == (n, lv, dv)
            assert len(got["audio_lengths"]) == len(got["vision_lengths"]) == len(got["ids"]) == len(got["raw_text"]) == n
            assert np.isfinite(got["audio"]).all()
            lo, hi = profile.label_range
            for labels in got["labels"].values():
                assert labels.shape == (n,) and lo <= labels.min() and labels.max() <= hi
            assert set(got["labels"]) == ({"M", "T", "A", "V"} if profile.modality_labels else {"M"})
    loaded = load_dataset(path)
    assert loaded.profile is profile and loaded.seq_lens == profile.seq_lens and loaded.feature_dims == profile.feature_dims


def test_aligned_files_have_no_lengths_and_mmsa_reads_them(tmp_path):
    path = write_pickle(make_synthetic("mosei", (2, 1, 1), aligned=True), tmp_path / "a.pkl")
    got = mmsa_reads(path, "train", False, True, "mosei")
    assert got["text"].shape[1] == got["audio"].shape[1] == got["vision"].shape[1] == 50
    assert "audio_lengths" not in pickle.loads(path.read_bytes())["train"]


def test_same_seed_same_data_other_seed_other_data():
    a, b, c = (make_synthetic("mosi", (4, 2, 2), seed=s, seq_lens=(8, 9, 10)) for s in (7, 7, 8))
    assert all(np.array_equal(a["train"][k], b["train"][k]) for k in ("text", "audio", "vision"))
    assert not np.array_equal(a["train"]["vision"], c["train"]["vision"])
    assert not np.array_equal(a["train"]["text"][:1], a["valid"]["text"][:1])  # splits differ too


def test_lengths_vary_with_zero_padding_and_a_few_minus_inf():
    data = make_synthetic("sims", (60, 1, 1), seed=0)["train"]
    for key, lengths in (("audio", data["audio_lengths"]), ("vision", data["vision_lengths"])):
        lengths = np.asarray(lengths)
        assert len(set(lengths.tolist())) > 10 and lengths.max() <= data[key].shape[1]
        frames = np.arange(data[key].shape[1])
        assert (data[key][frames[None, :] >= lengths[:, None]] == 0).all()
    text_lengths = data["text_bert"][:, 1].sum(1)
    assert len(set(text_lengths.tolist())) > 5
    assert 0 < np.isneginf(data["audio"]).sum() < 10 and not np.isnan(data["audio"]).any()


def _strongest_window(signal: np.ndarray, lengths: np.ndarray, width: int) -> np.ndarray:
    """Per sample, the mean of ``signal`` [n, L] over the ``width`` consecutive real frames where it is largest in size."""
    best = np.zeros(len(signal))
    for i, (row, n) in enumerate(zip(signal, lengths)):
        means = np.convolve(row[:n], np.ones(width) / width, mode="valid")
        best[i] = means[np.argmax(np.abs(means))]
    return best


def _decode(split: dict, profile: str, seed: int) -> np.ndarray:
    """Read the planted scores back by finding each event in time, in each channel's own units: what a model has to learn."""
    stats = channel_statistics(get_profile(profile), seed)

    def standardised(modality: str, x: np.ndarray) -> np.ndarray:
        scale, offset = stats[modality]
        return (x - offset) / scale

    text, vision = standardised("text", split["text"]), standardised("vision", split["vision"])
    audio = standardised("audio", np.where(np.isfinite(split["audio"]), split["audio"], 0))
    text_len = split["text_bert"][:, 1].sum(1).astype(int)
    audio_len, vision_len = np.asarray(split["audio_lengths"]), np.asarray(split["vision_lengths"])
    width = {m: max(2, round(split[m].shape[1] * EVENT_FRACTION[m])) for m in ("audio", "vision")}
    zt = _strongest_window((text[:, :, :8] * TEXT_SIGN).mean(2), text_len, 4) / EVENT_HEIGHT["text"]
    za = _strongest_window(audio[:, :, :4].mean(2), audio_len, width["audio"]) / EVENT_HEIGHT["audio"]
    zv = _strongest_window(vision[:, :, :4].mean(2), vision_len, width["vision"]) / EVENT_HEIGHT["vision"]
    return np.stack([zt, za, zv], 1)


def _r2(x: np.ndarray, y: np.ndarray) -> float:
    x = np.c_[x, np.ones(len(x))]
    residual = y - x @ np.linalg.lstsq(x, y, rcond=None)[0]
    return 1 - residual.var() / y.var()


def test_the_label_needs_all_three_modalities():
    split = make_synthetic("mosi", (96, 1, 1), seed=2)["train"]
    y = split["regression_labels"]
    z = _decode(split, "mosi", 2)
    all_three = _r2(z, y)
    assert all_three > 0.9  # smooth (AR(1)) background: a window mean averages out less noise than i.i.d.
    for pair in ((0, 1), (0, 2), (1, 2)):
        assert _r2(z[:, pair], y) < all_three - 0.2


def test_default_in_memory_dataset_is_small_and_says_synthetic():
    data = load_dataset()
    assert data.is_synthetic and data.profile.name == "sims"
    assert tuple(len(data.splits[s]) for s in ("train", "valid", "test")) == DEFAULT_SIZES
    assert "SYNTHETIC" in data.describe() and "no --data" in data.describe()
    assert data.has_modality_labels and not data.aligned


@pytest.mark.parametrize("bad", [dict(sizes=(0, 1, 1)), dict(sizes=(1, 1)), dict(seq_lens=(4, 5, 6))])
def test_bad_arguments(bad):
    with pytest.raises(ValueError):
        make_synthetic("sims", **{"sizes": (1, 1, 1), **bad})
