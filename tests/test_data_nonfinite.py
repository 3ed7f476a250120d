"""Non-finite feature cells: counted at valid positions, judged against the documented share, reported."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from snn_msa.cli import main
from snn_msa.data import DataError, load_dataset
from snn_msa.data.check import check_file
from snn_msa.data.hdf5_store import write_store
from snn_msa.data.nonfinite import MAX_NONFINITE_SHARE
from snn_msa.data.synthetic import make_synthetic, write_pickle


def finite_tiny() -> dict:
    """A tiny MOSI-shaped file with no non-finite cell at all (synthetic audio has a few -inf)."""
    data = make_synthetic("mosi", (3, 2, 2), seed=0, seq_lens=(8, 60, 5))
    for split in data.values():
        for key in ("text", "audio", "vision"):
            split[key][~np.isfinite(split[key])] = 0.5
    return data


def reference_share(values: np.ndarray, lengths: np.ndarray) -> tuple[int, int]:
    """Non-finite cells and cells at valid positions, by a plain loop over samples and positions."""
    bad = cells = 0
    for i in range(values.shape[0]):
        for t in range(min(int(lengths[i]), values.shape[1])):
            for value in values[i, t]:
                cells += 1
                bad += not np.isfinite(value)
    return bad, cells


def test_counts_cover_valid_positions_only(tmp_path):
    data = finite_tiny()
    train = data["train"]
    lengths = np.asarray(train["audio_lengths"])
    n, frames, _ = train["audio"].shape
    inside = 0
    for i in range(n):
        train["audio"][i, lengths[i]:, :] = np.nan  # padding: never counted
        if lengths[i]:
            train["audio"][i, 0, 0] = -np.inf
            inside += 1
    path = write_pickle(data, tmp_path / "d.pkl")
    loaded = load_dataset(path, allow_nonfinite=True)
    count = loaded.valid_nonfinite["train"]["audio"]
    assert (count.total, count.valid_cells) == reference_share(train["audio"], lengths)
    assert count.kinds == {"-inf": inside, "+inf": 0, "nan": 0}
    # Every cell, padding included, is still set to 0 and counted as cleaned.
    assert loaded.cleaning["train"]["audio"] == int((~np.isfinite(train["audio"])).sum())


def _with_audio_share(tmp_path, bad_cells: int) -> tuple[str, int]:
    """A file whose train audio has ``bad_cells`` NaN at valid positions; returns (path, valid cells)."""
    data = finite_tiny()
    audio, lengths = data["train"]["audio"], np.asarray(data["train"]["audio_lengths"])
    valid = np.arange(audio.shape[1])[None, :] < lengths[:, None]
    flat = np.flatnonzero(np.repeat(valid[:, :, None], audio.shape[2], axis=2))
    audio.reshape(-1)[flat[:bad_cells]] = np.nan
    return str(write_pickle(data, tmp_path / f"share{bad_cells}.pkl")), flat.size


def test_threshold_at_the_limit_warns_and_above_it_fails(tmp_path):
    _, cells = _with_audio_share(tmp_path, 0)
    at_limit = int(np.floor(MAX_NONFINITE_SHARE * cells))
    assert at_limit >= 1 and (at_limit + 1) / cells > MAX_NONFINITE_SHARE
    ok_path, _ = _with_audio_share(tmp_path, at_limit)
    bad_path, _ = _with_audio_share(tmp_path, at_limit + 1)

    report = check_file(ok_path)
    assert report["ok"]
    assert any(p["severity"] == "warning" and p["key"] == "audio" and "not finite" in p["message"]
               for p in report["problems"])
    load_dataset(ok_path)

    report = check_file(bad_path)
    assert not report["ok"]
    errors = [p for p in report["problems"] if p["severity"] == "error"]
    assert [(p["split"], p["key"]) for p in errors] == [("train", "audio")]
    with pytest.raises(DataError, match="--allow-nonfinite"):
        load_dataset(bad_path)
    assert load_dataset(bad_path, allow_nonfinite=True).valid_nonfinite["train"]["audio"].total == at_limit + 1


def all_nan_file(tmp_path, suffix: str = ".pkl"):
    data = make_synthetic("mosi", (4, 2, 2), seed=0, seq_lens=(8, 6, 5))
    for split in data.values():
        for key in ("text", "audio", "vision"):
            split[key][...] = np.nan
    path = tmp_path / f"all_nan{suffix}"
    (write_store if suffix == ".h5" else write_pickle)(data, path)
    return path


@pytest.mark.parametrize("suffix", [".pkl", ".h5"])
def test_an_all_nan_file_fails_data_check_and_train(tmp_path, suffix):
    path = all_nan_file(tmp_path, suffix)
    runner = CliRunner()
    check = runner.invoke(main, ["data", "check", str(path)])
    assert check.exit_code == 1 and "NOT USABLE: 9 errors" in check.output, check.output
    assert "--allow-nonfinite" in check.output
    train = runner.invoke(main, ["train", "--model", "sgmt-tav", "--data", str(path), "--epochs", "1",
                                 "--out", str(tmp_path / "run"), "--d-model", "16", "--heads", "2"])
    assert train.exit_code == 1 and "Traceback" not in train.output
    lines = train.output.strip().splitlines()
    assert len(lines) == 1 and "not finite (" in lines[0] and "--allow-nonfinite" in lines[0], train.output
    assert not (tmp_path / "run").exists()

    accepted = runner.invoke(main, ["data", "check", str(path), "--allow-nonfinite"])
    assert accepted.exit_code == 0 and "--allow-nonfinite" in accepted.output, accepted.output


def test_every_command_that_loads_data_refuses_it_and_accepts_it_when_allowed(tmp_path):
    path = all_nan_file(tmp_path)
    small = ["--d-model", "16", "--heads", "2"]
    commands = {
        "energy": ["energy", "--model", "sgmt-tav", "--data", str(path), "--samples", "2", *small],
        "ablate": ["ablate", "--data", str(path), "--epochs", "1", "--out", str(tmp_path / "ablate"), *small],
        "diagnose": ["diagnose", "--model", "sgmt-tav", "--data", str(path), *small],
    }
    for name, args in commands.items():
        refused = CliRunner().invoke(main, args)
        assert refused.exit_code == 1 and "--allow-nonfinite" in refused.output, (name, refused.output)
        assert len(refused.output.strip().splitlines()) == 1, (name, refused.output)
    accepted = CliRunner().invoke(main, [*commands["energy"], "--allow-nonfinite", "--json"])
    assert accepted.exit_code == 0, accepted.output


def test_a_few_inf_in_audio_stay_usable_and_are_reported(tmp_path):
    path = write_pickle(make_synthetic("sims", (24, 8, 8), seed=3), tmp_path / "sims.pkl")
    result = CliRunner().invoke(main, ["data", "check", str(path), "--json"])
    report = json.loads(result.output)
    assert result.exit_code == 0 and report["ok"]
    audio = report["splits"]["train"]["nonfinite"]["audio"]
    assert audio["-inf"] >= 1 and audio["nan"] == 0 and 0 < audio["share"] <= MAX_NONFINITE_SHARE
    assert set(report["splits"]["train"]["nonfinite"]) == {"audio"}
    assert any(p["severity"] == "warning" and p["key"] == "audio" for p in report["problems"])


def test_a_store_is_not_read_again_to_count(tmp_path, monkeypatch):
    import snn_msa.data.nonfinite as nonfinite

    data = finite_tiny()
    clean = tmp_path / "clean.h5"
    write_store(data, clean)
    data["test"]["vision"][0, 0, 0] = np.nan
    dirty = tmp_path / "dirty.h5"
    write_store(data, dirty)
    scanned = []
    real = nonfinite.count_nonfinite
    monkeypatch.setattr(nonfinite, "count_nonfinite", lambda values, lengths=None: scanned.append(values.name) or real(values, lengths))
    load_dataset(clean).close()
    assert scanned == []  # the counts recorded at conversion are 0: nothing to read
    dirty_data = load_dataset(dirty, allow_nonfinite=True)
    assert scanned == []  # the counts at valid positions were recorded at conversion too
    assert dirty_data.valid_nonfinite["test"]["vision"].kinds["nan"] == 1
    dirty_data.close()
    import h5py

    with h5py.File(dirty, "r+") as f:  # valid positions that differ from those counted: read again
        f["test"]["vision"].attrs[nonfinite.VALID_LENGTHS_ATTR] = "other"
    load_dataset(dirty, allow_nonfinite=True).close()
    assert scanned == ["/test/vision"]
