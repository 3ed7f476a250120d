"""Firing rates of finished `snn-msa grid` folders beside the paper's Table 4 "Spiking Rate" column, as markdown.

Reads each folder's grid.csv (rates over valid positions of the test split,
mean over seeds) and prints one table per folder: strength rows, scale1
columns, each cell "ours (paper)". Then the scale1 curve at strength 0.01
(the default) of every folder, with the validation loss and test MAE / Corr
of each cell, and how far each curve lies from the paper's: the mean over
scale1 of |log10(ours / paper)|.

    snn-msa grid --model sgmt-tav --scale1 0.5,1,2,3 --strength 0,0.01,0.025,0.05,0.1 --out runs/table4
    python benchmarks/table4_rates.py runs/table4 runs/curve-vth075
"""

from __future__ import annotations

import argparse
import csv
import math
from pathlib import Path

# Table 4 of the paper (SIMS), "Spiking Rate" column: PAPER_RATE[strength][scale1].
PAPER_RATE = {
    0.0: {0.5: 0.03, 1.0: 0.07, 2.0: 0.10, 3.0: 0.11},
    0.01: {0.5: 0.03, 1.0: 0.08, 2.0: 0.10, 3.0: 0.11},
    0.025: {0.5: 0.03, 1.0: 0.08, 2.0: 0.10, 3.0: 0.11},
    0.05: {0.5: 0.03, 1.0: 0.09, 2.0: 0.11, 3.0: 0.11},
    0.1: {0.5: 0.03, 1.0: 0.12, 2.0: 0.16, 3.0: 0.14},
}


def read_grid(folder: Path) -> dict[tuple[float, float], dict[str, float]]:
    with open(folder / "grid.csv", newline="") as stream:
        return {(float(r["strength"]), float(r["scale1"])): {k: float(v) for k, v in r.items() if _number(v)}
                for r in csv.DictReader(stream) if r["firing_rate_mean"]}


def _number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def rate_table(cells: dict) -> str:
    scales = sorted({s for _, s in cells})
    lines = ["| strength \\ scale1 | " + " | ".join(f"{s:g}" for s in scales) + " |",
             "|---|" + "---|" * len(scales)]
    for strength in sorted({k for k, _ in cells}):
        row = []
        for scale in scales:
            cell = cells.get((strength, scale))
            paper = PAPER_RATE.get(strength, {}).get(scale)
            ours = "-" if cell is None else f"{cell['firing_rate_mean']:.4f}"
            row.append(ours + ("" if paper is None else f" ({paper:.2f})"))
        lines.append(f"| {strength:g} | " + " | ".join(row) + " |")
    return "\n".join(lines)


def curve_table(grids: dict[str, dict]) -> str:
    lines = ["| grid | scale1 | rate | paper | valid loss | test MAE | test Corr |", "|---|---|---|---|---|---|---|"]
    for name, cells in grids.items():
        for (strength, scale), cell in sorted(cells.items(), key=lambda kv: kv[0][1]):
            if strength != 0.01:
                continue
            lines.append(f"| {name} | {scale:g} | {cell['firing_rate_mean']:.4f} | {PAPER_RATE[0.01].get(scale, float('nan')):.2f} "
                         f"| {cell['valid_loss_mean']:.4f} | {cell['MAE_mean']:.4f} | {cell['Corr_mean']:.4f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folders", nargs="+", type=Path, help="finished snn-msa grid folders")
    args = parser.parse_args()
    grids = {folder.name: read_grid(folder) for folder in args.folders}
    for name, cells in grids.items():
        print(f"{name}: test firing rate, ours (paper's Table 4)\n\n{rate_table(cells)}\n")
    print(f"strength 0.01, over scale1:\n\n{curve_table(grids)}\n")
    for name, cells in grids.items():
        errors = [abs(math.log10(cell["firing_rate_mean"] / PAPER_RATE[0.01][scale]))
                  for (strength, scale), cell in cells.items() if strength == 0.01 and scale in PAPER_RATE[0.01]]
        if errors:
            print(f"{name}: mean |log10(ours / paper)| over {len(errors)} scale1 values at strength 0.01: "
                  f"{sum(errors) / len(errors):.2f} (a factor of {10 ** (sum(errors) / len(errors)):.2f})")


if __name__ == "__main__":
    main()
