r"""The Spiking-Generated Multimodal Transformer (paper sections 3.2-3.3).

1. Coarse features: per modality a temporal ``Conv1d`` from :math:`D_m` to the
   model width :math:`d_m`, then time-major ``[L_m, B, d_m]``.
2. Single-modal network: ``single_layers`` eq.-7 layers per modality (LIF).
3. Fusion network: ``fusion_layers`` eq.-7 layers with the connected neuron LIF'
   over the modalities joined along the sequence axis (attention across modalities).
4. Heads (one scalar each): ``T``, ``A``, ``V`` on each modality's pooled
   single-modal output; ``TAV`` on their concatenation; ``M`` on that
   concatenation joined with the pooled fusion output. The prediction is ``M``.
5. Loss: :math:`\mathcal{L} = \sum_k \lambda_k |O_k - y_k|` (L1), with
   :math:`\lambda_{T,A,V} = 1`, :math:`\lambda_{TAV} = 3`, :math:`\lambda_M = 6`.

A two-modality model drops the excluded modality's network, head and loss term;
its pre-fusion head is named after the modalities it joins (``TA``, ``TV``, ``AV``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

import torch
from torch import nn

from .contract import ModelOutput, firing_rates_of, spiking_activity, weighted_l1_loss
from .layers import SpikingLayer
from .neurons import NeuronSettings

MODALITIES = ("text", "audio", "vision")
LETTER = {"text": "T", "audio": "A", "vision": "V"}
NEURON_SETTING_KEYS = frozenset(f.name for f in fields(NeuronSettings))


@dataclass(frozen=True)
class SGMTConfig:
    """Everything that defines an SGMT model; a checkpoint stores it to rebuild the model.

    Attributes:
        feature_dims: input feature dims (text, audio, vision), from the data.
        modalities: the modalities used, in the order text, audio, vision.
        d_model: model width :math:`d_m`, shared by all modalities.
        heads: attention heads :math:`h` (head width :math:`d = d_m / h`).
        single_layers: :math:`N_s`, eq.-7 layers per modality.
        fusion_layers: :math:`N_f`, connected eq.-7 layers after joining.
        scale1: the paper's input scale :math:`scale_1`.
        spiking: False builds the non-spiking twin (identity neurons, scale2 = sqrt(d)).
        neuron: every neuron setting (tau, v_threshold, v_rest, alpha, the connected
            neuron's strength and backend) as one frozen :class:`NeuronSettings`.
        conv_kernel: kernel of the temporal input convolution.
        dropout: dropout on the coarse features, the layers' feed-forward output and the heads.
        head_hidden: hidden width of each head's two-layer perceptron.
        loss_weights: weight of each head's L1 loss (single-modal, pre-fusion, multimodal).

    :meth:`from_options` also takes the neuron settings as flat keywords
    (``strength=0.05, tau=2.0``), as the CLI, the grid and checkpoints written
    before the settings object existed give them.
    """

    feature_dims: tuple[int, int, int]
    modalities: tuple[str, ...] = MODALITIES
    d_model: int = 64
    heads: int = 4
    single_layers: int = 1
    fusion_layers: int = 1
    scale1: float = 0.5
    spiking: bool = True
    neuron: NeuronSettings = field(default_factory=NeuronSettings)
    conv_kernel: int = 3
    dropout: float = 0.1
    head_hidden: int = 64
    loss_weights: tuple[float, float, float] = (1.0, 3.0, 6.0)

    @classmethod
    def from_options(cls, **options: Any) -> "SGMTConfig":
        """A config from keyword options, with neuron settings given whole (``neuron=``) or flat (``strength=``)."""
        flat = {k: options.pop(k) for k in list(options) if k in NEURON_SETTING_KEYS}
        neuron = options.pop("neuron", None)
        if isinstance(neuron, dict):
            neuron = NeuronSettings(**neuron)
        options["neuron"] = replace(neuron or NeuronSettings(), **flat)
        return cls(**options)

    def __post_init__(self) -> None:
        dims = tuple(int(d) for d in self.feature_dims)
        if len(dims) != 3 or min(dims) < 1:
            raise ValueError(f"feature_dims must be three positive ints (text, audio, vision), got {self.feature_dims!r}.")
        object.__setattr__(self, "feature_dims", dims)
        mods = tuple(self.modalities)
        if len(mods) < 2 or len(set(mods)) != len(mods) or any(m not in MODALITIES for m in mods):
            raise ValueError(f"modalities must be two or three distinct names of {MODALITIES}, got {mods!r}.")
        object.__setattr__(self, "modalities", tuple(m for m in MODALITIES if m in mods))
        object.__setattr__(self, "loss_weights", tuple(float(w) for w in self.loss_weights))
        checks = [
            (self.d_model >= 1, "d_model must be positive"),
            (self.heads >= 1 and self.d_model % self.heads == 0, "d_model must be a positive multiple of heads"),
            (self.single_layers >= 1 and self.fusion_layers >= 1, "single_layers and fusion_layers must be at least 1"),
            (self.scale1 > 0, "scale1 must be positive"),
            (0.0 <= self.dropout < 1.0, "dropout must be in [0, 1)"),
            (self.conv_kernel >= 1 and self.conv_kernel % 2 == 1, "conv_kernel must be a positive odd number"),
            (self.head_hidden >= 1, "head_hidden must be positive"),
            (len(self.loss_weights) == 3, "loss_weights needs three numbers (single-modal, pre-fusion, multimodal)"),
            (isinstance(self.neuron, NeuronSettings), "neuron must be a NeuronSettings"),
        ]
        for ok, message in checks:
            if not ok:
                raise ValueError(f"{message} (config: {self.describe()}).")

    def describe(self) -> str:
        return ", ".join(f"{k}={v}" for k, v in asdict(self).items())

    @property
    def letters(self) -> str:
        return "".join(LETTER[m] for m in self.modalities)


def _head(in_features: int, hidden: int, dropout: float) -> nn.Sequential:
    return nn.Sequential(nn.Dropout(dropout), nn.Linear(in_features, hidden), nn.ReLU(), nn.Linear(hidden, 1))


def _valid_mask(lengths: torch.Tensor | None, length: int, batch: int, device: torch.device) -> torch.Tensor | None:
    """``[L, B]`` bool mask of real positions; lengths are clamped to [1, L] so attention never sees an empty row."""
    if lengths is None:
        return None
    lengths = torch.as_tensor(lengths, device=device).long().view(-1)
    if lengths.numel() != batch:
        raise ValueError(f"got {lengths.numel()} lengths for a batch of {batch}.")
    lengths = lengths.clamp(1, length)
    return torch.arange(length, device=device).unsqueeze(1) < lengths.unsqueeze(0)


def _masked_mean(x: torch.Tensor, valid: torch.Tensor | None) -> torch.Tensor:
    """Mean over time of ``[L, B, d]`` at valid positions -> ``[B, d]``."""
    if valid is None:
        return x.mean(dim=0)
    w = valid.to(x.dtype).unsqueeze(-1)
    return (x * w).sum(dim=0) / w.sum(dim=0)


def pack_valid(x: torch.Tensor, valid: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Move each sample's valid positions of ``x`` ``[L, B, d]`` to the front, in order.

    The joined sequence text | audio | vision has each modality's padding in its
    middle; packed, the fusion network's neurons run over one sample's real
    positions back to back, as they would without padding, so a sample's fusion
    output does not depend on how far its modalities were padded. Returns the
    packed sequence and its ``[L, B]`` mask.
    """
    order = torch.sort((~valid).to(torch.uint8), dim=0, stable=True).indices  # valid first, order kept
    packed = torch.gather(x, 0, order.unsqueeze(-1).expand_as(x))
    lengths = valid.sum(dim=0)
    return packed, torch.arange(x.shape[0], device=x.device).unsqueeze(1) < lengths.unsqueeze(0)


class SGMT(nn.Module):
    """Spiking-Generated Multimodal Transformer; see the module docstring for the equations.

    Call as ``model(text, audio, vision, audio_lengths=None, vision_lengths=None, text_lengths=None)``
    with batch-first MMSA tensors ``[B, L_m, D_m]``; a modality the model does not
    use may be ``None`` or left out (and is ignored if given). Neurons reset
    themselves at every call, so two calls on the same input agree.
    """

    def __init__(self, config: SGMTConfig):
        super().__init__()
        self.config = config
        c = config
        single = "lif" if c.spiking else "identity"
        fusion = "connected" if c.spiking else "identity"
        dims = dict(zip(MODALITIES, c.feature_dims))
        self.projections = nn.ModuleDict(
            {m: nn.Conv1d(dims[m], c.d_model, c.conv_kernel, padding=c.conv_kernel // 2) for m in c.modalities}
        )
        self.input_dropout = nn.Dropout(c.dropout)

        def layer(neuron: str) -> SpikingLayer:
            return SpikingLayer(c.d_model, c.heads, c.scale1, neuron, c.neuron, c.dropout)

        self.single_modal = nn.ModuleDict(
            {m: nn.ModuleList(layer(single) for _ in range(c.single_layers)) for m in c.modalities}
        )
        self.fusion = nn.ModuleList(layer(fusion) for _ in range(c.fusion_layers))
        n = len(c.modalities)
        self.heads = nn.ModuleDict({LETTER[m]: _head(c.d_model, c.head_hidden, c.dropout) for m in c.modalities})
        self.heads[c.letters] = _head(n * c.d_model, c.head_hidden, c.dropout)
        self.heads["M"] = _head((n + 1) * c.d_model, c.head_hidden, c.dropout)

    @property
    def loss_weights(self) -> dict[str, float]:
        single, joint, multi = self.config.loss_weights
        weights = {LETTER[m]: single for m in self.config.modalities}
        weights[self.config.letters] = joint
        weights["M"] = multi
        return weights

    def _check_input(self, name: str, x: torch.Tensor | None) -> torch.Tensor:
        dim = self.config.feature_dims[MODALITIES.index(name)]
        if x is None:
            raise ValueError(f"this model uses {name} but got {name}=None; pass a [B, L, {dim}] tensor.")
        if not isinstance(x, torch.Tensor) or x.dim() != 3 or x.shape[-1] != dim:
            shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
            raise ValueError(
                f"{name} must be a batch-first tensor [B, L, {dim}] (the model was built for "
                f"feature_dims={self.config.feature_dims}); got {shape}."
            )
        return x

    def forward(
        self,
        text: torch.Tensor | None = None,
        audio: torch.Tensor | None = None,
        vision: torch.Tensor | None = None,
        audio_lengths: torch.Tensor | None = None,
        vision_lengths: torch.Tensor | None = None,
        text_lengths: torch.Tensor | None = None,
    ) -> ModelOutput:
        inputs = {"text": text, "audio": audio, "vision": vision}
        lengths = {"text": text_lengths, "audio": audio_lengths, "vision": vision_lengths}
        param = next(self.parameters())
        batch = None
        sequences, masks, pooled = [], [], {}
        for m in self.config.modalities:
            x = self._check_input(m, inputs[m]).to(param.device, param.dtype)
            if batch is None:
                batch = x.shape[0]
            elif x.shape[0] != batch:
                raise ValueError(f"all modalities need the same batch size; {m} has {x.shape[0]}, expected {batch}.")
            valid = _valid_mask(lengths[m], x.shape[1], batch, x.device)
            if valid is not None:  # padding must not reach real frames through the convolution
                x = x * valid.t().unsqueeze(-1).to(x.dtype)
            coarse = self.projections[m](x.transpose(1, 2))  # [B, d, L]
            h = self.input_dropout(coarse.permute(2, 0, 1))  # time-major [L, B, d]
            for layer in self.single_modal[m]:
                h = layer(h, valid)
            pooled[m] = _masked_mean(h, valid)
            sequences.append(h)
            masks.append(valid)
        joint, joint_valid = torch.cat(sequences, dim=0), None
        if any(mask is not None for mask in masks):  # no host sync: the lengths decide, not their values
            full = [torch.ones(h.shape[:2], dtype=torch.bool, device=h.device) if mask is None else mask
                    for h, mask in zip(sequences, masks)]
            joint, joint_valid = pack_valid(joint, torch.cat(full, dim=0))
        for layer in self.fusion:
            joint = layer(joint, joint_valid)
        pooled["fusion"] = _masked_mean(joint, joint_valid)

        single = torch.cat([pooled[m] for m in self.config.modalities], dim=-1)
        predictions = {LETTER[m]: self.heads[LETTER[m]](pooled[m]).squeeze(-1) for m in self.config.modalities}
        predictions[self.config.letters] = self.heads[self.config.letters](single).squeeze(-1)
        predictions["M"] = self.heads["M"](torch.cat([single, pooled["fusion"]], dim=-1)).squeeze(-1)
        activity = spiking_activity(self)
        return ModelOutput(predictions=predictions, features=pooled, firing_rates=firing_rates_of(activity),
                           activity=activity)

    def loss(self, output: ModelOutput, labels: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
        r"""Weighted multi-task L1 loss :math:`\sum_k \lambda_k \,\mathrm{mean}|O_k - y_k|`.

        ``labels`` holds ``"M"`` and, where the data has them, ``"T"``, ``"A"``,
        ``"V"``; a single-modal head without its own label trains on ``"M"``
        (MOSI and MOSEI). Returns the total and each head's unweighted L1.
        """
        return weighted_l1_loss(output, labels, self.loss_weights)

    def energy_scopes(
        self,
        text: torch.Tensor | None = None,
        audio: torch.Tensor | None = None,
        vision: torch.Tensor | None = None,
        audio_lengths: torch.Tensor | None = None,
        vision_lengths: torch.Tensor | None = None,
        text_lengths: torch.Tensor | None = None,
    ) -> list:
        """The energy-scope protocol (:mod:`snn_msa.energy.positions`): stage, modality and valid
        ``[B, L]`` positions of each part for these inputs. The fusion network runs on the joint
        sequence with each sample's valid positions packed to the front (:func:`pack_valid`)."""
        from .energy.positions import Scope, valid_mask

        inputs = {"text": text, "audio": audio, "vision": vision}
        lengths = {"text": text_lengths, "audio": audio_lengths, "vision": vision_lengths}
        scopes, joint_lengths, joint_length = [Scope("", "pooling", "joint")], 0, 0
        for m in self.config.modalities:
            x = self._check_input(m, inputs[m])
            valid = valid_mask(lengths[m], x.shape[1], x.shape[0])
            scopes.append(Scope(f"projections.{m}", "projection", m, valid))
            scopes.append(Scope(f"single_modal.{m}", "single-modal", m, valid, layout="time-major"))
            scopes.append(Scope(f"heads.{LETTER[m]}", "head", m))
            joint_lengths = joint_lengths + (x.shape[1] if valid is None else valid.sum(dim=1).cpu())
            joint_length += x.shape[1]
        fused = torch.arange(joint_length).unsqueeze(0) < torch.as_tensor(joint_lengths).view(-1, 1)
        scopes.append(Scope("fusion", "fusion", "joint", None if bool(fused.all()) else fused, layout="time-major"))
        scopes += [Scope(f"heads.{self.config.letters}", "head", "joint"), Scope("heads.M", "head", "joint")]
        return scopes
