#!/usr/bin/env bash
# GPU check of the spiking neurons: the `gpu` tests of tests/test_neurons.py and
# the neuron benchmark on CUDA, in one run of under 8 minutes.
#
# Made for a GPU machine that has PyTorch (CUDA 13) and cupy-cuda13x but neither
# SpikingJelly nor internet access. What it lacks comes as wheel files in the
# git-ignored folder .whl/ at the repository root. Fill that folder here, on a
# machine with internet, with
#
#     bash benchmarks/prepare_gpu_wheels.sh
#
# which runs `pip download --no-deps` for spikingjelly==2.0.0 and loguru (the
# only import-time requirements of `from spikingjelly.activation_based import
# neuron, surrogate, op_counter` beyond torch and numpy), pytest with its
# pure-Python requirements, and `pip wheel --no-deps -w .whl .` for this project.
# Then bring .whl/ along with the working tree and run, from the repository root:
#
#     bash benchmarks/gpu_check.sh
#
# Results go to $OUT/ (./gpu_results/ when OUT is unset): gpu_check.log (all
# output), environment.txt, pytest_gpu.txt and .xml, bench_neurons_cuda.md and
# .json. The exit status is non-zero when a test or the benchmark failed.
set -euo pipefail
export PYTHONUNBUFFERED=1
cd "$(dirname "$0")/.."

out="${OUT:-gpu_results}"
mkdir -p "$out"
python="${PYTHON:-python}"
exec > >(tee "$out/gpu_check.log") 2>&1
start=$SECONDS
status=0

echo "== environment"
{
    nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv 2>&1 || echo "nvidia-smi unavailable"
    "$python" - <<'PY'
import platform, torch
print("python", platform.python_version(), "torch", torch.__version__, "cuda", torch.version.cuda,
      "available", torch.cuda.is_available(), torch.cuda.get_device_name() if torch.cuda.is_available() else "")
try:
    import cupy
    print("cupy", cupy.__version__, "runtime", cupy.cuda.runtime.runtimeGetVersion())
except Exception as error:
    print("cupy unavailable:", error)
PY
} | tee "$out/environment.txt"

echo "== install from .whl/ (offline, no dependencies)"
if [ ! -d .whl ]; then
    echo "no .whl/ folder here: run benchmarks/prepare_gpu_wheels.sh where there is internet and bring .whl/ along" >&2
    exit 2
fi
"$python" -m pip install --quiet --no-index --no-deps .whl/spikingjelly-*.whl .whl/loguru-*.whl .whl/snn_msa-*.whl
# pytest and what it imports, each only where it is missing (never replace what the image has).
for pair in pytest:pytest pluggy:pluggy iniconfig:iniconfig packaging:packaging pygments:pygments; do
    module=${pair%%:*}
    wheel=${pair##*:}
    if ! "$python" -c "import $module" 2>/dev/null; then
        "$python" -m pip install --quiet --no-index --no-deps .whl/"$wheel"-*.whl
    fi
done
(cd /tmp && "$python" -c "import spikingjelly, snn_msa.neurons; print('the wheel imports:', snn_msa.neurons.__file__)")
# Test and time this working tree, not the wheel (which may be older than the tree).
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
"$python" -c "import snn_msa.neurons; print('testing snn_msa from', snn_msa.neurons.__file__)"
"$python" -m pip list 2>/dev/null | grep -iE '^(torch|cupy|spikingjelly|snn-msa|numpy|pytest|loguru|triton) ' | tee -a "$out/environment.txt"

echo "== gpu tests ($((SECONDS - start)) s so far)"
timeout 270 "$python" -m pytest -m gpu tests/test_neurons.py -p no:cacheprovider -q -rs \
    --junitxml "$out/pytest_gpu.xml" 2>&1 | tee "$out/pytest_gpu.txt" || status=1

echo "== benchmark ($((SECONDS - start)) s so far)"
timeout 150 "$python" benchmarks/bench_neurons.py --device cuda --repeat 5 \
    --json "$out/bench_neurons_cuda.json" | tee "$out/bench_neurons_cuda.md" || status=1

echo "== done in $((SECONDS - start)) s, status $status; results in $out/"
exit "$status"
