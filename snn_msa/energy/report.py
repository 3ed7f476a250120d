"""``energy_report``: per-layer operations and energy of a spiking model and its twin, as one dict.

The dict is what ``snn-msa energy --json`` prints; the text table and the plot
are drawn from it. Its keys are listed in ``REPORT_KEYS``, ``LAYER_KEYS`` and
``TOTAL_KEYS`` and documented in docs/energy.md.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any

import numpy as np
import torch
from torch import nn

from . import memory
from .constants import E_AC_PJ, E_MAC_PJ, FIFO_CAPACITY, OTHER_OPS, WORD_BYTES, energy_45nm_pj
from spikingjelly.activation_based.neuron import BaseNode

from ..data import MSADataset
from ..data.validate import SPLITS
from ..neurons import LIF, ConnectedLIF
from .counting import PADDING, LayerCount, count_batches

SCHEMA = "snn-msa-energy/1"
REPORT_KEYS = ("schema", "model", "twin", "models", "data", "layers", "totals", "memory_aware", "constants",
               "uncounted", "assumptions", "warnings")
LAYER_KEYS = ("name", "model", "module", "stage", "modality", "operation", "operands", "input_firing_rate",
              "output_firing_rate", "dense", "ac", "mac", "other", "energy_pj", "share", "memory_aware_pj")
TOTAL_KEYS = ("ac", "mac", "other", "dense", "energy_pj", "firing_rate", "other_pj_if_mac")
MEMORY_KEYS = ("energy_pj", "ops_pj", "addressing_pj", "memory_pj")
UNCOUNTED_KEYS = ("model", "name", "operation", "calls")
DEFAULT_BATCH = 32


class EnergyError(Exception):
    """An expected failure of the energy report (unknown model, no twin, bad option); the message says what to do."""


# -- the two models ------------------------------------------------------------------------------

def _twin_of(model: nn.Module, name: str, dims: tuple[int, int, int],
             overrides: dict[str, Any]) -> tuple[nn.Module | None, str | None]:
    """The non-spiking twin of ``model`` (entry ``name``): its card's twin with the same overrides,
    the same config with ``spiking=False`` for entries whose card names none, else ``(None, None)``."""
    from ..registry import create_model, get_card

    twin_name = get_card(name).twin
    kept = {k: v for k, v in overrides.items() if k != "spiking"}
    if twin_name is not None:
        twin = create_model(twin_name, feature_dims=dims, **kept)
        return twin, twin_name
    config = getattr(model, "config", None)
    if config is None or not dataclasses.is_dataclass(config) or not hasattr(config, "spiking"):
        return None, None
    twin = type(model)(dataclasses.replace(config, spiking=False))
    return twin, f"{name} (spiking=False)"


def _spiking_partner(name: str) -> str | None:
    """The spiking entry whose card names ``name`` as its twin (None if none does)."""
    from ..registry import get_card, list_models

    for other in list_models():
        if get_card(other).twin == name:
            return other
    return None


NEURONS = (LIF, ConnectedLIF, BaseNode)


def _is_spiking(model: nn.Module) -> bool:
    """The config's ``spiking`` setting where it has one, else whether any spiking neuron is in the model."""
    config = getattr(model, "config", None)
    if hasattr(config, "spiking"):
        return bool(config.spiking)
    return any(isinstance(m, NEURONS) for m in model.modules())


UNTRAINED_TWIN = "untrained (random initialisation), since its counts are dense and do not depend on its weights"


