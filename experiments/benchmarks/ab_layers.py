"""A/B of one train step: the layers as they are vs earlier versions of some of them.

Every variant is compiled in one process and the variants are timed alternately, so the
machine's drift hits all alike. Prints one JSON line. A variant is `current` or a '+'-joined
set of these replacements:
  no_winograd             XLA's convolution for the 3x3 layers too (`ops.conv2d`'s CPU kernel
                          gradients kept)
  im2col                  the stride-1 layers whose kernel is not 3x3 as one matmul of their
                          patches (`ops.ConvPolicy.im2col_bytes` = 512 MiB; off by default)
  subpixel_transpose      the x2 transposed convolutions as one sub-pixel 2x2 convolution
                          (`ops.ConvPolicy.transpose_as_matmul` = False), not one matmul
  no_stride2_phases       the 3x3 stride-2 layers' gradients by XLA or image by image, not by
                          output phases (`ops.ConvPolicy.stride2_phases` = False)
  xla_convolutions        XLA's own convolutions and gradients everywhere (`ops.conv2d` as on
                          other platforms: `ops.ConvPolicy.xla()`)
  autodiff_instance_norm  XLA's derivative of the instance-norm formula (not the closed form)
  reduce_window_max_pool  `nn.max_pool` (reduce_window; select-and-scatter gradient)
  scanned_blocks          cyclegan: the residual blocks as one lax.scan
                          (model.generator.scan_blocks=True)
  by_image_input_only     `kernel_grad_by_image` chosen by the input's size alone (before
                          2026-12-05), not by the larger of the input and the output
  no_blocks               cyclegan: no residual blocks (model.generator.n_blocks=0), to see
                          their share of the compile
  no_identity             cyclegan: no identity loss (loss.w_identity=0): each generator then
                          runs at one batch size (1) instead of two (2, then 1)
  winograd_module         the Winograd layers from the module file --winograd_module, e.g. an
                          earlier commit's: git show 40f002e:ganstyle_jax/ops/winograd.py

  python experiments/benchmarks/ab_layers.py --model=cyclegan --image_size=128 \
      --variants=current,no_winograd

With --compile_only, the variants are compiled --rounds times each, alternately, and not run:
compile_s_<variant> is then the list of trace + lower + compile seconds.
"""

import argparse
import contextlib
import dataclasses
import json
import time
from unittest import mock

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from ganstyle_jax import benchmark, ops
from ganstyle_jax.models import layers
from ganstyle_jax.ops import conv
from winograd_layer import load_module  # this folder's script


def autodiff_instance_norm(x, eps=1e-5):
  x32 = x.astype(jnp.float32)
  mean = jnp.mean(x32, axis=(1, 2), keepdims=True)
  var = jnp.var(x32, axis=(1, 2), keepdims=True)
  return ((x32 - mean) * jax.lax.rsqrt(var + eps)).astype(x.dtype)


# Replacements of the convolutions' path choice (the networks' conv_policy) ...
POLICIES = {
  "no_winograd": lambda p: dataclasses.replace(p, winograd_channels=1 << 30),
  "im2col": lambda p: dataclasses.replace(p, im2col_bytes=512 * 2**20),
  "subpixel_transpose": lambda p: dataclasses.replace(p, transpose_as_matmul=False),
  "no_stride2_phases": lambda p: dataclasses.replace(p, stride2_phases=False),
  "xla_convolutions": lambda p: dataclasses.replace(p, xla_only=True),
}
# ... of config keys ...
CONFIGS = {
  "scanned_blocks": lambda c: c.model.generator.update(scan_blocks=True),
  "no_blocks": lambda c: c.model.generator.update(n_blocks=0),
  "no_identity": lambda c: c.loss.update(w_identity=0.0),
}


# ... and of functions the networks call.
def _by_image_input_only(cpu_path):
  def path(self, x, kernel, strides, padding):
    chosen = cpu_path(self, x, kernel, strides, padding)
    input_bytes = x.size * x.dtype.itemsize
    return "xla" if chosen == "by_image" and input_bytes <= self.by_image_bytes else chosen

  return path


