#!/usr/bin/env bash
# Runs the benchmark configurations of issue #6 and appends one JSON line each to $OUT.
# With TORCH_PYTHON set (a Python that has torch, see torch_reference.py), each of our lines is
# followed by the PyTorch reference of the same workload, measured right after it.
# Usage: [STEPS=3] [TORCH_PYTHON=/tmp/torch-venv/bin/python] bash experiments/benchmarks/run.sh [OUT]
# Table: python experiments/benchmarks/table.py OUT
set -euo pipefail
OUT=${1:-experiments/benchmarks/results_cpu.jsonl}
S=${STEPS:-3}
HERE="$(dirname "$0")"

pair() {   # pair train|stylize FLAGS...: ours, then PyTorch's
  python -m ganstyle_jax.benchmark "$@" --steps="$S" >> "$OUT"
  if [[ -n "${TORCH_PYTHON:-}" ]]; then
    "$TORCH_PYTHON" "$HERE/torch_reference.py" "$@" --steps="$S" >> "$OUT"
  fi
}

pair train --model=cyclegan --image_size=128 --global_batch_size=1
pair train --model=cyclegan --image_size=256 --global_batch_size=1
pair train --model=adain_gan --image_size=128 --global_batch_size=4 --no_adv
pair train --model=adain_gan --image_size=128 --global_batch_size=4
pair train --model=adain_gan --image_size=256 --global_batch_size=8 --no_adv
pair train --model=adain_gan --image_size=256 --global_batch_size=8
pair stylize --image_size=512
pair stylize --image_size=1024
