r"""CuPy kernels for the connected LIF: the whole sequence in one launch forward, one backward.

The kernels run the equations of :mod:`~snn_msa.neurons.connected_lif_torch`
line by line (same IEEE operations per element, ``--fmad=false``), with this layout:

- one thread block per batch row; the block's threads stride over the F neurons
  (thread ``k`` owns neurons ``k, k + blockDim, ...``), so any F whose state fits
  in shared memory works; the loop over the T steps runs inside the kernel;
- forward: the membrane ``V`` lives in shared memory. After each step the block
  compacts the indices of the neurons that fired into an ascending list in
  shared memory (warp ballots and a prefix over the warps' counts, so the order,
  and with it the rounding, is deterministic). At the next step neuron ``i``
  sums ``omega[i, j]`` only over that list: the cost of the recurrence is
  ``nnz(s[t-1])`` loads per neuron, not F (the SOP saving). ``omega`` is read
  transposed so that a warp's loads are coalesced. It saves ``U`` for backward;
- backward: the same loop in reverse; the gradient that flows into ``s[t]``
  through the recurrence, :math:`\sum_i g_{I,i}[t+1]\,\omega_{ij}`, is dense and
  is read from a double-buffered copy of :math:`g_I[t+1]` in shared memory.

Both launches go to PyTorch's current CUDA stream and share memory with the
torch tensors through DLPack (no copies, no synchronisation). The kernels are
compiled by NVRTC at first use and cached per dtype (CuPy also caches the binary
on disk). float32 and float64 run natively; float16 and bfloat16 run in float32,
with ``omega`` in float32 too (:func:`kernel_dtype`).

Whether the kernels can run at all is decided once per process and device by
:func:`kernel_unavailable_reason`: it imports CuPy, compiles both kernels and runs
them on a tiny input, and caches the verdict (a failed import or compile is never
retried), so ``backend="auto"`` can fall back to the torch backend before the
first real forward instead of failing in it.
"""

from __future__ import annotations

import functools
import math

import torch

from .parameters import LIFParameters

#: Threads per block at most; neurons beyond this many are looped over by each thread.
MAX_THREADS = 1024
#: Shared memory a kernel may use without opting in, in bytes.
DEFAULT_SHARED_BYTES = 48 * 1024

_C_TYPES = {torch.float32: "float", torch.float64: "double"}
_ATTRIBUTE_MAX_SHARED_OPTIN = 97  # cudaDevAttrMaxSharedMemoryPerBlockOptin