REPLACEMENTS = {
  "by_image_input_only": lambda: mock.patch.object(
    conv.ConvPolicy, "cpu_path", _by_image_input_only(conv.ConvPolicy.cpu_path)
  ),
  "autodiff_instance_norm": lambda: mock.patch.object(
    layers, "instance_norm", autodiff_instance_norm
  ),
  "reduce_window_max_pool": lambda: mock.patch.object(
    layers, "max_pool_2x2", lambda x: nn.max_pool(x, (2, 2), strides=(2, 2))
  ),
}


def compile_variant(variant: str, c, key):
  """(compiled step, trace + lower + compile seconds, (state, batch, vgg)) of one variant."""
  policy, config = ops.DEFAULT, c.copy_and_resolve_references()
  with contextlib.ExitStack() as stack:
    for name in variant.split("+"):
      if name in POLICIES:
        policy = POLICIES[name](policy)
      elif name in CONFIGS:
        CONFIGS[name](config)
      elif name != "current":
        stack.enter_context(REPLACEMENTS[name]())
    # A new body (function object) per variant: jit's trace cache must not be shared. Each
    # variant keeps its own (seeded) state, batch and VGG variables: no_blocks has fewer
    # parameters.
    body, state, batch, vgg = benchmark.train_problem(config, policy)
    t = time.perf_counter()
    compiled = jax.jit(body).lower(state, batch, vgg, key).compile()
    return compiled, time.perf_counter() - t, (state, batch, vgg)


def problem(a) -> dict:
  return {
    "model": a.model,
    "image_size": a.image_size,
    "global_batch_size": a.global_batch_size,
    "adversarial": not a.no_adv,
  }


def main():
  p = argparse.ArgumentParser()
  p.add_argument("--model", default="cyclegan", choices=["cyclegan", "adain_gan"])
  p.add_argument("--image_size", type=int, default=128)
  p.add_argument("--global_batch_size", type=int, default=1)
  p.add_argument("--no_adv", action="store_true", help="adain_gan without D")
  p.add_argument("--variants", default="current,no_winograd")
  p.add_argument("--rounds", type=int, default=5)
  p.add_argument("--winograd_module", help="the file of the winograd_module variant")
  p.add_argument("--compile_only", action="store_true", help="compile --rounds times, no steps")
  a = p.parse_args()
  if a.winograd_module:
    REPLACEMENTS["winograd_module"] = lambda: mock.patch.object(
      conv, "winograd", load_module(a.winograd_module)
    )
  c = benchmark.bench_config(a.model, a.image_size, a.global_batch_size, adversarial=not a.no_adv)
  key = jax.random.key(1)
  compiled, compile_s = {}, {}
  for _ in range(a.rounds if a.compile_only else 1):
    for variant in a.variants.split(","):
      f, seconds, args = compile_variant(variant, c, key)
      compiled[variant] = (f, args)
      compile_s.setdefault(variant, []).append(seconds)
  if a.compile_only:
    compile_lists = {f"compile_s_{k}": v for k, v in compile_s.items()}
    print(json.dumps({**problem(a), **compile_lists, **benchmark.machine()}))
    return
  times = {k: [] for k in compiled}
  for r in range(a.rounds + 1):  # round 0 warms up
    for name, (f, args) in compiled.items():
      t = time.perf_counter()
      jax.block_until_ready(f(*args, key))
      if r:
        times[name].append(time.perf_counter() - t)
  print(
    json.dumps(
      {
        **problem(a),
        **{f"step_s_{k}": float(np.median(v)) for k, v in times.items()},
        **{f"step_s_all_{k}": v for k, v in times.items()},
        # trace + lower + compile; the first variant's includes the process's one-time costs
        **{f"compile_s_{k}": v[0] for k, v in compile_s.items()},
        **benchmark.machine(),
      }
    )
  )


if __name__ == "__main__":
  main()
