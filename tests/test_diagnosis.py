"""The spike-path diagnosis: per-layer activity against a plain recount, the knock-out, the warnings, the command."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from snn_msa.cli import main
from snn_msa.data import load_dataset
from snn_msa.data.synthetic import make_synthetic, write_pickle
from snn_msa.diagnosis import spike_diagnosis
from snn_msa.metrics import msa_metrics
from snn_msa.neurons import LIF, ConnectedLIF
from snn_msa.registry import create_model


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    path = tmp_path_factory.mktemp("diag") / "tiny.pkl"
    write_pickle(make_synthetic("sims", (6, 4, 6), seed=3, seq_lens=(8, 12, 10)), path)
    return path


def _model(tiny_path, scale1=3.0):
    data = load_dataset(str(tiny_path), "sims")
    torch.manual_seed(0)
    model = create_model("sgmt-tav", feature_dims=data.feature_dims, d_model=8, heads=2, scale1=scale1).eval()
    return model, data


def test_layer_activity_matches_a_plain_recount(tiny):
    model, data = _model(tiny)
    split = data.splits["test"]
    report = spike_diagnosis(model, split, "sims", batch_size=4)
    # Recount by hand: run the whole split at once and read each neuron's spikes at valid positions.
    seen = {}
    hooks = [m.register_forward_hook(lambda mod, args, out, name=name: seen.__setitem__(name, (out, args[1])))
             for name, m in model.named_modules() if isinstance(m, (LIF, ConnectedLIF))]
    batch = split.batch(np.arange(len(split)))
    with torch.no_grad():
        model(**{k: batch[k] for k in ("text", "audio", "vision", "text_lengths", "audio_lengths", "vision_lengths")})
    for h in hooks:
        h.remove()
    assert set(seen) == set(report["layers"])
    for name, (spikes, valid) in seen.items():
        valid = torch.ones(spikes.shape[:2], dtype=torch.bool) if valid is None else valid
        real = spikes[valid]  # [positions, neurons]
        layer = report["layers"][name]
        assert layer["firing_rate"] == pytest.approx(float(real.mean()))
        assert layer["silent_neurons"] == pytest.approx(float((real.sum(0) == 0).float().mean()))
        assert layer["silent_steps"] == pytest.approx(float((real.sum(1) == 0).float().mean()))
    assert report["firing_rate"] > 0


def test_knockout_is_the_model_with_every_spike_zeroed(tiny):
    model, data = _model(tiny)
    split = data.splits["test"]
    report = spike_diagnosis(model, split, "sims", batch_size=4)
    # The same by hand: every neuron's forward replaced by zeros.
    originals = {}
    for m in model.modules():
        if isinstance(m, (LIF, ConnectedLIF)):
            originals[m] = m.forward
            m.forward = lambda x, valid=None: torch.zeros_like(x)
    batch = split.batch(np.arange(len(split)))
    with torch.no_grad():
        out = model(**{k: batch[k] for k in ("text", "audio", "vision", "text_lengths", "audio_lengths", "vision_lengths")})
    for m, forward in originals.items():
        m.forward = forward
    expected = msa_metrics(out.prediction.numpy(), batch["labels"]["M"].numpy(), "sims", decimals=None)
    assert report["knocked_out_metrics"]["MAE"] == pytest.approx(expected["MAE"], abs=1e-6)
    assert report["knockout"]["MAE"] == pytest.approx(expected["MAE"] - report["metrics"]["MAE"], abs=1e-6)
    assert report["knockout"]["MAE"] != 0.0  # the spikes carry something in this model


def test_a_silent_network_is_reported(tiny):
    model, data = _model(tiny, scale1=1e-3)  # far below threshold: no spike anywhere
    report = spike_diagnosis(model, data.splits["test"], "sims", batch_size=4)
    assert report["firing_rate"] == 0.0 and report["silent"] is True
    assert any("effectively silent" in w for w in report["warnings"])


def test_twin_has_nothing_to_diagnose(tiny):
    data = load_dataset(str(tiny), "sims")
    model = create_model("sgmt-tav-ann", feature_dims=data.feature_dims, d_model=8, heads=2)
    report = spike_diagnosis(model, data.splits["test"], "sims")
    assert report["spiking"] is False and report["layers"] == {}


def test_command_json_and_text(tiny):
    small = ["--data", str(tiny), "--d-model", "8", "--heads", "2", "--scale1", "3"]
    result = CliRunner().invoke(main, ["diagnose", "--model", "sgmt-tav", *small, "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["model"] == "sgmt-tav" and report["samples"] == 6 and report["layers"]
    text = CliRunner().invoke(main, ["diagnose", "--model", "sgmt-tav", *small])
    assert text.exit_code == 0 and "knock-out" in text.output


def test_command_errors_are_one_line(tiny):
    result = CliRunner().invoke(main, ["diagnose", "--model", "sgmt-nope", "--data", str(tiny)])
    assert result.exit_code == 1 and "Known models" in result.output and "Traceback" not in result.output
    result = CliRunner().invoke(main, ["diagnose"])
    assert result.exit_code == 1 and "--model NAME" in result.output


def test_tally_counts_valid_positions_only():
    from snn_msa.diagnosis import _LayerTally

    spikes = torch.zeros(4, 2, 3)
    spikes[0, 0, 0] = spikes[1, 0, 1] = 1  # sample 0: steps 0 and 1 fire, steps 2-3 silent
    spikes[3, 1, 2] = 1  # sample 1 fires only at a padded step
    valid = torch.tensor([[True, True], [True, True], [True, False], [False, False]])
    tally = _LayerTally()
    tally.add(spikes, valid)
    summary = tally.summary()
    assert summary["firing_rate"] == pytest.approx(2 / (5 * 3))
    assert summary["silent_neurons"] == pytest.approx(1 / 3)  # neuron 2 fired only at padding
    assert summary["silent_steps"] == pytest.approx(3 / 5)  # (0,2) (1,0) (1,1) of 5 valid positions


def test_neuron_overrides_reach_every_neuron(tiny):
    """--v-threshold and --tau are model overrides like --scale1: a lower threshold fires more."""
    small = ["--data", str(tiny), "--d-model", "8", "--heads", "2", "--scale1", "1", "--json"]
    rates = {}
    for v_threshold in ("1", "0.25"):
        result = CliRunner().invoke(main, ["diagnose", "--model", "sgmt-tav", *small, "--v-threshold", v_threshold])
        assert result.exit_code == 0, result.output
        rates[v_threshold] = json.loads(result.output)["firing_rate"]
    assert rates["0.25"] > 2 * rates["1"] > 0
    bad = CliRunner().invoke(main, ["diagnose", "--model", "sgmt-tav", *small, "--tau", "1"])
    assert bad.exit_code == 1 and "tau must be greater than 1" in bad.output and "Traceback" not in bad.output
