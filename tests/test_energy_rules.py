"""The rule-based counter on stand-ins for the baselines' building blocks: recurrent layers and cells,
outer-product and low-rank fusion, cross-attention; valid positions, uncounted operations and new rules.

Each expected count is written out by hand from the layer's arithmetic; where SpikingJelly's
``MACCounter`` / ``SynOpCounter`` can see the same products, the totals must agree with it too.
"""

import pytest
import torch
from spikingjelly.activation_based.op_counter import DispatchCounterMode, MACCounter, SynOpCounter
from torch import nn

from snn_msa.data import load_dataset
from snn_msa.energy import (
    Scope,
    count_batches,
    count_forward,
    energy_report,
    format_markdown,
    format_report,
    format_summary,
    plot_report,
)
from snn_msa.energy.rules import MODULE_RULES, module_rule
from snn_msa.registry import _REGISTRY, ModelCard, register_model

B, L, F, H = 3, 7, 5, 4
LENGTHS = torch.tensor([7, 2, 4])
VALID = torch.arange(L).unsqueeze(0) < LENGTHS.unsqueeze(1)  # [B, L]


def _macs(counter) -> int:
    return sum(r.mac for r in counter.rows.values())


def _sj_macs(model, inputs) -> int:
    counter = MACCounter()
    with torch.no_grad(), DispatchCounterMode([counter]):
        model(*inputs) if isinstance(inputs, tuple) else model(inputs)
    return counter.get_total()


class Recurrent(nn.Module):
    """A batch-first recurrent net that says which steps are valid (the energy-scope protocol)."""

    def __init__(self, rnn: nn.Module):
        super().__init__()
        self.rnn = rnn

    def forward(self, text, text_lengths=None):
        return self.rnn(text)[0]

    def energy_scopes(self, text, text_lengths=None):
        valid = None if text_lengths is None else torch.arange(text.shape[1]).unsqueeze(0) < text_lengths.unsqueeze(1)
        return [Scope("rnn", "single-modal", "text", valid)]


@pytest.mark.parametrize("kind, gates", [(nn.LSTM, 4), (nn.GRU, 3)])
def test_recurrent_layers_count_gates_at_valid_steps(kind, gates):
    net = Recurrent(kind(F, H, batch_first=True))
    x = torch.randn(B, L, F)
    every = count_forward(net, {"text": x, "text_lengths": LENGTHS}, batch=B, padding="all")
    valid = count_forward(net, {"text": x, "text_lengths": LENGTHS}, batch=B, padding="real")
    per_step = gates * H * F + gates * H * H  # input and hidden products of every gate
    assert every.rows["rnn"].mac == B * L * per_step
    assert valid.rows["rnn"].mac == int(LENGTHS.sum()) * per_step
    assert valid.rows["rnn"].stage == "single-modal" and not valid.uncounted


def test_packed_sequence_counts_its_own_steps_and_deep_bidirectional_layers():
    lstm = nn.LSTM(F, H, num_layers=2, bidirectional=True)
    packed = nn.utils.rnn.pack_padded_sequence(torch.randn(L, B, F), LENGTHS, enforce_sorted=False)
    counter = count_forward(lstm, (packed,), batch=B)
    steps = int(LENGTHS.sum())
    layer0 = 2 * 4 * H * (F + H)  # two directions
    layer1 = 2 * 4 * H * (2 * H + H)  # its input is both directions' outputs
    assert counter.rows[""].mac == steps * (layer0 + layer1)


def test_lstm_cell_loop_counts_every_call():
    cell = nn.LSTMCell(F, H)

    class Loop(nn.Module):
        def __init__(self):
            super().__init__()
            self.cell = cell

        def forward(self, x):
            h = c = torch.zeros(x.shape[1], H)
            for t in range(x.shape[0]):
                h, c = self.cell(x[t], (h, c))
            return h

    counter = count_forward(Loop(), torch.randn(L, B, F), batch=B)
    assert counter.rows["cell"].mac == L * B * 4 * H * (F + H)
    assert counter.rows["cell"].other == L * B * (2 * 4 * H + 9 * H)  # two bias adds per gate, the cell update


