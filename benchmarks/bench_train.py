"""Seconds per training epoch and peak memory of sgmt-tav and its twin sgmt-tav-ann.

Synthetic data shaped like CH-SIMS as it really is: sequence lengths 39/400/55
(text, audio, vision), feature dims 768/33/709, 1368 training and 456
validation samples. One epoch is one pass of Adam over the training split plus
one evaluation pass over the validation split, exactly as ``snn-msa train``
runs it (same loop functions, the entry's default recipe: batch 32, grad clip 1).

Each (model, device, threads) case runs in a fresh subprocess so its peak
memory is its own: on CPU the peak resident set size (``ru_maxrss``, data
included), on GPU ``torch.cuda.max_memory_allocated``. Nothing is asserted.

    python benchmarks/bench_train.py                   # CPU (and GPU when there is one), 1 epoch
    python benchmarks/bench_train.py --epochs 2 --threads 1,2 --wait-policy active,passive
    python benchmarks/bench_train.py --train-size 256  # a quicker look
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time

MODELS = ("sgmt-tav", "sgmt-tav-ann")
SIMS_SIZES = (1368, 456, 457)


def one_case(model_name: str, device_name: str, threads: int, epochs: int, sizes: tuple[int, int, int],
             backend: str | None = None) -> dict:
    """Train ``epochs`` epochs of one model in this process and measure them.

    ``backend`` sets the connected neuron's backend (None: the entry's default, ``auto``).
    """
    import torch

    from snn_msa.data import load_dataset
    from snn_msa.registry import create_model, get_card
    from snn_msa.training.loop import evaluate, train_epoch
    from snn_msa.training.trainer import seed_everything

    torch.set_num_threads(threads)
    device = torch.device(device_name)
    data = load_dataset(None, "sims", synthetic_sizes=sizes)
    data_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    recipe = get_card(model_name).recipe_for("sims")
    seed_everything(1111)
    model = create_model(model_name, feature_dims=data.feature_dims, backend=backend).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=recipe.lr, weight_decay=recipe.weight_decay)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize()

    train_times, valid_times = [], []
    for epoch in range(1, epochs + 1):
        sync()
        start = time.perf_counter()
        batches = data.splits["train"].loader(recipe.batch_size, shuffle=True, seed=1111, epoch=epoch)
        train_epoch(model, batches, optimizer, device, recipe.grad_clip)
        sync()
        middle = time.perf_counter()
        evaluate(model, data.splits["valid"].loader(recipe.batch_size), device)
        sync()
        train_times.append(middle - start)
        valid_times.append(time.perf_counter() - middle)
    peak = (torch.cuda.max_memory_allocated() / 2**20 if device.type == "cuda"
            else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    return {
        "model": model_name,
        "backend": model.config.neuron.backend if model.config.spiking else None,
        "device": device_name,
        "gpu": torch.cuda.get_device_name() if device.type == "cuda" else None,
        "threads": threads,
        "epochs": epochs,
        "train_size": sizes[0],
        "valid_size": sizes[1],
        # The first epoch carries one-off costs (oneDNN kernel selection); report the later ones when there are any.
        "train_s": min(train_times[1:] or train_times),
        "valid_s": min(valid_times[1:] or valid_times),
        "first_epoch_s": train_times[0] + valid_times[0],
        "peak_mib": peak,
        "data_rss_mib": data_rss,
        "parameters": sum(p.numel() for p in model.parameters()),
        "torch": torch.__version__,
    }


def run_case(model: str, device: str, threads: int, epochs: int, sizes, wait_policy: str | None = None) -> dict:
    """``one_case`` in a fresh interpreter (so peak memory is per case, and OpenMP reads ``wait_policy``)."""
    args = [sys.executable, __file__, "--one", model, "--device", device, "--threads", str(threads),
            "--epochs", str(epochs), "--train-size", str(sizes[0]), "--valid-size", str(sizes[1])]
    env = dict(os.environ)
    if wait_policy:
        env["OMP_WAIT_POLICY"] = wait_policy.upper()
    done = subprocess.run(args, capture_output=True, text=True, check=False, env=env)
    if done.returncode != 0:
        raise SystemExit(f"case {model} {device} {threads} failed:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=1, help="epochs per case (the fastest after the first is reported)")
    parser.add_argument("--threads", default=None,
                        help="CPU thread counts to compare, e.g. 1,2 (default: 1, the trainer's, and torch's default)")
    parser.add_argument("--train-size", type=int, default=SIMS_SIZES[0])
    parser.add_argument("--valid-size", type=int, default=SIMS_SIZES[1])
    parser.add_argument("--device", default=None, help="cpu or cuda (default: cpu, and cuda when available)")
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--wait-policy", default=None,
                        help="OpenMP wait policies to compare, e.g. active,passive (default: the environment's)")
    parser.add_argument("--one", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--backend", default=None, help=argparse.SUPPRESS)  # with --one: the connected neuron's
    args = parser.parse_args()
    sizes = (args.train_size, args.valid_size, 1)

    import torch

    if args.one:
        threads = int(args.threads) if args.threads else torch.get_num_threads()
        print(json.dumps(one_case(args.one, args.device or "cpu", threads, args.epochs, sizes, args.backend)))
        return

    devices = [args.device] if args.device else ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    # snn-msa train uses 1 thread by default; torch's own default is one per physical core.
    thread_counts = [int(t) for t in args.threads.split(",")] if args.threads else sorted({1, torch.get_num_threads()})
    print(f"SIMS-shaped synthetic data: lengths 39/400/55, dims 768/33/709, {sizes[0]} train + {sizes[1]} valid samples; "
          f"batch 32; torch {torch.__version__}; {os.cpu_count()} CPUs")
    policies = args.wait_policy.split(",") if args.wait_policy else [os.environ.get("OMP_WAIT_POLICY", "")]
    header = f"{'model':<13} {'device':<6} {'thr':>3} {'omp wait':>8} {'train s':>8} {'valid s':>8} {'epoch s':>8} {'1st s':>7} {'peak MiB':>9}"
    print(header)
    print("-" * len(header))
    rows = []
    cases = [(d, t, p) for d in devices for t in (thread_counts if d == "cpu" else thread_counts[:1])
             for p in (policies if d == "cpu" else policies[:1])]
    for device, threads, policy in cases:
        for model in args.models.split(","):
            row = run_case(model, device, threads, args.epochs, sizes, policy)
            row["wait_policy"] = policy or "default"
            rows.append(row)
            epoch = row["train_s"] + row["valid_s"]
            print(f"{model:<13} {device:<6} {threads:>3} {row['wait_policy']:>8} {row['train_s']:>8.1f} "
                  f"{row['valid_s']:>8.1f} {epoch:>8.1f} {row['first_epoch_s']:>7.1f} {row['peak_mib']:>9.0f}", flush=True)
    by = {(r["model"], r["device"], r["threads"], r["wait_policy"]): r for r in rows}
    for device, threads, policy in cases:
        key = (device, threads, policy or "default")
        snn, ann = by.get((MODELS[0], *key)), by.get((MODELS[1], *key))
        if snn and ann:
            ratio = (snn["train_s"] + snn["valid_s"]) / (ann["train_s"] + ann["valid_s"])
            print(f"{device}, {threads} threads, OpenMP wait {key[2]}: sgmt-tav epoch / sgmt-tav-ann epoch = {ratio:.2f}")
    print(f"load average at the end: {os.getloadavg()[0]:.1f} (other processes on the machine slow every figure)")
    print("peak: CPU = peak resident set of the process (data included), GPU = torch.cuda.max_memory_allocated")


if __name__ == "__main__":
    main()
