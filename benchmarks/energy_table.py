"""Write the energy table of every zoo entry into docs/energy.md (between the energy-table markers).

Run from the repository root:

    python benchmarks/energy_table.py [--samples 64] [--doc docs/energy.md]

Each entry runs through :func:`snn_msa.energy.energy_report` with its defaults:
built-in synthetic data shaped like CH-SIMS, untrained weights (torch seed 0),
real positions only. The numbers are what that code measured, not typed in.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from snn_msa.data import load_dataset
from snn_msa.energy import energy_report
from snn_msa.energy.format import energy, human
from snn_msa.registry import list_models
from snn_msa.training.data_source import SYNTHETIC_SEED

START, END = "<!-- energy-table:start -->", "<!-- energy-table:end -->"
STAGES = ("projection", "single-modal", "fusion", "head")


def _ratio(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def tables(samples: int) -> str:
    """The Markdown written between the markers."""
    data = load_dataset(None, "sims", seed=SYNTHETIC_SEED)  # what every command uses without --data
    reports = {name: energy_report(name, data=data, samples=samples) for name in list_models()}
    first = next(iter(reports.values()))
    d = first["data"]
    lines = [
        f"Measured by `python benchmarks/energy_table.py --samples {samples}`: {d['samples']} samples of the "
        f"{d['split']} split of {d['source']} (SYNTHETIC), batch {d['batch_size']}, {d['padding']} positions only, "
        "untrained spiking models (torch seed 0). Per sample; energy at 45 nm = 0.9 pJ x AC + 4.6 pJ x MAC; "
        "memory-aware = Lemaire (see above). A trained model fires differently, so rerun "
        "`snn-msa energy --checkpoint ...` for the numbers of your model.",
        "",
        "| entry | spiking model | twin | SNN AC | SNN MAC | SNN energy | ANN MAC | ANN energy | SNN/ANN 45 nm "
        "| SNN/ANN memory-aware | SNN firing rate |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, r in reports.items():
        s, a, m = r["totals"]["snn"], r["totals"]["ann"], r["memory_aware"]
        rate = "-" if s["firing_rate"] is None else f"{s['firing_rate']:.3g}"
        lines.append(
            f"| `{name}` | `{r['model']}` | `{r['twin']}` | {human(s['ac'])} | {human(s['mac'])} | {energy(s['energy_pj'])} "
            f"| {human(a['mac'])} | {energy(a['energy_pj'])} | {_ratio(r['totals']['ratio'])} | {_ratio(m['ratio'])} | {rate} |"
        )
    lines += ["", "Energy (45 nm) per stage, spiking model / twin:", "",
              "| entry | " + " | ".join(STAGES) + " |", "|---|" + "---|" * len(STAGES)]
    for name, r in reports.items():
        cells = []
        for stage in STAGES:
            per = {side: sum(x["energy_pj"] for x in r["layers"] if x["model"] == side and x["stage"] == stage)
                   for side in ("snn", "ann")}
            cells.append(f"{energy(per['snn'])} / {energy(per['ann'])}")
        lines.append(f"| `{name}` | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=64)
    parser.add_argument("--doc", default=str(Path(__file__).resolve().parents[1] / "docs" / "energy.md"))
    args = parser.parse_args()
    doc = Path(args.doc)
    text = doc.read_text()
    if START not in text or END not in text:
        raise SystemExit(f"{doc} has no {START} ... {END} markers to write between.")
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    doc.write_text(f"{head}{START}\n{tables(args.samples)}\n{END}{tail}")
    print(f"wrote the energy table of {len(list_models())} entries into {doc}")


if __name__ == "__main__":
    main()
