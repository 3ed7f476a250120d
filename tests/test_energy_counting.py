"""Per-layer counts: exact on hand-built networks, and equal to SpikingJelly's op_counter where both count."""

import pytest
import torch
from spikingjelly.activation_based.op_counter import (
    DispatchCounterMode,
    LemaireEnergyConfig,
    MACCounter,
    SimpleEnergyCostConfig,
    SynOpCounter,
    estimate_lemaire_energy,
)
from torch import nn

from snn_msa.attention import MHSGSA
from snn_msa.energy import E_AC_PJ, E_MAC_PJ, count_forward
from snn_msa.energy import Scope
from snn_msa.energy.positions import model_scopes
from snn_msa.neurons import LIF, ConnectedLIF
from snn_msa.registry import create_model

T, B, F_IN, F_OUT = 6, 3, 5, 4


def lif_linear() -> nn.Sequential:
    return nn.Sequential(LIF(), nn.Linear(F_IN, F_OUT))


def test_all_zero_spikes_give_no_accumulates():
    counter = count_forward(lif_linear(), torch.zeros(T, B, F_IN), batch=B)
    row = counter.rows["1"]
    assert row.operands == "spike x weight"
    assert (row.ac, row.mac) == (0, 0)
    assert row.dense == T * B * F_IN * F_OUT
    assert counter.rows["0"].spikes_out == 0


def test_all_one_spikes_give_the_dense_count():
    counter = count_forward(lif_linear(), torch.full((T, B, F_IN), 2.0), batch=B)  # fires at every step
    row = counter.rows["1"]
    assert row.input_firing_rate == 1.0
    assert row.ac == row.dense == T * B * F_IN * F_OUT
    assert row.mac == 0
    assert row.other == T * B * F_OUT  # one bias add per output element
    assert counter.rows["0"].other == 5 * T * B * F_IN  # neuron updates


def test_spike_input_counts_nnz_times_fan_out():
    spikes = (torch.rand(T, B, F_IN) < 0.3).float()
    counter = count_forward(nn.Linear(F_IN, F_OUT, bias=False), spikes, batch=B)
    assert counter.rows[""].ac == int(spikes.sum()) * F_OUT


def test_real_input_counts_macs():
    counter = count_forward(nn.Linear(F_IN, F_OUT), torch.randn(B, F_IN), batch=B)
    row = counter.rows[""]
    assert (row.ac, row.mac, row.operands) == (0, B * F_IN * F_OUT, "real x weight")


def test_conv1d_counts_every_output_position():
    conv = nn.Conv1d(7, 4, kernel_size=3, padding=1)
    counter = count_forward(conv, torch.randn(B, 7, 10), batch=B)
    assert counter.rows[""].mac == B * 10 * 4 * 7 * 3


def test_connected_recurrence_counts_exactly():
    neuron = ConnectedLIF(F_IN, strength=1e-3, seed=0)  # too weak to change any spike of this input
    counter = count_forward(neuron, torch.full((T, B, F_IN), 3.0), batch=B)
    rec = counter.rows["recurrence"]
    assert rec.ac == rec.dense == (T - 1) * B * F_IN * F_IN == neuron.recurrent_accumulates
    silent = count_forward(neuron, torch.zeros(T, B, F_IN), batch=B)
    assert silent.rows["recurrence"].ac == 0
    unconnected = ConnectedLIF(F_IN, strength=0.0)  # no synapses: no accumulates, however many spikes
    assert count_forward(unconnected, torch.full((T, B, F_IN), 2.0), batch=B).rows["recurrence"].ac == 0


def test_real_positions_compact_the_recurrence_and_the_attention():
    neuron = ConnectedLIF(F_IN, strength=1e-3, seed=0)
    mask = torch.tensor([[True, True], [False, True], [True, True], [True, False]])  # [T=4, B=2]
    scopes = [Scope("", "-", valid=mask.t(), layout="time-major")]
    counter = count_forward(neuron, torch.full((4, 2, F_IN), 3.0), batch=2, padding="real", scopes=scopes)
    # sample 0 has 3 real steps, sample 1 has 3: each feeds F neurons from all but its last real step
    assert counter.rows["recurrence"].ac == (2 + 2) * F_IN * F_IN
    assert counter.rows[""].elements_out == 6 * F_IN

    attention = MHSGSA(8, heads=2, neuron="identity")
    x = torch.randn(4, 2, 8)
    dense = count_forward(attention, (x, mask), batch=2, padding="all")
    real = count_forward(attention, (x, mask), batch=2, padding="real", scopes=scopes)
    assert dense.rows["scores"].mac == dense.rows["mix"].mac == 2 * 4 * 4 * 8  # B * L^2 * d_model
    assert real.rows["scores"].mac == (3 * 3 + 3 * 3) * 8
    assert real.rows["softmax"].other == (9 + 9) * 2 * 5


def test_45nm_constants_are_spikingjelly_fp32():
    fp32 = SimpleEnergyCostConfig.fp32()
    assert (E_AC_PJ, E_MAC_PJ) == (fp32.e_ac_pj, fp32.e_mac_pj) == (0.9, 4.6)


# -- against SpikingJelly's op_counter -------------------------------------------------------------

def _small_sgmt(name: str, backend: str = "reference"):
    torch.manual_seed(0)
    model = create_model(name, feature_dims=(12, 6, 5), d_model=8, heads=2, scale1=4.0, backend=backend).eval()
    inputs = {"text": torch.randn(2, 5, 12), "audio": torch.randn(2, 6, 6), "vision": torch.randn(2, 4, 5),
              "text_lengths": None, "audio_lengths": torch.tensor([6, 3]), "vision_lengths": torch.tensor([2, 4])}
    return model, inputs, model_scopes(model, inputs)


