"""Kernel gradients of a convolution for the two cases XLA's CPU kernel gradient is slow at.

Both give d loss / d kernel of `lax.conv_general_dilated(x, kernel, strides, padding)` (NHWC
input, HWIO kernel) from the output gradient dy, in float32:
- `kernel_grad_by_image`, for batches whose input outgrows the caches: XLA's kernel gradient
  slows down several-fold there, computed image by image it does not;
- `kernel_grad_few_outputs`, for stride-1 layers with few output channels (an RGB output
  layer): dy's shifted copies are then small, and the gradient is one matmul with the input.
"""

from __future__ import annotations

from typing import Sequence

import jax
import jax.numpy as jnp

Array = jax.Array
Padding = tuple[tuple[int, int], tuple[int, int]]

_DN = ("NHWC", "HWIO", "NHWC")


def kernel_grad_by_image(
  x: Array, dy: Array, kernel_shape: Sequence[int], strides: tuple[int, int], padding: Padding
) -> Array:
  """The kernel gradient, one image at a time.

  For each image, the kernel gradient is itself a convolution: the input with its channels
  as the batch ([I, H, W, 1]) correlated with dy as the kernel ([h, w, 1, O], dilated by the
  stride), giving [I, kh, kw, O]. The images are summed in a loop.
  """
  kh, kw = kernel_shape[:2]
  pads = []
  for size, k, s, (lo, _), out in zip(x.shape[1:3], (kh, kw), strides, padding, dy.shape[1:3]):
    # Pad high just enough that the dilated dy window fits exactly k times (may crop).
    pads.append((lo, k + s * (out - 1) - size - lo))

  def one(acc, xy):
    xi, dyi = xy
    lhs = xi[None].transpose(3, 1, 2, 0)  # [I, H, W, 1]
    rhs = dyi[None].transpose(1, 2, 0, 3)  # [h, w, 1, O]
    g = jax.lax.conv_general_dilated(
      lhs, rhs, (1, 1), pads, rhs_dilation=strides, dimension_numbers=_DN
    )
    return acc + g.astype(jnp.float32), None

  acc = jnp.zeros((x.shape[-1], kh, kw, dy.shape[-1]), jnp.float32)
  acc, _ = jax.lax.scan(one, acc, (x, dy))
  return acc.transpose(1, 2, 0, 3)


def kernel_grad_few_outputs(
  x: Array, dy: Array, kernel_shape: Sequence[int], padding: Padding
) -> Array:
  """The kernel gradient of a stride-1 convolution with few output channels, as one matmul.

  dW[i, j, :, o] = sum_{n, y, x} xp[n, y, x, :] * dy[n, y - i, x - j, o] over the padded input
  xp: dy's k*k shifted copies ([N, Hp, Wp, k*k*O], small because O is) times xp. The copies
  are made in two passes, kh row shifts and then kw column shifts of those (kh + kw slices
  rather than kh * kw: each slice is a kernel XLA compiles).
  """
  kh, kw = kernel_shape[:2]
  xp = jnp.pad(x, ((0, 0), *padding, (0, 0)))
  hp, wp = xp.shape[1:3]
  h, w, o = dy.shape[1:]
  dp = jnp.pad(dy, ((0, 0), (kh - 1, hp - h), (kw - 1, wp - w), (0, 0)))
  rows = jnp.concatenate([dp[:, kh - 1 - i : kh - 1 - i + hp] for i in range(kh)], axis=-1)
  shifted = jnp.concatenate([rows[:, :, kw - 1 - j : kw - 1 - j + wp] for j in range(kw)], axis=-1)
  g = jnp.einsum("nyxq,nyxc->qc", shifted, xp, preferred_element_type=jnp.float32)
  return g.reshape(kw, kh, o, x.shape[-1]).transpose(1, 0, 3, 2)
