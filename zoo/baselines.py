"""The paper's conventional baselines as zoo entries, with MMSA 2.2.1's published defaults.

Each entry's hyperparameters and recipe are MMSA 2.2.1's ``config_regression.json``
values for the data set the model is built for (``MMSA_PARAMS`` below, generated
from that file: model fields under our names, then lr, batch size, weight decay
and, for MulT, its gradient clip). MMSA has no SIMS v2 entry, so SIMS v2 uses its
CH-SIMS values; MLF-DNN and MLMF exist in MMSA for CH-SIMS only, whose values
serve every data set. Each card names the model's own paper and its rows in the
SGMT paper's Table 1 (CH-SIMS v2) and Table 2 (MOSEI). How each differs from MMSA
is in docs/baselines.md.
"""

from __future__ import annotations

from typing import Any

from torch import nn

from snn_msa.baselines import (
    EFLSTM, LFDNN, LMF, MFN, MLFDNN, MLMF, TFN, EFLSTMConfig, LFDNNConfig, LMFConfig, MFNConfig, MLFDNNConfig,
    MLMFConfig, MulT, MulTConfig, TFNConfig,
)
from snn_msa.profiles import PROFILES
from snn_msa.recipe import Recipe
from snn_msa.registry import ModelCard, PaperRow, register_model

RECIPE_SOURCE = "MMSA 2.2.1 config_regression.json (lr, batch size, weight decay; early stop 8)"
MMSA_DATASET = {"sims": "sims", "simsv2": "sims", "mosi": "mosi", "mosei": "mosei"}

