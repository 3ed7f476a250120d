"""``snn-msa energy`` through click's CliRunner."""

import json

from click.testing import CliRunner

from snn_msa.cli import main

SMALL = ["--d-model", "16", "--heads", "2", "--samples", "2", "--batch-size", "2"]


def test_json_output(tmp_path):
    plot = tmp_path / "energy.png"
    result = CliRunner().invoke(main, ["energy", "--model", "sgmt-tav", *SMALL, "--json", "--plot", str(plot)])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["data"]["samples"] == 2 and report["totals"]["ann"]["ac"] == 0
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_text_output():
    result = CliRunner().invoke(main, ["energy", "--model", "sgmt-tav", *SMALL])
    assert result.exit_code == 0, result.output
    assert "Totals:" in result.output and "Assumptions:" in result.output


def test_unknown_model_is_a_clear_error():
    result = CliRunner().invoke(main, ["energy", "--model", "sgmt-nope"])
    assert result.exit_code == 1
    assert "Known models" in result.output and "Traceback" not in result.output


def test_unwritable_plot_is_a_clear_error(tmp_path):
    result = CliRunner().invoke(main, ["energy", "--model", "sgmt-tav", "--plot", str(tmp_path / "no" / "x.png")])
    assert result.exit_code == 1
    assert "could not write the plot" in result.output


def train_tiny(tmp_path, model):
    """A one-epoch run of ``model`` on a tiny MOSI-shaped file: (data file, best.pt)."""
    from snn_msa.data.synthetic import make_synthetic, write_pickle

    data = tmp_path / "tiny.pkl"
    write_pickle(make_synthetic("mosi", (8, 4, 4), seed=0, seq_lens=(8, 12, 10)), data)
    out = tmp_path / "run"
    trained = CliRunner().invoke(main, ["train", "--model", model, "--data", str(data), "--epochs", "1",
                                        "--d-model", "16", "--heads", "2", "--out", str(out), "--quiet"])
    assert trained.exit_code == 0, trained.output
    return data, out / "seed-1111" / "best.pt"


def test_checkpoint_from_train_is_counted(tmp_path):
    data, checkpoint = train_tiny(tmp_path, "sgmt-tav")
    for extra in ([], ["--data", str(data)]):
        result = CliRunner().invoke(main, ["energy", "--checkpoint", str(checkpoint), "--samples", "2", "--json", *extra])
        assert result.exit_code == 0, result.output
        report = json.loads(result.output)
        assert report["totals"]["snn"]["mac"] > 0 and report["totals"]["ann"]["ac"] == 0
    for extra in ([], ["--data", str(data)]):
        result = CliRunner().invoke(main, ["energy", "--checkpoint", str(checkpoint), "--dataset", "sims", *extra])
        assert result.exit_code == 1 and "Traceback" not in result.output
        assert "mosi" in result.output and "--dataset" in result.output


def test_checkpoint_of_the_twin_says_which_side_is_trained(tmp_path):
    _, checkpoint = train_tiny(tmp_path, "sgmt-tav-ann")
    result = CliRunner().invoke(main, ["energy", "--checkpoint", str(checkpoint), "--samples", "2", "--json"])
    assert result.exit_code == 0, result.output
    models = json.loads(result.output)["models"]
    assert models["ann"]["name"] == "sgmt-tav-ann" and models["ann"]["weights"].startswith("trained weights from")
    assert models["snn"]["name"] == "sgmt-tav" and models["snn"]["weights"].startswith("untrained")
