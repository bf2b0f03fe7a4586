"""Loss functions: pure array functions with explicit reductions; they never call modules.

Conventions: images NHWC in [-1, 1]; features are dicts {layer name: [N, H, W, C]}; every loss
returns a float32 scalar averaged over the batch (and over elements where stated).
Discriminator outputs ("logits") may be one array or a list of arrays (multi-scale D); the
adversarial losses average over the list.
"""

from __future__ import annotations

from typing import Callable, Mapping, Sequence

import jax
import jax.numpy as jnp

Array = jax.Array
Features = Mapping[str, Array]


def _f32(x: Array) -> Array:
  return jnp.asarray(x, jnp.float32)


def mse(a: Array, b: Array) -> Array:
  """Mean over all elements of (a - b)^2."""
  return jnp.mean(jnp.square(_f32(a) - _f32(b)))


def l1(a: Array, b: Array) -> Array:
  """Mean over all elements of |a - b|."""
  return jnp.mean(jnp.abs(_f32(a) - _f32(b)))


# ----------------------------------------------------------------------------- content


def pixel_content_loss(output: Array, content: Array) -> Array:
  """The seed's ||G(C, S) - C||^2, as the mean squared pixel difference."""
  return mse(output, content)


def _layer_weights(layers: Sequence[str], weights: Sequence[float] | None) -> list[float]:
  if weights is None:
    return [1.0] * len(layers)
  if len(weights) != len(layers):
    raise ValueError(f"{len(weights)} layer weights for {len(layers)} layers")
  return list(weights)


def perceptual_loss(
  out_feats: Features,
  target_feats: Features,
  layers: Sequence[str],
  weights: Sequence[float] | None = None,
) -> Array:
  """sum_l w_l * mean((phi_l(output) - target_l)^2) over the given layers."""
  ws = _layer_weights(layers, weights)
  return sum(w * mse(out_feats[l], target_feats[l]) for l, w in zip(layers, ws))


# ----------------------------------------------------------------------------- style


def gram(x: Array) -> Array:
  """Gram matrices [N, C, C] of features [N, H, W, C], normalised by H * W."""
  x = _f32(x)
  n, h, w, c = x.shape
  f = x.reshape(n, h * w, c)
  return jnp.einsum("npc,npd->ncd", f, f) / (h * w)


def mean_std(x: Array, eps: float = 1e-5) -> tuple[Array, Array]:
  """Per-channel mean and std over H, W: two arrays [N, C]."""
  x = _f32(x)
  mean = jnp.mean(x, axis=(1, 2))
  return mean, jnp.sqrt(jnp.var(x, axis=(1, 2)) + eps)


def gram_style_loss(
  out_feats: Features,
  style_feats: Features,
  layers: Sequence[str],
  weights: Sequence[float] | None = None,
) -> Array:
  """Gatys et al.: sum_l w_l * mean((G(phi_l(out)) - G(phi_l(style)))^2) over Gram entries."""
  ws = _layer_weights(layers, weights)
  return sum(w * mse(gram(out_feats[l]), gram(style_feats[l])) for l, w in zip(layers, ws))


def mean_std_style_loss(
  out_feats: Features,
  style_feats: Features,
  layers: Sequence[str],
  weights: Sequence[float] | None = None,
) -> Array:
  """Huang & Belongie: sum_l w_l * (mean((mu_o - mu_s)^2) + mean((sigma_o - sigma_s)^2))."""
  ws = _layer_weights(layers, weights)
  total = 0.0
  for l, w in zip(layers, ws):
    mo, so = mean_std(out_feats[l])
    ms, ss = mean_std(style_feats[l])
    total = total + w * (mse(mo, ms) + mse(so, ss))
  return total


def style_loss(
  kind: str,
  out_feats: Features,
  style_feats: Features,
  layers: Sequence[str],
  weights: Sequence[float] | None = None,
) -> Array:
  """Dispatch on kind = 'gram' | 'mean_std'."""
  if kind == "gram":
    return gram_style_loss(out_feats, style_feats, layers, weights)
  if kind == "mean_std":
    return mean_std_style_loss(out_feats, style_feats, layers, weights)
  raise ValueError(f"unknown style loss {kind!r}; use 'gram' or 'mean_std'")


# ----------------------------------------------------------------------------- adversarial

ADV_CONDITIONS = ("none", "style")  # what D judges beside the image (adain_gan)
ADV_TYPES = ("nonsat", "lsgan", "hinge")


