"""Tests for ganstyle_jax.baselines: CIE Lab conversion and Reinhard colour transfer against an
independent NumPy reference (float64, written here from the CIE / IEC formulas), their
properties, and the known-answer baselines."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ganstyle_jax import baselines
from ganstyle_jax import metrics
from ganstyle_jax.data import synthetic

# IEC 61966-2-1 sRGB primaries, D65 white (the published matrix, rounded to 4 digits).
_M = np.array([[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722], [0.0193, 0.1192, 0.9505]])
_WHITE = np.array([0.95047, 1.0, 1.08883])


def _ref_rgb_to_lab(rgb: np.ndarray) -> np.ndarray:
  rgb = np.asarray(rgb, np.float64)
  lin = np.where(rgb > 0.04045, ((rgb + 0.055) / 1.055) ** 2.4, rgb / 12.92)
  t = np.einsum("ij,...j->...i", _M, lin) / _WHITE
  eps, kappa = 216 / 24389, 24389 / 27  # the CIE constants (6/29)^3 and (29/3)^3
  f = np.where(t > eps, np.cbrt(t), (kappa * t + 16) / 116)
  return np.stack(
    [116 * f[..., 1] - 16, 500 * (f[..., 0] - f[..., 1]), 200 * (f[..., 1] - f[..., 2])], -1
  )


def _ref_lab_to_rgb(lab: np.ndarray) -> np.ndarray:
  lab = np.asarray(lab, np.float64)
  fy = (lab[..., 0] + 16) / 116
  fx, fz = fy + lab[..., 1] / 500, fy - lab[..., 2] / 200
  eps, kappa = 216 / 24389, 24389 / 27
  x = np.where(fx**3 > eps, fx**3, (116 * fx - 16) / kappa)
  y = np.where(lab[..., 0] > kappa * eps, fy**3, lab[..., 0] / kappa)
  z = np.where(fz**3 > eps, fz**3, (116 * fz - 16) / kappa)
  xyz = np.stack([x, y, z], -1) * _WHITE
  lin = np.clip(np.einsum("ij,...j->...i", np.linalg.inv(_M), xyz), 0, 1)
  return np.where(lin > 0.0031308, 1.055 * lin ** (1 / 2.4) - 0.055, 12.92 * lin)


def _ref_colour_transfer(content: np.ndarray, style: np.ndarray) -> np.ndarray:
  """Reinhard et al. 2001 in CIE Lab, one image pair in [-1, 1], float64."""
  c, s = _ref_rgb_to_lab((content + 1) / 2), _ref_rgb_to_lab((style + 1) / 2)
  c2 = c.reshape(-1, 3)
  s2 = s.reshape(-1, 3)
  out = (c - c2.mean(0)) / c2.std(0) * s2.std(0) + s2.mean(0)
  return _ref_lab_to_rgb(out) * 2 - 1


def _scenes(indices, size=32, lo=0.0, hi=1.0) -> np.ndarray:
  """Photo scenes in [-1, 1], their [0, 1] values squeezed into [lo, hi]."""
  x = np.stack([synthetic.render_scene(i, size) for i in indices])
  return ((lo + (hi - lo) * x) * 2 - 1).astype(np.float32)


def test_lab_known_values_and_reference():
  lab = np.asarray(
    baselines.rgb_to_lab(
      jnp.array([[1.0, 1.0, 1.0], [0.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    )
  )
  # Published CIE Lab (D65) values of sRGB white, black, red and blue.
  np.testing.assert_allclose(
    lab, [[100, 0, 0], [0, 0, 0], [53.24, 80.09, 67.20], [32.30, 79.19, -107.86]], atol=0.02
  )
  rgb = np.random.default_rng(0).uniform(0, 1, (500, 3))
  ref = _ref_rgb_to_lab(rgb)
  np.testing.assert_allclose(
    np.asarray(baselines.rgb_to_lab(jnp.asarray(rgb, jnp.float32))), ref, atol=0.02
  )
  np.testing.assert_allclose(baselines.rgb_to_lab(rgb), ref, atol=0.02)  # NumPy path
  # The inverse: a float32 round trip; against the reference (whose 4-digit matrix differs by
  # up to 1e-3 in RGB).
  lab = baselines.rgb_to_lab(jnp.asarray(rgb, jnp.float32))
  np.testing.assert_allclose(np.asarray(baselines.lab_to_rgb(lab)), rgb, atol=1e-4)
  np.testing.assert_allclose(
    np.asarray(baselines.lab_to_rgb(jnp.asarray(ref, jnp.float32))), rgb, atol=2e-3
  )
  np.testing.assert_allclose(_ref_lab_to_rgb(ref), rgb, atol=1e-4)  # the reference itself
  # Out of gamut: clipped into [0, 1], as the reference does.
  wild = np.array([[50.0, 120.0, -120.0], [95.0, -90.0, 90.0], [5.0, 40.0, 40.0]])
  np.testing.assert_allclose(baselines.lab_to_rgb(wild), _ref_lab_to_rgb(wild), atol=1e-3)


def test_colour_transfer_matches_numpy_reference():
  content, style = _scenes([1, 2, 3]), _scenes([11, 12, 13])
  out = np.asarray(jax.jit(baselines.colour_transfer)(jnp.asarray(content), jnp.asarray(style)))
  assert out.shape == content.shape and out.dtype == np.float32
  assert out.min() >= -1 and out.max() <= 1
  for i in range(3):
    np.testing.assert_allclose(out[i], _ref_colour_transfer(content[i], style[i]), atol=2e-3)
  np.testing.assert_allclose(baselines.colour_transfer(content, style), out, atol=2e-4)  # NumPy


def test_colour_transfer_onto_itself_is_identity():
  x = _scenes([4, 5])
  np.testing.assert_allclose(np.asarray(baselines.colour_transfer(jnp.asarray(x), x)), x, atol=1e-3)


def test_colour_transfer_gives_the_style_lab_statistics():
  # Mild colour variations around mid-range colours: the output stays inside the gamut.
  rng = np.random.default_rng(3)
  content = (0.5 + 0.15 * rng.uniform(-1, 1, (2, 24, 24, 3))) * 2 - 1
  style = (
    np.array([[0.45, 0.55, 0.6], [0.6, 0.45, 0.35]])[:, None, None]
    + 0.1 * rng.uniform(-1, 1, (2, 24, 24, 3))
  ) * 2 - 1
  content, style = content.astype(np.float32), style.astype(np.float32)
  out = np.asarray(baselines.colour_transfer(jnp.asarray(content), jnp.asarray(style)))
  assert np.abs(out).max() < 0.98  # away from clipping
  lab_out = _ref_rgb_to_lab((out + 1) / 2).reshape(2, -1, 3)
  lab_style = _ref_rgb_to_lab((style + 1) / 2).reshape(2, -1, 3)
  np.testing.assert_allclose(lab_out.mean(1), lab_style.mean(1), atol=0.05)
  np.testing.assert_allclose(lab_out.std(1), lab_style.std(1), rtol=2e-3, atol=0.02)
  # ... and keeps C's structure: per channel, the output is an increasing function of C's Lab.
  lab_c = _ref_rgb_to_lab((content + 1) / 2).reshape(2, -1, 3)
  for i in range(2):
    for ch in range(3):
      assert np.corrcoef(lab_c[i, :, ch], lab_out[i, :, ch])[0, 1] > 0.999


def test_colour_transfer_of_a_flat_image_is_the_style_mean():
  flat = np.full((1, 16, 16, 3), 0.2, np.float32)
  style = _scenes([3], size=16, lo=0.3, hi=0.7)
  out = np.asarray(baselines.colour_transfer(jnp.asarray(flat), jnp.asarray(style)))
  assert np.isfinite(out).all()
  mean_lab = _ref_rgb_to_lab((style[0] + 1) / 2).reshape(-1, 3).mean(0)
  np.testing.assert_allclose(
    out[0], np.broadcast_to(_ref_lab_to_rgb(mean_lab) * 2 - 1, (16, 16, 3)), atol=2e-3
  )


def test_known_answer_baselines():
  pairs = synthetic.heldout_pairs(3, 32, num_styles=2)
  c, s, t = pairs["content"], pairs["style"], pairs["target"]
  out = baselines.known_answer_baselines(c, s, t)
  assert set(out) == {
    "psnr_identity",
    "ssim_identity",
    "psnr_colour_transfer",
    "ssim_colour_transfer",
  }
  assert all(isinstance(v, float) for v in out.values())
  assert out["psnr_identity"] == pytest.approx(float(jnp.mean(metrics.psnr(c, t))), rel=1e-5)
  assert out["ssim_identity"] == pytest.approx(float(jnp.mean(metrics.ssim(c, t))), rel=1e-5)
  transferred = baselines.colour_transfer(c, s)
  assert out["psnr_colour_transfer"] == pytest.approx(
    float(np.mean(metrics.psnr(transferred, t))), rel=1e-4
  )
  assert out["ssim_colour_transfer"] == pytest.approx(
    float(np.mean(metrics.ssim(transferred, t))), abs=1e-4
  )
  # With the answer itself as content and style, both baselines are perfect.
  perfect = baselines.known_answer_baselines(t, t, t)
  assert np.isinf(perfect["psnr_identity"]) and perfect["psnr_colour_transfer"] > 40
  assert perfect["ssim_colour_transfer"] == pytest.approx(1.0, abs=1e-3)
