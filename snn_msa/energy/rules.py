r"""The counting rules: one function per module type or torch function, in two tables.

A rule takes a :class:`Call` (the module or function, its arguments and output,
the scope it runs in) and returns the :class:`~snn_msa.energy.rows.LayerCount`
rows of that call. ``MODULE_RULES`` is keyed by module class (a subclass
inherits its parent's rule), ``FUNCTION_RULES`` by torch function (as
``__torch_function__`` sees it: ``torch.bmm``, ``torch.Tensor.__matmul__``...).
Extend them without editing this file::

    @module_rule(MyFusion)                       # for everyone, from any module
    def my_fusion(call: Call) -> list[LayerCount]: ...

or per count (``LayerCounter(model, module_rules={...}, function_rules={...})``),
or per model (a model method ``energy_rules()`` returning
``{"modules": {...}, "functions": {...}}``). The rule of a module covers
everything inside it; a function is counted only where no enclosing module has
a rule. Functions that move or view data (``FREE_FUNCTIONS``) cost nothing;
elementwise steps and reductions (``ELEMENTWISE_FUNCTIONS``) are "other"
operations, one per output (reductions: input) element; any other function is
reported as **uncounted**, never dropped.

Operand rules (DESIGN section 7):

- spike x weight (a binary input): :math:`AC = \mathrm{nnz}(x) \cdot \text{fan-out}`;
- real x weight and real x real: :math:`MAC = n \cdot n_{in} \cdot n_{out}`;
- spike x spike (both binary): AC = the coincidences, :math:`\sum_k \mathrm{nnz}(a_{:k})\,\mathrm{nnz}(b_{k:})`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable

import torch
import torch.nn.functional as F
from torch import nn

from . import memory
from .constants import OTHER_OPS
from .positions import Scope
from .rows import LayerCount, is_spike, nnz


@dataclass
class Call:
    """One call that a rule counts.

    Attributes:
        name: dotted name of the module (a function call: of the innermost module it runs in).
        target: the module, or the torch function.
        args, kwargs, output: the call's arguments and result.
        scope: the model's scope for ``name`` (stage, modality, valid positions), if any.
        batch: samples in the forward being counted (buffers of the memory estimate are per sample).
    """

    name: str
    target: Any
    args: tuple
    kwargs: dict
    output: Any
    scope: Scope | None
    batch: int
    every_position: bool = False

    def arg(self, name: str, index: int, default: Any = None) -> Any:
        """Argument ``name`` (positional ``index``) of the call."""
        if name in self.kwargs:
            return self.kwargs[name]
        return self.args[index] if len(self.args) > index else default

    def mask(self, x: torch.Tensor, layout: str | None = None) -> torch.Tensor | None:
        """The valid mask for the two leading axes of ``x`` (see :meth:`Scope.mask_for`), or None."""
        return None if self.scope is None else self.scope.mask_for(x, layout)

    def positions(self, x: torch.Tensor, layout: str | None = None) -> torch.Tensor:
        """``x`` at valid positions, as rows ``[n, F]`` (every row of ``x`` if no mask applies)."""
        mask = self.mask(x, layout) if x.dim() >= 3 else None
        return x.reshape(-1, x.shape[-1]) if mask is None else x[mask].reshape(-1, x.shape[-1])

    def elements(self, x: torch.Tensor, layout: str | None = None) -> int:
        """Elements of ``x`` at valid positions (see :meth:`Scope.valid_elements`; all of ``x`` if none match)."""
        valid = None if self.scope is None or x.dim() < 3 else self.scope.valid_elements(x, layout)
        return x.numel() if valid is None else valid

    def row(self, suffix: str, kind: str, operation: str, operands: str, **counts: Any) -> LayerCount:
        """A row named ``name + suffix``."""
        return LayerCount(join(self.name, suffix), kind, operation, operands, **counts)


Rule = Callable[[Call], list[LayerCount]]
MODULE_RULES: dict[type, Rule] = {}
"""Rules by module class; the most specific class in a module's MRO wins."""
FUNCTION_RULES: dict[Any, Rule] = {}
"""Rules by torch function."""


