"""Data-parallel overhead on the CPU: ``snn-msa train`` in 1 process against ``torchrun`` with N (gloo).

Both runs train sgmt-tav on the same synthetic CH-SIMS-shaped file (written as
an HDF5 store, so each rank reads only its rows), with the same seed, global
batch and recipe, one torch thread per process, and dropout 0 so that the two
runs must agree. It prints, per world size: the wall time of the whole command
(process start, imports and the process-group rendezvous included), the mean
seconds per epoch that results.json records (training pass and validation
pass), the test MAE, and the largest difference of any weight from the
one-process run's last.pt. For scale, a third run is one process with 2 threads:
its float32 sums are taken in another order too, as the ranks' are. Nothing is asserted.

    python benchmarks/bench_ddp.py                          # 1 against 2 processes, 3 epochs
    python benchmarks/bench_ddp.py --train-size 64 --epochs 2 --lr 1e-4
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def run(command: list[str]) -> float:
    """Run ``command`` (one thread per process); return its wall time in seconds."""
    start = time.perf_counter()
    subprocess.run(command, check=True, env={**os.environ, "OMP_NUM_THREADS": "1"}, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def largest_difference(a: Path, b: Path) -> float:
    import torch

    wa = torch.load(a, weights_only=True)["state_dict"]
    wb = torch.load(b, weights_only=True)["state_dict"]
    return max(float((wa[k] - wb[k]).abs().max()) for k in wa)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--processes", type=int, default=2, help="processes of the torchrun run")
    parser.add_argument("--train-size", type=int, default=192, help="training samples (valid and test: a quarter)")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=32, help="the global batch")
    parser.add_argument("--lr", type=float, default=1e-3)
    args = parser.parse_args()

    from snn_msa.data.hdf5_store import write_store
    from snn_msa.data.synthetic import make_synthetic

    snn_msa = str(Path(sys.executable).parent / "snn-msa")
    work = Path(tempfile.mkdtemp(prefix="bench-ddp-"))
    data = work / "sims.h5"
    quarter = max(1, args.train_size // 4)
    write_store(make_synthetic("sims", (args.train_size, quarter, quarter), seed=0), data)
    options = ["train", "--model", "sgmt-tav", "--data", str(data), "--epochs", str(args.epochs), "--patience",
               str(args.epochs), "--batch-size", str(args.batch_size), "--lr", str(args.lr), "--dropout", "0",
               "--device", "cpu", "--quiet"]
    launch = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", str(args.processes)]
    runs = {  # folder: (label, wall seconds)
        "1": ("1 process", run([snn_msa, *options, "--threads", "1", "--out", str(work / "1")])),
        "n": (f"{args.processes} processes",
              run([*launch, snn_msa, *options, "--threads", "1", "--out", str(work / "n")])),
        "t2": ("1 process, 2 threads", run([snn_msa, *options, "--threads", "2", "--out", str(work / "t2")])),
    }

    print(f"sgmt-tav, synthetic CH-SIMS {args.train_size}/{quarter}/{quarter} samples, global batch {args.batch_size}, "
          f"lr {args.lr:g}, {args.epochs} epochs, cpu count {os.cpu_count()}")
    print(f"{'run':<22}  {'wall s':>7}  {'s/epoch':>7}  {'x 1 proc':>8}  {'test MAE':>8}  {'max |dw|':>8}")
    base = None
    for folder, (label, wall) in runs.items():
        results = json.loads((work / folder / "results.json").read_text())
        per_epoch = results["seconds_per_epoch"]["mean"]
        base = per_epoch if base is None else base
        diff = largest_difference(work / "1/seed-1111/last.pt", work / folder / "seed-1111/last.pt")
        print(f"{label:<22}  {wall:>7.1f}  {per_epoch:>7.2f}  {per_epoch / base:>8.2f}  "
              f"{results['test']['mean']['MAE']:>8.5f}  {diff:>8.1e}")
    print(f"(run folders in {work})")


if __name__ == "__main__":
    main()
