"""THE image decoder: every image the project reads becomes uint8 HWC sRGB here, one way.

Training and held-out data (data/stream.py) and stylize inputs (stylize.read_image) all call
`decode`, so a file looks the same to a model in training and at inference:

  encoded bytes or a local file
  -> refused if its header claims more than max_pixels (before any pixel is decoded)
  -> [JPEG, when the caller downscales anyway: decoded at a reduced DCT scale]
  -> decoded in full: truncated or corrupt data is an error, never half-grey pixels
  -> EXIF orientation applied
  -> 8 bits per channel: 'I;16*' / 257; 'I' by the bit depth its values need (8, 16 or 32
     bits), so 8-bit-range int images are not darkened; 'F' in [0, 1] x 255
  -> an embedded ICC profile (RGB, grey or CMYK) converted to sRGB, perceptual intent
  -> RGB (palette, greyscale, CMYK, ...), transparency composited onto white.

Every failure is a `BadImageError` (a UserError) whose message says what is wrong.
"""

from __future__ import annotations

import functools
import io
import os

import numpy as np
from PIL import Image, ImageCms, ImageFile, ImageOps

from ganstyle_jax.errors import UserError

# Truncated files must raise, not decode into half-grey images.
ImageFile.LOAD_TRUNCATED_IMAGES = False

IMAGE_EXTENSIONS = (
  ".jpg",
  ".jpeg",
  ".jpe",
  ".jfif",
  ".png",
  ".bmp",
  ".webp",
  ".gif",
  ".tif",
  ".tiff",
  ".ppm",
  ".pgm",
  ".pbm",
  ".pnm",
  ".tga",
  ".ico",
)

_SRGB = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))
# PIL mode of the colour channels -> the ICC colour space a profile for them must have.
_ICC_SPACE = {"L": "GRAY", "RGB": "RGB ", "CMYK": "CMYK"}
_INT32_MAX = 2**31 - 1


class BadImageError(UserError):
  """A file that is missing, not an image, truncated, corrupt or too large."""


def decode(
  source: bytes | str | os.PathLike, *, max_pixels: int, min_side: int | None = None
) -> np.ndarray:
  """Decodes an image file to uint8 [H, W, 3] sRGB (see the module docstring for the steps).

  Args:
    source: the encoded file contents, or a local file path.
    max_pixels: images whose header claims more pixels are refused before decoding.
    min_side: the shorter side the caller will resize to; a larger JPEG is decoded at the
      coarsest DCT scale that keeps its shorter side >= min_side (faster, less memory).

  Returns:
    uint8 [H, W, 3], EXIF-oriented, sRGB, opaque.

  Raises:
    BadImageError: naming what is wrong (missing file, not an image, truncated, too large).
  """
  try:
    with Image.open(io.BytesIO(source) if isinstance(source, bytes) else source) as im:
      return np.asarray(_to_rgb(_load(im, max_pixels=max_pixels, min_side=min_side)))
  except BadImageError:
    raise
  except FileNotFoundError:
    raise BadImageError("no such image file") from None
  except Image.UnidentifiedImageError as e:
    raise BadImageError("not an image file (or a format PIL cannot read)") from e
  except Image.DecompressionBombError as e:  # PIL's own limit, when max_pixels is above it
    raise BadImageError(str(e)) from e
  except Exception as e:  # PIL reports corrupt data as many types pylint: disable=broad-except
    text = str(e).strip().splitlines()
    reason = text[0] if text else type(e).__name__
    raise BadImageError(f"truncated or corrupt image data ({reason})") from e


def resize_shorter_side(image: np.ndarray, size: int) -> np.ndarray:
  """Bicubic resize of uint8 HWC RGB so min(H, W) == size, aspect kept (small ones upscaled)."""
  h, w = image.shape[:2]
  if min(h, w) == size:
    return image
  scale = size / min(w, h)
  new_size = (max(size, round(w * scale)), max(size, round(h * scale)))
  return np.asarray(Image.fromarray(image).resize(new_size, Image.Resampling.BICUBIC))


