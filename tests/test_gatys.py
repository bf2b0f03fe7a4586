"""Gatys optimisation: it lowers its own objective, mostly through the style term."""

import jax.numpy as jnp
import numpy as np
import pytest

from ganstyle_jax import gatys, losses
from ganstyle_jax.errors import UserError
from ganstyle_jax.images import to_float
from ganstyle_jax.models import vgg as vgg_lib


def image(seed, size=32):
  return np.random.default_rng(seed).integers(0, 256, (size, size, 3), dtype=np.uint8)


@pytest.mark.parametrize("optimizer", ["adam", "lbfgs"])
def test_optimize_lowers_the_style_loss(optimizer):
  vgg = vgg_lib.load_params("random")
  content, style = image(14), image(15)
  out = gatys.optimize(content, style, vgg, steps=8, lr=0.05, optimizer=optimizer)
  assert out.shape == content.shape

  def style_loss(img):
    feats = lambda x: vgg_lib.features(vgg, jnp.asarray(to_float(x)), gatys.STYLE_LAYERS)
    return float(losses.gram_style_loss(feats(img), feats(style), gatys.STYLE_LAYERS))

  before, after = style_loss(content), style_loss(out)
  assert after < 0.8 * before, (before, after)
  objective = gatys.objective(vgg, jnp.asarray(to_float(content)), jnp.asarray(to_float(style)))
  assert float(objective(jnp.asarray(to_float(out)))) < float(
    objective(jnp.asarray(to_float(content)))
  )


def test_unknown_optimizer_and_out_of_range_values_are_one_clear_error():
  with pytest.raises(UserError, match="use one of"):
    gatys.optimize(image(0), image(1), None, optimizer="sgd")
  with pytest.raises(UserError, match="--steps=0: use a positive number"):
    gatys.optimize(image(0), image(1), None, steps=0)
  with pytest.raises(UserError, match="--lr=-0.1: use a learning rate > 0"):
    gatys.optimize(image(0), image(1), None, lr=-0.1)
  with pytest.raises(UserError, match="--max_size=-5: use a positive number of pixels"):
    gatys.optimize(image(0), image(1), None, max_size=-5)
