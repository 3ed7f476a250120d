"""SGMT entries: the full model, the two-modality ablations and the non-spiking twin.

Each builder is the whole definition of its entry; defaults live in
:class:`snn_msa.model.SGMTConfig` and are overridden by keyword.
"""

from __future__ import annotations

from snn_msa.model import SGMT, SGMTConfig
from snn_msa.registry import ModelCard, register_model

# The paper's published numbers (MMSA keys, fractions). Table 1 is CH-SIMS v2
# (its baseline rows equal MMSA's published SIMS v2 results), Table 2 is MOSEI,
# Table 3 (the modality ablation) repeats Table 1's full-model row, so it is
# SIMS v2 too although its caption says MOSEI.
TRAIN_RECIPE = {"lr": 1e-3, "batch_size": 32, "max_epochs": 40, "patience": 8, "weight_decay": 0.0, "grad_clip": 1.0}

_TABLE3 = {
    "tav": {"Mult_acc_5": 0.5503, "Mult_acc_3": 0.7321, "Mult_acc_2": 0.8056, "F1_score": 0.8068, "MAE": 0.3006},
    "av": {"Mult_acc_5": 0.4855, "Mult_acc_3": 0.6683, "Mult_acc_2": 0.7360, "F1_score": 0.7351, "MAE": 0.3872},
    "tv": {"Mult_acc_5": 0.5077, "Mult_acc_3": 0.7302, "Mult_acc_2": 0.8056, "F1_score": 0.8068, "MAE": 0.3209},
    "ta": {"Mult_acc_5": 0.5097, "Mult_acc_3": 0.6799, "Mult_acc_2": 0.7524, "F1_score": 0.7532, "MAE": 0.3317},
}


def _build(feature_dims, **kwargs) -> SGMT:
    return SGMT(SGMTConfig.from_options(feature_dims=tuple(feature_dims), **kwargs))


def _ablation_card(letters: str, dropped: str) -> ModelCard:
    return ModelCard(
        summary=f"SGMT on {'+'.join(letters.upper())} only: the {dropped} network, head and loss term removed.",
        paper_table="Table 3 (modality ablation)",
        paper_results={"simsv2": _TABLE3[letters]},
        train=TRAIN_RECIPE,
        twin=None,
    )


@register_model(
    card=ModelCard(
        summary="Spiking-Generated Multimodal Transformer on text, audio and vision (the paper's model).",
        paper_table="Table 1 (CH-SIMS v2), Table 2 (MOSEI), Table 4 (grid over scale1 and strength)",
        paper_results={
            "simsv2": {"Mult_acc_5": 0.5503, "Mult_acc_3": 0.7321, "F1_score": 0.8046, "Corr": 0.7247, "MAE": 0.3006},
            "mosei": {"Mult_acc_7": 0.522, "Non0_acc_2": 0.835, "Non0_F1_score": 0.834, "MAE": 0.569},
        },
        train=TRAIN_RECIPE,
        twin="sgmt-tav-ann",
    )
)
def sgmt_tav(feature_dims: tuple[int, int, int], **kwargs) -> SGMT:
    """Spiking-Generated Multimodal Transformer on text, audio and vision."""
    return _build(feature_dims, **{"modalities": ("text", "audio", "vision"), **kwargs})


@register_model(card=_ablation_card("ta", "vision"))
def sgmt_ta(feature_dims: tuple[int, int, int], **kwargs) -> SGMT:
    """SGMT on text and audio (vision removed)."""
    return _build(feature_dims, **{"modalities": ("text", "audio"), **kwargs})


@register_model(card=_ablation_card("tv", "audio"))
def sgmt_tv(feature_dims: tuple[int, int, int], **kwargs) -> SGMT:
    """SGMT on text and vision (audio removed)."""
    return _build(feature_dims, **{"modalities": ("text", "vision"), **kwargs})


@register_model(card=_ablation_card("av", "text"))
def sgmt_av(feature_dims: tuple[int, int, int], **kwargs) -> SGMT:
    """SGMT on audio and vision (text removed)."""
    return _build(feature_dims, **{"modalities": ("audio", "vision"), **kwargs})


@register_model(
    card=ModelCard(
        summary="Non-spiking twin of sgmt-tav: every LIF is the identity and scale2 = sqrt(d).",
        paper_table="none (the ANN side of every energy and accuracy comparison)",
        paper_results={},
        train=TRAIN_RECIPE,
        twin=None,
    )
)
def sgmt_tav_ann(feature_dims: tuple[int, int, int], **kwargs) -> SGMT:
    """Non-spiking twin of sgmt-tav (identity neurons, vanilla attention scale)."""
    return _build(feature_dims, **{"modalities": ("text", "audio", "vision"), **kwargs, "spiking": False})
