"""Can the style-conditioned PatchGAN see outlines? D alone, no generator.

    python experiments/seed_objective/d_probe.py [--steps=1200] [--lrs=2e-4,1e-3] [--seed=0]

D is trained with the hinge loss to tell (painting, style image) from (the same painting
without its outlines, style image): both paint the same training photo in the same style k
(one of the study's 16 train styles), so the outlines are the only difference; the style
image is another scene painted in style k, as D's condition in the study. It prints, per D
(instance norm or none) and learning rate, D's loss averaged over each sixth of the run: 2 is
chance (both logits 0), lower means D tells the outlines apart. Batch 4, 64 px, Adam(lr, 0.5,
0.999), ndf 32, 3 layers: the study's D.
"""

from __future__ import annotations

import argparse
import json
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax

from ganstyle_jax import losses
from ganstyle_jax.data import synthetic
from ganstyle_jax.models import discriminators

STYLES = 16
BATCH = 4


def batch(rng: np.random.Generator):
  """(with outlines, without outlines, style images), each [BATCH, 64, 64, 3] in [-1, 1]."""
  styles = [int(k) for k in rng.integers(0, STYLES, BATCH)]

  def scenes():
    seeds = rng.integers(0, 10**6, BATCH)
    return np.stack(
      [synthetic.render_scene(synthetic.scene_seed("photo", "train", int(i))) for i in seeds]
    )

  palette, darken = synthetic.style_tables(styles)
  labels, edge = synthetic.painting_regions(scenes(), palette)
  real = synthetic.paint_regions(labels, edge, palette, darken)
  plain = synthetic.paint_regions(labels, edge, palette, np.ones_like(darken))
  style = synthetic.painting(scenes(), styles)
  return tuple(jnp.asarray(x * 2 - 1, jnp.float32) for x in (real, plain, style))


def probe(norm: str, lr: float, steps: int, seed: int) -> list[float]:
  d = discriminators.PatchGAN(ndf=32, norm=norm)
  params = d.init(jax.random.key(seed), jnp.zeros((1, 64, 64, 6)))
  opt = optax.adam(lr, 0.5, 0.999)
  opt_state = opt.init(params)

  @jax.jit
  def step(params, opt_state, real, plain, style):
    def loss(p):
      judge = lambda x: d.apply(p, jnp.concatenate([x, style], -1))
      return losses.d_loss("hinge", judge(real), judge(plain))

    value, grads = jax.value_and_grad(loss)(params)
    updates, opt_state = opt.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state, value

  rng = np.random.default_rng(seed)
  history = []
  for _ in range(steps):
    params, opt_state, value = step(params, opt_state, *batch(rng))
    history.append(float(value))
  sixth = max(steps // 6, 1)
  return [float(np.mean(history[i : i + sixth])) for i in range(0, steps, sixth)]


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--steps", type=int, default=1200)
  parser.add_argument("--lrs", default="2e-4,1e-3")
  parser.add_argument("--norms", default="instance,none")
  parser.add_argument("--seed", type=int, default=0)
  args = parser.parse_args()
  for lr in (float(x) for x in args.lrs.split(",")):
    for norm in args.norms.split(","):
      t = time.time()
      curve = probe(norm, lr, args.steps, args.seed)
      print(
        json.dumps(
          {
            "norm": norm,
            "lr": lr,
            "steps": args.steps,
            "d_loss_by_sixth": [round(x, 3) for x in curve],
            "seconds": round(time.time() - t, 1),
          }
        ),
        flush=True,
      )


if __name__ == "__main__":
  main()
