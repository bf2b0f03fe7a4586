"""Benchmarks: train-step throughput, compile time, memory, FLOPs/MFU, and stylize latency.

  python -m ganstyle_jax.benchmark train --model=cyclegan --image_size=256 --global_batch_size=1
  python -m ganstyle_jax.benchmark train --model=adain_gan --image_size=256 --global_batch_size=8 [--no_adv]
  python -m ganstyle_jax.benchmark stylize --image_size=512

Each measurement prints one JSON line. Networks are the reference architectures of DESIGN.md
(ResNet-9 ngf 64 + 70x70 PatchGAN; AdaIN VGG19-relu4_1 encoder + decoder) with random weights
and random inputs, so a benchmark needs no data or downloads. Times are medians over the timed
steps after warm-up, each ended by block_until_ready. A train step is compiled ahead of its
first call: `compile_s` = trace + lower (`lower_s`) + XLA's compile (`xla_compile_s`); a stylize
line's `compile_s` is its first call (trace + compile + run). FLOPs come from XLA's cost
analysis of the step; `mfu` divides the achieved FLOP/s by --peak_flops, or else by a float32
matmul measured on the same device.
"""

from __future__ import annotations

import functools
import importlib.metadata
import json
import os
import platform
import resource
import sys
import time

from absl import flags
import jax
import jax.numpy as jnp
import numpy as np

from ganstyle_jax import build, errors, families, gatys, ops, parallel
from ganstyle_jax.config_base import base_config
from ganstyle_jax.errors import UserError
from ganstyle_jax.models import generators
from ganstyle_jax.models import vgg as vgg_lib


def peak_rss_mb() -> float:
  return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def device_peak_bytes() -> int | None:
  stats = jax.local_devices()[0].memory_stats()
  return None if not stats else stats.get("peak_bytes_in_use")


def measured_matmul_flops(n: int = 2048, reps: int = 5) -> float:
  """float32 n^3 matmul FLOP/s on the default device (the MFU denominator when none given)."""
  a = jax.random.normal(jax.random.key(0), (n, n), jnp.float32)
  f = jax.jit(lambda x: x @ x)
  f(a).block_until_ready()
  ts = []
  for _ in range(reps):
    t = time.perf_counter()
    f(a).block_until_ready()
    ts.append(time.perf_counter() - t)
  return 2 * n**3 / float(np.median(ts))


def machine() -> dict:
  """Where a measurement ran: CPU model, cores, the ISA flags that matter, library versions."""
  info = {}
  try:
    with open("/proc/cpuinfo") as f:
      for line in f:
        key, _, value = line.partition(":")
        info.setdefault(key.strip(), value.strip())
  except OSError:  # not Linux: no flags to report
    pass
  cpu_flags = set(info.get("flags", "").split())
  d = jax.devices()[0]
  return {
    "cpu_model": info.get("model name") or platform.processor() or platform.machine(),
    "cpu_cores": os.cpu_count(),
    "cpu_flags": {f: f in cpu_flags for f in ("avx2", "avx512f", "avx512_bf16", "amx_bf16")},
    "device_kind": d.device_kind,
    "platform": d.platform,
    "device_count": jax.device_count(),
    "python_version": platform.python_version(),
    **{
      f"{name}_version": importlib.metadata.version(name)
      for name in ("jax", "jaxlib", "flax", "optax", "numpy")
    },
  }


def bench_config(
  model: str = "cyclegan",
  image_size: int = 256,
  global_batch_size: int = 1,
  parallelism: str = "jit",
  compute_dtype: str = "float32",
  adversarial: bool = True,
  n_blocks: int = 9,
  scan_blocks: bool = False,
):
  """The reference architectures of DESIGN.md at this size, random VGG (no download)."""
  c = base_config(model)
  c.parallelism, c.compute_dtype = parallelism, compute_dtype
  c.data.image_size, c.data.global_batch_size = image_size, global_batch_size
  c.model.generator.n_blocks, c.model.generator.scan_blocks = n_blocks, scan_blocks
  c.model.vgg.weights = "random"
  if not adversarial:
    c.loss.w_adv = 0.0
  return c


