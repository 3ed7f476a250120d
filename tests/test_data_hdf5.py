"""The HDF5 store: same keys and arrays both ways, lazy batches equal to the pickle's, atomic writes."""

from __future__ import annotations

import pickle

import h5py
import numpy as np
import pytest
import torch

from snn_msa.data import DataError, load_dataset
from snn_msa.data.check import check_file
from snn_msa.data.hdf5_store import convert_hdf5_to_pickle, convert_pickle_to_hdf5
from snn_msa.data.synthetic import make_synthetic, write_pickle


def tiny(profile: str = "sims", n=(5, 3, 2)) -> dict:
    return make_synthetic(profile, n, seed=3, seq_lens=(8, 7, 6))


def assert_same(a, b, where="") -> None:
    assert type(a) is type(b), where
    if isinstance(a, dict):
        assert list(a) == list(b), where
        for k in a:
            assert_same(a[k], b[k], f"{where}/{k}")
    elif isinstance(a, np.ndarray):
        assert a.dtype == b.dtype and a.shape == b.shape, where
        assert np.array_equal(a, b, equal_nan=a.dtype.kind == "f"), where
    else:
        assert a == b, where


@pytest.fixture()
def pkl(tmp_path):
    data = tiny()
    train = data["train"]
    train["audio"][0, 0, 0] = -np.inf
    train["vision"][1, 1, 1] = np.nan
    # the variety real files show: lengths as arrays in one split, labels [N, 1], object strings
    data["valid"]["audio_lengths"] = np.asarray(data["valid"]["audio_lengths"], dtype=np.int64)
    data["valid"]["regression_labels"] = data["valid"]["regression_labels"][:, None].astype(np.float64)
    data["test"]["raw_text"] = np.array(["un café", "中文 文本"], dtype=object)
    data["test"]["id"] = list(data["test"]["id"])
    train["classification_labels"] = np.array([0, 1, 2, 1, 0], dtype=np.int64)
    return write_pickle(data, tmp_path / "d.pkl")


def test_round_trip_gives_the_same_keys_and_arrays(pkl, tmp_path):
    h5 = convert_pickle_to_hdf5(pkl, tmp_path / "d.h5")
    back = convert_hdf5_to_pickle(h5, tmp_path / "back.pkl")
    original = pickle.loads(pkl.read_bytes())
    assert_same(original, pickle.loads(back.read_bytes()))
    with h5py.File(h5, "r") as f:
        assert set(f) == {"train", "valid", "test"} and set(f["train"]) == set(original["train"])
        assert h5py.check_string_dtype(f["test"]["raw_text"].dtype).encoding == "utf-8"
        assert f["train"]["audio"].attrs["nonfinite_neg_inf"] >= 1 and f["train"]["vision"].attrs["nonfinite_nan"] == 1
        assert f["train"]["audio"].chunks[1:] == f["train"]["audio"].shape[1:]  # chunked by rows


def test_lazy_batches_equal_the_pickle_batches(pkl, tmp_path):
    h5 = convert_pickle_to_hdf5(pkl, tmp_path / "d.h5")
    eager, lazy = load_dataset(pkl), load_dataset(h5)
    assert lazy.storage == "hdf5" and eager.storage == "memory"
    assert eager.cleaning == lazy.cleaning and eager.cleaning["train"]["audio"] >= 1
    for name in ("train", "valid", "test"):
        for kwargs in ({"batch_size": 2}, {"batch_size": 2, "shuffle": True, "seed": 5, "epoch": 1},
                       {"batch_size": 3, "shuffle": True, "drop_last": True}):
            a = list(eager.splits[name].loader(**kwargs))
            b = list(lazy.splits[name].loader(**kwargs))
            assert len(a) == len(b)
            for x, y in zip(a, b):
                assert x["ids"] == y["ids"]
                for key in ("text", "audio", "vision", "text_lengths", "audio_lengths", "vision_lengths"):
                    assert torch.equal(x[key], y[key]), key
                assert x["labels"].keys() == y["labels"].keys() == {"M", "T", "A", "V"}
                assert all(torch.equal(x["labels"][k], y["labels"][k]) for k in x["labels"])
    lazy.close()


def test_lazy_loader_reads_only_the_batch_rows(pkl, tmp_path):
    lazy = load_dataset(convert_pickle_to_hdf5(pkl, tmp_path / "d.h5"))
    split = lazy.splits["train"]
    features = split._features
    assert all(isinstance(features.store.handle[split.name][k], h5py.Dataset) for k in features.keys)
    batch = split.batch([4, 1])  # unsorted and not contiguous
    assert features.rows_read == 2 and batch["ids"] == [split.ids[4], split.ids[1]]
    next(iter(split.loader(batch_size=3, shuffle=True)))
    assert features.rows_read == 5


def test_store_from_elsewhere_without_counts_is_scanned(pkl, tmp_path):
    h5 = convert_pickle_to_hdf5(pkl, tmp_path / "d.h5")
    with h5py.File(h5, "r+") as f:
        for split in f.values():
            for key in ("text", "audio", "vision"):
                for attr in list(split[key].attrs):
                    del split[key].attrs[attr]
    assert load_dataset(h5).cleaning == load_dataset(pkl).cleaning


def test_format_is_told_by_content_not_name(pkl, tmp_path):
    disguised = convert_pickle_to_hdf5(pkl, tmp_path / "store.pkl.h5").rename(tmp_path / "store.pkl")
    assert load_dataset(disguised).storage == "hdf5"
    (tmp_path / "pickle.h5").write_bytes(pkl.read_bytes())
    assert load_dataset(tmp_path / "pickle.h5").storage == "memory"


def test_failed_conversion_leaves_no_partial_output_and_keeps_out(tmp_path):
    data = tiny()
    data["test"]["audio"] = data["test"]["audio"][:1]  # invalid: counts disagree
    bad = write_pickle(data, tmp_path / "bad.pkl")
    out = tmp_path / "out.h5"
    out.write_bytes(b"previous content")
    with pytest.raises(DataError, match="split 'test', key 'audio'"):
        convert_pickle_to_hdf5(bad, out)
    assert out.read_bytes() == b"previous content"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.pkl", "out.h5"]


def test_failure_while_writing_leaves_nothing(tmp_path):
    data = tiny()
    data["train"]["weird"] = [{"a": 1}] * 5  # loads safely, but the store holds no dicts in lists
    src = write_pickle(data, tmp_path / "w.pkl")
    with pytest.raises(DataError, match="split 'train', key 'weird'"):
        convert_pickle_to_hdf5(src, tmp_path / "w.h5")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["w.pkl"]


def test_conversion_refuses_to_overwrite_its_input(pkl):
    with pytest.raises(DataError, match="the output is the input"):
        convert_pickle_to_hdf5(pkl, pkl)


def test_truncated_hdf5_is_a_clear_error(pkl, tmp_path):
    h5 = convert_pickle_to_hdf5(pkl, tmp_path / "d.h5")
    blob = h5.read_bytes()
    h5.write_bytes(blob[: len(blob) // 3])
    with pytest.raises(DataError, match="truncated") as err:
        load_dataset(h5)
    assert str(h5) in str(err.value)
    report = check_file(h5)
    assert not report["ok"] and "truncated" in report["problems"][0]["message"]


def test_hdf5_check_reports_the_same_as_the_pickle(pkl, tmp_path):
    h5 = convert_pickle_to_hdf5(pkl, tmp_path / "d.h5")
    a, b = check_file(pkl), check_file(h5)
    for report in (a, b):
        del report["file"], report["format"], report["size_bytes"]
    assert a == b and a["ok"] and a["dataset"] == "sims"
