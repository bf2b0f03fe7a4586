"""The embedded synthetic dataset: procedural 'photo' scenes and their known 'painting' styles.

Two unpaired domains, built offline in seconds as a TFDS dataset so they take the same input path
as real datasets (`synthetic:photo`, `synthetic:painting` in a config):

* photo: procedural scenes (a linear colour gradient at a random angle, 3 to 6 shaded circles and
  rectangles, some with stripe texture, low-frequency background texture, Gaussian noise of std
  0.02). Each scene is a pure function of its seed and is rendered at any size.
* painting: other scenes (independent seeds, so the domains are unpaired) passed through the
  FIXED function `painting` below: 3x3 box blur, nearest colour in an 8-colour palette, dark
  outlines where the blurred luminance has a strong gradient.

Painting styles. Style k is a palette of 8 colours plus an edge darkening factor, a pure function
of k (`style_palette`, `style_edge_darken`); style 0 is the original function. `painting(C, k)`
quantises the blurred C to the nearest of style k's own colours and darkens the same luminance
edges by style k's factor: C painted with style k's palette. A style image in style k shows
(most of) those colours, so the known answer is determined by C and what S shows. Style k > 0,
from `np.random.default_rng((STYLE_SEED, k))`: PALETTE rotated in hue by u ~ U(0, 1) of a turn (a
rotation of RGB about the grey axis), then a lightness/chroma scale x ~ U(0.8, 1.2) (RGB times
x), clipped to [0, 1]; edges darkened by d ~ U(0.1, 0.4).

(Version 1.0.0 labelled every style's regions by the nearest colour of PALETTE and showed label i
in style k's colour i. That answer depended on a palette no style image shows: an oracle that
quantises C to S's exact palette scored 11.97 dB against it, below ignoring S (painting_0(C),
13.69 dB), so a model could not gain by using S. 2.0.0 gives S that role.)

Split rule (`example_style`, for `num_styles` = data.synthetic_styles = N, 1 <= N <= 1000):
train example i is in style i % N; held-out (test) example i is in style 0 when N == 1 (the
single-style benchmark) and in style HELDOUT_STYLE_BASE + i = 1000 + i otherwise: styles never
seen in training, one per test pair, the same whatever N is.

Because the styles are known, a trained generator is measurable exactly. Single-style:
`known_answer_metrics` gives PSNR/SSIM of G(photo) against painting(photo) on the held-out test
split, beside the identity baseline. Multi-style: test pair i is (C_i, S_i, painting_k(C_i)) with
k = 1000 + i and S_i a different scene painted in style k (`heldout_pair`, `heldout_pairs`),
scored beside the identity and colour-transfer baselines (ganstyle_jax.baselines).

TFDS splits of `ganstyle_synthetic/<config>`: `train_photo`, `train_painting`, `test_photo`
(paired: 'image' = photo, 'target' = painting(photo) in the example's style, exactly),
`test_painting`. Every example has features 'image' and 'target' (uint8 HWC RGB); for painting
splits target == image. Multi-style configs (N > 1; names end in `_styles{N}`) add 'style' (the
int32 style index) and 'style_image' (uint8) to every example: for photo i, painting i of the same
split (same style, another scene), so a test_photo example is a whole (content C_i, style S_i,
known answer painting_k(C_i)) triple; for paintings, the image itself.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import os
from typing import Any, Iterator, Sequence

from etils import epath
import numpy as np

from ganstyle_jax.data.tf_quiet import tfds

try:
  import fcntl
except ImportError:  # Windows: no flock; concurrent first builds are not guarded there
  fcntl = None

# The painting palette (RGB in [0, 1]); part of the fixed, documented style function.
PALETTE = np.array(
  [
    (0.95, 0.90, 0.75),
    (0.85, 0.35, 0.20),
    (0.20, 0.35, 0.60),
    (0.15, 0.50, 0.30),
    (0.90, 0.75, 0.20),
    (0.45, 0.25, 0.45),
    (0.10, 0.10, 0.12),
    (0.60, 0.70, 0.85),
  ],
  dtype=np.float32,
)
LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)
EDGE_THRESHOLD = 0.12
EDGE_DARKEN = 0.25
NOISE_STD = 0.02

DOMAINS = ("photo", "painting")
_DOMAIN_ID = {"photo": 0, "painting": 1}
_SPLIT_ID = {"train": 0, "test": 1}

# Painting styles (see the module docstring).
STYLE_SEED = 2001
HELDOUT_STYLE_BASE = 1000  # held-out (test) pair i is in style HELDOUT_STYLE_BASE + i
MAX_TRAIN_STYLES = HELDOUT_STYLE_BASE
HUE_ROTATION = (0.0, 1.0)  # turns
LIGHTNESS_SCALE = (0.8, 1.2)
EDGE_DARKEN_RANGE = (0.1, 0.4)


# ----------------------------------------------------------------------------------------------
# The painting styles (style 0: the original fixed function).
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
  return xp.pad(x, pad, mode="edge")


def painting_regions(image, palette=PALETTE):
  """The regions and edges of a painting in `palette` (default PALETTE, style 0).

  1. b = 3x3 box blur of the image (edge padding);
  2. labels = the index of the nearest colour of `palette` to b, per pixel (squared RGB
     distance; ties -> first);
  3. L = 0.299 R + 0.587 G + 0.114 B of b; gx, gy = central differences of L,
     (L[i+1] - L[i-1]) / 2 with edge padding; edge = sqrt(gx^2 + gy^2) > 0.12 (the edges do
     not depend on the palette).

  Args:
    image: float RGB in [0, 1], [..., H, W, 3]; NumPy (computed in NumPy) or JAX (jit-able).
    palette: [8, 3] (one palette), or [*B, 8, 3] with B = image.shape[:-3] (one per image).

  Returns:
    (labels int [..., H, W] in 0..7, edge bool [..., H, W, 1]).
  """
  xp = _array_module(image)
  x = xp.asarray(image, dtype=xp.float32)
  h, w = x.shape[-3], x.shape[-2]
  p = _pad_hw(x, xp)
  b = sum(p[..., i : i + h, j : j + w, :] for i in range(3) for j in range(3)) / 9.0
  palette = xp.asarray(palette, dtype=xp.float32)
  if palette.ndim > 2:  # one palette per image: broadcast over H and W
    palette = palette.reshape(palette.shape[:-2] + (1, 1) + palette.shape[-2:])
  dist = ((b[..., None, :] - palette) ** 2).sum(-1)  # [..., H, W, 8]
  labels = xp.argmin(dist, axis=-1)
  lum = (b * xp.asarray(LUMA)).sum(-1, keepdims=True)
  lp = _pad_hw(lum, xp)
  gx = (lp[..., 1 : h + 1, 2 : w + 2, :] - lp[..., 1 : h + 1, 0:w, :]) / 2.0
  gy = (lp[..., 2 : h + 2, 1 : w + 1, :] - lp[..., 0:h, 1 : w + 1, :]) / 2.0
  edge = xp.sqrt(gx**2 + gy**2) > EDGE_THRESHOLD
  return labels, edge


def paint_regions(labels, edge, palette, edge_darken):
  """Colours regions: palette[labels], times edge_darken on edges.

  Args:
    labels: int [..., H, W] (from `painting_regions`).
    edge: bool [..., H, W, 1].
    palette: [8, 3] (one style) or [*B, 8, 3] with B = labels.shape[:-2] (a style per image).
    edge_darken: a scalar, or [*B] (a factor per image).

  Returns:
    float32 [..., H, W, 3]; NumPy or jax.numpy after `labels`.
  """
  on_host = all(
    isinstance(v, (np.ndarray, np.generic, int, float)) for v in (labels, palette, edge_darken)
  )
  xp = np if on_host else _array_module(None)
  palette = xp.asarray(palette, dtype=xp.float32)
  labels = xp.asarray(labels)
  if palette.ndim == 2:
    q = palette[labels]
  else:
    flat = labels.reshape(labels.shape[:-2] + (-1, 1))
    q = xp.take_along_axis(palette, flat, axis=-2).reshape(labels.shape + (3,))
  darken = edge_darken
  if not isinstance(edge_darken, (int, float)):
    darken = xp.asarray(edge_darken, dtype=xp.float32)
    darken = darken.reshape(darken.shape + (1,) * (q.ndim - darken.ndim))
  return xp.where(edge, darken * q, q).astype(xp.float32)


def _hue_rotation(turns: float) -> np.ndarray:
  """[3, 3] rotation of RGB by `turns` of a turn about the grey axis (Rodrigues' formula)."""
  a = 2.0 * np.pi * turns
  k = np.ones(3) / np.sqrt(3.0)
  cross = np.array([[0.0, -k[2], k[1]], [k[2], 0.0, -k[0]], [-k[1], k[0], 0.0]])
  return np.cos(a) * np.eye(3) + np.sin(a) * cross + (1.0 - np.cos(a)) * np.outer(k, k)


@functools.lru_cache(maxsize=4096)
def _style(k: int) -> tuple[np.ndarray, float]:
  if k < 0:
    raise ValueError(f"style index must be >= 0, got {k}")
  if k == 0:
    return PALETTE, EDGE_DARKEN
  rng = np.random.default_rng((STYLE_SEED, k))
  turns = rng.uniform(*HUE_ROTATION)
  scale = rng.uniform(*LIGHTNESS_SCALE)
  darken = rng.uniform(*EDGE_DARKEN_RANGE)
  palette = np.clip(PALETTE.astype(np.float64) @ _hue_rotation(turns).T * scale, 0.0, 1.0)
  palette = palette.astype(np.float32)
  palette.setflags(write=False)
  return palette, float(darken)


def style_palette(k: int) -> np.ndarray:
  """Style k's 8 colours, float32 [8, 3] RGB in [0, 1] (read-only); style 0 is PALETTE.

  Colour i of style k is the base colour i rotated in hue and scaled in lightness/chroma (see
  the module docstring); a pure function of k.
  """
  return _style(int(k))[0]


def style_edge_darken(k: int) -> float:
  """Style k's edge factor: edge pixels are this times the region colour (style 0: 0.25)."""
  return _style(int(k))[1]


def style_tables(styles: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
  """Palettes float32 [N, 8, 3] and edge factors float32 [N] of N style indices (for
  `paint_regions` on a batch, e.g. inside a jitted step where the indices are data)."""
  styles = [int(k) for k in np.asarray(styles).reshape(-1)]
  return (
    np.stack([style_palette(k) for k in styles]),
    np.array([style_edge_darken(k) for k in styles], np.float32),
  )


def painting(image, style: int | Sequence[int] = 0):
  """A known 'painting' style function: depends on content and style index only, deterministic.

  Style k: each pixel of the 3x3-blurred image takes the nearest of style k's 8 colours
  (`style_palette(k)`), and pixels on luminance edges are darkened by `style_edge_darken(k)`
  (`painting_regions`, `paint_regions`). Style 0 (the default) is the original function:
  PALETTE, 0.25x on edges.

  Args:
    image: float RGB in [0, 1], shape [..., H, W, 3]; a NumPy array (computed in NumPy) or a
      JAX array (computed in jax.numpy, jit-able).
    style: a style index (Python int), or for a batch [N, H, W, 3] a sequence of N indices (one
      per image). Indices are concrete values: the palettes are built on the host.

  Returns:
    The painted image, same shape, float32 in [0, 1] (values are palette colours or darkened).
  """
  if np.ndim(style) == 0:
    palette, darken = style_palette(int(style)), style_edge_darken(int(style))
  else:
    if np.ndim(image) != 4 or len(style) != np.shape(image)[0]:
      raise ValueError(
        f"a style per image needs images [N, H, W, 3] and N styles, got "
        f"{tuple(np.shape(image))} and {len(style)} styles"
      )
    palette, darken = style_tables(style)
  return paint_regions(*painting_regions(image, palette), palette, darken)


def painting_signed(image, style: int | Sequence[int] = 0):
  """`painting` for images in [-1, 1] (the library convention): [..., H, W, 3] -> [-1, 1]."""
  return painting((image + 1.0) / 2.0, style) * 2.0 - 1.0


def example_style(split: str, index: int, num_styles: int = 1) -> int:
  """The style of example `index` of `split` (the split rule, see the module docstring).

  train: index % num_styles; test: 0 if num_styles == 1, else HELDOUT_STYLE_BASE + index
  (never a train style).
  """
  num_styles = int(num_styles)
  if not 1 <= num_styles <= MAX_TRAIN_STYLES:
    raise ValueError(
      f"num_styles (data.synthetic_styles) must be in 1..{MAX_TRAIN_STYLES}, got {num_styles}"
    )
  if split == "train":
    return int(index) % num_styles
  if split == "test":
    return 0 if num_styles == 1 else HELDOUT_STYLE_BASE + int(index)
  raise ValueError(f"split must be 'train' or 'test', got {split!r}")


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
  yy, xx = np.meshgrid(coords, coords, indexing="ij")
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


def make_example(
  domain: str,
  split: str,
  index: int,
  size: int = 64,
  dataset_seed: int = 0,
  num_styles: int = 1,
  style: int | None = None,
) -> dict[str, np.ndarray]:
  """One dataset example as stored: {"image", "target"} uint8 [size, size, 3].

  For photos, target = painting(the stored uint8 photo, style), the exact known answer; for
  paintings, image = target = painting(the scene, style). The style is `style` if given, else
  `example_style(split, index, num_styles)`; the defaults give the single-style dataset.
  """
  if style is None:
    style = example_style(split, index, num_styles)
  scene = render_scene(scene_seed(domain, split, index, dataset_seed), size)
  if domain == "photo":
    image = to_uint8(scene)
    target = to_uint8(painting(image.astype(np.float32) / 255.0, style))
  else:
    image = to_uint8(painting(scene, style))
    target = image
  return {"image": image, "target": target}


def heldout_pair(
  index: int, size: int = 64, num_styles: int = 2, dataset_seed: int = 0
) -> dict[str, Any]:
  """Held-out test pair `index` of the multi-style benchmark, uint8 [size, size, 3] images.

  Returns:
    {"content": C (test photo `index`), "style": S (test painting scene `index`, a different
    scene, in style k), "target": painting_k(C), the known answer, "style_index": k}, with
    k = example_style("test", index, num_styles) (1000 + index for num_styles > 1; 0 for 1).
  """
  k = example_style("test", index, num_styles)
  photo = make_example("photo", "test", index, size, dataset_seed, style=k)
  style_image = make_example("painting", "test", index, size, dataset_seed, style=k)["image"]
  return {
    "content": photo["image"],
    "style": style_image,
    "target": photo["target"],
    "style_index": k,
  }


def heldout_pairs(
  num: int, size: int = 64, num_styles: int = 2, dataset_seed: int = 0
) -> dict[str, np.ndarray]:
  """Test pairs 0..num-1 (`heldout_pair`) as a batch in the library range.

  Returns:
    {"content", "style", "target"}: float32 [num, size, size, 3] in [-1, 1];
    "style_index": int32 [num].
  """
  pairs = [heldout_pair(i, size, num_styles, dataset_seed) for i in range(num)]
  out = {
    key: np.stack([p[key] for p in pairs]).astype(np.float32) / 127.5 - 1.0
    for key in ("content", "style", "target")
  }
  out["style_index"] = np.array([p["style_index"] for p in pairs], np.int32)
  return out


# ----------------------------------------------------------------------------------------------
# Known-answer metrics.
# ----------------------------------------------------------------------------------------------


def known_answer_metrics(photos, outputs, target=None, style_images=None) -> dict[str, float]:
  """PSNR/SSIM of G(photo) against the known answer, beside the baselines.

  Higher is better for every number; a useful generator beats each baseline: `*_identity` (the
  photo itself scored against the known answer) and, given the style images,
  `*_colour_transfer` (Reinhard et al. 2001, `baselines.colour_transfer(photo, style)`).

  Args:
    photos: content photos, NHWC in [-1, 1] (H, W >= 11).
    outputs: G(photos), NHWC in [-1, 1], same shape.
    target: the known answer, same shape; default painting(photo) (style 0, single-style).
    style_images: S, NHWC in [-1, 1], one per photo; adds the colour-transfer baseline.

  Returns:
    {"psnr", "ssim", "psnr_identity", "ssim_identity"} (+ {"psnr_colour_transfer",
    "ssim_colour_transfer"} with style_images): means over the batch (Python floats).
  """
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  from ganstyle_jax import baselines  # pylint: disable=g-import-not-at-top
  from ganstyle_jax import metrics  # pylint: disable=g-import-not-at-top

  photos = jnp.asarray(photos, jnp.float32)
  outputs = jnp.asarray(outputs, jnp.float32)
  target = painting_signed(photos) if target is None else jnp.asarray(target, jnp.float32)
  result = {
    "psnr": float(jnp.mean(metrics.psnr(outputs, target))),
    "ssim": float(jnp.mean(metrics.ssim(outputs, target))),
  }
  if style_images is None:
    result["psnr_identity"] = float(jnp.mean(metrics.psnr(photos, target)))
    result["ssim_identity"] = float(jnp.mean(metrics.ssim(photos, target)))
  else:
    result.update(baselines.known_answer_baselines(photos, style_images, target))
  return result


# ----------------------------------------------------------------------------------------------
# The TFDS builder.
# ----------------------------------------------------------------------------------------------


@dataclasses.dataclass(eq=False)
class SyntheticConfig(tfds.core.BuilderConfig):
  """Builder config: scene size in pixels, scenes per domain in train and test, dataset seed,
  number of train painting styles (1 = the single-style dataset)."""

  size: int = 64
  num_train: int = 2000
  num_test: int = 64
  seed: int = 0
  styles: int = 1


def config_name(size: int, num_train: int, num_test: int, seed: int = 0, styles: int = 1) -> str:
  """The config name; multi-style configs add `_styles{N}` (single-style names are unchanged)."""
  name = f"s{size}_n{num_train}_t{num_test}_seed{seed}"
  return name if styles == 1 else f"{name}_styles{styles}"


def make_config(
  size: int = 64, num_train: int = 2000, num_test: int = 64, seed: int = 0, styles: int = 1
) -> SyntheticConfig:
  example_style("train", 0, styles)  # validates styles
  what = "" if styles == 1 else f"; {styles} train styles, unseen test styles"
  return SyntheticConfig(
    name=config_name(size, num_train, num_test, seed, styles),
    version="2.0.0",
    size=size,
    num_train=num_train,
    num_test=num_test,
    seed=seed,
    styles=styles,
    description=f"{size}px scenes, {num_train} train and {num_test} test per domain{what}.",
  )


class GanstyleSynthetic(tfds.core.GeneratorBasedBuilder):
  """Procedural photo scenes and their known painting style (see the module docstring)."""

  VERSION = tfds.core.Version("2.0.0")
  RELEASE_NOTES = {
    "1.0.0": "Initial release.",
    "2.0.0": "Style k quantises to the nearest colour of style k's palette (was: of PALETTE).",
  }
  BUILDER_CONFIGS = [make_config()]
  # A plain path: TFDS's own lookup needs the optional `importlib_resources` package.
  code_path = epath.Path(__file__)

  def _info(self) -> tfds.core.DatasetInfo:
    features = {
      "image": tfds.features.Image(shape=(None, None, 3)),
      "target": tfds.features.Image(shape=(None, None, 3)),
    }
    if self.builder_config.styles > 1:
      # Only multi-style configs carry these: single-style datasets keep their schema.
      features["style"] = tfds.features.Scalar(dtype=np.int32)
      features["style_image"] = tfds.features.Image(shape=(None, None, 3))
    return self.dataset_info_from_configs(
      features=tfds.features.FeaturesDict(features),
      supervised_keys=None,
      homepage="https://github.com/ (embedded in ganstyle_jax)",
    )

  def _split_generators(self, dl_manager):  # pylint: disable=unused-argument
    cfg = self.builder_config
    return {
      f"{split}_{domain}": self._generate_examples(domain, split, n)
      for split, n in (("train", cfg.num_train), ("test", cfg.num_test))
      for domain in DOMAINS
    }

  def _generate_examples(self, domain: str, split: str, n: int) -> Iterator[tuple[int, dict]]:
    cfg = self.builder_config
    for i in range(n):
      if cfg.styles == 1:
        yield i, make_example(domain, split, i, cfg.size, cfg.seed)
        continue
      style = example_style(split, i, cfg.styles)
      example = make_example(domain, split, i, cfg.size, cfg.seed, style=style)
      example["style"] = np.int32(style)
      # Photo i and painting i of a split share a style: (photo, painting, target) is a pair.
      example["style_image"] = (
        example["image"]
        if domain == "painting"
        else make_example("painting", split, i, cfg.size, cfg.seed, style=style)["image"]
      )
      yield i, example


def default_data_dir() -> str:
  """Where the synthetic dataset is built: $GANSTYLE_CACHE/tensorflow_datasets, else
  ~/.cache/ganstyle_jax/tensorflow_datasets."""
  root = os.environ.get("GANSTYLE_CACHE") or os.path.join(
    os.path.expanduser("~"), ".cache", "ganstyle_jax"
  )
  return os.path.join(root, "tensorflow_datasets")


def get_builder(
  size: int = 64,
  num_train: int = 2000,
  num_test: int = 64,
  seed: int = 0,
  data_dir: str | None = None,
  prepare: bool = True,
  styles: int = 1,
) -> GanstyleSynthetic:
  """The synthetic TFDS builder for these parameters, built (offline, seconds) if needed.

  Args:
    size: native scene size in pixels.
    num_train: scenes per domain in the train splits.
    num_test: scenes per domain in the test splits.
    seed: the dataset seed (scene seeds derive from it; not the run seed).
    data_dir: TFDS data_dir; default `default_data_dir()`.
    prepare: build the dataset if it is not there yet.
    styles: train painting styles (data.synthetic_styles); > 1 also holds out unseen test
      styles and adds the 'style' and 'style_image' features (see the module docstring).

  Returns:
    A prepared `GanstyleSynthetic` builder (splits train_photo, train_painting, test_photo,
    test_painting).
  """
  config = make_config(size, num_train, num_test, seed, styles)
  registered = {c.name for c in GanstyleSynthetic.BUILDER_CONFIGS}
  # TFDS accepts a registered config only by name, and an unregistered one as an object.
  data_dir = data_dir or default_data_dir()
  builder = GanstyleSynthetic(
    config=config.name if config.name in registered else config, data_dir=data_dir
  )
  if prepare and not builder.is_prepared():
    from ganstyle_jax import console  # pylint: disable=g-import-not-at-top

    # Runs started together on a fresh machine would all build it, and all but the first
    # fail renaming their copy into place: one builds, the others wait and read its copy.
    with _build_lock(os.path.join(data_dir, f"ganstyle_synthetic_{config.name}.lock")):
      if builder.is_prepared():  # built meanwhile: read its info afresh
        return GanstyleSynthetic(config=builder.builder_config, data_dir=data_dir)
      console.write(
        f"Preparing the embedded synthetic dataset {config.name} in {builder.data_dir} (once)",
        err=True,
      )
      with console.tfds_quiet():
        builder.download_and_prepare(
          download_config=tfds.download.DownloadConfig(try_download_gcs=False)
        )
  return builder


@contextlib.contextmanager
def _build_lock(path: str):
  """An exclusive lock (flock) on the file `path`, held while one process builds a dataset;
  a no-op where `path` is not a local path (gs://...)."""
  if "://" in path or fcntl is None:
    yield
    return
  os.makedirs(os.path.dirname(path), exist_ok=True)
  with open(path, "a") as f:
    fcntl.flock(f, fcntl.LOCK_EX)
    try:
      yield
    finally:
      fcntl.flock(f, fcntl.LOCK_UN)
