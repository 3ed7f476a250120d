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
from .counting import PADDING, LayerCount, count_batches

SCHEMA = "snn-msa-energy/1"
REPORT_KEYS = ("schema", "model", "twin", "models", "data", "layers", "totals", "memory_aware", "constants",
               "assumptions", "warnings")
LAYER_KEYS = ("name", "model", "module", "stage", "modality", "operation", "operands", "input_firing_rate",
              "output_firing_rate", "dense", "ac", "mac", "other", "energy_pj", "share", "memory_aware_pj")
TOTAL_KEYS = ("ac", "mac", "other", "dense", "energy_pj", "firing_rate", "other_pj_if_mac")
MEMORY_KEYS = ("energy_pj", "ops_pj", "addressing_pj", "memory_pj")
DEFAULT_BATCH = 32
STAGES = {"projections": "projection", "single_modal": "single-modal", "fusion": "fusion", "heads": "head"}
LETTERS = {"T": "text", "A": "audio", "V": "vision"}


class EnergyError(Exception):
    """An expected failure of the energy report (unknown model, no twin, bad option); the message says what to do."""


def stage_of(name: str) -> str:
    """``projection``, ``single-modal``, ``fusion`` or ``head`` from a module's dotted name ("-" otherwise).

    >>> stage_of("single_modal.audio.0.attention.query"), stage_of("heads.M.1")
    ('single-modal', 'head')
    """
    return STAGES.get(name.split(".", 1)[0], "-")


def modality_of(name: str) -> str:
    """The modality a row works on: ``text``/``audio``/``vision``, ``joint`` (fusion, joint heads) or "-".

    >>> modality_of("projections.vision"), modality_of("fusion.0.ffn"), modality_of("heads.T.1"), modality_of("heads.TAV.1")
    ('vision', 'joint', 'text', 'joint')
    """
    parts = name.split(".")
    if parts[0] in ("projections", "single_modal") and len(parts) > 1:
        return parts[1]
    if parts[0] == "fusion":
        return "joint"
    if parts[0] == "heads" and len(parts) > 1:
        return LETTERS.get(parts[1], "joint")
    return "-"


# -- the two models ------------------------------------------------------------------------------

def _twin_of(model: nn.Module, name: str, dims: tuple[int, int, int], overrides: dict[str, Any]) -> tuple[nn.Module, str]:
    """The non-spiking twin of ``model`` (entry ``name``): its card's twin with the same overrides, or
    the same config with ``spiking=False`` for entries whose card names none."""
    from ..registry import create_model, get_card

    twin_name = get_card(name).twin
    kept = {k: v for k, v in overrides.items() if k != "spiking"}
    if twin_name is not None:
        twin = create_model(twin_name, feature_dims=dims, **kept)
        return twin, twin_name
    config = getattr(model, "config", None)
    if config is None or not dataclasses.is_dataclass(config) or not hasattr(config, "spiking"):
        raise EnergyError(f"model {name!r} names no non-spiking twin on its card and has no 'spiking' setting to turn off.")
    twin = type(model)(dataclasses.replace(config, spiking=False))
    return twin, f"{name} (spiking=False)"


def _spiking_partner(name: str) -> str:
    """The spiking entry whose card names ``name`` as its twin."""
    from ..registry import get_card, list_models

    for other in list_models():
        if get_card(other).twin == name:
            return other
    raise EnergyError(f"{name!r} is a non-spiking model and no spiking entry names it as its twin; give a spiking model.")


def _is_spiking(model: nn.Module) -> bool:
    config = getattr(model, "config", None)
    return bool(getattr(config, "spiking", True))


UNTRAINED_TWIN = "untrained (random initialisation), since its counts are dense and do not depend on its weights"


def _load_models(model_name, checkpoint, overrides, dims_for, seed):
    """(snn, snn_name, ann, ann_name, {"snn": weights note, "ann": weights note}, checkpoint dict or None, dims)."""
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
        ann, ann_name = model, name
        torch.manual_seed(seed)
        snn = create_model(partner, feature_dims=dims, **{k: v for k, v in overrides.items() if k != "spiking"})
        notes = {"snn": f"untrained (random initialisation, torch seed {seed}): {name} is its non-spiking twin",
                 "ann": weights}
        return snn, partner, ann, ann_name, notes, ckpt, dims
    ann, ann_name = _twin_of(model, name, dims, overrides)
    return model, name, ann, ann_name, {"snn": weights, "ann": UNTRAINED_TWIN}, ckpt, dims


