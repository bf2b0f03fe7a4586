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
from ganstyle_jax.images import check_max_size, limit_size, to_float, to_uint8
from ganstyle_jax.models import vgg as vgg_lib

CONTENT_LAYER = "relu4_1"
STYLE_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")
OPTIMIZERS = ("adam", "lbfgs")


def targets(vgg_variables, content: jax.Array, style: jax.Array) -> dict[str, jax.Array]:
  """What the loss compares with: the content's CONTENT_LAYER and the style's STYLE_LAYERS."""
  c_feats = vgg_lib.features(vgg_variables, content, (CONTENT_LAYER,))
  s_feats = vgg_lib.features(vgg_variables, style, STYLE_LAYERS)
  return {"content": c_feats[CONTENT_LAYER], **{f"style/{k}": v for k, v in s_feats.items()}}


def loss(x: jax.Array, vgg_variables, target: dict[str, jax.Array], w_style: float = 1e3):
  """content + w_style * Gram style loss of an image x [1, H, W, 3] in [-1, 1] (jit-able: the
  VGG variables and targets are arguments, so XLA does not fold them in as constants)."""
  f = vgg_lib.features(vgg_variables, x, STYLE_LAYERS)
  s_feats = {k: target[f"style/{k}"] for k in STYLE_LAYERS}
  return losses.mse(f[CONTENT_LAYER], target["content"]) + w_style * losses.gram_style_loss(
    f, s_feats, STYLE_LAYERS
  )


def objective(
  vgg_variables, content: jax.Array, style: jax.Array, w_style: float = 1e3
) -> Callable[[jax.Array], jax.Array]:
  """`loss` as a function of the image alone, for eager use (under jit, pass the variables and
  targets as arguments to `loss` instead)."""
  target = targets(vgg_variables, content, style)
  return lambda x: loss(x, vgg_variables, target, w_style)


def check_options(
  *, steps: int = 200, lr: float = 0.02, optimizer: str = "adam", max_size: int | None = None
) -> None:
  """Raises UserError for an option `optimize` cannot take (before any image is read)."""
  if optimizer not in OPTIMIZERS:
    raise UserError(f"--optimizer={optimizer!r}: use one of {OPTIMIZERS}")
  if steps < 1:
    raise UserError(f"--steps={steps}: use a positive number of optimisation steps")
  if not lr > 0:
    raise UserError(f"--lr={lr}: use a learning rate > 0")
  check_max_size(max_size)


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
  check_options(steps=steps, lr=lr, optimizer=optimizer, max_size=max_size)
  content = limit_size(np.asarray(content, np.uint8), max_size)
  style = limit_size(np.asarray(style, np.uint8), max_size)
  c, s = jnp.asarray(to_float(content)), jnp.asarray(to_float(style))
  tx = optax.lbfgs() if optimizer == "lbfgs" else optax.adam(lr)

  @jax.jit
  def step(x, opt_state, variables, target):
    loss_fn = lambda y: loss(y, variables, target, w_style)
    if optimizer == "lbfgs":
      # L-BFGS' line search already evaluated the loss at the new point: reuse it.
      value, grad = optax.value_and_grad_from_state(loss_fn)(x, state=opt_state)
    else:
      value, grad = jax.value_and_grad(loss_fn)(x)
    updates, opt_state = tx.update(grad, opt_state, x, value=value, grad=grad, value_fn=loss_fn)
    return jnp.clip(optax.apply_updates(x, updates), -1, 1), opt_state

  target = targets(vgg_variables, c, s)
  x, opt_state = c, tx.init(c)
  for _ in range(steps):
    x, opt_state = step(x, opt_state, vgg_variables, target)
  return to_uint8(x[0])
