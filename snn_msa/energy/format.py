"""The energy report as text for a terminal, in full, or as markdown.

- :func:`format_summary` (the default of ``snn-msa energy``): totals, the SNN/ANN
  ratio, the few largest layers of each model and the assumptions, wrapped to
  fit an 88-column terminal.
- :func:`format_report` (``--layers``): one aligned row per layer of each model,
  then the totals and the assumptions.
- :func:`format_markdown` (``--markdown``): the totals and every layer as
  markdown tables, and the assumptions as a list.

All three read only the report dict of :func:`snn_msa.energy.energy_report`.
"""

from __future__ import annotations

import textwrap
from typing import Any

WIDTH = 88  # columns of the default summary
TOP_LAYERS = 5  # largest layers per model in the summary
COLUMNS = ("layer", "stage", "modality", "operation", "operands", "in rate", "out rate", "dense", "AC", "MAC", "other",
           "energy", "share")


def human(value: float | None) -> str:
    """A count in short form: ``1234567`` -> ``1.23M``.

    >>> human(0), human(950), human(1234567), human(2.5e9)
    ('0', '950', '1.23M', '2.50G')
    """
    if value is None:
        return "-"
    for size, unit in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= size:
            return f"{value / size:.2f}{unit}"
    return f"{value:.0f}" if float(value).is_integer() or abs(value) >= 10 else f"{value:.2f}"


def energy(pj: float | None) -> str:
    """Energy in the unit that suits it: ``pJ``, ``nJ`` or ``µJ``.

    >>> energy(512.0), energy(2.5e4), energy(3.1e6)
    ('512.0 pJ', '25.00 nJ', '3.100 µJ')
    """
    if pj is None:
        return "-"
    if abs(pj) >= 1e6:
        return f"{pj / 1e6:.3f} µJ"
    if abs(pj) >= 1e3:
        return f"{pj / 1e3:.2f} nJ"
    return f"{pj:.1f} pJ"


def _rate(value: float | None) -> str:
    """A firing rate with three significant digits (rates of an untrained model can be tiny)."""
    return "-" if value is None else f"{value:.3g}"


def _cells(rows: list[dict[str, Any]]) -> list[tuple[str, ...]]:
    """The per-layer table's cells, header first (one row per layer)."""
    return [COLUMNS] + [
        (r["name"], r["stage"], r["modality"], r["operation"], r["operands"], _rate(r["input_firing_rate"]),
         _rate(r["output_firing_rate"]), human(r["dense"]) if r["dense"] else "-", human(r["ac"]), human(r["mac"]),
         human(r["other"]), energy(r["energy_pj"]), f"{100 * r['share']:.1f}%")
        for r in rows
    ]


def _aligned(cells: list[tuple[str, ...]], left: int, indent: str = "") -> list[str]:
    """Rows of cells as aligned text: the first ``left`` columns flush left, the rest flush right, a rule under the header."""
    widths = [max(len(row[i]) for row in cells) for i in range(len(cells[0]))]
    lines = []
    for k, row in enumerate(cells):
        parts = [cell.ljust(w) if i < left else cell.rjust(w) for i, (cell, w) in enumerate(zip(row, widths))]
        lines.append((indent + "  ".join(parts)).rstrip())
        if k == 0:
            lines.append(indent + "  ".join("-" * w for w in widths))
    return lines


def _markdown(cells: list[tuple[str, ...]], left: int) -> list[str]:
    """Rows of cells as a markdown table (text columns left-aligned, numbers right-aligned)."""
    head, *body = cells
    rule = ["---" if i < left else "---:" for i in range(len(head))]
    return ["| " + " | ".join(row) + " |" for row in [head, tuple(rule), *body]]


def _present(report: dict[str, Any]) -> list[str]:
    """The sides the report holds: ``snn`` and ``ann``, or one of them for a model reported alone."""
    return [side for side in ("snn", "ann") if side in report["totals"]]


def _sides(report: dict[str, Any]) -> tuple[tuple[str, str], ...]:
    present = _present(report)
    titles = {"snn": f"Spiking model {report['model']}",
              "ann": f"Twin {report['twin']}" if len(present) == 2 else f"Non-spiking model {report['twin']}"}
    return tuple((side, titles[side]) for side in present)


def _totals_cells(report: dict[str, Any]) -> list[tuple[str, ...]]:
    t, m = report["totals"], report["memory_aware"]
    cells = [("per sample", "AC", "MAC", "other", "energy 45 nm", "memory-aware", "firing rate")]
    labels = {"snn": f"SNN {report['model']}", "ann": f"ANN {report['twin']}"}
    for side in _present(report):
        s = t[side]
        cells.append((labels[side], human(s["ac"]), human(s["mac"]), human(s["other"]), energy(s["energy_pj"]),
                      energy(m[side]["energy_pj"]), _rate(s["firing_rate"])))
    if len(_present(report)) == 2:
        ratio = lambda r: "-" if r is None else f"{r:.3f}"  # noqa: E731
        cells.append(("SNN / ANN", "", "", "", ratio(t["ratio"]), ratio(m["ratio"]), ""))
    return cells