# name: {MMSA data set: (model fields, recipe fields)}
MMSA_PARAMS: dict[str, dict[str, tuple[dict[str, Any], dict[str, Any]]]] = {
    "ef_lstm": {
        "mosi": (
            dict(hidden_dims=128, num_layers=4, dropout=0.5),
            dict(lr=0.001, batch_size=32, weight_decay=0.005),
        ),
        "mosei": (
            dict(hidden_dims=256, num_layers=2, dropout=0.4),
            dict(lr=0.005, batch_size=128, weight_decay=0.0001),
        ),
        "sims": (
            dict(hidden_dims=32, num_layers=3, dropout=0.5),
            dict(lr=0.0005, batch_size=128, weight_decay=0.001),
        ),
    },
    "lf_dnn": {
        "mosi": (
            dict(hidden_dims=(128, 16, 128), text_out=256, post_fusion_dim=128, dropouts=(0.2, 0.2, 0.2, 0.2)),
            dict(lr=0.001, batch_size=128, weight_decay=0.01),
        ),
        "mosei": (
            dict(hidden_dims=(128, 32, 128), text_out=128, post_fusion_dim=128, dropouts=(0.2, 0.2, 0.2, 0.2)),
            dict(lr=0.002, batch_size=64, weight_decay=0.001),
        ),
        "sims": (
            dict(hidden_dims=(128, 32, 128), text_out=256, post_fusion_dim=32, dropouts=(0.3, 0.3, 0.3, 0.5)),
            dict(lr=0.005, batch_size=128, weight_decay=0.005),
        ),
    },
    "tfn": {
        "mosi": (
            dict(hidden_dims=(128, 32, 128), text_out=32, post_fusion_dim=64, dropouts=(0.3, 0.3, 0.3, 0.5)),
            dict(lr=0.001, batch_size=32),
        ),
        "mosei": (
            dict(hidden_dims=(128, 16, 128), text_out=128, post_fusion_dim=16, dropouts=(0.4, 0.4, 0.4, 0.4)),
            dict(lr=0.005, batch_size=128),
        ),
        "sims": (
            dict(hidden_dims=(128, 32, 128), text_out=256, post_fusion_dim=32, dropouts=(0.4, 0.4, 0.4, 0.4)),
            dict(lr=0.0005, batch_size=32),
        ),
    },
    "lmf": {
        "mosi": (
            dict(hidden_dims=(128, 16, 128), dropouts=(0.3, 0.3, 0.3, 0.3), rank=3, factor_lr=0.001),
            dict(lr=0.001, batch_size=64, weight_decay=0.005),
        ),
        "mosei": (
            dict(hidden_dims=(128, 16, 128), dropouts=(0.2, 0.2, 0.2, 0.2), rank=4, factor_lr=0.001),
            dict(lr=0.001, batch_size=32, weight_decay=0.001),
        ),
        "sims": (
            dict(hidden_dims=(64, 16, 64), dropouts=(0.2, 0.2, 0.2, 0.2), rank=4, factor_lr=0.0005),
            dict(lr=0.002, batch_size=64, weight_decay=0.005),
        ),
    },
    "mfn": {
        "mosi": (
            dict(nn1_dim=32, nn1_dropout=0.2, nn2_dim=64, nn2_dropout=0.0, gamma1_dim=256, gamma1_dropout=0.7,
                 gamma2_dim=32, gamma2_dropout=0.5, out_dim=128, out_dropout=0.0, hidden_dims=(256, 32, 256),
                 memsize=400, windowsize=2),
            dict(lr=0.002, batch_size=128, weight_decay=0.0),
        ),
        "mosei": (
            dict(nn1_dim=128, nn1_dropout=0.2, nn2_dim=128, nn2_dropout=0.5, gamma1_dim=256, gamma1_dropout=0.7,
                 gamma2_dim=256, gamma2_dropout=0.0, out_dim=128, out_dropout=0.5, hidden_dims=(128, 32, 128),
                 memsize=128, windowsize=2),
            dict(lr=0.0005, batch_size=64, weight_decay=0.0001),
        ),
        "sims": (
            dict(nn1_dim=128, nn1_dropout=0.2, nn2_dim=128, nn2_dropout=0.0, gamma1_dim=64, gamma1_dropout=0.2,
                 gamma2_dim=64, gamma2_dropout=0.7, out_dim=64, out_dropout=0.7, hidden_dims=(64, 16, 64), memsize=64,
                 windowsize=2),
            dict(lr=0.001, batch_size=32, weight_decay=0.0),
        ),
    },
    "mult": {
        "mosi": (
            dict(attn_dropout_a=0.2, attn_dropout_v=0.0, relu_dropout=0.0, embed_dropout=0.2, res_dropout=0.0,
                 dst_feature_dim_nheads=(50, 10), nlevels=4, conv1d_kernel_size_l=5, conv1d_kernel_size_a=5,
                 conv1d_kernel_size_v=5, text_dropout=0.5, attn_dropout=0.3, output_dropout=0.5),
            dict(lr=0.002, batch_size=16, weight_decay=0.005, grad_clip=0.6),
        ),
        "mosei": (
            dict(attn_dropout_a=0.0, attn_dropout_v=0.0, relu_dropout=0.0, embed_dropout=0.0, res_dropout=0.0,
                 dst_feature_dim_nheads=(30, 6), nlevels=4, conv1d_kernel_size_l=5, conv1d_kernel_size_a=1,
                 conv1d_kernel_size_v=3, text_dropout=0.3, attn_dropout=0.4, output_dropout=0.5),
            dict(lr=0.0005, batch_size=4, weight_decay=0.001, grad_clip=0.6),
        ),
        "sims": (
            dict(attn_dropout_a=0.1, attn_dropout_v=0.0, relu_dropout=0.0, embed_dropout=0.1, res_dropout=0.2,
                 dst_feature_dim_nheads=(50, 10), nlevels=2, conv1d_kernel_size_l=5, conv1d_kernel_size_a=1,
                 conv1d_kernel_size_v=1, text_dropout=0.3, attn_dropout=0.2, output_dropout=0.1),
            dict(lr=0.002, batch_size=16, weight_decay=0.001, grad_clip=0.6),
        ),
    },
    "mlf_dnn": {
        "sims": (
            dict(loss_weights=(0.6, 0.2, 0.8, 0.8), sub_weight_decay=(0.0001, 0.001, 0.0001), hidden_dims=(64, 32,
                 64), text_out=32, post_fusion_dim=32, post_text_dim=16, post_audio_dim=4, post_video_dim=32,
                 dropouts=(0.3, 0.3, 0.3), post_dropouts=(0.5, 0.5, 0.5, 0.5)),
            dict(lr=0.002, batch_size=32, weight_decay=0.0),
        ),
    },
    "mlmf": {
        "sims": (
            dict(loss_weights=(0.2, 1.0, 0.4, 0.8), sub_weight_decay=(0.0001, 0.0, 0.0001), hidden_dims=(256, 32,
                 256), post_text_dim=8, post_audio_dim=4, post_video_dim=32, post_dropouts=(0.4, 0.4, 0.4, 0.4),
                 dropouts=(0.3, 0.3, 0.3), rank=3, factor_lr=0.001),
            dict(lr=0.001, batch_size=128, weight_decay=0.005),
        ),
    },
}

