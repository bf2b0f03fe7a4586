"""A/B of one train step: XLA's own kernel gradients everywhere vs `layers.conv2d`'s CPU ones.

Both variants are compiled in one process and timed alternately, so the machine's drift hits
both alike. Prints one JSON line.

  python experiments/benchmarks/ab_kernel_gradients.py --model=cyclegan --image_size=128
"""
import argparse
import contextlib
import functools
import json
import time

import jax
import numpy as np

from ganstyle_jax import benchmark
from ganstyle_jax.config_base import base_config
from ganstyle_jax.models import layers


def main():
  p = argparse.ArgumentParser()
  p.add_argument("--model", default="cyclegan", choices=["cyclegan", "adain_gan"])
  p.add_argument("--image_size", type=int, default=128)
  p.add_argument("--global_batch_size", type=int, default=1)
  p.add_argument("--rounds", type=int, default=5)
  a = p.parse_args()
  c = base_config(a.model)
  c.data.image_size, c.data.global_batch_size = a.image_size, a.global_batch_size
  c.model.vgg.weights = "random"
  body, state, batch, vgg = benchmark.train_problem(c)
  key = jax.random.key(1)
  compiled = {}
  for name, ctx in (("xla", layers.xla_kernel_gradients), ("conv2d", contextlib.nullcontext)):
    with ctx():   # a new function object each time: jit's trace cache must not be shared
      compiled[name] = jax.jit(functools.partial(body)).lower(state, batch, vgg, key).compile()
  times = {k: [] for k in compiled}
  for r in range(a.rounds + 1):           # round 0 warms up
    for name, f in compiled.items():
      t = time.perf_counter()
      jax.block_until_ready(f(state, batch, vgg, key))
      if r:
        times[name].append(time.perf_counter() - t)
  print(json.dumps({"model": a.model, "image_size": a.image_size,
                    "global_batch_size": a.global_batch_size,
                    **{f"step_s_{k}": float(np.median(v)) for k, v in times.items()},
                    **{f"step_s_all_{k}": v for k, v in times.items()}}))


if __name__ == "__main__":
  main()