def _headline(report: dict[str, Any]) -> str:
    d = report["data"]
    tag = " [SYNTHETIC]" if d["synthetic"] else ""
    present = _present(report)
    if len(present) == 2:
        models = f"{report['model']} (spiking) and {report['twin']} (non-spiking twin)"
    else:
        models = f"{report['model']} (spiking)" if present == ["snn"] else f"{report['twin']} (non-spiking)"
    return (f"Energy per sample of {models}: "
            f"{d['samples']} samples of the {d['split']} split of {d['source']}{tag}; padding: {d['padding']} positions.")


def _uncounted(report: dict[str, Any]) -> list[str]:
    """One sentence per operation that no rule counts (none for the zoo's models)."""
    return [f"Uncounted ({u['model']}): {u['operation']} in {u['name'] or 'the model'}, {u['calls']} calls; "
            "no rule counts it (docs/energy.md says how to add one)." for u in report.get("uncounted", [])]


def _ratio_sentence(report: dict[str, Any]) -> str | None:
    t, m = report["totals"], report["memory_aware"]
    if not t.get("ratio"):
        return None
    return (f"The twin costs {1 / t['ratio']:.2f}x the spiking model in the 45 nm estimate"
            + (f" and {1 / m['ratio']:.2f}x in the memory-aware one." if m["ratio"] else "."))


def largest_layers(report: dict[str, Any], side: str, count: int = TOP_LAYERS) -> list[dict[str, Any]]:
    """The ``count`` rows of ``side`` (``"snn"`` or ``"ann"``) with the highest 45 nm energy, highest first."""
    rows = [r for r in report["layers"] if r["model"] == side]
    return sorted(rows, key=lambda r: (-r["energy_pj"], r["name"]))[:count]


def format_summary(report: dict[str, Any], width: int = WIDTH) -> str:
    """The default text of ``snn-msa energy``: totals, the SNN/ANN ratio, the largest layers, the assumptions.

    Every line fits in ``width`` columns; the full per-layer table is :func:`format_report`.
    """
    def wrap(text: str, first: str = "", rest: str = "") -> str:
        return textwrap.fill(text, width, initial_indent=first, subsequent_indent=rest, break_on_hyphens=False)

    lines = [wrap(_headline(report)), "", "Totals:"]
    lines += _aligned(_totals_cells(report), left=1, indent="  ")
    sentence = _ratio_sentence(report)
    if sentence:
        lines.append(wrap(sentence, "  ", "  "))
    lines += [wrap(u, "  ", "  ") for u in _uncounted(report)]
    for side, title in _sides(report):
        rows = largest_layers(report, side)
        total = sum(r["model"] == side for r in report["layers"])
        lines += ["", f"{title}: the {len(rows)} largest of {total} layers by 45 nm energy (all with --layers):"]
        cells = [("layer", "operation", "AC", "MAC", "energy", "share")] + [
            (r["name"], r["operation"], human(r["ac"]), human(r["mac"]), energy(r["energy_pj"]), f"{100 * r['share']:.1f}%")
            for r in rows
        ]
        lines += _aligned(cells, left=2, indent="  ")
    lines += ["", "Assumptions:"]
    lines += [wrap(a, "  - ", "    ") for a in report["assumptions"]]
    return "\n".join(lines)


def format_report(report: dict[str, Any]) -> str:
    """The full text (``snn-msa energy --layers``): a per-layer table for each model, totals per sample, assumptions."""
    lines = [_headline(report), ""]
    for side, title in _sides(report):
        lines.append(f"{title} (energy: 45 nm, 0.9 pJ x AC + 4.6 pJ x MAC; rates: input spikes / output spikes):")
        lines.extend(_aligned(_cells([r for r in report["layers"] if r["model"] == side]), left=5))
        lines.append("")
    lines.append("Totals:")
    lines += _aligned(_totals_cells(report), left=1, indent="  ")
    sentence = _ratio_sentence(report)
    if sentence:
        lines.append(f"  {sentence}")
    lines += [f"  {u}" for u in _uncounted(report)]
    lines += ["", "Assumptions:"]
    lines.extend(f"  - {a}" for a in report["assumptions"])
    return "\n".join(lines)


def format_markdown(report: dict[str, Any]) -> str:
    """The whole report as markdown (``snn-msa energy --markdown``): totals, every layer of both models, assumptions."""
    lines = [_headline(report), "", "## Totals per sample", ""]
    lines += _markdown(_totals_cells(report), left=1)
    sentence = _ratio_sentence(report)
    if sentence:
        lines += ["", sentence]
    lines += [f"\n{u}" for u in _uncounted(report)]
    for side, title in _sides(report):
        lines += ["", f"## {title}: every layer", ""]
        lines += _markdown(_cells([r for r in report["layers"] if r["model"] == side]), left=5)
    lines += ["", "## Assumptions", ""]
    lines += [f"- {a}" for a in report["assumptions"]]
    return "\n".join(lines) + "\n"
