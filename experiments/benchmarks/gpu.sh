#!/usr/bin/env bash
# The GPU benchmarks of issue #21, run once on a lent device machine (one NVIDIA H200):
# train steps of adain_gan 256 px batch 64 and cyclegan 256 px batch 8 in float32 and bfloat16,
# then adain stylize latency at 512 and 1024 px; one JSON line each appended to OUT.
# MFU is against the datasheet's dense peak of the dtype's tensor-core path: bf16 989.4 TFLOP/s,
# float32 494.7 TFLOP/s (XLA runs float32 convolutions as TF32 on the GPU by default);
# `achieved_flops` lets any other peak be applied. Measured matmul rates go to stderr.
# Usage: [STEPS=10] [EACH=150] bash experiments/benchmarks/gpu.sh OUT.jsonl
set -uo pipefail
OUT=${1:?usage: bash experiments/benchmarks/gpu.sh OUT.jsonl}
S=${STEPS:-10}
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv,noheader >&2
python3 - >&2 <<'PY'
import time, jax, jax.numpy as jnp
print("jax", jax.__version__, jax.devices())
for dtype in (jnp.float32, jnp.bfloat16):
  a = jnp.ones((8192, 8192), dtype)
  f = jax.jit(lambda x: x @ x)
  f(a).block_until_ready()
  t = time.perf_counter()
  for _ in range(10):
    r = f(a)
  r.block_until_ready()
  print(f"matmul 8192^3 {jnp.dtype(dtype).name}: {2 * 8192**3 * 10 / (time.perf_counter() - t) / 1e12:.0f} TFLOP/s")
PY
bench() {   # bench train|stylize FLAGS...: one JSON line, or a line on stderr saying it failed
  timeout "${EACH:-150}" python3 -m ganstyle_jax.benchmark "$@" --steps="$S" --warmup=3 >> "$OUT" \
    || echo "failed (exit $?): $*" >&2
}
for dtype in float32 bfloat16; do
  peak=$([[ $dtype == bfloat16 ]] && echo 989.4e12 || echo 494.7e12)
  bench train --model=adain_gan --image_size=256 --global_batch_size=64 --compute_dtype=$dtype --peak_flops=$peak
  bench train --model=cyclegan --image_size=256 --global_batch_size=8 --compute_dtype=$dtype --peak_flops=$peak
done
bench stylize --image_size=512
bench stylize --image_size=1024
bench stylize --image_size=1024 --compute_dtype=bfloat16
