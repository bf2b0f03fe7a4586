"""Tests for the one image decoder (data/decode.py), through both of its users: training's
stream (data/stream.py load_image, used by the train and held-out streams) and stylize.read_image.
Every kind of file is written with PIL and its decoded pixels checked on both paths."""

import io
import pathlib
import struct
import zlib

import numpy as np
from PIL import Image, ImageCms
import pytest

from ganstyle_jax import input_pipeline, stylize
from ganstyle_jax.config_base import base_config
from ganstyle_jax.data import decode, stream
from ganstyle_jax.errors import UserError

MAX_PIXELS = base_config().data.max_image_pixels
RED, GREEN, BLUE, WHITE = (200, 0, 0), (0, 200, 0), (0, 0, 200), (255, 255, 255)


def read_training(path: pathlib.Path) -> np.ndarray:
  """Training's decode of a file, at its own size (load_size = its shorter side: no resize)."""
  with Image.open(path) as im:
    shorter = min(im.size)
  return stream.load_image(path.read_bytes(), load_size=shorter, max_pixels=MAX_PIXELS)


READERS = {"training": read_training, "stylize": stylize.read_image}


@pytest.fixture(params=sorted(READERS))
def read(request):
  return READERS[request.param]


def halves(left, right, size=8) -> np.ndarray:
  """size x size uint8 RGB image: left half one colour, right half another."""
  img = np.empty((size, size, 3), np.uint8)
  img[:, : size // 2], img[:, size // 2 :] = left, right
  return img


def srgb_profile() -> bytes:
  return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def swapped_primaries_profile() -> bytes:
  """An RGB profile whose red and blue primaries are sRGB's blue and red: R and B swap places."""
  icc = bytearray(srgb_profile())
  tags = {}
  for i in range(struct.unpack(">I", icc[128:132])[0]):
    entry = 132 + 12 * i
    tags[bytes(icc[entry : entry + 4])] = entry
  r, b = tags[b"rXYZ"], tags[b"bXYZ"]
  icc[r + 4 : r + 12], icc[b + 4 : b + 12] = icc[b + 4 : b + 12], icc[r + 4 : r + 12]
  return bytes(icc)


# ----------------------------------------------------------------------------------------------
# Kinds of files: (write(path), expected uint8 HWC, tolerance).
# ----------------------------------------------------------------------------------------------


def _exif_jpeg(path):
  exif = Image.Exif()
  exif[0x0112] = 6  # shown rotated 90 degrees clockwise: the left half ends up on top
  wide = np.empty((8, 16, 3), np.uint8)
  wide[:, :8], wide[:, 8:] = RED, BLUE
  Image.fromarray(wide).save(path, format="JPEG", quality=95, subsampling=0, exif=exif)


def _palette_png(path):
  im = Image.frombytes("P", (8, 8), halves(0, 1)[..., 0].tobytes())
  im.putpalette([*RED, *BLUE] + [0, 0, 0] * 254)
  im.save(path, transparency=1)  # index 1 (blue) is fully transparent


def _cmyk_jpeg(path):
  cmyk = np.empty((8, 8, 4), np.uint8)
  cmyk[:, :4], cmyk[:, 4:] = (0, 255, 255, 0), (0, 0, 0, 0)  # red ink; no ink
  Image.frombytes("CMYK", (8, 8), cmyk.tobytes()).save(path, format="JPEG", quality=95)


def _gray16_png(path):
  values = np.empty((8, 8), np.uint16)
  values[:, :4], values[:, 4:] = 257 * 100, 65535
  Image.fromarray(values).save(path)  # mode I;16


def _int32_8bit_tiff(path):
  values = np.empty((8, 8), np.int32)
  values[:, :4], values[:, 4:] = 100, 200  # 32-bit ints holding 8-bit data: not divided
  Image.fromarray(values).save(path)  # mode I


def _int32_16bit_tiff(path):
  values = np.empty((8, 8), np.int32)
  values[:, :4], values[:, 4:] = 257 * 100, 65535  # 16-bit data in a 32-bit image: / 257
  Image.fromarray(values).save(path)


def _rgba_png(path):
  rgba = np.empty((8, 8, 4), np.uint8)
  rgba[:, :4], rgba[:, 4:] = (*RED, 255), (*BLUE, 0)
  Image.fromarray(rgba).save(path)


def _half_alpha_png(path):
  Image.new("RGBA", (8, 8), (0, 0, 0, 128)).save(path)


def _la_png(path):
  la = np.empty((8, 8, 2), np.uint8)
  la[:, :4], la[:, 4:] = (100, 255), (100, 0)
  Image.frombytes("LA", (8, 8), la.tobytes()).save(path)


def _srgb_tagged_png(path):
  Image.fromarray(halves(RED, GREEN)).save(path, icc_profile=srgb_profile())


def _swapped_primaries_png(path):
  img = halves(RED, (128, 128, 128))
  Image.fromarray(img).save(path, icc_profile=swapped_primaries_profile())


def _lab_profile_on_rgb_png(path):
  lab = ImageCms.ImageCmsProfile(ImageCms.createProfile("LAB")).tobytes()
  Image.fromarray(halves(RED, GREEN)).save(path, icc_profile=lab)  # wrong colour space: ignored


KINDS = {
  "exif.jpg": (_exif_jpeg, np.concatenate([np.full((8, 8, 3), RED), np.full((8, 8, 3), BLUE)]), 12),
  "palette.png": (_palette_png, halves(RED, WHITE), 0),
  "cmyk.jpg": (_cmyk_jpeg, halves((255, 0, 0), WHITE), 12),
  "gray16.png": (_gray16_png, halves(100, 255), 0),
  "int32_8bit.tif": (_int32_8bit_tiff, halves(100, 200), 0),
  "int32_16bit.tif": (_int32_16bit_tiff, halves(100, 255), 0),
  "rgba.png": (_rgba_png, halves(RED, WHITE), 0),
  "half_alpha.png": (_half_alpha_png, np.full((8, 8, 3), 127), 1),  # black over white, 50%
  "la.png": (_la_png, halves(100, WHITE), 0),
  "srgb_tagged.png": (_srgb_tagged_png, halves(RED, GREEN), 0),
  "swapped_primaries.png": (_swapped_primaries_png, halves(BLUE, (128, 128, 128)), 2),
  "lab_profile.png": (_lab_profile_on_rgb_png, halves(RED, GREEN), 0),
}


@pytest.mark.parametrize("name", sorted(KINDS))
def test_every_kind_of_file_decodes_to_the_expected_rgb(name, read, tmp_path):
  write, expected, tolerance = KINDS[name]
  path = tmp_path / name
  write(path)
  out = read(path)
  assert out.dtype == np.uint8 and out.shape == expected.shape, (out.dtype, out.shape)
  np.testing.assert_allclose(out.astype(int), expected.astype(int), atol=tolerance)


def test_profile_conversion_moves_pixels_the_expected_way(read, tmp_path):
  path = tmp_path / "swapped.png"
  _swapped_primaries_png(path)
  out = read(path).astype(int)
  red_half, grey_half = out[:, :4], out[:, 4:]
  # The file's "red" channel means sRGB blue under its profile: the pixel turns blue.
  assert (red_half[..., 2] > 190).all() and (red_half[..., :2] < 10).all()
  # Greys are unchanged: the profile keeps sRGB's white point and tone curves.
  assert (np.abs(grey_half - 128) <= 2).all()


def test_training_and_stylize_read_a_folder_identically(tmp_path):
  """The held-out stream of a folder holds exactly stylize's pixels of the same files."""
  for name, (write, _, _) in KINDS.items():
    write(tmp_path / name)
  config = base_config("cyclegan")
  config.data.update(
    content=f"folder:{tmp_path}", style=f"folder:{tmp_path}", image_size=8, load_size=8
  )
  batch = input_pipeline.load_eval_batch(config, len(KINDS))["A"]
  for i, name in enumerate(sorted(KINDS)):
    expected = stream.center_crop(stylize.read_image(tmp_path / name), 8)
    np.testing.assert_array_equal(batch[i], expected.astype(np.float32) / 127.5 - 1.0, name)


# ----------------------------------------------------------------------------------------------
# Bad files: a clear error (training skips and counts it; stylize reports one line).
# ----------------------------------------------------------------------------------------------


def _truncated_jpeg(path):
  buf = io.BytesIO()
  Image.fromarray(halves(RED, BLUE, size=64)).save(buf, format="JPEG")
  path.write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])


