"""Bad feature files give a DataError naming file, split and key; cleaning and lengths are counted."""

from __future__ import annotations

import gzip

import numpy as np
import pytest

from snn_msa.data import DataError, load_dataset
from snn_msa.data.check import check_file
from snn_msa.data.synthetic import make_synthetic, write_pickle


def tiny(profile: str = "mosi", **kw) -> dict:
    return make_synthetic(profile, (3, 2, 2), seed=0, seq_lens=(8, 6, 5), **kw)


def written(tmp_path, data, name: str = "d.pkl"):
    return write_pickle(data, tmp_path / name)


def fails(path, split, key, *words, dataset=None) -> str:
    with pytest.raises(DataError) as err:
        load_dataset(path, dataset)
    message = str(err.value)
    assert message.startswith(str(path)), message
    if split:
        assert f"split '{split}'" in message, message
    if key:
        assert f"key '{key}'" in message, message
    for word in words:
        assert word in message, message
    return message


def test_a_valid_tiny_file_loads(tmp_path):
    data = load_dataset(written(tmp_path, tiny()))
    assert data.profile.name == "mosi" and data.seq_lens == (8, 6, 5) and data.feature_dims == (768, 5, 20)
    assert not data.aligned and not data.has_modality_labels and data.is_synthetic


def test_missing_split(tmp_path):
    data = tiny()
    del data["valid"]
    fails(written(tmp_path, data), "valid", None, "missing", "train, valid and test")


def test_missing_key(tmp_path):
    data = tiny()
    del data["test"]["audio"]
    fails(written(tmp_path, data), "test", "audio", "missing")


def test_sample_counts_disagree(tmp_path):
    data = tiny()
    data["train"]["vision"] = data["train"]["vision"][:2]
    fails(written(tmp_path, data), "train", "vision", "has 2 samples but 'text' has 3")


def test_lengths_list_of_wrong_size(tmp_path):
    data = tiny()
    data["valid"]["audio_lengths"] = data["valid"]["audio_lengths"] + [3]
    fails(written(tmp_path, data), "valid", "audio_lengths", "has 3 samples")


@pytest.mark.parametrize("key, cut", [("audio", lambda a: a[:, :, 0]), ("text", lambda a: a[..., None]),
                                      ("regression_labels", lambda a: np.stack([a, a], 1))])
def test_wrong_rank(tmp_path, key, cut):
    data = tiny()
    data["train"][key] = cut(data["train"][key])
    fails(written(tmp_path, data), "train", key, "has shape")


def test_labels_out_of_the_profile_range(tmp_path):
    data = tiny()
    data["test"]["regression_labels"][1] = 3.5
    fails(written(tmp_path, data), "test", "regression_labels", "outside CMU-MOSI's range [-3, 3]")


def test_mosi_labels_in_a_sims_file_suggest_another_dataset(tmp_path):
    data = tiny("sims")
    data["train"]["regression_labels"] *= 2.5
    data["train"]["regression_labels"][0] = 2.5
    fails(written(tmp_path, data), "train", "regression_labels", "CH-SIMS's range [-1, 1]", "mosi/mosei")


def test_non_finite_labels_are_never_cleaned(tmp_path):
    data = tiny("sims")
    data["valid"]["regression_labels_A"][0] = np.nan
    fails(written(tmp_path, data), "valid", "regression_labels_A", "not finite")


def test_lengths_longer_than_the_sequence(tmp_path):
    data = tiny()
    data["train"]["vision_lengths"][2] = 9
    fails(written(tmp_path, data), "train", "vision_lengths", "exceed the 5 frames", "sample 2 has length 9")


@pytest.mark.parametrize("bad, words", [(-1, "cannot be negative"), (2.5, "not whole numbers")])
def test_negative_or_fractional_lengths(tmp_path, bad, words):
    data = tiny()
    lengths = np.asarray(data["train"]["audio_lengths"], dtype=np.float64)
    lengths[0] = bad
    data["train"]["audio_lengths"] = lengths
    fails(written(tmp_path, data), "train", "audio_lengths", words)


def test_empty_split(tmp_path):
    data = tiny()
    data["test"] = {k: (v[:0] if isinstance(v, np.ndarray) else v[:0]) for k, v in data["test"].items()}
    fails(written(tmp_path, data), "test", "text", "empty")


def test_partial_modality_labels(tmp_path):
    data = tiny("sims")
    for split in data.values():
        del split["regression_labels_V"]
    fails(written(tmp_path, data), "train", "regression_labels_V", "come as T, A and V together")


def test_modality_labels_in_some_splits_only(tmp_path):
    data = tiny("sims")
    for m in "TAV":
        del data["test"][f"regression_labels_{m}"]
    fails(written(tmp_path, data), "test", "regression_labels_T", "present in train, valid")


def test_feature_dims_differ_between_splits(tmp_path):
    data = tiny()
    data["valid"]["vision"] = data["valid"]["vision"][:, :, :7]
    fails(written(tmp_path, data), "valid", "vision", "7 features per frame", "split 'train' has 20")


def test_not_a_dict(tmp_path):
    path = written(tmp_path, [1, 2, 3])
    fails(path, None, None, "holds a list")


def test_dims_against_the_named_profile(tmp_path):
    message = fails(written(tmp_path, tiny()), None, None, "--dataset sims expects (768, 33, 709)",
                    "audio and vision differ", "use --dataset mosi", dataset="sims")
    assert "key" not in message


