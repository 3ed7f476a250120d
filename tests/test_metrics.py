"""MMSA-compatible metrics: hand-worked cases, bin edges, edge cases, and a
plain re-statement of MMSA's ``MetricsTop`` checked on random arrays."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch

from snn_msa.metrics import (
    HEADLINE,
    METRIC_KEYS,
    UndefinedMetricWarning,
    lower_is_better,
    metric_family,
    msa_metrics,
    msa_metrics_with_notes,
    primary_metric,
    weighted_f1,
)

DATASETS = ["sims", "simsv2", "mosi", "mosei"]


# --- A plain re-statement of MMSA's MetricsTop (regression), loop by loop ----


def plain_weighted_f1(truth, preds) -> float:
    """Per-class precision, recall and F1 (0/0 counts as 0), weighted by true support."""
    truth, preds = list(truth), list(preds)
    labels = sorted(set(truth) | set(preds))
    total = 0.0
    for c in labels:
        tp = sum(1 for t, p in zip(truth, preds) if t == c and p == c)
        n_pred = sum(1 for p in preds if p == c)
        n_true = sum(1 for t in truth if t == c)
        precision = tp / n_pred if n_pred else 0.0
        recall = tp / n_true if n_true else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        total += f1 * n_true
    return total / len(truth)


def multiclass_acc(y_pred, y_true) -> float:
    return np.sum(np.round(y_pred) == np.round(y_true)) / float(len(y_true))


def reference_corr(p, t) -> float:
    # MMSA calls np.corrcoef directly; for constant input that is nan (or noise
    # from an inexact mean). msa_metrics defines it as nan; so does this copy.
    if np.all(p == p[0]) or np.all(t == t[0]):
        return float("nan")
    return np.corrcoef(p, t)[0][1]


def mmsa_mosei_regression(y_pred: torch.Tensor, y_true: torch.Tensor) -> dict:
    test_preds = y_pred.view(-1).cpu().detach().numpy()
    test_truth = y_true.view(-1).cpu().detach().numpy()
    test_preds_a7 = np.clip(test_preds, a_min=-3.0, a_max=3.0)
    test_truth_a7 = np.clip(test_truth, a_min=-3.0, a_max=3.0)
    test_preds_a5 = np.clip(test_preds, a_min=-2.0, a_max=2.0)
    test_truth_a5 = np.clip(test_truth, a_min=-2.0, a_max=2.0)
    mae = np.mean(np.absolute(test_preds - test_truth))
    corr = reference_corr(test_preds, test_truth)
    mult_a7 = multiclass_acc(test_preds_a7, test_truth_a7)
    mult_a5 = multiclass_acc(test_preds_a5, test_truth_a5)
    non_zeros = np.array([i for i, e in enumerate(test_truth) if e != 0])
    non_zeros_binary_truth = test_truth[non_zeros] > 0
    non_zeros_binary_preds = test_preds[non_zeros] > 0
    non_zeros_acc2 = np.mean(non_zeros_binary_preds == non_zeros_binary_truth)
    non_zeros_f1 = plain_weighted_f1(non_zeros_binary_truth, non_zeros_binary_preds)
    binary_truth = test_truth >= 0
    binary_preds = test_preds >= 0
    acc2 = np.mean(binary_preds == binary_truth)
    f_score = plain_weighted_f1(binary_truth, binary_preds)
    return {
        "Has0_acc_2": round(acc2, 4),
        "Has0_F1_score": round(f_score, 4),
        "Non0_acc_2": round(non_zeros_acc2, 4),
        "Non0_F1_score": round(non_zeros_f1, 4),
        "Mult_acc_5": round(mult_a5, 4),
        "Mult_acc_7": round(mult_a7, 4),
        "MAE": round(mae, 4),
        "Corr": round(corr, 4),
    }


def mmsa_sims_regression(y_pred: torch.Tensor, y_true: torch.Tensor) -> dict:
    test_preds = np.clip(y_pred.view(-1).cpu().detach().numpy(), a_min=-1.0, a_max=1.0)
    test_truth = np.clip(y_true.view(-1).cpu().detach().numpy(), a_min=-1.0, a_max=1.0)
    binned = {}
    for k, ms in ((2, [-1.01, 0.0, 1.01]), (3, [-1.01, -0.1, 0.1, 1.01]), (5, [-1.01, -0.7, -0.1, 0.1, 0.7, 1.01])):
        preds_k, truth_k = test_preds.copy(), test_truth.copy()
        for i in range(k):
            preds_k[np.logical_and(test_preds > ms[i], test_preds <= ms[i + 1])] = i
        for i in range(k):
            truth_k[np.logical_and(test_truth > ms[i], test_truth <= ms[i + 1])] = i
        binned[k] = (preds_k, truth_k)
    mae = np.mean(np.absolute(test_preds - test_truth))
    corr = reference_corr(test_preds, test_truth)
    return {
        "Mult_acc_2": round(multiclass_acc(*binned[2]), 4),
        "Mult_acc_3": round(multiclass_acc(*binned[3]), 4),
        "Mult_acc_5": round(multiclass_acc(*binned[5]), 4),
        "F1_score": round(plain_weighted_f1(binned[2][1], binned[2][0]), 4),
        "MAE": round(mae, 4),
        "Corr": round(corr, 4),
    }


def assert_same(got: dict, want: dict) -> None:
    assert list(got) == list(want)
    for key, value in want.items():
        value = float(value)
        if math.isnan(value):
            assert math.isnan(got[key]), key
        elif key == "MAE":
            # MMSA takes the mean in float32 for float32 input; msa_metrics in float64.
            assert got[key] == pytest.approx(value, abs=1.01e-4), key
        else:
            assert got[key] == value, key


# --- Hand-worked cases --------------------------------------------------------


def test_sims_hand_computed():
    preds = [0.5, -0.3, 0.0, 0.9, 1.7]
    labels = [0.6, -0.2, 0.2, 0.8, 1.0]
    # 1.7 is clipped to 1.0.
    # 2-class (x > 0): preds 1 0 0 1 1, labels 1 0 1 1 1 -> 4/5 agree.
    # 3-class edges -0.1, 0.1: preds 2 0 1 2 2, labels 2 0 2 2 2 -> 4/5.
    # 5-class edges -0.7 -0.1 0.1 0.7: preds 3 1 2 4 4, labels 3 1 3 4 4 -> 4/5.
    # F1: class 0 tp 1 fp 1 fn 0 -> 2/3, support 1; class 1 tp 3 fp 0 fn 1 -> 6/7,
    #     support 4; (2/3 + 4 * 6/7) / 5 = 0.819047... -> 0.819.
    # MAE on clipped values: (0.1 + 0.1 + 0.2 + 0.1 + 0) / 5 = 0.1.
    m = msa_metrics(preds, labels, "sims")
    assert list(m) == METRIC_KEYS["sims"]
    assert (m["Mult_acc_2"], m["Mult_acc_3"], m["Mult_acc_5"]) == (0.8, 0.8, 0.8)
    assert m["F1_score"] == 0.819
    assert m["MAE"] == 0.1
    assert m["Corr"] == round(float(np.corrcoef(np.clip(preds, -1, 1), labels)[0, 1]), 4)
    assert all(type(v) is float for v in m.values())


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_sims_bin_edges_belong_to_the_lower_bin(dtype):
    # MMSA's bins are (e_i, e_{i+1}]: an edge value falls in the bin below it.
    edges = np.array([-1.0, -0.7, -0.1, 0.0, 0.1, 0.7, 1.0], dtype=dtype)
    # Class of each edge value:      -1   -0.7  -0.1  0.0  0.1  0.7  1.0
    want2 = np.array([0, 0, 0, 0, 1, 1, 1])
    want3 = np.array([0, 0, 0, 1, 1, 2, 2])
    want5 = np.array([0, 0, 1, 2, 2, 3, 4])
    for want, key in ((want2, "Mult_acc_2"), (want3, "Mult_acc_3"), (want5, "Mult_acc_5")):
        k = want.max() + 1
        # Predictions at the class centres: only the right bin for each edge scores.
        centres = {2: [-0.5, 0.5], 3: [-0.5, 0.0, 0.5], 5: [-0.85, -0.4, 0.0, 0.4, 0.85]}[k]
        preds = np.array(centres, dtype=dtype)[want]
        m, notes = msa_metrics_with_notes(torch.from_numpy(preds), torch.from_numpy(edges), "sims")
        assert m[key] == 1.0, key
        wrong = np.array(centres, dtype=dtype)[(want + 1) % k]
        m, _ = msa_metrics_with_notes(wrong, edges, "simsv2")
        assert m[key] == 0.0, key


def test_sims_float32_tenth_matches_mmsa():
    # float32(0.1) is 0.10000000149 > 0.1 in float64, yet MMSA (float32 array
    # against a Python float) puts it in (-0.1, 0.1]; so does msa_metrics.
    labels = torch.tensor([0.1, -0.7], dtype=torch.float32)
    preds = torch.tensor([0.0, -0.9], dtype=torch.float32)
    assert msa_metrics(preds, labels, "sims", decimals=None)["Mult_acc_5"] == 1.0
    assert_same(msa_metrics(preds, labels, "sims"), mmsa_sims_regression(preds, labels))


def test_mosi_hand_computed():
    preds = [2.5, -2.5, 0.5, 1.5, -0.4, 3.6]
    labels = [2.0, -2.0, 0.0, 2.4, 0.0, 3.0]
    # np.round is half to even: 2.5 -> 2, -2.5 -> -2, 0.5 -> 0, 1.5 -> 2.
    # Mult_acc_7 (clip 3): preds 2 -2 0 2 -0 3, labels 2 -2 0 2 0 3 -> 6/6 = 1.0
    #   (-0.4 rounds to -0.0, which equals 0.0; 3.6 is clipped to 3).
    # Mult_acc_5 (clip 2): preds 2 -2 0 2 -0 2, labels 2 -2 0 2 0 2 -> 1.0.
    # Has0 (x >= 0): preds T F T T F T, labels T F T T T T -> 5/6 = 0.8333.
    #   F1: class False tp 1 fp 1 fn 0 -> 2/3, support 1; class True tp 4 fp 0
    #   fn 1 -> 8/9, support 5; (2/3 + 5 * 8/9) / 6 = 0.85185 -> 0.8519.
    # Non0 drops the two exact zeros: preds 2.5 -2.5 1.5 3.6 vs labels 2 -2 2.4 3
    #   -> all signs agree: acc 1.0, F1 1.0.
    # MAE (unclipped): (0.5 + 0.5 + 0.5 + 0.9 + 0.4 + 0.6) / 6 = 3.4 / 6 = 0.5667.
    m = msa_metrics(preds, labels, "mosi")
    assert list(m) == METRIC_KEYS["mosi"]
    assert m["Mult_acc_7"] == 1.0 and m["Mult_acc_5"] == 1.0
    assert m["Has0_acc_2"] == 0.8333 and m["Has0_F1_score"] == 0.8519
    assert m["Non0_acc_2"] == 1.0 and m["Non0_F1_score"] == 1.0
    assert m["MAE"] == 0.5667


def test_mosi_half_rounds_to_even_not_up():
    # Rounding half up would put 2.5 in class 3 and 0.5 in class 1.
    m = msa_metrics([2.5, 0.5, -1.5], [3.0, 1.0, -1.0], "mosei")
    assert m["Mult_acc_7"] == 0.0  # 2 != 3, 0 != 1, -2 != -1
    m = msa_metrics([2.5, 0.5, -1.5], [2.0, 0.0, -2.0], "mosei")
    assert m["Mult_acc_7"] == 1.0


def test_mosi_exact_zero_labels():
    # Label 0: dropped by Non0, non-negative for Has0.
    preds = [-0.2, 0.3, -1.0]
    labels = [0.0, 0.0, -1.0]
    m = msa_metrics(preds, labels, "mosi")
    # Has0: preds F T F, labels T T F -> 2/3.
    assert m["Has0_acc_2"] == 0.6667
    # Non0 keeps only the last sample: -1.0 vs -1.0 -> right.
    assert m["Non0_acc_2"] == 1.0 and m["Non0_F1_score"] == 1.0
    # A tiny non-zero label is not dropped: 1e-9 > 0, the prediction -0.2 is wrong.
    m = msa_metrics(preds, [1e-9, 0.0, -1.0], "mosi")
    assert m["Non0_acc_2"] == 0.5


def test_all_zero_labels_give_nan_non0_and_a_note():
    values, notes = msa_metrics_with_notes([0.1, -0.1, 0.4], [0.0, 0.0, 0.0], "mosei")
    assert math.isnan(values["Non0_acc_2"]) and math.isnan(values["Non0_F1_score"])
    assert values["Has0_acc_2"] == 0.6667
    # Constant labels also leave Corr undefined: two notes.
    assert len(notes) == 2 and any("Non0" in n for n in notes) and any("Corr" in n for n in notes)
    with pytest.warns(UndefinedMetricWarning) as record:
        msa_metrics([0.1, -0.1, 0.4], [0.0, 0.0, 0.0], "mosei")
    assert sorted(str(w.message)[:4] for w in record) == ["Corr", "Non0"]


@pytest.mark.parametrize("dataset", DATASETS)
def test_constant_predictions_give_nan_corr_and_no_numpy_warning(dataset):
    labels = [0.4, -0.6, 0.2, 0.8]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # any RuntimeWarning from numpy would raise here
        values, notes = msa_metrics_with_notes([0.3] * 4, labels, dataset)
    assert math.isnan(values["Corr"])
    assert notes == ["Corr is undefined when predictions or labels are constant; reported as nan."]
    with pytest.warns(UndefinedMetricWarning, match="Corr is undefined when predictions or labels are constant"):
        msa_metrics([0.3] * 4, labels, dataset)


def test_sims_corr_constant_after_clipping():
    values, notes = msa_metrics_with_notes([1.5, 2.0, 3.0], [0.2, 0.4, -0.2], "sims")
    assert math.isnan(values["Corr"]) and notes
    # The MOSI family does not clip for Corr, so the same input is fine there.
    values, notes = msa_metrics_with_notes([1.5, 2.0, 3.0], [0.2, 0.4, -0.2], "mosi")
    assert not math.isnan(values["Corr"]) and not notes


def test_shapes_and_input_types():
    preds, labels = [0.2, -0.5, 0.9], [0.4, -0.2, 0.6]
    want = msa_metrics(preds, labels, "sims")
    as_column = msa_metrics(np.array(preds)[:, None], torch.tensor(labels)[:, None], "sims")
    assert as_column == want
    grad = torch.tensor(preds, requires_grad=True)
    assert msa_metrics(grad * 1.0, labels, "sims") == want
    # 5-class: 0.2 -> 3 vs 0.4 -> 3, -0.5 -> 1 vs -0.2 -> 1, 0.9 -> 4 vs 0.6 -> 3: 2/3.
    assert want["Mult_acc_5"] == 0.6667
    assert msa_metrics(torch.tensor(preds, dtype=torch.bfloat16), labels, "sims")["Mult_acc_5"] == 0.6667
    assert msa_metrics([1, -1, 0], [1, -1, 0], "mosi")["Mult_acc_7"] == 1.0  # integers


@pytest.mark.parametrize(
    ("preds", "labels", "match"),
    [
        ([0.1, 0.2], [0.1], "differ in length"),
        ([], [], "empty"),
        ([[0.1, 0.2]], [[0.1, 0.2]], r"shape \[N\] or \[N, 1\]"),
        (np.zeros((2, 2)), np.zeros(4), r"shape \[N\] or \[N, 1\]"),
        ([0.1, float("nan")], [0.1, 0.2], "non-finite"),
        ([0.1, 0.2], [float("inf"), 0.2], "labels has 1 non-finite"),
        (["a", "b"], [0.1, 0.2], "must be numbers"),
    ],
)
def test_bad_input_raises_value_error(preds, labels, match):
    with pytest.raises(ValueError, match=match):
        msa_metrics(preds, labels, "mosi")


def test_unknown_dataset():
    with pytest.raises(ValueError, match="unknown dataset"):
        msa_metrics([0.1], [0.1], "iemocap")


def test_decimals():
    preds, labels = [0.123456, -0.5], [0.0, -0.4]
    assert msa_metrics(preds, labels, "mosi", decimals=None)["MAE"] == pytest.approx((0.123456 + 0.1) / 2)
    assert msa_metrics(preds, labels, "mosi")["MAE"] == 0.1117
    assert msa_metrics(preds, labels, "mosi", decimals=2)["MAE"] == 0.11


# --- Families, keys, helpers ---------------------------------------------------


def test_families_and_helpers():
    assert [metric_family(d) for d in DATASETS] == ["sims", "sims", "mosi", "mosi"]
    assert metric_family("MOSEI") == "mosi" and metric_family("sims_v2") == "sims"
    assert primary_metric("simsv2") == "Mult_acc_5" and primary_metric("mosi") == "Mult_acc_7"
    for family, keys in METRIC_KEYS.items():
        assert set(HEADLINE[family]) <= set(keys)
        assert primary_metric(family) in HEADLINE[family]
        assert [lower_is_better(k) for k in keys] == [k == "MAE" for k in keys]
    with pytest.raises(ValueError, match="unknown metric key"):
        lower_is_better("Acc-2")


@pytest.mark.parametrize("dataset", DATASETS)
def test_keys_match_metric_keys(dataset):
    m = msa_metrics([0.3, -0.2, 0.9], [0.2, -0.4, 0.6], dataset)
    assert list(m) == METRIC_KEYS[metric_family(dataset)]


# --- Against the re-statement of MMSA on random arrays --------------------------

SIMS_SPECIAL = np.array([-1.0, -0.7, -0.1, 0.0, 0.1, 0.7, 1.0, -0.8, -0.2, 0.2, 0.4, 0.6, 0.8])
MOSI_SPECIAL = np.array([-3.0, -2.5, -1.5, -0.5, 0.0, 0.5, 1.5, 2.5, 3.0, 2.2, -0.4])


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("dataset", DATASETS)
def test_matches_mmsa_restatement_on_random_arrays(dataset, dtype):
    rng = np.random.default_rng(sum(map(ord, dataset)) + (dtype == torch.float64))
    family = metric_family(dataset)
    special, scale = (SIMS_SPECIAL, 1.3) if family == "sims" else (MOSI_SPECIAL, 3.5)
    reference = mmsa_sims_regression if family == "sims" else mmsa_mosei_regression
    for trial in range(60):
        n = int(rng.integers(2, 80))
        preds, labels = rng.uniform(-scale, scale, n), rng.uniform(-scale, scale, n)
        # Salt both with bin edges, halves and exact zeros.
        for x, share in ((preds, 0.3), (labels, 0.6)):
            hit = rng.random(n) < share
            x[hit] = rng.choice(special, hit.sum())
        labels[0] = 0.5  # at least one non-zero label, so MMSA's Non0 is defined
        if trial % 10 == 0:
            preds[:] = preds[0]
        p, y = torch.tensor(preds, dtype=dtype)[:, None], torch.tensor(labels, dtype=dtype)
        assert_same(msa_metrics_with_notes(p, y, dataset)[0], reference(p, y))


def test_weighted_f1_against_plain_per_class():
    rng = np.random.default_rng(1)
    for _ in range(300):
        n, k = int(rng.integers(1, 25)), int(rng.integers(1, 4))
        truth, preds = rng.integers(0, k, n), rng.integers(0, k + 1, n)  # preds may hold an unseen class
        assert weighted_f1(truth, preds) == pytest.approx(plain_weighted_f1(truth, preds), abs=1e-12)
    assert weighted_f1([True, True], [True, True]) == 1.0
    assert weighted_f1([True, True], [False, False]) == 0.0


def test_weighted_f1_against_sklearn():
    # scikit-learn is in the test extra: a missing one fails here rather than skipping the one
    # cross-check against the code MMSA calls.
    from sklearn import metrics

    rng = np.random.default_rng(2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # sklearn warns on 0/0 precision; the value is what counts
        for _ in range(200):
            n, k = int(rng.integers(1, 25)), int(rng.integers(1, 4))
            truth, preds = rng.integers(0, k, n), rng.integers(0, k + 1, n)
            want = metrics.f1_score(truth, preds, average="weighted")
            assert weighted_f1(truth, preds) == pytest.approx(want, abs=1e-12)
