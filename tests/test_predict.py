"""``snn-msa predict``: one row per sample, labels optional, the same numbers whatever the batch size."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from click.testing import CliRunner

from snn_msa.cli import main
from snn_msa.data.safe_pickle import restricted_load
from snn_msa.data.synthetic import make_synthetic, write_pickle
from snn_msa.training.predict import predict_checkpoint

SIZES = (8, 4, 6)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A one-epoch sgmt-tav run on a tiny MOSI-shaped file: (data file, best.pt)."""
    root = tmp_path_factory.mktemp("predict")
    data = write_pickle(make_synthetic("mosi", SIZES, seed=0, seq_lens=(8, 12, 10)), root / "tiny.pkl")
    result = CliRunner().invoke(main, ["train", "--model", "sgmt-tav", "--data", str(data), "--epochs", "1",
                                       "--d-model", "16", "--heads", "2", "--out", str(root / "run"), "--quiet"])
    assert result.exit_code == 0, result.output
    return data, root / "run" / "seed-1111" / "best.pt"


def run(*args: str):
    return CliRunner().invoke(main, [str(a) for a in args])


def test_csv_has_one_row_per_sample_with_ids_heads_labels_and_rates(trained, tmp_path):
    data, checkpoint = trained
    out = tmp_path / "p.csv"
    result = run("predict", "--checkpoint", checkpoint, "--split", "all", "--out", out)
    assert result.exit_code == 0, result.output
    with open(out, newline="") as stream:
        rows = list(csv.DictReader(stream))
    assert list(rows[0]) == ["split", "id", "M", "T", "A", "V", "TAV", "label_M", "firing_rate"]
    content = restricted_load(data)
    expected = [(s, str(i), float(label)) for s in ("train", "valid", "test")
                for i, label in zip(content[s]["id"], content[s]["regression_labels"])]
    assert [(r["split"], r["id"]) for r in rows] == [(s, i) for s, i, _ in expected]
    assert [float(r["label_M"]) for r in rows] == pytest.approx([label for _, _, label in expected])
    assert all(0.0 <= float(r["firing_rate"]) <= 1.0 for r in rows)


def test_predictions_do_not_depend_on_the_batch_size(trained):
    _, checkpoint = trained
    runs = [predict_checkpoint(checkpoint, split="all", batch_size=size)["rows"] for size in (1, 3, 32)]
    columns = ["M", "T", "A", "V", "TAV", "firing_rate"]
    reference = np.array([[row[c] for c in columns] for row in runs[0]], dtype=np.float64)
    assert np.isfinite(reference).all() and reference[:, -1].max() > 0
    for rows in runs[1:]:
        assert [r["id"] for r in rows] == [r["id"] for r in runs[0]]
        np.testing.assert_allclose(np.array([[row[c] for c in columns] for row in rows]), reference, rtol=0, atol=1e-5)


def test_a_file_without_labels_is_predicted_and_jsonl_written(trained, tmp_path):
    data, checkpoint = trained
    content = restricted_load(data)
    for split in content.values():
        del split["regression_labels"]
    unlabelled = write_pickle(content, tmp_path / "new.pkl")
    out = tmp_path / "new.jsonl"
    result = run("predict", "--checkpoint", checkpoint, "--data", unlabelled, "--out", out)
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == SIZES[2] and all(r["split"] == "test" for r in rows)
    assert not any(key.startswith("label_") for r in rows for key in r)
    labelled = predict_checkpoint(checkpoint, data, "test")["rows"]
    assert [r["M"] for r in rows] == pytest.approx([r["M"] for r in labelled], abs=1e-6)
    refused = run("eval", "--checkpoint", checkpoint, "--data", unlabelled)
    assert refused.exit_code == 1 and "regression_labels" in refused.output and "Traceback" not in refused.output


def test_bad_output_and_checkpoint_are_one_line_errors_that_write_nothing(trained, tmp_path):
    _, checkpoint = trained
    kept = tmp_path / "kept.csv"
    kept.write_text("old\n")
    broken = tmp_path / "broken.pt"
    broken.write_bytes(b"not a checkpoint")
    for args, words in (
        (["--checkpoint", checkpoint, "--out", tmp_path / "p.txt"], "--format"),
        (["--checkpoint", checkpoint, "--out", tmp_path / "missing" / "p.csv"], "does not exist"),
        (["--checkpoint", broken, "--out", kept], "not a readable torch checkpoint"),
        (["--checkpoint", checkpoint, "--out", kept, "--batch-size", "0"], "at least 1"),
    ):
        result = run("predict", *args)
        assert result.exit_code == 1 and words in result.output, result.output
        assert len(result.output.strip().splitlines()) == 1
    assert kept.read_text() == "old\n" and not (tmp_path / "missing").exists()
