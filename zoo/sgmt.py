"""SGMT entries: the full model, the two-modality ablations and their non-spiking twins.

Each builder is the whole definition of its entry; defaults live in
:class:`snn_msa.model.SGMTConfig` and are overridden by keyword. Every spiking
entry names its twin on its card: the same architecture with every LIF the
identity and scale2 = sqrt(d), the ANN side of its energy comparison.
"""

from __future__ import annotations

from snn_msa.model import SGMT, SGMTConfig
from snn_msa.recipe import Recipe
from snn_msa.registry import ModelCard, PaperRow, register_model

SGMT_PAPER = ("Enhancing Multimodal Sentiment Analysis through the Integration of Attention Mechanisms and "
              "Spiking Neural Networks (the SGMT paper)")
RECIPE = Recipe()  # Adam 1e-3, batch 32, up to 40 epochs, patience 8, no weight decay, clip 1 (docs/training.md)
RECIPE_SOURCE = "ours (the paper names Adam only; MMSA's usual lr, batch and patience)"

# The paper's published numbers (MMSA keys, fractions). Table 1 is CH-SIMS v2
# (its baseline rows equal MMSA's published SIMS v2 results), Table 2 is MOSEI,
# Table 3 (the modality ablation) repeats Table 1's full-model row, so it is
# SIMS v2 too although its caption says MOSEI.
_TABLE1 = {"Mult_acc_5": 0.5503, "Mult_acc_3": 0.7321, "F1_score": 0.8046, "Corr": 0.7247, "MAE": 0.3006}
_TABLE2 = {"Mult_acc_7": 0.522, "Non0_acc_2": 0.835, "Non0_F1_score": 0.834, "MAE": 0.569}
_TABLE3 = {
    "tav": {"Mult_acc_5": 0.5503, "Mult_acc_3": 0.7321, "Mult_acc_2": 0.8056, "F1_score": 0.8068, "MAE": 0.3006},
    "av": {"Mult_acc_5": 0.4855, "Mult_acc_3": 0.6683, "Mult_acc_2": 0.7360, "F1_score": 0.7351, "MAE": 0.3872},
    "tv": {"Mult_acc_5": 0.5077, "Mult_acc_3": 0.7302, "Mult_acc_2": 0.8056, "F1_score": 0.8068, "MAE": 0.3209},
    "ta": {"Mult_acc_5": 0.5097, "Mult_acc_3": 0.6799, "Mult_acc_2": 0.7524, "F1_score": 0.7532, "MAE": 0.3317},
}
_MODALITIES = {"t": "text", "a": "audio", "v": "vision"}


def _build(feature_dims, letters: str, **kwargs) -> SGMT:
    mods = tuple(_MODALITIES[letter] for letter in letters)
    return SGMT(SGMTConfig.from_options(feature_dims=tuple(feature_dims), **{"modalities": mods, **kwargs}))


def _spiking_card(letters: str, summary: str, rows: tuple[PaperRow, ...]) -> ModelCard:
    return ModelCard(summary=summary, modalities=tuple(_MODALITIES[x] for x in letters), spiking=True, paper=SGMT_PAPER,
                     paper_rows=rows, recipe=RECIPE, recipe_source=RECIPE_SOURCE, twin=f"sgmt-{letters}-ann")


def _twin_card(letters: str) -> ModelCard:
    return ModelCard(
        summary=f"Non-spiking twin of sgmt-{letters}: every LIF is the identity and scale2 = sqrt(d).",
        modalities=tuple(_MODALITIES[x] for x in letters), spiking=False, paper=SGMT_PAPER, recipe=RECIPE,
        recipe_source=RECIPE_SOURCE, notes="not in the paper's tables: the ANN side of the spiking entry's comparisons",
    )


def _ablation_card(letters: str, dropped: str) -> ModelCard:
    row = PaperRow("Table 3", "simsv2", "+".join(letters.upper()), _TABLE3[letters])
    return _spiking_card(letters, f"SGMT on {'+'.join(letters.upper())} only: the {dropped} network, head and loss "
                                  "term removed.", (row,))


@register_model(card=_spiking_card(
    "tav", "Spiking-Generated Multimodal Transformer on text, audio and vision (the paper's model).",
    (PaperRow("Table 1", "simsv2", "ours", _TABLE1), PaperRow("Table 2", "mosei", "ours", _TABLE2),
     PaperRow("Table 3", "simsv2", "T+A+V", _TABLE3["tav"])),
))
def sgmt_tav(feature_dims: tuple[int, int, int], **kwargs) -> SGMT:
    """Spiking-Generated Multimodal Transformer on text, audio and vision."""
    return _build(feature_dims, "tav", **kwargs)


@register_model(card=_ablation_card("ta", "vision"))
def sgmt_ta(feature_dims: tuple[int, int, int], **kwargs) -> SGMT:
    """SGMT on text and audio (vision removed)."""
    return _build(feature_dims, "ta", **kwargs)


@register_model(card=_ablation_card("tv", "audio"))
def sgmt_tv(feature_dims: tuple[int, int, int], **kwargs) -> SGMT:
    """SGMT on text and vision (audio removed)."""
    return _build(feature_dims, "tv", **kwargs)


@register_model(card=_ablation_card("av", "text"))
def sgmt_av(feature_dims: tuple[int, int, int], **kwargs) -> SGMT:
    """SGMT on audio and vision (text removed)."""
    return _build(feature_dims, "av", **kwargs)


@register_model(card=_twin_card("tav"))
def sgmt_tav_ann(feature_dims: tuple[int, int, int], **kwargs) -> SGMT:
    """Non-spiking twin of sgmt-tav (identity neurons, vanilla attention scale)."""
    return _build(feature_dims, "tav", **{**kwargs, "spiking": False})


@register_model(card=_twin_card("ta"))
def sgmt_ta_ann(feature_dims: tuple[int, int, int], **kwargs) -> SGMT:
    """Non-spiking twin of sgmt-ta."""
    return _build(feature_dims, "ta", **{**kwargs, "spiking": False})


@register_model(card=_twin_card("tv"))
def sgmt_tv_ann(feature_dims: tuple[int, int, int], **kwargs) -> SGMT:
    """Non-spiking twin of sgmt-tv."""
    return _build(feature_dims, "tv", **{**kwargs, "spiking": False})


@register_model(card=_twin_card("av"))
def sgmt_av_ann(feature_dims: tuple[int, int, int], **kwargs) -> SGMT:
    """Non-spiking twin of sgmt-av."""
    return _build(feature_dims, "av", **{**kwargs, "spiking": False})