def timed(fn, n_warmup: int, n_timed: int) -> tuple[float, list[float]]:
  """(first call's seconds, the timed calls' seconds); each call ended by block_until_ready."""
  t = time.perf_counter()
  jax.block_until_ready(fn())
  first = time.perf_counter() - t
  for _ in range(n_warmup):
    jax.block_until_ready(fn())
  ts = []
  for _ in range(n_timed):
    t = time.perf_counter()
    jax.block_until_ready(fn())
    ts.append(time.perf_counter() - t)
  return first, ts


def train_problem(config, conv_policy: ops.ConvPolicy = ops.DEFAULT) -> tuple:
  """(step body, host state, host batch of random images, VGG variables or None) for config,
  every network computing its convolutions by `conv_policy`."""
  setup = build.build_setup(config, conv_policy)
  body = functools.partial(setup.family.train_step, setup=setup)
  size, n = config.data.image_size, config.data.global_batch_size
  state = build.init_state(setup, jax.random.key(0), size)
  vgg = vgg_lib.load_params("random") if setup.family.needs_vgg else None
  rng = np.random.default_rng(0)
  host = {
    k: rng.uniform(-1, 1, (n, size, size, 3)).astype(np.float32)
    for k in setup.family.batch_keys(config)
  }
  return body, state, host, vgg


def step_flops(config, state, host, vgg) -> float:
  """FLOPs of one train step of config, from XLA's cost analysis of the lowered (not yet
  optimised) program for the CPU, whatever the device: the same step body built with XLA's own
  convolutions (the analysis counts a loop body once, and Winograd's multiplications rather
  than the convolution's), on abstract arguments of the shapes of (state, host, vgg). Lowering
  alone spares a compilation (the optimised program counts 1-3% fewer: fused elementwise work;
  cyclegan and adain_gan at 64 px, 2026-12-04). Where that analysis has no count, the program
  is compiled for the default device and its analysis used. CycleGAN's residual blocks are
  unrolled for the count (the analysis would count the scan's one block once)."""
  config = config.copy_and_resolve_references()
  config.model.generator.scan_blocks = False
  setup = build.build_setup(config, ops.ConvPolicy.xla())
  body = jax.jit(functools.partial(setup.family.train_step, setup=setup, axis_name=None))
  args = jax.tree.map(
    lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype), (state, host, vgg, jax.random.key(1))
  )

  def flops_of(cost) -> float:
    cost = cost[0] if isinstance(cost, (list, tuple)) else cost
    return float(cost.get("flops", 0.0)) if cost else 0.0

  flops = flops_of(body.trace(*args).lower(lowering_platforms=("cpu",)).cost_analysis())
  return flops or flops_of(body.lower(*args).compile().cost_analysis())


def bench_train(config, *, warmup: int = 2, steps: int = 5, peak_flops: float = 0.0) -> dict:
  """Step time, images/s, compile time, FLOPs and MFU of config's train step."""
  body, state, host, vgg = train_problem(config)
  step = parallel.make_step(body, config.parallelism)
  state, vgg = step.place_replicated(state), step.place_replicated(vgg)
  key = step.place_replicated(jax.random.key(1))
  batch = step.prepare_batch(host)
  phases = step.compile(state, batch, vgg, key)
  flops = step_flops(config, state, host, vgg)
  holder = {"state": state}

  def one():
    holder["state"], metrics = step(holder["state"], batch, vgg, key)
    return metrics

  first_step_s, ts = timed(one, warmup, steps)
  step_s = float(np.median(ts))
  peak = peak_flops or measured_matmul_flops()
  n = config.data.global_batch_size
  return {
    "benchmark": "train",
    "model": config.model.name,
    "image_size": config.data.image_size,
    "global_batch_size": n,
    "parallelism": config.parallelism,
    "dtype": config.compute_dtype,
    "adversarial": config.loss.w_adv > 0,
    "generator": config.model.generator.to_dict(),
    "step_s": step_s,
    "images_per_sec": n / step_s,
    "step_s_all": ts,
    # Compiled ahead of the first step (trace + lower + XLA compile); before 2026-12-05 the
    # lines' compile_s was the first call, which also ran the step.
    "compile_s": phases["lower_s"] + phases["xla_compile_s"],
    **phases,
    "first_step_s": first_step_s,
    "flops_per_step": flops,
    # Counted on direct convolutions; Winograd layers (CPU) multiply less, so "mfu" is
    # model FLOP/s over the peak and can exceed 1 there.
    "flops_basis": "direct convolutions, lowered program",
    "achieved_flops": flops / step_s,
    "peak_flops": peak,
    "peak_flops_source": "given" if peak_flops else "measured f32 2048^3 matmul",
    "mfu": flops / step_s / peak,
    "peak_rss_mb": peak_rss_mb(),
    "device_peak_bytes": device_peak_bytes(),
    **machine(),
  }


