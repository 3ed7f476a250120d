"""``snn-msa data synth | check | convert`` through click's CliRunner."""

from __future__ import annotations

import json
import pickle

import numpy as np
import pytest
from click.testing import CliRunner

from snn_msa.cli import main
from snn_msa.data.synthetic import make_synthetic, write_pickle


@pytest.fixture()
def run():
    runner = CliRunner()

    def invoke(*args: str):
        return runner.invoke(main, ["data", *map(str, args)])

    return invoke


def test_synth_check_convert_round_trip(run, tmp_path):
    pkl, h5, back = tmp_path / "s.pkl", tmp_path / "s.h5", tmp_path / "back.pkl"
    result = run("synth", "--like", "sims", "--out", pkl, "--n", "4,2,2", "--seed", "3")
    assert result.exit_code == 0, result.output
    assert "SYNTHETIC" in result.output and "CH-SIMS" in result.output

    result = run("check", pkl)
    assert result.exit_code == 0, result.output
    assert "CH-SIMS (sims)" in result.output and "SYNTHETIC" in result.output and "OK: usable" in result.output

    assert run("convert", pkl, h5).exit_code == 0
    result = run("convert", h5, back)
    assert result.exit_code == 0 and "pickle" in result.output
    a, b = pickle.loads(pkl.read_bytes()), pickle.loads(back.read_bytes())
    assert np.array_equal(a["train"]["vision"], b["train"]["vision"]) and a["valid"]["id"].tolist() == b["valid"]["id"].tolist()

    report = json.loads(run("check", h5, "--json").output)
    assert report["ok"] and report["format"] == "hdf5" and report["dataset"] == "sims"
    train = report["splits"]["train"]
    assert train["samples"] == 4 and train["modality_labels"] and train["shapes"]["audio"] == [4, 400, 33]
    assert train["feature_dims"] == [768, 33, 709] and "nonfinite_cleaned" in train


def test_synth_h5_and_aligned(run, tmp_path):
    out = tmp_path / "m.h5"
    assert run("synth", "--like", "mosi", "--out", out, "--n", "2,1,1", "--aligned").exit_code == 0
    report = json.loads(run("check", out, "--json", "--dataset", "mosi").output)
    assert report["ok"] and report["aligned"] and report["seq_lens"] == [50, 50, 50]


def test_check_fails_with_exit_1_and_lists_the_problems(run, tmp_path):
    data = make_synthetic("mosi", (2, 1, 1), seq_lens=(8, 4, 4))
    del data["valid"]["vision"]
    path = write_pickle(data, tmp_path / "bad.pkl")
    result = run("check", path)
    assert result.exit_code == 1 and "NOT USABLE" in result.output and "valid/vision" in result.output
    result = run("check", path, "--json")
    assert result.exit_code == 1 and json.loads(result.output)["problems"][0]["key"] == "vision"
    result = run("check", path, "--dataset", "sims", "--json")
    assert "use --dataset mosi" in result.output


def test_check_a_file_that_is_not_data(run, tmp_path):
    path = tmp_path / "x.h5"
    path.write_text("hello")
    result = run("check", path)
    assert result.exit_code == 1 and "not a pickle or an HDF5 file" in result.output
    assert "Traceback" not in result.output


def test_expected_failures_are_click_errors(run, tmp_path):
    pkl = write_pickle(make_synthetic("mosi", (2, 1, 1), seq_lens=(8, 4, 4)), tmp_path / "m.pkl")
    cases = [
        (("convert", pkl, pkl), "same file as IN"),
        (("convert", pkl, tmp_path / "m.txt"), "cannot tell the output format"),
        (("convert", pkl, tmp_path / "again.pkl"), "already a pickle"),
        (("synth", "--like", "sims", "--out", tmp_path / "x.csv"), "cannot tell the output format"),
        (("synth", "--like", "sims", "--out", tmp_path / "x.pkl", "--n", "3,2"), "three positive counts"),
        (("synth", "--like", "imagenet", "--out", tmp_path / "x.pkl"), "imagenet"),
        (("synth", "--like", "sims", "--out", tmp_path / "no" / "x.pkl", "--n", "1,1,1"), "does not exist"),
    ]
    for args, words in cases:
        result = run(*args)
        assert result.exit_code != 0 and words in result.output, (args, result.output)
        assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.pkl"]


