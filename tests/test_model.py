"""The SGMT blocks and model against plainly written restatements of the paper's equations."""

from __future__ import annotations

import math

import pytest
import torch

from snn_msa.attention import MHSGSA
from snn_msa.layers import SpikingLayer
from snn_msa.model import SGMT, SGMTConfig
from snn_msa.neurons import LIF, ConnectedLIF, NeuronSettings


def plain_lif(x: torch.Tensor, v_th: float, tau=2.0, v_rest=0.0) -> torch.Tensor:
    """Eq. 1, one neuron at a time, in Python floats (``v_th``: the model's threshold, 0.75 in SGMT)."""
    T, B, Fe = x.shape
    out = torch.zeros_like(x)
    for b in range(B):
        for i in range(Fe):
            v = v_rest
            for t in range(T):
                u = v + (float(x[t, b, i].detach()) - (v - v_rest)) / tau
                s = 1.0 if u >= v_th else 0.0
                v = s * v_rest + (1 - s) * u
                out[t, b, i] = s
    return out


def plain_sgsa(att: MHSGSA, x: torch.Tensor, valid: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor, list]:
    """Eqs. 3-6 with explicit loops over batch and heads and an explicit softmax.

    f is one sample's firing rate over its own valid positions (the paper's
    X_spike in R^{T x d_m} is one sequence); returns the per-sample f as a list.
    """
    with torch.no_grad():
        return _plain_sgsa(att, x, valid)


def _plain_sgsa(att, x, valid):
    L, B, dm = x.shape
    h, d = att.heads, att.head_dim
    mean = x.mean(-1, keepdim=True)
    var = x.var(-1, unbiased=False, keepdim=True)
    ln = (x - mean) / torch.sqrt(var + att.norm.eps) * att.norm.weight + att.norm.bias
    x_norm = att.scale1 * ln
    spikes = plain_lif(x_norm, att.neuron.params.v_threshold)
    keep = torch.ones(L, B, dtype=torch.bool) if valid is None else valid
    rates = []
    out = torch.zeros(L, B, dm, dtype=x.dtype)
    for b in range(B):
        f = float(spikes[keep[:, b], b].sum() / (keep[:, b].sum() * dm))
        rates.append(f)
        for head in range(h):
            wq = att.query.weight[head * d:(head + 1) * d]  # [d, dm] (= W_Q^h transposed)
            wk = att.key.weight[head * d:(head + 1) * d]
            wv = att.value.weight[head * d:(head + 1) * d]
            var_q = float(((wq - wq.mean()) ** 2).mean())
            var_k = float(((wk - wk.mean()) ** 2).mean())
            scale2 = math.sqrt(var_q * var_k * d * dm**2 * f**2)
            q, k, v = spikes[:, b] @ wq.t(), spikes[:, b] @ wk.t(), spikes[:, b] @ wv.t()
            scores = q @ k.t() / scale2
            scores[:, ~keep[:, b]] = float("-inf")
            weights = torch.exp(scores - scores.max(dim=1, keepdim=True).values)
            weights = weights / weights.sum(dim=1, keepdim=True)
            out[:, b, head * d:(head + 1) * d] = weights @ v
    return out, x_norm, rates


@pytest.fixture
def attention_input():
    x = torch.randn(12, 3, 8, dtype=torch.float64) * 3
    valid = torch.arange(12).unsqueeze(1) < torch.tensor([12, 7, 2]).unsqueeze(0)
    return x, valid


@pytest.mark.parametrize("masked", [False, True])
def test_mhsgsa_matches_plain_equations(attention_input, masked):
    x, valid = attention_input
    valid = valid if masked else None
    att = MHSGSA(8, heads=2, scale1=2.0).double()
    out, x_norm = att(x, valid)
    ref_out, ref_norm, rates = plain_sgsa(att, x, valid)
    assert min(rates) > 0 and max(rates) > min(rates)  # the samples' rates differ: per-sample f matters
    torch.testing.assert_close(x_norm, ref_norm)
    keep = torch.ones(12, 3, dtype=torch.bool) if valid is None else valid
    torch.testing.assert_close(out[keep], ref_out[keep])
    assert att.last_firing_rate.tolist() == pytest.approx(rates)


def test_scale2_follows_the_formula(attention_input):
    x, _ = attention_input
    att = MHSGSA(8, heads=2, scale1=2.0).double()
    att(x)
    spikes = plain_lif(att.scale1 * att.norm(x).detach(), att.neuron.params.v_threshold)
    d, dm = 4, 8
    assert att.last_scale2.shape == (3, 2)  # one scale2 per sample and head
    for b in range(3):
        f = float(spikes[:, b].mean())
        for head in range(2):
            var_q = float(torch.var(att.query.weight[head * d:(head + 1) * d].detach(), unbiased=False))
            var_k = float(torch.var(att.key.weight[head * d:(head + 1) * d].detach(), unbiased=False))
            expected = math.sqrt(var_q * var_k * d * dm**2 * f**2)
            assert float(att.last_scale2[b, head]) == pytest.approx(expected, rel=1e-9)


