"""Stylize images with a trained checkpoint (or by optimisation): the CLI and `load(workdir)`.

  python -m ganstyle_jax.stylize --workdir=DIR --content=FILE|DIR --style=FILE[,FILE...] \\
      --out=FILE|DIR [--style_weights=W,...] [--alpha=A] [--preserve_color] [--mask=FILE] \\
      [--max_size=N] [--tile=N] [--memory_limit_gb=G] [--direction=AtoB|BtoA] \\
      [--method=generator|optimize]
  python -m ganstyle_jax.stylize --workdir=DIR --content=clip.mp4|FRAMES_DIR --style=S \\
      --out=out.mp4|DIR [--consistency=none|global|ema] [--batch_frames=N] [--ema_decay=D]

Inside, images are float32 NHWC in [-1, 1]; uint8 HWC RGB at the boundary. AdaIN transfer is
split into encode -> statistics -> decode, so that
- several styles mix in feature-statistics space (weighted means of their means and stds);
- a mask blends two styles' AdaIN targets spatially (Huang & Belongie 2017, section 7);
- tiles of a large image share the content and style statistics of the whole image, so the
  tiles agree, and overlapping tiles are blended with linear ramps (no visible seams).
--preserve_color keeps the content's colours by luminance-only transfer: the output's luma (Y
of YCbCr) with the content's chroma (Gatys et al. 2016, "Preserving colour").
G(x) families (cyclegan) tile too, each tile translated on its own and blended the same way.
Memory guard: an image that would not fit (XLA's estimate) is tiled automatically, or refused
with one line naming --tile/--max_size (--memory_limit_gb sets the limit). Folder mode skips
unreadable images, lists them at the end (exit status 1) and never writes two images to one
output name. A video, a video --out, or --consistency other than none make --content one
sequence (video.py): decoded with PyAV, stylized in batches (`Stylizer.stylize_batch`, with
per-frame, sequence-wide or smoothed content statistics) and encoded as H.264.
"""

from __future__ import annotations

import functools
import hashlib
import itertools
import math
import os
import pathlib
import sys
from typing import Callable, Iterable, Sequence

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from PIL import Image

from ganstyle_jax import build, checkpointing, gatys, video
from ganstyle_jax.config_base import base_config
from ganstyle_jax.data.decode import IMAGE_EXTENSIONS, BadImageError, decode
from ganstyle_jax.errors import UserError, run_cli
from ganstyle_jax.images import check_max_size, limit_size, to_float, to_uint8
from ganstyle_jax.models import generators
from ganstyle_jax.models import layers as L
from ganstyle_jax.models import vgg as vgg_lib

# ----------------------------------------------------------------------------- image I/O


def read_image(
  path: str | os.PathLike, max_pixels: int = base_config().data.max_image_pixels
) -> np.ndarray:
  """uint8 HWC sRGB from an image file, decoded as training decodes (data/decode.py).

  Raises:
    UserError: one line naming the file and what is wrong with it.
  """
  try:
    return decode(path, max_pixels=max_pixels)
  except BadImageError as e:
    raise UserError(f"{path}: cannot read the image: {e}") from None


def pad_to_multiple(x: np.ndarray, m: int) -> tuple[np.ndarray, tuple[int, int]]:
  """Reflect-pads NHWC x on the bottom/right to multiples of m; returns it and the old size."""
  h, w = x.shape[1:3]
  ph, pw = (-h) % m, (-w) % m
  mode = "reflect" if ph < h and pw < w else "edge"
  return np.pad(x, ((0, 0), (0, ph), (0, pw), (0, 0)), mode=mode), (h, w)


def keep_content_color(output: np.ndarray, content: np.ndarray) -> np.ndarray:
  """Luminance-only transfer: the output's Y with the content's Cb, Cr (uint8 HWC)."""
  y = Image.fromarray(output).convert("YCbCr").split()[0]
  _, cb, cr = Image.fromarray(content).convert("YCbCr").split()
  return np.asarray(Image.merge("YCbCr", (y, cb, cr)).convert("RGB"))


def feather(n: int, overlap: int, at_start: bool, at_end: bool) -> np.ndarray:
  """1-D blending weights of a tile of length n.

  Towards a neighbouring tile, the first third of the overlap gets weight 0 (those pixels
  see the tile's padded border, within the networks' receptive field), then a linear ramp.
  Image borders keep weight 1.
  """
  w = np.ones(n, np.float32)
  margin = overlap // 3
  ramp = np.concatenate(
    [
      np.zeros(margin, np.float32),
      (np.arange(overlap - margin, dtype=np.float32) + 1) / (overlap - margin + 1),
    ]
  )
  if overlap and not at_start:
    w[:overlap] = ramp
  if overlap and not at_end:
    w[-overlap:] = np.minimum(w[-overlap:], ramp[::-1])
  return w


def tile_starts(size: int, tile: int, overlap: int) -> list[int]:
  """Start offsets of tiles of length `tile` covering [0, size) with at least `overlap`."""
  if size <= tile:
    return [0]
  n = math.ceil((size - overlap) / (tile - overlap))
  return [round(i * (size - tile) / (n - 1)) for i in range(n)]


