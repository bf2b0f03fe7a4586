"""CycleGAN's layers that `ops.phases` computes on the CPU, alone: the x2 transposed
convolutions (`UpConv`, `ops.conv_transpose_x2`) and the 3x3 stride-2 convolutions (`Conv_0`,
`Conv_1`, `ops.conv2d`), each with the default policy ('phases') against the policy before
(`ConvPolicy.transpose_as_matmul` off: the sub-pixel convolution; `ConvPolicy.stride2_phases`
off: XLA's gradients or image by image), forward and forward + both gradients, jitted alone.
One JSON line per layer and round: median ms of --runs calls, XLA compile s and the compiled
program's fusion count of each.

  python experiments/benchmarks/phases_layers.py --rounds=2
"""

import argparse
import dataclasses
import functools
import json
import time

import jax
import jax.numpy as jnp
import numpy as np

from ganstyle_jax import benchmark, ops

# name: (kind, input [N, H, W, I], output channels); at 256 px the generators run at batch 2
# (with the identity images) and batch 1.
LAYERS = {
  "UpConv_0 256->128, 256 px b2": ("up", (2, 64, 64, 256), 128),
  "UpConv_1 128->64, 256 px b2": ("up", (2, 128, 128, 128), 64),
  "UpConv_0 256->128, 128 px b1": ("up", (1, 32, 32, 256), 128),
  "UpConv_1 128->64, 128 px b1": ("up", (1, 64, 64, 128), 64),
  "Conv_0 64->128, 256 px b2": ("down", (2, 256, 256, 64), 128),
  "Conv_0 64->128, 256 px b1": ("down", (1, 256, 256, 64), 128),
  "Conv_1 128->256, 256 px b2": ("down", (2, 128, 128, 128), 256),
  "Conv_1 128->256, 256 px b1": ("down", (1, 128, 128, 128), 256),
  "Conv_0 64->128, 128 px b1": ("down", (1, 128, 128, 64), 128),
}
BEFORE = {
  "up": dataclasses.replace(ops.DEFAULT, transpose_as_matmul=False),
  "down": dataclasses.replace(ops.DEFAULT, stride2_phases=False),
}


def compiled(kind, x_shape, o, policy, grads):
  x = jax.random.normal(jax.random.key(0), x_shape)
  k = jax.random.normal(jax.random.key(1), (3, 3, x_shape[-1], o)) * 0.05
  if kind == "up":
    layer = lambda x, k: jnp.tanh(ops.conv_transpose_x2(x, k, policy))
  else:
    layer = lambda x, k: jnp.tanh(ops.conv2d(x, k, (2, 2), ((1, 1), (1, 1)), policy))
  f = jax.grad(lambda x, k: jnp.sum(layer(x, k)), argnums=(0, 1)) if grads else layer
  lowered = jax.jit(f).lower(x, k)
  t = time.perf_counter()
  c = lowered.compile()
  return c, (x, k), time.perf_counter() - t, c.as_text().count(" fusion(")


def main():
  p = argparse.ArgumentParser()
  p.add_argument("--rounds", type=int, default=2)
  p.add_argument("--runs", type=int, default=7)
  a = p.parse_args()
  programs = {
    (name, label, grads): compiled(kind, x_shape, o, policy, grads)
    for name, (kind, x_shape, o) in LAYERS.items()
    for label, policy in (("phases", ops.DEFAULT), ("before", BEFORE[kind]))
    for grads in (False, True)
  }
  for r in range(a.rounds):
    for name in LAYERS:
      line = {"round": r, "layer": name}
      for (layer, label, grads), (c, args, compile_s, fusions) in programs.items():
        if layer == name:
          _, times = benchmark.timed(functools.partial(c, *args), 1, a.runs)
          key = f"{label}_{'fwd_bwd' if grads else 'fwd'}"
          line[f"ms_{key}"] = round(1000 * float(np.median(times)), 1)
          line[f"compile_s_{key}"] = round(compile_s, 2)
          line[f"fusions_{key}"] = fusions
      print(json.dumps({**line, **benchmark.machine()}), flush=True)


if __name__ == "__main__":
  main()
