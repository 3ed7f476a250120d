"""Seconds per training epoch on a GPU: sgmt-tav on the CuPy backend, on the torch backend, and its twin.

The three cases answer the GPU performance questions in one run: what the CuPy
kernel saves in training against the torch backend's loop of small ops (both
sgmt-tav, only the connected neuron's backend differs), and what sgmt-tav costs
against its non-spiking twin sgmt-tav-ann. Each case is one run of
``bench_train.py --one`` (the loop functions of ``snn-msa train``, the entry's
recipe: Adam, batch 32, grad clip 1) in a fresh process on SIMS-shaped synthetic
data (lengths 39/400/55, so the fusion neuron runs T = 494 steps), with its own
time limit. The first epoch carries one-off costs (CuPy's NVRTC compile,
SpikingJelly's Triton compile, cuDNN's choices); the figures are of the fastest
later epoch, and the first is reported apart.

SpikingJelly runs its LIF on CUDA through Triton when Triton imports. When a
spiking case fails with Triton in its traceback, it is run once more with
``SJ_LIF_CUDA_IMPLEMENTATION=torch`` (SpikingJelly's torch reference loop), so the
comparison of the connected neuron's backends still comes out; the row says so
(``sj_lif``) and keeps the first error (``first_error``).

A case that fails or runs out of time is kept with its error and the others still
run. The JSON file is rewritten after every case, so a run stopped early
(``timeout -s INT``) leaves every result it got. Exit status 1 when any case
failed or the run was stopped, else 0.

    python benchmarks/bench_gpu_train.py --json gpu_results/bench_gpu_train.json
    python benchmarks/bench_gpu_train.py --train-size 1368 --valid-size 456   # a whole SIMS epoch
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

#: (model, connected-neuron backend) per case, in the order they run; None: the twin has no spiking neuron.
CASES = (("sgmt-tav", "cupy"), ("sgmt-tav", "torch"), ("sgmt-tav-ann", None))
BATCH_SIZE = 32  # the zoo recipe's, which bench_train.one_case uses
BENCH_TRAIN = Path(__file__).resolve().with_name("bench_train.py")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda", help="torch device (default: cuda)")
    parser.add_argument("--epochs", type=int, default=2, help="epochs per case; the fastest after the first is reported")
    parser.add_argument("--train-size", type=int, default=512, help="synthetic training samples (default 512: 16 batches)")
    parser.add_argument("--valid-size", type=int, default=128, help="synthetic validation samples")
    parser.add_argument("--threads", type=int, default=1, help="CPU intra-op threads of each case (snn-msa train's default)")
    parser.add_argument("--case-timeout", type=float, default=150.0, help="seconds one case may run")
    parser.add_argument("--budget", type=float, default=None, help="seconds all cases may run together (default: no limit)")
    parser.add_argument("--json", dest="json_", type=Path, default=None, help="also write the results here")
    return parser.parse_args(argv)


def case_command(model: str, backend: str | None, args: argparse.Namespace) -> list[str]:
    """The ``bench_train.py --one`` command line of one case."""
    command = [sys.executable, str(BENCH_TRAIN), "--one", model, "--device", args.device,
               "--threads", str(args.threads), "--epochs", str(args.epochs),
               "--train-size", str(args.train_size), "--valid-size", str(args.valid_size)]
    return command + (["--backend", backend] if backend else [])


def last_line(text: str) -> str:
    """The last non-empty line of a process's output (a traceback's exception line)."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1][:400] if lines else "(no output)"


