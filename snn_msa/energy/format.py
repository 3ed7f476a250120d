"""The energy report as text: one aligned table per model, the totals, then every assumption."""

from __future__ import annotations

from typing import Any

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


def _table(rows: list[dict[str, Any]]) -> list[str]:
    cells = [COLUMNS] + [
        (r["name"], r["stage"], r["modality"], r["operation"], r["operands"], _rate(r["input_firing_rate"]),
         _rate(r["output_firing_rate"]), human(r["dense"]) if r["dense"] else "-", human(r["ac"]), human(r["mac"]),
         human(r["other"]), energy(r["energy_pj"]), f"{100 * r['share']:.1f}%")
        for r in rows
    ]
    widths = [max(len(row[i]) for row in cells) for i in range(len(COLUMNS))]
    left = 5  # name, stage, modality, operation, operands are text; the rest are numbers
    lines = []
    for k, row in enumerate(cells):
        parts = [cell.ljust(w) if i < left else cell.rjust(w) for i, (cell, w) in enumerate(zip(row, widths))]
        lines.append("  ".join(parts).rstrip())
        if k == 0:
            lines.append("  ".join("-" * w for w in widths))
    return lines


def format_report(report: dict[str, Any]) -> str:
    """The text the CLI prints: a per-layer table for each model, totals per sample, assumptions."""
    d, t, m = report["data"], report["totals"], report["memory_aware"]
    tag = " [SYNTHETIC]" if d["synthetic"] else ""
    sides = [side for side in ("snn", "ann") if side in t]
    named = {"snn": f"{report['model']} (spiking)", "ann": f"{report['twin']} (non-spiking)"}
    lines = [
        f"Energy per sample of {' and '.join(named[side] for side in sides)}: "
        f"{d['samples']} samples of the {d['split']} split of {d['source']}{tag}; padding: {d['padding']} positions.",
        "",
    ]
    titles = {"snn": f"Spiking model {report['model']}", "ann": f"Non-spiking model {report['twin']}"}
    for side, title in ((side, titles[side]) for side in sides):
        lines.append(f"{title} (energy: 45 nm, 0.9 pJ x AC + 4.6 pJ x MAC; rates: input spikes / output spikes):")
        lines.extend(_table([r for r in report["layers"] if r["model"] == side]))
        lines.append("")
    head = ("per sample", "AC", "MAC", "other", "energy 45 nm", "memory-aware", "firing rate")
    body = []
    labels = {"snn": f"SNN {report['model']}", "ann": f"ANN {report['twin']}"}
    for side, label in ((side, labels[side]) for side in sides):
        s = t[side]
        body.append((label, human(s["ac"]), human(s["mac"]), human(s["other"]), energy(s["energy_pj"]),
                     energy(m[side]["energy_pj"]), _rate(s["firing_rate"])))
    ratio = lambda r: "-" if r is None else f"{r:.3f}"  # noqa: E731
    if len(sides) == 2:
        body.append(("SNN / ANN", "", "", "", ratio(t["ratio"]), ratio(m["ratio"]), ""))
    widths = [max(len(row[i]) for row in [head] + body) for i in range(len(head))]
    lines.append("Totals:")
    for row in [head] + body:
        lines.append("  " + "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths))))
    if t["ratio"]:
        lines.append(f"  The twin costs {1 / t['ratio']:.2f}x the spiking model in the 45 nm estimate"
                     + (f" and {1 / m['ratio']:.2f}x in the memory-aware one." if m["ratio"] else "."))
    for u in report.get("uncounted", []):
        lines.append(f"  Uncounted ({u['model']}): {u['operation']} in {u['name'] or 'the model'}, {u['calls']} calls.")
    lines += ["", "Assumptions:"]
    lines.extend(f"  - {a}" for a in report["assumptions"])
    return "\n".join(lines)
