"""The model registry: one decorator, one dict, the single list of models.

Entries are registered by the builder functions in the top-level ``zoo/``
package (importable as :mod:`snn_msa.zoo`). The CLI's ``--model`` choices, the
docs table and the tests all come from :func:`list_models`.
"""

from __future__ import annotations

import difflib
import fnmatch
import importlib
import inspect
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from torch import nn

from .profiles import get_profile
from .recipe import Recipe


MODALITIES = ("text", "audio", "vision")


@dataclass(frozen=True)
class PaperRow:
    """One published row of the SGMT paper's tables that an entry belongs to.

    Attributes:
        table: where it is printed, e.g. ``"Table 1"``.
        dataset: the profile it was measured on (``simsv2`` for Tables 1 and 3, ``mosei`` for Table 2).
        row: the row's label as printed (``"TFN"``, ``"SGMT"``).
        results: the published numbers with MMSA metric keys, as fractions.
    """

    table: str
    dataset: str
    row: str
    results: Mapping[str, float]

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"table": self.table, "dataset": self.dataset, "row": self.row, "results": dict(self.results)}


@dataclass(frozen=True)
class ModelCard:
    """A zoo entry's card: what the zoo table shows for it, for any kind of model.

    Attributes:
        summary: one line on what the entry is.
        modalities: the modalities the model reads (a subset of text, audio, vision, in that order).
        spiking: whether the model has spiking neurons.
        paper: the paper the entry is written from (its own source, not the SGMT paper's row).
        paper_rows: the rows of the SGMT paper's tables the entry belongs to, with the published numbers.
        recipe: the default training recipe.
        dataset_recipes: recipes that replace ``recipe`` on a data set (MMSA tunes per data set).
        recipe_source: where the recipe's numbers come from.
        twin: the registered non-spiking twin of a spiking entry (same architecture, neurons
            replaced by the identity): the ANN side of its energy comparison. ``None`` for a
            non-spiking entry.
        notes: how the entry differs from its paper (e.g. features instead of BERT fine-tuning).
    """

    summary: str
    modalities: tuple[str, ...] = MODALITIES
    spiking: bool = False
    paper: str = ""
    paper_rows: tuple[PaperRow, ...] = ()
    recipe: Recipe = field(default_factory=Recipe)
    dataset_recipes: Mapping[str, Recipe] = field(default_factory=dict)
    recipe_source: str = ""
    twin: str | None = None
    notes: str = ""

    def __post_init__(self) -> None:
        mods = tuple(self.modalities)
        if not mods or len(set(mods)) != len(mods) or any(m not in MODALITIES for m in mods):
            raise ValueError(f"card modalities must be distinct names of {MODALITIES}, got {mods!r}.")
        object.__setattr__(self, "modalities", tuple(m for m in MODALITIES if m in mods))
        object.__setattr__(self, "paper_rows", tuple(self.paper_rows))
        if self.spiking and not self.twin:
            raise ValueError(f"the spiking entry {self.summary!r} must name its non-spiking twin on its card.")
        if not self.spiking and self.twin:
            raise ValueError(f"only a spiking entry has a twin; {self.summary!r} is not spiking.")
        bad = [k for k, r in self.dataset_recipes.items() if not isinstance(r, Recipe)]
        if not isinstance(self.recipe, Recipe) or bad:
            raise ValueError("a card's recipes must be Recipe objects (snn_msa.recipe.Recipe).")

    @property
    def paper_results(self) -> dict[str, dict[str, float]]:
        """The published numbers by data set, ``{dataset: {metric: value}}`` (the first row per data set)."""
        results: dict[str, dict[str, float]] = {}
        for row in self.paper_rows:
            results.setdefault(row.dataset, dict(row.results))
        return results

    @property
    def paper_table(self) -> str:
        """Where the entry's rows are printed, e.g. ``"Table 1 (simsv2), Table 2 (mosei)"`` (``"-"`` if nowhere)."""
        seen = dict.fromkeys(f"{r.table} ({r.dataset})" for r in self.paper_rows)
        return ", ".join(seen) or "-"

    def recipe_for(self, profile: str | None) -> Recipe:
        """The recipe on the ``profile`` data set: its own where the card has one, else ``recipe``."""
        return self.dataset_recipes.get(profile or "", self.recipe)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form (what ``snn-msa models --json`` prints, beside the name and size)."""
        return {
            "summary": self.summary,
            "modalities": list(self.modalities),
            "spiking": self.spiking,
            "twin": self.twin,
            "paper": self.paper,
            "paper_table": self.paper_table,
            "paper_rows": [r.as_dict() for r in self.paper_rows],
            "paper_results": self.paper_results,
            "recipe": self.recipe.as_dict(),
            "dataset_recipes": {k: r.as_dict() for k, r in self.dataset_recipes.items()},
            "recipe_source": self.recipe_source,
            "notes": self.notes,
        }


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


def resolve_feature_dims(profile: str | None, feature_dims) -> tuple[int, int, int]:
    """Input dims from ``feature_dims`` if given, else from the ``profile`` (default sims)."""
    if feature_dims is not None:
        dims = tuple(int(d) for d in feature_dims)
        if len(dims) != 3:
            raise ValueError(f"feature_dims must be (text, audio, vision), got {feature_dims!r}.")
        return dims
    return get_profile(profile or "sims").feature_dims


def create_model(name: str, dataset: str | None = None, feature_dims=None, **overrides) -> nn.Module:
    """Build the registered model ``name``.

    ``dataset`` names a profile (sims, simsv2, mosi, mosei) that sets the input
    dims (and, for an entry tuned per data set, its hyperparameters);
    ``feature_dims=(text, audio, vision)`` overrides the dims. Keyword
    ``overrides`` replace the entry's defaults; ``None`` values are dropped so
    CLI options can be passed straight through. The model keeps
    ``model.zoo_name`` and ``model.zoo_overrides`` so a checkpoint can rebuild it.

    >>> model = create_model("sgmt-tav", dataset="mosi", d_model=32, heads=2)
    >>> model.config.feature_dims, model.config.d_model
    ((768, 5, 20), 32)
    """
    entry = get_entry(name)
    profile = get_profile(dataset).name if dataset else None
    dims = resolve_feature_dims(profile, feature_dims)
    overrides = {k: v for k, v in overrides.items() if v is not None}
    # A builder that tunes per data set (MMSA's baselines) takes the profile name too, as ``profile``.
    tuned = {"profile": profile} if "profile" in inspect.signature(entry.builder).parameters else {}
    try:
        model = entry.builder(feature_dims=dims, **tuned, **overrides)
    except TypeError as error:
        raise ValueError(f"bad option for model {name!r}: {error}") from None
    model.zoo_name = name
    model.zoo_overrides = dict(overrides)
    return model


ZOO_TABLE_PROFILE = "sims"  # the profile whose input dims the zoo table's sizes and recipes are given for


def parameter_count(name: str, profile: str = ZOO_TABLE_PROFILE) -> int:
    """Trainable and fixed parameters of entry ``name`` built with its defaults for the ``profile`` data set."""
    return sum(p.numel() for p in create_model(name, dataset=profile).parameters())


def model_cards(pattern: str | None = None, profile: str = ZOO_TABLE_PROFILE) -> list[dict[str, Any]]:
    """One JSON-ready dict per registered entry: its name, its card and its size on the ``profile`` data set."""
    return [
        {"name": name, **get_card(name).as_dict(), "dataset": profile, "parameters": parameter_count(name, profile),
         "recipe_on_dataset": get_card(name).recipe_for(profile).as_dict()}
        for name in list_models(pattern)
    ]


def zoo_table(cards: list[dict[str, Any]]) -> str:
    """The zoo table of docs/model.md (``snn-msa models --markdown``), from the cards alone."""
    lines = [
        "| model | what it is | modalities | spiking | twin | parameters (CH-SIMS) | recipe (CH-SIMS) | paper rows |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for card in cards:
        recipe = Recipe(**card["recipe_on_dataset"]).describe()
        twin = f"`{card['twin']}`" if card["twin"] else "-"
        lines.append(
            f"| `{card['name']}` | {card['summary']} | {'+'.join(m[0].upper() for m in card['modalities'])} "
            f"| {'yes' if card['spiking'] else 'no'} | {twin} | {card['parameters']:,} | {recipe} | {card['paper_table']} |"
        )
    return "\n".join(lines)
