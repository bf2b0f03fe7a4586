"""Stylize images with a trained checkpoint (or by optimisation): the CLI and `load(workdir)`.

  python -m ganstyle_jax.stylize --workdir=DIR --content=FILE|DIR --style=FILE[,FILE...] \\
      --out=FILE|DIR [--style_weights=W,...] [--alpha=A] [--preserve_color] [--mask=FILE] \\
      [--max_size=N] [--tile=N] [--direction=AtoB|BtoA] [--method=generator|optimize]

Inside, images are float32 NHWC in [-1, 1]; uint8 HWC RGB at the boundary. AdaIN transfer is
split into encode -> statistics -> decode, so that
- several styles mix in feature-statistics space (weighted means of their means and stds);
- a mask blends two styles' AdaIN targets spatially (Huang & Belongie 2017, section 7);
- tiles of a large image share the content and style statistics of the whole image, so the
  tiles agree, and overlapping tiles are blended with linear ramps (no visible seams).
--preserve_color keeps the content's colours by luminance-only transfer: the output's luma (Y
of YCbCr) with the content's chroma (Gatys et al. 2016, "Preserving colour").
"""
from __future__ import annotations

import math
import os
import pathlib
from typing import Sequence

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from PIL import Image, ImageOps

from ganstyle_jax import build, losses
from ganstyle_jax.errors import UserError, run_cli
from ganstyle_jax.images import to_float, to_uint8
from ganstyle_jax.models import generators
from ganstyle_jax.models import layers as L
from ganstyle_jax.models import vgg as vgg_lib

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")


# ----------------------------------------------------------------------------- image I/O


def read_image(path: str | os.PathLike) -> np.ndarray:
  """uint8 HWC RGB from any image file (EXIF orientation applied); UserError if unreadable."""
  try:
    with Image.open(path) as im:
      im = ImageOps.exif_transpose(im)
      if im.mode in ("I;16", "I;16B", "I;16L", "I"):
        im = Image.fromarray((np.asarray(im, np.float64) / 257).clip(0, 255).astype(np.uint8))
      return np.asarray(im.convert("RGB"))
  except FileNotFoundError:
    raise UserError(f"{path}: no such image file") from None
  except (OSError, ValueError, Image.DecompressionBombError) as e:
    raise UserError(f"{path}: cannot read the image ({e}); is it a complete image file?") from None


def limit_size(img: np.ndarray, max_size: int | None) -> np.ndarray:
  """Downscales so the long side is at most max_size (aspect ratio kept)."""
  if not max_size or max(img.shape[:2]) <= max_size:
    return img
  h, w = img.shape[:2]
  s = max_size / max(h, w)
  size = (max(1, round(w * s)), max(1, round(h * s)))
  return np.asarray(Image.fromarray(img).resize(size, Image.Resampling.LANCZOS))


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
  ramp = np.concatenate([np.zeros(margin, np.float32),
                         (np.arange(overlap - margin, dtype=np.float32) + 1)
                         / (overlap - margin + 1)])
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


# ----------------------------------------------------------------------------- the stylizer


