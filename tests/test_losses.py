"""Losses: exact values on hand-built inputs, zero on identical inputs, finite gradients."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ganstyle_jax import losses


def test_gram_matches_numpy():
  x = np.random.default_rng(0).normal(size=(2, 4, 5, 3)).astype(np.float32)
  ref = np.stack([f.reshape(-1, 3).T @ f.reshape(-1, 3) / 20 for f in x])
  np.testing.assert_allclose(losses.gram(x), ref, rtol=1e-5, atol=1e-6)


def test_style_losses_exact_and_zero():
  rng = np.random.default_rng(1)
  a = {"l": rng.normal(size=(2, 4, 4, 3)).astype(np.float32)}
  b = {"l": rng.normal(size=(2, 4, 4, 3)).astype(np.float32)}
  ref = np.mean((np.asarray(losses.gram(a["l"])) - np.asarray(losses.gram(b["l"]))) ** 2)
  np.testing.assert_allclose(losses.gram_style_loss(a, b, ["l"], [2.0]), 2 * ref, rtol=1e-5)
  ma, sa = a["l"].mean((1, 2)), np.sqrt(a["l"].var((1, 2)) + 1e-5)
  mb, sb = b["l"].mean((1, 2)), np.sqrt(b["l"].var((1, 2)) + 1e-5)
  np.testing.assert_allclose(
    losses.mean_std_style_loss(a, b, ["l"]),
    np.mean((ma - mb) ** 2) + np.mean((sa - sb) ** 2),
    rtol=1e-5,
  )
  for kind in ("gram", "mean_std"):
    assert float(losses.style_loss(kind, a, a, ["l"])) == 0.0
  assert float(losses.perceptual_loss(a, a, ["l"])) == 0.0
  np.testing.assert_allclose(
    losses.perceptual_loss(a, b, ["l"]), np.mean((a["l"] - b["l"]) ** 2), rtol=1e-6
  )


@pytest.mark.parametrize(
  "kind,real,fake,expected",
  [
    ("nonsat", 0.0, 0.0, 2 * np.log(2)),
    ("nonsat", 50.0, -50.0, 0.0),
    ("lsgan", 1.0, 0.0, 0.0),
    ("lsgan", 0.0, 1.0, 1.0),
    ("hinge", 1.0, -1.0, 0.0),
    ("hinge", 0.0, 0.0, 2.0),
    ("hinge", -1.0, 2.0, 5.0),
  ],
)
def test_d_loss_known_points(kind, real, fake, expected):
  r, f = jnp.full((2, 3, 3, 1), real), jnp.full((2, 3, 3, 1), fake)
  np.testing.assert_allclose(losses.d_loss(kind, r, f), expected, atol=1e-6)


@pytest.mark.parametrize(
  "kind,fake,expected",
  [("nonsat", 0.0, np.log(2)), ("lsgan", 1.0, 0.0), ("lsgan", 3.0, 4.0), ("hinge", 2.0, -2.0)],
)
def test_g_loss_known_points(kind, fake, expected):
  np.testing.assert_allclose(losses.g_loss(kind, jnp.full((2, 4, 4, 1), fake)), expected, atol=1e-6)


def test_multiscale_logits_are_averaged():
  logits = [jnp.zeros((1, 4, 4, 1)), jnp.full((1, 2, 2, 1), 3.0)]
  np.testing.assert_allclose(losses.g_loss("lsgan", logits), (1.0 + 4.0) / 2)


def test_unknown_adv_type():
  with pytest.raises(ValueError, match="unknown adversarial loss"):
    losses.g_loss("wgan", jnp.zeros(3))


def test_r1_penalty_of_linear_discriminator():
  w = np.random.default_rng(2).normal(size=(1, 4, 4, 3)).astype(np.float32)
  real = np.zeros((3, 4, 4, 3), np.float32)
  # D(x) = sum(w * x) per image: grad = w, penalty = 0.5 * ||w||^2.
  d = lambda x: jnp.sum(x * w, axis=(1, 2, 3))
  np.testing.assert_allclose(losses.r1_penalty(d, real), 0.5 * np.sum(w**2), rtol=1e-5)


def test_pixel_cycle_identity_tv():
  a = np.zeros((1, 3, 3, 3), np.float32)
  b = np.ones((1, 3, 3, 3), np.float32)
  assert float(losses.pixel_content_loss(a, b)) == 1.0
  assert float(losses.cycle_loss(a, -b)) == 1.0
  assert float(losses.identity_loss(b, b)) == 0.0
  ramp = np.arange(3, dtype=np.float32)[None, :, None, None] * np.ones((1, 3, 3, 3), np.float32)
  np.testing.assert_allclose(losses.total_variation(ramp), 1.0)  # rows step by 1, cols constant
  assert float(losses.total_variation(b)) == 0.0


def test_losses_have_finite_gradients():
  x = jax.random.normal(jax.random.key(0), (2, 8, 8, 4))
  y = jax.random.normal(jax.random.key(1), (2, 8, 8, 4))

  def total(x):
    f, g = {"l": x}, {"l": y}
    return (
      losses.gram_style_loss(f, g, ["l"])
      + losses.mean_std_style_loss(f, g, ["l"])
      + losses.perceptual_loss(f, g, ["l"])
      + losses.total_variation(x)
      + sum(losses.d_loss(k, x, y) + losses.g_loss(k, x) for k in losses.ADV_TYPES)
      + losses.cycle_loss(x, y)
    )

  grad = jax.grad(total)(x)
  assert np.isfinite(np.asarray(grad)).all() and float(jnp.abs(grad).sum()) > 0
