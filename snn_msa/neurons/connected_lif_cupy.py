"""CuPy kernels for the connected LIF (written in the next step)."""

from __future__ import annotations


def cupy_unavailable_reason() -> str | None:
    """None when CuPy imports and sees a CUDA device, else why not."""
    try:
        import cupy  # noqa: F401
    except Exception as error:  # ImportError, or a CUDA library that fails to load
        return f"CuPy is not importable ({type(error).__name__}: {error})"
    try:
        if cupy.cuda.runtime.getDeviceCount() < 1:
            return "CuPy sees no CUDA device"
    except Exception as error:
        return f"CuPy cannot reach a CUDA device ({error})"
    return None