def test_convert_of_a_malicious_pickle_is_refused(run, tmp_path):
    path = tmp_path / "evil.pkl"
    path.write_bytes(pickle.dumps({"train": print}))
    result = run("convert", path, tmp_path / "evil.h5")
    assert result.exit_code == 1 and "refused to load the global 'builtins.print'" in result.output
    assert not (tmp_path / "evil.h5").exists()


# --- standardize -----------------------------------------------------------------------------------


def _valid_cells(split: dict, modality: str) -> np.ndarray:
    """[cells, F] of the split's valid frames, written out sample by sample (the reference)."""
    rows = []
    for i in range(split[modality].shape[0]):
        n = int(split["text_bert"][i, 1].sum()) if modality == "text" else int(split[f"{modality}_lengths"][i])
        rows.append(split[modality][i, :n])
    return np.concatenate(rows).astype(np.float64)


def test_standardize_zscores_each_channel_with_train_statistics_of_valid_frames(run, tmp_path):
    data = make_synthetic("sims", (12, 4, 4), seed=5, seq_lens=(8, 12, 10))
    data["train"]["vision"][:, :, 3] = 7.0  # a constant channel (padding too, which must not count)
    src, dst = write_pickle(data, tmp_path / "raw.pkl"), tmp_path / "z.pkl"
    result = run("standardize", src, dst)
    assert result.exit_code == 0, result.output
    out = pickle.loads(dst.read_bytes())
    for modality in ("text", "audio", "vision"):
        raw = _valid_cells(data["train"], modality)
        finite = np.where(np.isfinite(raw), raw, np.nan)
        mean, std = np.nanmean(finite, axis=0), np.nanstd(finite, axis=0)
        std[std < 1e-8] = 1.0
        for split in ("train", "test"):
            expected = (_valid_cells(data[split], modality) - mean) / std
            np.testing.assert_allclose(_valid_cells(out[split], modality), expected, rtol=1e-4, atol=1e-4)
        padded = out["train"][modality][0, int(data["train"]["text_bert"][0, 1].sum()) if modality == "text"
                                        else data["train"][f"{modality}_lengths"][0]:]
        assert not padded.any()  # padding stays 0
    assert np.isneginf(out["train"]["audio"]).sum() == np.isneginf(data["train"]["audio"]).sum()  # left to loading
    assert not _valid_cells(out["train"], "vision")[:, 3].any()  # the constant channel is only centred
    assert out["train"]["regression_labels"].tolist() == data["train"]["regression_labels"].tolist()


def test_standardize_with_stats_applies_them_and_a_failure_keeps_out(run, tmp_path):
    data = make_synthetic("sims", (12, 4, 4), seed=5, seq_lens=(8, 12, 10))
    src = write_pickle(data, tmp_path / "raw.pkl")
    assert run("standardize", src, tmp_path / "a.pkl").exit_code == 0
    stats = tmp_path / "a.pkl.stats.json"
    again = run("standardize", src, tmp_path / "b.h5", "--stats", stats)
    assert again.exit_code == 0, again.output
    from snn_msa.data.hdf5_store import read_store

    a, b = pickle.loads((tmp_path / "a.pkl").read_bytes()), read_store(tmp_path / "b.h5")
    assert all(np.array_equal(a[s][m], b[s][m]) for s in ("train", "valid", "test") for m in ("text", "audio", "vision"))

    record = json.loads(stats.read_text())
    record["audio"]["mean"] = record["audio"]["mean"][:-1]  # statistics of other features
    (tmp_path / "other.json").write_text(json.dumps(record))
    before = (tmp_path / "a.pkl").read_bytes()
    bad = run("standardize", src, tmp_path / "a.pkl", "--stats", tmp_path / "other.json")
    assert bad.exit_code == 1 and "statistics are for 32 channels" in bad.output and "Traceback" not in bad.output
    assert (tmp_path / "a.pkl").read_bytes() == before
    (tmp_path / "junk.json").write_text("{}")
    bad = run("standardize", src, tmp_path / "c.pkl", "--stats", tmp_path / "junk.json")
    assert bad.exit_code == 1 and "not a statistics file" in bad.output
    assert run("standardize", src, src).exit_code == 1
    assert "name it .pkl" in run("standardize", src, tmp_path / "c.txt").output