class TensorFusion(nn.Module):
    """TFN's outer product of [a; 1] and [b; 1], then a linear, as bmm or einsum."""

    def __init__(self, einsum: bool):
        super().__init__()
        self.einsum = einsum
        self.out = nn.Linear((F + 1) * (H + 1), 2)

    def forward(self, a, b):
        a = torch.cat([a, torch.ones(a.shape[0], 1)], dim=1)
        b = torch.cat([b, torch.ones(b.shape[0], 1)], dim=1)
        fused = torch.einsum("bi,bj->bij", a, b) if self.einsum else torch.bmm(a.unsqueeze(2), b.unsqueeze(1))
        return self.out(fused.flatten(1))


@pytest.mark.parametrize("einsum", [False, True])
def test_outer_product_fusion_agrees_with_mac_counter(einsum):
    net, inputs = TensorFusion(einsum), (torch.randn(B, F), torch.randn(B, H))
    counter = count_forward(net, inputs, batch=B)
    product = counter.rows["einsum" if einsum else "bmm"]
    assert product.mac == B * (F + 1) * (H + 1)
    assert _macs(counter) == B * (F + 1) * (H + 1) * 3
    # An einsum without summed index runs as an elementwise mul, which SpikingJelly's MACCounter does not see.
    assert _sj_macs(net, inputs) == _macs(counter) - (product.mac if einsum else 0)
    assert not counter.uncounted


def test_einsum_contraction_counts_every_summed_index_like_mac_counter():
    class Contract(nn.Module):
        def forward(self, x, w):
            return torch.einsum("bld,de->ble", x, w)

    net, inputs = Contract(), (torch.randn(B, L, F), torch.randn(F, H))
    counter = count_forward(net, inputs, batch=B)
    assert counter.rows["einsum"].mac == B * L * F * H == _sj_macs(net, inputs)


class LowRankFusion(nn.Module):
    """LMF: per modality, [x; 1] times a rank-r factor, the products' elementwise product, summed over r."""

    def __init__(self, rank: int = 3, out: int = 2):
        super().__init__()
        self.factor_a = nn.Parameter(torch.randn(rank, F + 1, out))
        self.factor_b = nn.Parameter(torch.randn(rank, H + 1, out))

    def forward(self, a, b):
        a = torch.cat([a, torch.ones(a.shape[0], 1)], dim=1)
        b = torch.cat([b, torch.ones(b.shape[0], 1)], dim=1)
        return (torch.matmul(a, self.factor_a) * torch.matmul(b, self.factor_b)).sum(dim=0)


def test_low_rank_factors_agree_with_mac_counter():
    net, inputs = LowRankFusion(), (torch.randn(B, F), torch.randn(B, H))
    counter = count_forward(net, inputs, batch=B)
    assert _macs(counter) == _sj_macs(net, inputs) == 3 * B * 2 * ((F + 1) + (H + 1))
    assert counter.rows["elementwise"].other == 3 * B * 2 + 3 * B * 2  # the product, then the sum over the rank


class CrossAttention(nn.Module):
    """MulT-style cross-modal attention: text queries, audio keys and values, audio padding masked."""

    def __init__(self):
        super().__init__()
        self.attention = nn.MultiheadAttention(8, 2)

    def forward(self, text, audio, audio_lengths):
        padding = torch.arange(audio.shape[0]).unsqueeze(0) >= audio_lengths.unsqueeze(1)
        return self.attention(text, audio, audio, key_padding_mask=padding)[0]


def test_cross_attention_counts_valid_key_pairs_and_agrees_with_mac_counter():
    net, lt, la, e = CrossAttention(), 5, L, 8
    inputs = (torch.randn(lt, B, e), torch.randn(la, B, e), LENGTHS)
    dense = count_forward(net, inputs, batch=B, padding="all")
    real = count_forward(net, inputs, batch=B, padding="real")
    projections = B * lt * e * e * 2 + B * la * e * e * 2  # Q and output per query, K and V per key
    assert dense.rows["attention.projections"].mac == projections
    assert dense.rows["attention.scores"].mac == dense.rows["attention.mix"].mac == B * lt * la * e
    assert real.rows["attention.scores"].mac == lt * int(LENGTHS.sum()) * e  # only valid keys
    assert _macs(dense) == _sj_macs(net, inputs)


