"""Time the spiking neurons: every ConnectedLIF backend and SpikingJelly's LIFNode.

For each shape (T, B, F) it times the forward alone and forward + backward, takes
the median over ``--repeat`` runs after one warm-up, and prints a table with the
speed-up against the ``reference`` backend measured in the same run. On the CPU
it also times the ``torch`` backend at several thread counts, and once with its
loop on all intra-op threads ("torch-all-threads") instead of one, because the
loop over T runs many tiny ops and each forked op waits for all its threads.

Examples:

    python benchmarks/bench_neurons.py                       # CPU, all cores
    python benchmarks/bench_neurons.py --threads 1 --repeat 7
    python benchmarks/bench_neurons.py --device cuda --json gpu_results/bench.json
    python benchmarks/bench_neurons.py --shape 100,8,64 --shape 200,8,64

``LIFNode`` has no recurrence: its row is the floor a connected neuron is compared
against, not the same computation.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import torch
from spikingjelly.activation_based import neuron, surrogate

from snn_msa.neurons import ConnectedLIF, connected_lif_torch
from snn_msa.neurons.connected_lif_cupy import cupy_unavailable_reason

DEFAULT_SHAPES = [(50, 64, 128), (400, 32, 128), (925, 32, 64)]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument("--threads", type=int, default=None, help="intra-op threads (default: torch's default)")
    parser.add_argument("--repeat", type=int, default=5, help="timed runs per measurement; the median is reported")
    parser.add_argument("--json", dest="json_", type=Path, default=None, help="also write the results here")
    parser.add_argument(
        "--shape", action="append", default=None, metavar="T,B,F",
        help="a shape to time (repeatable; default: 50,64,128 400,32,128 925,32,64)",
    )
    parser.add_argument("--strength", type=float, default=0.01, help="ConnectedLIF recurrent strength")
    parser.add_argument(
        "--thread-sweep", default="1,2", metavar="N,N",
        help="on the CPU, also time the torch backend at these thread counts ('' to skip)",
    )
    return parser.parse_args(argv)


def synchronize(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def median_ms(fn, device: str, repeat: int) -> float:
    fn()  # warm-up: CuPy compiles its kernels on the first call
    synchronize(device)
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        synchronize(device)
        times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times)


def make_neuron(name: str, features: int, strength: float, device: str) -> torch.nn.Module:
    if name == "torch-all-threads":
        return ConnectedLIF(features, strength=strength, seed=0, backend="torch").to(device)
    if name == "spikingjelly":
        return neuron.LIFNode(
            tau=2.0, decay_input=True, v_threshold=1.0, v_reset=0.0,
            surrogate_function=surrogate.ATan(), step_mode="m",
        ).to(device)
    return ConnectedLIF(features, strength=strength, seed=0, backend=name).to(device)


def time_neuron(module: torch.nn.Module, x: torch.Tensor, weights: torch.Tensor, device: str, repeat: int) -> dict:
    def forward():
        if hasattr(module, "reset"):
            module.reset()
        with torch.no_grad():
            return module(x)

    def forward_backward():
        if hasattr(module, "reset"):
            module.reset()
        xg = x.detach().requires_grad_(True)
        (module(xg) * weights).sum().backward()

    rate = float(forward().float().mean())
    return {
        "forward_ms": median_ms(forward, device, repeat),
        "forward_backward_ms": median_ms(forward_backward, device, repeat),
        "firing_rate": rate,
    }


def device_name(device: str) -> str:
    if device == "cuda":
        return torch.cuda.get_device_name()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "cpu"


def backends_for(device: str) -> list[str]:
    names = ["reference", "torch"]
    if device == "cuda" and cupy_unavailable_reason() is None:
        names.append("cupy")
    names.append("spikingjelly")
    if device == "cpu":
        names.append("torch-all-threads")
    return names


def run(args: argparse.Namespace) -> dict:
    if args.device == "cuda" and not torch.cuda.is_available():
        sys.exit("--device cuda: torch sees no CUDA device.")
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    threads = torch.get_num_threads()
    shapes = [tuple(int(v) for v in s.split(",")) for s in args.shape] if args.shape else DEFAULT_SHAPES
    sweep = [int(v) for v in args.thread_sweep.split(",") if v] if args.device == "cpu" else []
    rows = []
    for T, B, F in shapes:
        torch.manual_seed(0)
        x = (torch.randn(T, B, F) * 0.8 + 0.5).to(args.device)
        weights = torch.randn(T, B, F).to(args.device)
        for name in backends_for(args.device):
            module = make_neuron(name, F, args.strength, args.device)
            pinned = connected_lif_torch.SINGLE_THREAD_MAX_MACS
            if name == "torch-all-threads":
                connected_lif_torch.SINGLE_THREAD_MAX_MACS = -1
            try:
                timing = time_neuron(module, x, weights, args.device, args.repeat)
            finally:
                connected_lif_torch.SINGLE_THREAD_MAX_MACS = pinned
            rows.append({"neuron": name, "T": T, "B": B, "F": F, "threads": threads, **timing})
            print(f"  timed {name} at {T}x{B}x{F}", file=sys.stderr, flush=True)
        for n in sweep:
            if n == threads:
                continue
            torch.set_num_threads(n)
            module = make_neuron("torch", F, args.strength, args.device)
            rows.append({"neuron": "torch", "T": T, "B": B, "F": F, "threads": n,
                         **time_neuron(module, x, weights, args.device, args.repeat)})
            torch.set_num_threads(threads)
    for row in rows:
        ref = next(r for r in rows if r["neuron"] == "reference" and (r["T"], r["B"], r["F"]) == (row["T"], row["B"], row["F"]))
        row["forward_speedup"] = ref["forward_ms"] / row["forward_ms"]
        row["forward_backward_speedup"] = ref["forward_backward_ms"] / row["forward_backward_ms"]
    return {
        "command": "python " + " ".join([Path(sys.argv[0]).as_posix(), *sys.argv[1:]]),
        "device": args.device,
        "device_name": device_name(args.device),
        "threads": threads,
        "cpu_count": os.cpu_count(),
        "load_average_1min": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
        "torch": torch.__version__,
        "repeat": args.repeat,
        "strength": args.strength,
        "rows": rows,
    }


def table(result: dict) -> str:
    lines = [
        f"device: {result['device']} ({result['device_name']}), threads: {result['threads']} "
        f"of {result['cpu_count']} cores, torch {result['torch']}, median of {result['repeat']}, "
        f"strength {result['strength']}, load average {result['load_average_1min']}",
        "speed-up = reference time / this time, same run; threads = torch.get_num_threads() of the process "
        "(the torch backend runs its loop on one of them at these sizes; torch-all-threads on all)",
        "",
        "| T x B x F | neuron | threads | forward ms | fwd+bwd ms | fwd speed-up | fwd+bwd speed-up | firing rate |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in result["rows"]:
        lines.append(
            f"| {r['T']}x{r['B']}x{r['F']} | {r['neuron']} | {r['threads']} | {r['forward_ms']:.1f} | "
            f"{r['forward_backward_ms']:.1f} | {r['forward_speedup']:.2f} | {r['forward_backward_speedup']:.2f} | "
            f"{r['firing_rate']:.3f} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    result = run(args)
    print(table(result))
    if args.json_ is not None:
        args.json_.parent.mkdir(parents=True, exist_ok=True)
        args.json_.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
