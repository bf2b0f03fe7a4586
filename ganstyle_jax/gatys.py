"""Gatys et al. 2016: style transfer by optimising the image itself (no trained network).

The image starts as the content image and follows the gradient of a VGG content loss (relu4_1
against the content image) plus w_style times a Gram style loss (relu1_1..relu5_1 against the
style image). It needs VGG weights but no checkpoint; with random VGG features (offline) it
matches random-feature statistics, which moves colours and textures but not learned style.
"""

from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np
import optax

from ganstyle_jax import losses
from ganstyle_jax.errors import UserError
from ganstyle_jax.images import limit_size, to_float, to_uint8
from ganstyle_jax.models import vgg as vgg_lib

CONTENT_LAYER = "relu4_1"
STYLE_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")
OPTIMIZERS = ("adam", "lbfgs")


def objective(
  vgg_variables, content: jax.Array, style: jax.Array, w_style: float = 1e3
) -> Callable[[jax.Array], jax.Array]:
  """The loss of an image x [1, H, W, 3] in [-1, 1]: content + w_style * Gram style."""
  feats = lambda x: vgg_lib.features(vgg_variables, x, STYLE_LAYERS)
  c_feats, s_feats = feats(content), feats(style)

  def loss_fn(x):
    f = feats(x)
    return losses.mse(f[CONTENT_LAYER], c_feats[CONTENT_LAYER]) + w_style * losses.gram_style_loss(
      f, s_feats, STYLE_LAYERS
    )

  return loss_fn


def optimize(
  content: np.ndarray,
  style: np.ndarray,
  vgg_variables,
  *,
  steps: int = 200,
  lr: float = 0.02,
  w_style: float = 1e3,
  optimizer: str = "adam",
  max_size: int | None = None,
) -> np.ndarray:
  """uint8 HWC content and style -> the optimised uint8 HWC image (content's size, capped).

  optimizer: 'adam' (learning rate lr) or 'lbfgs' (optax's, with its line search).
  """
  if optimizer not in OPTIMIZERS:
    raise UserError(f"--optimizer={optimizer!r}: use one of {OPTIMIZERS}")
  content = limit_size(np.asarray(content, np.uint8), max_size)
  style = limit_size(np.asarray(style, np.uint8), max_size)
  c, s = jnp.asarray(to_float(content)), jnp.asarray(to_float(style))
  loss_fn = objective(vgg_variables, c, s, w_style)
  if optimizer == "lbfgs":
    tx = optax.lbfgs()
    # L-BFGS' line search already evaluated the loss at the new point: reuse it.
    value_and_grad = optax.value_and_grad_from_state(loss_fn)
  else:
    tx = optax.adam(lr)
    value_and_grad = lambda x, state: jax.value_and_grad(loss_fn)(x)

  @jax.jit
  def step(x, opt_state):
    value, grad = value_and_grad(x, state=opt_state)
    updates, opt_state = tx.update(grad, opt_state, x, value=value, grad=grad, value_fn=loss_fn)
    return jnp.clip(optax.apply_updates(x, updates), -1, 1), opt_state

  x, opt_state = c, tx.init(c)
  for _ in range(steps):
    x, opt_state = step(x, opt_state)
  return to_uint8(x[0])
