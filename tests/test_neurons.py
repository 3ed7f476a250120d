"""The neurons against their specifications.

- ``LIF`` against SpikingJelly's ``LIFNode`` (the paper's eq. 1);
- every ``ConnectedLIF`` backend against the plain reference loop;
- the CUDA kernels: compiled with nvcc where it is installed, run on CPU threads
  (an emulation of the block) where g++ is, and on a GPU in the ``gpu`` tests.
"""

from __future__ import annotations

import ctypes
import importlib.abc
import importlib.util
import math
import shutil
import subprocess
import sys
import warnings
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from spikingjelly.activation_based import neuron, surrogate

from snn_msa.neurons import ConnectedLIF, LIF, LIFParameters, connected_lif, connected_lif_cupy
from snn_msa.neurons.connected_lif import resolve_backend
from snn_msa.neurons.connected_lif_cupy import cupy_unavailable_reason, kernel_source, probe_case
from snn_msa.neurons.connected_lif_torch import connected_lif_backward, connected_lif_forward

CPU_BACKENDS = ["reference", "torch"]
OTHER_PARAMS = dict(tau=3.0, v_threshold=0.7, v_rest=-0.2, alpha=3.0)


@pytest.fixture(autouse=True)
def _one_intra_op_thread():
    # The reference loop runs many tiny ops; with two threads on two busy cores each of its
    # BLAS calls waits for a descheduled thread (docs/neurons.md), seconds per test.
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def sequence(T: int, B: int, F: int, dtype=torch.float64, device="cpu") -> torch.Tensor:
    """An input that makes neurons fire at roughly 10 %."""
    return (torch.randn(T, B, F, dtype=dtype) * 0.8 + 0.5).to(device)


