"""``snn-msa train`` and ``snn-msa eval`` end to end through click's CliRunner."""

from __future__ import annotations

import importlib.metadata
import json
import pickle

import click
import numpy as np
import pytest
import torch
from click.testing import CliRunner

from snn_msa.cli import main
from snn_msa.cli.train_cmd import parse_seeds
from snn_msa.data.synthetic import make_synthetic, write_pickle
from snn_msa.model import SGMT

TINY = ["--d-model", "16", "--heads", "2", "--batch-size", "16"]


@pytest.fixture(scope="module")
def tiny_file(tmp_path_factory):
    """A small SIMS-shaped synthetic feature pickle (24/8/8 samples)."""
    path = tmp_path_factory.mktemp("data") / "tiny_sims.pkl"
    write_pickle(make_synthetic("sims", (24, 8, 8), seed=3), path)
    return path


@pytest.fixture(scope="module")
def trained(tmp_path_factory, tiny_file):
    """One CLI training run: (run folder, CliRunner result)."""
    out = tmp_path_factory.mktemp("cli") / "run"
    result = CliRunner().invoke(main, ["train", "--model", "sgmt-tav", "--data", str(tiny_file), "--epochs", "2",
                                       "--out", str(out), *TINY])
    return out, result


def run(*args: str):
    return CliRunner().invoke(main, list(args))


def test_train_runs_end_to_end_and_prints_progress(trained, tiny_file):
    out, result = trained
    assert result.exit_code == 0, result.output
    text = result.stdout
    assert "sgmt-tav:" in text and "parameters on cpu" in text and "SYNTHETIC" in text
    assert "seed 1111 (1/1)" in text
    for epoch in (1, 2):
        line = next(ln for ln in text.splitlines() if ln.startswith(f"epoch {epoch}/2"))
        assert "train " in line and "valid " in line and "Mult_acc_2" in line and "rate " in line and line.endswith("s")
    assert "test" in text and (out / "results.json").is_file() and (out / "seed-1111/best.pt").is_file()
    results = json.loads((out / "results.json").read_text())
    assert results["data"]["path"] == str(tiny_file.resolve()) and results["recipe"]["max_epochs"] == 2
    assert results["settings"]["model_overrides"] == {"d_model": 16, "heads": 2}


def test_header_and_results_state_the_cleaned_cells(trained, tiny_file):
    import numpy as np

    from snn_msa.data.safe_pickle import restricted_load

    out, result = trained
    content = restricted_load(tiny_file)
    recorded = json.loads((out / "results.json").read_text())["data"]["nonfinite"]
    assert recorded["max_share"] == 0.01 and recorded["allowed"] is False
    parts = []
    for split in ("train", "valid", "test"):
        audio, lengths = content[split]["audio"], np.asarray(content[split]["audio_lengths"])
        valid = np.arange(audio.shape[1])[None, :] < lengths[:, None]
        bad = int(np.isneginf(audio[valid]).sum())  # the synthetic data plants -inf in audio only
        assert recorded["splits"][split]["audio"]["-inf"] == bad
        assert recorded["splits"][split]["audio"]["valid_cells"] == int(valid.sum()) * audio.shape[2]
        assert recorded["splits"][split]["text"]["total"] == recorded["splits"][split]["vision"]["total"] == 0
        if bad:
            parts.append(f"{split} audio {bad} (")
    assert parts, "the synthetic file should hold a few -inf audio cells"
    header = next(line for line in result.stdout.splitlines() if line.startswith("data cleaning: "))
    assert all(part in header for part in parts), header


def test_eval_reproduces_what_train_reported(trained, tiny_file):
    out, _ = trained
    results = json.loads((out / "results.json").read_text())
    checkpoint = str(out / "seed-1111/best.pt")
    result = run("eval", "--checkpoint", checkpoint, "--json")
    assert result.exit_code == 0, result.output
    evaluated = json.loads(result.stdout)
    assert evaluated["metrics"] == results["seeds"][0]["test_metrics"] == results["test"]["mean"]
    assert evaluated["matches_reported"] is True and evaluated["split"] == "test"
    text = run("eval", "--checkpoint", checkpoint, "--data", str(tiny_file))
    assert text.exit_code == 0 and "equal to the test metrics training reported" in text.stdout


def test_json_output_is_pure_json_with_progress_on_stderr(tmp_path, tiny_file):
    result = run("train", "--model", "sgmt-tav-ann", "--data", str(tiny_file), "--epochs", "1", "--out",
                 str(tmp_path / "j"), "--json", *TINY)
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["model"] == "sgmt-tav-ann" and data["seeds"][0]["firing_rate"] is None
    assert "epoch 1/1" in result.stderr


def test_seed_lists_with_an_empty_entry_are_refused_not_shortened():
    with pytest.raises(click.ClickException, match="empty entry in '1111,,1112'"):
        parse_seeds("1111,,1112")
    with pytest.raises(click.ClickException, match="empty entry"):
        parse_seeds("1111,")
    assert parse_seeds(" 1111, 1112 ") == (1111, 1112)


