#!/usr/bin/env bash
# Fill .whl/ (git-ignored) with the wheels that benchmarks/gpu_check.sh installs
# offline on a GPU machine that has PyTorch (CUDA 13) and cupy-cuda13x but no
# SpikingJelly and no internet. Run here, from any directory:
#
#     bash benchmarks/prepare_gpu_wheels.sh
#
# What goes in, and why (checked by blocking each import in turn):
#   - spikingjelly==2.0.0 and loguru: `from spikingjelly.activation_based import
#     neuron, surrogate, op_counter` needs only loguru beyond torch and numpy
#     (numpy comes with CuPy); its other declared requirements (scipy, tqdm,
#     matplotlib, h5py, ...) are not imported there, hence --no-deps;
#   - pytest and its pure-Python requirements, installed there only when missing;
#   - this project, built with `pip wheel --no-deps`.
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-python}

rm -rf .whl
mkdir -p .whl
"$python" -m pip download --quiet --no-deps --only-binary=:all: -d .whl \
    spikingjelly==2.0.0 "loguru>=0.7" \
    "pytest>=8" pluggy iniconfig packaging pygments
# setuptools reuses build/lib, where a deleted module would live on in the wheel.
rm -rf build
"$python" -m pip wheel --quiet --no-deps -w .whl .
rm -rf build
ls -1 .whl
du -sh .whl
