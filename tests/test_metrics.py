"""Tests for ganstyle_jax.metrics on hand-built cases: PSNR, SSIM, SWD, FID, KID, VGG distances."""

import jax
import jax.numpy as jnp
import numpy as np
from scipy import signal

from ganstyle_jax import metrics
from ganstyle_jax.data import synthetic


def _ssim_reference(a: np.ndarray, b: np.ndarray, data_range: float) -> np.ndarray:
  """Straightforward NumPy/SciPy SSIM (Wang et al. 2004), per image."""
  x = np.arange(11) - 5.0
  g = np.exp(-(x**2) / (2 * 1.5**2))
  w = np.outer(g, g) / np.outer(g, g).sum()
  c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
  out = []
  for ai, bi in zip(a.astype(np.float64), b.astype(np.float64)):
    vals = []
    for c in range(ai.shape[-1]):
      f = lambda z: signal.convolve2d(z, w[::-1, ::-1], mode="valid")  # noqa: E731
      x1, y1 = ai[..., c], bi[..., c]
      mx, my = f(x1), f(y1)
      vx, vy, cxy = f(x1 * x1) - mx**2, f(y1 * y1) - my**2, f(x1 * y1) - mx * my
      m = ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx**2 + my**2 + c1) * (vx + vy + c2))
      vals.append(m.mean())
    out.append(np.mean(vals))
  return np.array(out)


def test_psnr_known_value_and_shape():
  a = jnp.zeros((3, 8, 8, 3))
  b = a + 0.1  # MSE 0.01 -> 10 log10(4 / 0.01)
  out = metrics.psnr(a, b)
  assert out.shape == (3,)
  np.testing.assert_allclose(out, 10 * np.log10(4 / 0.01), rtol=1e-5)
  np.testing.assert_allclose(metrics.psnr(a, b, data_range=1.0), 20.0, rtol=1e-5)
  assert np.isinf(metrics.psnr(a, a)).all()


def test_ssim_identity_is_one_and_matches_reference():
  rng = np.random.default_rng(0)
  a = rng.uniform(-1, 1, (2, 24, 20, 3)).astype(np.float32)
  b = np.clip(a + rng.normal(0, 0.3, a.shape), -1, 1).astype(np.float32)
  np.testing.assert_allclose(metrics.ssim(a, a), 1.0, atol=1e-5)
  out = metrics.ssim(a, b)
  assert out.shape == (2,)
  np.testing.assert_allclose(out, _ssim_reference(a, b, 2.0), atol=1e-4)
  assert (np.asarray(out) < 0.9).all()  # noise lowers SSIM


def test_metrics_are_jittable():
  a = jnp.linspace(-1, 1, 2 * 16 * 16 * 3).reshape(2, 16, 16, 3)
  b = a[:, ::-1]
  np.testing.assert_allclose(jax.jit(metrics.ssim)(a, b), metrics.ssim(a, b), rtol=1e-5)
  np.testing.assert_allclose(jax.jit(metrics.psnr)(a, b), metrics.psnr(a, b), rtol=1e-5)


def _photos(first: int, n: int = 16) -> np.ndarray:
  return np.stack([synthetic.render_scene(first + i, 64) for i in range(n)]) * 2.0 - 1.0


def test_laplacian_pyramid_levels_and_reconstruction():
  x = jnp.asarray(_photos(0, 2))
  levels = metrics.laplacian_pyramid(x, metrics.swd_num_levels(64))
  assert [l.shape[1] for l in levels] == [64, 32, 16]
  # The pyramid is invertible: x = band_0 + blur(up(band_1 + blur(up(coarsest)))).
  rec = levels[-1]
  for band in levels[-2::-1]:
    up = jnp.zeros_like(band).at[:, ::2, ::2].set(rec * 4.0)
    rec = band + metrics._blur(up)
  np.testing.assert_allclose(rec, x, atol=1e-5)


def test_swd_zero_for_identical_sets_and_grows_with_distribution_distance():
  key = jax.random.key(0)
  photos, other_photos = _photos(0), _photos(100)
  paintings = synthetic.painting_signed(other_photos)
  same = metrics.swd(photos, photos, key)
  assert same.shape == (3,)
  np.testing.assert_array_equal(same, 0.0)
  # Replace a growing share of a same-distribution set by paintings.
  d = [
    float(jnp.mean(metrics.swd(photos, np.concatenate([paintings[:k], other_photos[k:]]), key)))
    for k in (0, 8, 16)
  ]
  assert 0 < d[0] < d[1] < d[2]
  assert d[2] > 1.5 * d[0]
  np.testing.assert_allclose(
    metrics.swd(photos, paintings, key), jax.jit(metrics.swd)(photos, paintings, key), rtol=1e-5
  )


def test_frechet_distance_known_values():
  rng = np.random.default_rng(0)
  a = rng.normal(size=(500, 8))
  assert abs(metrics.frechet_distance(a, a)) < 1e-8
  shift = np.arange(8.0)
  # Same covariance, mean moved by `shift`: FID = |shift|^2 exactly.
  np.testing.assert_allclose(metrics.frechet_distance(a, a + shift), np.sum(shift**2), rtol=1e-8)
  # Scaling by s: tr(S + s^2 S - 2 s S) = (1 - s)^2 tr(S).
  np.testing.assert_allclose(
    metrics.frechet_distance(a, 3 * a - 2 * a.mean(0)),
    4 * np.trace(np.cov(a, rowvar=False)),
    rtol=1e-6,
  )


def test_kernel_distance_near_zero_for_one_distribution_and_grows_apart():
  rng = np.random.default_rng(0)
  a, b = rng.normal(size=(300, 16)), rng.normal(size=(300, 16))
  same = metrics.kernel_distance(a, b, num_subsets=20, subset_size=200)
  near = metrics.kernel_distance(a, b + 0.5, num_subsets=20, subset_size=200)
  far = metrics.kernel_distance(a, b + 2.0, num_subsets=20, subset_size=200)
  assert abs(same) < 0.05 < near < far
  assert metrics.kernel_distance(a, b, seed=1) == metrics.kernel_distance(a, b, seed=1)


def test_vgg_distances_against_direct_formulas():
  rng = np.random.default_rng(0)
  f = {l: jnp.asarray(rng.normal(size=(2, 4, 4, 3)), jnp.float32) for l in metrics.VGG_LAYERS}
  g = {l: 2 * v for l, v in f.items()}
  np.testing.assert_allclose(metrics.content_distance(f, f), 0.0)
  np.testing.assert_allclose(
    metrics.content_distance(g, f),
    np.mean(np.asarray(f[metrics.CONTENT_LAYER]) ** 2, axis=(1, 2, 3)),
    rtol=1e-5,
  )
  # Gram(2f) = 4 Gram(f): the per-image distance is mean((3 Gram(f))^2), summed over layers.
  expected = 0.0
  for l in metrics.STYLE_LAYERS:
    x = np.asarray(f[l]).reshape(2, 16, 3)
    gram = np.einsum("npc,npd->ncd", x, x) / 16
    expected = expected + np.mean((3 * gram) ** 2, axis=(1, 2))
  np.testing.assert_allclose(metrics.gram_distance(g, f), expected, rtol=1e-4)
  np.testing.assert_allclose(metrics.mean_std_distance(f, f), 0.0, atol=1e-10)
  shifted = {l: v + 1.0 for l, v in f.items()}  # means move by 1, stds stay
  np.testing.assert_allclose(
    metrics.mean_std_distance(shifted, f), len(metrics.STYLE_LAYERS), rtol=1e-4
  )