def _sj_counts(model, inputs):
    synop, mac = SynOpCounter(), MACCounter()
    with torch.no_grad(), DispatchCounterMode([synop, mac]):
        model(**inputs)
    return synop, mac


def _scope(counter, name):
    return sum(counter.get_counts().get(f"SGMT.{name}", {}).values())


def test_accumulates_agree_with_synop_counter():
    # The reference backend runs the recurrence as a plain matmul, which SpikingJelly can see.
    model, inputs, _ = _small_sgmt("sgmt-tav", backend="reference")
    ours = count_forward(model, inputs, batch=2, padding="all")
    synop, mac = _sj_counts(model, inputs)
    assert sum(r.ac for r in ours.rows.values()) == synop.get_total() > 0
    for name, row in ours.rows.items():
        if row.module == "Linear" and row.operands == "spike x weight":
            assert row.ac == _scope(synop, name), name


def test_synop_counter_misses_the_fast_kernel_recurrence():
    model, inputs, _ = _small_sgmt("sgmt-tav", backend="torch")
    ours = count_forward(model, inputs, batch=2, padding="all")
    synop, _ = _sj_counts(model, inputs)
    recurrence = sum(r.ac for n, r in ours.rows.items() if n.endswith(".recurrence"))
    assert recurrence > 0
    assert sum(r.ac for r in ours.rows.values()) - recurrence == synop.get_total()


@pytest.mark.parametrize("name", ["sgmt-tav", "sgmt-tav-ann"])
def test_macs_agree_with_mac_counter(name):
    model, inputs, _ = _small_sgmt(name)
    ours = count_forward(model, inputs, batch=2, padding="all")
    _, mac = _sj_counts(model, inputs)
    for row_name, row in ours.rows.items():
        if row.module in ("Conv1d", "Linear"):
            assert row.mac == _scope(mac, row_name), row_name
    # SpikingJelly does not see the fused scaled-dot-product attention: the only MACs it misses.
    attention = sum(r.mac for n, r in ours.rows.items() if n.endswith((".scores", ".mix")))
    assert sum(r.mac for r in ours.rows.values()) - attention == mac.get_total()


def test_twin_has_no_accumulates():
    model, inputs, _ = _small_sgmt("sgmt-tav-ann")
    ours = count_forward(model, inputs, batch=2, padding="all")
    assert all(r.ac == 0 for r in ours.rows.values())
    assert not any(r.operation.endswith("LIF update") for r in ours.rows.values())


@pytest.mark.parametrize("net, x", [
    (lambda: nn.Sequential(LIF(), nn.Linear(F_IN, F_OUT)), lambda: torch.randn(T, 1, F_IN) * 3),
    (lambda: nn.Sequential(nn.Linear(F_IN, 9), nn.Linear(9, F_OUT, bias=False)), lambda: torch.randn(1, F_IN)),
    (lambda: nn.Conv1d(F_IN, 6, kernel_size=3, padding=1), lambda: torch.randn(1, F_IN, 11)),
])
def test_memory_aware_estimate_equals_spikingjelly_lemaire(net, x):
    net, x = net(), x()
    ours = count_forward(net, x, batch=1)
    total = sum(r.memory.energy()["energy_pj"] for r in ours.rows.values())
    theirs = estimate_lemaire_energy(net, x, config=LemaireEnergyConfig(strict=False)).total_pj
    assert total == pytest.approx(theirs, rel=1e-12)


def test_neuron_rows_count_the_valid_positions_the_model_itself_counts():
    # The model's own activity (spikes, neuron-steps at valid positions, from its forward's masks) is
    # an independent account of the valid positions that its energy_scopes tell the counter.
    model, inputs, _ = _small_sgmt("sgmt-tav")
    with torch.no_grad():
        activity = model(**inputs).activity
    counter = count_forward(model, inputs, batch=2, padding="real")
    assert activity and sum(int(s.sum()) for s, _ in activity.values()) > 0
    for name, (spikes, steps) in activity.items():
        assert (counter.rows[name].spikes_out, counter.rows[name].elements_out) == (int(spikes.sum()), int(steps.sum()))
    every = count_forward(model, inputs, batch=2, padding="all")
    assert every.rows["fusion.0.ffn_neuron"].elements_out > counter.rows["fusion.0.ffn_neuron"].elements_out


def test_any_spikingjelly_neuron_is_counted_and_its_spikes_drive_accumulates():
    from spikingjelly.activation_based.functional import reset_net
    from spikingjelly.activation_based.neuron import IFNode

    net = nn.Sequential(IFNode(step_mode="m"), nn.Linear(F_IN, F_OUT, bias=False))
    x = torch.rand(T, B, F_IN) * 2
    counter = count_forward(net, x, batch=B)
    reset_net(net)  # SpikingJelly's neurons keep their membrane between calls
    synop, _ = _sj_counts_plain(net, x)
    assert counter.rows["0"].elements_out == T * B * F_IN and counter.rows["0"].operation == "IFNode update"
    assert counter.rows["1"].ac == synop.get_total() == counter.rows["1"].spikes_in * F_OUT > 0
    assert not counter.uncounted


def _sj_counts_plain(net, x):
    synop, mac = SynOpCounter(), MACCounter()
    with torch.no_grad(), DispatchCounterMode([synop, mac]):
        net(x)
    return synop, mac