#: CUDA source of both kernels; :func:`kernel_source` prepends the ``scalar_t`` typedef.
KERNEL_BODY = r"""
// One block per batch row b; thread k owns neurons i = k, k + blockDim.x, ...
// blockDim.x is a multiple of 32 (warp ballots below need whole warps).

extern "C" __global__ void connected_lif_forward(
    const scalar_t* __restrict__ x,        // [T, B, F] input current I
    const scalar_t* __restrict__ omega_t,  // [F, F], omega_t[j * F + i] = omega[i][j]
    scalar_t* __restrict__ spikes,         // [T, B, F] out: s
    scalar_t* __restrict__ charged,        // [T, B, F] out: U, saved for backward
    const int T, const int B, const int F,
    const scalar_t tau, const scalar_t v_threshold, const scalar_t v_rest)
{
    // Shared: V[F] | fired lists [2][F] (double buffered) | spikes per warp [32].
    extern __shared__ __align__(16) unsigned char shared_bytes[];
    scalar_t* v = reinterpret_cast<scalar_t*>(shared_bytes);
    int* fired_lists = reinterpret_cast<int*>(v + F);
    int* warp_fired = fired_lists + 2 * F;

    const int b = blockIdx.x;
    const int lane = threadIdx.x & 31;
    const int warp = threadIdx.x >> 5;
    const int warps = blockDim.x >> 5;
    const unsigned lanes_below = (1u << lane) - 1u;

    for (int i = threadIdx.x; i < F; i += blockDim.x) v[i] = v_rest;  // each thread reads only its own
    int n_fired = 0;  // spikes at t-1; the same value in every thread

    for (int t = 0; t < T; ++t) {
        const int* fired_prev = fired_lists + ((t + 1) & 1) * F;  // neurons that fired at t-1, ascending
        int* fired_now = fired_lists + (t & 1) * F;
        const long long row = ((long long)t * B + b) * F;
        int n_now = 0;
        for (int base = 0; base < F; base += blockDim.x) {  // the same trip count in every thread
            const int i = base + threadIdx.x;
            bool spike = false;
            if (i < F) {
                scalar_t current = x[row + i];
                if (n_fired > 0) {
                    // r_i = sum_j omega[i][j] s_j[t-1], over the neurons j that fired only.
                    scalar_t recurrent = 0;
                    for (int k = 0; k < n_fired; ++k) recurrent += omega_t[(long long)fired_prev[k] * F + i];
                    current = current + recurrent;
                }
                const scalar_t vi = v[i];
                scalar_t drive = current - (vi - v_rest);
                drive = drive / tau;
                const scalar_t u = vi + drive;  // U = V + (I + r - (V - V_rest)) / tau
                spike = u >= v_threshold;
                spikes[row + i] = spike ? scalar_t(1) : scalar_t(0);
                charged[row + i] = u;
                v[i] = spike ? v_rest : u;  // hard reset: s V_rest + (1 - s) U
            }
            // Append this chunk's spikes to fired_now in ascending neuron order.
            const unsigned ballot = __ballot_sync(0xffffffffu, spike);
            if (lane == 0) warp_fired[warp] = __popc(ballot);
            __syncthreads();
            int offset = n_now;
            for (int w = 0; w < warps; ++w) {
                const int count = warp_fired[w];
                if (w < warp) offset += count;
                n_now += count;
            }
            if (spike) fired_now[offset + __popc(ballot & lanes_below)] = i;
            __syncthreads();  // fired_now complete; warp_fired free for the next chunk
        }
        n_fired = n_now;
    }
}

extern "C" __global__ void connected_lif_backward(
    const scalar_t* __restrict__ grad_spikes,  // [T, B, F] dL/ds
    const scalar_t* __restrict__ charged,      // [T, B, F] U from the forward
    const scalar_t* __restrict__ omega,        // [F, F], omega[i * F + j] = omega[i][j]
    scalar_t* __restrict__ grad_x,             // [T, B, F] out: dL/dI
    const int T, const int B, const int F,
    const scalar_t tau, const scalar_t v_threshold, const scalar_t v_rest,
    const scalar_t half_alpha, const scalar_t surrogate_scale)
{
    // Shared: g_V[F] | g_I[2][F] (double buffered: step t writes one, reads g_I[t+1] from the other).
    extern __shared__ __align__(16) unsigned char shared_bytes[];
    scalar_t* grad_v = reinterpret_cast<scalar_t*>(shared_bytes);
    scalar_t* grad_i = grad_v + F;

    const int b = blockIdx.x;
    for (int j = threadIdx.x; j < F; j += blockDim.x) grad_v[j] = 0;  // each thread reads only its own

    for (int t = T - 1; t >= 0; --t) {
        const scalar_t* grad_i_next = grad_i + ((t + 1) & 1) * F;  // g_I[t+1]
        scalar_t* grad_i_now = grad_i + (t & 1) * F;
        const long long row = ((long long)t * B + b) * F;
        for (int j = threadIdx.x; j < F; j += blockDim.x) {
            const scalar_t u = charged[row + j];
            // ATan surrogate as torch evaluates (alpha / 2) / (1 + z * z): reciprocal, then scale.
            const scalar_t z = (u - v_threshold) * surrogate_scale;
            const scalar_t sg = (scalar_t(1) / (scalar_t(1) + z * z)) * half_alpha;
            const scalar_t s = u >= v_threshold ? scalar_t(1) : scalar_t(0);
            scalar_t gs = grad_spikes[row + j];
            if (t < T - 1) {
                // Through the recurrence: sum_i g_I[t+1]_i omega[i][j] (dense).
                scalar_t through = 0;
                for (int i = 0; i < F; ++i) through += grad_i_next[i] * omega[(long long)i * F + j];
                gs = through + gs;
            }
            const scalar_t reset_grad = (scalar_t(1) - s) + (v_rest - u) * sg;
            scalar_t gu = gs * sg;
            gu = gu + grad_v[j] * reset_grad;
            const scalar_t gi = gu / tau;
            grad_x[row + j] = gi;
            grad_v[j] = gu - gi;
            grad_i_now[j] = gi;
        }
        __syncthreads();  // grad_i_now complete before step t-1 reads it
    }
}
"""


