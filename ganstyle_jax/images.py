"""Conversions at the I/O boundary: uint8 HWC RGB <-> float32 NHWC in [-1, 1]."""
import numpy as np


def to_float(img: np.ndarray) -> np.ndarray:
  """uint8 [H, W, 3] -> float32 [1, H, W, 3] in [-1, 1]."""
  return img.astype(np.float32)[None] / 127.5 - 1.0


def to_uint8(x) -> np.ndarray:
  """Float in [-1, 1] (any shape; clipped) -> uint8 in [0, 255], rounded."""
  return np.asarray(np.clip((np.asarray(x, np.float32) + 1.0) * 127.5 + 0.5, 0, 255), np.uint8)
