"""Image-quality metric functions (pure jax.numpy, jit-able) over NHWC batches.

Both return one value per image, higher is better:

* PSNR = 10 log10(data_range^2 / MSE), MSE over all pixels and channels of an image; +inf for
  identical images.
* SSIM (Wang et al. 2004): 11x11 Gaussian window with sigma 1.5, K1 = 0.01, K2 = 0.03,
  C1 = (K1 L)^2, C2 = (K2 L)^2 with L = data_range; local statistics over the 'valid' window
  positions, computed per channel, averaged over positions and channels. 1 for identical images.

Images in the library are in [-1, 1], hence the default data_range of 2.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

_SSIM_WINDOW = 11
_SSIM_SIGMA = 1.5
_SSIM_K1 = 0.01
_SSIM_K2 = 0.03


def psnr(a: jax.Array, b: jax.Array, data_range: float = 2.0) -> jax.Array:
  """Peak signal-to-noise ratio in dB, per image; higher is better.

  Args:
    a: images NHWC (in [-1, 1] for the default data_range).
    b: images NHWC, same shape.
    data_range: max - min of the pixel range (2.0 for [-1, 1], 1.0 for [0, 1]).

  Returns:
    float32 [N]: 10 log10(data_range^2 / mean((a - b)^2)); +inf where a == b.
  """
  a = jnp.asarray(a, jnp.float32)
  b = jnp.asarray(b, jnp.float32)
  mse = jnp.mean((a - b) ** 2, axis=tuple(range(1, a.ndim)))
  return 10.0 * jnp.log10(data_range ** 2 / mse)


def _gaussian_window(size: int = _SSIM_WINDOW, sigma: float = _SSIM_SIGMA) -> np.ndarray:
  x = np.arange(size, dtype=np.float64) - (size - 1) / 2.0
  g = np.exp(-x ** 2 / (2 * sigma ** 2))
  g /= g.sum()
  return np.outer(g, g).astype(np.float32)


def _filter(x: jax.Array, window: jax.Array) -> jax.Array:
  """Depthwise 'valid' 2-D filtering of NHWC images with one window for every channel."""
  c = x.shape[-1]
  kernel = jnp.tile(window[:, :, None, None], (1, 1, 1, c))  # HWIO, groups = channels
  return jax.lax.conv_general_dilated(
      x, kernel, window_strides=(1, 1), padding='VALID',
      dimension_numbers=('NHWC', 'HWIO', 'NHWC'), feature_group_count=c,
      precision=jax.lax.Precision.HIGHEST)


def ssim(a: jax.Array, b: jax.Array, data_range: float = 2.0) -> jax.Array:
  """Structural similarity (Gaussian window 11x11, sigma 1.5), per image; higher is better.

  Args:
    a: images NHWC (in [-1, 1] for the default data_range), H and W >= 11.
    b: images NHWC, same shape.
    data_range: max - min of the pixel range (2.0 for [-1, 1], 1.0 for [0, 1]).

  Returns:
    float32 [N] in [-1, 1]; 1 where a == b.
  """
  a = jnp.asarray(a, jnp.float32)
  b = jnp.asarray(b, jnp.float32)
  if a.shape[1] < _SSIM_WINDOW or a.shape[2] < _SSIM_WINDOW:
    raise ValueError(f'ssim needs images of at least {_SSIM_WINDOW}x{_SSIM_WINDOW} pixels, '
                     f'got shape {a.shape}')
  window = jnp.asarray(_gaussian_window())
  c1 = (_SSIM_K1 * data_range) ** 2
  c2 = (_SSIM_K2 * data_range) ** 2
  mu_a = _filter(a, window)
  mu_b = _filter(b, window)
  var_a = _filter(a * a, window) - mu_a ** 2
  var_b = _filter(b * b, window) - mu_b ** 2
  cov = _filter(a * b, window) - mu_a * mu_b
  ssim_map = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / (
      (mu_a ** 2 + mu_b ** 2 + c1) * (var_a + var_b + c2))
  return jnp.mean(ssim_map, axis=(1, 2, 3))
