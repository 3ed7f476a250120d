"""Each baseline's key equation against a plain, independent restatement (loops and explicit sums)."""

from __future__ import annotations

import itertools
import math

import pytest
import torch

from snn_msa import zoo
from snn_msa.baselines.base import align_to, last_valid, masked_mean
from snn_msa.baselines.lmf import LowRankFusion
from snn_msa.baselines.mfn import DeltaMemory, MFNConfig
from snn_msa.baselines.mult import future_mask
from snn_msa.baselines.tfn import tensor_fusion


def test_tfn_fusion_is_the_outer_product_with_a_one_appended():
    g = torch.Generator().manual_seed(0)
    a, v, t = torch.randn(2, 3, generator=g), torch.randn(2, 2, generator=g), torch.randn(2, 4, generator=g)
    z = tensor_fusion(a, v, t)
    assert z.shape == (2, 4 * 3 * 5)
    for b in range(2):
        a1, v1, t1 = [1.0, *a[b].tolist()], [1.0, *v[b].tolist()], [1.0, *t[b].tolist()]
        expected = [x * y * w for x, y, w in itertools.product(a1, v1, t1)]  # audio slowest, text fastest
        assert z[b].tolist() == pytest.approx(expected, rel=1e-6)
    # the appended 1 keeps the unimodal terms: z holds h_t itself (a' = v' = 1 in their first place)
    torch.testing.assert_close(z[:, 1:5], t)


def test_lmf_equals_tfn_fusion_times_the_full_rank_r_weight():
    """LMF's claim: sum_i w_i prod_m ([1;h_m] . W_m^i) is TFN's tensor z contracted with W = sum_i w_i (x)_m W_m^i."""
    torch.manual_seed(0)
    fusion = LowRankFusion(audio_dim=3, vision_dim=2, text_dim=4, rank=3)
    with torch.no_grad():
        fusion.fusion_bias.fill_(0.25)
    a, v, t = torch.randn(5, 3), torch.randn(5, 2), torch.randn(5, 4)
    full = torch.zeros(4, 3, 5)
    for i in range(3):
        wa, wv, wt = fusion.audio_factor[i, :, 0], fusion.video_factor[i, :, 0], fusion.text_factor[i, :, 0]
        for p, q, r in itertools.product(range(4), range(3), range(5)):
            full[p, q, r] += fusion.fusion_weights[0, i] * wa[p] * wv[q] * wt[r]
    expected = tensor_fusion(a, v, t) @ full.flatten() + 0.25
    torch.testing.assert_close(fusion(a, v, t), expected.detach(), rtol=1e-5, atol=1e-6)


def _mlp_by_hand(seq, x):
    """Linear, ReLU, (dropout off), Linear, written out from the weights."""
    first, last = seq[0], seq[3]
    hidden = [max(0.0, sum(w * xi for w, xi in zip(row, x)) + b) for row, b in zip(first.weight.tolist(), first.bias.tolist())]
    return [sum(w * h for w, h in zip(row, hidden)) + b for row, b in zip(last.weight.tolist(), last.bias.tolist())]


def test_mfn_delta_memory_step_by_hand():
    torch.manual_seed(0)
    config = MFNConfig(feature_dims=(4, 3, 2), hidden_dims=(2, 1, 2), memsize=3, nn1_dim=4, nn2_dim=4, gamma1_dim=4,
                       gamma2_dim=4)
    memory = DeltaMemory(cells=5, memsize=3, c=config).eval()
    c_prev, c_new, u = torch.randn(1, 5), torch.randn(1, 5), torch.randn(1, 3)
    window = c_prev[0].tolist() + c_new[0].tolist()  # c^[t-1, t]
    scores = _mlp_by_hand(memory.attention, window)
    exps = [math.exp(s) for s in scores]
    attended = [c * e / sum(exps) for c, e in zip(window, exps)]  # c_hat = c^[t-1,t] * softmax(D_a(.))
    proposal = [math.tanh(x) for x in _mlp_by_hand(memory.proposal, attended)]  # u_hat
    both = attended + u[0].tolist()
    gamma1 = [1 / (1 + math.exp(-x)) for x in _mlp_by_hand(memory.gamma1, both)]
    gamma2 = [1 / (1 + math.exp(-x)) for x in _mlp_by_hand(memory.gamma2, both)]
    expected = [g1 * ui + g2 * p for g1, ui, g2, p in zip(gamma1, u[0].tolist(), gamma2, proposal)]
    with torch.no_grad():
        assert memory(c_prev, c_new, u)[0].tolist() == pytest.approx(expected, rel=1e-5, abs=1e-6)