def join(name: str, suffix: str) -> str:
    """``name`` with a row ``suffix`` (``.scores``); the root module's rows are the suffix alone."""
    if not suffix:
        return name
    return f"{name}{suffix}" if name else suffix.lstrip(".")


def module_rule(*types: type) -> Callable[[Rule], Rule]:
    """Register the decorated function as the rule of modules of ``types``."""

    def register(rule: Rule) -> Rule:
        for kind in types:
            MODULE_RULES[kind] = rule
        return rule

    return register


def function_rule(*functions: Any) -> Callable[[Rule], Rule]:
    """Register the decorated function as the rule of the torch ``functions``."""

    def register(rule: Rule) -> Rule:
        for function in functions:
            FUNCTION_RULES[function] = rule
        return rule

    return register


def rule_for_module(module: nn.Module, table: dict[type, Rule]) -> Rule | None:
    """The rule of the most specific class of ``module`` in ``table``."""
    for kind in type(module).__mro__:
        if kind in table:
            return table[kind]
    return None


def function_name(func: Any) -> str:
    """A readable name of a torch function (``matmul``, ``Tensor.__add__``)."""
    name = getattr(func, "__name__", None) or repr(func)
    owner = getattr(func, "__qualname__", name).split(".")[0]
    return f"Tensor.{name}" if owner in ("Tensor", "TensorBase", "_TensorBase") else name


def _params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters(recurse=False)) + sum(
        b.numel() for b in module.buffers(recurse=False))


# -- weight layers ---------------------------------------------------------------------------------

def linear_rows(call: Call, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None,
                out: torch.Tensor, kind: str = "Linear") -> list[LayerCount]:
    """``y = x W^T + b`` at valid positions: AC on spike input, MAC on real input, bias adds as other."""
    valid = call.positions(x)
    n = valid.shape[0]
    n_out, n_in = weight.shape
    dense = n * n_in * n_out
    bias_adds = n * n_out if bias is not None else 0
    params = weight.numel() + (bias.numel() if bias is not None else 0)
    per_sample_out = out.numel() / call.batch
    row = call.row("", kind, "linear", "", dense=dense, other=bias_adds * OTHER_OPS["bias"])
    if is_spike(x):
        row.operands = "spike x weight"
        row.spikes_in, row.elements_in = nnz(valid), valid.numel()
        row.ac = row.spikes_in * n_out
        row.memory = memory.spike_synapses(active=row.spikes_in, fan_out=n_out, bias_outputs=bias_adds, params=params,
                                           output_capacity=per_sample_out)
    else:
        row.operands = "real x weight"
        row.mac = dense
        row.memory = memory.dense_synapses(macs=dense, inputs=n * n_in, outputs=n * n_out, bias_outputs=bias_adds,
                                           params=params, input_capacity=x.numel() / call.batch,
                                           output_capacity=per_sample_out)
    return [row]


@module_rule(nn.Linear)
def linear(call: Call) -> list[LayerCount]:
    m = call.target
    return linear_rows(call, call.args[0], m.weight, m.bias, call.output)


@function_rule(F.linear)
def functional_linear(call: Call) -> list[LayerCount]:
    rows = linear_rows(call, call.arg("input", 0), call.arg("weight", 1), call.arg("bias", 2), call.output,
                       kind="F.linear")
    rows[0].name = join(call.name, ".linear")
    return rows