def _load(im: Image.Image, *, max_pixels: int, min_side: int | None) -> Image.Image:
  """Checks the claimed size, decodes the pixels and applies the EXIF orientation."""
  w, h = im.size
  if w <= 0 or h <= 0:
    raise BadImageError(f"empty image {w}x{h}")
  if w * h > max_pixels:
    raise BadImageError(f"{w}x{h} = {w * h} pixels exceeds max_image_pixels={max_pixels}")
  if min_side and im.format == "JPEG" and min_side < min(w, h):
    scale = min_side / min(w, h)
    im.draft("RGB", (max(1, int(w * scale)), max(1, int(h * scale))))
  im.load()
  return ImageOps.exif_transpose(im)


def _to_rgb(im: Image.Image) -> Image.Image:
  """Any PIL mode -> 'RGB' in sRGB: 8 bits, ICC profile applied, alpha composited on white."""
  icc = im.info.get("icc_profile")
  if im.mode.startswith("I") or im.mode == "F":
    im = _to_8bit(im)
  colour, alpha = _split_alpha(im)
  rgb = _icc_to_srgb(colour, icc)
  if rgb is None:
    rgb = colour.convert("RGB")
  if alpha is None:
    return rgb
  rgb.putalpha(alpha)
  background = Image.new("RGBA", rgb.size, (255, 255, 255, 255))
  return Image.alpha_composite(background, rgb).convert("RGB")


def _to_8bit(im: Image.Image) -> Image.Image:
  """A one-channel int or float image -> 'L'.

  'I;16*' are 16-bit by declaration (/ 257). 'I' (32-bit int) is scaled by the bit depth its
  values need: up to 255 unchanged, up to 65535 / 257, beyond that from the int32 range.
  'F' is taken as [0, 1] when its maximum is <= 1, else as [0, 255].
  """
  arr = np.asarray(im).astype(np.float64)
  top = arr.max() if arr.size else 0.0
  if im.mode == "F":
    arr = arr * 255.0 if top <= 1.0 else arr
  elif im.mode.startswith("I;16") or 255 < top <= 65535:
    arr = arr / 257.0
  elif top > 65535:
    arr = arr * (255.0 / _INT32_MAX)
  return Image.fromarray(np.clip(np.round(arr), 0, 255).astype(np.uint8))


def _split_alpha(im: Image.Image) -> tuple[Image.Image, Image.Image | None]:
  """The colour channels in their own mode (the one an ICC profile describes) and the alpha.

  Palette images become RGB(A); a transparency key colour (PNG tRNS) becomes an alpha channel.
  """
  if im.mode == "P":
    im = im.convert("RGBA" if "transparency" in im.info else "RGB")
  elif im.mode in ("PA", "RGBa") or (im.mode == "RGB" and "transparency" in im.info):
    im = im.convert("RGBA")
  elif im.mode == "La" or (im.mode == "L" and "transparency" in im.info):
    im = im.convert("LA")
  if im.mode in ("RGBA", "LA"):
    return im.convert(im.mode[:-1]), im.getchannel("A")
  return im, None


def _icc_to_srgb(im: Image.Image, icc: bytes | None) -> Image.Image | None:
  """`im` ('L', 'RGB' or 'CMYK') converted from its embedded profile to sRGB 'RGB'.

  None (the caller converts as if untagged) when there is no profile, or it cannot be read,
  or it describes another colour space than the image's channels.
  """
  if not icc or im.mode not in _ICC_SPACE:
    return None
  transform = _transform_to_srgb(icc, im.mode)
  return None if transform is None else ImageCms.applyTransform(im, transform)


@functools.lru_cache(maxsize=32)
def _transform_to_srgb(icc: bytes, mode: str) -> ImageCms.ImageCmsTransform | None:
  """A cached profile -> sRGB transform; NOCACHE keeps it safe to share between threads."""
  try:
    profile = ImageCms.ImageCmsProfile(io.BytesIO(icc))
    if profile.profile.xcolor_space != _ICC_SPACE[mode]:
      return None
    return ImageCms.buildTransform(profile, _SRGB, mode, "RGB", flags=ImageCms.Flags.NOCACHE)
  except (OSError, ImageCms.PyCMSError):
    return None