def run_case(model: str, backend: str | None, args: argparse.Namespace, timeout: float, sj_lif: str = "auto") -> dict:
    """One case in a fresh process: its measurements, or ``error`` when it failed or timed out.

    ``sj_lif`` is SpikingJelly's choice of LIF implementation on CUDA (``auto``: its own, Triton first).
    """
    row: dict = {"model": model, "backend": backend, "sj_lif": sj_lif}
    env = dict(os.environ)
    if sj_lif != "auto":
        env["SJ_LIF_CUDA_IMPLEMENTATION"] = sj_lif
    start = time.perf_counter()
    try:
        done = subprocess.run(case_command(model, backend, args), capture_output=True, text=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired:
        row["error"] = f"timed out after {timeout:.0f} s"
    else:
        if done.returncode != 0:
            row["error"] = f"exit {done.returncode}: {last_line(done.stderr or done.stdout)}"
            row["triton_in_traceback"] = "triton" in done.stderr.lower()
        else:
            measured = json.loads(last_line(done.stdout))
            measured.pop("backend", None)
            row.update(measured)
            row["epoch_s"] = row["train_s"] + row["valid_s"]
            row["train_ms_per_batch"] = 1e3 * row["train_s"] / math.ceil(row["train_size"] / BATCH_SIZE)
    row["wall_s"] = time.perf_counter() - start
    return row


def ratios(rows: list[dict]) -> dict[str, float]:
    """Epoch-time ratios between the cases that ran (the two backends only on the same SpikingJelly LIF)."""
    ran = {(r["model"], r["backend"]): r for r in rows if "error" not in r}
    cupy, torch_, twin = ran.get(("sgmt-tav", "cupy")), ran.get(("sgmt-tav", "torch")), ran.get(("sgmt-tav-ann", None))
    found = {}
    if cupy and torch_ and cupy["sj_lif"] == torch_["sj_lif"]:
        found["torch_backend_over_cupy_backend"] = torch_["epoch_s"] / cupy["epoch_s"]
    if cupy and twin:
        found["cupy_backend_over_twin"] = cupy["epoch_s"] / twin["epoch_s"]
    if torch_ and twin:
        found["torch_backend_over_twin"] = torch_["epoch_s"] / twin["epoch_s"]
    return found


def summary_line(result: dict) -> str:
    """One line: seconds per epoch of each case (or that it failed), and the ratios."""
    cases = [f"{r['model']}{'/' + r['backend'] if r['backend'] else ''} "
             + (f"{r['epoch_s']:.2f} s" if "error" not in r else "failed") for r in result["rows"]]
    ratios_text = ", ".join(f"{name} {value:.2f}" for name, value in result["ratios"].items())
    line = "epoch: " + (", ".join(cases) or "no case ran") + (f"; {ratios_text}" if ratios_text else "")
    return line + (f"; {result['error']}" if "error" in result else "")


def run(args: argparse.Namespace) -> dict:
    """Run every case in order; the result so far is written to ``--json`` after each case."""
    from snn_msa.atomic import write_atomic

    result = {
        "command": "python " + " ".join([Path(sys.argv[0]).as_posix(), *sys.argv[1:]]),
        "device": args.device, "epochs": args.epochs, "train_size": args.train_size,
        "valid_size": args.valid_size, "batch_size": BATCH_SIZE, "threads": args.threads,
        "complete": False, "rows": [], "ratios": {},
    }

    def save() -> None:
        result["ratios"] = ratios(result["rows"])
        result["failed_rows"] = sum("error" in r for r in result["rows"])
        result["summary"] = summary_line(result)
        if args.json_ is not None:
            write_atomic(args.json_, json.dumps(result, indent=2) + "\n")

    import torch

    result["torch"] = torch.__version__
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        result["error"] = f"--device {args.device}: torch sees no CUDA device"
        save()
        return result
    deadline = time.perf_counter() + args.budget if args.budget else math.inf
    try:
        for model, backend in CASES:
            timeout = min(args.case_timeout, deadline - time.perf_counter())
            if timeout < 10:
                row = {"model": model, "backend": backend, "error": "not run: the time budget was spent"}
            else:
                print(f"  training {model} ({backend or 'no spiking neuron'}) ...", file=sys.stderr, flush=True)
                row = run_case(model, backend, args, timeout)
                retry_timeout = min(args.case_timeout, deadline - time.perf_counter())
                if backend and row.get("triton_in_traceback") and retry_timeout >= 10:
                    print(f"  again with SpikingJelly's torch LIF: {row['error']}", file=sys.stderr, flush=True)
                    first_error = row["error"]
                    row = run_case(model, backend, args, retry_timeout, sj_lif="torch")
                    row["first_error"] = first_error
            result["rows"].append(row)
            save()
        result["complete"] = True
    except KeyboardInterrupt:
        result["error"] = "stopped before every case ran (interrupted)"
    save()
    return result


def table(result: dict) -> str:
    lines = [
        f"device {result['device']}, torch {result.get('torch')}; SIMS-shaped synthetic data (lengths 39/400/55), "
        f"{result['train_size']} train + {result['valid_size']} valid samples, batch {result['batch_size']}, "
        f"{result['epochs']} epochs per case (fastest after the first reported)",
        "",
        "| model | backend | SpikingJelly LIF | epoch s | train s | valid s | train ms/batch | first epoch s | peak MiB |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in result["rows"]:
        name = f"| {r['model']} | {r['backend'] or '-'} | {r.get('sj_lif', 'auto') if r['backend'] else '-'} |"
        if "error" in r:
            lines.append(f"{name} FAILED: {r['error']} | | | | | |")
        else:
            lines.append(f"{name} {r['epoch_s']:.2f} | {r['train_s']:.2f} | {r['valid_s']:.2f} | "
                         f"{r['train_ms_per_batch']:.0f} | {r['first_epoch_s']:.1f} | {r['peak_mib']:.0f} |")
    lines += [f"first try of {r['model']} ({r['backend']}) failed: {r['first_error']}" for r in result["rows"] if "first_error" in r]
    lines += [""] + [f"{name}: {value:.2f}" for name, value in result["ratios"].items()]
    if "error" in result:
        lines += ["", f"NOT COMPLETE: {result['error']}"]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Run, print the table; 1 when a case failed or the run did not complete, else 0."""
    result = run(parse_args(argv))
    print(table(result), flush=True)
    return 0 if result["complete"] and not result["failed_rows"] else 1


if __name__ == "__main__":
    sys.exit(main())
