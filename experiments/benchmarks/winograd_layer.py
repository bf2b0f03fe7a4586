"""One Winograd layer's forward and both gradients, jitted alone: HLO instructions, trace +
lower and XLA compile seconds, and the median run time. Prints one JSON line per shape and
module. With --other, an earlier version of ops/winograd.py is measured beside the current
one in the same process, e.g.

  git show 40f002e:ganstyle_jax/ops/winograd.py > /tmp/winograd_40f002e.py
  python experiments/benchmarks/winograd_layer.py --other=/tmp/winograd_40f002e.py \\
      --shapes=1x64x64x256,2x64x64x256,1x32x32x256,4x128x128x64
"""

import argparse
import importlib.util
import json
import re
import time

import jax
import jax.numpy as jnp
import numpy as np

from ganstyle_jax import benchmark
from ganstyle_jax.ops import winograd

PADDING = ((1, 1), (1, 1))


def load_module(path):
  spec = importlib.util.spec_from_file_location("other_winograd", path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


def measure(module, shape, tile, runs):
  n, h, w, c = shape
  x = jax.random.normal(jax.random.key(0), shape)
  kernel = jax.random.normal(jax.random.key(1), (3, 3, c, c)) * 0.02

  @jax.jit
  def layer(x, kernel):  # forward, then both gradients of sum(tanh(y))
    y = module.conv(x, kernel, PADDING, tile)
    return module.conv_grads(x, kernel, PADDING, tile, 1 - jnp.tanh(y) ** 2)

  t0 = time.perf_counter()
  lowered = layer.lower(x, kernel)
  t1 = time.perf_counter()
  compiled = lowered.compile()
  t2 = time.perf_counter()
  hlo = lowered.compiler_ir("hlo").as_hlo_text()
  jax.block_until_ready(compiled(x, kernel))
  times = []
  for _ in range(runs):
    t = time.perf_counter()
    jax.block_until_ready(compiled(x, kernel))
    times.append(time.perf_counter() - t)
  return {
    "hlo_instructions": len(re.findall(r"= \S+ [a-z\-]+\(", hlo)),
    "lower_s": t1 - t0,
    "xla_compile_s": t2 - t1,
    "run_ms": 1000 * float(np.median(times)),
    "run_ms_all": [1000 * t for t in times],
  }


def main():
  p = argparse.ArgumentParser()
  p.add_argument("--shapes", default="1x64x64x256,2x64x64x256,1x32x32x256,4x128x128x64")
  p.add_argument("--tile", type=int, default=4, choices=[2, 4])
  p.add_argument("--runs", type=int, default=9)
  p.add_argument("--other", help="an earlier ops/winograd.py to measure beside the current one")
  a = p.parse_args()
  modules = {"current": winograd}
  if a.other:
    modules["other"] = load_module(a.other)
  for shape in a.shapes.split(","):
    dims = tuple(int(d) for d in shape.split("x"))
    for name, module in modules.items():
      line = {"shape": shape, "tile": a.tile, "module": name if name == "current" else a.other}
      line.update(measure(module, dims, a.tile, a.runs))
      print(json.dumps({**line, **benchmark.machine()}), flush=True)


if __name__ == "__main__":
  main()