def test_unknown_dims_take_shapes_from_the_file(tmp_path):
    data = tiny()
    for split in data.values():
        split["audio"] = np.concatenate([split["audio"], split["audio"]], axis=2)
    path = written(tmp_path, data)
    dataset = load_dataset(path)  # own feature set: dims from the file, conventions from the labels
    assert dataset.feature_dims[1] == data["train"]["audio"].shape[2]
    assert dataset.profile.feature_dims == dataset.feature_dims
    with pytest.raises(DataError, match="leave out --dataset to take the dims from the file"):
        load_dataset(path, "sims")


def test_unknown_dataset_name(tmp_path):
    with pytest.raises(DataError, match="unknown dataset 'cifar'; choose one of: sims, simsv2, mosi, mosei"):
        load_dataset(written(tmp_path, tiny()), "cifar")
    with pytest.raises(DataError, match="unknown dataset 'cifar'"):
        load_dataset(None, "cifar")


def test_not_a_pickle_or_hdf5(tmp_path):
    path = tmp_path / "notes.pkl"
    path.write_text("text,audio,vision\n1,2,3\n")
    fails(path, None, None, "not a pickle or an HDF5 file")


def test_gzip_empty_missing_and_folder(tmp_path):
    gz = tmp_path / "d.pkl.gz"
    gz.write_bytes(gzip.compress(b"x" * 100))
    fails(gz, None, None, "gzip archive")
    empty = tmp_path / "empty.pkl"
    empty.write_bytes(b"")
    fails(empty, None, None, "empty (0 bytes)")
    fails(tmp_path / "absent.pkl", None, None, "no such file")
    fails(tmp_path, None, None, "is a folder")


def test_several_problems_are_all_reported_by_check(tmp_path):
    data = tiny()
    del data["test"]["vision"]
    data["train"]["audio_lengths"][0] = 99
    data["valid"]["regression_labels"][0] = 7.0
    path = written(tmp_path, data)
    message = fails(path, "train", "audio_lengths", "2 more problems")
    report = check_file(path)
    assert not report["ok"] and report["errors"] == 3
    where = {(p["split"], p["key"]) for p in report["problems"] if p["severity"] == "error"}
    assert where == {("test", "vision"), ("train", "audio_lengths"), ("valid", "regression_labels")}
    assert "snn-msa data check" in message


def test_non_finite_features_are_cleaned_and_counted(tmp_path):
    data = tiny()
    for split in data.values():  # start from no -inf at all
        for key in ("text", "audio", "vision"):
            split[key][~np.isfinite(split[key])] = 0.5
    train = data["train"]
    train["audio"][0, 0, 1] = -np.inf
    train["audio"][1, 2, 3] = -np.inf
    train["vision"][2, 1, 0] = np.nan
    train["text"][0, 3, 5] = np.inf
    path = written(tmp_path, data)
    loaded = load_dataset(path, allow_nonfinite=True)  # a few cells are more than 1% of this tiny file
    assert loaded.cleaning["train"] == {"text": 1, "audio": 2, "vision": 1}
    assert loaded.cleaning["valid"] == {"text": 0, "audio": 0, "vision": 0}
    assert loaded.nonfinite["train"]["audio"] == {"-inf": 2, "+inf": 0, "nan": 0}
    assert "4 non-finite feature cells set to 0" in loaded.describe()
    batch = loaded.splits["train"].batch([0, 1, 2])
    assert batch["audio"][0, 0, 1] == 0 and batch["vision"][2, 1, 0] == 0 and batch["text"][0, 3, 5] == 0
    assert all(bool(batch[k].isfinite().all()) for k in ("text", "audio", "vision"))
    report = check_file(path, allow_nonfinite=True)
    assert report["splits"]["train"]["nonfinite_cleaned"]["audio"] == {"-inf": 2, "+inf": 0, "nan": 0, "total": 2}


def test_lengths_from_lists_arrays_and_the_text_mask(tmp_path):
    data = tiny()
    data["train"]["audio_lengths"] = np.array(data["train"]["audio_lengths"], dtype=np.int32)
    data["train"]["vision_lengths"] = [0, 5, 3]  # zero-length samples exist in real data
    data["train"]["text_bert"][:, 1, :] = 0
    data["train"]["text_bert"][0, 1, :4] = 1
    data["train"]["text_bert"][1, 1, :8] = 1
    data["train"]["regression_labels"] = data["train"]["regression_labels"][:, None]
    path = written(tmp_path, data)
    split = load_dataset(path).splits["train"]
    assert split.lengths("vision").tolist() == [0, 5, 3]
    assert split.lengths("text").tolist() == [4, 8, 0]
    assert split.lengths("audio").tolist() == list(data["train"]["audio_lengths"])
    batch = split.batch([2, 0])
    assert batch["vision_lengths"].tolist() == [3, 0] and batch["text_lengths"].dtype.is_floating_point is False
    assert tuple(batch["labels"]["M"].shape) == (2,)
    report = check_file(path)
    assert report["ok"] and report["splits"]["train"]["zero_lengths"] == {"vision_lengths": 1, "text_bert": 1}
    assert any(p["severity"] == "warning" and p["key"] == "vision_lengths" for p in report["problems"])


def test_aligned_file_and_missing_text_bert(tmp_path):
    data = tiny(aligned=True)
    for split in data.values():
        del split["text_bert"]
    loaded = load_dataset(written(tmp_path, data))
    assert loaded.aligned and loaded.seq_lens == (8, 8, 8)
    batch = next(iter(loaded.splits["test"].loader(2)))
    assert batch["text_lengths"] is None and batch["audio_lengths"] is None and batch["vision_lengths"] is None
