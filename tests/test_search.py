"""The TPE search (`snn-msa grid --sampler tpe`): trials, table, reproducibility, reruns and refusals.

Most tests use the stand-in trainer of tests/test_experiments.py (its numbers are
chosen by the test, so the sorting and the selection can be checked exactly);
one runs the real trainer on tiny data.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from click.testing import CliRunner
from test_experiments import base, fake, read_csv, short_data  # noqa: F401 - fixtures

from snn_msa.cli import main
from snn_msa.experiments import ExperimentError, TrainSettings, run_grid, run_search
from snn_msa.experiments import worker as worker_mod
from snn_msa.experiments.search import sort_rows, tally

RANGES = ((0.25, 3.0), (0.0, 0.1))


def by_point(settings: TrainSettings) -> tuple[float, float]:
    """A validation loss that is a plain function of the point (lowest near scale1 1, strength 0.05),
    and a test value that disagrees (so that the selection can only follow validation)."""
    scale1, strength = settings.model_overrides["scale1"], settings.model_overrides["strength"]
    valid = 0.3 + abs(math.log(scale1)) / 10 + abs(strength - 0.05)
    return valid, 1.0 - valid


def points(trainer) -> list[tuple[float, float]]:
    return [(c.model_overrides["scale1"], c.model_overrides["strength"]) for c in trainer.calls]


def search(data, out, trials=3, ranges=RANGES, **kwargs):
    settings = kwargs.pop("settings", None) or base(data)
    return run_search("sgmt-tav", ranges[0], ranges[1], trials, settings, out, **kwargs)


def test_a_search_of_three_trials_trains_three_points_and_sorts_the_table_by_validation_loss(fake, short_data, tmp_path):
    trainer = fake(numbers=by_point)
    result = search(short_data["sims"], tmp_path / "s")
    tried = points(trainer)
    assert len(tried) == 3 and len(set(tried)) == 3
    assert all(0.25 <= s1 <= 3.0 and 0.0 <= st <= 0.1 for s1, st in tried)
    rows = read_csv(tmp_path / "s" / "search.csv")
    assert len(rows) == 3
    losses = [float(r["valid_loss_mean"]) for r in rows]
    assert losses == sorted(losses)
    # Each row's loss is its own point's (not the sorted order's), and the best is the lowest, never the test's.
    for row in rows:
        expected = by_point(TrainSettings(model="sgmt-tav", model_overrides={"scale1": float(row["scale1"]),
                                                                            "strength": float(row["strength"])}))[0]
        assert float(row["valid_loss_mean"]) == pytest.approx(expected + 0.01)  # the stand-in's odd-seed offset
    assert [r["best"] for r in rows] == ["True", "False", "False"]
    assert result["best_row"]["trial"] == int(rows[0]["trial"])
    text = (tmp_path / "s" / "search.md").read_text()
    marked = [line for line in text.splitlines() if line.startswith("|") and "◀ best" in line]
    assert len(marked) == 1 and marked[0].startswith(f"| **{rows[0]['trial']}** |")
    assert "log-uniform on [0.25, 3], strength uniform on [0, 0.1]" in text
    assert (tmp_path / "s" / "search.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_same_seed_draws_the_same_points_and_another_seed_others(fake, short_data, tmp_path):
    trainer = fake(numbers=by_point)
    search(short_data["sims"], tmp_path / "a")
    first = points(trainer)
    trainer.calls.clear()
    search(short_data["sims"], tmp_path / "b")
    assert points(trainer) == first
    trainer.calls.clear()
    search(short_data["sims"], tmp_path / "c", settings=base(short_data["sims"], seeds=(7,)))
    assert set(points(trainer)).isdisjoint(first)


def test_a_rerun_on_a_finished_search_trains_nothing_and_a_larger_one_continues(fake, short_data, tmp_path):
    trainer = fake(numbers=by_point)
    first = search(short_data["sims"], tmp_path / "s")
    (tmp_path / "s" / "search.md").unlink()
    trainer.calls.clear()
    lines: list[str] = []
    again = search(short_data["sims"], tmp_path / "s", echo=lines.append)
    assert trainer.calls == []
    assert "3 with a result, 0 to train" in lines[0]
    assert again["rows"] == first["rows"]
    assert (tmp_path / "s" / "search.md").read_text() == first["markdown"] + "\n"

    more = search(short_data["sims"], tmp_path / "s", trials=4)
    assert len(trainer.calls) == 1 and len(more["rows"]) == 4


def test_another_range_or_the_grid_on_the_same_study_is_refused(fake, short_data, tmp_path):
    fake(numbers=by_point)
    search(short_data["sims"], tmp_path / "s")
    with pytest.raises(ExperimentError, match="holds another experiment .ranges: the study has"):
        search(short_data["sims"], tmp_path / "s", ranges=((0.5, 3.0), (0.0, 0.1)))
    with pytest.raises(ExperimentError, match='holds another experiment .sampler: the study has "tpe", this command '
                                              'asks for "grid"'):
        run_grid("sgmt-tav", [0.5], [0.0], base(short_data["sims"]), tmp_path / "s")
    run_grid("sgmt-tav", [0.5], [0.0], base(short_data["sims"]), tmp_path / "g")
    with pytest.raises(ExperimentError, match='sampler: the study has "grid", this command asks for "tpe"'):
        search(short_data["sims"], tmp_path / "g")


def test_a_trial_trains_every_seed_and_its_value_is_their_mean_validation_loss(fake, short_data, tmp_path):
    trainer = fake(numbers=by_point)
    result = search(short_data["sims"], tmp_path / "s", trials=2, settings=base(short_data["sims"], seeds=(1, 2)))
    assert sorted(c.seeds for c in trainer.calls) == [(1,), (1,), (2,), (2,)]
    from snn_msa.experiments.study import open_storage

    import optuna

    study = optuna.load_study(study_name="s", storage=open_storage(None, tmp_path / "s"))
    for row in result["rows"]:
        trial = study.trials[row["trial"]]
        # The stand-in adds 0.01 to odd seeds: seeds 1 and 2 give loss + 0.01 and loss.
        assert trial.value == pytest.approx(row["valid_loss_mean"]) and row["seeds"] == 2
        assert row["valid_loss_std"] == pytest.approx(0.005)


def test_an_interrupted_trial_is_trained_again_at_the_same_point(fake, short_data, tmp_path, monkeypatch):
    trainer = fake(numbers=by_point)
    monkeypatch.setattr(worker_mod, "train", trainer.interrupted_on_the_second_call())
    with pytest.raises(KeyboardInterrupt):
        search(short_data["sims"], tmp_path / "s")
    stopped = points(trainer)[1]
    monkeypatch.setattr(worker_mod, "train", trainer)
    trainer.calls.clear()
    result = search(short_data["sims"], tmp_path / "s")
    assert points(trainer)[0] == stopped and len(trainer.calls) == 2
    # ... by the copy the command queued (a fresh seeded sampler might draw the point again by itself).
    import optuna

    from snn_msa.experiments.study import open_storage

    study = optuna.load_study(study_name="s", storage=open_storage(None, tmp_path / "s"))
    retrained = [t for t in study.trials if t.state.name == "COMPLETE" and (t.params["scale1"], t.params["strength"]) == stopped]
    assert len(retrained) == 1 and "fixed_params" in retrained[0].system_attrs
    assert len(result["rows"]) == 3 and stopped in {(r["scale1"], r["strength"]) for r in result["rows"]}


def test_a_failed_trial_counts_as_a_trial_and_is_listed_last(fake, short_data, tmp_path, monkeypatch):
    trainer = fake(numbers=by_point)
    original = trainer.__call__
    from snn_msa.training import NonFiniteLossError

    def nan_on_the_first(settings, dataset=None, *, echo=None):
        if not trainer.calls:
            trainer.calls.append(settings)
            raise NonFiniteLossError("seed 1111, epoch 1: the validation loss is nan; training stopped.")
        return original(settings, dataset, echo=echo)

    monkeypatch.setattr(worker_mod, "train", nan_on_the_first)
    result = search(short_data["sims"], tmp_path / "s")
    assert len(trainer.calls) == 3
    assert [r["status"] for r in result["rows"]] == ["done", "done", "failed"] and result["rows"][2]["trial"] == 0
    assert result["best"] == 0 and "Failed trials" in result["markdown"]


def test_rows_sort_by_validation_loss_with_failures_last():
    rows = [{"trial": 0, "valid_loss_mean": None}, {"trial": 1, "valid_loss_mean": 0.5},
            {"trial": 2, "valid_loss_mean": 0.2}, {"trial": 3, "valid_loss_mean": float("nan")}]
    assert [r["trial"] for r in sort_rows(rows)] == [2, 1, 0, 3]
    assert tally([]).busy() == 0


@pytest.mark.parametrize(
    "ranges, trials, words",
    [
        (((3.0, 0.5), (0.0, 0.1)), 3, "--scale1's range must have LOW < HIGH, got 3:0.5"),
        (((0.5, 0.5), (0.0, 0.1)), 3, "LOW < HIGH"),
        (((0.0, 3.0), (0.0, 0.1)), 3, "--scale1's low end must be > 0 .it is searched on a log scale"),
        (((0.5, 3.0), (-0.1, 0.1)), 3, "--strength's low end must be >= 0, got -0.1"),
        (((0.5, 3.0), (0.1, 0.0)), 3, "--strength's range must have LOW < HIGH"),
        (((0.5, float("inf")), (0.0, 0.1)), 3, "finite"),
        (((0.5, 3.0), (0.0, 0.1)), 0, "--trials must be a whole number >= 1"),
    ],
)
def test_bad_ranges_and_trials_are_refused_before_anything_trains(ranges, trials, words, tmp_path):
    with pytest.raises(ExperimentError, match=words):
        search(None, tmp_path / "s", trials=trials, ranges=ranges)
    assert not (tmp_path / "s").exists()


# --- command line -------------------------------------------------------------------------------


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def test_the_grid_command_with_the_tpe_sampler_prints_the_table_and_json(fake, short_data, tmp_path):
    trainer = fake(numbers=by_point)
    args = ["grid", "--sampler", "tpe", "--trials", "2", "--scale1", "0.25:3", "--strength", "0.01:0.05",
            "--data", short_data["sims"], "--epochs", "1", "--out", tmp_path / "s"]
    result = invoke(*args)
    assert result.exit_code == 0, result.output
    assert "TPE search of 2 trial(s) x 1 seed(s)" in result.output and "◀ best" in result.output
    assert f"wrote {tmp_path / 's' / 'search.csv'}" in result.output and len(trainer.calls) == 2
    again = invoke(*args, "--json")
    assert again.exit_code == 0, again.output
    assert "2 with a result, 0 to train" in again.stderr and len(trainer.calls) == 2
    import json

    payload = json.loads(again.stdout)
    assert payload["sampler"] == "tpe" and payload["ranges"]["scale1"] == {"low": 0.25, "high": 3.0, "scale": "log"}
    assert payload["ranges"]["strength"] == {"low": 0.01, "high": 0.05, "scale": "uniform"}
    assert all(0.01 <= r["strength"] <= 0.05 for r in payload["rows"])
    other = invoke(*args[:-2], "--scale1", "0.5:3", "--out", tmp_path / "s")
    assert other.exit_code == 1 and "holds another experiment (ranges" in other.output


def test_the_tpe_sampler_defaults_to_the_papers_span(fake, short_data, tmp_path):
    fake(numbers=by_point)
    result = invoke("grid", "--sampler", "tpe", "--trials", "1", "--data", short_data["sims"], "--out", tmp_path / "s",
                    "--json")
    assert result.exit_code == 0, result.output
    import json

    ranges = json.loads(result.stdout)["ranges"]
    assert (ranges["scale1"]["low"], ranges["scale1"]["high"], ranges["strength"]["low"], ranges["strength"]["high"]) \
        == (0.5, 3.0, 0.0, 0.1)


@pytest.mark.parametrize(
    "args, words",
    [
        (["--sampler", "tpe", "--scale1", "3:0.5"], "--scale1's range must have LOW < HIGH"),
        (["--sampler", "tpe", "--strength", "-0.1:0.1"], "--strength's low end must be >= 0"),
        (["--sampler", "tpe", "--trials", "0"], "--trials must be 1 or more"),
        (["--sampler", "tpe", "--scale1", "0.5,1,2"], "with --sampler tpe, --scale1 takes a range LOW:HIGH"),
        (["--sampler", "tpe", "--strength", "a:b"], "--strength takes a range of two numbers LOW:HIGH"),
        (["--trials", "5"], "--trials is for --sampler tpe"),
        (["--scale1", "0.25:3"], "ranges LOW:HIGH are for --sampler tpe"),
    ],
)
def test_bad_search_arguments_fail_with_one_line(args, words, fake, tmp_path):
    fake()  # a missing check would train, fast, and exit 0
    result = invoke("grid", *args, "--out", tmp_path / "x")
    assert result.exit_code == 1, result.output
    assert words in result.output and "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert not (tmp_path / "x").exists()


# --- the real trainer ---------------------------------------------------------------------------


def test_a_real_search_trains_distinct_points_and_reruns_without_training(short_data, tmp_path, monkeypatch):
    settings = TrainSettings(model="sgmt-tav", data=short_data["sims"], epochs=1, batch_size=16, quiet=True,
                             model_overrides={"d_model": 16, "heads": 2, "head_hidden": 16})
    first = search(None, tmp_path / "s", trials=2, settings=settings)
    assert len({(r["scale1"], r["strength"]) for r in first["rows"]}) == 2
    assert all(r["status"] == "done" and math.isfinite(r["valid_loss_mean"]) for r in first["rows"])
    assert all((tmp_path / "s" / "runs" / f"{r['run']}_seed-1111" / "results.json").is_file() for r in first["rows"])

    def no_training(*args, **kwargs):
        raise AssertionError("a finished search trained again")

    monkeypatch.setattr(worker_mod, "train", no_training)
    assert search(None, tmp_path / "s", trials=2, settings=settings)["rows"] == first["rows"]
    assert Path(first["files"]["png"]).is_file()
