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

A row that fails (a kernel that does not compile, SpikingJelly's Triton path, CuPy
missing on ``--device cuda``) is kept as a row with its error, and the others still
run. The JSON file is rewritten after every row, so a run stopped early (Ctrl-C,
``timeout -s INT``) leaves every result it got. The exit status is 1 when any row
failed or the run was stopped, else 0.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
import traceback
from pathlib import Path

import torch
from spikingjelly.activation_based import neuron, surrogate

from snn_msa.atomic import write_atomic
from snn_msa.neurons import ConnectedLIF, connected_lif_torch
from snn_msa.neurons.connected_lif_cupy import kernel_unavailable_reason

DEFAULT_SHAPES = [(50, 64, 128), (400, 32, 128), (925, 32, 64)]
#: Also timed on CUDA: sgmt-tav's fusion neuron on SIMS (39 + 400 + 55 steps, batch 32, width 64) and wide layers.
CUDA_EXTRA_SHAPES = [(494, 32, 64), (50, 64, 256), (50, 64, 768)]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument("--threads", type=int, default=None, help="intra-op threads (default: torch's default)")
    parser.add_argument("--repeat", type=int, default=5, help="timed runs per measurement; the median is reported")
    parser.add_argument("--json", dest="json_", type=Path, default=None, help="also write the results here")
    parser.add_argument(
        "--shape", action="append", default=None, metavar="T,B,F",
        help="a shape to time (repeatable; default: 50,64,128 400,32,128 925,32,64, and on cuda also "
        "494,32,64 50,64,256 50,64,768)",
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
    """The rows of one shape. On CUDA the cupy row is always there: where CuPy cannot run, it fails."""
    names = ["reference", "torch"]
    if device == "cuda":
        names.append("cupy")
    names.append("spikingjelly")
    if device == "cpu":
        names.append("torch-all-threads")
    return names


def time_row(name: str, x: torch.Tensor, weights: torch.Tensor, args: argparse.Namespace) -> dict:
    """Time one backend at one shape; raises what the backend raises."""
    if name == "cupy":
        reason = kernel_unavailable_reason(x.device.index or 0)
        if reason is not None:
            raise RuntimeError(reason)
    module = make_neuron(name, x.shape[-1], args.strength, args.device)
    pinned = connected_lif_torch.SINGLE_THREAD_MAX_MACS
    if name == "torch-all-threads":
        connected_lif_torch.SINGLE_THREAD_MAX_MACS = -1
    try:
        return time_neuron(module, x, weights, args.device, args.repeat)
    finally:
        connected_lif_torch.SINGLE_THREAD_MAX_MACS = pinned


def failure(error: BaseException) -> str:
    """One line for a failed row: the exception and where it was raised."""
    frame = traceback.extract_tb(error.__traceback__)[-1] if error.__traceback__ else None
    where = f" at {Path(frame.filename).name}:{frame.lineno}" if frame else ""
    message = " ".join(str(error).split())
    return f"{type(error).__name__}{where}: {message[:300]}"


def add_speedups(rows: list[dict]) -> None:
    """Speed-up of every timed row against the reference row of its shape (None where either failed)."""
    for row in rows:
        ref = next((r for r in rows if r["neuron"] == "reference" and "error" not in r
                    and (r["T"], r["B"], r["F"]) == (row["T"], row["B"], row["F"])), None)
        timed = ref is not None and "error" not in row
        row["forward_speedup"] = ref["forward_ms"] / row["forward_ms"] if timed else None
        row["forward_backward_speedup"] = ref["forward_backward_ms"] / row["forward_backward_ms"] if timed else None


def summary_line(result: dict) -> str:
    """One line: rows run and failed, and the cupy speed-ups over the torch backend (forward + backward)."""
    rows = result["rows"]
    line = f"{len(rows)} rows, {result['failed_rows']} failed"
    speedups = []
    for r in rows:
        torch_row = next((t for t in rows if t["neuron"] == "torch" and "error" not in t
                          and (t["T"], t["B"], t["F"]) == (r["T"], r["B"], r["F"])), None)
        if r["neuron"] == "cupy" and "error" not in r and torch_row is not None:
            speedups.append(f"{r['T']}x{r['B']}x{r['F']} {torch_row['forward_backward_ms'] / r['forward_backward_ms']:.1f}")
    line += f"; cupy fwd+bwd speed-up over torch: {', '.join(speedups)}" if speedups else ""
    return line + (f"; {result['error']}" if "error" in result else "")


def run(args: argparse.Namespace) -> dict:
    """Time every row; the result (rows so far) is written to ``--json`` after each row."""
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    threads = torch.get_num_threads()
    result = {
        "command": "python " + " ".join([Path(sys.argv[0]).as_posix(), *sys.argv[1:]]),
        "device": args.device,
        "device_name": None,
        "threads": threads,
        "cpu_count": os.cpu_count(),
        "load_average_1min": None,
        "torch": torch.__version__,
        "repeat": args.repeat,
        "strength": args.strength,
        "complete": False,
        "rows": [],
        "failed_rows": 0,
    }
    rows = result["rows"]

    def save() -> None:
        add_speedups(rows)
        result["failed_rows"] = sum("error" in r for r in rows)
        result["summary"] = summary_line(result)
        result["load_average_1min"] = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
        if args.json_ is not None:
            write_atomic(args.json_, json.dumps(result, indent=2) + "\n")

    if args.device == "cuda" and not torch.cuda.is_available():
        result["error"] = "--device cuda: torch sees no CUDA device"
        save()
        return result
    result["device_name"] = device_name(args.device)
    if args.shape:
        shapes = [tuple(int(v) for v in s.split(",")) for s in args.shape]
    else:
        shapes = DEFAULT_SHAPES + (CUDA_EXTRA_SHAPES if args.device == "cuda" else [])
    sweep = [int(v) for v in args.thread_sweep.split(",") if v] if args.device == "cpu" else []
    try:
        for T, B, F in shapes:
            torch.manual_seed(0)
            x = (torch.randn(T, B, F) * 0.8 + 0.5).to(args.device)
            weights = torch.randn(T, B, F).to(args.device)
            cases = [(name, threads) for name in backends_for(args.device)]
            cases += [("torch", n) for n in sweep if n != threads]
            for name, n in cases:
                row = {"neuron": name, "T": T, "B": B, "F": F, "threads": n}
                torch.set_num_threads(n)
                try:
                    row.update(time_row(name, x, weights, args))
                    print(f"  timed {name} at {T}x{B}x{F}", file=sys.stderr, flush=True)
                except Exception as error:  # one failing backend must not cost the other rows
                    row["error"] = failure(error)
                    print(f"  FAILED {name} at {T}x{B}x{F}: {row['error']}", file=sys.stderr, flush=True)
                finally:
                    torch.set_num_threads(threads)
                rows.append(row)
                save()
        result["complete"] = True
    except KeyboardInterrupt:
        result["error"] = "stopped before every row ran (interrupted)"
        print("  interrupted: writing the rows so far", file=sys.stderr, flush=True)
    save()
    return result


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
        shape = f"{r['T']}x{r['B']}x{r['F']}"
        if "error" in r:
            lines.append(f"| {shape} | {r['neuron']} | {r['threads']} | FAILED: {r['error']} | | | | |")
            continue
        speedups = [f"{v:.2f}" if v is not None else "n/a" for v in (r["forward_speedup"], r["forward_backward_speedup"])]
        lines.append(
            f"| {shape} | {r['neuron']} | {r['threads']} | {r['forward_ms']:.1f} | "
            f"{r['forward_backward_ms']:.1f} | {speedups[0]} | {speedups[1]} | {r['firing_rate']:.3f} |"
        )
    if "error" in result:
        lines += ["", f"NOT COMPLETE: {result['error']}"]
    if result["failed_rows"]:
        lines += ["", f"{result['failed_rows']} of {len(result['rows'])} rows FAILED"]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Run, print the table; 1 when a row failed or the run did not complete, else 0."""
    result = run(parse_args(argv))
    print(table(result), flush=True)
    return 0 if result["complete"] and not result["failed_rows"] else 1


if __name__ == "__main__":
    sys.exit(main())
