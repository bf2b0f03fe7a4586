"""`conv_transpose_x2`: PyTorch's ConvTranspose2d(3, stride=2, padding=1, output_padding=1).

On the CPU one matmul by the kernel's 9 taps and shifted sums, with a written-out backward
(`phases`). Everywhere else one 2x2 convolution to 4x the channels (one channel group per
output phase, weights gathered from the 3x3 kernel, zeros where a phase takes no tap), then
depth-to-space ('sub-pixel' form): 16 taps, 9 of them the kernel's. On the CPU the matmul form
runs forward and both gradients 2.5-3.3x faster than the sub-pixel convolution, in a program no
larger (experiments/benchmarks/README.md).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from ganstyle_jax.ops import phases
from ganstyle_jax.ops.conv import DEFAULT, ConvPolicy, conv2d

Array = jax.Array


def subpixel_kernel(kernel: Array) -> Array:
  """Rearranges a 3x3 transposed-conv kernel [3, 3, I, O] into a 2x2 conv kernel [2, 2, I, 4*O]
  (output channels ordered (row phase, column phase, o))."""
  tap_of = {to: tap for tap, to in phases.TAP_TO.items()}  # (phase, offset) -> tap
  zeros = jnp.zeros(kernel.shape[2:], kernel.dtype)
  rows = []
  for a in range(2):
    cols = []
    for b in range(2):
      blocks = [tap_of.get(((py, px), (a, b))) for py in range(2) for px in range(2)]
      cols.append(jnp.concatenate([zeros if t is None else kernel[t] for t in blocks], axis=-1))
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


# The CPU's form in a custom VJP whose forward and backward each choose by platform: so the
# lowering for one platform holds one form only.
@functools.partial(jax.custom_vjp, nondiff_argnums=(2,))
def _conv_transpose(x: Array, kernel: Array, policy: ConvPolicy) -> Array:
  return jax.lax.platform_dependent(
    x, kernel, cpu=phases.upsample, default=lambda x, k: _subpixel(x, k, policy)
  )


def _fwd(x, kernel, policy):
  return _conv_transpose(x, kernel, policy), (x, kernel)


def _bwd(policy, res, dy):
  x, kernel = res
  subpixel = lambda x, k: _subpixel(x, k, policy)
  return jax.lax.platform_dependent(
    x,
    dy,
    cpu=lambda x, dy: phases.upsample_grads(x, kernel, dy),
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