def test_spike_operands_of_a_matrix_product_count_accumulates_like_synop_counter():
    spikes = (torch.rand(B, 6, F) < 0.4).float()
    weight, other_spikes = torch.randn(F, H), (torch.rand(B, F, H) < 0.5).float()

    class Products(nn.Module):
        def forward(self, s):
            return s @ weight, torch.bmm(s, other_spikes)

    net = Products()
    counter = count_forward(net, spikes, batch=B)
    assert counter.rows["matmul"].ac == int(spikes.sum()) * H and counter.rows["matmul"].mac == 0
    coincidences = int(sum((spikes[b, :, k].sum() * other_spikes[b, k, :].sum()) for b in range(B) for k in range(F)))
    assert counter.rows["bmm"].ac == coincidences
    synop = SynOpCounter()
    with torch.no_grad(), DispatchCounterMode([synop]):
        net(spikes)
    assert sum(r.ac for r in counter.rows.values()) == synop.get_total()


def test_unknown_operation_is_reported_never_dropped():
    class Odd(nn.Module):
        def __init__(self):
            super().__init__()
            self.linear = nn.Linear(F, H)

        def forward(self, x):
            return torch.erf(self.linear(x))

    counter = count_forward(Odd(), torch.randn(B, F), batch=B)
    assert counter.uncounted == {("", "erf"): 1}
    assert counter.rows["linear"].mac == B * F * H


def test_a_rule_can_be_added_by_a_user_or_by_the_model_without_editing_the_counter():
    class Fusion(nn.Module):  # does its work in a function the counter does not know
        def forward(self, x):
            return torch.special.erfcx(x)

    def fusion_rule(call):
        return [call.row("", "Fusion", "erfcx", "real", other=call.output.numel() * 10)]

    x = torch.randn(B, F)
    assert count_forward(Fusion(), x, batch=B).uncounted
    given = count_forward(Fusion(), x, batch=B, module_rules={Fusion: fusion_rule})
    assert given.rows[""].other == B * F * 10 and not given.uncounted

    class OwnRules(Fusion):
        def energy_rules(self):
            return {"modules": {Fusion: fusion_rule}}

    assert count_forward(OwnRules(), x, batch=B).rows[""].other == B * F * 10
    try:
        module_rule(Fusion)(fusion_rule)
        assert count_forward(Fusion(), x, batch=B).rows[""].other == B * F * 10
    finally:
        MODULE_RULES.pop(Fusion)


class PlainBaseline(nn.Module):
    """A non-spiking stand-in with the zoo contract: forward(text, audio, vision, *_lengths)."""

    def __init__(self, feature_dims, hidden: int = 6):
        super().__init__()
        self.audio_rnn = nn.GRU(feature_dims[1], hidden, batch_first=True)
        self.head = nn.Linear(hidden + feature_dims[0], 1)

    def forward(self, text, audio, vision, audio_lengths=None, vision_lengths=None, text_lengths=None):
        return self.head(torch.cat([self.audio_rnn(audio)[0].mean(dim=1), text.mean(dim=1)], dim=-1))


@pytest.fixture
def plain_entry():
    @register_model(card=ModelCard(summary="stand-in baseline"))
    def energy_test_plain(feature_dims, **kwargs):
        return PlainBaseline(feature_dims, **kwargs)

    yield "energy-test-plain"
    _REGISTRY.pop("energy-test-plain")


def test_a_model_without_twin_or_scopes_is_reported_alone_with_a_warning(plain_entry, tmp_path):
    data = load_dataset(None, "sims", synthetic_sizes=(2, 2, 3))
    report = energy_report(plain_entry, data=data, samples=3, batch_size=3)
    assert (report["model"], report["twin"]) == (None, plain_entry)
    assert set(report["totals"]) == {"ann", "ratio"} and report["totals"]["ratio"] is None
    assert report["totals"]["ann"]["mac"] > 0 and report["totals"]["ann"]["ac"] == 0
    assert any("no valid positions" in w for w in report["warnings"])
    for text in (format_report(report), format_summary(report), format_markdown(report)):
        assert f"{plain_entry} (non-spiking)" in text and "SNN / ANN" not in text
    assert plot_report(report, tmp_path / "alone.png").stat().st_size > 0