def _load_models(model_name, checkpoint, overrides, dims_for, seed):
    """({side: (model, name, weights note)} for "snn" and/or "ann", checkpoint dict or None, dims).

    A model with a partner (a spiking entry and its twin) gives both sides; one
    without (a conventional baseline, say) gives its own side alone."""
    from ..registry import UnknownModelError, create_model

    if checkpoint is not None:
        from ..training.checkpoint import load_checkpoint, load_weights, rebuild_model

        path = os.fspath(checkpoint)
        ckpt = load_checkpoint(path)
        spec = ckpt["model"]
        if model_name is not None and model_name != spec["name"]:
            raise EnergyError(f"--model {model_name} but the checkpoint {path} holds {spec['name']!r}; leave --model out "
                              "or give the matching checkpoint.")
        model = rebuild_model(spec, path)
        load_weights(model, ckpt["state_dict"], path)
        name, dims = spec["name"], tuple(spec["feature_dims"])
        overrides = dict(spec.get("config") or spec.get("overrides") or {})
        overrides.pop("feature_dims", None)
        weights = f"trained weights from {path}"
    else:
        if model_name is None:
            raise EnergyError("give a model (--model NAME) or a checkpoint (--checkpoint PATH).")
        dims = dims_for()
        torch.manual_seed(seed)
        try:
            model = create_model(model_name, feature_dims=dims, **overrides)
        except UnknownModelError as error:
            raise EnergyError(f"{error} See 'snn-msa models'.") from None
        except ValueError as error:
            raise EnergyError(str(error)) from None
        name, ckpt = model_name, None
        overrides = dict(model.zoo_overrides)
        weights = f"random initialisation (torch seed {seed}; no --checkpoint): a trained model fires differently"
    if not _is_spiking(model):
        # A twin was asked for: compare it with the spiking entry it is the twin of.
        partner = _spiking_partner(name)
        sides = {"ann": (model, name, weights)}
        if partner is not None:
            torch.manual_seed(seed)
            snn = create_model(partner, feature_dims=dims, **{k: v for k, v in overrides.items() if k != "spiking"})
            note = f"untrained (random initialisation, torch seed {seed}): {name} is its non-spiking twin"
            sides = {"snn": (snn, partner, note), **sides}
        return sides, ckpt, dims
    sides = {"snn": (model, name, weights)}
    ann, ann_name = _twin_of(model, name, dims, overrides)
    if ann is not None:
        sides["ann"] = (ann, ann_name, UNTRAINED_TWIN)
    return sides, ckpt, dims


def _batches(split, samples: int, batch_size: int):
    for start in range(0, samples, batch_size):
        yield split.batch(np.arange(start, min(start + batch_size, samples)))


# -- the report ----------------------------------------------------------------------------------

def _row(count: LayerCount, model: str, samples: int) -> dict[str, Any]:
    """One ``layers`` entry: ``count`` per sample, with its stage, modality and 45 nm energy."""
    per = lambda v: v / samples  # noqa: E731
    rate = lambda r: None if r is None else round(r, 6)  # noqa: E731
    return {
        "name": count.name,
        "model": model,
        "module": count.module,
        "stage": count.stage,
        "modality": count.modality,
        "operation": count.operation,
        "operands": count.operands,
        "input_firing_rate": rate(count.input_firing_rate),
        "output_firing_rate": rate(count.output_firing_rate),
        "dense": per(count.dense),
        "ac": per(count.ac),
        "mac": per(count.mac),
        "other": per(count.other),
        "energy_pj": energy_45nm_pj(per(count.ac), per(count.mac)),
        "share": 0.0,
        "memory_aware_pj": per(count.memory.energy()["energy_pj"]),
    }


def _totals(rows: list[dict[str, Any]], counts: list[LayerCount]) -> dict[str, Any]:
    """A model's totals per sample (the rows' sums); also fills in each row's share of the energy."""
    totals = {key: sum(r[key] for r in rows) for key in ("ac", "mac", "other", "dense")}
    totals["energy_pj"] = energy_45nm_pj(totals["ac"], totals["mac"])
    spikes = sum(c.spikes_out for c in counts)
    steps = sum(c.elements_out for c in counts)
    totals["firing_rate"] = round(spikes / steps, 6) if steps else None
    totals["other_pj_if_mac"] = totals["other"] * E_MAC_PJ
    for row in rows:
        row["share"] = row["energy_pj"] / totals["energy_pj"] if totals["energy_pj"] else 0.0
    return {key: totals[key] for key in TOTAL_KEYS}


