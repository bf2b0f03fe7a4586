"""`conv2d`: `lax.conv_general_dilated` with CPU paths chosen per layer by a `ConvPolicy`."""

from __future__ import annotations

import dataclasses
import functools
import math
from typing import Literal, Sequence

import jax
import jax.numpy as jnp

from ganstyle_jax.ops import kernel_grads, phases, winograd

Array = jax.Array
Padding = tuple[tuple[int, int], tuple[int, int]]
Path = Literal[
  "xla", "winograd_2", "winograd_4", "stride2_phases", "few_outputs", "im2col", "by_image"
]

_DN = ("NHWC", "HWIO", "NHWC")


@dataclasses.dataclass(frozen=True)
class ConvPolicy:
  """Which path `conv2d` computes a layer by on the CPU: a static, hashable value, so traces
  made under different policies are never shared.

  3x3 stride-1 float32 layers with at least `winograd_channels` input and output channels run
  by Winograd F(4x4, 3x3), or F(2x2, 3x3) for outputs smaller than `winograd_tile4_size`, or
  not at all for outputs smaller than `winograd_min_size` (little time saved, compile time
  spent). With `stride2_phases`, 3x3 stride-2 layers padded by 1 at the top and left, of even
  height and width, have their gradients by `phases.stride2_grads` (XLA's forward). Of the
  other layers, those with fewer than `few_outputs` output channels take
  `kernel_grad_few_outputs` (stride 1); with `im2col_bytes` > 0, other stride-1 layers whose
  kernel is not 3x3 (7x7 and 4x4 layers; the sub-pixel upsampling's 2x2 where it is used) are
  one matmul of their patches (`im2col`) while the patches take at most `im2col_bytes` (off
  by default: 2-2.7x faster as single layers, not shown faster in whole steps, and it
  lengthens compiles; experiments/benchmarks/README.md); those with more than one image and a
  batch input or output over `by_image_bytes` take `kernel_grad_by_image`; the rest take XLA's
  convolution and gradients. `transpose_as_matmul`: `conv_transpose_x2` as one matmul by its
  9 taps (else as the sub-pixel convolution). `xla_only`: XLA's convolution and gradients for
  every layer. The defaults are the measured thresholds (experiments/benchmarks/README.md).
  """

  winograd_channels: int = 64
  winograd_min_size: int = 8
  winograd_tile4_size: int = 16
  few_outputs: int = 16
  im2col_bytes: int = 0
  by_image_bytes: int = 4 * 2**20
  transpose_as_matmul: bool = True
  stride2_phases: bool = True
  xla_only: bool = False

  @classmethod
  def xla(cls) -> ConvPolicy:
    """XLA's own convolutions and gradients everywhere, for XLA's cost analysis: it counts the
    body of `kernel_grad_by_image`'s image loop once and Winograd's multiplications rather than
    the convolution's, so FLOP counts of a step traced with this policy are the direct
    convolutions' (what PyTorch's FlopCounterMode counts)."""
    return cls(xla_only=True)

  def cpu_path(self, x: Array, kernel: Array, strides: tuple[int, int], padding: Padding) -> Path:
    """The path of a layer with input x, kernel [kh, kw, I, O], strides and explicit padding:
    Winograd F(4x4, 3x3) or F(2x2, 3x3), the patches' matmul (im2col), XLA's convolution with
    XLA's kernel gradient, or XLA's convolution with the gradients by output phases
    (`phases.stride2_grads`), `kernel_grad_few_outputs` or `kernel_grad_by_image`."""
    if self.xla_only:
      return "xla"
    # Output height and width at stride 1.
    out_hw = [
      size + lo + hi - k + 1 for size, (lo, hi), k in zip(x.shape[1:3], padding, kernel.shape)
    ]
    out_size = min(out_hw)
    if (
      kernel.shape[:2] == (3, 3)
      and strides == (1, 1)
      and x.dtype == jnp.float32
      and min(kernel.shape[2:]) >= self.winograd_channels
      and out_size >= self.winograd_min_size
    ):
      return "winograd_4" if out_size >= self.winograd_tile4_size else "winograd_2"
    if (
      self.stride2_phases
      and kernel.shape[:2] == (3, 3)
      and strides == (2, 2)
      and all(
        lo == 1 and hi in (0, 1) and size % 2 == 0 for size, (lo, hi) in zip(x.shape[1:3], padding)
      )
    ):
      return "stride2_phases"
    if kernel.shape[-1] < self.few_outputs:
      return "few_outputs" if strides == (1, 1) else "xla"
    patch_bytes = math.prod((x.shape[0], *out_hw, *kernel.shape[:3])) * x.dtype.itemsize
    if strides == (1, 1) and kernel.shape[:2] != (3, 3) and patch_bytes <= self.im2col_bytes:
      return "im2col"
    out_bytes = x.dtype.itemsize * kernel.shape[-1] * x.shape[0]
    out_bytes *= math.prod((size - 1) // s + 1 for size, s in zip(out_hw, strides))
    if x.shape[0] > 1 and max(x.size * x.dtype.itemsize, out_bytes) > self.by_image_bytes:
      return "by_image"
    return "xla"


DEFAULT = ConvPolicy()


def _conv(x: Array, kernel: Array, strides: tuple[int, int], padding: Padding) -> Array:
  return jax.lax.conv_general_dilated(x, kernel, strides, padding, dimension_numbers=_DN)


def _im2col(x: Array, kernel: Array, padding: Padding) -> Array:
  """The stride-1 convolution as one matmul: x's kh x kw patches [N, H', W', kh kw I] times the
  kernel [kh kw I, O]. Its gradients (autodiff) are matmuls too, and the patches' transpose is
  a sum of shifted slices that XLA fuses."""
  kh, kw, _, o = kernel.shape
  xp = jnp.pad(x, ((0, 0), *padding, (0, 0)))
  ho, wo = xp.shape[1] - kh + 1, xp.shape[2] - kw + 1
  patches = [xp[:, i : i + ho, j : j + wo] for i in range(kh) for j in range(kw)]
  return jnp.einsum("nhwk,ko->nhwo", jnp.concatenate(patches, axis=-1), kernel.reshape(-1, o))


def _winograd_tile(path: Path) -> int:
  return int(path.removeprefix("winograd_"))


# The path is a static argument, so traces with different paths are never shared by JAX's
# tracing caches. Other platforms than the CPU always run XLA's convolution and gradients.
@functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3, 4))
def _conv_cpu(x, kernel, strides, padding, path):
  if path == "im2col":
    cpu = lambda x, k: _im2col(x, k, padding)
  elif path.startswith("winograd"):
    cpu = lambda x, k: winograd.conv(x, k, padding, _winograd_tile(path))
  else:
    return _conv(x, kernel, strides, padding)
  return jax.lax.platform_dependent(
    x, kernel, cpu=cpu, default=lambda x, k: _conv(x, k, strides, padding)
  )


