"""ganstyle_jax: GAN-based image style transfer in JAX/Flax.

  stylizer = ganstyle_jax.load(workdir)             # latest checkpoint + its config
  out = stylizer.stylize(content, style, alpha=1.0)  # uint8 HWC in, uint8 HWC out

The pure building blocks: ganstyle_jax.models (vgg, generators, discriminators, layers),
ganstyle_jax.losses, ganstyle_jax.steps; training: ganstyle_jax.train.train_and_evaluate.
"""
from ganstyle_jax import losses, models, steps
from ganstyle_jax.models import discriminators, generators, layers, vgg
from ganstyle_jax.stylize import Stylizer, load

__all__ = ["load", "Stylizer", "losses", "models", "steps", "vgg", "generators",
           "discriminators", "layers"]
