#!/usr/bin/env bash
# The GPU check: the one command to run on a GPU machine. It tests the CuPy kernel
# there and answers the performance questions in one call that ends within about
# 9 minutes by construction (every step has a time limit inside one overall budget
# of 480 s; no GPU has run it yet, so there is no measured time to give).
#
# The machine it is made for has PyTorch with CUDA 13 and cupy-cuda13x as `python3`
# (Python 3.12), but no SpikingJelly and no network: files reach it only as the
# working tree plus named git-ignored folders. So, in two steps:
#
#   1. Here, on a machine with PyPI access (5.4 s and 2.9 MB when last run; again only
#      when the wheel list in that script changes, not when the code does, since the
#      check tests this tree itself):
#          bash benchmarks/prepare_gpu_wheels.sh      # fills .whl/ (git-ignored)
#   2. There, from the repository root, with the ignored folder .whl/ carried along
#      with the working tree (the device tool: carry=[".whl"], timeout_s=600):
#          bash benchmarks/gpu_check.sh
#
# Steps, each logged to $OUT/gpu_check.log:
#   environment   GPU, driver, Python, torch, CuPy, NVRTC, Triton -> environment.txt
#   install       what `python3` lacks (spikingjelly, loguru; pytest and its requirements
#                 only if missing) from .whl/ into a private folder, never into the image;
#                 this tree's snn_msa is laid out beside them as its wheel would be
#   backend check the kernels compiled and run once on every GPU (the `auto` backend's check)
#   gpu tests     pytest --require-gpu -m gpu tests/test_neurons.py -> pytest_gpu.xml: a gpu
#                 test that cannot run fails instead of skipping
#   neurons       benchmarks/bench_neurons.py --device cuda -> bench_neurons_cuda.json
#   training      benchmarks/bench_gpu_train.py: seconds per epoch of sgmt-tav on the cupy
#                 and torch backends and of its twin sgmt-tav-ann -> bench_gpu_train.json
# and summary.txt: one line per step. Six files in $OUT (./gpu_results/ when OUT is unset);
# a step that fails or runs out of time still leaves every result it got.
#
# Exit status: 0 only when every step passed; 1 when a gpu test failed or did not run,
# the backend check failed, a benchmark row failed, or a step ran out of time; 2 when
# the set-up failed (no .whl/ with what `python3` lacks).
#
# Environment: PYTHON (default python3), OUT, GPU_CHECK_BUDGET_S (default 480: the
# seconds all steps may take together).
set -uo pipefail
export PYTHONUNBUFFERED=1
cd "$(dirname "$0")/.."

out="${OUT:-gpu_results}"
mkdir -p "$out"
out="$(cd "$out" && pwd)"
python="${PYTHON:-python3}"
exec > >(tee "$out/gpu_check.log") 2>&1
start=$SECONDS
deadline=$((start + ${GPU_CHECK_BUDGET_S:-480}))
status=0
summary=()

note() {  # note STEP VERDICT [DETAIL]: one line of summary.txt; any verdict but "ok" fails the check
    summary+=("$1: $2${3:+ ($3)}")
    echo "-- ${summary[-1]}"
    if [ "$2" != ok ]; then status=1; fi
}

site=""
finish() {  # finish [STATUS]
    [ "$#" -gt 0 ] && status=$1
    [ -n "$site" ] && rm -rf "$site"
    summary+=("total: $((SECONDS - start)) s, exit status $status")
    printf '%s\n' "${summary[@]}" > "$out/summary.txt"
    echo "== summary (also in $out/summary.txt)"
    printf '%s\n' "${summary[@]}"
    exit "$status"
}

limit() {  # limit CAP: seconds a step may take, at most CAP and what is left of the budget
    local left=$((deadline - SECONDS))
    if [ "$left" -lt "$1" ]; then echo "$left"; else echo "$1"; fi
}

timed() {  # timed CAP COMMAND...: run with a limit; SIGINT first, so Python writes what it has
    local seconds
    seconds=$(limit "$1")
    shift
    if [ "$seconds" -lt 20 ]; then
        echo "not run: the time budget is spent"
        return 124
    fi
    timeout -s INT -k 20 "$seconds" "$@"
}

summary_of() {  # summary_of FILE: the "summary" line of a benchmark's JSON, or "no results"
    "$python" -c "import json, sys; print(json.load(open(sys.argv[1]))['summary'])" "$1" 2>/dev/null || echo "no results"
}

verdict() {  # verdict RC: ok, or why not
    case "$1" in
        0) echo ok ;;
        124 | 130 | 137) echo "FAILED: out of time (exit $1)" ;;
        *) echo "FAILED (exit $1)" ;;
    esac
}

echo "== environment"
{
    echo "date: $(date -u '+%Y-%m-%d %H:%M:%S UTC'), commit: $(git rev-parse --short HEAD 2>/dev/null || echo unknown)" \
        "$(git status --porcelain 2>/dev/null | grep -q . && echo '(with uncommitted changes)')"
    nvidia-smi --query-gpu=index,name,driver_version,memory.total --format=csv 2>&1 || echo "nvidia-smi unavailable"
    "$python" - <<'PY'
import platform, sys
print("python", platform.python_version(), sys.executable)
try:
    import torch
    print("torch", torch.__version__, "cuda", torch.version.cuda, "available", torch.cuda.is_available(),
          "devices", torch.cuda.device_count(), [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())])
except Exception as error:
    print("torch unavailable:", error)
def ask(what, call):
    try:
        return call()
    except Exception as error:
        return f"unavailable ({type(error).__name__}: {' '.join(str(error).split())[:200]})"
