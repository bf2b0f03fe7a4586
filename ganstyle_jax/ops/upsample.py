"""`conv_transpose_x2`: PyTorch's ConvTranspose2d(3, stride=2, padding=1, output_padding=1).

Each output pixel (2i + py, 2j + px) takes at most four of the 3x3 kernel's taps, from the
input pixels (i + a, j + b), a, b in {0, 1}; each tap feeds one output phase (py, px) from one
input offset (a, b). Everywhere but the CPU the layer is one 2x2 convolution to 4x the channels
(one channel group per output phase, weights gathered from the 3x3 kernel, zeros where a phase
takes no tap), then depth-to-space ('sub-pixel' form): 16 taps, 9 of them the kernel's. On the
CPU it is one matmul of the input by all 9 taps, [N H W, I] x [I, 9 O], whose 9 outputs are
shifted by their offset and summed into the phases; the gradients are written out: the shifts'
transposes stacked into one [N H W, 9 O] array, then one matmul each for the input's and the
kernel's. Forward and both gradients 2.5-3x faster than the sub-pixel convolution, in a
program no larger (experiments/benchmarks/README.md).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from ganstyle_jax.ops.conv import DEFAULT, ConvPolicy, conv2d

Array = jax.Array

# For output phase p (0: even, 1: odd pixel) and input offset a (0: same pixel, 1: next pixel),
# the 3x3 transposed-conv tap that connects them (None: no connection). Derived from
# out[2i - 1 + k] += x[i] * w[k] (stride 2, padding 1, output_padding 1).
_PHASE_TAPS = ((1, None), (2, 0))


def _taps(a: int, b: int) -> list[tuple[tuple[int, int], tuple[int, int]]]:
  """(output phase (py, px), kernel tap (ky, kx)) of the input offset (a, b)."""
  return [
    ((py, px), (_PHASE_TAPS[py][a], _PHASE_TAPS[px][b]))
    for py in range(2)
    for px in range(2)
    if _PHASE_TAPS[py][a] is not None and _PHASE_TAPS[px][b] is not None
  ]


def subpixel_kernel(kernel: Array) -> Array:
  """Rearranges a 3x3 transposed-conv kernel [3, 3, I, O] into a 2x2 conv kernel [2, 2, I, 4*O]
  (output channels ordered (row phase, column phase, o))."""
  zeros = jnp.zeros(kernel.shape[2:], kernel.dtype)
  rows = []
  for a in range(2):
    cols = []
    for b in range(2):
      taps = dict(_taps(a, b))
      phases = [taps.get((py, px)) for py in range(2) for px in range(2)]
      cols.append(jnp.concatenate([zeros if t is None else kernel[t] for t in phases], axis=-1))
    rows.append(jnp.stack(cols))
  return jnp.stack(rows)


def depth_to_space(x: Array, block: int = 2) -> Array:
  """[N, H, W, b*b*C] -> [N, b*H, b*W, C], channel index ordered (row phase, col phase, c)."""
  n, h, w, c = x.shape
  c_out = c // (block * block)
  x = x.reshape(n, h, w, block, block, c_out)
  x = x.transpose(0, 1, 3, 2, 4, 5)
  return x.reshape(n, h * block, w * block, c_out)


def _subpixel(x: Array, kernel: Array, policy: ConvPolicy) -> Array:
  y = conv2d(x, subpixel_kernel(kernel), padding=((0, 1), (0, 1)), policy=policy)
  return depth_to_space(y, 2)


# Tap (ky, kx) -> (output phase (py, px), input offset (a, b)).
_TAP_TO = {
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


def _by_taps(x: Array, kernel: Array) -> Array:
  """The layer as one matmul of x by the 9 taps, then shifted sums into the phases."""
  n, h, w, _ = x.shape
  o = kernel.shape[-1]
  z = jnp.einsum("nhwi,io->nhwo", x, _taps_matrix(kernel)).reshape(n, h, w, 3, 3, o)
  phases = {}
  for tap, (phase, offset) in _TAP_TO.items():
    part = _shift(z[..., tap[0], tap[1], :], *offset)
    phases[phase] = phases[phase] + part if phase in phases else part
  rows = [jnp.stack([phases[py, px] for px in range(2)], axis=3) for py in range(2)]
  return jnp.stack(rows, axis=2).reshape(n, 2 * h, 2 * w, o)  # [N, H, py, W, px, O]


def _by_taps_grads(x: Array, kernel: Array, dy: Array) -> tuple[Array, Array]:
  """The gradients of _by_taps (XLA's derivative of its 9 shifted sums adds 9 padded copies
  of the whole tap array: 2x slower than this)."""
  n, h, w, i = x.shape
  o = kernel.shape[-1]
  d = dy.reshape(n, h, 2, w, 2, o)
  taps = [
    _unshift(d[:, :, py, :, px], *offset) for _, ((py, px), offset) in sorted(_TAP_TO.items())
  ]
  dz = jnp.stack(taps, axis=3).reshape(n, h, w, 9 * o)
  dx = jnp.einsum("nhwo,io->nhwi", dz, _taps_matrix(kernel))
  dk = jnp.einsum("nhwi,nhwo->io", x, dz).reshape(i, 3, 3, o).transpose(1, 2, 0, 3)
  return dx, dk


# The CPU's form in a custom VJP whose forward and backward each choose by platform: so the
# lowering for one platform holds one form only.
@functools.partial(jax.custom_vjp, nondiff_argnums=(2,))
def _conv_transpose(x: Array, kernel: Array, policy: ConvPolicy) -> Array:
  return jax.lax.platform_dependent(
    x, kernel, cpu=_by_taps, default=lambda x, k: _subpixel(x, k, policy)
  )


def _fwd(x, kernel, policy):
  return _conv_transpose(x, kernel, policy), (x, kernel)


def _bwd(policy, res, dy):
  x, kernel = res
  subpixel = lambda x, k: _subpixel(x, k, policy)
  return jax.lax.platform_dependent(
    x,
    dy,
    cpu=lambda x, dy: _by_taps_grads(x, kernel, dy),
    default=lambda x, dy: jax.vjp(subpixel, x, kernel)[1](dy),
  )


_conv_transpose.defvjp(_fwd, _bwd)


def conv_transpose_x2(x: Array, kernel: Array, policy: ConvPolicy = DEFAULT) -> Array:
  """x2 upsampling by PyTorch's ConvTranspose2d(3, stride=2, padding=1, output_padding=1):
  x [N, H, W, I] -> [N, 2H, 2W, O].

  Args:
    x: [N, H, W, I].
    kernel: [3, 3, I, O] in scatter form, out[2i - 1 + k] += x[i] * kernel[k] (a PyTorch
      ConvTranspose2d weight [I, O, kh, kw] converts by a transpose to [kh, kw, I, O]); x's
      dtype.
    policy: on the CPU, one matmul by the 9 taps unless `policy.transpose_as_matmul` is off
      or `policy.xla_only` on; otherwise (and on other platforms) the sub-pixel convolution
      by `conv2d`.
  """
  if policy.xla_only or not policy.transpose_as_matmul:
    return _subpixel(x, kernel, policy)
  return _conv_transpose(x, kernel, policy)
