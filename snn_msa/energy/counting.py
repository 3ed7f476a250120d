r"""Per-layer operation counts from real forward passes, by forward hooks on named modules.

Every row carries the dotted name of the module it comes from. What is counted:

- ``Linear`` on binary input (a Linear after a spiking neuron): accumulates,
  :math:`AC = \mathrm{nnz}(x) \cdot n_{out}`; on real input: :math:`MAC = n \cdot n_{in} \cdot n_{out}`.
- ``Conv1d`` (real input): :math:`MAC = \text{output positions} \cdot C_{out} \cdot C_{in} \cdot k`.
- ``MHSGSA`` adds three rows: ``.scores`` (:math:`QK^T`, MAC, plus the Q scaling),
  ``.softmax`` and ``.mix`` (softmax times V, MAC). Q and K are spikes times
  weights, so real-valued: their product is MAC, not AC.
- ``LIF`` / ``ConnectedLIF``: neuron updates (other operations) and the output
  firing rate; ``ConnectedLIF`` adds a ``.recurrence`` row with the accumulates
  it reports itself (:math:`\sum_t \mathrm{nnz}(s[t-1]) \cdot F`), work done
  inside its own kernel that no dispatch-level counter can see.
- ``LayerNorm``, ``ReLU``, bias adds and each ``SpikingLayer``'s scale and residual
  adds (a ``.residual`` row): other operations (``constants.OTHER_OPS``).

Positions: with ``padding="real"`` only positions within each sample's length
count (the masks come from the batch's lengths); with ``padding="all"`` every
position counts, as the dense implementation computes them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable

import torch
from torch import nn

from ..attention import MHSGSA
from ..layers import SpikingLayer
from ..neurons import LIF, ConnectedLIF
from . import memory
from .constants import OTHER_OPS

PADDING = ("real", "all")
_FREE = (nn.Identity, nn.Dropout, nn.Flatten)  # modules that do no arithmetic at inference


@dataclass
class LayerCount:
    """Counts of one row, summed over every sample counted.

    Attributes:
        name: dotted module name (functional rows get a suffix: ``.scores``, ``.recurrence``...).
        module: class of the module the row comes from.
        operation: what is computed (``linear``, ``Q K^T``, ``LIF update``...).
        operands: ``spike x weight``, ``real x weight``, ``real x real``, ``real`` or ``real -> spike``.
        dense: multiply-accumulates a dense implementation does for this row (synaptic rows only).
        ac, mac, other: accumulates, multiply-accumulates, other elementary operations.
        spikes_in, elements_in: input spikes and input elements (rows with spike input).
        spikes_out, elements_out: output spikes and neuron steps (neuron rows).
        memory: the row's tally in the memory-aware estimate.
    """

    name: str
    module: str
    operation: str
    operands: str
    dense: int = 0
    ac: int = 0
    mac: int = 0
    other: int = 0
    spikes_in: int = 0
    elements_in: int = 0
    spikes_out: int = 0
    elements_out: int = 0
    memory: memory.MemoryTally = field(default_factory=memory.MemoryTally)

    def add(self, other: "LayerCount") -> None:
        for key in ("dense", "ac", "mac", "other", "spikes_in", "elements_in", "spikes_out", "elements_out"):
            setattr(self, key, getattr(self, key) + getattr(other, key))
        self.memory.add(other.memory)

    @property
    def input_firing_rate(self) -> float | None:
        return self.spikes_in / self.elements_in if self.elements_in else None

    @property
    def output_firing_rate(self) -> float | None:
        return self.spikes_out / self.elements_out if self.elements_out else None


def is_spike(x: torch.Tensor) -> bool:
    """Whether every element of ``x`` is 0 or 1 (SpikingJelly's test for a spike tensor)."""
    return x.dtype == torch.bool or bool((x.eq(0) | x.eq(1)).all())


def _nnz(x: torch.Tensor) -> int:
    return int(torch.count_nonzero(x))


class LayerCounter:
    """Context manager that records per-layer counts of every forward run inside it.

    >>> net = nn.Sequential(LIF(), nn.Linear(4, 3, bias=False))
    >>> with LayerCounter(net) as counter:
    ...     _ = net(torch.full((5, 2, 4), 2.0))      # every neuron fires at every step
    >>> counter.rows["1"].ac                        # 5 steps x 2 samples x 4 spikes x 3 outputs
    120
    >>> counter.rows["1"].ac == counter.rows["1"].dense
    True

    Args:
        model: the network; each hooked module's row is named by its dotted name in it.
        padding: ``"real"`` counts only the positions that ``masks`` mark valid;
            ``"all"`` counts every position.
    """

    def __init__(self, model: nn.Module, padding: str = "real"):
        if padding not in PADDING:
            raise ValueError(f"padding must be one of {PADDING}, got {padding!r}.")
        self.model = model
        self.padding = padding
        self.rows: dict[str, LayerCount] = {}
        self.not_counted: dict[str, str] = {}
        self.samples = 0
        self._masks: dict[str, torch.Tensor | None] = {}
        self._batch = 1
        self._handles: list[Any] = []

    # -- set-up ---------------------------------------------------------------------------------
    def set_masks(self, masks: dict[str, torch.Tensor | None], batch: int) -> None:
        """Valid positions (``[L, B]`` bool) of the next forward, by module-name prefix, and its batch size."""
        self._masks = dict(masks) if self.padding == "real" else {}
        self._batch = int(batch)
        self.samples += int(batch)

    def __enter__(self) -> "LayerCounter":
        covered: set[nn.Module] = set()
        for name, module in self.model.named_modules():
            if module in covered:
                continue
            handler = self._handler(module)
            if handler is not None:
                self._handles.append(module.register_forward_hook(self._hook(name, handler), with_kwargs=True))
                if isinstance(module, (LIF, ConnectedLIF, nn.Linear, nn.Conv1d, nn.LayerNorm, nn.ReLU)):
                    covered.update(m for m in module.modules() if m is not module)
            elif not any(module.children()) and not isinstance(module, _FREE):
                self.not_counted[name] = type(module).__name__
        return self

    def __exit__(self, *exc: Any) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles.clear()

    def _handler(self, module: nn.Module):
        for kind, handler in (
            (ConnectedLIF, self._connected),
            (LIF, self._lif),
            (MHSGSA, self._attention),
            (SpikingLayer, self._layer),
            (nn.Conv1d, self._conv1d),
            (nn.Linear, self._linear),
            (nn.LayerNorm, self._layernorm),
            (nn.ReLU, self._relu),
        ):
            if isinstance(module, kind):
                return handler
        return None

    def _hook(self, name: str, handler):
        def hook(module, args, kwargs, output):
            x = args[0] if args else next(v for v in kwargs.values() if torch.is_tensor(v))
            with torch.no_grad():
                for row in handler(name, module, x.detach(), output):
                    self._record(row)

        return hook

    def _record(self, row: LayerCount) -> None:
        if row.name in self.rows:
            self.rows[row.name].add(row)
        else:
            self.rows[row.name] = row

    # -- positions ------------------------------------------------------------------------------
    @property
    def batch(self) -> int:
        """Samples in the forward being counted."""
        return self._batch

    def _mask(self, name: str, length: int, batch: int) -> torch.Tensor | None:
        """The ``[L, B]`` valid mask that applies to module ``name``, if any (and if its shape fits)."""
        best = None
        for prefix, mask in self._masks.items():
            if (name == prefix or name.startswith(prefix + ".")) and (best is None or len(prefix) > len(best[0])):
                best = (prefix, mask)
        if best is None or best[1] is None:
            return None
        mask = best[1]
        return mask if tuple(mask.shape) == (length, batch) else None

    def _time_major(self, name: str, x: torch.Tensor) -> tuple[torch.Tensor, int, torch.Tensor | None]:
        """``x`` ``[L, B, F]`` at valid positions as ``[n, F]``, the number ``n``, and the mask."""
        mask = self._mask(name, x.shape[0], x.shape[1]) if x.dim() == 3 else None
        if mask is None:
            flat = x.reshape(-1, x.shape[-1])
            return flat, flat.shape[0], None
        return x[mask], int(mask.sum()), mask

    # -- handlers: each returns the rows of one module call -------------------------------------
    def _linear(self, name: str, module: nn.Linear, x: torch.Tensor, out: torch.Tensor) -> list[LayerCount]:
        valid, n, _ = self._time_major(name, x)
        n_in, n_out = module.in_features, module.out_features
        dense = n * n_in * n_out
        bias = n * n_out if module.bias is not None else 0
        params = sum(p.numel() for p in module.parameters(recurse=False))
        per_sample_out = out.numel() / self.batch
        row = LayerCount(name, "Linear", "linear", "", dense=dense, other=bias * OTHER_OPS["bias"])
        if is_spike(x):
            row.operands = "spike x weight"
            row.spikes_in, row.elements_in = _nnz(valid), valid.numel()
            row.ac = row.spikes_in * n_out
            row.memory = memory.spike_synapses(active=row.spikes_in, fan_out=n_out, bias_outputs=bias, params=params,
                                               output_capacity=per_sample_out)
        else:
            row.operands = "real x weight"
            row.mac = dense
            row.memory = memory.dense_synapses(macs=dense, inputs=n * n_in, outputs=n * n_out, bias_outputs=bias,
                                               params=params, input_capacity=x.numel() / self.batch,
                                               output_capacity=per_sample_out)
        return [row]

    def _conv1d(self, name: str, module: nn.Conv1d, x: torch.Tensor, out: torch.Tensor) -> list[LayerCount]:
        batch, c_out, length = out.shape
        mask = self._mask(name, length, batch)
        positions = batch * length if mask is None else int(mask.sum())
        kernel = module.kernel_size[0]
        per_position = c_out * (module.in_channels // module.groups) * kernel
        macs = positions * per_position
        bias = positions * c_out if module.bias is not None else 0
        params = sum(p.numel() for p in module.parameters(recurse=False))
        inputs = x.numel() if mask is None else positions * module.in_channels
        row = LayerCount(name, "Conv1d", "conv1d", "real x weight", dense=macs, mac=macs,
                         other=bias * OTHER_OPS["bias"])
        row.memory = memory.dense_synapses(
            macs=macs, inputs=inputs, outputs=positions * c_out, bias_outputs=bias, params=params,
            input_capacity=x.numel() / batch, output_capacity=out.numel() / batch,
            input_reads=macs, extra_addr=batch * c_out * kernel,  # each input is read once per weight it meets
        )
        return [row]

    def _layernorm(self, name: str, module: nn.LayerNorm, x: torch.Tensor, out: torch.Tensor) -> list[LayerCount]:
        valid, _, _ = self._time_major(name, x)
        elements = valid.numel()
        ops = elements * OTHER_OPS["layernorm"]
        row = LayerCount(name, "LayerNorm", "layernorm", "real", other=ops)
        params = sum(p.numel() for p in module.parameters(recurse=False))
        row.memory = memory.elementwise(ops=ops, elements=elements, capacity=x.numel() / self.batch, params=params,
                                        param_reads=2 * elements if params else 0)
        return [row]

    def _relu(self, name: str, module: nn.ReLU, x: torch.Tensor, out: torch.Tensor) -> list[LayerCount]:
        valid, _, _ = self._time_major(name, x)
        ops = valid.numel() * OTHER_OPS["relu"]
        row = LayerCount(name, "ReLU", "relu", "real", other=ops)
        row.memory = memory.elementwise(ops=ops, elements=valid.numel(), capacity=x.numel() / self.batch)
        return [row]

    def _neuron_row(self, name: str, module: nn.Module, operation: str,
                    out: torch.Tensor) -> tuple[LayerCount, torch.Tensor | None]:
        spikes, _, mask = self._time_major(name, out)
        row = LayerCount(name, type(module).__name__, operation, "real -> spike")
        row.spikes_out, row.elements_out = _nnz(spikes), spikes.numel()
        row.other = row.elements_out * OTHER_OPS["neuron"]
        row.memory = memory.neuron_steps(steps=row.elements_out, spikes=row.spikes_out, features=out.shape[-1])
        return row, mask

    def _lif(self, name: str, module: LIF, x: torch.Tensor, out: torch.Tensor) -> list[LayerCount]:
        return [self._neuron_row(name, module, "LIF update", out)[0]]

    def _connected(self, name: str, module: ConnectedLIF, x: torch.Tensor, out: torch.Tensor) -> list[LayerCount]:
        row, mask = self._neuron_row(name, module, "connected LIF update", out)
        spikes = out.detach()
        features = module.features
        if mask is None:
            # Spikes at t-1 feed F neurons at t; without padding the neuron's own report must agree
            # (with padding="all" the neuron, which counts valid positions only, reports fewer).
            feeding = _nnz(spikes[:-1])
            steps = max(spikes.shape[0] - 1, 0) * spikes.shape[1]
            accumulates = feeding * features if module.strength > 0 else 0  # strength 0: no synapses
            if self.padding == "real" and accumulates != module.recurrent_accumulates:
                raise RuntimeError(f"{name}: the neuron reports {module.recurrent_accumulates} recurrent "
                                   f"accumulates, its spikes give {accumulates}.")
        else:
            # Real positions only, in order: each sample's last real position feeds nothing.
            per_sample = (spikes * mask.unsqueeze(-1)).sum(dim=(0, 2))
            last = (mask.long() * torch.arange(1, mask.shape[0] + 1, device=mask.device).unsqueeze(1)).argmax(dim=0)
            at_last = spikes[last, torch.arange(mask.shape[1], device=mask.device)].sum(dim=-1)
            feeding = int((per_sample - at_last).sum())
            steps = int((mask.sum(dim=0) - 1).clamp_min(0).sum())
            accumulates = feeding * features if module.strength > 0 else 0  # strength 0: no synapses
        recurrence = LayerCount(f"{name}.recurrence", "ConnectedLIF", "omega recurrence", "spike x weight",
                                dense=steps * features * features, ac=accumulates,
                                spikes_in=feeding, elements_in=steps * features)
        recurrence.memory = memory.spike_synapses(active=feeding, fan_out=features, bias_outputs=0,
                                                  params=features * features, output_capacity=features)
        return [row, recurrence]

    def _attention(self, name: str, module: MHSGSA, x: torch.Tensor, out: Any) -> list[LayerCount]:
        length, batch, dim = x.shape
        mask = self._mask(name, length, batch)
        if mask is None:
            lengths = torch.full((batch,), length)
        else:
            lengths = mask.sum(dim=0)
        pairs = int((lengths.long() ** 2).sum())  # query-key pairs per head, summed over samples
        positions = int(lengths.sum())
        heads, head_dim = module.heads, module.head_dim
        macs = pairs * heads * head_dim
        scores = LayerCount(f"{name}.scores", "MHSGSA", "Q K^T", "real x real", dense=macs, mac=macs,
                            other=positions * dim * OTHER_OPS["q_scale"])
        scores.memory = memory.dense_synapses(macs=macs, inputs=positions * dim, outputs=pairs * heads, bias_outputs=0,
                                              params=length * head_dim, input_capacity=length * dim,
                                              output_capacity=heads * length * length)
        scores.memory.add(memory.elementwise(ops=scores.other, elements=positions * dim, capacity=length * dim))
        soft_ops = pairs * heads * OTHER_OPS["softmax"]
        softmax = LayerCount(f"{name}.softmax", "MHSGSA", "softmax", "real", other=soft_ops)
        softmax.memory = memory.elementwise(ops=soft_ops, elements=pairs * heads, capacity=heads * length * length)
        mix = LayerCount(f"{name}.mix", "MHSGSA", "softmax x V", "real x real", dense=macs, mac=macs)
        mix.memory = memory.dense_synapses(macs=macs, inputs=pairs * heads, outputs=positions * dim, bias_outputs=0,
                                           params=length * head_dim, input_capacity=heads * length * length,
                                           output_capacity=length * dim)
        return [scores, softmax, mix]

    def _layer(self, name: str, module: SpikingLayer, x: torch.Tensor, out: torch.Tensor) -> list[LayerCount]:
        valid, _, _ = self._time_major(name, x)
        ops = valid.numel() * OTHER_OPS["residual"]
        row = LayerCount(f"{name}.residual", "SpikingLayer", "scale1 & residual adds", "real", other=ops)
        row.memory = memory.elementwise(ops=ops, elements=valid.numel(), capacity=x.numel() / self.batch)
        return [row]


def count_forward(model: nn.Module, inputs: Any, *, batch: int = 1, padding: str = "all",
                  masks: dict | None = None) -> LayerCounter:
    """Counts of one forward of ``model`` on ``inputs`` (a tensor, a tuple of positional
    arguments or a dict of keyword arguments), in eval mode and without gradients.

    ``batch`` is the number of samples in ``inputs`` (buffer sizes of the
    memory-aware estimate are per sample); ``masks`` as in :meth:`LayerCounter.set_masks`.
    """
    counter = LayerCounter(model, padding)
    counter.set_masks(masks or {}, batch)
    was_training = model.training
    model.eval()
    try:
        with counter, torch.no_grad():
            if isinstance(inputs, dict):
                model(**inputs)
            elif isinstance(inputs, (tuple, list)):
                model(*inputs)
            else:
                model(inputs)
    finally:
        model.train(was_training)
    return counter


def sgmt_inputs(model: nn.Module, batch: dict[str, Any]) -> tuple[dict[str, Any], dict[str, torch.Tensor | None]]:
    """Keyword inputs of an SGMT model from a data batch, and the valid masks of its modules by name prefix."""
    from ..model import _valid_mask

    param = next(model.parameters())
    modalities = model.config.modalities
    inputs: dict[str, Any] = {}
    masks: dict[str, torch.Tensor | None] = {}
    joint = []
    for m in modalities:
        x = batch[m].to(param.device, param.dtype)
        lengths = batch.get(f"{m}_lengths")
        inputs[m] = x
        inputs[f"{m}_lengths"] = None if lengths is None else lengths.to(param.device)
        valid = _valid_mask(lengths, x.shape[1], x.shape[0], x.device)
        masks[f"projections.{m}"] = masks[f"single_modal.{m}"] = valid
        joint.append(valid if valid is not None else torch.ones(x.shape[1], x.shape[0], dtype=torch.bool, device=x.device))
    # The model packs each sample's valid positions to the front of the joined sequence.
    lengths = torch.cat(joint, dim=0).sum(dim=0)
    masks["fusion"] = torch.arange(len(torch.cat(joint, dim=0)), device=lengths.device).unsqueeze(1) < lengths.unsqueeze(0)
    return inputs, masks


def count_batches(model: nn.Module, batches: Iterable[dict[str, Any]], padding: str = "real") -> LayerCounter:
    """Counts of an SGMT model summed over data batches (dicts as ``MSASplit.loader`` yields)."""
    counter = LayerCounter(model, padding)
    was_training = model.training
    model.eval()
    try:
        with counter, torch.no_grad():
            for batch in batches:
                inputs, masks = sgmt_inputs(model, batch)
                counter.set_masks(masks, inputs[model.config.modalities[0]].shape[0])
                model(**inputs)
    finally:
        model.train(was_training)
    return counter