def kernel_source(dtype: torch.dtype) -> str:
    """The CUDA source of both kernels for ``dtype`` (float32 or float64).

    >>> kernel_source(torch.float64).splitlines()[0]
    'typedef double scalar_t;'
    """
    return f"typedef {_C_TYPES[dtype]} scalar_t;\n" + KERNEL_BODY


@functools.lru_cache(maxsize=None)
def cupy_unavailable_reason() -> str | None:
    """None when CuPy imports and sees a CUDA device, else why not.

    Checked once per process: a failed ``import cupy`` is not retried.
    """
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


#: The probe's input: one batch row of ``PROBE_FEATURES`` neurons over two steps.
PROBE_FEATURES = 40


@functools.lru_cache(maxsize=None)
def kernel_unavailable_reason(device_index: int) -> str | None:
    """None when both kernels compile and run right on CUDA device ``device_index``, else why not.

    The check is the real thing, once per process and device, and its verdict is
    cached: :func:`cupy_unavailable_reason`, then for float32 and float64 a
    forward and a backward on a fixed two-step input (which makes NVRTC compile
    the kernels and the driver load them, where a missing NVRTC library, a
    compile error or a driver too old for the code shows), compared with the
    torch backend. It synchronises the device's current stream once.
    """
    reason = cupy_unavailable_reason()
    if reason is not None:
        return reason
    try:
        # The reference products must not run in float16 under a caller's autocast.
        with torch.no_grad(), torch.autocast("cuda", enabled=False):
            mismatch = _probe_kernels(torch.device("cuda", device_index))
    except Exception as error:
        message = str(error).strip().splitlines()
        return f"the CuPy kernels failed on cuda:{device_index} ({type(error).__name__}: {message[0] if message else ''})"
    if mismatch is not None:
        return f"the CuPy kernels gave wrong results on cuda:{device_index} ({mismatch})"
    return None


