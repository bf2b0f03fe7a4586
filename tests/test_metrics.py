"""Tests for ganstyle_jax.metrics: PSNR and SSIM values, shapes, jit."""

import jax
import jax.numpy as jnp
import numpy as np
from scipy import signal

from ganstyle_jax import metrics


def _ssim_reference(a: np.ndarray, b: np.ndarray, data_range: float) -> np.ndarray:
  """Straightforward NumPy/SciPy SSIM (Wang et al. 2004), per image."""
  x = np.arange(11) - 5.0
  g = np.exp(-x ** 2 / (2 * 1.5 ** 2))
  w = np.outer(g, g) / np.outer(g, g).sum()
  c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
  out = []
  for ai, bi in zip(a.astype(np.float64), b.astype(np.float64)):
    vals = []
    for c in range(ai.shape[-1]):
      f = lambda z: signal.convolve2d(z, w[::-1, ::-1], mode='valid')  # noqa: E731
      x1, y1 = ai[..., c], bi[..., c]
      mx, my = f(x1), f(y1)
      vx, vy, cxy = f(x1 * x1) - mx ** 2, f(y1 * y1) - my ** 2, f(x1 * y1) - mx * my
      m = ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx ** 2 + my ** 2 + c1) * (vx + vy + c2))
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
