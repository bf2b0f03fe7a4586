"""Metric functions over NHWC image batches in [-1, 1] (pure jax.numpy, jit-able, batched).

Against a known answer (higher is better), one value per image:

* PSNR = 10 log10(data_range^2 / MSE), MSE over all pixels and channels of an image; +inf for
  identical images.
* SSIM (Wang et al. 2004): 11x11 Gaussian window with sigma 1.5, K1 = 0.01, K2 = 0.03,
  C1 = (K1 L)^2, C2 = (K2 L)^2 with L = data_range; local statistics over the 'valid' window
  positions, computed per channel, averaged over positions and channels. 1 for identical images.

Against the inputs, on frozen VGG19 features (lower is better), one value per image:

* content distance: mean over positions and channels of (phi(output) - phi(content))^2 at
  CONTENT_LAYER;
* style distance, Gram: sum over STYLE_LAYERS of the mean squared difference of the Gram
  matrices (normalised by H*W) of output and style image;
* style distance, mean/std: sum over STYLE_LAYERS of the mean squared differences of the
  per-channel feature means and standard deviations.

Between distributions (lower is better), one value per pair of image sets:

* SWD (Karras et al. 2018, "Progressive growing of GANs"): sliced Wasserstein distance between
  7x7x3 patches of the Laplacian pyramid levels of two image sets; no pretrained network.
  Reported x1e3 per level and averaged over levels, as in the paper.
* FID (Heusel et al. 2017): the Frechet distance between Gaussians fitted to two feature sets,
  |mu_a - mu_b|^2 + tr(S_a + S_b - 2 (S_a S_b)^(1/2)).
* KID (Binkowski et al. 2018): the unbiased MMD^2 with the cubic polynomial kernel
  k(x, y) = (x.y / d + 1)^3, averaged over random subsets.
  FID and KID take features: `frechet_distance` / `kernel_distance` are the math, in float64 on
  the host (the feature extraction is the jit-compiled part). On VGG19 features (spatial mean
  of relu5_1) they are named FID-VGG / KID-VGG; on Inception-v3 pool3 features they are the
  usual FID / KID. Both are biased upward for small sets: compare them at equal set sizes only.

Temporal consistency without a flow network (lower is better), one value per image:

* temporal error: known-flow clips. Frame 1 is a scene x, frame 2 the same scene under a known
  integer shift W (`temporal_shift`); a temporally consistent G has G(W(x)) = W(G(x)), and the
  error is the mean squared difference of the two away from the borders (`TEMPORAL_SHIFTS`
  plus a margin of 1/8 of the image side, where the shift brings in new content and the
  networks see the border). The known flow makes it Lai et al. 2018's warping error with the
  true flow instead of an estimated one.
* temporal stability: a static scene filmed twice, x + n1 and x + n2 with independent
  Gaussian noise of std `STABILITY_NOISE` (sensor noise), and the mean squared difference of
  the two outputs. A generator that returns its input scores 2 * STABILITY_NOISE^2 (less the
  clipping to [-1, 1]): the `_identity` twin.

Images in the library are in [-1, 1], hence the default data_range of 2.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from ganstyle_jax import losses
from ganstyle_jax.models import layers
from ganstyle_jax.ops import warping

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
  return 10.0 * jnp.log10(data_range**2 / mse)


def _gaussian_window(size: int = _SSIM_WINDOW, sigma: float = _SSIM_SIGMA) -> np.ndarray:
  x = np.arange(size, dtype=np.float64) - (size - 1) / 2.0
  g = np.exp(-(x**2) / (2 * sigma**2))
  g /= g.sum()
  return np.outer(g, g).astype(np.float32)


def _filter(x: jax.Array, window: jax.Array) -> jax.Array:
  """Depthwise 'valid' 2-D filtering of NHWC images with one window for every channel."""
  kernel = jnp.broadcast_to(window[:, :, None, None], (*window.shape, x.shape[-1], 1))
  return layers.depthwise_conv(x, kernel, precision=jax.lax.Precision.HIGHEST)


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
    raise ValueError(
      f"ssim needs images of at least {_SSIM_WINDOW}x{_SSIM_WINDOW} pixels, got shape {a.shape}"
    )
  window = jnp.asarray(_gaussian_window())
  c1 = (_SSIM_K1 * data_range) ** 2
  c2 = (_SSIM_K2 * data_range) ** 2
  mu_a = _filter(a, window)
  mu_b = _filter(b, window)
  var_a = _filter(a * a, window) - mu_a**2
  var_b = _filter(b * b, window) - mu_b**2
  cov = _filter(a * b, window) - mu_a * mu_b
  ssim_map = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / (
    (mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2)
  )
  return jnp.mean(ssim_map, axis=(1, 2, 3))


# ------------------------------------------------------------------ VGG content/style distances

CONTENT_LAYER = "relu4_1"
STYLE_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1")
FID_VGG_LAYER = "relu5_1"
VGG_LAYERS = tuple(dict.fromkeys((CONTENT_LAYER, *STYLE_LAYERS, FID_VGG_LAYER)))


def _per_image_mse(a: jax.Array, b: jax.Array) -> jax.Array:
  return jnp.mean((a - b) ** 2, axis=tuple(range(1, a.ndim)))


def content_distance(out_feats, content_feats, layer: str = CONTENT_LAYER) -> jax.Array:
  """[N] mean squared VGG-feature difference at `layer`; lower is better."""
  return _per_image_mse(
    out_feats[layer].astype(jnp.float32), content_feats[layer].astype(jnp.float32)
  )


def gram_distance(out_feats, style_feats, layers=STYLE_LAYERS) -> jax.Array:
  """[N] sum over layers of the mean squared Gram-matrix difference; lower is better."""
  return sum(_per_image_mse(losses.gram(out_feats[l]), losses.gram(style_feats[l])) for l in layers)


def mean_std_distance(out_feats, style_feats, layers=STYLE_LAYERS) -> jax.Array:
  """[N] sum over layers of the mean squared differences of channel means and stds."""
  total = 0.0
  for l in layers:
    mo, so = losses.mean_std(out_feats[l])
    ms, ss = losses.mean_std(style_feats[l])
    total = total + _per_image_mse(mo, ms) + _per_image_mse(so, ss)
  return total


def pooled(feats, layer: str = FID_VGG_LAYER) -> jax.Array:
  """[N, C] spatial mean of one feature map: the FID-VGG / KID-VGG feature vector."""
  return jnp.mean(feats[layer].astype(jnp.float32), axis=(1, 2))


# ------------------------------------------------------------------------------------- SWD

_BINOMIAL = np.array([1.0, 4.0, 6.0, 4.0, 1.0], np.float32) / 16.0


def _blur(x: jax.Array) -> jax.Array:
  """5x5 binomial blur of NHWC images with reflected borders (the Gaussian pyramid kernel)."""
  x = jnp.pad(x, ((0, 0), (2, 2), (2, 2), (0, 0)), mode="reflect")
  return _filter(x, jnp.asarray(np.outer(_BINOMIAL, _BINOMIAL)))


def laplacian_pyramid(x: jax.Array, num_levels: int) -> list[jax.Array]:
  """Levels finest first: band-pass images x_i - up(down(x_i)), then the coarsest Gaussian."""
  levels = []
  for _ in range(num_levels - 1):
    down = _blur(x)[:, ::2, ::2]
    up = jnp.zeros_like(x).at[:, ::2, ::2].set(down * 4.0)
    levels.append(x - _blur(up))
    x = down
  levels.append(x)
  return levels


def swd_num_levels(size: int, min_size: int = 16) -> int:
  """Pyramid levels from `size` down to `min_size` (Karras et al.: down to 16 px)."""
  n = 1
  while size // 2 >= min_size:
    size //= 2
    n += 1
  return n


def _patches(level: jax.Array, key: jax.Array, per_image: int, size: int) -> jax.Array:
  """`per_image` random size x size patches of each image, flattened: [N * per_image, s*s*C]."""
  n, h, w, c = level.shape
  ky, kx = jax.random.split(key)
  ys = jax.random.randint(ky, (n, per_image), 0, h - size + 1)
  xs = jax.random.randint(kx, (n, per_image), 0, w - size + 1)
  offsets = jnp.arange(size)
  rows = ys[..., None, None] + offsets[:, None]  # [n, p, s, 1]
  cols = xs[..., None, None] + offsets[None, :]  # [n, p, 1, s]
  img = jnp.arange(n)[:, None, None, None]
  patches = level[img, rows, cols]  # [n, p, s, s, C]
  return patches.reshape(n * per_image, size * size * c)


def _normalise(desc: jax.Array, channels: int) -> jax.Array:
  """Per colour channel zero mean / unit std over all descriptors of the set (as in the paper)."""
  d = desc.reshape(desc.shape[0], -1, channels)
  d = (d - jnp.mean(d, axis=(0, 1))) / (jnp.std(d, axis=(0, 1)) + 1e-8)
  return d.reshape(desc.shape)


def sliced_wasserstein(
  a: jax.Array, b: jax.Array, key: jax.Array, num_directions: int = 512
) -> jax.Array:
  """Mean over random unit directions of the 1-D Wasserstein-1 distance of the projections.

  a, b: [M, D] descriptor sets of the same size M.
  """
  dirs = jax.random.normal(key, (a.shape[1], num_directions))
  dirs = dirs / jnp.linalg.norm(dirs, axis=0, keepdims=True)
  pa = jnp.sort(a @ dirs, axis=0)
  pb = jnp.sort(b @ dirs, axis=0)
  return jnp.mean(jnp.abs(pa - pb))


def swd(
  images_a: jax.Array,
  images_b: jax.Array,
  key: jax.Array,
  *,
  patches_per_image: int = 128,
  patch_size: int = 7,
  num_directions: int = 512,
  min_size: int = 16,
) -> jax.Array:
  """Sliced Wasserstein distance x1e3 per Laplacian-pyramid level [L] (finest first).

  0 for identical sets; grows as the patch distributions move apart; lower is better. Both
  sets must have the same number of images and size; the same key gives the same value.
  Jit with `jax.jit(swd, static_argnames=(...))` or call as is.
  """
  if images_a.shape != images_b.shape:
    raise ValueError(
      f"swd needs image sets of equal shape, got {images_a.shape} and {images_b.shape}"
    )
  levels = swd_num_levels(images_a.shape[1], min_size)
  pyr_a = laplacian_pyramid(jnp.asarray(images_a, jnp.float32), levels)
  pyr_b = laplacian_pyramid(jnp.asarray(images_b, jnp.float32), levels)
  c = images_a.shape[-1]
  out = []
  for i, (la, lb) in enumerate(zip(pyr_a, pyr_b)):
    k_patch, k_dirs = jax.random.split(jax.random.fold_in(key, i))
    # Same patch positions in both sets: identical sets give exactly 0.
    da = _normalise(_patches(la, k_patch, patches_per_image, patch_size), c)
    db = _normalise(_patches(lb, k_patch, patches_per_image, patch_size), c)
    out.append(sliced_wasserstein(da, db, k_dirs, num_directions) * 1e3)
  return jnp.stack(out)


# ------------------------------------------------------------------ temporal consistency

# Known shifts (dy, dx) of the known-flow clips, pixels; image i of a batch moves by
# TEMPORAL_SHIFTS[i % 4]. None is a multiple of the encoder's stride: the shifts test the
# aliasing of the downsampling path, not only the convolutions' equivariance.
TEMPORAL_SHIFTS = ((1, 0), (0, 2), (3, 1), (-2, -3))
STABILITY_NOISE = 0.02  # 2.5 grey levels of [0, 255]


def temporal_shifts(n: int) -> np.ndarray:
  """[n, 1, 1, 2] float32 constant flows: image i moves by TEMPORAL_SHIFTS[i % 4]."""
  shifts = np.asarray([TEMPORAL_SHIFTS[i % len(TEMPORAL_SHIFTS)] for i in range(n)], np.float32)
  return shifts[:, None, None, :]


def temporal_margin(h: int, w: int) -> int:
  """Border pixels the temporal error leaves out: the largest shift + 1/8 of the short side."""
  return max(abs(v) for s in TEMPORAL_SHIFTS for v in s) + min(h, w) // 8


def temporal_error(output_of_shifted: jax.Array, output: jax.Array, flow: jax.Array) -> jax.Array:
  """[N] mean squared difference of G(W(x)) and W(G(x)) away from the borders
  (`temporal_margin` pixels on every side); lower is better.

  Args:
    output_of_shifted: G's outputs for the shifted scenes W(x), NHWC in [-1, 1].
    output: G's outputs for the scenes x, NHWC.
    flow: the shifts W, [N or 1, 1, 1, 2] (`temporal_shifts`), or any flow for `warping.warp`.
  """
  a = jnp.asarray(output_of_shifted, jnp.float32)
  b = warping.warp(output, flow)
  m = temporal_margin(*a.shape[1:3])
  return _per_image_mse(a[:, m:-m, m:-m], b[:, m:-m, m:-m])


def stability_frames(x: jax.Array, key: jax.Array) -> tuple[jax.Array, jax.Array]:
  """Two noisy takes of a static scene: x + STABILITY_NOISE * n_i, clipped to [-1, 1]."""
  k1, k2 = jax.random.split(key)
  take = lambda k: jnp.clip(x + STABILITY_NOISE * jax.random.normal(k, x.shape), -1.0, 1.0)
  return take(k1), take(k2)


def temporal_stability(output_1: jax.Array, output_2: jax.Array) -> jax.Array:
  """[N] mean squared difference of G's outputs for two noisy takes of the same scene."""
  return _per_image_mse(jnp.asarray(output_1, jnp.float32), jnp.asarray(output_2, jnp.float32))


