"""``--tensorboard DIR``: event files that TensorBoard reads, one point per epoch of every promised scalar."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from snn_msa.cli import main
from snn_msa.data.synthetic import make_synthetic, write_pickle
from snn_msa.experiments.runs import Run
from snn_msa.metrics import METRIC_KEYS
from snn_msa.training import TrainSettings

pytest.importorskip("tensorboard")


def scalars(folder: Path) -> dict[str, list[tuple[int, float]]]:
    """Every scalar series in ``folder``'s event files, read with TensorBoard's own reader."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(folder), size_guidance={"scalars": 0})
    events.Reload()
    return {tag: [(e.step, e.value) for e in events.Scalars(tag)] for tag in events.Tags()["scalars"]}


@pytest.fixture(scope="module")
def logged_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("tb")
    data = write_pickle(make_synthetic("sims", (24, 8, 8), seed=3), root / "tiny.pkl")
    result = CliRunner().invoke(main, [
        "train", "--model", "sgmt-tav", "--data", str(data), "--epochs", "2", "--patience", "5", "--d-model", "16",
        "--heads", "2", "--batch-size", "16", "--lr", "0.003", "--out", str(root / "run"), "--tensorboard", str(root / "board"),
    ])
    assert result.exit_code == 0, result.output
    return json.loads((root / "run" / "results.json").read_text()), scalars(root / "board" / "seed-1111")


def test_every_epoch_logs_losses_metrics_rates_and_lr(logged_run):
    results, series = logged_run
    history = results["seeds"][0]["history"]
    assert [step for step, _ in series["loss/train"]] == [1, 2]
    for tag, key in (("loss/train", "train_loss"), ("loss/valid", "valid_loss"), ("loss/valid_total", "valid_total_loss")):
        assert [v for _, v in series[tag]] == pytest.approx([h[key] for h in history], rel=1e-6), tag
    for metric in METRIC_KEYS["sims"]:
        logged = [v for _, v in series.get(f"valid/{metric}", [])]
        expected = [h["valid_metrics"][metric] for h in history if h["valid_metrics"][metric] is not None]
        assert logged == pytest.approx(expected, rel=1e-6), metric
    layers = results["seeds"][0]["firing_rates"]
    assert layers and all(f"firing_rate/{layer}" in series for layer in layers)
    assert [v for _, v in series["firing_rate/mean"]] == pytest.approx([h["firing_rate"] for h in history], rel=1e-5)
    assert [v for _, v in series["lr"]] == pytest.approx([0.003, 0.003])


def test_test_metrics_are_logged_at_the_best_epoch(logged_run):
    results, series = logged_run
    run = results["seeds"][0]
    assert series["loss/test"] == [(run["best_epoch"], pytest.approx(run["test_loss"], rel=1e-6))]
    assert series["test/MAE"] == [(run["best_epoch"], pytest.approx(run["test_metrics"]["MAE"], rel=1e-6))]


def test_each_experiment_run_logs_to_its_own_folder(tmp_path):
    base = TrainSettings(model="sgmt-tav", tensorboard=str(tmp_path / "board"))
    runs = [Run("sgmt-tav", {"scale1": 0.5}), Run("sgmt-tav", {"scale1": 2.0})]
    boards = [run.settings(base, tmp_path / "runs" / run.name(base), resume=False, quiet=True).tensorboard for run in runs]
    assert boards == [str(tmp_path / "board" / run.name(base)) for run in runs] and len(set(boards)) == 2
    assert Run("sgmt-tav").settings(TrainSettings(model="sgmt-tav"), tmp_path, resume=False, quiet=True).tensorboard is None