@pytest.mark.parametrize(
    "args, words",
    [
        (["--model", "sgmt-nope"], ["unknown model 'sgmt-nope'", "sgmt-tav", "sgmt-tav-ann", "snn-msa models"]),
        (["--model", "sgmt-tav", "--data", "no/such/file.pkl"], ["no/such/file.pkl", "no such file", "--data"]),
        (["--model", "sgmt-tav", "--seeds", "1,x"], ["--seeds takes integers"]),
        (["--model", "sgmt-tav", "--seeds", "1111,,1112"], ["--seeds has an empty entry in '1111,,1112'"]),
        (["--model", "sgmt-tav", "--seeds", "1111,"], ["--seeds has an empty entry"]),
        (["--model", "sgmt-tav", "--seeds", " , "], ["--seeds needs at least one integer"]),
        (["--model", "sgmt-tav", "--resume"], ["--resume needs --out"]),
        (["--model", "sgmt-tav", "--epochs", "0"], ["epochs must be a positive integer"]),
        (["--model", "sgmt-tav", "--heads", "3"], ["d_model must be a positive multiple of heads"]),
    ],
)
def test_bad_arguments_give_clear_errors(args, words):
    result = run("train", *args)
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    for word in words:
        assert word in result.output


def test_an_unknown_dataset_is_a_usage_error_listing_the_profiles():
    result = run("train", "--model", "sgmt-tav", "--dataset", "imdb")
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert "'imdb' is not one of 'sims', 'simsv2', 'mosi', 'mosei'" in result.output


def test_a_dataset_profile_that_does_not_match_the_file_is_refused(tiny_file):
    result = run("train", "--model", "sgmt-tav", "--data", str(tiny_file), "--dataset", "mosi")
    assert result.exit_code == 1
    assert "(768, 33, 709)" in result.output and "--dataset mosi" in result.output and "use --dataset sims" in result.output


def test_an_occupied_run_folder_needs_resume_or_overwrite(trained, tiny_file):
    out, _ = trained
    result = run("train", "--model", "sgmt-tav", "--data", str(tiny_file), "--out", str(out))
    assert result.exit_code == 1 and "--resume" in result.output and "--overwrite" in result.output


def test_nan_loss_exits_1_with_advice(tmp_path, tiny_file, monkeypatch):
    real_loss = SGMT.loss
    monkeypatch.setattr(SGMT, "loss", lambda self, o, y: (real_loss(self, o, y)[0] * float("nan"), {}))
    result = run("train", "--model", "sgmt-tav", "--data", str(tiny_file), "--epochs", "2", "--out",
                 str(tmp_path / "nan"), *TINY)
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "loss is nan" in result.output and "--lr" in result.output and "snn-msa data check" in result.output


def test_eval_refuses_what_is_not_a_checkpoint(tmp_path):
    foreign = tmp_path / "model.pt"
    torch.save({"weights": torch.zeros(1)}, foreign)
    result = run("eval", "--checkpoint", str(foreign))
    assert result.exit_code == 1 and "not an snn-msa checkpoint" in result.output
    result = run("eval", "--checkpoint", str(tmp_path / "missing.pt"))
    assert result.exit_code == 1 and "no such checkpoint" in result.output


def test_quiet_prints_only_the_summary(tmp_path, tiny_file):
    result = run("train", "--model", "sgmt-ta", "--data", str(tiny_file), "--epochs", "1", "--seeds", "1,2",
                 "--out", str(tmp_path / "q"), "--quiet", *TINY)
    assert result.exit_code == 0, result.output
    assert "epoch" not in result.output and "seed 1 " not in result.output
    assert "test over 2 seeds (mean ± population std, as MMSA):" in result.stdout and "Mult_acc_5" in result.stdout


def test_eval_refuses_data_of_other_dims(trained, tmp_path):
    other = tmp_path / "mosi.pkl"
    write_pickle(make_synthetic("mosi", (4, 2, 2), seed=3), other)
    result = run("eval", "--checkpoint", str(trained[0] / "seed-1111/best.pt"), "--data", str(other))
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "(768, 33, 709)" in result.output and "(768, 5, 20)" in result.output and "--data" in result.output


def nested_pickle(path, in_array: bool, depth: int = 100_000) -> None:
    """A valid tiny feature pickle whose ``train/id`` (or its first item) is a list nested ``depth`` levels deep."""
    data = make_synthetic("sims", (24, 8, 8), seed=3)
    ids = data["train"]["id"]
    if in_array:  # an object array of ids whose first id is the nested list
        data["train"]["id"] = np.array(["PLACEHOLDER", *ids[1:]], dtype=object)
    else:
        data["train"]["id"] = "PLACEHOLDER"
    raw = pickle.dumps(data, protocol=4)
    token = b"\x8c\x0bPLACEHOLDER"  # SHORT_BINUNICODE of the placeholder
    assert raw.count(token) == 1
    path.write_bytes(raw.replace(token, b"]" * depth + b"a" * (depth - 1)))  # EMPTY_LIST x depth, then APPEND


@pytest.mark.parametrize("in_array, reason", [
    (False, "is a list nested more than 8 levels deep"),
    (True, "holds values nested too deeply to read"),
])
def test_a_deeply_nested_pickle_gives_train_the_same_one_line_error_as_data_check(tmp_path, in_array, reason):
    path = tmp_path / "nested.pkl"
    nested_pickle(path, in_array)
    checked = run("data", "check", str(path))
    trained = run("train", "--model", "sgmt-tav", "--data", str(path), "--epochs", "1", "--out", str(tmp_path / "run"))
    assert checked.exit_code == 1 and reason in checked.output, checked.output
    assert trained.exit_code == 1 and len(trained.output.strip().splitlines()) == 1, trained.output
    assert "split 'train'" in trained.output and reason in trained.output
    assert "Recursion" not in checked.output + trained.output and "Traceback" not in trained.output


def test_results_record_the_installed_versions(trained):
    out, _ = trained
    recorded = json.loads((out / "results.json").read_text())["versions"]
    for key, distribution in (("spikingjelly", "spikingjelly"), ("torch", "torch"), ("snn_msa", "snn-msa")):
        assert recorded[key] == importlib.metadata.version(distribution)
