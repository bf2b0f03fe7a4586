"""Warping images by a flow field, and the random smooth flows of the temporal regulariser.

`warp(x, flow)` moves the content of NHWC images by `flow` pixels (backward warping with
bilinear interpolation): out[n, i, j] = x[n, i - dy, j - dx], (dy, dx) = flow[n, i, j]. For a
constant integer flow and mode='wrap' it equals `np.roll(x, (dy, dx), axis=(1, 2))` exactly;
mode='edge' repeats the border pixels instead of wrapping, so the two agree away from a border
|flow| pixels wide.

`random_smooth_flow` draws the motion of ReReVST's compound regularisation (Wang et al. 2020,
"Consistent Video Style Transfer via Relaxation and Regularization"): a random translation of
the whole frame plus a smooth local deformation (a coarse random grid, bilinearly upsampled),
the kind of motion consecutive video frames have, with no optical-flow network.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

Array = jax.Array


def _index(i: Array, size: int, mode: str) -> Array:
  if mode == "wrap":
    return jnp.mod(i, size)
  if mode == "edge":
    return jnp.clip(i, 0, size - 1)
  raise ValueError(f"warp mode {mode!r}: use 'edge' or 'wrap'")


def warp(x: Array, flow: Array, mode: str = "edge") -> Array:
  """Moves the content of x by flow pixels, bilinearly interpolated.

  Args:
    x: images [N, H, W, C] (any float dtype; computed in float32).
    flow: displacements [N or 1, H, W, 2] in pixels, (dy, dx): content at (i, j) moves to
      (i + dy, j + dx); constant flows broadcast from [N or 1, 1, 1, 2].
    mode: 'edge' (samples outside the image take the nearest border pixel) or 'wrap'.
  Returns:
    float32 [N, H, W, C]; integer flows reproduce (rolled) pixels exactly.
  """
  x = jnp.asarray(x, jnp.float32)
  n, h, w, _ = x.shape
  flow = jnp.broadcast_to(jnp.asarray(flow, jnp.float32), (n, h, w, 2))
  ys = jnp.arange(h, dtype=jnp.float32)[None, :, None] - flow[..., 0]
  xs = jnp.arange(w, dtype=jnp.float32)[None, None, :] - flow[..., 1]
  y0, x0 = jnp.floor(ys), jnp.floor(xs)
  fy, fx = (ys - y0)[..., None], (xs - x0)[..., None]
  y0, x0 = y0.astype(jnp.int32), x0.astype(jnp.int32)
  y1, x1 = _index(y0 + 1, h, mode), _index(x0 + 1, w, mode)
  y0, x0 = _index(y0, h, mode), _index(x0, w, mode)
  b = jnp.arange(n)[:, None, None]
  top = x[b, y0, x0] * (1 - fx) + x[b, y0, x1] * fx
  bottom = x[b, y1, x0] * (1 - fx) + x[b, y1, x1] * fx
  return top * (1 - fy) + bottom * fy


def random_smooth_flow(
  key: Array, n: int, h: int, w: int, max_shift: float, grid: int = 4
) -> Array:
  """Random smooth motion fields [n, h, w, 2] (dy, dx) of at most max_shift pixels.

  Half of the range is a translation of the whole image (uniform in [-max_shift/2,
  max_shift/2] per axis), half a local deformation: a grid x grid field of uniform
  displacements in the same range, bilinearly upsampled to h x w.
  """
  k_global, k_local = jax.random.split(key)
  half = max_shift / 2
  shift = jax.random.uniform(k_global, (n, 1, 1, 2), minval=-half, maxval=half)
  coarse = jax.random.uniform(k_local, (n, grid, grid, 2), minval=-half, maxval=half)
  local = jax.image.resize(coarse, (n, h, w, 2), "linear")
  return shift + local