def bench_stylize(
  image_size: int = 512,
  *,
  method: str = "generator",
  warmup: int = 2,
  steps: int = 5,
  compute_dtype: str = "float32",
) -> dict:
  """Latency of one adain_gan stylization (encode C and S, AdaIN, decode) or of one Gatys
  optimisation step (gatys.loss's gradient), on a square image of image_size."""
  vgg_variables = vgg_lib.load_params("random")
  x = jnp.asarray(
    np.random.default_rng(0).uniform(-1, 1, (1, image_size, image_size, 3)).astype(np.float32)
  )
  if method == "generator":
    setup = build.build_setup(bench_config("adain_gan", image_size, compute_dtype=compute_dtype))
    g = setup.generator
    dec = setup.family.init_params(setup, jax.random.key(0), image_size)["g_params"]
    variables = generators.assemble_variables(vgg_variables, dec)
    fn = jax.jit(lambda v, c, s: g.apply(v, c, s))
    run_once = lambda: fn(variables, x, x)
  elif method == "optimize":
    grad, target = jax.jit(jax.grad(gatys.loss)), gatys.targets(vgg_variables, x, x)
    run_once = lambda: grad(x, vgg_variables, target)
  else:
    raise UserError(f"unknown stylize method {method!r}; use generator or optimize")
  compile_s, ts = timed(run_once, warmup, steps)
  return {
    "benchmark": "stylize",
    "method": method,
    "image_size": image_size,
    "dtype": compute_dtype,
    "latency_ms": 1000 * float(np.median(ts)),
    "latency_ms_all": [1000 * t for t in ts],
    "compile_s": compile_s,
    "peak_rss_mb": peak_rss_mb(),
    "device_peak_bytes": device_peak_bytes(),
    **machine(),
  }


def main(argv):
  if len(argv) != 2 or argv[1] not in ("train", "stylize"):
    sys.exit("usage: python -m ganstyle_jax.benchmark train|stylize [--flags]")
  f = flags.FLAGS
  if argv[1] == "train":
    config = bench_config(
      f.model,
      f.image_size,
      f.global_batch_size,
      f.parallelism,
      f.compute_dtype,
      not f.no_adv,
      f.n_blocks,
      f.scan_blocks,
    )
    result = bench_train(config, warmup=f.warmup, steps=f.steps, peak_flops=f.peak_flops)
  else:
    result = bench_stylize(
      f.image_size, method=f.method, warmup=f.warmup, steps=f.steps, compute_dtype=f.compute_dtype
    )
  print(json.dumps(result), flush=True)


def run():
  """Console script `ganstyle-bench`."""
  flags.DEFINE_enum("model", "cyclegan", list(families.FAMILIES), "Model family.")
  flags.DEFINE_integer("image_size", 256, "Square image size.")
  flags.DEFINE_integer("global_batch_size", 1, "Global batch (train).")
  flags.DEFINE_enum("parallelism", "jit", ["pmap", "jit"], "Step wrapper.")
  flags.DEFINE_enum("compute_dtype", "float32", ["float32", "bfloat16"], "Network compute dtype.")
  flags.DEFINE_bool("no_adv", False, "adain_gan: drop the adversarial term (no D).")
  flags.DEFINE_integer("n_blocks", 9, "cyclegan: residual blocks of the generator.")
  flags.DEFINE_bool("scan_blocks", False, "cyclegan: the residual blocks as one lax.scan.")
  flags.DEFINE_integer("warmup", 2, "Untimed steps after the first (compiling) one.")
  flags.DEFINE_integer("steps", 5, "Timed steps (median reported).")
  flags.DEFINE_float("peak_flops", 0.0, "Peak FLOP/s for MFU; 0 = measure a float32 matmul.")
  flags.DEFINE_enum(
    "method",
    "generator",
    ["generator", "optimize"],
    "stylize: the trained-generator path or Gatys optimisation (per step).",
  )
  errors.run_cli(main)


if __name__ == "__main__":
  run()