def test_mult_future_mask_is_multiheads_buffered_future_mask():
    for queries, keys in ((4, 4), (3, 6), (6, 3)):
        mask = future_mask(queries, keys, torch.device("cpu"))
        expected = [[j >= i + 1 + abs(keys - queries) for j in range(keys)] for i in range(queries)]
        assert mask.tolist() == expected
        assert not mask[:, 0].any()  # the first key is always visible, so no row is empty


def test_alignment_averages_each_samples_real_frames_into_its_text_length():
    x = torch.arange(2 * 7 * 1, dtype=torch.float64).view(2, 7, 1)
    lengths, tokens = torch.tensor([7, 3]), torch.tensor([3, 2])
    aligned = align_to(x, lengths, tokens, 4)
    for b, (n, t) in enumerate(zip(lengths.tolist(), tokens.tolist())):
        for i in range(4):
            if i >= t:  # past the sample's text: zero, like an aligned file's padding
                assert aligned[b, i, 0].item() == 0.0
                continue
            start, stop = (i * n) // t, -((-(i + 1) * n) // t)  # floor(i n / T), ceil((i + 1) n / T)
            assert aligned[b, i, 0].item() == pytest.approx(x[b, start:stop, 0].mean().item())
    longer = align_to(x, torch.tensor([2, 1]), torch.tensor([4, 4]), 4)  # fewer frames than tokens: frames repeat
    assert longer[1, :, 0].tolist() == [x[1, 0, 0].item()] * 4


def test_masked_mean_and_last_valid_ignore_padding():
    x = torch.tensor([[[1.0], [3.0], [100.0]], [[2.0], [-5.0], [-7.0]]])
    assert masked_mean(x, torch.tensor([2, 3]))[:, 0].tolist() == [2.0, pytest.approx(-10 / 3)]
    assert last_valid(x, torch.tensor([2, 1]))[:, 0].tolist() == [3.0, 2.0]


@pytest.mark.parametrize("name", ["mlf-dnn", "mlmf"])
def test_multi_task_loss_uses_modality_labels_where_present_else_m(name):
    model = zoo.create_model(name, feature_dims=(6, 4, 5)).eval()
    g = torch.Generator().manual_seed(3)
    out = model(text=torch.randn(4, 5, 6, generator=g), audio=torch.randn(4, 7, 4, generator=g),
                vision=torch.randn(4, 3, 5, generator=g))
    y = {"M": torch.tensor([0.5, -0.5, 0.2, 0.0]), "T": torch.tensor([1.0, 1.0, -1.0, 0.0])}
    total, parts = model.loss(out, y)
    weights = dict(zip("MTAV", model.config.loss_weights))
    expected_parts = {"M": (out["M"] - y["M"]).abs().mean(), "T": (out["T"] - y["T"]).abs().mean(),
                      "A": (out["A"] - y["M"]).abs().mean(), "V": (out["V"] - y["M"]).abs().mean()}
    assert parts == pytest.approx({k: float(v.detach()) for k, v in expected_parts.items()})
    assert float(total.detach()) == pytest.approx(sum(weights[k] * float(v.detach()) for k, v in expected_parts.items()))


def test_lmf_factors_train_at_their_own_learning_rate():
    model = zoo.create_model("lmf", feature_dims=(6, 4, 5))
    groups = model.optimizer_groups(lr=0.002, weight_decay=0.005)
    factor_ids = {id(p) for p in model.fusion.parameters()}
    by_lr = {g["lr"]: {id(p) for p in g["params"]} for g in groups}
    assert by_lr[model.config.factor_lr] == factor_ids and model.config.factor_lr == 0.0005
    assert by_lr[0.002] == {id(p) for p in model.parameters()} - factor_ids


def test_bad_baseline_settings_are_clear():
    with pytest.raises(ValueError, match="bad option for model 'tfn'"):
        zoo.create_model("tfn", no_such_option=1)
    with pytest.raises(ValueError, match="dropouts must be in"):
        zoo.create_model("lf-dnn", dropouts=(0.2, 0.2, 0.2, 1.5))
    with pytest.raises(ValueError, match="multiple of the heads"):
        zoo.create_model("mult", dst_feature_dim_nheads=(50, 7))
    model = zoo.create_model("tfn", hidden_dims=(8, 4, 8), text_out=8)
    with pytest.raises(ValueError, match=r"audio must be a batch-first tensor \[B, L, 33\]"):
        model(text=torch.zeros(2, 3, 768), audio=torch.zeros(2, 3, 5), vision=torch.zeros(2, 3, 709))
