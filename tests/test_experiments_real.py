"""Grid and comparison end to end with the real trainer and energy report, on tiny short-sequence data.

Workers are `snn-msa grid` processes sharing one study in a journal file: two
at once train each trial once; one killed with SIGKILL mid-trial leaves its
trial to the next, and the table equals an uninterrupted run's. A finished
grid run again trains nothing. A comparison counts each model's energy per
sample from its trained checkpoint.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from snn_msa import energy as energy_mod
from snn_msa.data.synthetic import make_synthetic, write_pickle
from snn_msa.experiments import TrainSettings, run_comparison, run_grid
from snn_msa.experiments import worker as worker_mod
from snn_msa.training import train

TINY = {"d_model": 16, "heads": 2, "head_hidden": 16}


@pytest.fixture(scope="module")
def short_data(tmp_path_factory):
    folder = tmp_path_factory.mktemp("data")
    return {like: str(write_pickle(make_synthetic(like, (16, 8, 8), seed=0, seq_lens=(8, 12, 10)), folder / f"{like}.pkl"))
            for like in ("sims", "simsv2")}


def settings(data: str) -> TrainSettings:
    return TrainSettings(model="sgmt-tav", data=data, epochs=1, batch_size=16, model_overrides=TINY, quiet=True)


def worker(out: Path, data: str, *extra: str) -> subprocess.Popen:
    """One `snn-msa grid` worker process on the 2 x 2 grid of the tests, as a user would start it on another machine."""
    command = [sys.executable, "-c", "from snn_msa.cli import main; main()", "grid", "--scale1", "0.5,2", "--strength",
               "0,0.01", "--data", data, "--epochs", "2", "--batch-size", "16", "--d-model", "16", "--heads", "2",
               "--out", str(out), *extra]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)


def study_trials(out: Path):
    import optuna
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    storage = JournalStorage(JournalFileBackend(str(out / "study.journal")))
    return optuna.load_study(study_name=out.name, storage=storage).get_trials(deepcopy=False)


def completed_keys(trials) -> list[tuple]:
    from optuna.trial import TrialState

    return sorted((t.params["scale1"], t.params["strength"], t.params["seed"]) for t in trials
                  if t.state == TrialState.COMPLETE)


GRID_KEYS = sorted((s1, st, 1111) for s1 in (0.5, 2.0) for st in (0.0, 0.01))


@pytest.mark.slow
def test_two_workers_on_one_journal_train_every_trial_exactly_once(short_data, tmp_path):
    out = tmp_path / "grid"
    first, second = worker(out, short_data["sims"]), worker(out, short_data["sims"])
    logs = [p.communicate(timeout=600)[0] for p in (first, second)]
    assert [p.returncode for p in (first, second)] == [0, 0], logs
    started = [line.split("] ", 1)[1] for log in logs for line in log.splitlines()
               if line.startswith("[trial ") and line.endswith(": training")]
    assert len(started) == 4 and len(set(started)) == 4, logs  # each (cell, seed) trained once, by one of the two
    assert completed_keys(study_trials(out)) == GRID_KEYS
    assert all("◀ best" in log for log in logs)  # both waited for the grid to finish, then wrote the tables


@pytest.mark.slow
def test_a_worker_killed_mid_trial_is_taken_over_with_the_same_table(short_data, tmp_path):
    from optuna.trial import TrialState

    killed_out = tmp_path / "killed"
    victim = worker(killed_out, short_data["sims"], "--heartbeat", "1")
    deadline = time.monotonic() + 300
    running = []
    while not running and time.monotonic() < deadline:
        time.sleep(0.05)
        if (killed_out / "study.journal").is_file():
            try:
                running = [t for t in study_trials(killed_out) if t.state == TrialState.RUNNING and t.params]
            except KeyError:  # the study is being created
                pass
    assert running, "the worker never started a trial"
    victim.send_signal(signal.SIGKILL)
    victim.wait(timeout=60)
    stuck = {t.number: t for t in study_trials(killed_out)}[running[0].number]
    assert stuck.state == TrialState.RUNNING  # killed mid-trial: nobody told the study

    rescuer = worker(killed_out, short_data["sims"], "--heartbeat", "1")
    log = rescuer.communicate(timeout=600)[0]
    assert rescuer.returncode == 0, log
    trials = study_trials(killed_out)
    assert completed_keys(trials) == GRID_KEYS  # every trial once, the killed one retried
    assert {t.number: t for t in trials}[stuck.number].state == TrialState.FAIL  # failed as stale

    # The same grid, uninterrupted (in this process: same settings, one torch thread).
    clean_out = tmp_path / "clean"
    same = TrainSettings(model="sgmt-tav", data=short_data["sims"], epochs=2, batch_size=16, threads=1, quiet=True,
                         model_overrides={"d_model": 16, "heads": 2})
    run_grid("sgmt-tav", [0.5, 2.0], [0.0, 0.01], same, clean_out)
    assert (killed_out / "grid.csv").read_text() == (clean_out / "grid.csv").read_text()


@pytest.mark.slow
def test_rerunning_a_finished_grid_starts_no_training_and_only_rebuilds_the_tables(short_data, tmp_path, monkeypatch):
    calls = []

    def counting_train(settings, dataset=None, **kwargs):
        calls.append(settings.out)
        return train(settings, dataset, **kwargs)

    monkeypatch.setattr(worker_mod, "train", counting_train)
    out = tmp_path / "grid"
    first = run_grid("sgmt-tav", [0.5, 2.0], [0.01], settings(short_data["sims"]), out)
    assert len(calls) == 2
    results = {p: p.stat().st_mtime_ns for p in (out / "runs").glob("*/results.json")}
    checkpoints = {p: p.stat().st_mtime_ns for p in (out / "runs").glob("*/seed-*/*.pt")}
    assert len(results) == 2 and checkpoints
    for name in ("grid.csv", "grid.md", "grid.png"):
        (out / name).unlink()

    calls.clear()
    lines: list[str] = []
    again = run_grid("sgmt-tav", [0.5, 2.0], [0.01], settings(short_data["sims"]), out, echo=lines.append)
    assert calls == []  # no training started
    assert "2 with a result, 0 to train" in lines[0]
    assert all(p.stat().st_mtime_ns == t for p, t in {**results, **checkpoints}.items())  # nothing rewritten
    assert all((out / name).is_file() for name in ("grid.csv", "grid.md", "grid.png"))  # only the tables rebuilt
    assert again["rows"] == first["rows"]


@pytest.mark.slow
def test_comparison_counts_energy_per_sample_and_shows_the_paper_on_simsv2(short_data, tmp_path, monkeypatch):
    out = tmp_path / "compare"
    base = settings(short_data["simsv2"])
    result = run_comparison(["sgmt-tav", "sgmt-tav-ann"], base, out, energy_samples=4)
    spiking, twin = result["rows"]
    assert spiking["energy_side"] == "snn" and twin["energy_side"] == "ann"
    assert spiking["energy_pj_per_sample"] > 0 and twin["energy_pj_per_sample"] > 0

    checkpoint = out / "runs" / f"{spiking['run']}_seed-1111" / "seed-1111" / "best.pt"
    report = energy_mod.energy_report(checkpoint=str(checkpoint), samples=4)
    assert spiking["energy_pj_per_sample"] == pytest.approx(report["totals"]["snn"]["energy_pj"])
    assert spiking["Mult_acc_5_paper"] == 0.5503 and not twin["paper"]
    text = Path(result["files"]["md"]).read_text()
    assert "energy / sample" in text and "| paper |" in text and "Table 1, CH-SIMS v2" in text

    def no_recount(*args, **kwargs):
        raise AssertionError("the energy of an unchanged checkpoint is counted again")

    monkeypatch.setattr(energy_mod, "energy_report", no_recount)
    again = run_comparison(["sgmt-tav", "sgmt-tav-ann"], base, out, energy_samples=4)
    assert [r["energy_pj_per_sample"] for r in again["rows"]] == [spiking["energy_pj_per_sample"], twin["energy_pj_per_sample"]]
