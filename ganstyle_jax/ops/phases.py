"""3x3 stride-2 layers computed by output phases, on the CPU: the x2 transposed convolution
(PyTorch's ConvTranspose2d(3, stride=2, padding=1, output_padding=1)) and the gradients of its
adjoint, the 3x3 stride-2 convolution with padding 1.

The transposed convolution T (kernel [3, 3, I, O] in scatter form, out[2i - 1 + k] += x[i] *
kernel[k]): each output pixel (2i + py, 2j + px) takes at most four of the 9 taps, from the
input pixels (i + a, j + b), a, b in {0, 1}; each tap feeds one output phase (py, px) from one
input offset (a, b). So T is one matmul of the input by all 9 taps, [N H W, I] x [I, 9 O],
whose outputs are shifted by their offset and summed into the phases (`upsample`). Its adjoint
T* takes the 9 (phase, offset) slices of a [N, 2H, 2W, O] array, stacked into [N H W, 9 O],
times the taps' transpose: that is the 3x3 stride-2 correlation with padding 1 by the kernel
with its channel axes swapped. Each of these, and the kernel gradients, is one matmul.
XLA's derivative of the shifted sums would add 9 padded copies of the whole tap array, so the
gradients are written out (`upsample_grads`, `stride2_grads`). Timings:
experiments/benchmarks/README.md.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

Array = jax.Array

# For output phase p (0: even, 1: odd pixel) and input offset a (0: same pixel, 1: next pixel),
# the 3x3 transposed-conv tap that connects them (None: no connection). Derived from
# out[2i - 1 + k] += x[i] * w[k] (stride 2, padding 1, output_padding 1).
_PHASE_TAPS = ((1, None), (2, 0))


# Tap (ky, kx) -> (output phase (py, px), input offset (a, b)).
TAP_TO = {
  (_PHASE_TAPS[py][a], _PHASE_TAPS[px][b]): ((py, px), (a, b))
  for py in range(2)
  for px in range(2)
  for a in range(2)
  for b in range(2)
  if _PHASE_TAPS[py][a] is not None and _PHASE_TAPS[px][b] is not None
}


def _shift(z: Array, a: int, b: int) -> Array:
  """z[:, i + a, j + b], zero beyond the edge."""
  return jnp.pad(z[:, a:, b:], ((0, 0), (0, a), (0, b), (0, 0)))


def _unshift(d: Array, a: int, b: int) -> Array:
  """The transpose of _shift: d[:, i - a, j - b], zero before the edge."""
  h, w = d.shape[1:3]
  return jnp.pad(d, ((0, 0), (a, 0), (b, 0), (0, 0)))[:, :h, :w]


def _taps_matrix(kernel: Array) -> Array:
  """[3, 3, I, O] -> [I, 9 O], columns ordered (ky, kx, o)."""
  i, o = kernel.shape[2:]
  return kernel.transpose(2, 0, 1, 3).reshape(i, 9 * o)


def upsample(x: Array, kernel: Array) -> Array:
  """T: [N, H, W, I] -> [N, 2H, 2W, O], one matmul of x by the 9 taps, then shifted sums
  into the phases."""
  n, h, w, _ = x.shape
  o = kernel.shape[-1]
  z = jnp.einsum("nhwi,io->nhwo", x, _taps_matrix(kernel)).reshape(n, h, w, 3, 3, o)
  out = {}  # phase -> [N, H, W, O]
  for tap, (phase, offset) in TAP_TO.items():
    part = _shift(z[..., tap[0], tap[1], :], *offset)
    out[phase] = out[phase] + part if phase in out else part
  rows = [jnp.stack([out[py, px] for px in range(2)], axis=3) for py in range(2)]
  return jnp.stack(rows, axis=2).reshape(n, 2 * h, 2 * w, o)  # [N, H, py, W, px, O]


def _phase_stack(d: Array) -> Array:
  """The 9 (phase, offset) slices of d [N, 2H, 2W, C], in tap order: [N, H, W, 9 C]."""
  n, h2, w2, c = d.shape
  d = d.reshape(n, h2 // 2, 2, w2 // 2, 2, c)
  slices = [
    _unshift(d[:, :, py, :, px], *offset) for _, ((py, px), offset) in sorted(TAP_TO.items())
  ]
  return jnp.stack(slices, axis=3).reshape(n, h2 // 2, w2 // 2, 9 * c)


def upsample_grads(x: Array, kernel: Array, dy: Array) -> tuple[Array, Array]:
  """The gradients of `upsample` with respect to x and the kernel."""
  i, o = kernel.shape[2:]
  dz = _phase_stack(dy)
  dx = jnp.einsum("nhwo,io->nhwi", dz, _taps_matrix(kernel))
  dk = jnp.einsum("nhwi,nhwo->io", x, dz).reshape(i, 3, 3, o).transpose(1, 2, 0, 3)
  return dx, dk


def stride2_grads(x: Array, kernel: Array, dy: Array) -> tuple[Array, Array]:
  """The gradients of the 3x3 stride-2 correlation with padding 1 at the top and left, x
  [N, 2H, 2W, I] by kernel [3, 3, I, O] to [N, H, W, O] (T* with the kernel's channel axes
  swapped): the input's is T of dy, the kernel's one matmul of dy with x's phase slices."""
  i, o = kernel.shape[2:]
  dx = upsample(dy, kernel.transpose(0, 1, 3, 2))
  dk = jnp.einsum("nhwo,nhwk->ok", dy, _phase_stack(x)).reshape(o, 3, 3, i)
  return dx, dk.transpose(1, 2, 3, 0)
