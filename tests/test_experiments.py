"""Grid, ablation and comparison: selection, tables, plots, the study and the CLI, with a stand-in trainer.

The stand-in writes a ``results.json`` of the trainer's format whose numbers are
chosen by the test, so the selection rule and the study's bookkeeping can be
checked exactly and fast (in this process, one worker). tests/test_experiments_real.py
runs the real trainer in several worker processes.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from snn_msa.cli import main
from snn_msa.data import load_dataset
from snn_msa.data.synthetic import make_synthetic, write_pickle
from snn_msa.experiments import (
    ExperimentError,
    Run,
    TrainSettings,
    execute_runs,
    run_ablation,
    run_comparison,
    run_grid,
    select_best,
)
from snn_msa.experiments import compare as compare_mod
from snn_msa.experiments import worker as worker_mod
from snn_msa.metrics import METRIC_KEYS
from snn_msa.registry import create_model
from snn_msa.training import NonFiniteLossError
from snn_msa.training.data_source import data_spec
from snn_msa.training.results import RESULTS_FORMAT, write_json

KEYS = ["Mult_acc_2", "Mult_acc_3", "Mult_acc_5", "F1_score", "MAE", "Corr"]


@pytest.fixture(scope="module")
def short_data(tmp_path_factory):
    """SIMS- and SIMS v2-shaped synthetic feature files with short sequences (fast to load and train)."""
    folder = tmp_path_factory.mktemp("data")
    paths = {}
    for like in ("sims", "simsv2"):
        paths[like] = str(write_pickle(make_synthetic(like, (16, 8, 8), seed=0, seq_lens=(8, 12, 10)), folder / f"{like}.pkl"))
    return paths


class FakeTrainer:
    """Stands in for :func:`snn_msa.training.train`: writes results.json with the numbers ``numbers`` gives."""

    def __init__(self, numbers=None, fail=()):
        self.calls: list[TrainSettings] = []
        self.numbers = numbers or (lambda settings: (0.5, 0.5))
        self.fail = set(fail)

    def __call__(self, settings: TrainSettings, dataset=None, *, echo=None):
        self.calls.append(settings)
        out = Path(settings.out)
        for seed in settings.seeds:
            (out / f"seed-{seed}").mkdir(parents=True, exist_ok=True)
        key = (settings.model_overrides.get("scale1"), settings.model_overrides.get("strength"))
        if key in self.fail:
            raise NonFiniteLossError("seed 1111, epoch 2: the validation loss is nan; training stopped.")
        valid, test = self.numbers(settings)
        metrics = {k: test for k in KEYS}
        seeds = [{"seed": s, "best_valid_loss": valid + 0.01 * (s % 2), "checkpoint": str(out / f"seed-{s}" / "best.pt"),
                  "test_metrics": {k: test + 0.01 * (s % 2) for k in KEYS}, "firing_rate": 0.05, "best_epoch": 1}
                 for s in settings.seeds]
        results = {
            "format": RESULTS_FORMAT, "model": settings.model, "dataset": dataset.profile.name,
            "data": data_spec(dataset, settings.data), "recipe": settings.recipe().as_dict(),
            "settings": {**settings.as_dict(), "out": str(out)}, "seeds": seeds,
            "test": {"mean": metrics, "std": {k: 0.01 for k in KEYS}, "n": len(seeds)},
            "firing_rate": {"mean": 0.05, "std": 0.0, "n": len(seeds)},
            "best_epoch": {"mean": 1.0, "std": 0.0, "n": len(seeds)},
        }
        write_json(results, out / "results.json")
        return results

    def interrupted_on_the_second_call(self):
        """This trainer, but its second call records its settings and raises KeyboardInterrupt (a Ctrl-C)."""
        def train(settings: TrainSettings, dataset=None, *, echo=None):
            if len(self.calls) == 1:
                self.calls.append(settings)
                raise KeyboardInterrupt
            return self(settings, dataset, echo=echo)

        return train


@pytest.fixture()
def fake(monkeypatch):
    def install(**kwargs) -> FakeTrainer:
        trainer = FakeTrainer(**kwargs)
        monkeypatch.setattr(worker_mod, "train", trainer)
        return trainer

    return install


def base(data: str, **changes) -> TrainSettings:
    return TrainSettings(**{"model": "sgmt-tav", "data": data, "epochs": 1, "quiet": True, **changes})


def disagreeing(settings: TrainSettings) -> tuple[float, float]:
    """Validation prefers (scale1 1, strength 0.05); the test split prefers (0.5, 0): selection must follow validation."""
    scale1, strength = settings.model_overrides["scale1"], settings.model_overrides["strength"]
    valid = {(0.5, 0.0): 0.40, (1.0, 0.0): 0.35, (0.5, 0.05): 0.38, (1.0, 0.05): 0.30}[(scale1, strength)]
    test = {(0.5, 0.0): 0.90, (1.0, 0.0): 0.60, (0.5, 0.05): 0.70, (1.0, 0.05): 0.50}[(scale1, strength)]
    return valid, test


def read_csv(path) -> list[dict]:
    with open(path, newline="") as stream:
        return list(csv.DictReader(stream))


# --- selection ----------------------------------------------------------------------------------


def test_selection_is_on_validation_loss_never_on_test():
    rows = [
        {"valid_loss_mean": 0.40, "Mult_acc_5_mean": 0.90, "MAE_mean": 0.10},  # best on every test metric
        {"valid_loss_mean": 0.30, "Mult_acc_5_mean": 0.50, "MAE_mean": 0.50},  # best validation loss
        {"valid_loss_mean": None, "Mult_acc_5_mean": None},  # failed
        {"valid_loss_mean": 0.30, "Mult_acc_5_mean": 0.95},  # tie: the first one wins
    ]
    assert select_best(rows) == 1
    assert select_best([{"valid_loss_mean": None}, {"valid_loss_mean": float("nan")}]) is None
    assert select_best([]) is None


# --- grid ---------------------------------------------------------------------------------------


def test_grid_writes_csv_markdown_and_png_with_the_validation_best_marked(fake, short_data, tmp_path):
    trainer = fake(numbers=disagreeing)
    result = run_grid("sgmt-tav", [0.5, 1.0], [0.0, 0.05], base(short_data["sims"]), tmp_path / "g")
    assert len(trainer.calls) == 4
    rows = read_csv(tmp_path / "g" / "grid.csv")
    assert len(rows) == 4
    assert [(float(r["scale1"]), float(r["strength"])) for r in rows] == [(0.5, 0.0), (1.0, 0.0), (0.5, 0.05), (1.0, 0.05)]
    best = [r for r in rows if r["best"] == "True"]
    assert len(best) == 1 and (float(best[0]["scale1"]), float(best[0]["strength"])) == (1.0, 0.05)
    assert {"Mult_acc_5_mean", "Mult_acc_5_std", "MAE_mean", "MAE_std", "firing_rate_mean", "valid_loss_mean"} <= set(rows[0])
    assert result["best_row"]["scale1"] == 1.0 and result["best_row"]["strength"] == 0.05

    text = (tmp_path / "g" / "grid.md").read_text()
    marked = [line for line in text.splitlines() if line.startswith("|") and "◀ best" in line]
    assert len(marked) == 1 and marked[0].startswith("| **0.05** | **1** |")
    assert "Best cell: scale1 = 1, strength = 0.05" in text and "grid.png" in text

    png = (tmp_path / "g" / "grid.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) < 200_000


def test_a_finished_study_trains_nothing_and_only_rebuilds_the_tables(fake, short_data, tmp_path):
    trainer = fake(numbers=disagreeing)
    settings = base(short_data["sims"])
    first = run_grid("sgmt-tav", [0.5, 1.0], [0.0, 0.05], settings, tmp_path / "g")
    assert sorted(Path(c.out).name for c in trainer.calls) == sorted(f"{r['run']}_seed-1111" for r in first["rows"])
    (tmp_path / "g" / "grid.md").unlink()
    trainer.calls.clear()

    lines: list[str] = []
    again = run_grid("sgmt-tav", [0.5, 1.0], [0.0, 0.05], settings, tmp_path / "g", echo=lines.append)
    assert trainer.calls == []
    assert "4 with a result, 0 to train" in lines[0]
    assert (tmp_path / "g" / "grid.md").read_text() == first["markdown"] + "\n"
    assert again["rows"] == first["rows"]


def test_an_interrupted_trial_is_queued_again_by_the_next_command(fake, short_data, tmp_path, monkeypatch):
    trainer = fake(numbers=disagreeing)
    settings = base(short_data["sims"])
    monkeypatch.setattr(worker_mod, "train", trainer.interrupted_on_the_second_call())
    with pytest.raises(KeyboardInterrupt):
        run_grid("sgmt-tav", [0.5, 1.0], [0.0], settings, tmp_path / "g")
    stopped = Path(trainer.calls[1].out).name
    monkeypatch.setattr(worker_mod, "train", trainer)
    trainer.calls.clear()
    lines: list[str] = []
    result = run_grid("sgmt-tav", [0.5, 1.0], [0.0], settings, tmp_path / "g", echo=lines.append)
    assert [Path(c.out).name for c in trainer.calls] == [stopped]  # only the interrupted trial trains again
    assert "1 with a result, 1 to train" in lines[0]
    assert [r["status"] for r in result["rows"]] == ["done", "done"]


def test_a_folder_already_finished_is_read_not_trained_by_a_new_study(fake, short_data, tmp_path):
    trainer = fake(numbers=disagreeing)
    settings = base(short_data["sims"])
    first = run_grid("sgmt-tav", [0.5, 1.0], [0.0], settings, tmp_path / "g")
    (tmp_path / "g" / "study.journal").unlink()  # the study is lost; the run folders are not
    trainer.calls.clear()
    again = run_grid("sgmt-tav", [0.5, 1.0], [0.0], settings, tmp_path / "g")
    assert trainer.calls == [] and again["rows"] == first["rows"]


def test_a_finished_folder_built_with_another_default_is_refused(fake, short_data, tmp_path):
    """A run finished when a default was different (V_th 1 before 0.75) has other settings: not read as this cell."""
    trainer = fake(numbers=disagreeing)
    settings = base(short_data["sims"])
    run_grid("sgmt-tav", [0.5, 1.0], [0.0], settings, tmp_path / "g")
    (tmp_path / "g" / "study.journal").unlink()
    for path in (tmp_path / "g").glob("runs/*/results.json"):
        results = json.loads(path.read_text())
        results["model_config"] = {"scale1": results["settings"]["model_overrides"]["scale1"],
                                   "neuron": {"v_threshold": 1.0, "strength": 0.0}}
        path.write_text(json.dumps(results))
    trainer.calls.clear()
    with pytest.raises(ExperimentError, match=r"neuron.v_threshold: 1.0 then, 0.75 now.*another --out"):
        run_grid("sgmt-tav", [0.5, 1.0], [0.0], settings, tmp_path / "g")
    assert trainer.calls == []


def test_a_study_of_another_experiment_is_refused(fake, short_data, tmp_path):
    fake()
    settings = base(short_data["sims"])
    run_grid("sgmt-tav", [0.5, 1.0], [0.0], settings, tmp_path / "g")
    with pytest.raises(ExperimentError, match="holds another experiment .runs: the study has"):
        run_grid("sgmt-tav", [0.5], [0.0], settings, tmp_path / "g")
    with pytest.raises(ExperimentError, match="holds another experiment .command: the study has .grid"):
        run_ablation(settings, tmp_path / "g")
    with pytest.raises(ExperimentError, match="holds another experiment .seeds"):
        run_grid("sgmt-tav", [0.5, 1.0], [0.0], settings.with_changes(seeds=(1, 2)), tmp_path / "g")
    # Another study name in the same folder is another experiment: allowed.
    result = run_grid("sgmt-tav", [0.5], [0.0], settings, tmp_path / "g", study="small")
    assert len(result["rows"]) == 1


def test_a_folder_with_runs_on_other_data_is_refused(fake, short_data, tmp_path):
    fake()
    run_grid("sgmt-tav", [0.5], [0.0], base(short_data["sims"]), tmp_path / "g")
    other = short_data["sims"].replace("sims.pkl", "other.pkl")
    write_pickle(make_synthetic("sims", (16, 8, 8), seed=5, seq_lens=(8, 12, 10)), other)
    with pytest.raises(ExperimentError, match="holds another experiment .data"):
        run_grid("sgmt-tav", [0.5], [0.0], base(other), tmp_path / "g")
    # Without the study, the run folder's results.json still names its data.
    with pytest.raises(ExperimentError, match="holds a run on other data"):
        run_grid("sgmt-tav", [0.5], [0.0], base(other), tmp_path / "g", study="fresh")
    # The same file name with other content is caught by the fingerprint.
    write_pickle(make_synthetic("sims", (16, 8, 8), seed=5, seq_lens=(8, 12, 10)), tmp_path / "same.pkl")
    run_grid("sgmt-tav", [0.5], [0.0], base(str(tmp_path / "same.pkl")), tmp_path / "h")
    write_pickle(make_synthetic("sims", (16, 8, 8), seed=6, seq_lens=(8, 12, 10)), tmp_path / "same.pkl")
    with pytest.raises(ExperimentError, match="whose content differs"):
        run_grid("sgmt-tav", [0.5], [0.0], base(str(tmp_path / "same.pkl")), tmp_path / "h", study="fresh")


def test_an_unreachable_storage_is_one_clear_error(fake, short_data, tmp_path):
    fake()
    with pytest.raises(ExperimentError, match="--storage sqlite:///.*cannot be used: .*Check the URL"):
        run_grid("sgmt-tav", [0.5], [0.0], base(short_data["sims"]), tmp_path / "g",
                 storage=f"sqlite:///{tmp_path}/no/such/folder/x.db")
    # Nothing listens on port 9 (or the driver is missing): either way one line, without the password.
    with pytest.raises(ExperimentError, match="postgresql://snn:\\*\\*\\*@127.0.0.1:9/db(: its database driver| cannot)"):
        run_grid("sgmt-tav", [0.5], [0.0], base(short_data["sims"]), tmp_path / "g",
                 storage="postgresql://snn:secret@127.0.0.1:9/db")
    assert not (tmp_path / "g" / "runs").exists()


def test_a_failed_cell_is_reported_and_skipped_by_the_selection(fake, short_data, tmp_path):
    fake(numbers=disagreeing, fail={(1.0, 0.05)})
    result = run_grid("sgmt-tav", [0.5, 1.0], [0.0, 0.05], base(short_data["sims"]), tmp_path / "g")
    assert [r["status"] for r in result["rows"]] == ["done", "done", "done", "failed"]
    assert result["best_row"]["scale1"] == 1.0 and result["best_row"]["strength"] == 0.0
    text = Path(result["files"]["md"]).read_text()
    assert "Failed cells" in text and "validation loss is nan" in text


@pytest.mark.parametrize(
    "scale1s, strengths, words",
    [
        ([], [0.0], "--scale1 needs at least one value"),
        ([0.5], [-0.01], "every --strength value must be >= 0"),
        ([0.0], [0.0], "every --scale1 value must be > 0"),
        ([0.5, 0.5], [0.0], "more than once"),
        ([float("nan")], [0.0], "finite"),
    ],
)
def test_bad_grid_values_are_refused(scale1s, strengths, words, tmp_path):
    with pytest.raises(ExperimentError, match=words):
        run_grid("sgmt-tav", scale1s, strengths, base(None), tmp_path / "g")


def test_jobs_must_be_at_least_one(short_data, tmp_path):
    with pytest.raises(ExperimentError, match="jobs must be an integer >= 1"):
        execute_runs([Run("sgmt-tav")], base(short_data["sims"]), tmp_path, jobs=0)


# --- ablation and comparison --------------------------------------------------------------------


def test_ablation_has_four_rows_in_the_papers_order_with_paper_numbers_on_simsv2(fake, short_data, tmp_path):
    trainer = fake()
    run_ablation(base(short_data["simsv2"], seeds=(1, 2)), tmp_path / "a")
    # One trial per (model, seed), each training one seed.
    assert sorted((c.model, c.seeds) for c in trainer.calls) == [(m, (s,)) for m in ("sgmt-av", "sgmt-ta", "sgmt-tav", "sgmt-tv")
                                                                  for s in (1, 2)]
    assert all(c.data == short_data["simsv2"] for c in trainer.calls)
    rows = read_csv(tmp_path / "a" / "ablation.csv")
    assert [r["label"] for r in rows] == ["A+V", "T+V", "T+A", "T+A+V"]
    assert float(rows[0]["Mult_acc_5_paper"]) == 0.4855 and float(rows[3]["MAE_paper"]) == 0.3006
    text = (tmp_path / "a" / "ablation.md").read_text()
    assert text.count("| paper |") == 4 and "0.5050 ± 0.0050" in text  # seeds 1 and 2: 0.51 and 0.50

    on_sims = run_ablation(base(short_data["sims"]), tmp_path / "a-sims")
    assert all(not r["paper"] for r in on_sims["rows"]) and "| paper |" not in on_sims["markdown"]


def test_comparison_without_energy_still_carries_the_paper_numbers(fake, short_data, tmp_path):
    fake()
    result = run_comparison(["sgmt-tav", "sgmt-ta"], base(short_data["simsv2"]), tmp_path / "c", energy_samples=0)
    assert [r["model"] for r in result["rows"]] == ["sgmt-tav", "sgmt-ta"]
    assert result["rows"][0]["Corr_paper"] == 0.7247 and result["rows"][0]["energy_pj_per_sample"] is None
    assert "energy / sample" not in result["markdown"]
    with pytest.raises(ExperimentError, match="at least one model"):
        run_comparison([], base(short_data["simsv2"]), tmp_path / "c")


# --- command line -------------------------------------------------------------------------------


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def test_grid_command_prints_the_table_and_json(fake, short_data, tmp_path):
    fake(numbers=disagreeing)
    out = tmp_path / "cli"
    result = invoke("grid", "--scale1", "0.5,1", "--strength", "0,0.05", "--data", short_data["sims"], "--epochs", "1",
                    "--d-model", "16", "--out", out)
    assert result.exit_code == 0, result.output
    assert "◀ best" in result.output and f"wrote {out / 'grid.csv'}" in result.output
    assert "4 trial(s) (4 run(s) x 1 seed(s))" in result.output and (out / "grid.png").is_file()

    again = invoke("grid", "--scale1", "0.5,1", "--strength", "0,0.05", "--data", short_data["sims"], "--epochs", "1",
                   "--d-model", "16", "--out", out, "--json")
    assert again.exit_code == 0, again.output
    payload = json.loads(again.stdout)
    assert payload["best_row"]["scale1"] == 1.0 and {r["status"] for r in payload["rows"]} == {"done"}
    assert "4 with a result, 0 to train" in again.stderr
    assert all("d_model-16" in r["run"] for r in payload["rows"])


def test_ablate_and_compare_commands(fake, short_data, tmp_path):
    trainer = fake()
    result = invoke("ablate", "--data", short_data["simsv2"], "--epochs", "1", "--strength", "0.05", "--out", tmp_path / "a")
    assert result.exit_code == 0, result.output
    assert "T+A+V" in result.output and (tmp_path / "a" / "ablation.csv").is_file()
    assert {c.model_overrides["strength"] for c in trainer.calls} == {0.05}
    result = invoke("compare", "--models", "sgmt-tav,sgmt-av", "--data", short_data["simsv2"], "--energy-samples", "0",
                    "--out", tmp_path / "c")
    assert result.exit_code == 0, result.output
    assert "| sgmt-av | ours |" in result.output and (tmp_path / "c" / "compare.md").is_file()


@pytest.mark.parametrize(
    "args, words",
    [
        (["grid", "--scale1", ""], "--scale1 needs at least one number"),
        (["grid", "--scale1", "0.5,big"], "'big' is not a number"),
        (["grid", "--strength", "0,-0.1"], "every --strength value must be >= 0"),
        (["grid", "--model", "sgmt-tva"], "unknown model 'sgmt-tva'"),
        (["grid", "--seeds", "x"], "--seeds takes integers"),
        (["ablate", "--strength", "-1"], "--strength must be a number >= 0"),
        (["compare", "--models", ""], "--models needs at least one zoo entry"),
        (["compare", "--models", "sgmt-tav,nope"], "unknown model 'nope'"),
        (["compare", "--energy-samples", "-2"], "--energy-samples must be 0 or more"),
    ],
)
def test_bad_arguments_fail_with_a_message(args, words, tmp_path):
    result = invoke(*args, "--out", tmp_path / "x")
    assert result.exit_code == 1, result.output
    assert words in result.output and "Traceback" not in result.output


@pytest.mark.parametrize(
    "args, words",
    [
        (["grid", "--jobs", "0"], "Invalid value for '--jobs': 0 is not in the range x>=1."),
        (["ablate", "--threads", "-1"], "Invalid value for '--threads': -1 is not in the range x>=0."),
        (["compare", "--dataset", "imdb"], "Invalid value for '--dataset': 'imdb' is not one of 'sims', 'simsv2', 'mosi', 'mosei'."),
        (["grid", "--heartbeat", "0"], "Invalid value for '--heartbeat': 0 is not in the range x>=1."),
    ],
)
def test_bad_option_values_are_usage_errors(args, words, tmp_path):
    result = invoke(*args, "--out", tmp_path / "x")
    assert result.exit_code == 2, result.output
    assert words in result.output and "Traceback" not in result.output


def _declared(command) -> dict[str, tuple]:
    return {p.name: (p.type.to_info_dict(), p.default, p.help, tuple(p.opts)) for p in command.params}


def test_train_options_are_declared_once_for_every_command():
    """Train's data, seed, recipe, override and device options are the same objects' copies in every experiment."""
    from snn_msa.cli.experiments_cmd import ablate, compare, grid
    from snn_msa.cli.train_cmd import train

    shared = {name: spec for name, spec in _declared(train).items()
              if name not in ("model", "out", "resume", "overwrite", "quiet", "json_")}
    assert {"weight_decay", "grad_clip", "threads", "dataset"} <= set(shared)
    for command in (grid, ablate, compare):
        declared = _declared(command)
        for name, spec in shared.items():
            if command is grid and name in ("scale1", "strength"):
                continue  # the grid's own comma-separated lists
            assert declared.get(name) == spec, f"{command.name} --{name} drifted from train's"
    for command in (train, grid):
        assert "sims, simsv2" not in " ".join(p.help or "" for p in command.params)  # names come from the profiles


def test_weight_decay_and_grad_clip_reach_every_run(fake, short_data, tmp_path):
    trainer = fake()
    result = invoke("ablate", "--data", short_data["sims"], "--epochs", "1", "--weight-decay", "0.01", "--grad-clip", "0",
                    "--out", tmp_path / "a")
    assert result.exit_code == 0, result.output
    assert {(c.weight_decay, c.grad_clip) for c in trainer.calls} == {(0.01, 0.0)}


def test_a_metric_the_dataset_does_not_report_is_refused(fake, short_data, tmp_path):
    fake()
    result = invoke("grid", "--data", short_data["sims"], "--metric", "Mult_acc_7", "--out", tmp_path / "x")
    assert result.exit_code == 1 and "not reported on sims" in result.output


def test_default_synthetic_data_needs_no_file(fake, tmp_path):
    trainer = fake()
    dataset = load_dataset(None, "sims", synthetic_sizes=(16, 8, 8))
    result = run_grid("sgmt-tav", [0.5], [0.01], TrainSettings(model="sgmt-tav", epochs=1), tmp_path / "g", dataset=dataset)
    assert result["synthetic"] and len(trainer.calls) == 1 and "SYNTHETIC" in result["markdown"]


def test_the_default_folder_is_named_after_the_command_model_and_data(fake, tmp_path, monkeypatch):
    fake()
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, ["grid", "--scale1", "0.5", "--strength", "0", "--epochs", "1", "--dataset", "mosi"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "runs" / "grid-sgmt-tav-synthetic-mosi" / "grid.csv").is_file()
    assert "Mult_acc_7" in result.output  # MOSI's key metric


def test_comparison_has_table_1s_layout_for_baselines_and_sgmt(fake, short_data, tmp_path, monkeypatch):
    """Every MMSA metric, parameters, both energies, ACs and MACs, and the paper's row under each model that has one."""
    fake()
    counted = {"energy_pj": 1.5e6, "memory_pj": 4.0e6, "ac": 2.0e5, "mac": 3.0e5, "side": "snn", "samples": 4}
    asked = []

    def energy_per_sample(outcome, data, samples):
        asked.append(outcome.run.model)
        return dict(counted)

    monkeypatch.setattr(compare_mod, "energy_per_sample", energy_per_sample)
    result = run_comparison(["sgmt-tav", "mult", "tfn"], base(short_data["simsv2"]), tmp_path / "c", energy_samples=4)
    rows = {r["model"]: r for r in result["rows"]}
    assert result["metric_keys"] == METRIC_KEYS["sims"]
    assert rows["sgmt-tav"]["energy_memory_pj_per_sample"] == 4.0e6 and rows["sgmt-tav"]["mac_per_sample"] == 3.0e5
    assert asked == ["sgmt-tav", "mult", "tfn"]  # the energy counter counts every model
    assert rows["tfn"]["ac_per_sample"] == 2.0e5
    assert rows["mult"]["Mult_acc_5_paper"] == 0.5481 and rows["tfn"]["MAE_paper"] == 0.3031
    assert rows["mult"]["recipe"] == "lr 0.002, batch 16, wd 0.001, clip 0.6"
    mult = create_model("mult", dataset="simsv2", feature_dims=load_dataset(short_data["simsv2"]).feature_dims)
    assert rows["mult"]["parameters"] == sum(p.numel() for p in mult.parameters())
    text = result["markdown"]
    for header in ("parameters", "energy / sample (45 nm)", "energy / sample (memory-aware)", "ACs / sample",
                   "MACs / sample", *METRIC_KEYS["sims"]):
        assert f" {header} |" in text
    assert "| mult | ours |" in text and "|  | paper | – | 0.7319 | 0.5481 | 0.8073 | 0.2905 | 0.7378 |" in text
    assert "1.500 µJ" in text and "4.000 µJ" in text and "200,000" in text
    assert "mult: lr 0.002, batch 16" in text
    assert "energy_memory_pj_per_sample" in read_csv(result["files"]["csv"])[0]


def test_comparison_on_mosei_shaped_data_has_table_2s_columns(fake, tmp_path):
    fake()
    data = str(write_pickle(make_synthetic("mosei", (16, 8, 8), seed=0, seq_lens=(8, 12, 10)), tmp_path / "mosei.pkl"))
    result = run_comparison(["mult", "lmf"], base(data), tmp_path / "c", energy_samples=0)
    assert result["metric_keys"] == METRIC_KEYS["mosi"]
    mult = result["rows"][0]
    assert mult["Mult_acc_7_paper"] == 0.518 and mult["Non0_acc_2_paper"] == 0.825 and mult["Mult_acc_5_paper"] is None
    assert "Table 2, CMU-MOSEI" in result["markdown"]


def test_comparison_refuses_sgmt_overrides_for_baselines_before_training(fake, short_data, tmp_path):
    trainer = fake()
    with pytest.raises(ExperimentError, match="mult cannot take the shared model overrides \\(scale1=1.0\\)"):
        run_comparison(["sgmt-tav", "mult"], base(short_data["simsv2"], model_overrides={"scale1": 1.0}), tmp_path / "c",
                       energy_samples=0)
    assert trainer.calls == []