# --------------------------------------------------------------------------- FID and KID


def frechet_distance(feats_a, feats_b) -> float:
  """FID between feature sets [N, D] and [M, D] (float64 on the host); lower is better."""
  a = np.asarray(feats_a, np.float64)
  b = np.asarray(feats_b, np.float64)
  mu_a, mu_b = a.mean(0), b.mean(0)
  cov_a = np.cov(a, rowvar=False)
  cov_b = np.cov(b, rowvar=False)
  # tr((S_a S_b)^(1/2)) = sum sqrt(eig(S_a^(1/2) S_b S_a^(1/2))), a symmetric PSD matrix.
  w, v = np.linalg.eigh(cov_a)
  sqrt_a = (v * np.sqrt(np.clip(w, 0, None))) @ v.T
  eig = np.linalg.eigvalsh(sqrt_a @ cov_b @ sqrt_a)
  tr_sqrt = np.sum(np.sqrt(np.clip(eig, 0, None)))
  return float(np.sum((mu_a - mu_b) ** 2) + np.trace(cov_a) + np.trace(cov_b) - 2 * tr_sqrt)


def kernel_distance(
  feats_a, feats_b, *, num_subsets: int = 100, subset_size: int = 1000, seed: int = 0
) -> float:
  """KID: unbiased MMD^2, cubic polynomial kernel, mean over random subsets; lower is better.

  The subset size is capped at the smaller set's size. Can be slightly negative (unbiased).
  """
  a = np.asarray(feats_a, np.float64)
  b = np.asarray(feats_b, np.float64)
  m = min(subset_size, len(a), len(b))
  if m < 2:
    raise ValueError("kernel_distance needs at least 2 samples per set")
  d = a.shape[1]
  rng = np.random.default_rng(seed)
  kern = lambda x, y: (x @ y.T / d + 1.0) ** 3
  values = []
  for _ in range(num_subsets):
    x = a[rng.choice(len(a), m, replace=False)]
    y = b[rng.choice(len(b), m, replace=False)]
    kxx, kyy, kxy = kern(x, x), kern(y, y), kern(x, y)
    off = lambda k: (k.sum() - np.trace(k)) / (m * (m - 1))
    values.append(off(kxx) + off(kyy) - 2 * kxy.mean())
  return float(np.mean(values))
