"""Write the energy table of every zoo entry into docs/energy.md (between the energy-table markers).

Run from the repository root:

    python benchmarks/energy_table.py [--samples 64] [--doc docs/energy.md]

Each entry runs through :func:`snn_msa.energy.energy_report` with its defaults:
built-in synthetic data shaped like CH-SIMS, untrained weights (torch seed 0),
valid positions only. An entry without a spiking side (or without a twin)
shows "-" there. The numbers are what that code measured, not typed in.
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
SIDES = ("snn", "ann")


def _stages(reports: dict) -> list[str]:
    """Every stage with some AC or MAC in the entries' rows, in order of first appearance."""
    seen: dict[str, None] = {}
    for r in reports.values():
        for row in r["layers"]:
            if row["energy_pj"]:
                seen.setdefault(row["stage"], None)
    return list(seen)


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
        f"{d['split']} split of {d['source']} (SYNTHETIC), batch {d['batch_size']}, valid positions only, "
        "untrained spiking models (torch seed 0). Per sample; energy at 45 nm = 0.9 pJ x AC + 4.6 pJ x MAC; "
        "memory-aware = Lemaire (see above). A trained model fires differently, so rerun "
        "`snn-msa energy --checkpoint ...` for the numbers of your model.",
        "",
        "| entry | spiking model | twin | SNN AC | SNN MAC | SNN energy | ANN MAC | ANN energy | SNN/ANN 45 nm "
        "| SNN/ANN memory-aware | SNN firing rate |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, r in reports.items():
        s, a, m = r["totals"].get("snn"), r["totals"].get("ann"), r["memory_aware"]
        rate = "-" if s is None or s["firing_rate"] is None else f"{s['firing_rate']:.3g}"
        get = lambda side, key, show: "-" if side is None else show(side[key])  # noqa: E731
        named = lambda n: "-" if n is None else f"`{n}`"  # noqa: E731
        lines.append(
            f"| `{name}` | {named(r['model'])} | {named(r['twin'])} | {get(s, 'ac', human)} | {get(s, 'mac', human)} "
            f"| {get(s, 'energy_pj', energy)} | {get(a, 'mac', human)} | {get(a, 'energy_pj', energy)} "
            f"| {_ratio(r['totals']['ratio'])} | {_ratio(m['ratio'])} | {rate} |"
        )
    spiking = {name: r for name, r in reports.items() if "snn" in r["totals"]}  # the baselines have no stages
    stages = _stages(spiking)
    lines += ["", "Energy (45 nm) per stage of the spiking entries, spiking model / twin (stages with neither AC "
              "nor MAC left out):", "", "| entry | " + " | ".join(stages) + " |", "|---|" + "---|" * len(stages)]
    for name, r in spiking.items():
        cells = []
        for stage in stages:
            per = [energy(sum(x["energy_pj"] for x in r["layers"] if x["model"] == side and x["stage"] == stage))
                   if side in r["totals"] else "-" for side in SIDES]
            cells.append(" / ".join(per))
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
