"""Shared test settings: small, deterministic, quiet."""

import logging

import pytest
import torch

# SpikingJelly imports torch's Triton probe, which logs a warning on CPU-only machines.
logging.getLogger("torch._library.triton").setLevel(logging.ERROR)


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
    yield


def pytest_collection_modifyitems(config, items):
    has_cuda = torch.cuda.is_available()
    try:
        from snn_msa.neurons.connected_lif_cupy import cupy_unavailable_reason

        cupy_reason = cupy_unavailable_reason()
    except Exception as error:  # pragma: no cover - only if the module itself breaks
        cupy_reason = str(error)
    skip = pytest.mark.skip(reason=f"needs CUDA and CuPy ({cupy_reason or 'no CUDA device'})")
    for item in items:
        if "gpu" in item.keywords and (not has_cuda or cupy_reason is not None):
            item.add_marker(skip)
