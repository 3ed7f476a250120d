"""Grid and comparison end to end with the real trainer and energy report, on tiny short-sequence data.

A 2 x 1 grid trains in two worker processes, is then rerun with one run's
results removed (only that run is touched), and a comparison counts each
model's energy per sample from its trained checkpoint.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from snn_msa import energy as energy_mod
from snn_msa.data.synthetic import make_synthetic, write_pickle
from snn_msa.experiments import TrainSettings, run_comparison, run_grid

TINY = {"d_model": 16, "heads": 2, "head_hidden": 16}


@pytest.fixture(scope="module")
def short_data(tmp_path_factory):
    folder = tmp_path_factory.mktemp("data")
    return {like: str(write_pickle(make_synthetic(like, (16, 8, 8), seed=0, seq_lens=(8, 12, 10)), folder / f"{like}.pkl"))
            for like in ("sims", "simsv2")}


def settings(data: str) -> TrainSettings:
    return TrainSettings(model="sgmt-tav", data=data, epochs=1, batch_size=16, model_overrides=TINY, quiet=True)


@pytest.mark.slow
def test_grid_in_two_processes_then_resumed(short_data, tmp_path):
    out = tmp_path / "grid"
    lines: list[str] = []
    result = run_grid("sgmt-tav", [0.5, 2.0], [0.01], settings(short_data["sims"]), out, jobs=2, echo=lines.append)
    assert "in 2 processes" in lines[0]
    assert len(result["rows"]) == 2 and {r["status"] for r in result["rows"]} == {"trained"}
    for name in ("grid.csv", "grid.md", "grid.png"):
        assert (out / name).is_file()

    # The best cell is the lowest validation loss the trainer recorded, read straight from each run.
    stored = {}
    for row in result["rows"]:
        results = json.loads((out / "runs" / row["run"] / "results.json").read_text())
        stored[row["run"]] = results["seeds"][0]["best_valid_loss"]
        assert results["model_overrides"]["scale1"] == row["scale1"]
        assert results["model_overrides"]["strength"] == row["strength"]
        assert (out / "runs" / row["run"] / "seed-1111" / "best.pt").is_file()
    assert result["best_row"]["run"] == min(stored, key=stored.get)

    removed = out / "runs" / result["rows"][1]["run"] / "results.json"
    removed.unlink()
    before = {p: p.stat().st_mtime_ns for p in (out / "runs").glob("*/results.json")}
    again = run_grid("sgmt-tav", [0.5, 2.0], [0.01], settings(short_data["sims"]), out, jobs=1)
    assert [r["status"] for r in again["rows"]] == ["reused", "resumed"]
    assert all(p.stat().st_mtime_ns == t for p, t in before.items())  # the other runs were not touched
    assert removed.is_file()
    assert again["rows"][1]["Mult_acc_5_mean"] == result["rows"][1]["Mult_acc_5_mean"]  # resumed, not retrained


@pytest.mark.slow
def test_comparison_counts_energy_per_sample_and_shows_the_paper_on_simsv2(short_data, tmp_path, monkeypatch):
    out = tmp_path / "compare"
    base = settings(short_data["simsv2"])
    result = run_comparison(["sgmt-tav", "sgmt-tav-ann"], base, out, energy_samples=4)
    spiking, twin = result["rows"]
    assert spiking["energy_side"] == "snn" and twin["energy_side"] == "ann"
    assert spiking["energy_pj_per_sample"] > 0 and twin["energy_pj_per_sample"] > 0

    report = energy_mod.energy_report(checkpoint=str(out / "runs" / spiking["run"] / "seed-1111" / "best.pt"), samples=4)
    assert spiking["energy_pj_per_sample"] == pytest.approx(report["totals"]["snn"]["energy_pj"])
    assert spiking["Mult_acc_5_paper"] == 0.5503 and not twin["paper"]
    text = Path(result["files"]["md"]).read_text()
    assert "energy / sample" in text and "| paper |" in text and "Table 1, CH-SIMS v2" in text

    def no_recount(*args, **kwargs):
        raise AssertionError("the energy of an unchanged checkpoint is counted again")

    monkeypatch.setattr(energy_mod, "energy_report", no_recount)
    again = run_comparison(["sgmt-tav", "sgmt-tav-ann"], base, out, energy_samples=4)
    assert [r["energy_pj_per_sample"] for r in again["rows"]] == [spiking["energy_pj_per_sample"], twin["energy_pj_per_sample"]]