def run(module: torch.nn.Module, x: torch.Tensor, weights: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Spikes and d(sum(spikes * weights))/dx."""
    x = x.detach().clone().requires_grad_(True)
    spikes = module(x)
    (spikes * weights).sum().backward()
    return spikes.detach(), x.grad


def connected(features: int, backend: str, dtype=torch.float64, device="cpu", **kwargs) -> ConnectedLIF:
    return ConnectedLIF(features, seed=1, backend=backend, **kwargs).to(device=device, dtype=dtype)


# --- LIF is SpikingJelly's LIFNode -------------------------------------------------------------


@pytest.mark.parametrize("params", [{}, OTHER_PARAMS], ids=["default", "other"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_lif_equals_spikingjelly_lifnode(params, dtype):
    p = LIFParameters(**params)
    x, w = sequence(40, 3, 16, dtype), torch.randn(40, 3, 16, dtype=dtype)
    node = neuron.LIFNode(
        tau=p.tau, decay_input=True, v_threshold=p.v_threshold, v_reset=p.v_rest,
        surrogate_function=surrogate.ATan(alpha=p.alpha), step_mode="m",
    )
    expected_spikes, expected_grad = run(node, x, w)
    spikes, grad = run(LIF(**params), x, w)
    assert torch.equal(spikes, expected_spikes)
    assert torch.equal(grad, expected_grad)


@pytest.mark.parametrize("backend", CPU_BACKENDS)
@pytest.mark.parametrize("params", [{}, OTHER_PARAMS], ids=["default", "other"])
def test_connected_lif_without_recurrence_is_lif(backend, params):
    x, w = sequence(60, 4, 24, torch.float32), torch.randn(60, 4, 24)
    lif_spikes, lif_grad = run(LIF(**params), x, w)
    spikes, grad = run(connected(24, backend, torch.float32, strength=0.0, **params), x, w)
    assert torch.equal(spikes, lif_spikes)
    torch.testing.assert_close(grad, lif_grad, rtol=0, atol=1e-6)


# --- every backend against the reference -------------------------------------------------------


@pytest.mark.parametrize("shape", [(1, 1, 1), (7, 3, 5), (50, 4, 32), (300, 2, 16)])
@pytest.mark.parametrize("strength", [0.0, 0.01, 0.1, 0.5])
def test_torch_backend_matches_reference(shape, strength):
    x, w = sequence(*shape), torch.randn(*shape, dtype=torch.float64)
    ref_spikes, ref_grad = run(connected(shape[-1], "reference", strength=strength), x, w)
    spikes, grad = run(connected(shape[-1], "torch", strength=strength), x, w)
    assert ref_spikes.sum() > 0 or shape == (1, 1, 1)
    assert torch.equal(spikes, ref_spikes)
    torch.testing.assert_close(grad, ref_grad, rtol=0, atol=1e-12)


@pytest.mark.parametrize("strength", [0.0, 0.1])
def test_torch_backend_matches_reference_float32_and_other_parameters(strength):
    x, w = sequence(80, 3, 20, torch.float32), torch.randn(80, 3, 20)
    ref_spikes, ref_grad = run(connected(20, "reference", torch.float32, strength=strength, **OTHER_PARAMS), x, w)
    spikes, grad = run(connected(20, "torch", torch.float32, strength=strength, **OTHER_PARAMS), x, w)
    assert torch.equal(spikes, ref_spikes)  # the same IEEE ops in the same order
    torch.testing.assert_close(grad, ref_grad, rtol=0, atol=1e-5)


def test_strong_recurrence_changes_the_spikes():
    x = sequence(50, 2, 16)
    quiet = connected(16, "torch", strength=0.0)(x)
    loud = connected(16, "torch", strength=0.5)(x)
    assert not torch.equal(quiet, loud)


# --- module behaviour ---------------------------------------------------------------------------


def test_omega_is_a_reproducible_buffer_not_a_parameter():
    a, b = ConnectedLIF(12, strength=0.1, seed=7), ConnectedLIF(12, strength=0.1, seed=7)
    assert torch.equal(a.omega, b.omega)
    assert not torch.equal(a.omega, ConnectedLIF(12, strength=0.1, seed=8).omega)
    assert "omega" in a.state_dict() and list(a.parameters()) == []
    assert not a.omega.requires_grad
    assert abs(ConnectedLIF(200, strength=0.1, seed=0).omega.std().item() - 0.1) < 0.005
    c = ConnectedLIF(12, strength=0.1, seed=99)
    c.load_state_dict(a.state_dict())
    assert torch.equal(c.omega, a.omega)


@pytest.mark.parametrize("backend", CPU_BACKENDS)
def test_state_is_reset_between_calls(backend):
    x = sequence(30, 2, 8)
    model = connected(8, backend, strength=0.1)
    assert torch.equal(model(x), model(x))
    lif = LIF()
    assert torch.equal(lif(x), lif(x))


@pytest.mark.parametrize("backend", CPU_BACKENDS)
def test_activity_counts(backend):
    T, B, F = 25, 3, 10
    model = connected(F, backend, strength=0.1)
    assert model.recurrent_accumulates == 0 and model.spike_count == 0
    spikes = model(sequence(T, B, F))
    expected = sum(int(torch.count_nonzero(spikes[t - 1])) * F for t in range(1, T))
    assert model.recurrent_accumulates == expected > 0
    assert model.spike_count == int(torch.count_nonzero(spikes))
    assert model.neuron_steps == T * B * F
    assert model.firing_rate == pytest.approx(model.spike_count / (T * B * F))


@pytest.mark.parametrize(
    "make, error, match",
    [
        (lambda: ConnectedLIF(4, tau=1.0), ValueError, "tau must be greater than 1"),
        (lambda: ConnectedLIF(4, tau=0.5), ValueError, "tau must be greater than 1"),
        (lambda: ConnectedLIF(4, strength=-0.1), ValueError, "strength must be a finite number >= 0"),
        (lambda: ConnectedLIF(4, strength=float("nan")), ValueError, "strength"),
        (lambda: ConnectedLIF(0), ValueError, "features must be a positive integer"),
        (lambda: ConnectedLIF(4, backend="triton"), ValueError, "backend must be one of"),
        (lambda: ConnectedLIF(4, v_threshold=0.0, v_rest=0.0), ValueError, "must lie above v_rest"),
        (lambda: LIF(tau=1.0), ValueError, "tau must be greater than 1"),
    ],
)
def test_bad_arguments_raise_clear_errors(make, error, match):
    with pytest.raises(error, match=match):
        make()


@pytest.mark.parametrize(
    "x, error, match",
    [
        (torch.zeros(2, 4), ValueError, r"shape \[T, B, F\].*rank 2"),
        (torch.zeros(2, 1, 3, 4), ValueError, "rank 4"),
        (torch.zeros(2, 1, 5), ValueError, "built for 4 features but got input with 5"),
        (torch.zeros(2, 1, 4, dtype=torch.long), TypeError, "floating-point"),
    ],
)
def test_bad_inputs_raise_clear_errors(x, error, match):
    with pytest.raises(error, match=match):
        ConnectedLIF(4)(x)


def test_lif_rejects_wrong_rank():
    with pytest.raises(ValueError, match="rank 2"):
        LIF()(torch.zeros(3, 4))


def test_cupy_backend_without_cupy_or_gpu_is_a_clear_error():
    model = ConnectedLIF(4, backend="cupy")
    # On this CPU tensor the error names CuPy when it is missing, else the device.
    match = "CuPy" if cupy_unavailable_reason() is not None else "needs the input on a CUDA device"
    with pytest.raises(RuntimeError, match=match):
        model(torch.zeros(2, 1, 4))


def test_auto_backend_on_cpu_is_torch():
    assert resolve_backend("auto", torch.zeros(1, 1, 1)) == "torch"


# --- the backend check: once per process and device, one warning on fallback -------------------


@pytest.fixture
def fresh_backend_check():
    """Forget the cached verdicts and warnings before and after the test."""
    warned = set(connected_lif._FALLBACK_WARNED)

    def clear():
        connected_lif_cupy.cupy_unavailable_reason.cache_clear()
        connected_lif_cupy.kernel_unavailable_reason.cache_clear()
        connected_lif._FALLBACK_WARNED.clear()

    clear()
    yield
    clear()
    connected_lif._FALLBACK_WARNED.update(warned)


def cuda_tensor_stub(index: int) -> SimpleNamespace:
    """What resolve_backend reads of a CUDA tensor, without a GPU."""
    return SimpleNamespace(is_cuda=True, device=torch.device("cuda", index))


def fallback_warnings(caught: list[warnings.WarningMessage]) -> list[str]:
    return [str(w.message) for w in caught if issubclass(w.category, RuntimeWarning) and "ConnectedLIF" in str(w.message)]


class _CountingCupyBlocker(importlib.abc.MetaPathFinder):
    """Makes ``import cupy`` fail, and counts the tries."""

    def __init__(self):
        self.tries = 0

    def find_spec(self, name, path=None, target=None):
        if name == "cupy":
            self.tries += 1
            raise ImportError("No module named 'cupy' (blocked by the test)")
        return None


def test_failed_cupy_import_is_not_retried(fresh_backend_check, monkeypatch):
    blocker = _CountingCupyBlocker()
    monkeypatch.setattr(sys, "meta_path", [blocker, *sys.meta_path])
    monkeypatch.delitem(sys.modules, "cupy", raising=False)
    reasons = {connected_lif_cupy.cupy_unavailable_reason() for _ in range(3)}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        backends = [resolve_backend("auto", cuda_tensor_stub(0)) for _ in range(3)]
    assert backends == ["torch"] * 3
    assert blocker.tries == 1
    assert len(reasons) == 1 and "CuPy is not importable" in reasons.pop()
    assert len(fallback_warnings(caught)) == 1


@pytest.mark.parametrize(
    "probe, reason",
    [
        ("raise", "the CuPy kernels failed on cuda:{index} (RuntimeError: nvrtc: error: failed to open libnvrtc-builtins"),
        ("mismatch", "the CuPy kernels gave wrong results on cuda:{index} (float32 spikes differ"),
    ],
)
def test_auto_falls_back_to_torch_once_per_device_with_one_warning(fresh_backend_check, monkeypatch, probe, reason):
    probed = []

    def failing_probe(device):
        probed.append(device.index)
        if probe == "raise":
            raise RuntimeError("nvrtc: error: failed to open libnvrtc-builtins.so.13.0\nmore lines of the log")
        return "float32 spikes differ from the torch backend"

    monkeypatch.setattr(connected_lif_cupy, "cupy_unavailable_reason", lambda: None)
    monkeypatch.setattr(connected_lif_cupy, "_probe_kernels", failing_probe)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        backends = [resolve_backend("auto", cuda_tensor_stub(i)) for i in (0, 0, 1, 0, 1)]
    assert backends == ["torch"] * 5
    assert probed == [0, 1]  # compiled and checked once per device
    messages = fallback_warnings(caught)
    assert len(messages) == 2
    for index, message in zip((0, 1), messages):
        assert reason.format(index=index) in message and "backend='torch'" in message
    with pytest.raises(RuntimeError, match="backend='cupy' cannot run: the CuPy kernels"):
        resolve_backend("cupy", cuda_tensor_stub(0))
    assert probed == [0, 1]


def test_auto_picks_cupy_when_the_kernels_pass_the_check(fresh_backend_check, monkeypatch):
    probed = []
    monkeypatch.setattr(connected_lif_cupy, "cupy_unavailable_reason", lambda: None)
    monkeypatch.setattr(connected_lif_cupy, "_probe_kernels", lambda device: probed.append(device.index))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert [resolve_backend(b, cuda_tensor_stub(0)) for b in ("auto", "cupy", "auto")] == ["cupy"] * 3
    assert probed == [0] and fallback_warnings(caught) == []


@pytest.mark.parametrize(
    "dtype, kernel_dtype",
    [(torch.float16, torch.float32), (torch.bfloat16, torch.float32), (torch.float32, torch.float32),
     (torch.float64, torch.float64)],
)
def test_omega_reaches_the_cupy_kernel_unrounded(monkeypatch, dtype, kernel_dtype):
    seen = []

    class Recorder:
        @staticmethod
        def apply(x, omega, params):
            seen.append(omega)
            return (x > 0).to(x.dtype)

    monkeypatch.setattr(connected_lif, "resolve_backend", lambda backend, x: "cupy")
    monkeypatch.setattr(connected_lif_cupy, "ConnectedLIFCupyFunction", Recorder)
    model = ConnectedLIF(8, strength=0.1, seed=0)  # a float32 module (as under autocast)
    model(torch.randn(3, 2, 8).to(dtype))
    (omega,) = seen
    assert omega.dtype == kernel_dtype
    assert torch.equal(omega, model.omega.to(kernel_dtype))


def test_probe_case_fires_both_ways_far_from_the_threshold():
    p = LIFParameters()
    x, omega, _ = probe_case(torch.float64)
    spikes, charged = connected_lif_forward(x, omega, p)
    assert spikes[0].sum() == 20 and spikes[0, 0, :32].sum() < 20  # fired in both warps of the block
    assert 0 < spikes[1].sum() < x.shape[-1]  # the recurrence decides step 1 both ways
    assert (charged - p.v_threshold).abs().min() >= 0.25 - 1e-12


# --- the CUDA kernels without a GPU -------------------------------------------------------------

# A compile takes seconds on an idle machine and can take minutes on a loaded one; the limit is
# there only to stop a hung compiler, and says so when it is reached.
COMPILE_TIMEOUT_S = 900


def compile_or_fail(command: list[str]) -> subprocess.CompletedProcess:
    """Run a compiler; a hung one fails the test with a message instead of a raw TimeoutExpired."""
    try:
        return subprocess.run(command, capture_output=True, text=True, timeout=COMPILE_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        pytest.fail(f"{command[0]} did not finish in {COMPILE_TIMEOUT_S} s: {' '.join(command)}")


@pytest.mark.skipif(shutil.which("nvcc") is None, reason="nvcc is not installed")
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_cuda_kernels_compile_with_nvcc(dtype, tmp_path):
    source = tmp_path / "connected_lif.cu"
    source.write_text(kernel_source(dtype))
    result = compile_or_fail(["nvcc", "--ptx", "-arch=sm_90", "--fmad=false", "-o", str(tmp_path / "k.ptx"), str(source)])
    assert result.returncode == 0, result.stderr
    ptx = (tmp_path / "k.ptx").read_text()
    assert ".entry connected_lif_forward" in ptx and ".entry connected_lif_backward" in ptx


def find_libnvrtc() -> Path | None:
    """NVRTC from a pip wheel (``nvidia-cuda-nvrtc``, under the ``nvidia`` namespace), else None."""
    spec = importlib.util.find_spec("nvidia")
    for root in (spec.submodule_search_locations or []) if spec else []:
        for path in sorted(Path(root).glob("*/lib/libnvrtc.so.*")):
            if ".alt." not in path.name:
                return path
    return None


@pytest.mark.skipif(find_libnvrtc() is None, reason="no NVRTC library (pip install nvidia-cuda-nvrtc)")
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_cuda_kernels_compile_with_nvrtc(dtype):
    # What CuPy does at the first launch, without a GPU: NVRTC compiles the source for sm_90.
    library = find_libnvrtc()
    for builtins in library.parent.glob("libnvrtc-builtins.so.*"):  # found by name at compile time
        if ".alt." not in builtins.name:
            ctypes.CDLL(str(builtins), mode=ctypes.RTLD_GLOBAL)
    nvrtc = ctypes.CDLL(str(library))
    program = ctypes.c_void_p()
    assert nvrtc.nvrtcCreateProgram(ctypes.byref(program), kernel_source(dtype).encode(), b"k.cu", 0, None, None) == 0
    options = [b"--fmad=false", b"-arch=sm_90"]
    result = nvrtc.nvrtcCompileProgram(program, len(options), (ctypes.c_char_p * len(options))(*options))
    size = ctypes.c_size_t()
    nvrtc.nvrtcGetProgramLogSize(program, ctypes.byref(size))
    log = ctypes.create_string_buffer(size.value)
    nvrtc.nvrtcGetProgramLog(program, log)
    nvrtc.nvrtcDestroyProgram(ctypes.byref(program))
    assert result == 0, log.value.decode()
    assert log.value.decode().strip() == ""  # not even a warning


# The kernels compiled as C++, one std::thread per CUDA thread, barriers for __syncthreads and
# the warp vote, shared memory poisoned with 0xff so that a read before a write shows as NaN.
EMULATION_PRELUDE = r"""
#include <barrier>
#include <cstring>
#include <memory>
#include <thread>
#include <vector>
struct dim3_ { int x, y, z; };
static thread_local dim3_ threadIdx;
static dim3_ blockIdx, blockDim;
static std::barrier<>* block_barrier;
static std::vector<std::unique_ptr<std::barrier<>>> warp_barriers;
static unsigned warp_votes[32][32];
static void __syncthreads() { block_barrier->arrive_and_wait(); }
static unsigned __ballot_sync(unsigned, int predicate) {
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    warp_votes[warp][lane] = predicate ? 1u : 0u;
    warp_barriers[warp]->arrive_and_wait();
    unsigned ballot = 0;
    for (int k = 0; k < 32; ++k) ballot |= warp_votes[warp][k] << k;
    warp_barriers[warp]->arrive_and_wait();
    return ballot;
}
static int __popc(unsigned v) { return __builtin_popcount(v); }
alignas(16) unsigned char shared_bytes[1 << 18];
#define __global__
#define __shared__
#define __align__(n) __attribute__((aligned(n)))
"""

EMULATION_FLAGS = ("-std=c++20", "-O1", "-ffp-contract=off", "-pthread")

EMULATION_LAUNCHER = r"""
template <class Body> static void launch(int grid, int threads, Body body) {
    blockDim = {threads, 1, 1};
    for (int b = 0; b < grid; ++b) {
        blockIdx = {b, 0, 0};
        std::barrier<> barrier(threads);
        block_barrier = &barrier;
        warp_barriers.clear();
        for (int w = 0; w < threads / 32; ++w) warp_barriers.emplace_back(new std::barrier<>(32));
        std::memset(shared_bytes, 0xff, sizeof shared_bytes);
        std::vector<std::thread> pool;
        for (int k = 0; k < threads; ++k) pool.emplace_back([&, k] { threadIdx = {k, 0, 0}; body(); });
        for (auto& thread : pool) thread.join();
    }
}
extern "C" void run_forward(const scalar_t* x, const scalar_t* omega_t, scalar_t* s, scalar_t* u,
                            int T, int B, int F, int threads, double tau, double v_th, double v_rest) {
    launch(B, threads, [&] { connected_lif_forward(x, omega_t, s, u, T, B, F, tau, v_th, v_rest); });
}
extern "C" void run_backward(const scalar_t* gs, const scalar_t* u, const scalar_t* omega, scalar_t* gx,
                             int T, int B, int F, int threads, double tau, double v_th, double v_rest,
                             double half_alpha, double scale) {
    launch(B, threads, [&] { connected_lif_backward(gs, u, omega, gx, T, B, F, tau, v_th, v_rest, half_alpha, scale); });
}
"""


@pytest.fixture(scope="module")
def emulated_kernels(tmp_path_factory):
    if shutil.which("g++") is None:
        pytest.skip("g++ is not installed")
    folder = tmp_path_factory.mktemp("kernel_emulation")
    # Whether this g++ has C++20 <barrier> is asked of a program that uses nothing else, so a
    # broken kernel can never pass for a missing header (its compile error fails the test below).
    probe = folder / "probe.cpp"
    probe.write_text("#include <barrier>\nint main() { std::barrier<> b(1); b.arrive_and_wait(); }\n")
    probed = compile_or_fail(["g++", *EMULATION_FLAGS, "-o", str(folder / "probe"), str(probe)])
    if probed.returncode != 0:
        pytest.skip(f"this g++ cannot build a C++20 std::barrier: {probed.stderr.strip().splitlines()[0]}")
    source = folder / "emulation.cpp"
    source.write_text(EMULATION_PRELUDE + kernel_source(torch.float64) + EMULATION_LAUNCHER)
    library = folder / "emulation.so"
    result = compile_or_fail(["g++", *EMULATION_FLAGS, "-shared", "-fPIC", "-o", str(library), str(source)])
    assert result.returncode == 0, result.stderr
    return ctypes.CDLL(str(library))


def emulate(kernels, x, omega, grad_spikes, p: LIFParameters, threads: int):
    """Forward and backward of the emulated kernels: ``(spikes, U, grad_x)``."""
    T, B, F = x.shape
    spikes, charged, grad_x = torch.empty_like(x), torch.empty_like(x), torch.empty_like(x)
    ptr = lambda t: ctypes.c_void_p(t.data_ptr())  # noqa: E731
    D = ctypes.c_double
    omega_t = omega.t().contiguous()
    kernels.run_forward(
        ptr(x), ptr(omega_t), ptr(spikes), ptr(charged), T, B, F, threads, D(p.tau), D(p.v_threshold), D(p.v_rest)
    )
    kernels.run_backward(
        ptr(grad_spikes), ptr(charged), ptr(omega), ptr(grad_x), T, B, F, threads,
        D(p.tau), D(p.v_threshold), D(p.v_rest), D(p.alpha / 2), D(math.pi / 2 * p.alpha),
    )
    return spikes, charged, grad_x


@pytest.mark.parametrize(
    "T, B, F, threads",
    [(20, 2, 40, 64), (15, 2, 70, 32), (30, 3, 33, 32), (12, 1, 100, 64)],
    ids=["partial-warp", "three-chunks", "33-in-one-warp", "two-chunks"],
)
@pytest.mark.parametrize("strength", [0.0, 0.1, 0.5])
def test_cuda_kernels_emulated_on_cpu_threads_match_torch_backend(emulated_kernels, T, B, F, threads, strength):
    p = LIFParameters(**OTHER_PARAMS) if strength == 0.1 else LIFParameters()
    x = sequence(T, B, F)
    omega = torch.randn(F, F, dtype=torch.float64) * strength
    grad_spikes = torch.randn(T, B, F, dtype=torch.float64)
    spikes, charged, grad_x = emulate(emulated_kernels, x, omega, grad_spikes, p, threads)
    expected_spikes, expected_charged = connected_lif_forward(x, omega, p)
    expected_grad = connected_lif_backward(grad_spikes, expected_charged, omega, p)
    assert torch.equal(spikes, expected_spikes)
    # The kernels sum the recurrence in a different order than BLAS; without it they are exact.
    tolerance = 0.0 if strength == 0.0 else 1e-13
    torch.testing.assert_close(charged, expected_charged, rtol=0, atol=tolerance)
    torch.testing.assert_close(grad_x, expected_grad, rtol=0, atol=tolerance)


def test_backend_check_probe_passes_on_the_emulated_kernels(emulated_kernels):
    p = LIFParameters()
    x, omega, grad_spikes = probe_case(torch.float64)
    spikes, charged, grad_x = emulate(emulated_kernels, x, omega, grad_spikes, p, threads=64)
    expected_spikes, expected_charged = connected_lif_forward(x, omega, p)
    assert torch.equal(spikes, expected_spikes)
    torch.testing.assert_close(grad_x, connected_lif_backward(grad_spikes, expected_charged, omega, p), rtol=1e-5, atol=1e-6)


# --- on a GPU -------------------------------------------------------------------------------------

GPU_SHAPES = [(50, 4, 128), (400, 2, 64), (925, 2, 64)]


@pytest.mark.gpu
@pytest.mark.parametrize("shape", GPU_SHAPES, ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("strength", [0.0, 0.01, 0.1])
def test_cupy_matches_reference_float64(shape, strength):
    x, w = sequence(*shape, device="cuda"), torch.randn(*shape, dtype=torch.float64, device="cuda")
    ref_spikes, ref_grad = run(connected(shape[-1], "reference", device="cuda", strength=strength), x, w)
    spikes, grad = run(connected(shape[-1], "cupy", device="cuda", strength=strength), x, w)
    assert torch.equal(spikes, ref_spikes)
    torch.testing.assert_close(grad, ref_grad, rtol=0, atol=1e-10)


@pytest.mark.gpu
@pytest.mark.parametrize("shape", GPU_SHAPES, ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("strength", [0.0, 0.01, 0.1])
def test_cupy_matches_reference_float32(shape, strength):
    x, w = sequence(*shape, torch.float32, "cuda"), torch.randn(*shape, device="cuda")
    ref_spikes, ref_grad = run(connected(shape[-1], "reference", torch.float32, "cuda", strength=strength), x, w)
    spikes, grad = run(connected(shape[-1], "cupy", torch.float32, "cuda", strength=strength), x, w)
    # A potential within rounding of the threshold may fire in one and not the other, and
    # the difference then runs on in that batch row: compare the rows that agree.
    agree = (spikes == ref_spikes).all(dim=0).all(dim=-1)  # [B]
    assert agree.float().mean() >= 0.5, f"spikes differ in {int((~agree).sum())} of {agree.numel()} rows"
    assert (spikes != ref_spikes).float().mean() < 1e-3
    torch.testing.assert_close(grad[:, agree], ref_grad[:, agree], rtol=1e-4, atol=1e-4)


@pytest.mark.gpu
def test_cupy_strength_zero_equals_spikingjelly_lif_on_gpu():
    x, w = sequence(100, 4, 128, torch.float32, "cuda"), torch.randn(100, 4, 128, device="cuda")
    lif_spikes, lif_grad = run(LIF(), x, w)
    spikes, grad = run(connected(128, "cupy", torch.float32, "cuda", strength=0.0), x, w)
    assert torch.equal(spikes, lif_spikes)
    torch.testing.assert_close(grad, lif_grad, rtol=1e-5, atol=1e-6)


@pytest.mark.gpu
def test_auto_backend_picks_cupy_on_cuda():
    x = sequence(20, 2, 16, torch.float32, "cuda")
    assert connected_lif_cupy.kernel_unavailable_reason(x.device.index or 0) is None
    assert resolve_backend("auto", x) == "cupy"
    model = connected(16, "auto", torch.float32, "cuda", strength=0.1)
    assert torch.equal(model(x), connected(16, "cupy", torch.float32, "cuda", strength=0.1)(x))


@pytest.mark.gpu
def test_auto_falls_back_to_torch_when_the_kernels_do_not_compile(fresh_backend_check, monkeypatch):
    import cupy

    def broken_kernels(dtype):
        return tuple(cupy.RawKernel("this is not CUDA", name) for name in ("connected_lif_forward", "connected_lif_backward"))

    monkeypatch.setattr(connected_lif_cupy, "_kernels", broken_kernels)
    x = sequence(30, 2, 16, torch.float32, "cuda")
    model = connected(16, "auto", torch.float32, "cuda", strength=0.1)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        first, second = model(x), model(x)
    messages = fallback_warnings(caught)
    assert len(messages) == 1 and "the CuPy kernels failed on cuda:" in messages[0]
    expected = connected(16, "torch", torch.float32, "cuda", strength=0.1)(x)
    assert torch.equal(first, expected) and torch.equal(second, expected)
    with pytest.raises(RuntimeError, match="backend='cupy' cannot run: the CuPy kernels failed"):
        connected(16, "cupy", torch.float32, "cuda", strength=0.1)(x)


@pytest.fixture
def launch_streams(monkeypatch) -> list[int]:
    """The raw CUDA stream of every kernel launch from here on, in order."""
    import cupy

    streams: list[int] = []
    real_kernels = connected_lif_cupy._kernels

    class Spy:
        def __init__(self, kernel):
            self._kernel = kernel

        def __getattr__(self, name):
            return getattr(self._kernel, name)

        def __call__(self, *args, **kwargs):
            streams.append((kwargs["stream"] if "stream" in kwargs else cupy.cuda.get_current_stream()).ptr)
            return self._kernel(*args, **kwargs)

    monkeypatch.setattr(connected_lif_cupy, "_kernels", lambda dtype: tuple(Spy(k) for k in real_kernels(dtype)))
    return streams


#: About 0.1 s of a spinning kernel: long enough that a launch on another stream would run before it ends.
SLEEP_CYCLES = 200_000_000


@pytest.mark.gpu
def test_cupy_launches_on_the_current_stream_behind_its_queued_work(launch_streams):
    T, B, F = 300, 4, 64
    x, w = sequence(T, B, F, device="cuda"), torch.randn(T, B, F, dtype=torch.float64, device="cuda")
    expected = run(connected(F, "cupy", device="cuda", strength=0.1), x, w)  # on the default stream
    model = connected(F, "cupy", device="cuda", strength=0.1)
    x_late, w_late = torch.full_like(x, -5.0), torch.zeros_like(w)  # what a launch that ran too early would read
    side = torch.cuda.Stream()
    torch.cuda.synchronize()
    launch_streams.clear()
    with torch.cuda.stream(side):
        torch.cuda._sleep(SLEEP_CYCLES)
        x_late.copy_(x)
        x_late.requires_grad_(True)
        spikes = model(x_late)
        torch.cuda._sleep(SLEEP_CYCLES)
        w_late.copy_(w)
        (spikes * w_late).sum().backward()
        got = spikes.detach().clone(), x_late.grad.clone()
    torch.cuda.synchronize()
    assert side.cuda_stream != torch.cuda.default_stream().cuda_stream
    assert launch_streams == [side.cuda_stream] * 2  # forward and backward, on the stream that was current
    assert torch.equal(got[0], expected[0]) and torch.equal(got[1], expected[1])


@pytest.mark.gpu
def test_cupy_runs_on_the_inputs_device_with_its_current_stream(launch_streams):
    if torch.cuda.device_count() < 2:
        pytest.skip("only one CUDA device: the second-GPU case needs two")
    x, w = sequence(100, 3, 64, device="cuda:0"), torch.randn(100, 3, 64, dtype=torch.float64, device="cuda:0")
    expected = run(connected(64, "cupy", device="cuda:0", strength=0.1), x, w)
    assert connected_lif_cupy.kernel_unavailable_reason(1) is None  # the check of device 1, before counting launches
    launch_streams.clear()
    with torch.cuda.device(0):
        got = run(connected(64, "cupy", device="cuda:1", strength=0.1), x.to("cuda:1"), w.to("cuda:1"))
        assert torch.cuda.current_device() == 0
    assert launch_streams == [torch.cuda.current_stream(1).cuda_stream] * 2
    assert got[0].device == torch.device("cuda", 1) and got[1].device == torch.device("cuda", 1)
    assert torch.equal(got[0].cpu(), expected[0].cpu()) and torch.equal(got[1].cpu(), expected[1].cpu())


@pytest.mark.gpu
@pytest.mark.parametrize("features", [1, 31, 1025, 3000], ids=lambda f: f"F{f}")
def test_cupy_any_width(features):
    # 1025 needs two neurons per thread; 3000 in float64 needs opt-in shared memory (> 48 KiB).
    x, w = sequence(6, 2, features, device="cuda"), torch.randn(6, 2, features, dtype=torch.float64, device="cuda")
    ref_spikes, ref_grad = run(connected(features, "torch", device="cuda", strength=0.05), x, w)
    spikes, grad = run(connected(features, "cupy", device="cuda", strength=0.05), x, w)
    assert torch.equal(spikes, ref_spikes)
    torch.testing.assert_close(grad, ref_grad, rtol=0, atol=1e-10)


#: Wide layers (F = 256: eight warps; 768: BERT's width), a full batch of 64 rows, a single step.
GPU_EDGE_SHAPES = [(1, 64, 256), (40, 64, 256), (20, 8, 768), (1, 3, 768), (60, 64, 64)]


@pytest.mark.gpu
@pytest.mark.parametrize("shape", GPU_EDGE_SHAPES, ids=lambda s: "x".join(map(str, s)))
def test_cupy_wide_layers_full_batches_and_one_step(shape):
    x, w = sequence(*shape, device="cuda"), torch.randn(*shape, dtype=torch.float64, device="cuda")
    ref_spikes, ref_grad = run(connected(shape[-1], "reference", device="cuda", strength=0.05), x, w)
    spikes, grad = run(connected(shape[-1], "cupy", device="cuda", strength=0.05), x, w)
    assert ref_spikes.sum() > 0
    assert torch.equal(spikes, ref_spikes)
    torch.testing.assert_close(grad, ref_grad, rtol=0, atol=1e-10)


@pytest.mark.gpu
@pytest.mark.parametrize("layout", ["transposed-from-batch-major", "every-other-feature"])
def test_cupy_non_contiguous_inputs_and_gradients(layout):
    T, B, F = 30, 5, 48
    if layout == "transposed-from-batch-major":  # how a model hands over a [B, L, d] sequence
        base = sequence(T, B, F, device="cuda").transpose(0, 1).contiguous().requires_grad_(True)
        view = lambda t: t.transpose(0, 1)  # noqa: E731
    else:
        base = sequence(T, B, 2 * F, device="cuda").requires_grad_(True)
        view = lambda t: t[..., ::2]  # noqa: E731
    x = view(base)
    w = torch.randn(B, T, F, dtype=torch.float64, device="cuda").transpose(0, 1)  # a strided upstream gradient
    assert not x.is_contiguous() and not w.is_contiguous()
    spikes = connected(F, "cupy", device="cuda", strength=0.1)(x)
    (spikes * w).sum().backward()
    ref_spikes, ref_grad = run(connected(F, "reference", device="cuda", strength=0.1), x.detach().contiguous(), w.contiguous())
    assert torch.equal(spikes.detach(), ref_spikes)
    torch.testing.assert_close(view(base.grad), ref_grad, rtol=0, atol=1e-10)


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_cupy_half_precision_runs_in_float32(dtype):
    x = sequence(30, 2, 32, dtype, "cuda").requires_grad_(True)
    spikes = connected(32, "cupy", dtype, "cuda", strength=0.1)(x)
    spikes.sum().backward()
    assert spikes.dtype == dtype and x.grad.dtype == dtype and torch.isfinite(x.grad).all()


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_cupy_half_inputs_keep_omega_in_float32(dtype):
    T, B, F = 400, 16, 256
    model = connected(F, "cupy", torch.float32, "cuda", strength=0.1)  # a float32 module, as under autocast
    x, w = sequence(T, B, F, dtype, "cuda"), torch.randn(T, B, F, device="cuda").to(dtype)
    spikes, grad = run(model, x, w)
    expected_spikes, expected_grad = run(model, x.float(), w.float())
    assert spikes.dtype == dtype and grad.dtype == dtype
    assert torch.equal(spikes.float(), expected_spikes)
    assert torch.equal(grad, expected_grad.to(dtype))
    # At this size the test can tell: omega rounded to the input's dtype changes the spikes.
    rounded = connected(F, "cupy", torch.float32, "cuda", strength=0.1)
    rounded.omega.copy_(rounded.omega.to(dtype).float())
    assert not torch.equal(rounded(x.float()), expected_spikes)
