"""3x3 stride-1 convolutions by Winograd's minimal filtering F(m x m, 3 x 3), m = 2 or 4, with
their gradients.

F(m x m, 3 x 3) (Lavin & Gray 2016): an m x m output tile is A^T [(G k G^T) * (B^T d B)] A for
its (m+2) x (m+2) input tile d (tiles overlap by 2). The elementwise products summed over input
channels are one batched matmul, [tile position, tiles, I] x [tile position, I, O], with
(m+2)^2 / (9 m^2) of the direct convolution's multiplications: F(2x2, 3x3) 0.44, F(4x4, 3x3)
0.25. The input transform is sums of strided slices with constant coefficients (zeros
skipped), which XLA fuses into a few loops; the kernel's and the output's 2-D transforms are
each one matmul by a constant matrix (the Kronecker product of the 1-D transform with itself).
As matmuls those two keep the traced program small (about 470 HLO instructions for a layer's
forward and backward, against 1100 with every transform as slice sums), so a step compiles
in a fifth to a quarter less time and runs as fast; the input transform as a matmul ran 2x
slower, since its stacked tiles are materialised (experiments/benchmarks/README.md, "Compile
time"). The gradients are the transposes of the transforms and of the batched matmul, each
one batched matmul of the forward's size. In float32 the result equals XLA's convolution to
within rounding (F(4x4, 3x3) a little coarser than F(2x2, 3x3)); it is not meant for bf16,
whose transforms would round coarsely.
"""

from __future__ import annotations

import functools
from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np

Array = jax.Array
Padding = tuple[tuple[int, int], tuple[int, int]]

# m: (B^T, G, A^T).
_MATRICES = {
  2: (
    (
      (1, 0, -1, 0),  # B^T
      (0, 1, 1, 0),
      (0, -1, 1, 0),
      (0, 1, 0, -1),
    ),
    (
      (1, 0, 0),  # G
      (1 / 2, 1 / 2, 1 / 2),
      (1 / 2, -1 / 2, 1 / 2),
      (0, 0, 1),
    ),
    (
      (1, 1, 1, 0),  # A^T
      (0, 1, -1, -1),
    ),
  ),
  4: (
    (
      (4, 0, -5, 0, 1, 0),
      (0, -4, -4, 1, 1, 0),
      (0, 4, -4, -1, 1, 0),
      (0, -2, -1, 2, 1, 0),
      (0, 2, -1, -2, 1, 0),
      (0, 4, 0, -5, 0, 1),
    ),
    (
      (1 / 4, 0, 0),
      (-1 / 6, -1 / 6, -1 / 6),
      (-1 / 6, 1 / 6, -1 / 6),
      (1 / 24, 1 / 12, 1 / 6),
      (1 / 24, -1 / 12, 1 / 6),
      (0, 0, 1),
    ),
    ((1, 1, 1, 1, 1, 0), (0, 1, -1, 2, -2, 0), (0, 1, 1, 4, 4, 0), (0, 1, -1, 8, -8, 1)),
  ),
}


@functools.cache  # built once per (m, which), at trace time
def _matrix(m: int, which: str) -> np.ndarray:
  """The kernel's and the output's 2-D transforms as matrices over flattened tiles (Kronecker
  products of the 1-D ones): 'kernel' [(m+2)^2, 9], (J, I) of the transformed tile (in
  _input's order: column, row) from the kernel's (row, column); 'output' [m^2, (m+2)^2],
  (column d, row c) of the output tile from (J, I)."""
  _, g, at = (np.asarray(a, np.float64) for a in _MATRICES[m])
  a = m + 2
  if which == "kernel":
    out = np.einsum("Jj,Ii->JIij", g, g).reshape(a * a, 9)
  elif which == "output":
    out = np.einsum("dJ,cI->dcJI", at, at).reshape(m * m, a * a)
  else:
    raise ValueError(f"no matrix {which!r}")
  return out.astype(np.float32)


def _times(matrix: np.ndarray, x: Array) -> Array:
  """matrix [P, Q] times x [Q, ...], in full float32 precision."""
  return jnp.tensordot(jnp.asarray(matrix, x.dtype), x, axes=1, precision=jax.lax.Precision.HIGHEST)


def _combine(coefficients: Sequence[float], arrays: Sequence[Array]) -> Array:
  """sum_i c_i * a_i, skipping zero coefficients (the transforms are sparse)."""
  out = None
  for c, a in zip(coefficients, arrays):
    if c:
      term = a if c == 1 else -a if c == -1 else a * c
      out = term if out is None else out + term
  return out


def _transpose(matrix):
  return tuple(zip(*matrix))


def _input(xp: Array, m: int) -> Array:
  """Tiles of xp [N, mT+2, mS+2, C] (stride m, size m+2), transformed: [(m+2)^2, N*T*S, C]."""
  bt = _MATRICES[m][0]
  a = len(bt)
  h, w = xp.shape[1] - 2, xp.shape[2] - 2
  rows = [xp[:, i : i + h : m] for i in range(a)]
  r = jnp.stack([_combine(b, rows) for b in bt])  # [a, N, T, mS+2, C]
  cols = [r[:, :, :, j : j + w : m] for j in range(a)]
  v = jnp.stack([_combine(b, cols) for b in bt])  # [a, a, N, T, S, C]
  return v.reshape(a * a, -1, xp.shape[-1])


