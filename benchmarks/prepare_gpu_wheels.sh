#!/usr/bin/env bash
# The preparation for benchmarks/gpu_check.sh: fill .whl/ (git-ignored) with the wheels
# that the GPU machine lacks. Run here, where PyPI is reachable, from any directory:
#
#     bash benchmarks/prepare_gpu_wheels.sh
#
# It takes seconds and a few MB. Then carry .whl/ with the working tree to the GPU
# machine (the device tool: carry=[".whl"]) and run `bash benchmarks/gpu_check.sh`
# there. Only a change of the list below needs a new .whl/: the check installs this
# working tree's own snn_msa, not a wheel of it.
#
# The GPU machine has PyTorch with CUDA 13, cupy-cuda13x, numpy, h5py, click, tqdm,
# matplotlib and pytest under `python3` (Python 3.12), and nothing can be fetched
# there. What goes in, as Python 3.12 manylinux wheels, --no-deps:
#   - spikingjelly==2.0.0 and loguru: `from spikingjelly.activation_based import
#     neuron, surrogate, op_counter` needs only loguru beyond torch and numpy; its
#     other declared requirements (scipy, tqdm, matplotlib, h5py, ...) are not
#     imported there, or are in the image;
#   - pytest and its pure-Python requirements, which the check installs only where
#     they are missing.
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-python3}

rm -rf .whl
mkdir -p .whl
"$python" -m pip download --quiet --no-deps --only-binary=:all: -d .whl \
    --python-version 3.12 --implementation cp --abi cp312 \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
    spikingjelly==2.0.0 "loguru>=0.7" \
    "pytest>=8" pluggy iniconfig packaging pygments
ls -1 .whl
du -sh .whl
