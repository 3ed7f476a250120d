r"""Per-layer operation counts of any model's forward passes, by rules keyed by module type and torch function.

:class:`LayerCounter` hooks every module (to know which one is running) and
watches every torch function call (a ``TorchFunctionMode``). A module with a
rule in ``rules.MODULE_RULES`` (``Linear``, ``Conv1d``, ``LSTM``, ``LSTMCell``,
``GRU``, ``LayerNorm``, ``MultiheadAttention``, neurons...) is counted whole by
its rule when it returns; a function (``F.scaled_dot_product_attention``,
``matmul``, ``bmm``, ``einsum``, ``softmax``, elementwise steps...) is counted
by ``rules.FUNCTION_RULES`` only where no enclosing module has a rule, so
nothing counts twice. What has no rule is listed in :attr:`LayerCounter.uncounted`.

The model supplies what the counter must not guess through its optional
``energy_scopes`` method (see :mod:`snn_msa.energy.positions`): the stage and
modality of each part and its valid positions. With ``padding="real"`` only
valid positions count; with ``padding="all"`` every position counts, as the
dense implementation computes them. The counting rules are in docs/energy.md.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Iterable

import torch
from torch import nn
from torch.overrides import TorchFunctionMode

from . import neuron_rules  # noqa: F401  (registers the neuron rules)
from .positions import Scope, find_scope, model_scopes
from .rows import LayerCount, is_spike, nnz
from .rules import FUNCTION_RULES, MODULE_RULES, Call, Rule, function_name, generic_function_rule, rule_for_module

__all__ = ["PADDING", "LayerCount", "LayerCounter", "count_batches", "count_forward", "is_spike", "model_inputs", "nnz"]

PADDING = ("real", "all")
MODALITIES = ("text", "audio", "vision")


class _WatchFunctions(TorchFunctionMode):
    """Hands every torch function call to the counter after it ran."""

    def __init__(self, counter: "LayerCounter"):
        super().__init__()
        self.counter = counter

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        self.counter._function_called(func, args, kwargs, out)
        return out


class LayerCounter:
    """Context manager that records per-layer counts of every forward run inside it.

    >>> from snn_msa.neurons import LIF
    >>> net = nn.Sequential(LIF(), nn.Linear(4, 3, bias=False))
    >>> with LayerCounter(net) as counter:
    ...     _ = net(torch.full((5, 2, 4), 2.0))      # every neuron fires at every step
    >>> counter.rows["1"].ac                        # 5 steps x 2 samples x 4 spikes x 3 outputs
    120
    >>> counter.rows["1"].ac == counter.rows["1"].dense
    True

    Args:
        model: the network; each row is named by the dotted name of its module in it.
        padding: ``"real"`` counts only the positions the scopes mark valid; ``"all"`` every position.
        module_rules, function_rules: rules of this count, over the model's (``energy_rules``) and the
            built-in tables.
    """

    def __init__(self, model: nn.Module, padding: str = "real", *, module_rules: dict[type, Rule] | None = None,
                 function_rules: dict[Any, Rule] | None = None):
        if padding not in PADDING:
            raise ValueError(f"padding must be one of {PADDING}, got {padding!r}.")
        own = model.energy_rules() if hasattr(model, "energy_rules") else {}
        self.module_rules = {**MODULE_RULES, **own.get("modules", {}), **(module_rules or {})}
        self.function_rules = {**FUNCTION_RULES, **own.get("functions", {}), **(function_rules or {})}
        self.model = model
        self.padding = padding
        self.rows: dict[str, LayerCount] = {}
        self.uncounted: dict[tuple[str, str], int] = {}
        """Calls that no rule counts, by (module name, operation)."""
        self.samples = 0
        self.scoped = True
        """False once a forward ran without scopes from the model (every position counted)."""
        self._scopes: list[Scope] = []
        self._batch = 1
        self._stack: list[tuple[str, Rule | None]] = []
        self._covered = 0
        self._busy = False
        self._handles: list[Any] = []
        self._mode: _WatchFunctions | None = None

    # -- set-up ---------------------------------------------------------------------------------
    def set_scopes(self, scopes: list[Scope] | None, batch: int) -> None:
        """Scopes of the next forward (None: the model gives none) and its batch size."""
        self.scoped = self.scoped and scopes is not None
        scopes = list(scopes or [])
        if self.padding == "all":
            scopes = [dataclasses.replace(s, valid=None) for s in scopes]
        self._scopes = scopes
        self._batch = int(batch)
        self.samples += int(batch)

    @property
    def batch(self) -> int:
        """Samples in the forward being counted."""
        return self._batch

    def __enter__(self) -> "LayerCounter":
        for name, module in self.model.named_modules():
            rule = rule_for_module(module, self.module_rules)
            self._handles.append(module.register_forward_pre_hook(self._enter_module(name, rule), with_kwargs=True))
            self._handles.append(module.register_forward_hook(self._leave_module(name, rule), with_kwargs=True,
                                                              always_call=True))
        self._mode = _WatchFunctions(self)
        self._mode.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._mode is not None:
            self._mode.__exit__(*exc)
            self._mode = None
        for handle in self._handles:
            handle.remove()
        self._handles.clear()

    # -- hooks ----------------------------------------------------------------------------------
    def _enter_module(self, name: str, rule: Rule | None):
        def hook(module, args, kwargs):
            if self._busy:
                return None
            self._stack.append((name, rule))
            self._covered += rule is not None
            return None

        return hook

    def _leave_module(self, name: str, rule: Rule | None):
        def hook(module, args, kwargs, output):
            if self._busy or not self._stack or self._stack[-1][0] != name:
                return None
            self._stack.pop()
            self._covered -= rule is not None
            if rule is not None and self._covered == 0:
                self._apply(rule, Call(name, module, args, kwargs, output, self._scope(name), self._batch,
                                 self.padding == "all"),
                            type(module).__name__)
            return None

        return hook

    def _function_called(self, func: Any, args: tuple, kwargs: dict, out: Any) -> None:
        if self._busy or self._covered or not self._stack:  # outside the model, or inside a counted module
            return
        rule = self.function_rules.get(func) or generic_function_rule(func)
        name = self._stack[-1][0] if self._stack else ""
        if rule is None:
            self._note_uncounted(name, function_name(func))
            return
        self._apply(rule, Call(name, func, tuple(args), dict(kwargs), out, self._scope(name), self._batch,
                         self.padding == "all"),
                    function_name(func))

    def _apply(self, rule: Rule, call: Call, what: str) -> None:
        self._busy = True
        try:
            with torch.no_grad():
                rows = rule(call)
        except NotImplementedError as error:
            self._note_uncounted(call.name, f"{what} ({error})")
            return
        finally:
            self._busy = False
        for row in rows:
            if call.scope is not None:
                row.stage, row.modality = call.scope.stage, call.scope.modality
            if row.name in self.rows:
                self.rows[row.name].add(row)
            else:
                self.rows[row.name] = row

    def _note_uncounted(self, name: str, what: str) -> None:
        key = (name, what)
        self.uncounted[key] = self.uncounted.get(key, 0) + 1

    def _scope(self, name: str) -> Scope | None:
        return find_scope(self._scopes, name)


def _run(model: nn.Module, inputs: Any) -> Any:
    if isinstance(inputs, dict):
        return model(**inputs)
    if isinstance(inputs, (tuple, list)):
        return model(*inputs)
    return model(inputs)


def count_forward(model: nn.Module, inputs: Any, *, batch: int = 1, padding: str = "all",
                  scopes: list[Scope] | None = None, **rules: Any) -> LayerCounter:
    """Counts of one forward of ``model`` on ``inputs`` (a tensor, a tuple of positional
    arguments or a dict of keyword arguments), in eval mode and without gradients.

    ``batch`` is the number of samples in ``inputs`` (buffer sizes of the memory-aware
    estimate are per sample); ``scopes`` as :meth:`LayerCounter.set_scopes` (default: the
    model's own ``energy_scopes`` for dict inputs, else none); ``rules`` go to :class:`LayerCounter`.
    """
    counter = LayerCounter(model, padding, **rules)
    if scopes is None and isinstance(inputs, dict):
        scopes = model_scopes(model, inputs)
    counter.set_scopes(scopes, batch)
    was_training = model.training
    model.eval()
    try:
        with counter, torch.no_grad():
            _run(model, inputs)
    finally:
        model.train(was_training)
    return counter


def model_inputs(model: nn.Module, batch: dict[str, Any]) -> dict[str, Any]:
    """Keyword inputs of the model contract, ``forward(text, audio, vision, *_lengths)``, from a data batch."""
    param = next(model.parameters(), None)
    inputs: dict[str, Any] = {}
    for m in MODALITIES:
        x = batch.get(m)
        if x is not None and param is not None:
            x = x.to(param.device, param.dtype)
        lengths = batch.get(f"{m}_lengths")
        inputs[m] = x
        inputs[f"{m}_lengths"] = None if lengths is None or param is None else lengths.to(param.device)
    return inputs


def count_batches(model: nn.Module, batches: Iterable[dict[str, Any]], padding: str = "real",
                  **rules: Any) -> LayerCounter:
    """Counts of a zoo model summed over data batches (dicts as ``MSASplit.loader`` yields).

    The valid positions come from the model's ``energy_scopes``; a model without it is
    counted at every position (``counter.scoped`` is then False).
    """
    counter = LayerCounter(model, padding, **rules)
    was_training = model.training
    model.eval()
    try:
        with counter, torch.no_grad():
            for batch in batches:
                inputs = model_inputs(model, batch)
                size = next(x.shape[0] for m, x in inputs.items() if m in MODALITIES and x is not None)
                counter.set_scopes(model_scopes(model, inputs), size)
                model(**inputs)
    finally:
        model.train(was_training)
    return counter