# The SGMT paper's Tables 1 (CH-SIMS v2; MMSA's published SIMS v2 results) and 2 (MOSEI), as fractions.
TABLE1 = {
    "ef_lstm": (0.4926, 0.7238, 0.7903, 0.6588, 0.3374), "lf_dnn": (0.5276, 0.7259, 0.7946, 0.7120, 0.3014),
    "tfn": (0.5255, 0.7221, 0.8014, 0.7073, 0.3031), "lmf": (0.4779, 0.6490, 0.7388, 0.5569, 0.3672),
    "mfn": (0.5453, 0.7366, 0.8119, 0.7266, 0.2954), "mult": (0.5481, 0.7319, 0.8073, 0.7378, 0.2905),
    "mlf_dnn": (0.4967, 0.6847, 0.7662, 0.6395, 0.3352), "mlmf": (0.5122, 0.6998, 0.7730, 0.6703, 0.3222),
}
TABLE1_KEYS = ("Mult_acc_5", "Mult_acc_3", "F1_score", "Corr", "MAE")
TABLE2 = {
    "ef_lstm": (0.493, 0.803, 0.810, 0.603), "lf_dnn": (0.521, 0.823, 0.822, 0.561), "tfn": (0.502, 0.825, 0.821, 0.593),
    "lmf": (0.480, 0.820, 0.821, 0.623), "mfn": (0.513, 0.828, 0.828, 0.573), "mult": (0.518, 0.825, 0.823, 0.580),
}
TABLE2_KEYS = ("Mult_acc_7", "Non0_acc_2", "Non0_F1_score", "MAE")

NORMALISED = "audio and vision averaged over their real frames (MMSA's need_normalized), text through an LSTM"
ALIGNED = "audio and vision averaged into as many segments as the text has tokens (MMSA needs aligned files)"
FEATURES = "BERT features as given in the file (no fine-tuning)"


def _paper_rows(key: str) -> tuple[PaperRow, ...]:
    rows = [PaperRow("Table 1", "simsv2", key, dict(zip(TABLE1_KEYS, TABLE1[key])))]
    if key in TABLE2:
        rows.append(PaperRow("Table 2", "mosei", key, dict(zip(TABLE2_KEYS, TABLE2[key]))))
    return tuple(rows)


def _mmsa_values(key: str, profile: str | None) -> tuple[dict[str, Any], dict[str, Any]]:
    """MMSA's (model fields, recipe fields) of ``key`` on ``profile``: its CH-SIMS values where MMSA has none."""
    values = MMSA_PARAMS[key]
    return values.get(MMSA_DATASET.get(profile or "sims", "sims"), values["sims"])


def _recipe(key: str, profile: str) -> Recipe:
    return Recipe(**{"weight_decay": 0.0, "grad_clip": 0.0, **_mmsa_values(key, profile)[1]})


def _card(key: str, summary: str, paper: str, notes: str) -> ModelCard:
    return ModelCard(
        summary=summary, spiking=False, paper=paper, paper_rows=_paper_rows(key), recipe=_recipe(key, "sims"),
        dataset_recipes={name: _recipe(key, name) for name in PROFILES}, recipe_source=RECIPE_SOURCE, notes=notes,
    )


def _build(key: str, config_cls, model_cls, feature_dims, profile: str | None, overrides: dict[str, Any]) -> nn.Module:
    fields = _mmsa_values(key, profile)[0]
    return model_cls(config_cls(feature_dims=tuple(feature_dims), **{**fields, **overrides}))


@register_model(card=_card(
    "ef_lstm", "EF-LSTM: the modalities joined frame by frame, then a stacked LSTM.",
    "Williams et al. 2018, Recognizing Emotions in Video Using Multimodal DNN Feature Fusion (ACL workshop)",
    f"{ALIGNED}; BatchNorm over features, not MMSA's per time step; {FEATURES}."))
def ef_lstm(feature_dims: tuple[int, int, int], profile: str | None = None, **kwargs) -> EFLSTM:
    """EF-LSTM: early fusion then an LSTM."""
    return _build("ef_lstm", EFLSTMConfig, EFLSTM, feature_dims, profile, kwargs)


