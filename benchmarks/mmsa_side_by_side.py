"""Train baselines with our trainer and with MMSA 2.2.1's own code on one file; print both side by side.

For docs/baselines.md. Each model trains once per side with seed 1111 and
MMSA's procedure (its published hyperparameters, early stop after
``--patience`` epochs without a lower validation MAE, 8 in MMSA's configs;
ours with ``--epochs 100`` so that early stopping, not a cap, ends both). Both run on one CPU thread. Time per epoch
is given twice: wall seconds of training plus validation (ours: the trainer's
``seconds_per_epoch``; MMSA: from one validation to the next), and the whole
process's CPU seconds (loading, checkpoints and all) over the epochs run, which
a shared machine disturbs far less. Writes ``OUT/`` and prints a Markdown table.

    OMP_NUM_THREADS=1 python benchmarks/mmsa_side_by_side.py --data sims.pkl \\
        --mmsa-python /tmp/mmsa-venv/bin/python --models lf-dnn,tfn,mult --out /tmp/mmsa-check
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
KEYS = ("Mult_acc_2", "Mult_acc_3", "Mult_acc_5", "F1_score", "MAE", "Corr")


def child_cpu_seconds() -> float:
    """User plus system CPU seconds of the finished child processes so far."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_mmsa(python: str, model: str, data: str, out: Path, patience: int) -> dict:
    """MMSA's own training of ``model`` (MMSA's name: ``lf_dnn``), via benchmarks/mmsa_reference_run.py."""
    target = out / f"mmsa-{model}.json"
    if not target.exists():
        cpu = child_cpu_seconds()
        done = subprocess.run([python, str(HERE / "mmsa_reference_run.py"), "--model", model.replace("-", "_"),
                               "--data", data, "--out", str(out / "mmsa-files"), "--early-stop", str(patience)],
                              capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"}, check=True)
        record = {**json.loads(done.stdout.strip().splitlines()[-1]), "cpu_seconds": child_cpu_seconds() - cpu}
        target.write_text(json.dumps(record))
    record = json.loads(target.read_text())
    cpu = record.get("cpu_seconds")  # absent in a record of an earlier version of this script
    return {"test": record["test"], "epochs": record["epochs"], "seconds_per_epoch": record["seconds_per_epoch"],
            "cpu_per_epoch": None if cpu is None else cpu / record["epochs"]}


def run_ours(model: str, data: str, out: Path, patience: int) -> dict:
    """Our trainer: ``snn-msa train --model MODEL --data DATA --dataset sims --epochs 100 --patience P --seeds 1111``."""
    folder = out / f"ours-{model}"
    if not (folder / "results.json").exists():
        cpu = child_cpu_seconds()
        subprocess.run([str(Path(sys.executable).parent / "snn-msa"), "train", "--model", model, "--data", data, "--dataset", "sims",
                        "--epochs", "100", "--patience", str(patience), "--seeds", "1111", "--out", str(folder), "--overwrite", "--quiet"],
                       check=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
        (folder / "cpu_seconds.json").write_text(json.dumps({"cpu_seconds": child_cpu_seconds() - cpu}))
    results = json.loads((folder / "results.json").read_text())
    seed = results["seeds"][0]
    kept = folder / "cpu_seconds.json"
    cpu = json.loads(kept.read_text())["cpu_seconds"] if kept.exists() else None
    return {"test": seed["test_metrics"], "epochs": seed["epochs_run"], "seconds_per_epoch": seed["seconds_per_epoch"],
            "cpu_per_epoch": None if cpu is None else cpu / seed["epochs_run"]}


def table(rows: list[tuple[str, str, dict]]) -> str:
    """The Markdown table: one line per model and side."""
    lines = ["| model | trainer | " + " | ".join(KEYS) + " | epochs run | wall s / epoch | CPU s / epoch |",
             "|---|---|" + "---|" * len(KEYS) + "---|---|---|"]
    for model, side, r in rows:
        cells = [f"{r['test'][k]:.4f}" for k in KEYS]
        lines.append(f"| {model} | {side} | " + " | ".join(cells)
                     + f" | {r['epochs']} | {r['seconds_per_epoch']:.2f} | "
                     + ("–" if r["cpu_per_epoch"] is None else f"{r['cpu_per_epoch']:.2f}") + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True)
    parser.add_argument("--mmsa-python", required=True, help="the Python of an environment with mmsa==2.2.1")
    parser.add_argument("--models", default="lf-dnn,tfn,mult")
    parser.add_argument("--out", default="/tmp/mmsa-check")
    parser.add_argument("--patience", type=int, default=8, help="early stop after this many epochs without a better "
                        "validation loss, on both sides (MMSA's early_stop; its configs say 8)")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for model in args.models.split(","):
        rows.append((model, "snn-msa", run_ours(model, args.data, out, args.patience)))
        rows.append((model, "MMSA 2.2.1", run_mmsa(args.mmsa_python, model, args.data, out, args.patience)))
        print(table(rows[-2:]).splitlines()[-2:], file=sys.stderr, flush=True)
    print(table(rows))


if __name__ == "__main__":
    main()
