#!/usr/bin/env bash
# Runs the benchmark configurations of issue #6 and appends one JSON line each to $OUT.
# Usage: bash experiments/benchmarks/run.sh [OUT=experiments/benchmarks/results_cpu.jsonl]
set -euo pipefail
OUT=${1:-experiments/benchmarks/results_cpu.jsonl}
B="python -m ganstyle_jax.benchmark"
S=${STEPS:-3}
$B train --model=cyclegan --image_size=128 --global_batch_size=1 --steps=$S >> "$OUT"
$B train --model=cyclegan --image_size=256 --global_batch_size=1 --steps=$S >> "$OUT"
$B train --model=adain_gan --image_size=128 --global_batch_size=4 --no_adv --steps=$S >> "$OUT"
$B train --model=adain_gan --image_size=128 --global_batch_size=4 --steps=$S >> "$OUT"
$B train --model=adain_gan --image_size=256 --global_batch_size=8 --no_adv --steps=$S >> "$OUT"
$B train --model=adain_gan --image_size=256 --global_batch_size=8 --steps=$S >> "$OUT"
$B stylize --image_size=512 --steps=$S >> "$OUT"
$B stylize --image_size=1024 --steps=$S >> "$OUT"
