"""The energy report: rows sum to totals, the twin has no accumulates, the JSON keys are stable and documented."""

import json
import re
from pathlib import Path

import pytest

from snn_msa.data import load_dataset
from snn_msa.energy import (
    LAYER_KEYS,
    MEMORY_KEYS,
    REPORT_KEYS,
    TOTAL_KEYS,
    UNCOUNTED_KEYS,
    EnergyError,
    energy_report,
    format_report,
)

ROOT = Path(__file__).resolve().parents[1]
SMALL = {"d_model": 16, "heads": 2}


@pytest.fixture(scope="module")
def data():
    return load_dataset(None, "sims", synthetic_sizes=(2, 2, 4))


@pytest.fixture(scope="module")
def report(data):
    return energy_report("sgmt-tav", data=data, samples=4, batch_size=4, overrides=SMALL)


def test_keys_are_the_documented_ones(report):
    assert tuple(report) == REPORT_KEYS
    assert all(tuple(row) == LAYER_KEYS for row in report["layers"])
    assert {row["model"] for row in report["layers"]} == {"snn", "ann"}
    for side in ("snn", "ann"):
        assert tuple(report["totals"][side]) == TOTAL_KEYS
        assert tuple(k for k in report["memory_aware"][side]) == MEMORY_KEYS
    assert report["totals"]["ratio"] == pytest.approx(report["totals"]["snn"]["energy_pj"] / report["totals"]["ann"]["energy_pj"])
    doc = (ROOT / "docs" / "energy.md").read_text()
    documented = set(re.findall(r"`([a-z_]+)`", doc))
    missing = set(REPORT_KEYS + LAYER_KEYS + TOTAL_KEYS + MEMORY_KEYS + UNCOUNTED_KEYS) - documented
    assert not missing, f"docs/energy.md does not document {sorted(missing)}"


def test_rows_sum_to_totals(report):
    for side in ("snn", "ann"):
        rows = [r for r in report["layers"] if r["model"] == side]
        totals = report["totals"][side]
        for key in ("ac", "mac", "other", "dense"):
            assert sum(r[key] for r in rows) == pytest.approx(totals[key], rel=1e-12)
        assert sum(r["energy_pj"] for r in rows) == pytest.approx(totals["energy_pj"], rel=1e-9)
        assert totals["energy_pj"] == pytest.approx(0.9 * totals["ac"] + 4.6 * totals["mac"])
        assert sum(r["share"] for r in rows) == pytest.approx(1.0)
        assert sum(r["memory_aware_pj"] for r in rows) == pytest.approx(report["memory_aware"][side]["energy_pj"])


def test_twin_has_no_accumulates_and_no_neurons(report):
    ann = [r for r in report["layers"] if r["model"] == "ann"]
    assert report["totals"]["ann"]["ac"] == 0 and all(r["ac"] == 0 for r in ann)
    assert report["totals"]["ann"]["firing_rate"] is None
    assert not any(r["output_firing_rate"] is not None for r in ann)
    snn_ops = {r["operands"] for r in report["layers"] if r["model"] == "snn"}
    assert "spike x weight" in snn_ops


def test_rows_know_their_stage_and_modality(report):
    by_name = {r["name"]: r for r in report["layers"] if r["model"] == "snn"}
    assert by_name["projections.audio"]["stage"] == "projection"
    assert by_name["single_modal.vision.0.attention.query"]["modality"] == "vision"
    assert by_name["fusion.0.ffn_neuron.recurrence"]["stage"] == "fusion"
    assert by_name["heads.M.1"]["stage"] == "head"


def test_report_is_stable(report, data):
    again = energy_report("sgmt-tav", data=data, samples=4, batch_size=4, overrides=SMALL)
    assert json.dumps(again, sort_keys=True) == json.dumps(report, sort_keys=True)


def test_text_shows_totals_and_assumptions(report):
    text = format_report(report)
    assert "Totals:" in text and "Assumptions:" in text and "SNN / ANN" in text
    assert "4 samples" in text and "SYNTHETIC" in text
    for fact in ("0.9 pJ x AC + 4.6 pJ x MAC", "Lemaire", "Only valid positions count, padding excluded", "untrained"):
        assert fact in text, fact


def test_padding_all_counts_at_least_as_much(report, data):
    everything = energy_report("sgmt-tav", data=data, samples=4, batch_size=4, overrides=SMALL, padding="all")
    real = report
    assert everything["totals"]["ann"]["mac"] > real["totals"]["ann"]["mac"]
    assert "Every position counts" in " ".join(everything["assumptions"])


def test_an_ablations_twin_is_the_one_named_on_its_card_and_the_twin_itself(data):
    ablation = energy_report("sgmt-ta", data=data, samples=1, overrides=SMALL)
    assert ablation["twin"] == "sgmt-ta-ann" and ablation["totals"]["ann"]["ac"] == 0
    twin = energy_report("sgmt-tav-ann", data=data, samples=1, overrides=SMALL)
    assert (twin["model"], twin["twin"]) == ("sgmt-tav", "sgmt-tav-ann")


def test_unknown_model_lists_the_known_ones(data):
    with pytest.raises(EnergyError, match="Known models: .*sgmt-tav"):
        energy_report("sgmt-xyz", data=data, samples=1)
