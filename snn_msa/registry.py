"""The model registry: one decorator, one dict, the single list of models.

Entries are registered by the builder functions in the top-level ``zoo/``
package (importable as :mod:`snn_msa.zoo`). The CLI's ``--model`` choices, the
docs table and the tests all come from :func:`list_models`.
"""

from __future__ import annotations

import difflib
import fnmatch
import importlib
from dataclasses import dataclass, field
from typing import Callable

from torch import nn

from .profiles import get_profile


@dataclass(frozen=True)
class ModelCard:
    """A zoo entry's card: what it is, its defaults, and what the paper reports for it.

    Attributes:
        summary: one line on what the entry is.
        paper_table: which table of the paper it reproduces (or "" if none).
        paper_results: the paper's published numbers, ``{dataset: {metric: value}}``
            with MMSA metric keys (percentages as fractions, as MMSA reports them).
        train: the entry's default training recipe (lr, batch_size, max_epochs, patience, ...).
        twin: name of the entry's non-spiking twin, for energy comparisons.
    """

    summary: str
    paper_table: str = ""
    paper_results: dict = field(default_factory=dict)
    train: dict = field(default_factory=dict)
    twin: str | None = None


@dataclass(frozen=True)
class ModelEntry:
    name: str
    builder: Callable[..., nn.Module]
    card: ModelCard


_REGISTRY: dict[str, ModelEntry] = {}


class UnknownModelError(ValueError):
    """Raised for a model name that is not in the registry."""


def register_model(fn: Callable | None = None, *, card: ModelCard | None = None):
    """Register a builder under its function name with ``_`` turned into ``-``.

    Use as ``@register_model`` or ``@register_model(card=ModelCard(...))``.
    """

    def decorate(builder: Callable) -> Callable:
        name = builder.__name__.replace("_", "-")
        existing = _REGISTRY.get(name)
        # The same source file may be imported twice (as snn_msa.zoo and, by doctest
        # collection, as zoo); only a different definition is a clash.
        if existing is not None and existing.builder.__code__.co_filename != builder.__code__.co_filename:
            raise ValueError(f"a model named {name!r} is already registered by {existing.builder.__module__}.")
        summary = (builder.__doc__ or name).strip().splitlines()[0]
        _REGISTRY[name] = ModelEntry(name, builder, card or ModelCard(summary=summary))
        return builder

    return decorate(fn) if fn is not None else decorate


def _entries() -> dict[str, ModelEntry]:
    importlib.import_module("snn_msa.zoo")  # registers the built-in entries
    return _REGISTRY


def list_models(pattern: str | None = None) -> list[str]:
    """Sorted names of the registered models, optionally filtered by a glob ``pattern``.

    >>> list_models("sgmt-tav*")
    ['sgmt-tav', 'sgmt-tav-ann']
    """
    names = sorted(_entries())
    return [n for n in names if pattern is None or fnmatch.fnmatch(n, pattern)]


def get_entry(name: str) -> ModelEntry:
    """The registry entry called ``name``, or an error that lists the known names."""
    entries = _entries()
    if name not in entries:
        close = difflib.get_close_matches(str(name), list(entries), n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise UnknownModelError(f"unknown model {name!r}.{hint} Known models: {', '.join(sorted(entries))}.")
    return entries[name]


def get_card(name: str) -> ModelCard:
    """The card of the model called ``name``."""
    return get_entry(name).card


def resolve_feature_dims(dataset: str | None, feature_dims) -> tuple[int, int, int]:
    """Input dims from ``feature_dims`` if given, else from the ``dataset`` profile (default sims)."""
    if feature_dims is not None:
        dims = tuple(int(d) for d in feature_dims)
        if len(dims) != 3:
            raise ValueError(f"feature_dims must be (text, audio, vision), got {feature_dims!r}.")
        return dims
    return get_profile(dataset or "sims").feature_dims


def create_model(name: str, dataset: str | None = None, feature_dims=None, **overrides) -> nn.Module:
    """Build the registered model ``name``.

    ``dataset`` names a profile (sims, simsv2, mosi, mosei) that sets the input
    dims; ``feature_dims=(text, audio, vision)`` overrides it. Keyword
    ``overrides`` replace the entry's defaults; ``None`` values are dropped so
    CLI options can be passed straight through. The model keeps
    ``model.zoo_name`` and ``model.zoo_overrides`` so a checkpoint can rebuild it.

    >>> model = create_model("sgmt-tav", dataset="mosi", d_model=32, heads=2)
    >>> model.config.feature_dims, model.config.d_model
    ((768, 5, 20), 32)
    """
    entry = get_entry(name)
    dims = resolve_feature_dims(dataset, feature_dims)
    overrides = {k: v for k, v in overrides.items() if v is not None}
    try:
        model = entry.builder(feature_dims=dims, **overrides)
    except TypeError as error:
        raise ValueError(f"bad option for model {name!r}: {error}") from None
    model.zoo_name = name
    model.zoo_overrides = dict(overrides)
    return model