def _load_data(ckpt, data, dataset, dims):
    from ..data import load_dataset
    from ..training.data_source import SYNTHETIC_SEED

    if hasattr(data, "splits"):  # an MSADataset already loaded
        return data
    if ckpt is not None and (data is None or dataset is None):
        from ..training.data_source import load_eval_data

        ds = load_eval_data(ckpt["data"], data)
        if dataset is not None and ds.profile.name != dataset:
            raise EnergyError(f"--dataset {dataset} was given, but the checkpoint's data ({ds.source}) is "
                              f"{ds.profile.name}; leave out --dataset, or give a {dataset} file with --data.")
        return ds
    path = None if data is None else os.path.expanduser(os.fspath(data))
    return load_dataset(path, dataset, seed=SYNTHETIC_SEED)


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
        "stage": stage_of(count.name),
        "modality": modality_of(count.name),
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


def _memory_totals(counts: list[LayerCount], samples: int) -> dict[str, float]:
    """The memory-aware estimate of a whole model, per sample."""
    tally = memory.MemoryTally()
    for c in counts:
        tally.add(c.memory)
    return {key: value / samples for key, value in tally.energy().items()}


def energy_report(
    model_name: str | None = None,
    checkpoint: str | os.PathLike | None = None,
    data: Any = None,
    dataset: str | None = None,
    samples: int = 64,
    *,
    split: str = "test",
    batch_size: int | None = None,
    padding: str = "real",
    overrides: dict[str, Any] | None = None,
    seed: int = 0,
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
        dataset: dataset profile (sims, simsv2, mosi, mosei) of the data.
        samples: how many samples to average over (at most the split's size).
        split: ``train``, ``valid`` or ``test``.
        batch_size: samples per forward (default: the checkpoint's, else 32). The
            spike-generated attention scales by the batch's firing rate, so spikes
            depend on it.
        padding: ``"real"`` counts only positions within each sample's length;
            ``"all"`` counts every position, as the dense implementation computes them.
        overrides: model overrides (``d_model``, ``heads``, ...) for both models.
        seed: torch seed of the spiking model's initial weights (without a checkpoint).

    Returns:
        A dict with the keys ``REPORT_KEYS``; see docs/energy.md.
    """
    from ..profiles import get_profile

    if padding not in PADDING:
        raise EnergyError(f"padding must be one of {', '.join(PADDING)}, got {padding!r}.")
    if int(samples) < 1:
        raise EnergyError(f"samples must be at least 1, got {samples}.")
    if batch_size is not None and int(batch_size) < 1:
        raise EnergyError(f"batch size must be at least 1, got {batch_size}.")
    if split not in ("train", "valid", "test"):
        raise EnergyError(f"split must be train, valid or test, got {split!r}.")
    if dataset is not None:
        try:
            dataset = get_profile(dataset).name
        except ValueError as error:
            raise EnergyError(str(error)) from None
    overrides = {k: v for k, v in (overrides or {}).items() if v is not None}

    loaded: dict[str, Any] = {}

    def dims_for() -> tuple[int, int, int]:
        loaded["ds"] = _load_data(None, data, dataset, None)
        return tuple(loaded["ds"].feature_dims)

    snn, snn_name, ann, ann_name, weights, ckpt, dims = _load_models(model_name, checkpoint, overrides, dims_for, seed)
    ds = loaded.get("ds") or _load_data(ckpt, data, dataset, dims)
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
    for side, model in (("snn", snn), ("ann", ann)):
        model.to("cpu")
        counters[side] = count_batches(model, _batches(the_split, used, batch_size), padding)

    layers, totals, memory_aware = [], {}, {}
    for side, counter in counters.items():
        counts = list(counter.rows.values())
        rows = [_row(c, side, used) for c in counts]
        totals[side] = _totals(rows, counts)
        memory_aware[side] = _memory_totals(counts, used)
        layers.extend(rows)
    totals["ratio"] = totals["snn"]["energy_pj"] / totals["ann"]["energy_pj"] if totals["ann"]["energy_pj"] else None
    memory_aware["ratio"] = (memory_aware["snn"]["energy_pj"] / memory_aware["ann"]["energy_pj"]
                             if memory_aware["ann"]["energy_pj"] else None)
    memory_aware["method"] = ("Lemaire et al. 2022 (arXiv:2210.13107) as SpikingJelly 2.x implements it, per layer, "
                              "extended to attention, LayerNorm, softmax, residual adds and the recurrence")

    warnings = [f"{side}: {name} ({kind}) is not counted: no rule for it"
                for side, counter in counters.items() for name, kind in counter.not_counted.items()]
    report = {
        "schema": SCHEMA,
        "model": snn_name,
        "twin": ann_name,
        "models": {
            "snn": {"name": snn_name, "config": _config(snn), "weights": weights["snn"]},
            "ann": {"name": ann_name, "config": _config(ann), "weights": weights["ann"]},
        },
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
        "warnings": warnings,
    }
    report["assumptions"] = assumptions(report)
    return {key: report[key] for key in REPORT_KEYS}


def _config(model: nn.Module) -> dict[str, Any] | None:
    config = getattr(model, "config", None)
    if config is None or not dataclasses.is_dataclass(config):
        return None
    from ..training.checkpoint import plain

    return plain(dataclasses.asdict(config))


def assumptions(report: dict[str, Any]) -> list[str]:
    """Every assumption behind ``report``'s numbers, one sentence each (printed under the table)."""
    from .format import energy

    d, t, c = report["data"], report["totals"], report["constants"]
    m = c["memory_aware"]
    data = f"{d['source']}" + (" (SYNTHETIC: the numbers say nothing about real data)" if d["synthetic"] else "")
    padding = (
        "Only real positions count: frames beyond a sample's length are left out (the dense implementation computes "
        "them; a careful one would not). Q K^T and softmax x V count n_q x n_k pairs per head, over the joint fusion "
        "sequence n = the sum of the modalities' real lengths (L_joint^2 per head); neuron states carried across "
        "padded positions of the joint sequence are those the dense model computed."
        if d["padding"] == "real" else
        "Every position counts, padded ones included, as the dense implementation computes them (L^2 query-key "
        "pairs per head, L_joint^2 in the fusion layers)."
    )
    asked = "" if d["samples"] == d["requested_samples"] else f" ({d['requested_samples']} asked; the split has no more)"
    return [
        f"45 nm estimate: E = {c['e_ac_pj']} pJ x AC + {c['e_mac_pj']} pJ x MAC (Horowitz 2014, 45 nm CMOS, 32-bit "
        "floating point; compute only, no data movement).",
        f"Memory-aware estimate: {report['memory_aware']['method']}: 32-bit integer add {m['e_add_pj']} pJ and "
        f"multiply {m['e_mul_pj']} pJ, 32-bit SRAM words priced by buffer size (piecewise linear through "
        f"{', '.join(f'{int(b)} B: {p:g} pJ/B' for b, p in m['sram_pj_per_byte'])}), buffers sized per sample, "
        f"spike FIFOs of {m['fifo_capacity']} words; bias adds count there, and other operations are priced as one "
        "multiply-add each.",
        "Spike x weight = accumulates (AC = SOP = nnz(input) x fan-out): the Q, K, V and FFN linears after LIF neurons "
        "in the spiking model, and the connected neuron's omega recurrence (sum_t nnz(s[t-1]) x F, reported by the "
        "neuron itself because its kernel is invisible to dispatch-level counters).",
        "Real x real = multiply-accumulates (MAC): the Conv1d input projections, Q K^T and softmax x V (Q and K are "
        "spikes times weights, so real-valued), the heads, and every product of the twin.",
        f"Other operations are listed per row but not priced in the 45 nm estimate: per element LayerNorm "
        f"{c['other_ops']['layernorm']}, softmax {c['other_ops']['softmax']}, Q scaling {c['other_ops']['q_scale']}, "
        f"scale1 and residual adds {c['other_ops']['residual']}, bias add {c['other_ops']['bias']}, ReLU "
        f"{c['other_ops']['relu']}; neuron update {c['other_ops']['neuron']} per neuron and step. Priced at E_MAC they "
        f"would add {energy(t['snn']['other_pj_if_mac'])} (SNN) and {energy(t['ann']['other_pj_if_mac'])} (ANN) per sample.",
        "Bias adds are not accumulates here (they are other operations), so the twin has no AC.",
        padding,
        f"Counts are per sample, averaged over {d['samples']} samples{asked}: the first of the {d['split']} split, in "
        f"batches of {d['batch_size']} (the spike-generated attention scales by the batch's firing rate, so spikes "
        "depend on the batch).",
        f"Data: {data}.",
        f"Spiking model {report['models']['snn']['name']}: {report['models']['snn']['weights']}.",
        f"Twin {report['models']['ann']['name']}: same architecture and overrides, every LIF the identity and "
        f"scale2 = sqrt(d); {report['models']['ann']['weights']}.",
        "Not counted: data movement (45 nm estimate), the padding mask on the inputs, the masked-mean pooling before "
        "the heads, attention masking, the firing-rate and scale2 reductions, dropout (inactive in evaluation), and "
        "any backward pass (inference only, float32 on the CPU).",
    ] + [f"Warning: {w}." for w in report["warnings"]]