@module_rule(nn.Conv1d)
def conv1d(call: Call) -> list[LayerCount]:
    """``[B, C_in, L] -> [B, C_out, L']``: MAC per valid output position; on spike input, AC = the
    (input spike, weight) pairs the convolution meets, computed exactly as a convolution of the spikes with ones."""
    m, x, out = call.target, call.args[0], call.output
    batch, c_out, length = out.shape
    mask = call.mask(out.transpose(1, 2), "batch-first")  # output positions [B, L']
    positions = batch * length if mask is None else int(mask.sum())
    kernel = m.kernel_size[0]
    per_position = c_out * (m.in_channels // m.groups) * kernel
    dense = positions * per_position
    bias_adds = positions * c_out if m.bias is not None else 0
    params = _params(m)
    inputs = x.numel() if mask is None else positions * m.in_channels
    row = call.row("", "Conv1d", "conv1d", "real x weight", dense=dense, other=bias_adds * OTHER_OPS["bias"])
    if is_spike(x):
        ones = torch.ones(c_out, m.in_channels // m.groups, kernel, dtype=x.dtype, device=x.device)
        pairs = F.conv1d((x != 0).to(x.dtype), ones, None, m.stride, m.padding, m.dilation, m.groups)
        if mask is not None:
            pairs = pairs * mask.unsqueeze(1).to(pairs.dtype)
        row.operands, row.ac = "spike x weight", int(pairs.sum())
        row.spikes_in, row.elements_in = nnz(x), x.numel()
        row.memory = memory.spike_synapses(active=row.spikes_in, fan_out=per_position // max(m.in_channels // m.groups, 1),
                                           bias_outputs=bias_adds, params=params, output_capacity=out.numel() / batch)
        return [row]
    row.mac = dense
    row.memory = memory.dense_synapses(
        macs=dense, inputs=inputs, outputs=positions * c_out, bias_outputs=bias_adds, params=params,
        input_capacity=x.numel() / batch, output_capacity=out.numel() / batch,
        input_reads=dense, extra_addr=batch * c_out * kernel,  # each input is read once per weight it meets
    )
    return [row]


# -- recurrent layers ------------------------------------------------------------------------------

GATES = {"LSTM": 4, "GRU": 3, "RNN_TANH": 1, "RNN_RELU": 1}
"""Gate blocks per hidden unit: each is a product with the input and one with the hidden state."""
CELL_OTHER = {"LSTM": "lstm_cell", "GRU": "gru_cell", "RNN_TANH": "rnn_cell", "RNN_RELU": "rnn_cell"}


def _recurrent_rows(call: Call, mode: str, steps: int, x_rows: torch.Tensor, input_size: int, hidden: int,
                    layers: int, directions: int, bias: bool, params: int, capacity: float) -> list[LayerCount]:
    """Rows of ``steps`` valid (sample, step) positions of a (multi-layer) recurrent net.

    Per step, layer and direction: ``G H (n_in + H)`` products (input and hidden),
    ``2 G H`` bias adds (PyTorch keeps two biases) and the cell's elementwise
    update (``OTHER_OPS``). The first layer's input product is AC on spike input.
    """
    gates = GATES[mode] * hidden
    first_in = steps * directions * gates * input_size
    rest_in = steps * directions * gates * hidden * directions * (layers - 1)
    recurrent = steps * directions * gates * hidden * layers
    bias_adds = steps * directions * layers * 2 * gates if bias else 0
    cell_ops = steps * directions * layers * hidden * OTHER_OPS[CELL_OTHER[mode]]
    dense = first_in + rest_in + recurrent
    row = call.row("", type(call.target).__name__, f"{mode.split('_')[0]} gates", "real x weight", dense=dense,
                   other=bias_adds * OTHER_OPS["bias"] + cell_ops)
    if is_spike(x_rows):
        row.operands = "spike x weight (input), real x weight (hidden)"
        row.spikes_in, row.elements_in = nnz(x_rows), x_rows.numel()
        row.ac = row.spikes_in * directions * gates
        row.mac = rest_in + recurrent
    else:
        row.mac = dense
    outputs = steps * directions * hidden * layers
    row.memory = memory.dense_synapses(macs=row.mac, inputs=steps * input_size, outputs=outputs, bias_outputs=bias_adds,
                                       params=params, input_capacity=capacity, output_capacity=capacity)
    if row.ac:
        row.memory.add(memory.spike_synapses(active=row.spikes_in, fan_out=directions * gates, bias_outputs=0,
                                             params=params, output_capacity=directions * gates))
    row.memory.add(memory.elementwise(ops=cell_ops, elements=outputs, capacity=capacity))
    return [row]


@module_rule(nn.RNNBase)
def recurrent(call: Call) -> list[LayerCount]:
    """``nn.LSTM``, ``nn.GRU``, ``nn.RNN`` over a padded ``[B, L, F]`` / ``[L, B, F]`` tensor (valid steps
    only) or a ``PackedSequence`` (its steps are exactly the valid ones)."""
    m, x = call.target, call.args[0]
    if isinstance(x, nn.utils.rnn.PackedSequence):
        rows_in = x.data
        capacity = x.data.numel() / call.batch
    else:
        rows_in = call.positions(x, "batch-first" if m.batch_first else "time-major") if x.dim() == 3 else x
        capacity = x.numel() / call.batch
    if getattr(m, "proj_size", 0):
        raise NotImplementedError("LSTM with proj_size: register a rule for it (docs/energy.md).")
    return _recurrent_rows(call, m.mode, rows_in.shape[0] if rows_in.dim() > 1 else 1, rows_in, m.input_size,
                           m.hidden_size, m.num_layers, 2 if m.bidirectional else 1, m.bias, _params(m), capacity)


@module_rule(nn.RNNCellBase)
def recurrent_cell(call: Call) -> list[LayerCount]:
    """One step of ``nn.LSTMCell``, ``nn.GRUCell``, ``nn.RNNCell`` for every row of its ``[B, F]`` input
    (a cell has no time axis, so padded steps of a loop over time count too)."""
    m, x = call.target, call.args[0]
    mode = "LSTM" if isinstance(m, nn.LSTMCell) else "GRU" if isinstance(m, nn.GRUCell) else "RNN_TANH"
    rows_in = x if x.dim() == 2 else x.unsqueeze(0)
    return _recurrent_rows(call, mode, rows_in.shape[0], rows_in, m.input_size, m.hidden_size, 1, 1, m.bias,
                           _params(m), rows_in.shape[-1])


# -- normalisation, activations, free modules -----------------------------------------------------

def elementwise_row(call: Call, suffix: str, kind: str, operation: str, x: torch.Tensor, per_element: int,
                    params: int = 0, param_reads: int = 0, layout: str | None = None) -> LayerCount:
    """A row of ``per_element`` other operations on each valid element of ``x``."""
    elements = call.elements(x, layout)
    ops = elements * per_element
    row = call.row(suffix, kind, operation, "real", other=ops)
    row.memory = memory.elementwise(ops=ops, elements=elements, capacity=x.numel() / call.batch, params=params,
                                    param_reads=param_reads)
    return row


@module_rule(nn.LayerNorm)
def layernorm(call: Call) -> list[LayerCount]:
    x, params = call.args[0], _params(call.target)
    return [elementwise_row(call, "", "LayerNorm", "layernorm", x, OTHER_OPS["layernorm"], params=params,
                            param_reads=2 * call.elements(x) if params else 0)]


@function_rule(F.layer_norm)
def functional_layernorm(call: Call) -> list[LayerCount]:
    return [elementwise_row(call, ".layer_norm", "F.layer_norm", "layernorm", call.arg("input", 0),
                            OTHER_OPS["layernorm"])]


@module_rule(nn.modules.batchnorm._BatchNorm)
def batchnorm(call: Call) -> list[LayerCount]:
    """``nn.BatchNorm1d/2d/3d`` in evaluation: a folded affine per element (channels on axis 1)."""
    x = call.args[0]
    return [elementwise_row(call, "", type(call.target).__name__, "batchnorm", x, OTHER_OPS["batchnorm"],
                            params=_params(call.target), param_reads=2 * x.numel())]


@function_rule(F.batch_norm)
def functional_batchnorm(call: Call) -> list[LayerCount]:
    return [elementwise_row(call, ".batch_norm", "F.batch_norm", "batchnorm", call.arg("input", 0),
                            OTHER_OPS["batchnorm"])]


ACTIVATIONS = (nn.ReLU, nn.GELU, nn.Tanh, nn.Sigmoid, nn.LeakyReLU, nn.ELU, nn.SiLU)


@module_rule(*ACTIVATIONS)
def activation(call: Call) -> list[LayerCount]:
    kind = type(call.target).__name__
    return [elementwise_row(call, "", kind, kind.lower(), call.args[0], OTHER_OPS["activation"])]


@module_rule(nn.Softmax, nn.LogSoftmax)
def softmax_module(call: Call) -> list[LayerCount]:
    return [elementwise_row(call, "", type(call.target).__name__, "softmax", call.args[0], OTHER_OPS["softmax"])]


@function_rule(F.softmax, torch.softmax, torch.Tensor.softmax, F.log_softmax, torch.log_softmax,
               torch.Tensor.log_softmax)
def softmax(call: Call) -> list[LayerCount]:
    return [elementwise_row(call, ".softmax", "softmax", "softmax", call.args[0], OTHER_OPS["softmax"])]


@module_rule(nn.Identity, nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.AlphaDropout, nn.Flatten, nn.Unflatten)
def free_module(call: Call) -> list[LayerCount]:
    """No arithmetic at inference (dropout is inactive in evaluation)."""
    return []


# -- products of two tensors -----------------------------------------------------------------------

def _as_matrices(a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``a`` ``[..., m, k]`` and ``b`` ``[..., k, n]`` broadcast as ``torch.matmul`` does."""
    a2 = a.unsqueeze(0) if a.dim() == 1 else a
    b2 = b.unsqueeze(-1) if b.dim() == 1 else b
    batch = torch.broadcast_shapes(a2.shape[:-2], b2.shape[:-2])
    return a2.expand(*batch, *a2.shape[-2:]), b2.expand(*batch, *b2.shape[-2:])


def product_counts(a: torch.Tensor, b: torch.Tensor) -> tuple[int, int, str]:
    """``(ac, mac, operands)`` of ``a @ b``: MAC for real operands, AC for spikes (see the module docstring).

    >>> product_counts(torch.tensor([[1.0, 0.0, 1.0]]), torch.randn(3, 4))   # 2 spikes x 4 outputs
    (8, 0, 'spike x real')
    """
    a, b = _as_matrices(a, b)
    m, k, n = a.shape[-2], a.shape[-1], b.shape[-1]
    dense = math.prod(a.shape[:-2]) * m * k * n
    spike_a, spike_b = is_spike(a), is_spike(b)
    if spike_a and spike_b:
        return int(((a != 0).float() @ (b != 0).float()).sum()), 0, "spike x spike"
    if spike_a:
        return nnz(a) * n, 0, "spike x real"
    if spike_b:
        return nnz(b) * m, 0, "real x spike"
    return 0, dense, "real x real"


@function_rule(torch.matmul, torch.Tensor.matmul, torch.Tensor.__matmul__, torch.bmm, torch.Tensor.bmm, torch.mm,
               torch.Tensor.mm, torch.outer, torch.Tensor.outer, torch.ger)
def matmul(call: Call) -> list[LayerCount]:
    """A matrix product (``@``, ``bmm``, an outer product ``a.unsqueeze(2) @ b.unsqueeze(1)``, the low-rank
    factors ``x @ W_factor``) at valid positions of its left operand."""
    a, b = call.args[0], call.arg("other", 1, call.kwargs.get("mat2", call.kwargs.get("vec2")))
    if call.target in (torch.outer, torch.Tensor.outer, torch.ger):
        a, b = a.unsqueeze(-1), b.unsqueeze(0)
    mask = call.mask(a) if a.dim() >= 3 else None
    if mask is not None and (b.dim() < a.dim() or tuple(b.shape[:2]) == tuple(a.shape[:2])):
        # valid rows of the left operand, with the right operand's matching rows when it is batched too
        b = b[mask] if b.dim() == a.dim() else b
        a = a[mask]
    ac, mac, operands = product_counts(a, b)
    name = function_name(call.target).replace("Tensor.", "").strip("_")
    a2, b2 = _as_matrices(a, b)
    dense = math.prod(a2.shape[:-2]) * a2.shape[-2] * a2.shape[-1] * b2.shape[-1]
    row = call.row(f".{name}", name, "matrix product", operands, dense=dense, ac=ac, mac=mac)
    stationary = b2.shape[-2] * b2.shape[-1]  # one matrix of the right operand
    row.memory = memory.dense_synapses(macs=mac + ac, inputs=a2.numel(), outputs=dense // max(a2.shape[-1], 1),
                                       bias_outputs=0, params=stationary, input_capacity=a2.numel() / call.batch,
                                       output_capacity=dense / max(a2.shape[-1], 1) / call.batch)
    return [row]


@function_rule(torch.einsum)
def einsum(call: Call) -> list[LayerCount]:
    """``torch.einsum``: one MAC per point of the full index space (each output element times the sizes
    of the summed indices), the tensor-fusion outer products ``"bi,bj->bij"`` included; counted whole."""
    equation, operands = call.args[0], call.args[1:]
    if len(operands) == 1 and isinstance(operands[0], (list, tuple)):
        operands = tuple(operands[0])
    spec = equation.replace(" ", "").replace("...", "")
    inputs, arrow, output = spec.partition("->")
    sizes: dict[str, int] = {}
    for letters, tensor in zip(inputs.split(","), operands):
        for letter, size in zip(letters, tensor.shape[tensor.dim() - len(letters):]):
            sizes[letter] = max(sizes.get(letter, 1), size)
    if not arrow:  # implicit output: the letters that appear once
        output = "".join(sorted(c for c in sizes if inputs.count(c) == 1))
    summed = math.prod(size for letter, size in sizes.items() if letter not in output)
    macs = call.output.numel() * summed * max(len(operands) - 1, 1)
    row = call.row(".einsum", "einsum", f"einsum {equation}", "real x real", dense=macs, mac=macs)
    row.memory = memory.dense_synapses(macs=macs, inputs=sum(t.numel() for t in operands), outputs=call.output.numel(),
                                       bias_outputs=0, params=operands[-1].numel(),
                                       input_capacity=operands[0].numel() / call.batch,
                                       output_capacity=call.output.numel() / call.batch)
    return [row]


def attention_rows(call: Call, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, pairs: int, queries: int,
                   heads: int, kind: str) -> list[LayerCount]:
    """``.scores`` (Q K^T), ``.softmax`` and ``.mix`` (softmax x V) rows for ``pairs`` query-key pairs summed
    over samples and heads; ``queries`` valid query positions (over samples)."""
    e_qk, e_v = q.shape[-1], v.shape[-1]
    length, keys = q.shape[-2], k.shape[-2]
    scores = call.row(".scores", kind, "Q K^T", "real x real", dense=pairs * e_qk, mac=pairs * e_qk)
    scores.memory = memory.dense_synapses(macs=pairs * e_qk, inputs=queries * heads * e_qk, outputs=pairs,
                                          bias_outputs=0, params=keys * e_qk, input_capacity=heads * length * e_qk,
                                          output_capacity=heads * length * keys)
    soft = call.row(".softmax", kind, "softmax", "real", other=pairs * OTHER_OPS["softmax"])
    soft.memory = memory.elementwise(ops=soft.other, elements=pairs, capacity=heads * length * keys)
    mix = call.row(".mix", kind, "softmax x V", "real x real", dense=pairs * e_v, mac=pairs * e_v)
    mix.memory = memory.dense_synapses(macs=pairs * e_v, inputs=pairs, outputs=queries * heads * e_v, bias_outputs=0,
                                       params=keys * e_v, input_capacity=heads * length * keys,
                                       output_capacity=heads * length * e_v)
    return [scores, soft, mix]


@function_rule(F.scaled_dot_product_attention)
def scaled_dot_product_attention(call: Call) -> list[LayerCount]:
    """``softmax(Q K^T scale + mask) V`` on ``[B, h, L, E]``: the query-key pairs counted are those the
    boolean ``attn_mask`` (or ``is_causal``) keeps, at valid query positions of the scope (and valid
    key positions, in self-attention over the scope's sequence)."""
    q, k, v = call.arg("query", 0), call.arg("key", 1), call.arg("value", 2)
    attn_mask, causal = call.arg("attn_mask", 3), call.arg("is_causal", 5, False)
    shape = (*q.shape[:-2], q.shape[-2], k.shape[-2])
    keep = torch.ones((), dtype=torch.bool, device=q.device)
    if call.every_position:
        attn_mask, causal = None, False
    if attn_mask is not None and attn_mask.dtype == torch.bool:
        keep = keep & attn_mask
    if causal:
        keep = keep & torch.ones(shape[-2:], dtype=torch.bool, device=q.device).tril()
    valid = None if call.scope is None or q.dim() < 3 else call.scope.valid
    if valid is not None and valid.shape[0] == q.shape[0]:
        valid = valid.to(q.device)
        extra = (1,) * (q.dim() - 3)
        if valid.shape[1] == q.shape[-2]:
            keep = keep & valid.view(valid.shape[0], *extra, -1, 1)
        if valid.shape[1] == k.shape[-2] and attn_mask is None:
            keep = keep & valid.view(valid.shape[0], *extra, 1, -1)
    else:
        valid = None
    keep = keep.expand(shape)
    heads = math.prod(q.shape[1:-2]) if q.dim() > 3 else 1
    queries = int(valid.sum()) if valid is not None and valid.shape[1] == q.shape[-2] else q.shape[0] * q.shape[-2]
    return attention_rows(call, q, k, v, int(keep.sum()), queries, heads, "sdpa")


@module_rule(nn.MultiheadAttention)
def multihead_attention(call: Call) -> list[LayerCount]:
    """``nn.MultiheadAttention`` (self or cross): the Q, K, V input projections and the output
    projection (MAC per valid position), and Q K^T, softmax, softmax x V over the pairs of valid
    queries (the scope's mask) and valid keys (``key_padding_mask``, True = padding)."""
    m = call.target
    query, key, value = call.arg("query", 0), call.arg("key", 1), call.arg("value", 2)
    padding = None if call.every_position else call.arg("key_padding_mask", 3)
    layout = "batch-first" if m.batch_first else "time-major"
    if query.dim() == 2:  # unbatched [L, E]
        query, key, value = query.unsqueeze(1), key.unsqueeze(1), value.unsqueeze(1)
        layout = "time-major"
    if layout == "batch-first":
        query, key, value = query.transpose(0, 1), key.transpose(0, 1), value.transpose(0, 1)
    length, batch, dim = query.shape
    keys = key.shape[0]
    q_valid = call.mask(query, "time-major")
    q_valid = torch.ones(length, batch, dtype=torch.bool) if q_valid is None else q_valid.cpu()
    if padding is not None and padding.dtype == torch.bool:
        k_valid = ~padding.t().cpu()
    else:
        k_valid = call.mask(key, "time-major")
        k_valid = torch.ones(keys, batch, dtype=torch.bool) if k_valid is None else k_valid.cpu()
    n_q, n_k = int(q_valid.sum()), int(k_valid.sum())
    pairs = int((q_valid.sum(0) * k_valid.sum(0)).sum()) * m.num_heads
    kdim, vdim = key.shape[-1], value.shape[-1]
    proj = n_q * dim * dim + n_k * kdim * dim + n_k * vdim * dim
    out_proj = n_q * dim * dim
    bias = (n_q + 2 * n_k) * dim if m.in_proj_bias is not None else 0
    bias += n_q * dim if m.out_proj.bias is not None else 0
    projections = call.row(".projections", "MultiheadAttention", "Q, K, V and output projections", "real x weight",
                           dense=proj + out_proj, mac=proj + out_proj, other=bias * OTHER_OPS["bias"])
    projections.memory = memory.dense_synapses(macs=proj + out_proj, inputs=n_q * dim + n_k * (kdim + vdim),
                                               outputs=2 * n_q * dim + 2 * n_k * dim, bias_outputs=bias,
                                               params=_params(m) + _params(m.out_proj),
                                               input_capacity=(length + 2 * keys) * dim,
                                               output_capacity=(length + 2 * keys) * dim)
    head_dim = dim // m.num_heads
    q = query.new_empty(1, length, head_dim)
    k = key.new_empty(1, keys, head_dim)
    return [projections] + attention_rows(call, q, k, k, pairs, n_q * m.num_heads, m.num_heads, "MultiheadAttention")


# -- generic elementwise steps ---------------------------------------------------------------------

FREE_FUNCTIONS = {
    "view", "view_as", "reshape", "reshape_as", "permute", "transpose", "t", "T", "mT", "contiguous", "unsqueeze",
    "squeeze", "flatten", "unflatten", "expand", "expand_as", "cat", "concat", "concatenate", "stack", "split",
    "chunk", "unbind", "narrow", "select", "index_select", "gather", "__getitem__", "__setitem__", "size", "dim",
    "numel", "to", "cpu", "cuda", "float", "double", "half", "bool", "long", "int", "type", "type_as", "detach",
    "detach_", "clone", "__get__", "__set__", "__len__", "__iter__", "__bool__", "__index__", "__int__", "__float__",
    "__format__", "__repr__", "__hash__", "item", "tolist", "new_tensor", "new_zeros", "new_ones", "new_full",
    "new_empty", "zeros", "ones", "full", "empty", "zeros_like", "ones_like", "full_like", "empty_like", "arange",
    "as_tensor", "tensor", "requires_grad_", "dropout", "is_floating_point", "is_complex", "dim_order", "broadcast_to",
    "movedim", "flip", "roll", "masked_select", "repeat", "repeat_interleave", "tile", "split_with_sizes",
    "pad_sequence", "pack_padded_sequence", "pad_packed_sequence", "_pack_padded_sequence", "_pad_packed_sequence",
    "is_contiguous", "element_size", "stride", "storage_offset", "data_ptr", "get_device", "untyped_storage",
    "__contains__", "__reduce_ex__", "__deepcopy__", "unfold", "diagonal", "tril", "triu",
    "broadcast_tensors", "align_to", "_has_compatible_shallow_copy_type", "__array__", "numpy", "copy_",
    "pad", "sort", "argsort",  # pad or reorder data (SGMT packs each sample's valid positions to the front): index bookkeeping
}
"""Functions that move, view, build or compare-for-bookkeeping data: no arithmetic counted (by name)."""

ELEMENTWISE_FUNCTIONS = {
    "add", "__add__", "__radd__", "__iadd__", "add_", "sub", "__sub__", "__rsub__", "__isub__", "sub_", "rsub", "mul",
    "__mul__", "__rmul__", "__imul__", "mul_", "div", "__truediv__", "__rtruediv__", "__itruediv__", "div_",
    "true_divide", "neg", "__neg__", "pow", "__pow__", "__rpow__", "sqrt", "rsqrt", "exp", "log", "log1p", "abs",
    "sigmoid", "tanh", "relu", "relu_", "gelu", "silu", "elu", "leaky_relu", "clamp", "clamp_", "clamp_min",
    "clamp_max", "clip", "maximum", "minimum", "where", "masked_fill", "masked_fill_", "lt", "__lt__", "gt", "__gt__",
    "le", "__le__", "ge", "__ge__", "eq", "__eq__", "ne", "__ne__", "logical_and", "logical_or", "logical_not", "__and__", "__or__",
    "__invert__", "__xor__", "sign", "floor", "ceil", "round", "reciprocal", "square", "addcmul", "lerp", "baddbmm_",
    "cumsum", "heaviside", "nan_to_num", "fill_", "zero_", "sin", "cos", "softplus", "hardtanh",
}
"""Elementwise steps: one other operation per output element (by name)."""

REDUCTIONS = {"sum", "mean", "var", "std", "max", "min", "amax", "amin", "argmax", "argmin", "norm", "prod", "any",
              "all", "count_nonzero", "var_mean", "std_mean", "logsumexp"}
"""Reductions: one other operation per input element (by name)."""


def elementwise_rows(call: Call, name: str) -> list[LayerCount]:
    """Generic rule for ``ELEMENTWISE_FUNCTIONS`` and ``REDUCTIONS``, gathered in one ``.elementwise`` row per module."""
    tensors = [a for a in call.args if torch.is_tensor(a)]
    out = call.output if torch.is_tensor(call.output) else (call.output[0] if isinstance(call.output, tuple) and
                                                            call.output and torch.is_tensor(call.output[0]) else None)
    reference = tensors[0] if name in REDUCTIONS and tensors else out if out is not None else (tensors or [None])[0]
    if reference is None:
        return []
    return [elementwise_row(call, ".elementwise", "elementwise", "elementwise steps and reductions", reference,
                            OTHER_OPS["elementwise"])]


def generic_function_rule(func: Any) -> Rule | None:
    """The generic rule of a function without its own: free, elementwise, or None (uncounted)."""
    name = getattr(func, "__name__", "")
    if name in FREE_FUNCTIONS:
        return free_module
    if name in ELEMENTWISE_FUNCTIONS or name in REDUCTIONS:
        return lambda call: elementwise_rows(call, name)
    return None
