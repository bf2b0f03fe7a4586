"""Benchmarks: train-step throughput, compile time, memory, FLOPs/MFU, and stylize latency.

  python -m ganstyle_jax.benchmark train --model=cyclegan --image_size=256 --global_batch_size=1
  python -m ganstyle_jax.benchmark train --model=adain_gan --image_size=256 --global_batch_size=8 [--no_adv]
  python -m ganstyle_jax.benchmark stylize --image_size=512

Each measurement prints one JSON line. Networks are the reference architectures of DESIGN.md
(ResNet-9 ngf 64 + 70x70 PatchGAN; AdaIN VGG19-relu4_1 encoder + decoder) with random weights
and random inputs, so a benchmark needs no data or downloads. Times are medians over the timed
steps after warm-up, each ended by block_until_ready; `compile_s` is the first call (trace +
compile + run). FLOPs come from XLA's cost analysis of the compiled step; `mfu` divides the
achieved FLOP/s by --peak_flops, or else by a float32 matmul measured on the same device.
"""
from __future__ import annotations

import functools
import json
import resource
import sys
import time

from absl import app, flags
import jax
import jax.numpy as jnp
import numpy as np

from ganstyle_jax import build, parallel, steps
from ganstyle_jax.config_base import base_config
from ganstyle_jax.models import layers
from ganstyle_jax.models import vgg as vgg_lib

FLAGS = flags.FLAGS
flags.DEFINE_enum("model", "cyclegan", ["cyclegan", "adain_gan"], "Model family.")
flags.DEFINE_integer("image_size", 256, "Square image size.")
flags.DEFINE_integer("global_batch_size", 1, "Global batch (train).")
flags.DEFINE_enum("parallelism", "jit", ["pmap", "jit"], "Step wrapper.")
flags.DEFINE_enum("compute_dtype", "float32", ["float32", "bfloat16"], "Network compute dtype.")
flags.DEFINE_bool("no_adv", False, "adain_gan: drop the adversarial term (no D).")
flags.DEFINE_integer("n_blocks", 9, "cyclegan: residual blocks of the generator.")
flags.DEFINE_integer("warmup", 2, "Untimed steps after the first (compiling) one.")
flags.DEFINE_integer("steps", 5, "Timed steps (median reported).")
flags.DEFINE_float("peak_flops", 0.0, "Peak FLOP/s for MFU; 0 = measure a float32 matmul.")
flags.DEFINE_enum("method", "generator", ["generator", "optimize"],
                  "stylize: the trained-generator path or Gatys optimisation (per step).")


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
  return 2 * n ** 3 / float(np.median(ts))


def _env() -> dict:
  d = jax.devices()[0]
  return {"device_kind": d.device_kind, "platform": d.platform, "device_count": jax.device_count(),
          "jax_version": jax.__version__}


def bench_config():
  c = base_config(FLAGS.model)
  c.parallelism, c.compute_dtype = FLAGS.parallelism, FLAGS.compute_dtype
  c.data.image_size, c.data.global_batch_size = FLAGS.image_size, FLAGS.global_batch_size
  c.model.generator.n_blocks = FLAGS.n_blocks
  c.model.vgg.weights = "random"
  if FLAGS.no_adv:
    c.loss.w_adv = 0.0
  return c


def timed(fn, n_warmup: int, n_timed: int) -> tuple[float, list[float]]:
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


def train_problem(config) -> tuple:
  """(step body, host state, host batch of random images, VGG variables or None) for config."""
  setup = build.build_setup(config)
  body = functools.partial(steps.train_step_fn(setup), setup=setup)
  size, n = config.data.image_size, config.data.global_batch_size
  state = build.init_state(setup, jax.random.key(0), size)
  adain = config.model.name == "adain_gan"
  vgg = vgg_lib.load_params("random") if adain else None
  rng = np.random.default_rng(0)
  host = {k: rng.uniform(-1, 1, (n, size, size, 3)).astype(np.float32)
          for k in (("content", "style", "real") if adain else ("A", "B"))}
  return body, state, host, vgg


