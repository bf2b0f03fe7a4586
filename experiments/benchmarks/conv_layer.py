"""One reflection-padded 3x3 convolution layer, forward and forward + input and kernel gradients.

Times `ops.conv2d` as the models use it (reflection pad, 'VALID' conv) on its CPU paths,
or the same layer in PyTorch (`--framework=torch`, run with a Python that has torch; see
torch_reference.py). One JSON line per shape, medians in ms. Run the two one after the other:

  python experiments/benchmarks/conv_layer.py --shapes=1x32x256x256,2x64x256x256
  /tmp/torch-venv/bin/python experiments/benchmarks/conv_layer.py --framework=torch \
      --shapes=1x32x256x256,2x64x256x256

A shape is images x size x in channels x out channels. Paths (jax): `xla` is XLA's own
convolution, `winograd_2` and `winograd_4` force F(2x2, 3x3) and F(4x4, 3x3).
"""

import argparse
import functools
import json

import numpy as np


def median_ms(timed, fn, n):
  """Median of n timed calls after one untimed, with the benchmark's own `timed`."""
  return round(1000 * float(np.median(timed(fn, 0, n)[1])), 2)


def jax_layer(shape, n):
  import jax

  from ganstyle_jax import ops
  from ganstyle_jax.benchmark import timed
  from ganstyle_jax.models import layers

  b, size, i, o = shape
  keys = jax.random.split(jax.random.key(0), 3)
  x = jax.random.normal(keys[0], (b, size, size, i))
  k = jax.random.normal(keys[1], (3, 3, i, o)) * 0.05
  dy = jax.random.normal(keys[2], (b, size, size, o))
  out = {}

  def jitted(policy):
    conv = lambda x, k: ops.conv2d(layers.reflect_pad(x, 1), k, padding="VALID", policy=policy)

    def both(x, k, dy):
      y, vjp = jax.vjp(conv, x, k)
      return y, vjp(dy)

    return jax.jit(conv), jax.jit(both)

  policies = {
    "xla": ops.ConvPolicy(winograd_channels=1 << 30),
    "winograd_2": ops.ConvPolicy(winograd_channels=1, winograd_tile4_size=1 << 30),
    "winograd_4": ops.ConvPolicy(winograd_channels=1, winograd_tile4_size=0),
  }
  for path, policy in policies.items():
    fwd, both = jitted(policy)
    out[f"{path}_fwd_ms"] = median_ms(timed, functools.partial(fwd, x, k), n)
    out[f"{path}_fwd_bwd_ms"] = median_ms(timed, functools.partial(both, x, k, dy), n)
  return out


def torch_layer(shape, n):
  import torch
  from torch_reference import timed  # this script's folder, in a torch environment

  torch.set_num_threads(2)
  b, size, i, o = shape
  conv = torch.nn.Sequential(torch.nn.ReflectionPad2d(1), torch.nn.Conv2d(i, o, 3))
  x = torch.randn(b, i, size, size, requires_grad=True)
  dy = torch.randn(b, o, size, size)

  def fwd():
    with torch.no_grad():
      conv(x)

  def both():
    torch.autograd.grad(conv(x), (x, conv[1].weight), dy)

  return {
    "torch_fwd_ms": median_ms(timed, fwd, n),
    "torch_fwd_bwd_ms": median_ms(timed, both, n),
    "torch_version": torch.__version__,
  }


def main():
  p = argparse.ArgumentParser()
  p.add_argument("--framework", choices=["jax", "torch"], default="jax")
  p.add_argument("--shapes", default="1x32x256x256,2x32x256x256,1x64x256x256,2x64x256x256")
  p.add_argument("--repeats", type=int, default=10)
  a = p.parse_args()
  layer = jax_layer if a.framework == "jax" else torch_layer
  for s in a.shapes.split(","):
    shape = tuple(int(v) for v in s.split("x"))
    print(json.dumps({"shape": s, **layer(shape, a.repeats)}), flush=True)


if __name__ == "__main__":
  main()
