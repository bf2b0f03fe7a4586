"""At the I/O boundary: uint8 HWC RGB <-> float32 NHWC in [-1, 1], size capping, and the
images of a sample grid."""

import numpy as np
from PIL import Image

from ganstyle_jax.errors import UserError


def to_float(img: np.ndarray) -> np.ndarray:
  """uint8 [H, W, 3] -> float32 [1, H, W, 3] in [-1, 1]."""
  return img.astype(np.float32)[None] / 127.5 - 1.0


def to_uint8(x) -> np.ndarray:
  """Float in [-1, 1] (any shape; clipped) -> uint8 in [0, 255], rounded."""
  return np.asarray(np.clip((np.asarray(x, np.float32) + 1.0) * 127.5 + 0.5, 0, 255), np.uint8)


def check_max_size(max_size: int | None) -> None:
  if max_size is not None and max_size < 1:
    raise UserError(f"--max_size={max_size}: use a positive number of pixels (the long side)")


def limit_size(img: np.ndarray, max_size: int | None) -> np.ndarray:
  """Downscales so the long side is at most max_size (aspect ratio kept; None: as it is)."""
  check_max_size(max_size)
  if not max_size or max(img.shape[:2]) <= max_size:
    return img
  h, w = img.shape[:2]
  s = max_size / max(h, w)
  size = (max(1, round(w * s)), max(1, round(h * s)))
  return np.asarray(Image.fromarray(img).resize(size, Image.Resampling.LANCZOS))


def grid_cells(grid: np.ndarray, size: int) -> list[list[np.ndarray]]:
  """The images of a sample grid (train.sample_grid, 2 px gutters) of size x size images:
  a list of rows, each a list of uint8 [size, size, 3].

  Raises:
    ValueError: grid is not a sample grid of that image size.
  """
  g = 2
  h, w = grid.shape[:2]
  if grid.ndim != 3 or (h - g) % (size + g) or (w - g) % (size + g):
    raise ValueError(f"a {w}x{h} image is not a sample grid of {size} px images")
  step = size + g
  return [
    [grid[y : y + size, x : x + size] for x in range(g, w - g, step)] for y in range(g, h - g, step)
  ]
