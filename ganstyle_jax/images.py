"""At the I/O boundary: uint8 HWC RGB <-> float32 NHWC in [-1, 1], and size capping."""

import numpy as np
from PIL import Image


def to_float(img: np.ndarray) -> np.ndarray:
  """uint8 [H, W, 3] -> float32 [1, H, W, 3] in [-1, 1]."""
  return img.astype(np.float32)[None] / 127.5 - 1.0


def to_uint8(x) -> np.ndarray:
  """Float in [-1, 1] (any shape; clipped) -> uint8 in [0, 255], rounded."""
  return np.asarray(np.clip((np.asarray(x, np.float32) + 1.0) * 127.5 + 0.5, 0, 255), np.uint8)


def limit_size(img: np.ndarray, max_size: int | None) -> np.ndarray:
  """Downscales so the long side is at most max_size (aspect ratio kept)."""
  if not max_size or max(img.shape[:2]) <= max_size:
    return img
  h, w = img.shape[:2]
  s = max_size / max(h, w)
  size = (max(1, round(w * s)), max(1, round(h * s)))
  return np.asarray(Image.fromarray(img).resize(size, Image.Resampling.LANCZOS))
