"""CycleGAN's and the PatchGAN's layers other than the 3x3 stride-1 ones (the Winograd
layers), forward and both gradients, jitted alone: `ops.conv2d` with the default policy
against the same with the `im2col` path enabled (`ConvPolicy.im2col_bytes`). One JSON line per
layer and round, median ms of --runs calls each.

  python experiments/benchmarks/im2col_layers.py --rounds=2
"""

import argparse
import json

import jax
import jax.numpy as jnp
import numpy as np

from ab_layers import POLICIES as AB_POLICIES  # this folder's script
from ganstyle_jax import benchmark, ops

# name: (input [N, H, W, I], kernel [kh, kw, I, O], strides, padding), at 256 px, batch 2
# (the generators' first call, with the identity images). The UpConv rows are the sub-pixel
# form, which CycleGAN runs on the CPU only with ConvPolicy(transpose_as_matmul=False); by
# default it is `ops.conv_transpose_x2`'s matmul (phases_layers.py).
LAYERS = {
  "ReflectConv_0 7x7 3->64": ((2, 262, 262, 3), (7, 7, 3, 64), (1, 1), ((0, 0), (0, 0))),
  "Conv_0 3x3/2 64->128": ((2, 256, 256, 64), (3, 3, 64, 128), (2, 2), ((1, 1), (1, 1))),
  "Conv_1 3x3/2 128->256": ((2, 128, 128, 128), (3, 3, 128, 256), (2, 2), ((1, 1), (1, 1))),
  "UpConv_0 2x2 256->4x128": ((2, 64, 64, 256), (2, 2, 256, 512), (1, 1), ((0, 1), (0, 1))),
  "UpConv_1 2x2 128->4x64": ((2, 128, 128, 128), (2, 2, 128, 256), (1, 1), ((0, 1), (0, 1))),
  "PatchGAN conv3 4x4 256->512": ((2, 32, 32, 256), (4, 4, 256, 512), (1, 1), ((1, 2), (1, 2))),
}
POLICIES = {"default": ops.DEFAULT, "im2col": AB_POLICIES["im2col"](ops.DEFAULT)}


def median_ms(x_shape, k_shape, strides, padding, policy, runs):
  x = jax.random.normal(jax.random.key(0), x_shape)
  k = jax.random.normal(jax.random.key(1), k_shape) * 0.05
  loss = lambda x, k: jnp.sum(jnp.tanh(ops.conv2d(x, k, strides, padding, policy)))
  f = jax.jit(jax.grad(loss, argnums=(0, 1)))
  _, times = benchmark.timed(lambda: f(x, k), 0, runs)
  return round(1000 * float(np.median(times)), 1)


def main():
  p = argparse.ArgumentParser()
  p.add_argument("--rounds", type=int, default=2)
  p.add_argument("--runs", type=int, default=9)
  a = p.parse_args()
  for r in range(a.rounds):
    for name, (x_shape, k_shape, strides, padding) in LAYERS.items():
      x, k = jnp.zeros(x_shape), jnp.zeros(k_shape)
      line = {"round": r, "layer": name}
      for label, policy in POLICIES.items():
        line[f"path_{label}"] = policy.cpu_path(x, k, strides, padding)
        line[f"ms_{label}"] = median_ms(x_shape, k_shape, strides, padding, policy, a.runs)
      print(json.dumps({**line, **benchmark.machine()}), flush=True)


if __name__ == "__main__":
  main()
