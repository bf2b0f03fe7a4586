"""The benchmark CLI prints one JSON line with the fields the benchmark README relies on."""

import json
import os
import subprocess
import sys

import helpers

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def bench(*args):
  proc = subprocess.run(
    [
      sys.executable,
      "-m",
      "ganstyle_jax.benchmark",
      *args,
      "--steps=1",
      "--warmup=0",
      "--peak_flops=1e11",
    ],
    cwd=REPO,
    capture_output=True,
    text=True,
    timeout=600,
    env={**helpers.CHEAP_COMPILES, **{k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}},
  )
  assert proc.returncode == 0, proc.stderr[-2000:]
  lines = [l for l in proc.stdout.splitlines() if l.startswith("{")]
  assert len(lines) == 1
  return json.loads(lines[0])


def test_train_benchmark_line():
  r = bench("train", "--model=cyclegan", "--image_size=32", "--n_blocks=2", "--scan_blocks")
  for k in (
    "model",
    "image_size",
    "global_batch_size",
    "device_kind",
    "device_count",
    "parallelism",
    "dtype",
    "images_per_sec",
    "compile_s",
    "peak_rss_mb",
    "device_peak_bytes",
    "flops_per_step",
    "achieved_flops",
    "mfu",
    "cpu_model",
    "cpu_cores",
    "jax_version",
    "flax_version",
  ):
    assert k in r, k
  assert set(r["cpu_flags"]) == {"avx2", "avx512f", "avx512_bf16", "amx_bf16"}
  assert r["flops_per_step"] > 0 and r["images_per_sec"] > 0
  assert r["generator"]["scan_blocks"] is True
  assert r["compile_s"] == r["lower_s"] + r["xla_compile_s"] and r["xla_compile_s"] > 0
  assert r["first_step_s"] > 0  # the first call ran the step compiled ahead of it
  assert abs(r["mfu"] - r["achieved_flops"] / 1e11) < 1e-12


def test_stylize_benchmark_line():
  r = bench("stylize", "--image_size=64")
  assert r["latency_ms"] > 0 and r["method"] == "generator"


def test_step_flops_count_every_residual_block():
  """The FLOP count is the unrolled program's, though the step scans the blocks (XLA's cost
  analysis counts a loop body once): equal for scan_blocks on and off, and growing with n_blocks."""
  from ganstyle_jax import benchmark

  def flops(n_blocks, scan):
    c = benchmark.bench_config("cyclegan", 32, 1, n_blocks=n_blocks, scan_blocks=scan)
    c.model.generator.ngf = 8
    _, state, host, vgg = benchmark.train_problem(c)
    return benchmark.step_flops(c, state, host, vgg)

  assert flops(3, True) == flops(3, False) > flops(1, True)