def _ratio(totals: dict[str, Any]) -> float | None:
    """SNN energy over ANN energy, None when a side is missing or the ANN costs nothing."""
    if "snn" not in totals or "ann" not in totals or not totals["ann"]["energy_pj"]:
        return None
    return totals["snn"]["energy_pj"] / totals["ann"]["energy_pj"]


def _memory_totals(counts: list[LayerCount], samples: int) -> dict[str, float]:
    """The memory-aware estimate of a whole model, per sample."""
    tally = memory.MemoryTally()
    for c in counts:
        tally.add(c.memory)
    return {key: value / samples for key, value in tally.energy().items()}


def energy_report(
    model_name: str | None = None,
    checkpoint: str | os.PathLike | None = None,
    data: str | os.PathLike | MSADataset | None = None,
    profile: str | None = None,
    samples: int = 64,
    *,
    split: str = "test",
    batch_size: int | None = None,
    padding: str = "real",
    overrides: dict[str, Any] | None = None,
    seed: int = 0,
    allow_nonfinite: bool = False,
) -> dict[str, Any]:
    """Per-layer operations and energy of the spiking model ``model_name`` and its non-spiking twin.

    Both run, in eval mode on the CPU, on the first ``samples`` samples of
    ``split`` (built-in synthetic data unless ``data`` names a file); every
    count is per sample, averaged over those samples.

    Args:
        model_name: zoo entry (see ``snn-msa models``); may be left out with ``checkpoint``.
        checkpoint: a ``best.pt`` from ``snn-msa train``: the model is rebuilt
            from it with its trained weights and counted beside its partner, which
            is untrained (the twin of a spiking checkpoint: its counts are dense and
            do not depend on weights; the spiking entry of a twin's checkpoint).
        data: an MMSA feature file, or an ``MSADataset`` already loaded; default:
            built-in synthetic data (with a checkpoint: the data the run trained on).
        profile: the data's profile (sims, simsv2, mosi, mosei); default: the
            file's, the checkpoint's, or sims for the built-in data.
        samples: how many samples to average over (at most the split's size).
        split: ``train``, ``valid`` or ``test``.
        batch_size: samples per forward (default: the checkpoint's, else 32). Each
            sample's scale2 is its own, so the counts do not depend on it.
        padding: ``"real"`` counts only positions within each sample's length;
            ``"all"`` counts every position, as the dense implementation computes them.
        overrides: model overrides (``d_model``, ``heads``, ...) for both models.
        seed: torch seed of the spiking model's initial weights (without a checkpoint).
        allow_nonfinite: accept data with more than the documented share of
            non-finite cells (``snn_msa.data.nonfinite``).

    Returns:
        A dict with the keys ``REPORT_KEYS``; see docs/energy.md.
    """
    from ..profiles import get_profile
    from ..training.data_source import load_inspection_data

    if padding not in PADDING:
        raise EnergyError(f"padding must be one of {', '.join(PADDING)}, got {padding!r}.")
    if int(samples) < 1:
        raise EnergyError(f"samples must be at least 1, got {samples}.")
    if batch_size is not None and int(batch_size) < 1:
        raise EnergyError(f"batch size must be at least 1, got {batch_size}.")
    if split not in SPLITS:
        raise EnergyError(f"split must be train, valid or test, got {split!r}.")
    if profile is not None:
        try:
            profile = get_profile(profile).name
        except ValueError as error:
            raise EnergyError(str(error)) from None
    overrides = {k: v for k, v in (overrides or {}).items() if v is not None}

    loaded: dict[str, Any] = {}

    def dims_for() -> tuple[int, int, int]:
        loaded["ds"] = load_inspection_data(None, data, profile, allow_nonfinite=allow_nonfinite)
        return tuple(loaded["ds"].feature_dims)

    sides, ckpt, dims = _load_models(model_name, checkpoint, overrides, dims_for, seed)
    ds = loaded.get("ds") or load_inspection_data(None if ckpt is None else ckpt["data"], data, profile,
                                                  allow_nonfinite=allow_nonfinite)
    if tuple(ds.feature_dims) != tuple(dims):
        raise EnergyError(f"the model takes feature dims {tuple(dims)} (text, audio, vision) but {ds.source} has "
                          f"{tuple(ds.feature_dims)}; give matching data with --data or --dataset.")
    if batch_size is None:
        batch_size = int(ckpt["recipe"]["batch_size"]) if ckpt is not None and "recipe" in ckpt else DEFAULT_BATCH
    the_split = ds.splits[split]
    used = min(int(samples), len(the_split))
    if used < 1:
        raise EnergyError(f"the {split} split of {ds.source} is empty.")
    batch_size = min(int(batch_size), used)

    counters = {}
    for side, (model, _, _) in sides.items():
        model.to("cpu")
        counters[side] = count_batches(model, _batches(the_split, used, batch_size), padding)

    layers, totals, memory_aware = [], {}, {}
    for side, counter in counters.items():
        counts = list(counter.rows.values())
        rows = [_row(c, side, used) for c in counts]
        totals[side] = _totals(rows, counts)
        memory_aware[side] = _memory_totals(counts, used)
        layers.extend(rows)
    totals["ratio"] = _ratio(totals)
    memory_aware["ratio"] = _ratio(memory_aware)
    memory_aware["method"] = ("Lemaire et al. 2022 (arXiv:2210.13107) as SpikingJelly 2.x implements it, per layer, "
                              "extended to attention, LayerNorm, softmax, residual adds and the recurrence")

    uncounted = [{"model": side, "name": name, "operation": what, "calls": calls}
                 for side, counter in counters.items() for (name, what), calls in counter.uncounted.items()]
    warnings = [f"{u['model']}: {u['operation']} in {u['name'] or 'the model'} is not counted ({u['calls']} calls): "
                "no rule for it (docs/energy.md says how to add one)" for u in uncounted]
    warnings += [f"{side}: {sides[side][1]} gives no valid positions (no energy_scopes method), so padded "
                 "positions are counted too" for side, counter in counters.items()
                 if not counter.scoped and padding == "real"]
    report = {
        "schema": SCHEMA,
        "model": sides["snn"][1] if "snn" in sides else None,
        "twin": sides["ann"][1] if "ann" in sides else None,
        "models": {side: {"name": name, "config": _config(model), "weights": note}
                   for side, (model, name, note) in sides.items()},
        "data": {
            "source": ds.source,
            "synthetic": bool(getattr(ds, "is_synthetic", False)),
            "dataset": ds.profile.name,
            "split": split,
            "samples": used,
            "requested_samples": int(samples),
            "batch_size": batch_size,
            "padding": padding,
        },
        "layers": layers,
        "totals": totals,
        "memory_aware": memory_aware,
        "constants": {
            "e_ac_pj": E_AC_PJ,
            "e_mac_pj": E_MAC_PJ,
            "other_ops": dict(OTHER_OPS),
            "memory_aware": {
                "e_add_pj": memory.COST.e_add_pj,
                "e_mul_pj": memory.COST.e_mul_pj,
                "sram_pj_per_byte": [list(p) for p in memory.COST.memory_breakpoints],
                "word_bytes": WORD_BYTES,
                "fifo_capacity": FIFO_CAPACITY,
            },
        },
        "uncounted": uncounted,
        "warnings": warnings,
    }
    report["assumptions"] = assumptions(report)
    return {key: report[key] for key in REPORT_KEYS}