def _truncated_png(path):
  buf = io.BytesIO()
  Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), np.uint8)).save(
    buf, format="PNG"
  )
  path.write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])


def _text_file(path):
  path.write_text("not an image at all")


def _huge_png_header(path):
  """A PNG that claims 9000 x 9000 pixels (> 8192^2) but holds no pixel data."""

  def chunk(kind, data):
    return (
      struct.pack(">I", len(data))
      + kind
      + data
      + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    )

  ihdr = struct.pack(">IIBBBBB", 9000, 9000, 8, 2, 0, 0, 0)
  path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IEND", b""))


BAD = {
  "truncated.jpg": (_truncated_jpeg, "truncated"),
  "truncated.png": (_truncated_png, "truncated"),
  "notes.png": (_text_file, "not an image"),
  "empty.jpg": (lambda p: p.write_bytes(b""), "not an image"),
  "huge.png": (_huge_png_header, "max_image_pixels"),
}


@pytest.mark.parametrize("name", sorted(BAD))
def test_bad_files_are_clear_errors(name, tmp_path):
  write, match = BAD[name]
  path = tmp_path / name
  write(path)
  with pytest.raises(decode.BadImageError, match=match):
    stream.load_image(path.read_bytes(), load_size=16, max_pixels=MAX_PIXELS)
  with pytest.raises(UserError, match=match) as e:
    stylize.read_image(path)
  assert str(path) in str(e.value) and "\n" not in str(e.value)


def test_stylize_names_a_missing_file_and_applies_the_pixel_limit(tmp_path):
  with pytest.raises(UserError, match="no such image file"):
    stylize.read_image(tmp_path / "missing.png")
  path = tmp_path / "big.png"
  Image.new("RGB", (40, 30)).save(path)
  with pytest.raises(UserError, match="1200 pixels exceeds max_image_pixels=1000"):
    stylize.read_image(path, max_pixels=1000)


def test_one_extension_list_for_training_and_stylize():
  assert stylize.IMAGE_EXTENSIONS is decode.IMAGE_EXTENSIONS
  assert {".jpg", ".png", ".webp", ".gif", ".tif", ".tiff", ".bmp"} <= set(decode.IMAGE_EXTENSIONS)
