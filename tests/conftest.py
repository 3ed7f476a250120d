"""Shared test settings: small, deterministic, quiet; the ``gpu`` tests skip without CUDA and CuPy.

``pytest --require-gpu`` (what ``benchmarks/gpu_check.sh`` runs) fails those tests
instead of skipping them, and fails the session when no ``gpu`` test passed, so a
GPU check can never pass with the kernels unexercised.
"""

import logging

import pytest
import torch

# SpikingJelly imports torch's Triton probe, which logs a warning on CPU-only machines.
logging.getLogger("torch._library.triton").setLevel(logging.ERROR)


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
    yield


def pytest_addoption(parser):
    parser.addoption(
        "--require-gpu", action="store_true",
        help="fail, not skip, the gpu tests where CUDA or CuPy is missing, and fail the run when no gpu test passed",
    )


def gpu_unavailable_reason() -> str | None:
    """None when the ``gpu`` tests can run here, else why not."""
    if not torch.cuda.is_available():
        return "torch sees no CUDA device"
    try:
        from snn_msa.neurons.connected_lif_cupy import cupy_unavailable_reason

        return cupy_unavailable_reason()
    except Exception as error:  # pragma: no cover - only if the module itself breaks
        return str(error)


def pytest_collection_modifyitems(config, items):
    reason = gpu_unavailable_reason()
    if reason is None or config.getoption("--require-gpu"):
        return  # with --require-gpu, pytest_runtest_setup fails them instead
    skip = pytest.mark.skip(reason=f"needs CUDA and CuPy ({reason})")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


def pytest_runtest_setup(item):
    if "gpu" in item.keywords and item.config.getoption("--require-gpu"):
        reason = gpu_unavailable_reason()
        if reason is not None:
            pytest.fail(f"--require-gpu: this gpu test cannot run here: {reason}", pytrace=False)


_passed_gpu_tests: list[str] = []


def pytest_runtest_logreport(report):
    if report.when == "call" and report.passed and "gpu" in report.keywords:
        _passed_gpu_tests.append(report.nodeid)


def pytest_sessionfinish(session, exitstatus):
    if session.config.getoption("--require-gpu") and not _passed_gpu_tests and exitstatus == 0:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
        print("\n--require-gpu: no gpu test passed")
