"""ganstyle_jax: GAN-based image style transfer in JAX/Flax.

  stylizer = ganstyle_jax.load(workdir)             # latest checkpoint + its config
  out = stylizer.stylize(content, style, alpha=1.0)  # uint8 HWC in, uint8 HWC out

The pure building blocks: ganstyle_jax.models (vgg, generators, discriminators, layers),
ganstyle_jax.losses, ganstyle_jax.steps; training: ganstyle_jax.train.train_and_evaluate.
"""

from ganstyle_jax import losses, models, steps
from ganstyle_jax.models import discriminators, generators, layers, vgg


def load(workdir, step=None):
  """The Stylizer of workdir's latest (or given) checkpoint; see ganstyle_jax.stylize.load."""
  from ganstyle_jax import stylize  # lazy: `python -m ganstyle_jax.stylize` imports it itself

  return stylize.load(workdir, step)


def __getattr__(name):
  if name == "Stylizer":
    from ganstyle_jax.stylize import Stylizer

    return Stylizer
  raise AttributeError(f"module 'ganstyle_jax' has no attribute {name!r}")


__all__ = [
  "load",
  "Stylizer",
  "losses",
  "models",
  "steps",
  "vgg",
  "generators",
  "discriminators",
  "layers",
]