def test_scale2_guard_keeps_output_finite_without_spikes():
    att = MHSGSA(8, heads=2, scale1=1e-3)  # inputs far below threshold: no spikes at all
    out, _ = att(torch.randn(10, 2, 8))
    assert att.last_firing_rate.tolist() == pytest.approx([1.0 / (10 * 8)] * 2)  # floor: one spike per sample
    assert torch.isfinite(out).all()
    assert torch.isfinite(att.last_scale2).all() and (att.last_scale2 > 0).all()


def test_twin_attention_is_vanilla():
    att = MHSGSA(8, heads=2, neuron="identity").double()
    x = torch.randn(6, 2, 8, dtype=torch.float64)
    out, x_norm = att(x)
    q, k, v = att.query(x_norm), att.key(x_norm), att.value(x_norm)
    for head in range(2):
        sl = slice(head * 4, head * 4 + 4)
        for b in range(2):
            w = torch.softmax(q[:, b, sl] @ k[:, b, sl].t() / math.sqrt(4), dim=-1)
            torch.testing.assert_close(out[:, b, sl], w @ v[:, b, sl])
    assert att.last_firing_rate is None


def test_layer_matches_eq7():
    layer = SpikingLayer(8, heads=2, scale1=1.5).double().eval()
    x = torch.randn(9, 2, 8, dtype=torch.float64) * 2
    att, x_norm = layer.attention(x)
    y_norm = 1.5 * layer.attention_norm(att)
    y_out = layer.ffn(plain_lif(y_norm.detach(), layer.ffn_neuron.params.v_threshold))
    expected = 1.5 * layer.ffn_norm(y_out) + x_norm + y_norm
    torch.testing.assert_close(layer(x), expected)


def test_fusion_layer_uses_connected_neurons():
    layer = SpikingLayer(8, heads=2, neuron="connected", settings=NeuronSettings(strength=0.05))
    kinds = {type(m) for m in layer.modules()}
    assert ConnectedLIF in kinds and LIF not in kinds


def _batch(dims=(10, 6, 5), lens=(5, 9, 7), B=3):
    return dict(
        text=torch.randn(B, lens[0], dims[0]),
        audio=torch.randn(B, lens[1], dims[1]),
        vision=torch.randn(B, lens[2], dims[2]),
        audio_lengths=torch.tensor([9, 4, 1][:B]),
        vision_lengths=torch.tensor([7, 7, 3][:B]),
    )


def test_padding_does_not_leak_into_single_modal_features():
    model = SGMT(SGMTConfig(feature_dims=(10, 6, 5), d_model=8, heads=2, scale1=2.0)).eval()
    batch = _batch()
    out1 = model(**batch)
    batch["audio"][1, 4:] = 100.0  # beyond audio length 4
    batch["vision"][2, 3:] = -50.0  # beyond vision length 3
    out2 = model(**batch)
    for m in ("text", "audio", "vision"):
        torch.testing.assert_close(out1.features[m], out2.features[m])


def test_zero_lengths_are_clamped_and_finite():
    model = SGMT(SGMTConfig(feature_dims=(10, 6, 5), d_model=8, heads=2))
    batch = _batch()
    batch["audio_lengths"] = torch.tensor([0, 0, 0])
    out = model(**batch)
    assert all(torch.isfinite(p).all() for p in out.predictions.values())


def test_loss_weights_and_label_fallback():
    model = SGMT(SGMTConfig(feature_dims=(10, 6, 5), d_model=8, heads=2))
    out = model(**_batch())
    y = torch.tensor([0.5, -0.5, 0.0])
    total, parts = model.loss(out, {"M": y})
    expected = sum(w * (out[h] - y).abs().mean() for h, w in {"T": 1, "A": 1, "V": 1, "TAV": 3, "M": 6}.items())
    torch.testing.assert_close(total, expected)
    yt = torch.tensor([1.0, 1.0, 1.0])
    _, parts_t = model.loss(out, {"M": y, "T": yt})
    assert parts_t["T"] == pytest.approx(float((out["T"].detach() - yt).abs().mean()))
    assert parts_t["M"] == pytest.approx(parts["M"])


def test_bad_inputs_are_clear_errors():
    model = SGMT(SGMTConfig(feature_dims=(10, 6, 5), d_model=8, heads=2))
    batch = _batch()
    with pytest.raises(ValueError, match=r"audio must be a batch-first tensor \[B, L, 6\]"):
        model(**{**batch, "audio": torch.randn(3, 9, 7)})
    with pytest.raises(ValueError, match="vision=None"):
        model(**{**batch, "vision": None})
    with pytest.raises(ValueError, match="same batch size"):
        model(**{**batch, "text": torch.randn(2, 5, 10)})
    with pytest.raises(ValueError, match="divisible|multiple of heads"):
        SGMTConfig(feature_dims=(10, 6, 5), d_model=10, heads=3)
    with pytest.raises(ValueError, match="modalities"):
        SGMTConfig(feature_dims=(10, 6, 5), modalities=("text",))