def probe_case(dtype: torch.dtype, device: torch.device | str = "cpu") -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The probe's fixed input ``(x [2, 1, F], omega [F, F], grad_spikes [2, 1, F])``, F = :data:`PROBE_FEATURES`.

    Step 0: the even neurons get 3 (U = 1.5: they fire, in both warps of the
    block), the odd ones 0. Step 1: every neuron gets 1.5 plus omega's pull from
    the 20 that fired, which sums to +1 or -1, so U = 1.25 (a spike) or 0.25:
    far from the threshold, so rounding cannot flip a spike.
    """
    F = PROBE_FEATURES
    index = torch.arange(F, device=device)
    fired = index % 2 == 0
    x = torch.zeros(2, 1, F, dtype=dtype, device=device)
    x[0, 0, fired] = 3.0
    x[1] = 1.5
    signs = torch.where(index % 3 == 0, 1.0, -1.0).to(dtype)
    omega = torch.zeros(F, F, dtype=dtype, device=device)
    omega[:, fired] = signs[:, None] / int(fired.sum())
    grad_spikes = torch.linspace(-1.0, 1.0, 2 * F, dtype=dtype, device=device).reshape(2, 1, F)
    return x, omega, grad_spikes


def _probe_kernels(device: torch.device) -> str | None:
    """Run both kernels on :func:`probe_case` in float32 and float64; None when they match the torch backend."""
    from .connected_lif_torch import connected_lif_backward, connected_lif_forward

    params = LIFParameters()
    for dtype in (torch.float32, torch.float64):
        x, omega, grad_spikes = probe_case(dtype, device)
        spikes, charged = connected_lif_forward_cupy(x, omega, params)
        grad_x = connected_lif_backward_cupy(grad_spikes, charged, omega, params)
        torch.cuda.current_stream(device).synchronize()  # a failed launch shows here, not later
        expected_spikes, expected_charged = connected_lif_forward(x, omega, params)
        expected_grad = connected_lif_backward(grad_spikes, expected_charged, omega, params)
        if not torch.equal(spikes, expected_spikes):
            return f"{dtype} spikes differ from the torch backend"
        if not torch.allclose(grad_x, expected_grad, rtol=1e-5, atol=1e-6):
            return f"{dtype} input gradients differ from the torch backend"
    return None


@functools.lru_cache(maxsize=None)
def _kernels(dtype: torch.dtype):
    """(forward, backward) RawKernels for ``dtype``; CuPy compiles each once per device."""
    import cupy

    source = kernel_source(dtype)
    options = ("--fmad=false",)  # no fused multiply-add: the same rounding as torch's separate ops
    return (
        cupy.RawKernel(source, "connected_lif_forward", options=options),
        cupy.RawKernel(source, "connected_lif_backward", options=options),
    )


def block_threads(features: int) -> int:
    """Threads per block for F neurons: F rounded up to whole warps, at most :data:`MAX_THREADS`.

    >>> block_threads(1), block_threads(128), block_threads(130), block_threads(5000)
    (32, 128, 160, 1024)
    """
    return min(MAX_THREADS, (features + 31) // 32 * 32)


def shared_bytes(features: int, dtype: torch.dtype) -> tuple[int, int]:
    """Dynamic shared memory of the (forward, backward) kernels for F neurons, in bytes.

    >>> shared_bytes(128, torch.float32)   # V, two spike lists, 32 warp counts | g_V and two g_I
    (1664, 1536)
    """
    size = torch.empty((), dtype=dtype).element_size()
    return features * size + 2 * features * 4 + 32 * 4, 3 * features * size


@functools.lru_cache(maxsize=None)
def _shared_limit(device_index: int) -> int:
    """Most dynamic shared memory one block may opt in to on this device, in bytes."""
    import cupy

    return int(cupy.cuda.runtime.deviceGetAttribute(_ATTRIBUTE_MAX_SHARED_OPTIN, device_index))


def launch_stream(device: torch.device) -> int:
    """The CUDA stream the kernels launch on: torch's current stream of ``device`` (its raw handle)."""
    return torch.cuda.current_stream(device).cuda_stream


def _launch(kernel, x: torch.Tensor, batch: int, features: int, nbytes: int, args) -> None:
    """Launch ``kernel`` with one block per batch row on the current torch stream of ``x``'s device."""
    import cupy
    import numpy as np

    device_index = x.device.index if x.device.index is not None else torch.cuda.current_device()
    scalar = np.float64 if x.dtype == torch.float64 else np.float32
    with cupy.cuda.Device(device_index):
        if nbytes > DEFAULT_SHARED_BYTES:
            limit = _shared_limit(device_index)
            if nbytes > limit:
                raise ValueError(
                    f"ConnectedLIF with {features} features needs {nbytes} bytes of shared memory per "
                    f"block, more than this GPU allows ({limit}); use backend='torch' for this width."
                )
            if kernel.max_dynamic_shared_size_bytes < nbytes:
                kernel.max_dynamic_shared_size_bytes = nbytes
        stream = cupy.cuda.ExternalStream(launch_stream(x.device))
        with stream:  # from_dlpack orders the hand-over on this stream: no copy, no host sync
            values = tuple(
                cupy.from_dlpack(a.detach()) if isinstance(a, torch.Tensor)
                else np.int32(a) if isinstance(a, int)
                else scalar(a)
                for a in args
            )
            kernel((batch,), (block_threads(features),), values, shared_mem=nbytes)


