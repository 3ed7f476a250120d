"""Readings of the paper side by side over several seeds, each trained with the full recipe (early stopping), with a knock-out.

For each reading (model overrides for a choice the paper leaves open), trains
``sgmt-tav`` with ``snn_msa.training.train`` (the one trainer: the card's
recipe, early stopping on the validation MAE) on every seed, then runs the
spike diagnosis (snn_msa.diagnosis) on each seed's best checkpoint: the test
firing rate over valid positions, MAE and Corr, and the same with every spike
set to zero. Prints each seed and the mean ± std over seeds. Nothing is
asserted; the figures go to docs/experiments.md. Runs already finished in
``--out`` are reused, so an interrupted comparison continues.

    python benchmarks/reading_seeds.py --out runs/readings-builtin
    python benchmarks/reading_seeds.py --data other.pkl --dataset mosei --out runs/readings-other
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

READINGS = {
    "default": {},  # the defaults of this version (V_th 0.75 since it became SGMT's default)
    "vth1": {"v_threshold": 1.0},
    "vth0.5": {"v_threshold": 0.5},
    "vth0.75": {"v_threshold": 0.75},
    "scale1-1": {"scale1": 1.0},
    "tau1.5": {"tau": 1.5},
    "linear-projection": {"conv_kernel": 1},  # a per-frame Linear instead of Conv1d k 3
}
COLUMNS = ("firing_rate", "MAE", "Corr", "knocked_out_MAE", "knocked_out_Corr")


def train_reading(name: str, overrides: dict, args) -> Path:
    from snn_msa.training import TrainSettings, train

    folder = Path(args.out) / name
    if not (folder / "results.json").exists():
        train(TrainSettings(model="sgmt-tav", data=args.data, dataset=args.dataset, seeds=args.seeds, threads=1,
                            quiet=True, out=str(folder), model_overrides=overrides, overwrite=folder.exists()))
    return folder


def diagnose_seed(folder: Path, seed: int, args) -> dict:
    from snn_msa.diagnosis import spike_diagnosis
    from snn_msa.training.model_source import model_with_data

    source = model_with_data(None, str(folder / f"seed-{seed}" / "best.pt"), args.data, args.dataset)
    report = spike_diagnosis(source.model, source.dataset.splits["test"], source.dataset.profile.name)
    return {"seed": seed, "firing_rate": report["firing_rate"],
            "MAE": report["metrics"]["MAE"], "Corr": report["metrics"]["Corr"],
            "knocked_out_MAE": report["knocked_out_metrics"]["MAE"],
            "knocked_out_Corr": report["knocked_out_metrics"]["Corr"]}


def row(label: str, values: dict) -> str:
    return f"{label:<22}" + "".join(f" {values[c]:>16}" for c in COLUMNS)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--readings", default="default,vth0.5")
    parser.add_argument("--seeds", default="1111,1112,1113")
    parser.add_argument("--data", default=None, help="an MMSA feature file [default: built-in synthetic data]")
    parser.add_argument("--dataset", default=None)
    parser.add_argument("--out", required=True, help="folder for the runs (reused when run again)")
    parser.add_argument("--json", default=None, help="also write every figure to this JSON file")
    args = parser.parse_args()
    args.seeds = tuple(int(s) for s in args.seeds.split(","))

    import torch

    torch.set_num_threads(1)
    print(f"data: {args.data or 'built-in synthetic'}; seeds {','.join(map(str, args.seeds))}; full recipe")
    print(row("reading / seed", {c: c for c in COLUMNS}))
    results = {}
    for name in args.readings.split(","):
        folder = train_reading(name, READINGS[name], args)
        seeds = [diagnose_seed(folder, seed, args) for seed in args.seeds]
        for s in seeds:
            print(row(f"{name} {s['seed']}", {c: f"{s[c]:.4f}" for c in COLUMNS}), flush=True)
        summary = {c: (statistics.mean(s[c] for s in seeds),
                       statistics.stdev(s[c] for s in seeds) if len(seeds) > 1 else 0.0) for c in COLUMNS}
        print(row(f"{name} mean ± std", {c: f"{m:.4f} ± {s:.4f}" for c, (m, s) in summary.items()}), flush=True)
        results[name] = {"overrides": READINGS[name], "seeds": seeds, "summary": summary}
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