def test_count_batches_takes_any_model_with_the_contract():
    data = load_dataset(None, "sims", synthetic_sizes=(2, 2, 3))
    model = PlainBaseline(data.feature_dims)
    counter = count_batches(model, [data.splits["test"].batch(torch.arange(3).numpy())], padding="real")
    assert counter.rows["audio_rnn"].mac > 0 and counter.rows["head"].mac == 3 * (6 + data.feature_dims[0])
    assert not counter.scoped


def test_attention_without_a_mask_counts_pairs_of_the_scope_valid_positions():
    class SelfAttention(nn.Module):
        def forward(self, x):  # [B, h, L, d]
            return nn.functional.scaled_dot_product_attention(x, x, x)

    x = torch.randn(B, 2, L, 4)
    scopes = [Scope("", "fusion", "joint", VALID)]
    real = count_forward(SelfAttention(), x, batch=B, padding="real", scopes=scopes)
    every = count_forward(SelfAttention(), x, batch=B, padding="all", scopes=scopes)
    assert real.rows["scores"].mac == int((LENGTHS ** 2).sum()) * 2 * 4  # n_b^2 pairs, 2 heads of width 4
    assert every.rows["scores"].mac == B * L * L * 2 * 4
    assert real.rows["softmax"].other == int((LENGTHS ** 2).sum()) * 2 * 5


def test_batchnorm_in_evaluation_is_a_folded_affine_per_element():
    net = nn.Sequential(nn.BatchNorm1d(F), nn.Linear(F, H))  # LF-DNN's subnet starts so
    counter = count_forward(net, torch.randn(B, F), batch=B)
    assert counter.rows["0"].other == 2 * B * F and counter.rows["0"].mac == 0
    assert not counter.uncounted


def test_conv1d_on_spikes_counts_the_pairs_met_like_synop_counter():
    conv = nn.Conv1d(F, H, kernel_size=3, padding=1, bias=False)
    spikes = (torch.rand(B, F, L) < 0.3).float()
    counter = count_forward(conv, spikes, batch=B)
    synop = SynOpCounter()
    with torch.no_grad(), DispatchCounterMode([synop]):
        conv(spikes)
    row = counter.rows[""]
    assert row.operands == "spike x weight" and row.mac == 0
    assert row.ac == synop.get_total() > 0
    assert row.ac < int(spikes.sum()) * H * 3  # border positions meet fewer weights


class PlainSpiking(nn.Module):
    """A spiking stand-in without a twin or a 'spiking' setting: its neurons make it spiking."""

    def __init__(self, feature_dims):
        super().__init__()
        from snn_msa.neurons import LIF

        self.neuron = LIF()
        self.head = nn.Linear(feature_dims[1], 1)

    def forward(self, text, audio, vision, audio_lengths=None, vision_lengths=None, text_lengths=None):
        return self.head(self.neuron(4 * audio.abs().transpose(0, 1))).mean(dim=0)


def test_a_spiking_model_without_twin_is_reported_alone_on_the_spiking_side(tmp_path):
    @register_model(card=ModelCard(summary="stand-in spiking model"))
    def energy_test_spiking(feature_dims, **kwargs):
        return PlainSpiking(feature_dims)

    try:
        data = load_dataset(None, "sims", synthetic_sizes=(2, 2, 3))
        report = energy_report("energy-test-spiking", data=data, samples=3, batch_size=3)
    finally:
        _REGISTRY.pop("energy-test-spiking")
    assert (report["model"], report["twin"]) == ("energy-test-spiking", None)
    assert set(report["totals"]) == {"snn", "ratio"} and report["totals"]["snn"]["ac"] > 0
    assert "No non-spiking twin" in " ".join(report["assumptions"])
    for text in (format_report(report), format_summary(report), format_markdown(report)):
        assert "energy-test-spiking (spiking)" in text and "SNN / ANN" not in text
    assert plot_report(report, tmp_path / "alone.png").stat().st_size > 0
