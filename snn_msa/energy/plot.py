"""Bar chart of the per-layer energy of the spiking model and its twin, or of a model alone (matplotlib, Agg)."""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any

from ..atomic import write_atomic


def plot_report(report: dict[str, Any], path: str | os.PathLike) -> Path:
    """Draw the 45 nm energy per layer of both models as horizontal bars and write it to ``path``.

    Rows with no AC and no MAC in either model (LayerNorm, softmax, neuron
    updates: unpriced in the 45 nm estimate) are left out; the title says so.
    The format follows the file's suffix (PNG by default); the file is written atomically.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names: list[str] = []
    energy: dict[str, dict[str, float]] = {"snn": {}, "ann": {}}
    for row in report["layers"]:
        if row["name"] not in names:
            names.append(row["name"])
        energy[row["model"]][row["name"]] = row["energy_pj"] / 1e3
    names = [n for n in names if energy["snn"].get(n, 0.0) or energy["ann"].get(n, 0.0)]
    height = max(3.0, 0.28 * len(names) + 1.5)
    fig, ax = plt.subplots(figsize=(9, height))
    try:
        ys = range(len(names))
        sides = [side for side in ("snn", "ann") if side in report["totals"]]
        labels = {"snn": f"SNN {report['model']}", "ann": f"ANN {report['twin']}"}
        colours = {"snn": "tab:orange", "ann": "tab:blue"}
        width = 0.8 / len(sides)
        for k, side in enumerate(sides):
            offset = (k - (len(sides) - 1) / 2) * width
            ax.barh([y + offset for y in ys], [energy[side].get(n, 0.0) for n in names], height=width,
                    label=labels[side], color=colours[side])
        ax.set_yticks(list(ys))
        ax.set_yticklabels(names, fontsize=7)
        ax.invert_yaxis()
        ax.set_xlabel("energy per sample, nJ (45 nm: 0.9 pJ x AC + 4.6 pJ x MAC)")
        t = report["totals"]
        ratio = "" if t["ratio"] is None else f", SNN/ANN = {t['ratio']:.3f}"
        d = report["data"]
        ax.set_title(f"{' vs '.join(str(report['model' if side == 'snn' else 'twin']) for side in sides)}: "
                     f"{d['samples']} samples, {d['padding']} positions{ratio}\n"
                     "(rows with neither AC nor MAC left out)", fontsize=9)
        ax.legend(fontsize=8)
        ax.grid(axis="x", alpha=0.3)
        fig.tight_layout()
        out = Path(path)
        buffer = io.BytesIO()  # drawn in memory, then written atomically: a failed write leaves no half file
        fig.savefig(buffer, format=out.suffix.lstrip(".").lower() or "png", dpi=120)
    finally:
        plt.close(fig)
    return write_atomic(out, buffer.getvalue())