class Stylizer:
  """A trained generator with the controls of the stylize CLI; uint8 HWC in and out.

  Build it with `ganstyle_jax.load(workdir)`. Compiled functions are cached by input shape.
  """

  def __init__(self, config: ml_collections.ConfigDict, g_params, vgg_variables, step: int = 0):
    self.config = config
    self.setup = build.build_setup(config)
    self.name = self.setup.name
    self.g_params = g_params
    self.vgg_variables = vgg_variables
    self.step = step
    g = self.setup.generator
    if self.name == "adain_gan":
      self.variables = generators.assemble_variables(vgg_variables, g_params)
      self.multiple = 2 ** sum(n.startswith("pool") for n in vgg_lib.LAYER_ORDER[
          :vgg_lib.LAYER_ORDER.index(g.encoder_layer)])
      self._encode = jax.jit(lambda v, x: g.apply(v, x, method=g.encode)[g.encoder_layer])
      self._decode = jax.jit(lambda v, t: g.apply(v, t, method=g.decode))
    else:
      self.multiple = 4
      self._translate = jax.jit(g.apply)

  # --- adain_gan pieces -------------------------------------------------------------------

  def style_stats(self, styles: Sequence[np.ndarray], weights: Sequence[float] | None = None,
                  max_size: int | None = None) -> list[tuple[jax.Array, jax.Array]]:
    """Per-style (mean, std) [1, 1, 1, C] of encoder features; `weights` mixes them into one."""
    stats = []
    for s in styles:
      x, _ = pad_to_multiple(to_float(limit_size(s, max_size)), self.multiple)
      stats.append(L.channel_stats(self._encode(self.variables, x)))
    if weights is None:
      return stats
    w = np.asarray(weights, np.float64)
    if len(w) != len(stats) or np.any(w < 0) or w.sum() <= 0:
      raise UserError(f"--style_weights {list(weights)}: need {len(stats)} non-negative weights "
                      "with a positive sum, one per style")
    w = w / w.sum()
    mean = sum(float(wi) * m for wi, (m, _) in zip(w, stats))
    std = sum(float(wi) * s for wi, (_, s) in zip(w, stats))
    return [(mean, std)]

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

  def _stylize_adain(self, x: np.ndarray, s_stats, alpha: float, mask, tile: int | None):
    """x: [1, H, W, 3] padded to the encoder multiple -> [1, H, W, 3] float."""
    h, w = x.shape[1:3]
    if not tile or (h <= tile and w <= tile):
      f_c = self._encode(self.variables, x)
      t = self._target(f_c, L.channel_stats(f_c), s_stats, alpha, mask)
      return np.asarray(self._decode(self.variables, t))
    tile = max(self.multiple * 4, tile - tile % self.multiple)
    overlap = max(self.multiple * 3, (tile // 3) - (tile // 3) % self.multiple)
    ys, xs = tile_starts(h, tile, overlap), tile_starts(w, tile, overlap)
    ys = [y - y % self.multiple for y in ys]
    xs = [x0 - x0 % self.multiple for x0 in xs]
    th, tw = min(tile, h), min(tile, w)
    # Pass 1: global content statistics from each tile's features, weighted by the blending
    # weights normalised per position, so every feature position of the image counts once.
    f = self.multiple
    weights, norm = {}, np.zeros((h // f, w // f), np.float64)
    for y in ys:
      for x0 in xs:
        wy = feather(th // f, overlap // f, y == 0, y + th >= h)
        wx = feather(tw // f, overlap // f, x0 == 0, x0 + tw >= w)
        weights[y, x0] = wy[:, None] * wx[None, :]
        norm[y // f:(y + th) // f, x0 // f:(x0 + tw) // f] += weights[y, x0]
    total, sq, count = 0.0, 0.0, 0.0
    for (y, x0), wt in weights.items():
      fc = np.asarray(self._encode(self.variables, x[:, y:y + th, x0:x0 + tw]), np.float64)
      wgt = (wt / norm[y // f:(y + th) // f, x0 // f:(x0 + tw) // f])[None, :, :, None]
      total = total + (fc * wgt).sum((0, 1, 2))
      sq = sq + (fc ** 2 * wgt).sum((0, 1, 2))
      count += wgt.sum()
    mean = total / count
    std = np.sqrt(np.maximum(sq / count - mean ** 2, 0) + 1e-5)
    c_stats = (jnp.asarray(mean, jnp.float32)[None, None, None],
               jnp.asarray(std, jnp.float32)[None, None, None])
    # Pass 2: decode each tile with the shared statistics; blend with linear ramps.
    out = np.zeros(x.shape, np.float32)
    norm = np.zeros((1, h, w, 1), np.float32)
    for y in ys:
      for x0 in xs:
        crop = x[:, y:y + th, x0:x0 + tw]
        f_c = self._encode(self.variables, crop)
        m = None if mask is None else mask[y:y + th, x0:x0 + tw]
        o = np.asarray(self._decode(self.variables, self._target(f_c, c_stats, s_stats, alpha, m)))
        wy = feather(th, overlap, y == 0, y + th >= h)
        wx = feather(tw, overlap, x0 == 0, x0 + tw >= w)
        wgt = (wy[:, None] * wx[None, :])[None, :, :, None]
        out[:, y:y + th, x0:x0 + tw] += o * wgt
        norm[:, y:y + th, x0:x0 + tw] += wgt
    return out / norm

  # --- public -----------------------------------------------------------------------------

  def stylize(self, content: np.ndarray, style: np.ndarray | Sequence[np.ndarray] | None = None,
              alpha: float = 1.0, *, style_weights: Sequence[float] | None = None,
              preserve_color: bool = False, mask: np.ndarray | None = None,
              max_size: int | None = None, tile: int | None = None,
              direction: str = "AtoB") -> np.ndarray:
    """Stylizes one image.

    Args:
      content: uint8 HWC RGB.
      style: adain_gan: one uint8 HWC style image or a list of them (ignored by cyclegan).
      alpha: content-style trade-off in [0, 1] (adain_gan).
      style_weights: mixing weights, one per style (normalised to sum 1).
      preserve_color: keep the content's colours (luminance-only transfer).
      mask: float HW in [0, 1] (or uint8), two styles: 1 selects the first; resized to the
        content (with a warning) if its size differs.
      max_size: cap on the long side of content and styles (downscaled, aspect kept).
      tile: process in overlapping tiles of this size (for images too large for memory).
      direction: cyclegan: 'AtoB' (G) or 'BtoA' (F).
    Returns:
      uint8 HWC RGB of the (possibly max_size-capped) content's size.
    """
    content = limit_size(np.asarray(content, np.uint8), max_size)
    x, (h, w) = pad_to_multiple(to_float(content), self.multiple)
    if self.name == "cyclegan":
      if style is not None or mask is not None or style_weights is not None or alpha != 1.0:
        raise UserError("a cyclegan checkpoint translates between its two domains: --style, "
                        "--style_weights, --alpha and --mask apply to adain_gan only")
      if direction not in ("AtoB", "BtoA"):
        raise UserError(f"--direction={direction!r}: use AtoB or BtoA")
      params = self.g_params["G" if direction == "AtoB" else "F"]
      out = np.asarray(self._translate(params, x))
    else:
      if style is None:
        raise UserError("adain_gan needs a style image (--style=FILE)")
      if not 0.0 <= alpha <= 1.0:
        raise UserError(f"--alpha={alpha} is outside [0, 1]: 0 keeps the content, 1 is full style")
      styles = [style] if isinstance(style, np.ndarray) else list(style)
      if mask is not None:
        if len(styles) != 2:
          raise UserError(f"--mask needs exactly two styles (got {len(styles)}): the mask "
                          "selects the first where it is white, the second where black")
        mask = self._prepare_mask(mask, content.shape[:2], x.shape[1:3])
        s_stats = self.style_stats(styles, None, max_size)
      else:
        s_stats = self.style_stats(styles, style_weights if len(styles) > 1 else None, max_size)
      out = self._stylize_adain(x, s_stats, float(alpha), mask, tile)
    result = to_uint8(out[0, :h, :w])
    return keep_content_color(result, content) if preserve_color else result

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


def load(workdir: str | os.PathLike, step: int | None = None) -> Stylizer:
  """The Stylizer of workdir's latest (or given) checkpoint, with the config it was trained on.

  Uses the EMA generator params when the run kept them.
  """
  config, setup, state, step = build.restore_run(workdir, step)
  g_params = state.ema_g_params if state.ema_g_params is not None else state.g_params
  vgg_variables = (vgg_lib.load_params(config.model.vgg.weights)
                   if setup.name == "adain_gan" else None)
  return Stylizer(config, g_params, vgg_variables, step)


# ----------------------------------------------------------------------------- optimisation


def optimize(content: np.ndarray, style: np.ndarray, vgg_variables, *, steps: int = 200,
             lr: float = 0.02, w_style: float = 1e3, optimizer: str = "adam",
             max_size: int | None = None) -> np.ndarray:
  """Gatys et al. 2016: optimise the image itself for VGG content + Gram style losses.

  Content loss on relu4_1 against the content image; Gram style loss on relu1_1..relu5_1
  against the style image; starts from the content image. optimizer: 'adam' or 'lbfgs'.
  """
  import optax
  content = limit_size(np.asarray(content, np.uint8), max_size)
  style = limit_size(np.asarray(style, np.uint8), max_size)
  c, s = jnp.asarray(to_float(content)), jnp.asarray(to_float(style))
  style_layers = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")
  feats = lambda x: vgg_lib.features(vgg_variables, x, style_layers)
  c_feats, s_feats = feats(c), feats(s)

  def loss_fn(x):
    f = feats(x)
    return (losses.mse(f["relu4_1"], c_feats["relu4_1"])
            + w_style * losses.gram_style_loss(f, s_feats, style_layers))

  if optimizer == "lbfgs":
    tx = optax.lbfgs()
    # L-BFGS' line search already evaluated the loss at the new point: reuse it.
    value_and_grad = optax.value_and_grad_from_state(loss_fn)
  elif optimizer == "adam":
    tx = optax.adam(lr)
    value_and_grad = lambda x, state: jax.value_and_grad(loss_fn)(x)
  else:
    raise UserError(f"--optimizer={optimizer!r}: use adam or lbfgs")

  @jax.jit
  def step(x, opt_state):
    value, grad = value_and_grad(x, state=opt_state)
    updates, opt_state = tx.update(grad, opt_state, x, value=value, grad=grad, value_fn=loss_fn)
    return jnp.clip(optax.apply_updates(x, updates), -1, 1), opt_state

  x, opt_state = c, tx.init(c)
  for _ in range(steps):
    x, opt_state = step(x, opt_state)
  return to_uint8(x[0])


# ----------------------------------------------------------------------------- CLI


def _images_in(path: pathlib.Path) -> list[pathlib.Path]:
  if path.is_dir():
    files = sorted(p for p in path.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS)
    if not files:
      raise UserError(f"{path}: no images ({', '.join(IMAGE_EXTENSIONS)}) in this folder")
    return files
  if not path.exists():
    raise UserError(f"{path}: no such file or folder")
  return [path]


def main(argv):
  from absl import flags
  from tqdm import tqdm
  F = flags.FLAGS
  del argv
  contents = _images_in(pathlib.Path(F.content))
  style_paths = [pathlib.Path(p) for p in F.style.split(",")] if F.style else []
  styles = [read_image(p) for p in style_paths]
  weights = [float(w) for w in F.style_weights.split(",")] if F.style_weights else None
  mask = read_image(F.mask) if F.mask else None
  out = pathlib.Path(F.out)
  to_dir = len(contents) > 1 or out.suffix.lower() not in IMAGE_EXTENSIONS
  if F.method == "optimize":
    if len(styles) != 1:
      raise UserError("--method=optimize takes exactly one --style image")
    vgg_variables = vgg_lib.load_params(F.vgg_weights)
    run = lambda img: optimize(img, styles[0], vgg_variables, steps=F.steps, lr=F.lr,
                               optimizer=F.optimizer, max_size=F.max_size)
  elif F.method == "generator":
    if not F.workdir:
      raise UserError("--workdir is required for --method=generator (or use --method=optimize)")
    stylizer = load(F.workdir)
    run = lambda img: stylizer.stylize(
        img, (styles if len(styles) > 1 else styles[0]) if styles else None, F.alpha,
        style_weights=weights, preserve_color=F.preserve_color, mask=mask,
        max_size=F.max_size, tile=F.tile, direction=F.direction)
  else:
    raise UserError(f"--method={F.method!r}: use generator or optimize")
  if to_dir:
    out.mkdir(parents=True, exist_ok=True)
  style_tag = "+".join(p.stem for p in style_paths) or F.direction
  for path in tqdm(contents, disable=len(contents) == 1, desc="stylize"):
    result = run(read_image(path))
    target = out / f"{path.stem}__{style_tag}.png" if to_dir else out
    target.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(result).save(target)
    print(f"wrote {target}")


def run():
  """Console script `ganstyle-stylize`."""
  from absl import flags
  flags.DEFINE_string("workdir", None, "Training workdir (its latest checkpoint is used).")
  flags.DEFINE_string("content", None, "Content image or folder of images.", required=True)
  flags.DEFINE_string("style", None, "Style image(s), comma-separated (adain_gan).")
  flags.DEFINE_string("out", None, "Output file, or folder (names content__style.png).",
                      required=True)
  flags.DEFINE_string("style_weights", None, "Mixing weights, one per style, e.g. 0.7,0.3.")
  flags.DEFINE_float("alpha", 1.0, "Content-style trade-off in [0, 1].")
  flags.DEFINE_bool("preserve_color", False, "Keep the content's colours (luminance transfer).")
  flags.DEFINE_string("mask", None, "Mask image splitting two styles (white: first style).")
  flags.DEFINE_integer("max_size", None, "Cap on the long side of content and style images.")
  flags.DEFINE_integer("tile", None, "Process in overlapping tiles of this size.")
  flags.DEFINE_enum("direction", "AtoB", ["AtoB", "BtoA"], "cyclegan: which generator.")
  flags.DEFINE_enum("method", "generator", ["generator", "optimize"],
                    "generator: a trained checkpoint; optimize: Gatys et al. (no checkpoint).")
  flags.DEFINE_integer("steps", 200, "optimize: optimisation steps.")
  flags.DEFINE_float("lr", 0.02, "optimize: Adam learning rate.")
  flags.DEFINE_enum("optimizer", "adam", ["adam", "lbfgs"], "optimize: optax optimizer.")
  flags.DEFINE_string("vgg_weights", "imagenet", "optimize: VGG19 weights spec.")

  run_cli(main)


if __name__ == "__main__":
  run()
