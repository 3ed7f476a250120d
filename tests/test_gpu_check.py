"""The GPU check's parts that must hold without a GPU: failures are reported, never hidden.

- ``pytest --require-gpu`` fails the ``gpu`` tests that cannot run instead of skipping them;
- ``benchmarks/bench_neurons.py`` keeps a failing row as a row, writes every result it
  got (also when stopped), and exits 1;
- ``benchmarks/bench_gpu_train.py`` does the same per case, passes the connected
  neuron's backend through to the model, and retries a Triton failure on
  SpikingJelly's torch LIF.
"""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]


def load_benchmark(name: str):
    """A script of benchmarks/ as a module."""
    spec = importlib.util.spec_from_file_location(f"bench_{name}_under_test", ROOT / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# --- pytest --require-gpu ----------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the behaviour where the gpu tests cannot run")
def test_require_gpu_fails_the_gpu_tests_that_would_skip():
    command = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-m", "gpu",
               "tests/test_neurons.py", "-k", "auto_backend_picks_cupy", "-rs"]
    plain = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)
    required = subprocess.run(command + ["--require-gpu"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert plain.returncode == 0 and "SKIPPED [1]" in plain.stdout
    assert required.returncode == 1, required.stdout
    assert "--require-gpu: this gpu test cannot run here: torch sees no CUDA device" in required.stdout


# --- bench_neurons ----------------------------------------------------------------------------


def bench_neurons_args(tmp_path: Path) -> list[str]:
    return ["--shape", "4,1,3", "--repeat", "1", "--thread-sweep", "", "--json", str(tmp_path / "neurons.json")]


def test_bench_neurons_keeps_a_failing_row_and_the_others(tmp_path, monkeypatch, capsys):
    bench = load_benchmark("bench_neurons")
    real = bench.make_neuron

    def make_neuron(name, *args):
        if name == "torch":
            raise RuntimeError("a compile error\nwith a log")
        return real(name, *args)

    monkeypatch.setattr(bench, "make_neuron", make_neuron)
    assert bench.main(bench_neurons_args(tmp_path)) == 1
    result = json.loads((tmp_path / "neurons.json").read_text())
    rows = {r["neuron"]: r for r in result["rows"]}
    assert list(rows) == ["reference", "torch", "spikingjelly", "torch-all-threads"]
    assert rows["torch"]["error"].startswith("RuntimeError at test_gpu_check.py:")
    assert rows["torch"]["error"].endswith("a compile error with a log")
    assert rows["torch"]["forward_speedup"] is None
    assert rows["spikingjelly"]["forward_ms"] > 0 and rows["reference"]["forward_speedup"] == 1.0
    assert result["complete"] and result["failed_rows"] == 1 and result["summary"] == "4 rows, 1 failed"
    table = capsys.readouterr().out
    assert re.search(r"\| 4x1x3 \| torch \| \d+ \| FAILED: RuntimeError", table) and "1 of 4 rows FAILED" in table


def test_bench_neurons_stopped_early_writes_the_rows_it_has(tmp_path, monkeypatch, capsys):
    bench = load_benchmark("bench_neurons")
    real = bench.time_row

    def time_row(name, *args):
        if name == "spikingjelly":
            raise KeyboardInterrupt  # what `timeout -s INT` delivers
        return real(name, *args)

    monkeypatch.setattr(bench, "time_row", time_row)
    assert bench.main(bench_neurons_args(tmp_path)) == 1
    result = json.loads((tmp_path / "neurons.json").read_text())
    assert [r["neuron"] for r in result["rows"]] == ["reference", "torch"]
    assert not result["complete"] and "interrupted" in result["error"]
    assert "NOT COMPLETE" in capsys.readouterr().out


def test_bench_neurons_on_cuda_without_cuda_fails_with_a_result(tmp_path, monkeypatch):
    bench = load_benchmark("bench_neurons")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert bench.main(["--device", "cuda", "--json", str(tmp_path / "n.json")]) == 1
    result = json.loads((tmp_path / "n.json").read_text())
    assert result["error"] == "--device cuda: torch sees no CUDA device" and not result["complete"]
    assert result["summary"] == "0 rows, 0 failed; --device cuda: torch sees no CUDA device"


def test_bench_neurons_summary_gives_the_cupy_speedups_over_torch():
    bench = load_benchmark("bench_neurons")
    shape = {"T": 50, "B": 64, "F": 128}
    rows = [{"neuron": "torch", **shape, "forward_backward_ms": 30.0},
            {"neuron": "cupy", **shape, "forward_backward_ms": 2.0},
            {"neuron": "cupy", "T": 1, "B": 1, "F": 1, "error": "RuntimeError: no"}]
    assert bench.summary_line({"rows": rows, "failed_rows": 1}) == (
        "3 rows, 1 failed; cupy fwd+bwd speed-up over torch: 50x64x128 15.0")


def test_bench_neurons_on_cuda_always_has_a_cupy_row():
    bench = load_benchmark("bench_neurons")
    assert "cupy" in bench.backends_for("cuda") and "cupy" not in bench.backends_for("cpu")


# --- bench_gpu_train --------------------------------------------------------------------------


def fake_measurement(epoch_s: float) -> dict:
    return {"train_s": epoch_s - 1.0, "valid_s": 1.0, "epoch_s": epoch_s, "first_epoch_s": 2 * epoch_s,
            "train_ms_per_batch": 10.0, "peak_mib": 100.0}


def test_bench_gpu_train_keeps_going_and_retries_a_triton_failure(tmp_path, monkeypatch, capsys):
    bench = load_benchmark("bench_gpu_train")
    calls = []

    def run_case(model, backend, args, timeout, sj_lif="auto"):
        calls.append((model, backend, sj_lif))
        row = {"model": model, "backend": backend, "sj_lif": sj_lif}
        if backend == "cupy" and sj_lif == "auto":
            return {**row, "error": "exit 1: CompilationError: at 12:4", "triton_in_traceback": True}
        if backend == "torch":
            return {**row, "error": "timed out after 100 s"}
        return {**row, **fake_measurement(4.0 if backend else 2.0)}

    monkeypatch.setattr(bench, "run_case", run_case)
    assert bench.main(["--device", "cpu", "--json", str(tmp_path / "train.json")]) == 1
    assert calls == [("sgmt-tav", "cupy", "auto"), ("sgmt-tav", "cupy", "torch"),
                     ("sgmt-tav", "torch", "auto"), ("sgmt-tav-ann", None, "auto")]
    result = json.loads((tmp_path / "train.json").read_text())
    cupy, torch_row, twin = result["rows"]
    assert cupy["sj_lif"] == "torch" and cupy["first_error"] == "exit 1: CompilationError: at 12:4"
    assert "error" not in cupy and torch_row["error"] == "timed out after 100 s" and "error" not in twin
    assert result["ratios"] == {"cupy_backend_over_twin": 2.0}
    assert result["complete"] and result["failed_rows"] == 1
    assert result["summary"] == ("epoch: sgmt-tav/cupy 4.00 s, sgmt-tav/torch failed, sgmt-tav-ann 2.00 s; "
                                 "cupy_backend_over_twin 2.00")
    assert "FAILED: timed out after 100 s" in capsys.readouterr().out


def test_bench_gpu_train_compares_the_backends_only_on_the_same_spikingjelly_lif():
    bench = load_benchmark("bench_gpu_train")
    rows = [{"model": "sgmt-tav", "backend": "cupy", "sj_lif": "auto", "epoch_s": 2.0},
            {"model": "sgmt-tav", "backend": "torch", "sj_lif": "auto", "epoch_s": 6.0},
            {"model": "sgmt-tav-ann", "backend": None, "sj_lif": "auto", "epoch_s": 1.0}]
    assert bench.ratios(rows) == {"torch_backend_over_cupy_backend": 3.0, "cupy_backend_over_twin": 2.0,
                                  "torch_backend_over_twin": 6.0}
    rows[0]["sj_lif"] = "torch"
    assert "torch_backend_over_cupy_backend" not in bench.ratios(rows)


def test_bench_gpu_train_skips_the_cases_past_its_budget(tmp_path, monkeypatch):
    bench = load_benchmark("bench_gpu_train")
    monkeypatch.setattr(bench, "run_case", lambda *a, **k: pytest.fail("no case should start"))
    assert bench.main(["--device", "cpu", "--budget", "5", "--json", str(tmp_path / "t.json")]) == 1
    rows = json.loads((tmp_path / "t.json").read_text())["rows"]
    assert [r["error"] for r in rows] == ["not run: the time budget was spent"] * 3


@pytest.mark.slow
def test_bench_gpu_train_case_passes_the_backend_to_the_model():
    # backend="cupy" reaches the model: on the CPU its first forward is the clear error.
    bench = load_benchmark("bench_gpu_train")
    args = bench.parse_args(["--device", "cpu", "--epochs", "1", "--train-size", "4", "--valid-size", "2"])
    row = bench.run_case("sgmt-tav", "cupy", args, timeout=240)
    assert row["error"].startswith("exit 1: RuntimeError: backend='cupy' cannot run") or (
        "backend='cupy' needs the input on a CUDA device" in row["error"]
    )
