"""Firing rate over scale1 of a trained sgmt-tav, beside the paper's Table 4, for several readings of the paper.

For each reading (a set of model overrides for a choice the paper leaves open)
and each scale1, trains ``sgmt-tav`` with the entry's recipe (Adam, lr, batch,
grad clip) for ``--epochs`` epochs, keeps the epoch with the lowest validation
MAE of M, and reports on the test split: the firing rate over valid positions,
MAE, Corr, and the knock-out (MAE and Corr with every spike set to zero).
Nothing is asserted; the figures go to docs/experiments.md.

    python benchmarks/firing_curve.py --epochs 4                       # built-in synthetic data
    python benchmarks/firing_curve.py --epochs 4 --data other.pkl --dataset sims
    python benchmarks/firing_curve.py --readings default,vth0.5 --scale1 0.5,1 --json out.json
"""

from __future__ import annotations

import argparse
import copy
import json
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from snn_msa.data import MSADataset

PAPER_TABLE4_RATE = {0.5: 0.03, 1.0: 0.08, 2.0: 0.10, 3.0: 0.11}  # strength 0.01 row of Table 4
READINGS = {
    "default": {},
    "vth0.5": {"v_threshold": 0.5},
    "linear-projection": {"conv_kernel": 1},
    "tau1.5": {"tau": 1.5},
}


def run_cell(dataset: MSADataset, overrides: dict, epochs: int, seed: int) -> dict:
    import torch

    from snn_msa.diagnosis import spike_diagnosis
    from snn_msa.registry import create_model, get_card
    from snn_msa.training.loop import evaluate, train_epoch
    from snn_msa.training.trainer import seed_everything

    recipe = get_card("sgmt-tav").recipe_for("sims").as_dict()
    seed_everything(seed)
    model = create_model("sgmt-tav", feature_dims=dataset.feature_dims, **overrides)
    optimizer = torch.optim.Adam(model.parameters(), lr=recipe["lr"], weight_decay=recipe["weight_decay"])
    device = torch.device("cpu")
    best, best_state = float("inf"), None
    start = time.perf_counter()
    for epoch in range(1, epochs + 1):
        batches = dataset.splits["train"].loader(recipe["batch_size"], shuffle=True, seed=seed, epoch=epoch)
        train_epoch(model, batches, optimizer, device, grad_clip=recipe["grad_clip"])
        valid = evaluate(model, dataset.splits["valid"].loader(recipe["batch_size"]), device)
        if valid.loss < best:
            best, best_state = valid.loss, copy.deepcopy(model.state_dict())
    model.load_state_dict(best_state)
    report = spike_diagnosis(model, dataset.splits["test"], dataset.profile.name, batch_size=recipe["batch_size"])
    return {
        "overrides": overrides,
        "firing_rate": report["firing_rate"],
        "layer_rates": {k: v["firing_rate"] for k, v in report["layers"].items()},
        "MAE": report["metrics"]["MAE"], "Corr": report["metrics"]["Corr"],
        "knocked_out_MAE": report["knocked_out_metrics"]["MAE"],
        "knocked_out_Corr": report["knocked_out_metrics"]["Corr"],
        "seconds": time.perf_counter() - start,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--scale1", default="0.5,1,2,3")
    parser.add_argument("--strength", type=float, default=0.01)
    parser.add_argument("--readings", default="default,vth0.5,linear-projection")
    parser.add_argument("--data", default=None, help="an MMSA feature file [default: built-in synthetic data]")
    parser.add_argument("--dataset", default="sims")
    parser.add_argument("--seed", type=int, default=1111)
    parser.add_argument("--json", default=None, help="also write every figure to this JSON file")
    args = parser.parse_args()

    import torch

    from snn_msa.data import load_dataset

    torch.set_num_threads(1)
    dataset = load_dataset(args.data, args.dataset, seed=0)
    print(f"data: {dataset.source}; {args.epochs} epochs per cell, strength {args.strength}, seed {args.seed}")
    print(f"{'reading':<18} {'scale1':>6} {'rate':>7} {'paper':>6} {'MAE':>7} {'Corr':>7} {'MAE KO':>7} {'Corr KO':>7} {'s':>5}")
    results = []
    for reading in args.readings.split(","):
        for scale1 in (float(s) for s in args.scale1.split(",")):
            overrides = {**READINGS[reading], "scale1": scale1, "strength": args.strength}
            cell = run_cell(dataset, overrides, args.epochs, args.seed)
            cell.update(reading=reading, scale1=scale1, paper_rate=PAPER_TABLE4_RATE.get(scale1))
            results.append(cell)
            paper = "-" if cell["paper_rate"] is None else f"{cell['paper_rate']:.2f}"
            print(f"{reading:<18} {scale1:>6g} {cell['firing_rate']:>7.4f} {paper:>6} {cell['MAE']:>7.4f} "
                  f"{cell['Corr']:>7.4f} {cell['knocked_out_MAE']:>7.4f} {cell['knocked_out_Corr']:>7.4f} "
                  f"{cell['seconds']:>5.0f}", flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"data": dataset.source, "epochs": args.epochs, "results": results}, f, indent=2)


if __name__ == "__main__":
    main()
