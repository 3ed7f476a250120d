"""``snn-msa data check``: everything about a feature file, and every problem in it, as a dict.

>>> import tempfile, os
>>> from snn_msa.data.synthetic import make_synthetic, write_pickle
>>> path = os.path.join(tempfile.mkdtemp(), "tiny.pkl")
>>> _ = write_pickle(make_synthetic("mosi", (3, 2, 2)), path)
>>> report = check_file(path)
>>> report["ok"], report["dataset"], report["splits"]["train"]["samples"]
(True, 'mosi', 3)
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from .cleaning import FEATURE_KEYS, KINDS, count_nonfinite
from .errors import DataError
from .files import detect_format
from .hdf5_store import open_store, stored_nonfinite
from .nonfinite import MAX_NONFINITE_SHARE, count_splits, judge, percent
from .safe_pickle import restricted_load
from .synthetic import looks_synthetic
from .validate import LENGTH_KEYS, Problem, dtype_kind, inspect_splits, resolve_profile

__all__ = ["check_file", "format_report"]


def _stats(values: np.ndarray | None) -> dict[str, float] | None:
    if values is None or not values.size:
        return None
    return {"min": float(values.min()), "mean": round(float(values.mean()), 4), "max": float(values.max())}


def _nonfinite(value: Any, is_hdf5: bool) -> dict[str, int] | None:
    if len(getattr(value, "shape", ())) != 3 or dtype_kind(value) != "f":
        return None
    counts = (stored_nonfinite(value) if is_hdf5 else None) or count_nonfinite(value if is_hdf5 else np.asarray(value))
    return {**counts, "total": sum(counts[k] for k in KINDS)}


def check_file(path: str | os.PathLike, profile: str | None = None, *, allow_nonfinite: bool = False) -> dict[str, Any]:
    """Check an MMSA feature pickle or HDF5 store; a JSON-ready report, never an exception for bad data.

    ``profile`` names the file's profile (left out, the feature dims tell it).
    The report has ``ok`` (no errors), the matched profile's name under
    ``dataset``, ``aligned``, ``feature_dims``, ``seq_lens``,
    ``has_modality_labels``, per split the sample count, every key's shape,
    label and length ranges, non-finite cells that loading sets to 0
    (``nonfinite_cleaned``: every cell, padding included; ``nonfinite``: at
    valid positions, with their share) and zero lengths, and ``problems``:
    each with ``severity`` (``error`` or ``warning``), ``split``, ``key`` and
    ``message``. A modality whose share of non-finite cells exceeds
    ``nonfinite_max_share`` is an error unless ``allow_nonfinite``
    (:mod:`snn_msa.data.nonfinite`).
    """
    name = os.fspath(path)
    report: dict[str, Any] = {
        "file": name, "format": None, "size_bytes": os.path.getsize(name) if os.path.isfile(name) else None,
        "ok": False, "dataset": None, "title": None, "label_range": None, "aligned": None,
        "feature_dims": None, "seq_lens": None, "has_modality_labels": None, "synthetic": None,
        "nonfinite_max_share": MAX_NONFINITE_SHARE, "nonfinite_allowed": bool(allow_nonfinite),
        "splits": {}, "problems": [], "errors": 0, "warnings": 0,
    }
    problems: list[Problem] = []
    handle = None
    try:
        report["format"] = detect_format(name)
        if report["format"] == "pickle":
            top: Any = restricted_load(name)
        else:
            handle = top = open_store(name)
        found = inspect_splits(top, name)
        matched = resolve_profile(found, profile)
        valid_counts = count_splits(top, found.splits)
        found.problems.extend(judge(valid_counts, allow_nonfinite))
        problems = found.sorted_problems()
        if matched is not None:
            report.update(dataset=matched.name, title=matched.title, label_range=list(matched.label_range))
        report.update(
            aligned=found.aligned,
            feature_dims=list(found.feature_dims) if found.feature_dims else None,
            seq_lens=list(found.seq_lens) if found.seq_lens else None,
            has_modality_labels=found.has_modality_labels,
            synthetic=looks_synthetic(found),
        )
        for split_name, info in found.splits.items():
            split = top[split_name]
            nonfinite = {}
            for key in FEATURE_KEYS:
                counts = _nonfinite(split[key], handle is not None) if key in split else None
                if counts is not None and counts["total"]:
                    nonfinite[key] = counts
            report["splits"][split_name] = {
                "samples": info.n,
                "shapes": {k: list(v) for k, v in info.shapes.items()},
                "feature_dims": list(info.feature_dims) if all(len(info.shapes.get(m, ())) == 3 for m in FEATURE_KEYS) else None,
                "seq_lens": list(info.seq_lens) if all(len(info.shapes.get(m, ())) == 3 for m in FEATURE_KEYS) else None,
                "modality_labels": all(k in info.labels for k in "TAV"),
                "label_range": {k: [round(float(v.min()), 6), round(float(v.max()), 6)] for k, v in info.labels.items() if v.size},
                "lengths": {m: "invalid" if v is None and key in info.shapes else _stats(v)
                            for (m, v), key in zip(info.lengths.items(), ("text_bert", *LENGTH_KEYS.values()))},
                "zero_lengths": info.zero_lengths,
                "nonfinite_cleaned": nonfinite,
                "nonfinite": {m: c.as_dict() for m, c in valid_counts.get(split_name, {}).items() if c.total},
            }
    except DataError as err:
        problems.append(Problem("error", err.reason, err.split, err.key))
    except (OSError, RuntimeError) as err:  # h5py read failures on damaged stores
        problems.append(Problem("error", f"could not read the file ({err}): it looks truncated or damaged."))
    finally:
        if handle is not None:
            handle.close()
    report["problems"] = [p.as_dict() for p in problems]
    report["errors"] = sum(p.severity == "error" for p in problems)
    report["warnings"] = sum(p.severity == "warning" for p in problems)
    report["ok"] = report["errors"] == 0 and bool(report["splits"])
    return report


def _size(n: int | None) -> str:
    if n is None:
        return "?"
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return str(n)  # pragma: no cover


def _range(r: list[float] | None) -> str:
    return "-" if not r else f"[{r[0]:+.2f}, {r[1]:+.2f}]"


def _len_text(stats: dict | str | None) -> str:
    if isinstance(stats, str):
        return stats
    return "full" if not stats else f"{stats['min']:.0f}-{stats['max']:.0f}"


def format_report(report: dict[str, Any]) -> str:
    """The report of :func:`check_file` as text for a terminal."""
    lines = [f"file: {report['file']} ({report['format'] or 'unknown format'}, {_size(report['size_bytes'])})"]
    if report["synthetic"]:
        lines.append("content: SYNTHETIC data written by 'snn-msa data synth' (not a real data set)")
    if report["dataset"]:
        lines.append(f"data set: {report['title']} ({report['dataset']}), labels in {_range(report['label_range'])}")
    if report["feature_dims"]:
        lines.append(f"dims (text, audio, vision): {tuple(report['feature_dims'])}; padded lengths: {tuple(report['seq_lens'])}")
        lines.append("alignment: " + ("aligned (no audio/vision lengths)" if report["aligned"] else "unaligned (audio and vision lengths per sample)"))
        lines.append("per-modality labels (regression_labels_T/A/V): " + ("yes" if report["has_modality_labels"] else "no"))
    if report["splits"]:
        header = (f"{'split':<6} {'samples':>7}  {'label M':<15} {'text len':>9} {'audio len':>9} {'vision len':>10}  "
                  "non-finite at valid positions (share)")
        lines += ["", header]
        for name, s in report["splits"].items():
            cleaned = ", ".join(f"{k} {v['total']} ({percent(v['share'])}: {', '.join(f'{v[kind]} {kind}' for kind in KINDS if v[kind])})"
                                for k, v in s["nonfinite"].items()) or "none"
            lengths = s["lengths"]
            lines.append(
                f"{name:<6} {s['samples']:>7}  {_range(s['label_range'].get('M')):<15} {_len_text(lengths.get('text')):>9} "
                f"{_len_text(lengths.get('audio')):>9} {_len_text(lengths.get('vision')):>10}  {cleaned}"
            )
    if report["problems"]:
        lines += ["", "problems:"]
        for p in report["problems"]:
            at = "/".join(x for x in (p["split"], p["key"]) if x)
            lines.append(f"  {p['severity']:<7} {at + ': ' if at else ''}{p['message']}")
    lines.append("")
    if report["ok"]:
        over = any(v["share"] > report["nonfinite_max_share"] for s in report["splits"].values() for v in s["nonfinite"].values())
        lines.append(f"OK: usable with --data {report['file']} --dataset {report['dataset']}"
                     + (" --allow-nonfinite" if over else "")
                     + (f" ({report['warnings']} warning{'s' if report['warnings'] != 1 else ''})" if report["warnings"] else ""))
    else:
        lines.append(f"NOT USABLE: {report['errors']} error{'s' if report['errors'] != 1 else ''}")
    return "\n".join(lines)