def _smooth_batch(B: int, dims=(10, 6, 5), lens=(5, 9, 7), seed: int = 0) -> dict:
    """Inputs that change slowly in time (AR(1)), with per-sample lengths, so the neurons fire unevenly."""
    g = torch.Generator().manual_seed(seed)

    def ar1(L, D):
        x = torch.zeros(B, L, D)
        x[:, 0] = torch.randn(B, D, generator=g)
        for t in range(1, L):
            x[:, t] = 0.9 * x[:, t - 1] + 0.45 * torch.randn(B, D, generator=g)
        return x * torch.linspace(0.2, 5.0, D)  # channels of very different scales

    return dict(text=ar1(lens[0], dims[0]), audio=ar1(lens[1], dims[1]), vision=ar1(lens[2], dims[2]),
                audio_lengths=torch.randint(1, lens[1] + 1, (B,), generator=g),
                vision_lengths=torch.randint(1, lens[2] + 1, (B,), generator=g))


def _rows(batch: dict, index) -> dict:
    return {k: v[index] for k, v in batch.items()}


@pytest.mark.parametrize("backend", ["reference", "torch"])
def test_a_samples_outputs_do_not_depend_on_its_batch(backend):
    torch.manual_seed(0)
    model = SGMT(SGMTConfig.from_options(feature_dims=(10, 6, 5), d_model=8, heads=2, scale1=2.0,
                                         strength=0.05, backend=backend)).eval()
    batch = _smooth_batch(8)
    with torch.no_grad():
        whole = model(**batch)
        rates = whole.sample_firing_rate
        assert float(rates.max() - rates.min()) > 0.01  # the samples fire differently: a pooled f would differ
        alone = [model(**_rows(batch, slice(i, i + 1))) for i in range(8)]
        shuffled_order = torch.tensor([5, 2, 7, 0])
        shuffled = model(**_rows(batch, shuffled_order))
    for head, pred in whole.predictions.items():
        torch.testing.assert_close(torch.cat([a.predictions[head] for a in alone]), pred, atol=1e-5, rtol=0)
        torch.testing.assert_close(shuffled.predictions[head], pred[shuffled_order], atol=1e-5, rtol=0)
    torch.testing.assert_close(torch.cat([a.sample_firing_rate for a in alone]), rates, atol=1e-6, rtol=0)


def test_firing_rates_count_valid_positions_only():
    torch.manual_seed(0)
    model = SGMT(SGMTConfig(feature_dims=(10, 6, 5), d_model=8, heads=2, scale1=2.0)).eval()
    batch = _smooth_batch(4)
    with torch.no_grad():
        before = model(**batch)
        batch["audio"] = torch.cat([batch["audio"], 50.0 * torch.ones(4, 20, 6)], dim=1)  # 20 loud padded frames
        after = model(**batch)
    neuron = "single_modal.audio.0.attention.neuron"
    assert after.firing_rates[neuron] == pytest.approx(float(before.firing_rates[neuron]), abs=1e-7)
    torch.testing.assert_close(after.sample_firing_rate, before.sample_firing_rate)
    spikes, steps = after.activity[neuron]
    assert steps.tolist() == (batch["audio_lengths"].float() * 8).tolist()


def test_fusion_output_and_predictions_do_not_depend_on_padding():
    """The same samples padded further, with loud garbage in the padding of every modality (text
    too, through its lengths): the same fusion output, pooled features, heads and firing."""
    torch.manual_seed(0)
    model = SGMT(SGMTConfig.from_options(feature_dims=(10, 6, 5), d_model=8, heads=2, scale1=2.0, strength=0.05)).eval()
    batch = _smooth_batch(3)
    batch["text_lengths"] = torch.tensor([5, 3, 4])
    with torch.no_grad():
        before = model(**batch)
        padded = dict(batch, text=torch.cat([batch["text"], torch.randn(3, 3, 10) * 9], dim=1),
                      audio=torch.cat([batch["audio"], torch.randn(3, 7, 6) * 9], dim=1),
                      vision=torch.cat([batch["vision"], torch.randn(3, 4, 5) * 9], dim=1))
        after = model(**padded)
    assert before.features.keys() == after.features.keys() == {"text", "audio", "vision", "fusion"}
    for key in before.features:
        torch.testing.assert_close(after.features[key], before.features[key], atol=1e-5, rtol=0)
    for head in before.predictions:
        torch.testing.assert_close(after.predictions[head], before.predictions[head], atol=1e-5, rtol=0)
    torch.testing.assert_close(after.sample_firing_rate, before.sample_firing_rate, atol=1e-6, rtol=0)


def test_sgmt_fires_at_threshold_075_while_bare_neurons_keep_1():
    """SGMT's default V_th is 0.75 (docs/model.md, Our defaults); LIF and ConnectedLIF keep SpikingJelly's 1."""
    from snn_msa.neurons import LIF, ConnectedLIF
    from snn_msa.registry import create_model

    model = create_model("sgmt-tav", d_model=8, heads=2)
    thresholds = {m.params.v_threshold for m in model.modules() if isinstance(m, (LIF, ConnectedLIF))}
    assert model.config.neuron.v_threshold == 0.75 and thresholds == {0.75}
    assert LIF().params.v_threshold == 1.0 and ConnectedLIF(4).params.v_threshold == 1.0