def kernel_dtype(dtype: torch.dtype) -> torch.dtype:
    """The dtype the kernels compute in for inputs of ``dtype``: float64 stays, all else is float32.

    ``omega`` goes to the kernel in this dtype too, so under float16 or bfloat16
    inputs the recurrent weights are never rounded to the input's precision.

    >>> kernel_dtype(torch.bfloat16), kernel_dtype(torch.float64)
    (torch.float32, torch.float64)
    """
    return dtype if dtype in _C_TYPES else torch.float32


def connected_lif_forward_cupy(
    x: torch.Tensor, omega: torch.Tensor, p: LIFParameters
) -> tuple[torch.Tensor, torch.Tensor]:
    """Forward over all steps in one launch; returns ``(spikes, U)``, both ``[T, B, F]``.

    The spikes come in ``x``'s dtype, ``U`` in the dtype the kernel computed in.
    """
    dtype = kernel_dtype(x.dtype)
    x_c = x.detach().to(dtype).contiguous()
    T, B, F = x_c.shape
    spikes = torch.empty_like(x_c)
    charged = torch.empty_like(x_c)
    if x_c.numel() > 0:
        omega_t = omega.detach().to(device=x.device, dtype=dtype).t().contiguous()
        forward, _ = _kernels(dtype)
        _launch(
            forward, x_c, B, F, shared_bytes(F, dtype)[0],
            (x_c, omega_t, spikes, charged, T, B, F, float(p.tau), float(p.v_threshold), float(p.v_rest)),
        )
    return spikes.to(x.dtype), charged


def connected_lif_backward_cupy(
    grad_spikes: torch.Tensor, charged: torch.Tensor, omega: torch.Tensor, p: LIFParameters
) -> torch.Tensor:
    """BPTT in one launch; returns the gradient of the input ``[T, B, F]`` in ``charged``'s dtype."""
    dtype = charged.dtype
    grad_spikes = grad_spikes.detach().to(dtype).contiguous()
    T, B, F = charged.shape
    grad_x = torch.empty_like(charged)
    if charged.numel() > 0:
        omega_c = omega.detach().to(device=charged.device, dtype=dtype).contiguous()
        _, backward = _kernels(dtype)
        _launch(
            backward, charged, B, F, shared_bytes(F, dtype)[1],
            (
                grad_spikes, charged, omega_c, grad_x, T, B, F,
                float(p.tau), float(p.v_threshold), float(p.v_rest),
                float(p.alpha / 2), float(math.pi / 2 * p.alpha),
            ),
        )
    return grad_x


class ConnectedLIFCupyFunction(torch.autograd.Function):
    """Autograd Function on the CuPy kernels; the same contract as ``ConnectedLIFFunction``."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, omega: torch.Tensor, params: LIFParameters) -> torch.Tensor:
        spikes, charged = connected_lif_forward_cupy(x, omega, params)
        ctx.save_for_backward(charged, omega)
        ctx.params = params
        ctx.input_dtype = x.dtype
        return spikes

    @staticmethod
    def backward(ctx, grad_spikes: torch.Tensor):
        charged, omega = ctx.saved_tensors
        grad_x = connected_lif_backward_cupy(grad_spikes, charged, omega, ctx.params)
        return grad_x.to(ctx.input_dtype), None, None
