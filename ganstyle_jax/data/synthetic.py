"""The embedded synthetic dataset: procedural 'photo' scenes and their known 'painting' style.

Two unpaired domains, built offline in seconds as a TFDS dataset so they take the same input path
as real datasets (`synthetic:photo`, `synthetic:painting` in a config):

* photo: procedural scenes (a linear colour gradient at a random angle, 3 to 6 shaded circles and
  rectangles, some with stripe texture, low-frequency background texture, Gaussian noise of std
  0.02). Each scene is a pure function of its seed and is rendered at any size.
* painting: other scenes (independent seeds, so the domains are unpaired) passed through the
  FIXED function `painting` below: 3x3 box blur, nearest colour in an 8-colour palette, dark
  outlines where the blurred luminance has a strong gradient.

Because the style function is known, a trained generator is measurable exactly:
`known_answer_metrics` gives PSNR/SSIM of G(photo) against painting(photo) on the held-out test
split, beside the identity baseline (photo against painting(photo)).

TFDS splits of `ganstyle_synthetic/<config>`: `train_photo`, `train_painting`, `test_photo`
(paired: 'image' = photo, 'target' = painting(photo), exactly), `test_painting`. Every example
has features 'image' and 'target' (uint8 HWC RGB); for painting splits target == image.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any, Iterator

from etils import epath
import numpy as np
import tensorflow_datasets as tfds

# The painting palette (RGB in [0, 1]); part of the fixed, documented style function.
PALETTE = np.array([
    (0.95, 0.90, 0.75),
    (0.85, 0.35, 0.20),
    (0.20, 0.35, 0.60),
    (0.15, 0.50, 0.30),
    (0.90, 0.75, 0.20),
    (0.45, 0.25, 0.45),
    (0.10, 0.10, 0.12),
    (0.60, 0.70, 0.85),
], dtype=np.float32)
LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)
EDGE_THRESHOLD = 0.12
EDGE_DARKEN = 0.25
NOISE_STD = 0.02

DOMAINS = ('photo', 'painting')
_DOMAIN_ID = {'photo': 0, 'painting': 1}
_SPLIT_ID = {'train': 0, 'test': 1}


# ----------------------------------------------------------------------------------------------
# The fixed painting function.
# ----------------------------------------------------------------------------------------------


def _array_module(x: Any):
  """numpy for NumPy inputs, jax.numpy for JAX arrays and tracers."""
  if isinstance(x, np.ndarray):
    return np
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  return jnp


def _pad_hw(x, xp, width: int = 1):
  """Edge-pads the H and W axes of [..., H, W, C]."""
  pad = [(0, 0)] * (x.ndim - 3) + [(width, width), (width, width), (0, 0)]
  return xp.pad(x, pad, mode='edge')


def painting(image):
  """The fixed 'painting' style function: depends on content only, deterministic.

  1. b = 3x3 box blur of the image (edge padding);
  2. q = the nearest palette colour of b, per pixel (squared RGB distance; ties -> first);
  3. L = 0.299 R + 0.587 G + 0.114 B of b; gx, gy = central differences of L,
     (L[i+1] - L[i-1]) / 2 with edge padding; where sqrt(gx^2 + gy^2) > 0.12 the output is
     0.25 * q, elsewhere q.

  Args:
    image: float RGB in [0, 1], shape [..., H, W, 3]; a NumPy array (computed in NumPy) or a
      JAX array (computed in jax.numpy, jit-able).

  Returns:
    The painted image, same shape, float32 in [0, 1] (values are palette colours or 0.25x them).
  """
  xp = _array_module(image)
  x = xp.asarray(image, dtype=xp.float32)
  h, w = x.shape[-3], x.shape[-2]
  p = _pad_hw(x, xp)
  b = sum(p[..., i:i + h, j:j + w, :] for i in range(3) for j in range(3)) / 9.0
  palette = xp.asarray(PALETTE)
  dist = ((b[..., None, :] - palette) ** 2).sum(-1)  # [..., H, W, 8]
  q = palette[xp.argmin(dist, axis=-1)]
  lum = (b * xp.asarray(LUMA)).sum(-1, keepdims=True)
  lp = _pad_hw(lum, xp)
  gx = (lp[..., 1:h + 1, 2:w + 2, :] - lp[..., 1:h + 1, 0:w, :]) / 2.0
  gy = (lp[..., 2:h + 2, 1:w + 1, :] - lp[..., 0:h, 1:w + 1, :]) / 2.0
  edge = xp.sqrt(gx ** 2 + gy ** 2) > EDGE_THRESHOLD
  return xp.where(edge, EDGE_DARKEN * q, q).astype(xp.float32)


def painting_signed(image):
  """`painting` for images in [-1, 1] (the library convention): [..., H, W, 3] -> [-1, 1]."""
  return painting((image + 1.0) / 2.0) * 2.0 - 1.0


# ----------------------------------------------------------------------------------------------
# Procedural scenes.
# ----------------------------------------------------------------------------------------------


def scene_seed(domain: str, split: str, index: int, dataset_seed: int = 0) -> tuple[int, ...]:
  """The seed of one scene: photo and painting scenes never share seeds (unpaired domains)."""
  return (int(dataset_seed), _DOMAIN_ID[domain], _SPLIT_ID[split], int(index))


def render_scene(seed: int | tuple[int, ...], size: int = 64) -> np.ndarray:
  """Renders one procedural scene; a pure function of `seed`, at any `size`.

  Geometry lives in [0, 1]^2 coordinates with anti-aliased shape edges, so one seed gives the same
  scene at every resolution (up to sampling); noise is per pixel.

  Args:
    seed: an int or a tuple of ints (see `scene_seed`).
    size: output height and width in pixels.

  Returns:
    float32 [size, size, 3] RGB in [0, 1].
  """
  rng = np.random.default_rng(seed)
  coords = (np.arange(size, dtype=np.float32) + 0.5) / size
  yy, xx = np.meshgrid(coords, coords, indexing='ij')
  yy, xx = yy[..., None], xx[..., None]
  px = 1.0 / size  # one pixel, for anti-aliasing

  # Linear gradient at a random angle between two random colours.
  theta = rng.uniform(0, 2 * np.pi)
  c, s = np.cos(theta), np.sin(theta)
  t = ((xx - 0.5) * c + (yy - 0.5) * s) / (0.5 * (abs(c) + abs(s))) * 0.5 + 0.5
  c0, c1 = rng.uniform(0, 1, 3), rng.uniform(0, 1, 3)
  img = c0 * (1 - t) + c1 * t
  # Low-frequency background texture: two random plane waves.
  for _ in range(2):
    f, phi, ph = rng.uniform(1, 4), rng.uniform(0, 2 * np.pi), rng.uniform(0, 2 * np.pi)
    amp = rng.uniform(0, 0.06, 3)
    img = img + amp * np.sin(2 * np.pi * f * (xx * np.cos(phi) + yy * np.sin(phi)) + ph)

  # 3 to 6 shaded circles and rectangles.
  for _ in range(rng.integers(3, 7)):
    colour = rng.uniform(0.05, 0.95, 3)
    cx, cy = rng.uniform(0.1, 0.9, 2)
    if rng.uniform() < 0.5:
      r = rng.uniform(0.06, 0.25)
      d = np.sqrt((xx - cx) ** 2 + (yy - cy) ** 2) - r  # signed distance to the circle
      half_h = r
    else:
      hw, hh = rng.uniform(0.05, 0.25, 2)
      d = np.maximum(np.abs(xx - cx) - hw, np.abs(yy - cy) - hh)
      half_h = hh
    mask = np.clip(0.5 - d / px, 0.0, 1.0)
    # Vertical shading ramp across the shape.
    k = rng.uniform(-0.5, 0.5)
    shade = 1.0 + k * np.clip((yy - cy) / half_h, -1.0, 1.0)
    fill = colour * shade
    if rng.uniform() < 0.5:  # stripe texture
      f, phi = rng.uniform(4, 12), rng.uniform(0, np.pi)
      fill = fill * (1.0 + 0.12 * np.sin(2 * np.pi * f * (xx * np.cos(phi) + yy * np.sin(phi))))
    img = img * (1 - mask) + fill * mask

  img = img + rng.normal(0.0, NOISE_STD, img.shape)
  return np.clip(img, 0.0, 1.0).astype(np.float32)


def to_uint8(image: np.ndarray) -> np.ndarray:
  """float [0, 1] -> uint8 [0, 255] (rounded)."""
  return np.clip(np.round(image * 255.0), 0, 255).astype(np.uint8)


def make_example(domain: str, split: str, index: int, size: int = 64,
                 dataset_seed: int = 0) -> dict[str, np.ndarray]:
  """One dataset example as stored: {'image', 'target'} uint8 [size, size, 3].

  For photos, target = painting(the stored uint8 photo), the exact known answer; for paintings,
  target = image.
  """
  scene = render_scene(scene_seed(domain, split, index, dataset_seed), size)
  if domain == 'photo':
    image = to_uint8(scene)
    target = to_uint8(painting(image.astype(np.float32) / 255.0))
  else:
    image = to_uint8(painting(scene))
    target = image
  return {'image': image, 'target': target}


# ----------------------------------------------------------------------------------------------
# Known-answer metrics.
# ----------------------------------------------------------------------------------------------


def known_answer_metrics(photos, outputs) -> dict[str, float]:
  """PSNR/SSIM of G(photo) against painting(photo), beside the identity baseline.

  Higher is better for all four numbers; a useful generator beats the identity baseline
  (`*_identity`: the photo itself scored against painting(photo)).

  Args:
    photos: content photos, NHWC in [-1, 1] (H, W >= 11).
    outputs: G(photos), NHWC in [-1, 1], same shape.

  Returns:
    {'psnr', 'ssim', 'psnr_identity', 'ssim_identity'}: means over the batch (Python floats).
  """
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  from ganstyle_jax import metrics  # pylint: disable=g-import-not-at-top
  photos = jnp.asarray(photos, jnp.float32)
  outputs = jnp.asarray(outputs, jnp.float32)
  target = painting_signed(photos)
  return {
      'psnr': float(jnp.mean(metrics.psnr(outputs, target))),
      'ssim': float(jnp.mean(metrics.ssim(outputs, target))),
      'psnr_identity': float(jnp.mean(metrics.psnr(photos, target))),
      'ssim_identity': float(jnp.mean(metrics.ssim(photos, target))),
  }


# ----------------------------------------------------------------------------------------------
# The TFDS builder.
# ----------------------------------------------------------------------------------------------


@dataclasses.dataclass(eq=False)
class SyntheticConfig(tfds.core.BuilderConfig):
  """Builder config: scene size in pixels, scenes per domain in train and test, dataset seed."""
  size: int = 64
  num_train: int = 2000
  num_test: int = 64
  seed: int = 0


def config_name(size: int, num_train: int, num_test: int, seed: int = 0) -> str:
  return f's{size}_n{num_train}_t{num_test}_seed{seed}'


def make_config(size: int = 64, num_train: int = 2000, num_test: int = 64,
                seed: int = 0) -> SyntheticConfig:
  return SyntheticConfig(
      name=config_name(size, num_train, num_test, seed), version='1.0.0', size=size,
      num_train=num_train, num_test=num_test, seed=seed,
      description=f'{size}px scenes, {num_train} train and {num_test} test per domain.')


class GanstyleSynthetic(tfds.core.GeneratorBasedBuilder):
  """Procedural photo scenes and their known painting style (see the module docstring)."""

  VERSION = tfds.core.Version('1.0.0')
  RELEASE_NOTES = {'1.0.0': 'Initial release.'}
  BUILDER_CONFIGS = [make_config()]
  # A plain path: TFDS's own lookup needs the optional `importlib_resources` package.
  code_path = epath.Path(__file__)

  def _info(self) -> tfds.core.DatasetInfo:
    return self.dataset_info_from_configs(
        features=tfds.features.FeaturesDict({
            'image': tfds.features.Image(shape=(None, None, 3)),
            'target': tfds.features.Image(shape=(None, None, 3)),
        }),
        supervised_keys=None,
        homepage='https://github.com/ (embedded in ganstyle_jax)',
    )

  def _split_generators(self, dl_manager):  # pylint: disable=unused-argument
    cfg = self.builder_config
    return {
        f'{split}_{domain}': self._generate_examples(domain, split, n)
        for split, n in (('train', cfg.num_train), ('test', cfg.num_test))
        for domain in DOMAINS
    }

  def _generate_examples(self, domain: str, split: str, n: int) -> Iterator[tuple[int, dict]]:
    cfg = self.builder_config
    for i in range(n):
      yield i, make_example(domain, split, i, cfg.size, cfg.seed)


def default_data_dir() -> str:
  """Where the synthetic dataset is built: $GANSTYLE_CACHE/tensorflow_datasets, else
  ~/.cache/ganstyle_jax/tensorflow_datasets."""
  root = os.environ.get('GANSTYLE_CACHE') or os.path.join(
      os.path.expanduser('~'), '.cache', 'ganstyle_jax')
  return os.path.join(root, 'tensorflow_datasets')


def get_builder(size: int = 64, num_train: int = 2000, num_test: int = 64, seed: int = 0,
                data_dir: str | None = None, prepare: bool = True) -> GanstyleSynthetic:
  """The synthetic TFDS builder for these parameters, built (offline, seconds) if needed.

  Args:
    size: native scene size in pixels.
    num_train: scenes per domain in the train splits.
    num_test: scenes per domain in the test splits.
    seed: the dataset seed (scene seeds derive from it; not the run seed).
    data_dir: TFDS data_dir; default `default_data_dir()`.
    prepare: build the dataset if it is not there yet.

  Returns:
    A prepared `GanstyleSynthetic` builder (splits train_photo, train_painting, test_photo,
    test_painting).
  """
  config = make_config(size, num_train, num_test, seed)
  registered = {c.name for c in GanstyleSynthetic.BUILDER_CONFIGS}
  # TFDS accepts a registered config only by name, and an unregistered one as an object.
  builder = GanstyleSynthetic(config=config.name if config.name in registered else config,
                              data_dir=data_dir or default_data_dir())
  if prepare and not builder.is_prepared():
    builder.download_and_prepare(
        download_config=tfds.download.DownloadConfig(try_download_gcs=False))
  return builder