def tile_layout(
  h: int, w: int, tile: int, multiple: int
) -> tuple[int, list[int], list[int], int, int]:
  """(overlap, row starts, column starts, tile height, tile width) of an h x w image in tiles of
  about `tile` px, every offset and size a multiple of `multiple` (the network's stride)."""
  tile = max(multiple * 4, tile - tile % multiple)
  overlap = max(multiple * 3, (tile // 3) - (tile // 3) % multiple)
  ys = [y - y % multiple for y in tile_starts(h, tile, overlap)]
  xs = [x - x % multiple for x in tile_starts(w, tile, overlap)]
  return overlap, ys, xs, min(tile, h), min(tile, w)


def blend_weights(y: int, x: int, th: int, tw: int, h: int, w: int, overlap: int) -> np.ndarray:
  """[1, th, tw, 1] feathered weights of the tile at (y, x) of an h x w image."""
  wy = feather(th, overlap, y == 0, y + th >= h)
  wx = feather(tw, overlap, x == 0, x + tw >= w)
  return (wy[:, None] * wx[None, :])[None, :, :, None]


def available_memory() -> int:
  """Bytes free on the first local device (accelerators), else the host's available RAM."""
  stats = jax.local_devices()[0].memory_stats()
  if stats and "bytes_limit" in stats:
    return int(stats["bytes_limit"] - stats.get("bytes_in_use", 0))
  try:
    with open("/proc/meminfo") as f:
      info = dict(line.split(":", 1) for line in f)
    return int(info["MemAvailable"].split()[0]) * 1024
  except (OSError, KeyError, ValueError):
    return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


def _gb(n: float) -> str:
  return f"{n / 2**30:.2f} GB"


# ----------------------------------------------------------------------------- the stylizer


def _style_list(style: np.ndarray | Sequence[np.ndarray]) -> list[np.ndarray]:
  return [style] if isinstance(style, np.ndarray) else list(style)


def _check_weights(weights: Sequence[float], n: int) -> np.ndarray:
  """Style mixing weights, normalised to sum 1; one line naming the rule when they break it."""
  w = np.asarray(weights, np.float64)
  if len(w) != n or np.any(w < 0) or w.sum() <= 0:
    raise UserError(
      f"--style_weights {list(weights)}: use one non-negative weight per --style image "
      f"({n} of them), with a positive sum"
    )
  return w / w.sum()


class Stylizer:
  """A trained generator with the controls of the stylize CLI; uint8 HWC in and out.

  Build it with `ganstyle_jax.load(workdir)`. Compiled functions are cached by input shape.
  Memory guard: an image whose estimated peak memory (see `memory_needed`) is above
  `memory_limit` bytes (default: MEMORY_FRACTION of the free device memory) is tiled
  automatically, or refused with one line naming --tile and --max_size.
  """

  MEMORY_FRACTION = 0.8
  MIN_AUTO_TILE = 64

  def __init__(
    self,
    config: ml_collections.ConfigDict,
    g_params,
    vgg_variables,
    step: int = 0,
    memory_limit: int | None = None,
  ):
    self.config = config
    self.memory_limit = memory_limit
    self._per_pixel: float | None = None
    self._style_cache = None
    self.setup = build.build_setup(config)
    self.family = self.setup.family
    self.name = self.setup.name
    self.g_params = g_params
    self.vgg_variables = vgg_variables
    self.step = step
    self.multiple = self.family.size_multiple(self.setup)
    g = self.setup.generator
    self.attention = False  # adain_gan with model.generator.transfer='attention' or 'colour'
    if self.family.style_conditioned:
      self.variables = generators.assemble_variables(vgg_variables, g_params)
      self._encode = jax.jit(lambda v, x: g.apply(v, x, method=g.encode)[g.encoder_layer])
      self._decode = jax.jit(lambda v, t: g.apply(v, t, method=g.decode))
      self.attention = g.transfer_kind != "adain"
      self._generate = jax.jit(lambda v, c, s, a: g.apply(v, c, s, a))
    else:
      self._translate = jax.jit(
        functools.partial(self.family.translate, self.setup), static_argnums=2
      )

  def compiled_count(self) -> int:
    """How many programs the networks' jitted functions above have compiled so far (one per
    input size and function; the app's status line says when a request compiled)."""
    names = ("_encode", "_decode", "_generate", "_translate")
    return sum(getattr(self, n)._cache_size() for n in names if hasattr(self, n))

  # --- adain_gan pieces -------------------------------------------------------------------

  def style_stats(
    self,
    styles: Sequence[np.ndarray],
    weights: Sequence[float] | None = None,
    max_size: int | None = None,
  ) -> list[tuple[jax.Array, jax.Array]]:
    """Per-style (mean, std) [1, 1, 1, C] of encoder features; `weights` mixes them into one.

    The last call's result is kept, keyed by the styles' pixels, so that stylizing a sequence
    batch by batch encodes its style images once.
    """
    cache_key = (
      tuple((s.shape, hashlib.blake2b(np.ascontiguousarray(s).tobytes()).digest()) for s in styles),
      None if weights is None else tuple(weights),
      max_size,
    )
    if self._style_cache is not None and self._style_cache[0] == cache_key:
      return self._style_cache[1]
    result = self._style_stats(styles, weights, max_size)
    self._style_cache = (cache_key, result)
    return result

  def _style_stats(self, styles, weights, max_size) -> list[tuple[jax.Array, jax.Array]]:
    stats = [
      L.channel_stats(self._encode(self.variables, self._style_input(s, max_size))) for s in styles
    ]
    if weights is None:
      return stats
    w = _check_weights(weights, len(stats))
    mean = sum(float(wi) * m for wi, (m, _) in zip(w, stats))
    std = sum(float(wi) * s for wi, (_, s) in zip(w, stats))
    return [(mean, std)]

  def _style_input(self, style: np.ndarray, max_size: int | None) -> np.ndarray:
    """A style image as the encoder takes it, [1, H, W, 3] padded; a style image is encoded
    whole (its statistics are global), so one over the memory limit is refused."""
    x, _ = pad_to_multiple(to_float(limit_size(style, max_size)), self.multiple)
    need, limit = self.memory_needed(*x.shape[1:3]), self._limit()
    if need > limit:
      fit = int(max(x.shape[1:3]) * math.sqrt(limit / need))
      raise UserError(
        f"a {x.shape[2]}x{x.shape[1]} style image needs about {_gb(need)}, over "
        f"the {_gb(limit)} available; use --max_size={fit} or less"
      )
    return x

  def _target(self, f_c, c_stats, s_stats, alpha, mask):
    """AdaIN target: content features normalised with c_stats, re-scaled per style (masked)."""
    c_mean, c_std = c_stats
    norm = (f_c - c_mean) / c_std
    ts = [norm * s_std + s_mean for s_mean, s_std in s_stats]
    if mask is None:
      t = ts[0]
    else:
      m = jax.image.resize(mask, (*f_c.shape[1:3],), "linear")[None, :, :, None]
      t = m * ts[0] + (1 - m) * ts[1]
    return alpha * t + (1 - alpha) * f_c

  @staticmethod
  def _content_stats_for(content_stats, own: tuple[jax.Array, jax.Array], n: int):
    """The statistics AdaIN normalises with: the frames' own (None), given ones (a pair), or
    a callable's map of the n real frames' own (the rest of a padded batch repeats the last)."""
    if content_stats is None:
      return own
    if not callable(content_stats):
      return content_stats
    stats = content_stats(own[0][:n], own[1][:n])
    pad = own[0].shape[0] - n
    return tuple(jnp.concatenate([s, jnp.repeat(s[-1:], pad, 0)]) if pad else s for s in stats)

  def _stylize_adain(
    self,
    x: np.ndarray,
    s_stats,
    alpha: float,
    mask,
    tile: int | None,
    content_stats=None,
    n: int | None = None,
  ):
    """x: [N, H, W, 3] padded to the encoder multiple ([1, ...] when tiled) -> the same shape,
    float; content_stats as in `stylize_batch`, applied to the first n (default N) images."""
    h, w = x.shape[1:3]
    n = x.shape[0] if n is None else n
    if not tile or (h <= tile and w <= tile):
      f_c = self._encode(self.variables, x)
      c_stats = self._content_stats_for(content_stats, L.channel_stats(f_c), n)
      t = self._target(f_c, c_stats, s_stats, alpha, mask)
      return np.asarray(self._decode(self.variables, t))
    overlap, ys, xs, th, tw = tile_layout(h, w, tile, self.multiple)
    if content_stats is None or callable(content_stats):
      own = self._tiled_content_stats(x, tile)
      c_stats = self._content_stats_for(content_stats, own, 1)
    else:
      c_stats = content_stats
    # Pass 2: decode each tile with the shared statistics; blend with linear ramps.
    out = np.zeros(x.shape, np.float32)
    norm = np.zeros((1, h, w, 1), np.float32)
    for y in ys:
      for x0 in xs:
        crop = x[:, y : y + th, x0 : x0 + tw]
        f_c = self._encode(self.variables, crop)
        m = None if mask is None else mask[y : y + th, x0 : x0 + tw]
        o = np.asarray(self._decode(self.variables, self._target(f_c, c_stats, s_stats, alpha, m)))
        wgt = blend_weights(y, x0, th, tw, h, w, overlap)
        out[:, y : y + th, x0 : x0 + tw] += o * wgt
        norm[:, y : y + th, x0 : x0 + tw] += wgt
    return out / norm

  def _tiled_content_stats(self, x: np.ndarray, tile: int) -> tuple[jax.Array, jax.Array]:
    """(mean, std) [1, 1, 1, C] of the encoder features of a [1, H, W, 3] image, in tiles."""
    h, w = x.shape[1:3]
    overlap, ys, xs, th, tw = tile_layout(h, w, tile, self.multiple)
    # Pass 1: global content statistics from each tile's features, weighted by the blending
    # weights normalised per position, so every feature position of the image counts once.
    f = self.multiple
    weights, norm = {}, np.zeros((h // f, w // f), np.float64)
    for y in ys:
      for x0 in xs:
        wy = feather(th // f, overlap // f, y == 0, y + th >= h)
        wx = feather(tw // f, overlap // f, x0 == 0, x0 + tw >= w)
        weights[y, x0] = wy[:, None] * wx[None, :]
        norm[y // f : (y + th) // f, x0 // f : (x0 + tw) // f] += weights[y, x0]
    total, sq, count = 0.0, 0.0, 0.0
    for (y, x0), wt in weights.items():
      fc = np.asarray(self._encode(self.variables, x[:, y : y + th, x0 : x0 + tw]), np.float64)
      wgt = (wt / norm[y // f : (y + th) // f, x0 // f : (x0 + tw) // f])[None, :, :, None]
      total = total + (fc * wgt).sum((0, 1, 2))
      sq = sq + (fc**2 * wgt).sum((0, 1, 2))
      count += wgt.sum()
    mean = total / count
    std = np.sqrt(np.maximum(sq / count - mean**2, 0) + 1e-5)
    return (
      jnp.asarray(mean, jnp.float32)[None, None, None],
      jnp.asarray(std, jnp.float32)[None, None, None],
    )

  def content_stats(
    self, frames: Iterable[np.ndarray], max_size: int | None = None, batch_size: int = 8
  ) -> tuple[jax.Array, jax.Array]:
    """The content-feature statistics of a sequence: (mean, std) [1, 1, 1, C] over every
    position of every frame (each frame weighted by its pixel count), for `stylize_batch`'s
    content_stats: ReReVST's sequence-level sharing (Wang et al. 2020), so that a change in
    one part of a frame does not re-normalise (and recolour) the rest.

    Args:
      frames: uint8 HWC RGB frames (an iterable: read once, batch_size at a time).
      max_size: as in `stylize` (use the same value).
      batch_size: frames encoded per compiled call (the last call padded to it).
    Raises:
      UserError: a G(x) family (its instance norms are inside the generator), or no frames.
    """
    self._require_adain_for_stats()
    total, sq, count = 0.0, 0.0, 0.0
    per_call = None
    for chunk in _chunks(frames, batch_size):
      if per_call is None:  # the first frame's size decides: within the memory limit
        x, _ = self._batch_input(chunk[:1], max_size, None)
        fit = self._limit() // max(1, self.memory_needed(*x.shape[1:3]))
        per_call = max(1, min(batch_size, fit))
      for part in _chunks(chunk, per_call):
        total, sq, count = self._add_content_stats(part, max_size, per_call, total, sq, count)
    if not count:
      raise UserError("no frames to take the content statistics from")
    mean = total / count
    std = np.sqrt(np.maximum(sq / count - mean**2, 0) + 1e-5)
    return jnp.asarray(mean[None], jnp.float32), jnp.asarray(std[None], jnp.float32)

  def _add_content_stats(self, frames, max_size, per_call, total, sq, count):
    """Adds frames' encoder-feature sums (of f and f^2, weighted by positions, and the count of
    positions) to the running ones."""
    x, capped = self._batch_input(frames, max_size, per_call)
    n, tile = len(capped), self.plan_tile(*x.shape[1:3], None)
    if tile is None:
      f_c = self._encode(self.variables, x)
      stats = [tuple(np.asarray(s, np.float64)[:n] for s in L.channel_stats(f_c))]
    else:
      stats = [
        tuple(np.asarray(s, np.float64) for s in self._tiled_content_stats(x[i : i + 1], tile))
        for i in range(n)
      ]
    weight = (x.shape[1] // self.multiple) * (x.shape[2] // self.multiple)
    for mean, std in stats:  # E[f^2] = var + mean^2; channel_stats' std has eps inside
      total = total + weight * mean.sum(0)
      sq = sq + weight * (std**2 - 1e-5 + mean**2).sum(0)
      count += weight * len(mean)
    return total, sq, count

  def _require_adain_for_stats(self) -> None:
    if not self.family.style_conditioned:
      raise UserError(
        f"shared content statistics (--consistency=global|ema) are not supported for "
        f"{self.name}: its instance norms sit inside the generator; use --consistency=none"
      )
    if self.attention:
      raise UserError(
        "shared content statistics (--consistency=global|ema) need AdaIN; this checkpoint's "
        f"generator uses {self.setup.generator.transfer_kind} transfer; use --consistency=none"
      )

  def _batch_input(
    self, frames: Sequence[np.ndarray], max_size: int | None, batch_size: int | None
  ) -> tuple[np.ndarray, list[np.ndarray]]:
    """Frames (uint8 HWC, one size once capped) -> float [batch_size, H', W', 3] padded to the
    network's multiple, the last frame repeated up to batch_size; and the capped frames."""
    capped = [limit_size(np.asarray(f, np.uint8), max_size) for f in frames]
    if not capped:
      raise UserError("no frames to stylize")
    for i, f in enumerate(capped):
      if f.shape != capped[0].shape:
        raise UserError(
          f"frame {i} is {f.shape[1]}x{f.shape[0]}, frame 0 {capped[0].shape[1]}x"
          f"{capped[0].shape[0]}: the frames of a batch must have one size"
        )
    n = len(capped)
    x = np.stack(capped + capped[-1:] * (max(batch_size or n, n) - n))
    x, _ = pad_to_multiple(x.astype(np.float32) / 127.5 - 1.0, self.multiple)
    return x, capped

  # --- G(x) families ----------------------------------------------------------------------

  def _tiled(self, x: np.ndarray, tile: int | None, fn: Callable) -> np.ndarray:
    """fn(x) on [1, H, W, 3], whole or in overlapping tiles blended with linear ramps.

    Each tile goes through fn on its own (normalisation statistics are the tile's), so tiles
    of very different content can differ slightly in tone; the ramps hide the seams.
    """
    h, w = x.shape[1:3]
    if not tile or (h <= tile and w <= tile):
      return np.asarray(fn(x))
    overlap, ys, xs, th, tw = tile_layout(h, w, tile, self.multiple)
    out = np.zeros(x.shape, np.float32)
    norm = np.zeros((1, h, w, 1), np.float32)
    for y in ys:
      for x0 in xs:
        o = np.asarray(fn(x[:, y : y + th, x0 : x0 + tw]))
        wgt = blend_weights(y, x0, th, tw, h, w, overlap)
        out[:, y : y + th, x0 : x0 + tw] += o * wgt
        norm[:, y : y + th, x0 : x0 + tw] += wgt
    return out / norm

  # --- memory guard -----------------------------------------------------------------------

  def _bytes_per_pixel(self) -> float:
    """Peak bytes per input pixel of one pass, from XLA's memory analysis of the compiled
    networks at a reference size (activations grow linearly with the pixel count)."""
    if self._per_pixel is None:
      s = max(self.multiple * 8, 128 - 128 % self.multiple)
      x = jax.ShapeDtypeStruct((1, s, s, 3), jnp.float32)
      if self.family.style_conditioned and self.attention:  # content and style both s x s
        compiled = [self._generate.lower(self.variables, x, x, jnp.float32(1.0))]
      elif self.family.style_conditioned:
        f_c = jax.eval_shape(self._encode, self.variables, x)
        compiled = [self._encode.lower(self.variables, x), self._decode.lower(self.variables, f_c)]
      else:
        compiled = [self._translate.lower(self.g_params, x, self.family.directions[0])]
      peak = 0
      for lowered in compiled:
        m = lowered.compile().memory_analysis()
        peak = max(peak, m.temp_size_in_bytes + m.output_size_in_bytes + 4 * 3 * s * s)
      self._per_pixel = peak / (s * s)
    return self._per_pixel

  def memory_needed(self, h: int, w: int) -> int:
    """Estimated peak memory in bytes of one untiled pass over an h x w image."""
    return int(self._bytes_per_pixel() * h * w)

  def _limit(self) -> int:
    return self.memory_limit or int(self.MEMORY_FRACTION * available_memory())

  def plan_tile(self, h: int, w: int, tile: int | None) -> int | None:
    """The tile size to use for an h x w (padded) image: `tile`, or None if the whole image
    fits in memory, or the largest square tile that fits.

    Raises:
      UserError: not even a small tile (or the given --tile) fits; names --tile/--max_size.
    """
    limit = self._limit()
    if tile:
      need = self.memory_needed(min(tile, h), min(tile, w))
      if need > limit:
        raise UserError(
          f"--tile={tile} needs about {_gb(need)}, over the {_gb(limit)} "
          "available; use a smaller --tile"
        )
      return tile
    need = self.memory_needed(h, w)
    if need <= limit:
      return None
    side = int(math.sqrt(limit / self._bytes_per_pixel()))
    if side < self.MIN_AUTO_TILE:
      fit = int(max(h, w) * math.sqrt(limit / need))
      raise UserError(
        f"a {w}x{h} image needs about {_gb(need)}, over the {_gb(limit)} "
        f"available, and tiles would be too small; use --max_size={fit} or less"
      )
    from absl import logging  # pylint: disable=g-import-not-at-top

    logging.warning(
      "A %dx%d image needs about %s, over the %s available: stylizing in tiles "
      "of %d px (choose with --tile).",
      w,
      h,
      _gb(need),
      _gb(limit),
      side,
    )
    return side

  # --- public -----------------------------------------------------------------------------

  def check_options(
    self,
    style: np.ndarray | Sequence[np.ndarray] | None = None,
    alpha: float = 1.0,
    *,
    style_weights: Sequence[float] | None = None,
    mask: np.ndarray | None = None,
    max_size: int | None = None,
    tile: int | None = None,
    direction: str = "AtoB",
    content_stats: tuple[jax.Array, jax.Array] | Callable | None = None,
  ) -> None:
    """Checks `stylize`'s options against this checkpoint, before any image is read; the CLI
    calls it once for a whole folder, so a wrong option is one error, not one per image.

    Raises:
      UserError: an option this checkpoint's model does not take, or a value out of range.
    """
    check_max_size(max_size)
    if tile is not None and tile < 1:
      raise UserError(f"--tile={tile}: use a positive tile size in pixels")
    if not self.family.style_conditioned:
      if style is not None or mask is not None or style_weights is not None or alpha != 1.0:
        raise UserError(
          f"a {self.name} checkpoint translates between its two domains: --style, "
          "--style_weights, --alpha and --mask apply to style-conditioned models "
          "(adain_gan) only"
        )
      if content_stats is not None:
        self._require_adain_for_stats()
      if direction not in self.family.directions:
        raise UserError(f"--direction={direction!r}: use one of {self.family.directions}")
      return
    if style is None:
      raise UserError("adain_gan needs a style image (--style=FILE)")
    if direction != "AtoB":
      raise UserError(
        f"--direction={direction}: this {self.name} checkpoint renders content in a style image's "
        "style; --direction applies to cyclegan (and pix2pix: AtoB)"
      )
    if not 0.0 <= alpha <= 1.0:
      raise UserError(f"--alpha={alpha} is outside [0, 1]: 0 keeps the content, 1 is full style")
    n = len(_style_list(style))
    if self.attention and (n != 1 or mask is not None or content_stats is not None):
      raise UserError(
        "this checkpoint's generator uses attention transfer (model.generator.transfer="
        f"'{self.setup.generator.transfer_kind}'): it takes one --style image and no --mask "
        "or --consistency=global|ema; several styles and masks need a checkpoint trained "
        "with model.generator.transfer='adain'"
      )
    if mask is not None and n != 2:
      raise UserError(
        f"--mask needs exactly two styles (got {n}): the mask "
        "selects the first where it is white, the second where black"
      )
    if style_weights is not None:  # one weight per style, also for one style (not ignored)
      _check_weights(style_weights, n)

  def stylize(
    self,
    content: np.ndarray,
    style: np.ndarray | Sequence[np.ndarray] | None = None,
    alpha: float = 1.0,
    *,
    style_weights: Sequence[float] | None = None,
    preserve_color: bool = False,
    mask: np.ndarray | None = None,
    max_size: int | None = None,
    tile: int | None = None,
    direction: str = "AtoB",
  ) -> np.ndarray:
    """Stylizes one image.

    Args:
      content: uint8 HWC RGB.
      style: adain_gan: one uint8 HWC style image or a list of them (G(x) families take none).
      alpha: content-style trade-off in [0, 1] (adain_gan).
      style_weights: mixing weights, one per style (normalised to sum 1).
      preserve_color: keep the content's colours (luminance-only transfer).
      mask: float HW in [0, 1] (or uint8), two styles: 1 selects the first; resized to the
        content (with a warning) if its size differs.
      max_size: cap on the long side of content and styles (downscaled, aspect kept).
      tile: process in overlapping tiles of this size (for images too large for memory);
        None: tiles only if the image would not fit in memory (see `plan_tile`).
      direction: G(x) families (cyclegan): 'AtoB' (G) or 'BtoA' (F).
    Returns:
      uint8 HWC RGB of the (possibly max_size-capped) content's size.
    """
    return self.stylize_batch(
      np.asarray(content, np.uint8)[None],
      style,
      alpha,
      style_weights=style_weights,
      preserve_color=preserve_color,
      mask=mask,
      max_size=max_size,
      tile=tile,
      direction=direction,
    )[0]

  def stylize_batch(
    self,
    frames: np.ndarray | Sequence[np.ndarray],
    style: np.ndarray | Sequence[np.ndarray] | None = None,
    alpha: float = 1.0,
    *,
    style_weights: Sequence[float] | None = None,
    preserve_color: bool = False,
    mask: np.ndarray | None = None,
    max_size: int | None = None,
    tile: int | None = None,
    direction: str = "AtoB",
    content_stats: tuple[jax.Array, jax.Array] | Callable | None = None,
    batch_size: int | None = None,
  ) -> np.ndarray:
    """Stylizes frames of one size, several per compiled call: `stylize`'s path and options.

    Args:
      frames: uint8 [N, H, W, 3] RGB, or a sequence of N uint8 HWC images of one size.
      style, alpha, style_weights, preserve_color, mask, max_size, tile, direction: as in
        `stylize` (the mask and styles apply to every frame).
      content_stats: adain_gan: the statistics AdaIN normalises the content features with.
        None: each frame's own (as `stylize`); a (mean, std) pair, each [1, 1, 1, C]
        (`content_stats()`): the same for every frame; a callable (mean, std) -> (mean, std)
        on [n, 1, 1, C]: maps the frames' own, in order (called once per compiled call with
        its n real frames; e.g. smoothing over time).
      batch_size: frames per compiled call, the last call padded to it, so that every call
        (and every later call with the same batch_size and frame size) reuses one compiled
        function; default all N. Fewer when a batch would not fit in memory; frames too large
        for memory go one at a time, in tiles.
    Returns:
      uint8 [N, h, w, 3]: each frame at the (possibly max_size-capped) frames' size.
    """
    frames = list(frames)
    if not frames:
      raise UserError("no frames to stylize")
    self.check_options(
      style,
      alpha,
      style_weights=style_weights,
      mask=mask,
      max_size=max_size,
      tile=tile,
      direction=direction,
      content_stats=content_stats,
    )
    first = limit_size(np.asarray(frames[0], np.uint8), max_size)
    padded = tuple(-(-s // self.multiple) * self.multiple for s in first.shape[:2])
    if not self.family.style_conditioned:
      run = lambda x, n, tile: self._tiled(
        x, tile, lambda crop: self._translate(self.g_params, crop, direction)
      )
    elif self.attention:
      s_img = self._style_input(_style_list(style)[0], max_size)
      run = lambda x, n, tile: self._tiled(
        x,
        tile,
        lambda crop: self._generate(
          self.variables, crop, np.repeat(s_img, crop.shape[0], 0), np.float32(alpha)
        ),
      )
    else:
      styles = _style_list(style)
      if mask is not None:
        mask = self._prepare_mask(mask, first.shape[:2], padded)
        s_stats = self.style_stats(styles, None, max_size)
      else:
        s_stats = self.style_stats(styles, style_weights if len(styles) > 1 else None, max_size)
      run = lambda x, n, tile: self._stylize_adain(
        x, s_stats, float(alpha), mask, tile, content_stats, n
      )
    tile = self.plan_tile(*padded, tile)
    per_call = batch_size or len(frames)
    if tile is not None:
      per_call = 1  # a tiled frame is a batch of its tiles
    else:
      per_call = max(1, min(per_call, self._limit() // max(1, self.memory_needed(*padded))))
    h, w = first.shape[:2]
    results = []
    for chunk in _chunks(frames, per_call):
      x, capped = self._batch_input(chunk, max_size, per_call)
      out = to_uint8(run(x, len(capped), tile)[: len(capped), :h, :w])
      if preserve_color:
        out = np.stack([keep_content_color(o, c) for o, c in zip(out, capped)])
      results.append(out)
    return np.concatenate(results)

  @staticmethod
  def _prepare_mask(mask, content_hw, padded_hw) -> jax.Array:
    mask = np.asarray(mask)
    if mask.ndim == 3:
      mask = mask.mean(-1)
    mask = mask.astype(np.float32) / (255.0 if mask.dtype == np.uint8 or mask.max() > 1 else 1.0)
    if mask.shape != tuple(content_hw):
      from absl import logging

      logging.warning("mask of size %s resized to the content's %s", mask.shape, content_hw)
      mask = np.asarray(Image.fromarray(mask).resize(content_hw[::-1], Image.Resampling.BILINEAR))
    ph, pw = padded_hw[0] - mask.shape[0], padded_hw[1] - mask.shape[1]
    return jnp.asarray(np.pad(mask, ((0, ph), (0, pw)), mode="edge"))


def _chunks(items: Iterable, n: int):
  """Lists of n consecutive items (the last one shorter)."""
  it = iter(items)
  while chunk := list(itertools.islice(it, n)):
    yield chunk


def load(workdir: str | os.PathLike, step: int | None = None) -> Stylizer:
  """The Stylizer of workdir's newest readable (or given) checkpoint, with the config saved in
  that checkpoint. Uses the EMA generator params when the run kept them. Reads only.
  """
  config, setup, state, step = checkpointing.restore_run(workdir, step)
  g_params = state.ema_g_params if state.ema_g_params is not None else state.g_params
  vgg_variables = vgg_lib.load_params(config.model.vgg.weights) if setup.family.needs_vgg else None
  return Stylizer(config, g_params, vgg_variables, step)


# ----------------------------------------------------------------------------- CLI


def _images_in(path: pathlib.Path) -> list[pathlib.Path]:
  if path.is_dir():
    files = sorted(
      p for p in path.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file()
    )
    if not files:
      raise UserError(f"{path}: no images ({', '.join(IMAGE_EXTENSIONS)}) in this folder")
    return files
  if not path.exists():
    raise UserError(f"{path}: no such file or folder")
  return [path]


def output_names(
  contents: list[pathlib.Path], root: pathlib.Path, out: pathlib.Path, tag: str
) -> list[pathlib.Path]:
  """Distinct output files for a folder's images: out/<subfolder>/<stem>__<tag>.png, mirroring
  the content folder (a/x.jpg and b/x.jpg do not meet); same stems in one folder (x.jpg,
  x.png) keep their extension in the name, then get a number."""
  names, used = [], set()
  for path in contents:
    rel = path.relative_to(root) if root.is_dir() else pathlib.Path(path.name)
    stem, ext = rel.stem, rel.suffix.lstrip(".")
    tries = itertools.chain(
      [f"{stem}__{tag}.png", f"{stem}_{ext}__{tag}.png"],
      (f"{stem}_{ext}_{n}__{tag}.png" for n in itertools.count(2)),
    )
    target = next(out / rel.parent / t for t in tries if out / rel.parent / t not in used)
    used.add(target)
    names.append(target)
  return names


def main(argv):
  from absl import flags

  from ganstyle_jax import console  # pylint: disable=g-import-not-at-top

  F = flags.FLAGS
  del argv
  root = pathlib.Path(F.content)
  if video.is_sequence_job(root, pathlib.Path(F.out), F.consistency):
    return _stylize_sequence(F)
  contents = _images_in(root)
  style_paths = [pathlib.Path(p) for p in F.style.split(",")] if F.style else []
  styles = [read_image(p) for p in style_paths]
  weights = [float(w) for w in F.style_weights.split(",")] if F.style_weights else None
  mask = read_image(F.mask) if F.mask else None
  out = pathlib.Path(F.out)
  to_dir = len(contents) > 1 or out.suffix.lower() not in IMAGE_EXTENSIONS
  if F.memory_limit_gb is not None and F.memory_limit_gb <= 0:
    raise UserError(f"--memory_limit_gb={F.memory_limit_gb}: use a number > 0")
  if F.method == "optimize":
    if len(styles) != 1:
      raise UserError("--method=optimize takes exactly one --style image")
    gatys.check_options(steps=F.steps, lr=F.lr, optimizer=F.optimizer, max_size=F.max_size)
    vgg_variables = vgg_lib.load_params(F.vgg_weights)
    run = lambda img: gatys.optimize(
      img,
      styles[0],
      vgg_variables,
      steps=F.steps,
      lr=F.lr,
      optimizer=F.optimizer,
      max_size=F.max_size,
    )
  elif F.method == "generator":
    if not F.workdir:
      raise UserError("--workdir is required for --method=generator (or use --method=optimize)")
    stylizer = load(F.workdir)
    if F.memory_limit_gb is not None:
      stylizer.memory_limit = int(F.memory_limit_gb * 2**30)
    style = (styles if len(styles) > 1 else styles[0]) if styles else None
    # Once for all images: in a folder, a wrong option would otherwise skip every image.
    stylizer.check_options(
      style,
      F.alpha,
      style_weights=weights,
      mask=mask,
      max_size=F.max_size,
      tile=F.tile,
      direction=F.direction,
    )
    run = lambda img: stylizer.stylize(
      img,
      style,
      F.alpha,
      style_weights=weights,
      preserve_color=F.preserve_color,
      mask=mask,
      max_size=F.max_size,
      tile=F.tile,
      direction=F.direction,
    )
  else:
    raise UserError(f"--method={F.method!r}: use generator or optimize")
  style_tag = "+".join(p.stem for p in style_paths) or F.direction
  targets = output_names(contents, root, out, style_tag) if to_dir else [out]
  skipped = []
  for path, target in console.progress(list(zip(contents, targets)), desc="stylize", unit="image"):
    try:
      result = run(read_image(path))
    except UserError as e:
      if not to_dir:
        raise
      skipped.append(str(e) if str(e).startswith(str(path)) else f"{path}: {e}")
      continue
    target.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(result).save(target)
    if not to_dir:
      console.write(f"wrote {target}")
  if to_dir:
    console.write(f"wrote {len(contents) - len(skipped)} images to {out}")
  if skipped:
    print(
      f"skipped {len(skipped)} of {len(contents)} images:", *skipped, sep="\n  ", file=sys.stderr
    )
    sys.exit(1)


def _stylize_sequence(F) -> None:
  """main's video branch: --content (a video or a folder of frames) as one sequence."""
  from ganstyle_jax import console  # pylint: disable=g-import-not-at-top

  if F.method != "generator":
    raise UserError("a video is stylized by a checkpoint: use --method=generator")
  if not F.workdir:
    raise UserError("--workdir is required to stylize a video")
  if F.memory_limit_gb is not None and F.memory_limit_gb <= 0:
    raise UserError(f"--memory_limit_gb={F.memory_limit_gb}: use a number > 0")
  styles = [read_image(p) for p in F.style.split(",")] if F.style else []

  def stylizer():
    s = load(F.workdir)
    if F.memory_limit_gb is not None:
      s.memory_limit = int(F.memory_limit_gb * 2**30)
    return s

  n = video.stylize_sequence(
    stylizer,
    pathlib.Path(F.content),
    pathlib.Path(F.out),
    (styles if len(styles) > 1 else styles[0]) if styles else None,
    F.alpha,
    consistency=F.consistency,
    batch_frames=F.batch_frames,
    ema_decay=F.ema_decay,
    fps=F.fps,
    style_weights=[float(w) for w in F.style_weights.split(",")] if F.style_weights else None,
    preserve_color=F.preserve_color,
    mask=read_image(F.mask) if F.mask else None,
    max_size=F.max_size,
    tile=F.tile,
    direction=F.direction,
  )
  console.write(f"wrote {n} frames to {F.out}")


def run():
  """Console script `ganstyle-stylize`."""
  from absl import flags

  flags.DEFINE_string("workdir", None, "Training workdir (its latest checkpoint is used).")
  flags.DEFINE_string(
    "content", None, "Content image, folder of images, video or folder of frames.", required=True
  )
  flags.DEFINE_string("style", None, "Style image(s), comma-separated (adain_gan).")
  flags.DEFINE_string(
    "out",
    None,
    "Output file, or folder (names <stem>__<style>.png, "
    "mirroring the content folder's subfolders).",
    required=True,
  )
  flags.DEFINE_string("style_weights", None, "Mixing weights, one per style, e.g. 0.7,0.3.")
  flags.DEFINE_float("alpha", 1.0, "Content-style trade-off in [0, 1].")
  flags.DEFINE_bool("preserve_color", False, "Keep the content's colours (luminance transfer).")
  flags.DEFINE_string("mask", None, "Mask image splitting two styles (white: first style).")
  flags.DEFINE_integer("max_size", None, "Cap on the long side of content and style images.")
  flags.DEFINE_integer(
    "tile",
    None,
    "Process in overlapping tiles of this size (default: "
    "only when the image would not fit in memory).",
  )
  flags.DEFINE_float(
    "memory_limit_gb",
    None,
    "Memory the stylizer may use; above it, images "
    "are tiled (default: 80% of the free device memory).",
  )
  flags.DEFINE_enum("direction", "AtoB", ["AtoB", "BtoA"], "cyclegan: which generator.")
  flags.DEFINE_enum(
    "method",
    "generator",
    ["generator", "optimize"],
    "generator: a trained checkpoint; optimize: Gatys et al. (no checkpoint).",
  )
  flags.DEFINE_enum(
    "consistency",
    "none",
    list(video.CONSISTENCY),
    "Video: content statistics per frame (none), of the whole sequence (global), or "
    "smoothed over time (ema); adain_gan.",
  )
  flags.DEFINE_integer("batch_frames", 8, "Video: frames per compiled call.")
  flags.DEFINE_float("ema_decay", 0.9, "Video, --consistency=ema: weight of the past in [0, 1).")
  flags.DEFINE_float("fps", None, "Frame rate of a folder of frames (default 25).")
  flags.DEFINE_integer("steps", 200, "optimize: optimisation steps.")
  flags.DEFINE_float("lr", 0.02, "optimize: Adam learning rate.")
  flags.DEFINE_enum("optimizer", "adam", ["adam", "lbfgs"], "optimize: optax optimizer.")
  flags.DEFINE_string("vgg_weights", "imagenet", "optimize: VGG19 weights spec.")

  run_cli(main)


if __name__ == "__main__":
  run()
