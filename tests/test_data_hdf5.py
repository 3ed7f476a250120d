"""The HDF5 store: same keys and arrays both ways, lazy batches equal to the pickle's, atomic writes."""

from __future__ import annotations

import io
import pickle

import h5py
import numpy as np
import pytest
import torch

from snn_msa.data import DataError, load_dataset
from snn_msa.data.check import check_file
from snn_msa.data.cleaning import FEATURE_KEYS
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


class ReadLog:
    """What h5py actually hands back: each read of a dataset (its path and rows), and the bytes
    the HDF5 library reads from the file itself.

    Reads are counted where they happen (``h5py.Dataset.__getitem__`` and ``read_direct``, which
    ``numpy.asarray(dataset)`` uses; the file through h5py's file-object driver), not from the
    loader's own counters.
    """

    def __init__(self) -> None:
        self.reads: list[tuple[str, np.ndarray]] = []  # (dataset path, the rows read)
        self.file_bytes = 0

    def rows(self, split: str, key: str) -> list[int]:
        """Every row read from ``/split/key``, in order (a row read twice counts twice)."""
        return [int(r) for name, rows in self.reads if name == f"/{split}/{key}" for r in rows]

    def features_read(self) -> list[str]:
        return sorted({name for name, _ in self.reads if name.rsplit("/", 1)[-1] in FEATURE_KEYS})


class _CountingFile(io.FileIO):
    def __init__(self, path, log: ReadLog) -> None:
        super().__init__(path, "r")
        self.log = log

    def readinto(self, buffer) -> int:
        n = super().readinto(buffer)
        self.log.file_bytes += n or 0
        return n

    def read(self, size=-1) -> bytes:
        data = super().read(size)
        self.log.file_bytes += len(data)
        return data


def _rows_selected(dataset, selection) -> np.ndarray:
    """The row numbers a selection touches (the first axis); a scalar or empty dataset has one row."""
    if not dataset.shape:
        return np.zeros(1, dtype=np.int64)
    if isinstance(selection, tuple):
        selection = selection[0] if selection else slice(None)
    if selection is Ellipsis:
        selection = slice(None)
    return np.atleast_1d(np.arange(dataset.shape[0])[selection])


@pytest.fixture()
def read_log(monkeypatch):
    """Counts every read of an HDF5 dataset and every byte the store's file gives up."""
    from snn_msa.data import dataset as dataset_module

    log = ReadLog()
    real_getitem, real_read_direct = h5py.Dataset.__getitem__, h5py.Dataset.read_direct

    def getitem(self, args, new_dtype=None):
        log.reads.append((self.name, _rows_selected(self, args)))
        return real_getitem(self, args, new_dtype=new_dtype)

    def read_direct(self, dest, source_sel=None, dest_sel=None):
        log.reads.append((self.name, _rows_selected(self, slice(None) if source_sel is None else source_sel)))
        return real_read_direct(self, dest, source_sel, dest_sel)

    def open_counted(path):
        return h5py.File(_CountingFile(path, log), "r")

    monkeypatch.setattr(h5py.Dataset, "__getitem__", getitem)
    monkeypatch.setattr(h5py.Dataset, "read_direct", read_direct)
    monkeypatch.setattr(dataset_module, "open_store", open_counted)
    return log


def _big_store(tmp_path, nonfinite: bool):
    """A store whose train features (40 rows, 2.2 MB, about 10 rows a chunk) dwarf everything else;
    its audio holds a -inf (as real SIMS and MOSEI audio does) or only finite cells."""
    data = make_synthetic("sims", (40, 2, 2), seed=4, seq_lens=(8, 20, 10))
    for split in data.values():
        for key in FEATURE_KEYS:
            split[key] = np.nan_to_num(split[key], nan=0.0, posinf=0.0, neginf=0.0)
    if nonfinite:
        data["train"]["audio"][3, 0, 0] = -np.inf
    return convert_pickle_to_hdf5(write_pickle(data, tmp_path / "big.pkl"), tmp_path / "big.h5")


@pytest.fixture()
def big_store(tmp_path):
    return _big_store(tmp_path, nonfinite=True)


def _feature_bytes(path, split: str) -> int:
    with h5py.File(path, "r") as f:
        return sum(f[split][key].id.get_storage_size() for key in FEATURE_KEYS)


@pytest.mark.parametrize("nonfinite", [False, True], ids=["finite", "with-inf-audio"])
def test_opening_a_store_reads_no_feature_array(tmp_path, read_log, nonfinite):
    store = _big_store(tmp_path, nonfinite)
    read_log.reads.clear()  # what the conversion read does not count
    lazy = load_dataset(store)
    assert lazy.storage == "hdf5" and len(lazy.splits["train"]) == 40
    assert lazy.cleaning["train"]["audio"] == int(nonfinite)
    assert read_log.rows("train", "regression_labels") == list(range(40))  # the counting does see reads
    assert read_log.features_read() == []  # shapes and the stored non-finite counts only
    train_features = _feature_bytes(store, "train")
    assert 0 < read_log.file_bytes < 0.1 * train_features, (read_log.file_bytes, train_features)
    lazy.close()


def test_a_batch_reads_its_rows_and_nothing_more(big_store, read_log):
    lazy = load_dataset(big_store)
    split = lazy.splits["train"]
    read_log.reads.clear()  # what opening read is the test above's business
    before = read_log.file_bytes
    batch = split.batch([4, 1])  # unsorted and not contiguous
    assert batch["ids"] == [split.ids[4], split.ids[1]]
    for key in FEATURE_KEYS:
        assert sorted(read_log.rows("train", key)) == [1, 4], key
    # Through the HDF5 library too: the rows' chunks (1 of 4 per modality), not the arrays.
    assert read_log.file_bytes - before < 0.5 * _feature_bytes(big_store, "train")

    loader = split.loader(batch_size=3, shuffle=True, seed=2)
    first = next(iter(loader))
    order = [int(i) for i in loader.order()[:3]]
    assert first["ids"] == [split.ids[i] for i in order]
    for key in FEATURE_KEYS:
        assert sorted(read_log.rows("train", key)) == sorted([1, 4, *order]), key
    assert read_log.features_read() == ["/train/audio", "/train/text", "/train/vision"]
    lazy.close()


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