def _config(model: nn.Module) -> dict[str, Any] | None:
    config = getattr(model, "config", None)
    if config is None or not dataclasses.is_dataclass(config):
        return None
    from ..training.results import json_safe

    return json_safe(dataclasses.asdict(config))


def assumptions(report: dict[str, Any]) -> list[str]:
    """Every assumption behind ``report``'s numbers, one sentence each (printed under the table)."""
    from .format import energy

    d, t, c = report["data"], report["totals"], report["constants"]
    m = c["memory_aware"]
    data = f"{d['source']}" + (" (SYNTHETIC: the numbers say nothing about real data)" if d["synthetic"] else "")
    padding = (
        "Only valid positions count, padding excluded: a (sample, step) beyond a sample's length is an artifact of "
        "batching that a deployed model does not compute. Each model says which positions are valid in each of its "
        "parts (its energy_scopes method); attention counts the query-key pairs of valid queries and valid keys "
        "(n_q x n_k per head and sample, over the joint sequence in SGMT's fusion layers); neuron states carried "
        "across padded positions are those the dense model computed."
        if d["padding"] == "real" else
        "Every position counts, padded ones included, as the dense implementation computes them (L^2 query-key "
        "pairs per head)."
    )
    asked = "" if d["samples"] == d["requested_samples"] else f" ({d['requested_samples']} asked; the split has no more)"
    o = c["other_ops"]
    priced = " and ".join(f"{energy(t[side]['other_pj_if_mac'])} ({side.upper()})" for side in ("snn", "ann") if side in t)
    models = [f"Spiking model {report['models']['snn']['name']}: {report['models']['snn']['weights']}."
              if "snn" in report["models"] else "No spiking model: the entry has no spiking partner.",
              f"Non-spiking model {report['models']['ann']['name']}: {report['models']['ann']['weights']}."
              if "ann" in report["models"] else "No non-spiking twin: the entry's card names none."]
    return [
        f"45 nm estimate: E = {c['e_ac_pj']} pJ x AC + {c['e_mac_pj']} pJ x MAC (Horowitz 2014, 45 nm CMOS, 32-bit "
        "floating point; compute only, no data movement).",
        f"Memory-aware estimate: {report['memory_aware']['method']}: 32-bit integer add {m['e_add_pj']} pJ and "
        f"multiply {m['e_mul_pj']} pJ, 32-bit SRAM words priced by buffer size (piecewise linear through "
        f"{', '.join(f'{int(b)} B: {p:g} pJ/B' for b, p in m['sram_pj_per_byte'])}), buffers sized per sample, "
        f"spike FIFOs of {m['fifo_capacity']} words; bias adds count there, and other operations are priced as one "
        "multiply-add each.",
        "Counted by rules keyed by module type and torch function (docs/energy.md), the same for every model: a "
        "product with a spike (binary) operand = accumulates (AC = SOP = nnz(spikes) x fan-out; spike x spike: the "
        "coincidences), e.g. the linears after LIF neurons and the connected neuron's omega recurrence (sum_t "
        "nnz(s[t-1]) x F, reported by the neuron itself because its kernel is invisible to dispatch-level counters).",
        "A product of real operands = multiply-accumulates (MAC): convolutions, linears and recurrent gates on real "
        "input, Q K^T and softmax x V (Q and K are spikes times weights, so real-valued), matmul/bmm/einsum products "
        "(outer-product and low-rank fusion), the heads, and every product of a non-spiking model.",
        f"Other operations are listed per row but not priced in the 45 nm estimate: per element LayerNorm "
        f"{o['layernorm']}, BatchNorm {o['batchnorm']}, softmax {o['softmax']}, bias add {o['bias']}, activation "
        f"{o['activation']}, elementwise "
        f"step {o['elementwise']} (per output element; reductions per input element); per hidden unit and step LSTM "
        f"{o['lstm_cell']}, GRU {o['gru_cell']}, RNN {o['rnn_cell']}; neuron update {o['neuron']} per neuron and "
        f"step. Priced at E_MAC they would add {priced} per sample.",
        "Bias adds are not accumulates here (they are other operations), so a non-spiking model has no AC.",
        padding,
        f"Counts are per sample, averaged over {d['samples']} samples{asked}: the first of the {d['split']} split, in "
        f"batches of {d['batch_size']}.",
        f"Data: {data}.",
        *models,
        "Not counted: data movement (45 nm estimate), functions that only move or view data (reshape, cat, "
        "indexing...), dropout (inactive in evaluation), and any backward pass (inference only, float32 on the CPU); "
        "any other operation without a rule is listed under uncounted and in the warnings below.",
    ] + [f"Warning: {w}." for w in report["warnings"]]