def _mean_over_scales(fn: Callable[[Array], Array], logits) -> Array:
  leaves = jax.tree.leaves(logits)
  return sum(fn(_f32(x)) for x in leaves) / len(leaves)


def d_loss(kind: str, real_logits, fake_logits) -> Array:
  """Discriminator loss on D's logits for real and generated images.

  nonsat: -log D(real) - log(1 - D(fake)) = softplus(-r) + softplus(f) (the seed's BCE);
  lsgan:  0.5 * ((r - 1)^2 + f^2) (CycleGAN's halved D objective);
  hinge:  relu(1 - r) + relu(1 + f).
  Each term is a mean over patches and batch.
  """
  if kind == "nonsat":
    real, fake = (lambda r: jnp.mean(jax.nn.softplus(-r))), (lambda f: jnp.mean(jax.nn.softplus(f)))
  elif kind == "lsgan":
    real = lambda r: 0.5 * jnp.mean(jnp.square(r - 1.0))
    fake = lambda f: 0.5 * jnp.mean(jnp.square(f))
  elif kind == "hinge":
    real, fake = (
      (lambda r: jnp.mean(jax.nn.relu(1.0 - r))),
      (lambda f: jnp.mean(jax.nn.relu(1.0 + f))),
    )
  else:
    raise ValueError(f"unknown adversarial loss {kind!r}; use one of {ADV_TYPES}")
  return _mean_over_scales(real, real_logits) + _mean_over_scales(fake, fake_logits)


def g_loss(kind: str, fake_logits) -> Array:
  """Generator's adversarial loss on D's logits for its outputs.

  nonsat: -log D(fake) = softplus(-f); lsgan: (f - 1)^2; hinge: -f. Means over patches/batch.
  """
  if kind == "nonsat":
    fn = lambda f: jnp.mean(jax.nn.softplus(-f))
  elif kind == "lsgan":
    fn = lambda f: jnp.mean(jnp.square(f - 1.0))
  elif kind == "hinge":
    fn = lambda f: -jnp.mean(f)
  else:
    raise ValueError(f"unknown adversarial loss {kind!r}; use one of {ADV_TYPES}")
  return _mean_over_scales(fn, fake_logits)


def r1_penalty(d_fn: Callable[[Array], object], real: Array) -> Array:
  """R1 (Mescheder et al. 2018): 0.5 * mean over images of ||grad_x sum D(x)||^2 at real x.

  Args:
    d_fn: images -> logits (D with its params bound); the only call this module makes, since
      the penalty is defined by D's input gradient.
    real: real images [N, H, W, 3].
  """

  def total_logit(x):
    return sum(jnp.sum(_f32(l)) for l in jax.tree.leaves(d_fn(x)))

  grads = jax.grad(total_logit)(real)
  return 0.5 * jnp.mean(jnp.sum(jnp.square(_f32(grads)), axis=(1, 2, 3)))


# ----------------------------------------------------------------------------- regularisers


def cycle_loss(reconstructed: Array, original: Array) -> Array:
  """CycleGAN's cycle consistency: mean |F(G(x)) - x|."""
  return l1(reconstructed, original)


def identity_loss(mapped: Array, original: Array) -> Array:
  """CycleGAN's identity term: mean |G(y) - y| for y already in G's target domain."""
  return l1(mapped, original)


def total_variation(x: Array) -> Array:
  """Anisotropic TV: mean |x[i+1, j] - x[i, j]| + mean |x[i, j+1] - x[i, j]|."""
  x = _f32(x)
  return jnp.mean(jnp.abs(x[:, 1:] - x[:, :-1])) + jnp.mean(jnp.abs(x[:, :, 1:] - x[:, :, :-1]))


def temporal_loss(output_of_warped: Array, warped_output: Array, margin: int = 0) -> Array:
  """ReReVST's compound regularisation term: mean (G(W(C) + noise) - W(G(C)))^2.

  Args:
    output_of_warped: G's output for the warped (and noised) content, NHWC.
    warped_output: G's output for the content, warped by the same flow, NHWC.
    margin: border pixels left out on every side (where the warp repeats the border).
  """
  if margin:
    output_of_warped = output_of_warped[:, margin:-margin, margin:-margin]
    warped_output = warped_output[:, margin:-margin, margin:-margin]
  return mse(output_of_warped, warped_output)