def _overlap_add(parts: Sequence[Array], m: int, axis: int) -> Array:
  """The transpose of taking the tile slices [j::m] (j < m+2) of an axis of length mT+2:
  parts[j] [.., T, ..] -> [.., mT+2, ..] (overlapping tiles add)."""
  t = parts[0].shape[axis]
  widths = [(0, 0)] * parts[0].ndim

  def shifted(part, by):
    widths[axis] = (by, 1 - by)
    return jnp.pad(part, widths)

  phases = [
    shifted(parts[p], 0) + shifted(parts[p + m], 1) if p + m < len(parts) else shifted(parts[p], 0)
    for p in range(m)
  ]
  out = jnp.stack(phases, axis=axis + 1)  # [.., T+1, m, ..]
  out = out.reshape(*out.shape[:axis], m * (t + 1), *out.shape[axis + 2 :])
  return jax.lax.slice_in_dim(out, 0, m * t + 2, axis=axis)


def _input_transpose(dv: Array, m: int, n: int, t: int, s: int) -> Array:
  """The transpose of _input: [(m+2)^2, N*T*S, C] -> [N, mT+2, mS+2, C]."""
  b_ = _transpose(_MATRICES[m][0])
  a = len(b_)
  dv = dv.reshape(a, a, n, t, s, -1)
  cols = [_combine(c, list(dv)) for c in b_]  # a x [a(q), N, T, S, C]
  r = _overlap_add(cols, m, axis=3)  # [a(q), N, T, mS+2, C]
  rows = [_combine(c, [r[q] for q in range(a)]) for c in b_]  # a x [N, T, mS+2, C]
  return _overlap_add(rows, m, axis=1)


def _kernel(kernel: Array, m: int) -> Array:
  """G k G^T of a [3, 3, I, O] kernel: [(m+2)^2, I, O], in _input's tile order."""
  u = _times(_matrix(m, "kernel"), kernel.reshape(9, -1))
  return u.reshape(-1, *kernel.shape[2:])


def _kernel_transpose(du: Array, m: int) -> Array:
  """The transpose of _kernel: [(m+2)^2, I, O] -> [3, 3, I, O]."""
  return _times(_matrix(m, "kernel").T, du.reshape(du.shape[0], -1)).reshape(3, 3, *du.shape[1:])


def _output(mm: Array, m: int, n: int, t: int, s: int) -> Array:
  """A^T M A of the products [(m+2)^2, N*T*S, O]: the output [N, mT, mS, O]."""
  y = _times(_matrix(m, "output"), mm.reshape(mm.shape[0], -1)).reshape(m, m, n, t, s, -1)
  return y.transpose(2, 3, 1, 4, 0, 5).reshape(n, m * t, m * s, -1)  # y: [d, c, N, T, S, O]


def _output_transpose(dy: Array, m: int) -> Array:
  """The transpose of _output: dy [N, mT, mS, O] -> [(m+2)^2, N*T*S, O]."""
  n, h, w, o = dy.shape
  d = dy.reshape(n, h // m, m, w // m, m, o).transpose(4, 2, 0, 1, 3, 5)  # [d, c, N, T, S, O]
  return _times(_matrix(m, "output").T, d.reshape(m * m, -1)).reshape((m + 2) ** 2, -1, o)


def _tiles(xp: Array, m: int) -> tuple[Array, int, int]:
  """xp [N, H+2, W+2, C] zero-padded at the bottom and right to whole tiles: (xp, T, S)."""
  t, s = -(-(xp.shape[1] - 2) // m), -(-(xp.shape[2] - 2) // m)
  return (
    jnp.pad(xp, ((0, 0), (0, m * t + 2 - xp.shape[1]), (0, m * s + 2 - xp.shape[2]), (0, 0))),
    t,
    s,
  )


def _pad(x: Array, padding: Padding) -> Array:
  return jnp.pad(x, ((0, 0), *padding, (0, 0)))


# Jitted (and so traced once per shape, not once per layer), with everything they depend on
# as arguments.
@functools.partial(jax.jit, static_argnums=(2, 3))
def conv(x: Array, kernel: Array, padding: Padding, m: int) -> Array:
  """3x3 stride-1 convolution of x [N, H, W, I] zero-padded by `padding` with kernel
  [3, 3, I, O], by F(m x m, 3 x 3)."""
  xp = _pad(x, padding)
  n, hp, wp, _ = xp.shape
  xp, t, s = _tiles(xp, m)
  mm = jnp.einsum("pti,pio->pto", _input(xp, m), _kernel(kernel, m))
  return _output(mm, m, n, t, s)[:, : hp - 2, : wp - 2]


@functools.partial(jax.jit, static_argnums=(2, 3))
def conv_grads(x: Array, kernel: Array, padding: Padding, m: int, dy: Array) -> tuple[Array, Array]:
  """(dx, dkernel) of `conv` given dy, both from the gradient of the products."""
  n, h, w, _ = dy.shape
  xp, t, s = _tiles(_pad(x, padding), m)
  dm = _output_transpose(jnp.pad(dy, ((0, 0), (0, m * t - h), (0, m * s - w), (0, 0))), m)
  dk = _kernel_transpose(jnp.einsum("pti,pto->pio", _input(xp, m), dm), m)
  dv = jnp.einsum("pto,pio->pti", dm, _kernel(kernel, m))
  dxp = _input_transpose(dv, m, n, t, s)
  (top, _), (left, _) = padding
  return dxp[:, top : top + x.shape[1], left : left + x.shape[2]], dk