def _conv_fwd(x, kernel, strides, padding, path):
  return _conv_cpu(x, kernel, strides, padding, path), (x, kernel)


def _conv_bwd(strides, padding, path, res, dy):
  x, kernel = res
  conv = lambda x, k: _conv(x, k, strides, padding)

  def xla_grads(x, dy):
    dx, dk = jax.vjp(conv, x, kernel)[1](dy)
    return dx, dk.astype(kernel.dtype)

  if path == "xla":
    return xla_grads(x, dy)
  if path == "im2col":
    cpu_grads = lambda x, dy: jax.vjp(lambda x, k: _im2col(x, k, padding), x, kernel)[1](dy)
  elif path == "stride2_phases":
    cpu_grads = lambda x, dy: phases.stride2_grads(x, kernel, dy)
  elif path.startswith("winograd"):
    cpu_grads = lambda x, dy: winograd.conv_grads(x, kernel, padding, _winograd_tile(path), dy)
  else:
    if path == "few_outputs":
      kernel_grad = lambda x, dy: kernel_grads.kernel_grad_few_outputs(x, dy, kernel.shape, padding)
    else:
      kernel_grad = lambda x, dy: kernel_grads.kernel_grad_by_image(
        x, dy, kernel.shape, strides, padding
      )

    def cpu_grads(x, dy):  # XLA's input gradient, the CPU kernel gradient in the kernel's dtype
      dx = jax.vjp(lambda x: conv(x, kernel), x)[1](dy)[0]
      return dx, kernel_grad(x, dy).astype(kernel.dtype)

  return jax.lax.platform_dependent(x, dy, cpu=cpu_grads, default=xla_grads)


_conv_cpu.defvjp(_conv_fwd, _conv_bwd)


def conv2d(
  x: Array,
  kernel: Array,
  strides: Sequence[int] = (1, 1),
  padding: str | Sequence[tuple[int, int]] = "SAME",
  policy: ConvPolicy = DEFAULT,
) -> Array:
  """2-D convolution, NHWC input and HWIO kernel: `lax.conv_general_dilated`, computed on the
  CPU by the path `policy` chooses for the layer (see the package docstring).

  Args:
    x: [N, H, W, I].
    kernel: [kh, kw, I, O].
    strides: (sh, sw).
    padding: 'SAME', 'VALID' or ((top, bottom), (left, right)).
    policy: the choice of CPU path (static).
  """
  strides = tuple(int(s) for s in strides)
  if isinstance(padding, str):
    padding = jax.lax.padtype_to_pads(x.shape[1:3], kernel.shape[:2], strides, padding)
  padding = tuple((int(lo), int(hi)) for lo, hi in padding)
  path = policy.cpu_path(x, kernel, strides, padding)
  kh, kw = kernel.shape[:2]
  if (
    path not in ("winograd_2", "winograd_4", "im2col")
    and strides == (1, 1)
    and padding == ((0, 0), (0, 0))
    and kh % 2
    and kw % 2
  ):
    # XLA's CPU convolution without padding is several times slower than with it: compute
    # 'SAME' and crop the border, which holds the 'VALID' result.
    y = _conv_cpu(x, kernel, strides, ((kh // 2,) * 2, (kw // 2,) * 2), path)
    return y[:, kh // 2 : y.shape[1] - kh // 2, kw // 2 : y.shape[2] - kw // 2]
  return _conv_cpu(x, kernel, strides, padding, path)