try:
    import cupy
    print("cupy", cupy.__version__)
    for what, call in [("cuda runtime", cupy.cuda.runtime.runtimeGetVersion), ("cuda driver", cupy.cuda.runtime.driverGetVersion),
                       ("nvrtc", cupy.cuda.nvrtc.getVersion), ("cupy devices", cupy.cuda.runtime.getDeviceCount)]:
        print(f"  {what}:", ask(what, call))
except Exception as error:
    print("cupy unavailable:", type(error).__name__, error)
try:
    import triton
    print("triton", triton.__version__)
except Exception as error:
    print("triton unavailable:", error)
PY
} 2>&1 | tee "$out/environment.txt"

echo "== install ($((SECONDS - start)) s so far)"
site="$(mktemp -d "${TMPDIR:-/tmp}/snn_msa_gpu_site.XXXXXX")"
missing=()
for module in spikingjelly loguru pytest pluggy iniconfig packaging pygments; do
    "$python" -c "import $module" 2>/dev/null || missing+=("$module")
done
echo "python3 lacks: ${missing[*]:-nothing}"
wheels=()
for module in "${missing[@]}"; do
    found=(.whl/"$module"-*.whl)
    if [ ! -e "${found[0]}" ]; then
        note install "FAILED: $python has no $module and .whl/ holds no $module wheel; run 'bash benchmarks/prepare_gpu_wheels.sh' where PyPI is reachable and carry .whl/ along with the tree"
        finish 2
    fi
    wheels+=("${found[@]}")
done
if [ "${#wheels[@]}" -gt 0 ]; then
    if ! "$python" -m pip install --quiet --no-index --no-deps --no-compile --no-cache-dir --target "$site" "${wheels[@]}"; then
        note install "FAILED: pip could not install ${wheels[*]}"
        finish 2
    fi
fi
# The layout of this project's wheel (setup.cfg maps snn_msa.zoo to zoo/), from this tree.
cp -r snn_msa "$site/snn_msa"
cp -r zoo "$site/snn_msa/zoo"
find "$site/snn_msa" -name __pycache__ -prune -exec rm -rf {} +
export PYTHONPATH="$site${PYTHONPATH:+:$PYTHONPATH}"
if ! (cd /tmp && "$python" -c "
# What the tests and both benchmarks import (bench_train.one_case: data, registry, training).
import spikingjelly.activation_based.op_counter, snn_msa, snn_msa.zoo, snn_msa.neurons
import snn_msa.data, snn_msa.registry, snn_msa.training.loop, snn_msa.training.trainer
print('snn_msa from', snn_msa.__file__)"); then
    note install "FAILED: the packages do not import (see the log)"
    finish 2
fi
"$python" -m pip list 2>/dev/null | grep -iE '^(torch|cupy-cuda[0-9a-z]*|numpy|triton|pytest|spikingjelly|loguru) ' >> "$out/environment.txt"
note install ok

echo "== backend check ($((SECONDS - start)) s so far)"
timed 90 "$python" - <<'PY' 2>&1 | tee -a "$out/environment.txt"
import sys, time, torch
from snn_msa.neurons.connected_lif_cupy import kernel_unavailable_reason
if not torch.cuda.is_available():
    sys.exit("backend check: torch sees no CUDA device")
failed = False
for index in range(torch.cuda.device_count()):
    started = time.perf_counter()
    reason = kernel_unavailable_reason(index)
    print(f"backend check cuda:{index}: {reason or 'the CuPy kernels compile and match the torch backend'} "
          f"({time.perf_counter() - started:.1f} s, compiles included)")
    failed = failed or reason is not None
sys.exit(1 if failed else 0)
PY
note "backend check" "$(verdict $?)"

echo "== gpu tests ($((SECONDS - start)) s so far)"
# -P: do not put the working directory on sys.path (its snn_msa lacks snn_msa.zoo; the private folder has both).
timed 200 "$python" -P -m pytest --require-gpu -m gpu tests/test_neurons.py -p no:cacheprovider -q -rs \
    --junitxml "$out/pytest_gpu.xml"
rc=$?
counts=$("$python" - "$out/pytest_gpu.xml" <<'PY' 2>/dev/null || echo "no report"
import sys, xml.etree.ElementTree as ET
suite = ET.parse(sys.argv[1]).getroot()
suite = suite if suite.tag == "testsuite" else suite.find("testsuite")
n = {k: int(suite.get(k, 0)) for k in ("tests", "failures", "errors", "skipped")}
print(f"{n['tests'] - n['failures'] - n['errors'] - n['skipped']} passed, {n['failures']} failed, "
      f"{n['errors']} errors, {n['skipped']} skipped")
PY
)
note "gpu tests" "$(verdict $rc)" "$counts"

echo "== neuron benchmark ($((SECONDS - start)) s so far)"
timed 100 "$python" benchmarks/bench_neurons.py --device cuda --repeat 5 --json "$out/bench_neurons_cuda.json"
rc=$?
note "neuron benchmark" "$(verdict $rc)" "$(summary_of "$out/bench_neurons_cuda.json")"

echo "== training benchmark ($((SECONDS - start)) s so far)"
budget=$(( $(limit 200) - 15 ))
timed 200 "$python" benchmarks/bench_gpu_train.py --device cuda --epochs 2 --train-size 512 --valid-size 128 \
    --case-timeout 100 --budget "$budget" --json "$out/bench_gpu_train.json"
rc=$?
note "training benchmark" "$(verdict $rc)" "$(summary_of "$out/bench_gpu_train.json")"

finish