@register_model(card=_card(
    "lf_dnn", "LF-DNN: per-modality networks, late fusion by an MLP.",
    "Williams et al. 2018, DNN Multimodal Fusion Techniques for Predicting Video Sentiment (Challenge-HML)",
    f"{NORMALISED}; {FEATURES}."))
def lf_dnn(feature_dims: tuple[int, int, int], profile: str | None = None, **kwargs) -> LFDNN:
    """LF-DNN: late fusion of per-modality networks."""
    return _build("lf_dnn", LFDNNConfig, LFDNN, feature_dims, profile, kwargs)


@register_model(card=_card(
    "tfn", "TFN: Tensor Fusion Network, the outer product of [1; h_a], [1; h_v], [1; h_t].",
    "Zadeh et al. 2017, Tensor Fusion Network for Multimodal Sentiment Analysis (EMNLP)",
    f"{NORMALISED}; {FEATURES}."))
def tfn(feature_dims: tuple[int, int, int], profile: str | None = None, **kwargs) -> TFN:
    """TFN: Tensor Fusion Network."""
    return _build("tfn", TFNConfig, TFN, feature_dims, profile, kwargs)


@register_model(card=_card(
    "lmf", "LMF: Low-rank Multimodal Fusion with modality-specific factors.",
    "Liu et al. 2018, Efficient Low-rank Multimodal Fusion with Modality-Specific Factors (ACL)",
    f"{NORMALISED}; {FEATURES}; factor_lr applies to the factors (MMSA's code applies it to other parameters)."))
def lmf(feature_dims: tuple[int, int, int], profile: str | None = None, **kwargs) -> LMF:
    """LMF: Low-rank Multimodal Fusion."""
    return _build("lmf", LMFConfig, LMF, feature_dims, profile, kwargs)


@register_model(card=_card(
    "mfn", "MFN: Memory Fusion Network (LSTM cells, delta-memory attention, gated memory).",
    "Zadeh et al. 2018, Memory Fusion Network for Multi-view Sequential Learning (AAAI)",
    f"{ALIGNED}; {FEATURES}."))
def mfn(feature_dims: tuple[int, int, int], profile: str | None = None, **kwargs) -> MFN:
    """MFN: Memory Fusion Network."""
    return _build("mfn", MFNConfig, MFN, feature_dims, profile, kwargs)


@register_model(card=_card(
    "mult", "MulT: Multimodal Transformer, crossmodal attention between unaligned sequences.",
    "Tsai et al. 2019, Multimodal Transformer for Unaligned Multimodal Language Sequences (ACL)",
    f"{FEATURES}; gradient norm clipped at MMSA's 0.6 (MMSA clips by value) and no learning-rate scheduler; "
    "same-length input convolutions; the representation at each sample's last real step."))
def mult(feature_dims: tuple[int, int, int], profile: str | None = None, **kwargs) -> MulT:
    """MulT: Multimodal Transformer."""
    return _build("mult", MulTConfig, MulT, feature_dims, profile, kwargs)


@register_model(card=_card(
    "mlf_dnn", "MLF-DNN: multi-task LF-DNN, heads per modality on the T/A/V labels.",
    "Yu et al. 2020, CH-SIMS: A Chinese Multimodal Sentiment Analysis Dataset with Fine-grained Annotations (ACL)",
    f"{NORMALISED}; {FEATURES}; MMSA gives CH-SIMS values only, used on every data set; without T/A/V labels "
    "the modality heads train on the multimodal label."))
def mlf_dnn(feature_dims: tuple[int, int, int], profile: str | None = None, **kwargs) -> MLFDNN:
    """MLF-DNN: multi-task late fusion."""
    return _build("mlf_dnn", MLFDNNConfig, MLFDNN, feature_dims, profile, kwargs)


@register_model(card=_card(
    "mlmf", "MLMF: multi-task LMF, heads per modality on the T/A/V labels.",
    "Yu et al. 2020, CH-SIMS: A Chinese Multimodal Sentiment Analysis Dataset with Fine-grained Annotations (ACL)",
    f"{NORMALISED}; {FEATURES}; MMSA gives CH-SIMS values only, used on every data set; factor_lr applies to "
    "the factors (MMSA's code applies it to other parameters)."))
def mlmf(feature_dims: tuple[int, int, int], profile: str | None = None, **kwargs) -> MLMF:
    """MLMF: multi-task low-rank fusion."""
    return _build("mlmf", MLMFConfig, MLMF, feature_dims, profile, kwargs)