def bench_train() -> dict:
  config = bench_config()
  body, state, host, vgg = train_problem(config)
  step = parallel.make_step(body, config.parallelism)
  state, vgg = step.place_replicated(state), step.place_replicated(vgg)
  key = step.place_replicated(jax.random.key(1))
  batch = step.prepare_batch(host)
  # FLOPs of one step from XLA's cost analysis (the jit form of the same body, traced with
  # XLA's own convolutions: the analysis counts a loop body once, and Winograd's
  # multiplications rather than the convolution's).
  with layers.xla_convolutions():
    compiled = jax.jit(functools.partial(body, axis_name=None)).lower(
        state, jax.device_get(batch) if FLAGS.parallelism == "jit" else host, vgg, key).compile()
  cost = compiled.cost_analysis()
  cost = cost[0] if isinstance(cost, (list, tuple)) else cost
  flops = float(cost.get("flops", 0.0)) if cost else 0.0
  holder = {"state": state}

  def one():
    holder["state"], metrics = step(holder["state"], batch, vgg, key)
    return metrics

  compile_s, ts = timed(one, FLAGS.warmup, FLAGS.steps)
  step_s = float(np.median(ts))
  peak = FLAGS.peak_flops or measured_matmul_flops()
  return {"benchmark": "train", "model": FLAGS.model, "image_size": FLAGS.image_size,
          "global_batch_size": FLAGS.global_batch_size, "parallelism": FLAGS.parallelism,
          "dtype": FLAGS.compute_dtype, "adversarial": not FLAGS.no_adv,
          **({"n_blocks": FLAGS.n_blocks} if FLAGS.model == "cyclegan" else {}),
          "step_s": step_s, "images_per_sec": FLAGS.global_batch_size / step_s,
          "step_s_all": ts, "compile_s": compile_s, "flops_per_step": flops,
          # Counted on direct convolutions; Winograd layers (CPU) multiply less, so "mfu" is
          # model FLOP/s over the peak and can exceed 1 there.
          "flops_basis": "direct convolutions",
          "achieved_flops": flops / step_s, "peak_flops": peak,
          "peak_flops_source": "flag" if FLAGS.peak_flops else "measured f32 2048^3 matmul",
          "mfu": flops / step_s / peak, "peak_rss_mb": peak_rss_mb(),
          "device_peak_bytes": device_peak_bytes(), **_env()}


def bench_stylize() -> dict:
  config = bench_config()
  config.model.name = "adain_gan"
  setup = build.build_setup(config)
  g = setup.generator
  vgg_variables = vgg_lib.load_params("random")
  x = jnp.asarray(np.random.default_rng(0).uniform(
      -1, 1, (1, FLAGS.image_size, FLAGS.image_size, 3)).astype(np.float32))
  if FLAGS.method == "generator":
    from ganstyle_jax.models import generators
    dec = g.init(jax.random.key(0), x[:, :32, :32], x[:, :32, :32])["params"]["decoder"]
    variables = generators.assemble_variables(vgg_variables, dec)
    fn = jax.jit(lambda v, c, s: g.apply(v, c, s))   # encode C and S, AdaIN, decode
    run = lambda: fn(variables, x, x)
  else:
    from ganstyle_jax import losses
    layers = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")
    feats = lambda im: vgg_lib.features(vgg_variables, im, layers)
    target = feats(x)
    grad = jax.jit(jax.grad(lambda im: losses.gram_style_loss(feats(im), target, layers)))
    run = lambda: grad(x)
  compile_s, ts = timed(run, FLAGS.warmup, FLAGS.steps)
  return {"benchmark": "stylize", "method": FLAGS.method, "image_size": FLAGS.image_size,
          "latency_ms": 1000 * float(np.median(ts)), "latency_ms_all": [1000 * t for t in ts],
          "compile_s": compile_s, "peak_rss_mb": peak_rss_mb(),
          "device_peak_bytes": device_peak_bytes(), **_env()}


def main(argv):
  if len(argv) != 2 or argv[1] not in ("train", "stylize"):
    sys.exit("usage: python -m ganstyle_jax.benchmark train|stylize [--flags]")
  from ganstyle_jax.errors import UserError
  try:
    result = bench_train() if argv[1] == "train" else bench_stylize()
  except UserError as e:
    sys.exit(f"error: {e}")
  print(json.dumps(result), flush=True)


def run():
  """Console script `ganstyle-bench`."""
  app.run(main)


if __name__ == "__main__":
  run()
