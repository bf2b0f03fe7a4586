"""Building blocks shared by the networks: convolutions, instance norm, AdaIN, pooling,
upsampling.

These choices are made for XLA's sake (measured on CPU; see experiments/benchmarks):
- Every convolution of the trained networks goes through `conv2d`/`Conv`, which on the CPU
  (other platforms keep XLA's convolution and its gradients):
  - runs 3x3 stride-1 float32 layers with at least 64 input and output channels by Winograd's
    F(4x4, 3x3) (F(2x2, 3x3) at 8-15 px), forward and backward: a quarter of the
    multiplications, as one batched matmul. 3x3 256->256 at 64x64, forward + both gradients:
    45 ms against XLA's 86 ms at batch 1, 81-88 ms against 179-181 ms at batch 2; the
    CycleGAN 128 px train step 1.98 s against 3.26 s;
  - replaces XLA's kernel gradient where it is slow:
    - batches whose input outgrows the caches: the gradient is computed image by image, as a
      correlation with the batch and channel axes swapped (`_kernel_grad_by_image`). 3x3
      256->256 at 64x64, batch 8: 283-314 ms against XLA's 625-1180 ms; 128->128 at 128x128:
      354-425 ms against 1837-2162 ms;
    - layers with few output channels (an RGB output layer): a single matmul of the input with
      the shifted copies of dy (`_kernel_grad_few_outputs`). 7x7 64->3 at 256x256: 101 ms
      against 449 ms per image;
  and, on every platform, computes an unpadded ('VALID') stride-1 convolution outside the
  Winograd path, such as reflection padding's `pad(reflect) -> conv(padding='VALID')`, as a
  'SAME' one cropped: XLA's CPU convolution without padding is several times slower.
- The stride-2 transposed convolution (PyTorch's ConvTranspose2d(k=3, s=2, p=1,
  output_padding=1)) is computed in sub-pixel form: one 2x2 convolution to 4x the channels,
  whose weights are gathered from the same 3x3 kernel, then depth-to-space. Same function, same
  parameters, and a weight gradient that is a cheap ordinary convolution gradient.
- `instance_norm` has a closed-form gradient (`jax.custom_vjp`) and `max_pool_2x2` is a max
  over a 2x2 view: XLA's derivative of the one and its select-and-scatter gradient of the
  other run several times slower on the CPU.
"""
from __future__ import annotations

import contextlib
import functools
from typing import Any, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

Array = jax.Array
Dtype = Any
Padding = tuple[tuple[int, int], tuple[int, int]]

_DN = ("NHWC", "HWIO", "NHWC")


def reflect_pad(x: Array, pad: int) -> Array:
  """Reflection-pads the two spatial axes of an NHWC array by `pad` pixels."""
  if pad == 0:
    return x
  return jnp.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0)), mode="reflect")


def _conv(x: Array, kernel: Array, strides: tuple[int, int], padding: Padding) -> Array:
  return jax.lax.conv_general_dilated(x, kernel, strides, padding, dimension_numbers=_DN)


def _kernel_grad_by_image(x: Array, dy: Array, kernel_shape: Sequence[int],
                          strides: tuple[int, int], padding: Padding) -> Array:
  """d loss / d kernel of `_conv(x, kernel, strides, padding)` given dy, one image at a time.

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
    lhs = xi[None].transpose(3, 1, 2, 0)       # [I, H, W, 1]
    rhs = dyi[None].transpose(1, 2, 0, 3)      # [h, w, 1, O]
    g = jax.lax.conv_general_dilated(lhs, rhs, (1, 1), pads, rhs_dilation=strides,
                                     dimension_numbers=_DN)
    return acc + g.astype(jnp.float32), None

  acc = jnp.zeros((x.shape[-1], kh, kw, dy.shape[-1]), jnp.float32)
  acc, _ = jax.lax.scan(one, acc, (x, dy))
  return acc.transpose(1, 2, 0, 3)


def _kernel_grad_few_outputs(x: Array, dy: Array, kernel_shape: Sequence[int],
                             padding: Padding) -> Array:
  """d loss / d kernel of a stride-1 `_conv` with few output channels, as one matmul.

  dW[i, j, :, o] = sum_{n, y, x} xp[n, y, x, :] * dy[n, y - i, x - j, o] over the padded input
  xp: dy's k*k shifted copies ([N, Hp, Wp, k*k*O], small because O is) times xp.
  """
  kh, kw = kernel_shape[:2]
  xp = jnp.pad(x, ((0, 0), *padding, (0, 0)))
  hp, wp = xp.shape[1:3]
  h, w, o = dy.shape[1:]
  dp = jnp.pad(dy, ((0, 0), (kh - 1, hp - h), (kw - 1, wp - w), (0, 0)))
  shifted = jnp.concatenate([dp[:, kh - 1 - i:kh - 1 - i + hp, kw - 1 - j:kw - 1 - j + wp]
                             for i in range(kh) for j in range(kw)], axis=-1)
  g = jnp.einsum("nyxq,nyxc->qc", shifted, xp, preferred_element_type=jnp.float32)
  return g.reshape(kh, kw, o, x.shape[-1]).transpose(0, 1, 3, 2)


# ----------------------------------------------------------------------------- Winograd
# Winograd's minimal filtering F(m x m, 3 x 3) (Lavin & Gray 2016): an m x m output tile is
# A^T [(G k G^T) * (B^T d B)] A for its (m+2) x (m+2) input tile d (tiles overlap by 2). The
# elementwise products summed over input channels are one batched matmul, [tile position,
# tiles, I] x [tile position, I, O], with (m+2)^2 / (9 m^2) of the direct convolution's
# multiplications: F(2x2, 3x3) 0.44, F(4x4, 3x3) 0.25. Rounding in float32, measured against
# XLA's convolution: largest error about 2e-6 (m=2) and 2e-5 (m=4) of the largest output.
_WINOGRAD = {
    2: (((1, 0, -1, 0),                    # B^T
         (0, 1, 1, 0),
         (0, -1, 1, 0),
         (0, 1, 0, -1)),
        ((1, 0, 0),                        # G
         (1 / 2, 1 / 2, 1 / 2),
         (1 / 2, -1 / 2, 1 / 2),
         (0, 0, 1)),
        ((1, 1, 1, 0),                     # A^T
         (0, 1, -1, -1))),
    4: (((4, 0, -5, 0, 1, 0),
         (0, -4, -4, 1, 1, 0),
         (0, 4, -4, -1, 1, 0),
         (0, -2, -1, 2, 1, 0),
         (0, 2, -1, -2, 1, 0),
         (0, 4, 0, -5, 0, 1)),
        ((1 / 4, 0, 0),
         (-1 / 6, -1 / 6, -1 / 6),
         (-1 / 6, 1 / 6, -1 / 6),
         (1 / 24, 1 / 12, 1 / 6),
         (1 / 24, -1 / 12, 1 / 6),
         (0, 0, 1)),
        ((1, 1, 1, 1, 1, 0),
         (0, 1, -1, 2, -2, 0),
         (0, 1, 1, 4, 4, 0),
         (0, 1, -1, 8, -8, 1))),
}


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


def _winograd_input(xp: Array, m: int) -> Array:
  """Tiles of xp [N, mT+2, mS+2, C] (stride m, size m+2), transformed: [(m+2)^2, N*T*S, C]."""
  bt = _WINOGRAD[m][0]
  a = len(bt)
  h, w = xp.shape[1] - 2, xp.shape[2] - 2
  rows = [xp[:, i:i + h:m] for i in range(a)]
  r = jnp.stack([_combine(b, rows) for b in bt])                      # [a, N, T, mS+2, C]
  cols = [r[:, :, :, j:j + w:m] for j in range(a)]
  v = jnp.stack([_combine(b, cols) for b in bt])                      # [a, a, N, T, S, C]
  return v.reshape(a * a, -1, xp.shape[-1])


def _overlap_add(parts: Sequence[Array], m: int, axis: int) -> Array:
  """The transpose of taking the tile slices [j::m] (j < m+2) of an axis of length mT+2:
  parts[j] [.., T, ..] -> [.., mT+2, ..] (overlapping tiles add)."""
  t = parts[0].shape[axis]
  widths = [(0, 0)] * parts[0].ndim

  def shifted(part, by):
    widths[axis] = (by, 1 - by)
    return jnp.pad(part, widths)

  phases = [shifted(parts[p], 0) + shifted(parts[p + m], 1) if p + m < len(parts)
            else shifted(parts[p], 0) for p in range(m)]
  out = jnp.stack(phases, axis=axis + 1)                             # [.., T+1, m, ..]
  out = out.reshape(*out.shape[:axis], m * (t + 1), *out.shape[axis + 2:])
  return jax.lax.slice_in_dim(out, 0, m * t + 2, axis=axis)


def _winograd_input_transpose(dv: Array, m: int, n: int, t: int, s: int) -> Array:
  """The transpose of _winograd_input: [(m+2)^2, N*T*S, C] -> [N, mT+2, mS+2, C]."""
  b_ = _transpose(_WINOGRAD[m][0])
  a = len(b_)
  dv = dv.reshape(a, a, n, t, s, -1)
  cols = [_combine(c, list(dv)) for c in b_]                          # a x [a(q), N, T, S, C]
  r = _overlap_add(cols, m, axis=3)                                   # [a(q), N, T, mS+2, C]
  rows = [_combine(c, [r[q] for q in range(a)]) for c in b_]          # a x [N, T, mS+2, C]
  return _overlap_add(rows, m, axis=1)


def _winograd_kernel(kernel: Array, m: int) -> Array:
  """G k G^T of a [3, 3, I, O] kernel: [(m+2)^2, I, O], in _winograd_input's tile order."""
  g = _WINOGRAD[m][1]
  gk = jnp.stack([_combine(c, list(kernel)) for c in g])              # [a, 3, I, O]
  u = jnp.stack([_combine(c, [gk[:, j] for j in range(3)]) for c in g])
  return u.reshape(len(g) ** 2, *kernel.shape[2:])


def _winograd_kernel_transpose(du: Array, m: int) -> Array:
  """The transpose of _winograd_kernel: [(m+2)^2, I, O] -> [3, 3, I, O]."""
  gt = _transpose(_WINOGRAD[m][1])
  a = len(gt[0])
  du = du.reshape(a, a, *du.shape[1:])
  dk = jnp.stack([_combine(c, [du[:, i] for i in range(a)]) for c in gt])   # [3(i), a, I, O]
  return jnp.stack([_combine(c, [dk[:, j] for j in range(a)]) for c in gt]).transpose(
      1, 0, 2, 3)


def _winograd_output(mm: Array, m: int, n: int, t: int, s: int) -> Array:
  """A^T M A of the products [(m+2)^2, N*T*S, O]: the output [N, mT, mS, O]."""
  at = _WINOGRAD[m][2]
  a = len(at[0])
  mm = mm.reshape(a, a, n, t, s, -1)
  r = jnp.stack([_combine(c, [mm[:, i] for i in range(a)]) for c in at])   # [m(i), a(j), ...]
  y = jnp.stack([_combine(c, [r[:, j] for j in range(a)]) for c in at])    # [m(j), m(i), ...]
  return y.transpose(2, 3, 1, 4, 0, 5).reshape(n, m * t, m * s, -1)


def _winograd_output_transpose(dy: Array, m: int) -> Array:
  """The transpose of _winograd_output: dy [N, mT, mS, O] -> [(m+2)^2, N*T*S, O]."""
  a_ = _transpose(_WINOGRAD[m][2])
  n, h, w, o = dy.shape
  d = dy.reshape(n, h // m, m, w // m, m, o)
  r = jnp.stack([_combine(c, [d[:, :, i] for i in range(m)]) for c in a_])   # [a, N, T, S, m, O]
  v = jnp.stack([_combine(c, [r[:, :, :, :, j] for j in range(m)]) for c in a_])
  return v.reshape(len(a_) ** 2, -1, o)


def _winograd_tiles(xp: Array, m: int) -> tuple[Array, int, int]:
  """xp [N, H+2, W+2, C] zero-padded at the bottom and right to whole tiles: (xp, T, S)."""
  t, s = -(-(xp.shape[1] - 2) // m), -(-(xp.shape[2] - 2) // m)
  return jnp.pad(xp, ((0, 0), (0, m * t + 2 - xp.shape[1]), (0, m * s + 2 - xp.shape[2]),
                      (0, 0))), t, s


# Measured thresholds of the CPU paths: 3x3 stride-1 float32 layers with at least
# WINOGRAD_CHANNELS input and output channels use Winograd F(4x4, 3x3) forward and backward
# (F(2x2, 3x3) for outputs smaller than WINOGRAD_TILE4_SIZE; none for outputs smaller than
# WINOGRAD_MIN_SIZE, where it saves little time and costs compile time); of the other layers,
# those with fewer output channels than FEW_OUTPUTS use `_kernel_grad_few_outputs` (stride 1),
# and those with more than one image and a batch input over BY_IMAGE_BYTES use
# `_kernel_grad_by_image`.
WINOGRAD_CHANNELS = 64
WINOGRAD_TILE4_SIZE = 16
WINOGRAD_MIN_SIZE = 8
FEW_OUTPUTS = 16
BY_IMAGE_BYTES = 4 * 2 ** 20


@contextlib.contextmanager
def xla_convolutions():
  """Within this context, conv2d traces XLA's own convolution and gradients everywhere.

  For XLA's cost analysis, which counts the body of the image loop of `_kernel_grad_by_image`
  once and Winograd's multiplications rather than the convolution's: FLOP counts of a step
  traced here are the direct convolutions' (what PyTorch's FlopCounterMode counts).
  """
  global WINOGRAD_CHANNELS, FEW_OUTPUTS, BY_IMAGE_BYTES
  saved = WINOGRAD_CHANNELS, FEW_OUTPUTS, BY_IMAGE_BYTES
  WINOGRAD_CHANNELS, FEW_OUTPUTS, BY_IMAGE_BYTES = float("inf"), 0, float("inf")
  try:
    yield
  finally:
    WINOGRAD_CHANNELS, FEW_OUTPUTS, BY_IMAGE_BYTES = saved


def _cpu_path(x: Array, kernel: Array, strides: tuple[int, int], padding: Padding) -> str:
  """How conv2d computes on the CPU: Winograd F(4x4, 3x3) or F(2x2, 3x3) ('winograd_4',
  'winograd_2'), or XLA's convolution with XLA's kernel gradient ('xla'),
  `_kernel_grad_by_image` or `_kernel_grad_few_outputs`."""
  out_size = min(size + lo + hi - kernel.shape[0] + 1
                 for size, (lo, hi) in zip(x.shape[1:3], padding))
  if (kernel.shape[:2] == (3, 3) and strides == (1, 1) and x.dtype == jnp.float32
      and min(kernel.shape[2:]) >= WINOGRAD_CHANNELS and out_size >= WINOGRAD_MIN_SIZE):
    return "winograd_4" if out_size >= WINOGRAD_TILE4_SIZE else "winograd_2"
  if kernel.shape[-1] < FEW_OUTPUTS:
    return "few_outputs" if strides == (1, 1) else "xla"
  if x.shape[0] > 1 and x.size * x.dtype.itemsize > BY_IMAGE_BYTES:
    return "by_image"
  return "xla"


def _pad(x: Array, padding: Padding) -> Array:
  return jnp.pad(x, ((0, 0), *padding, (0, 0)))


def _winograd_tile(path: str) -> int:
  return int(path.removeprefix("winograd_"))


# Jitted (and so traced once per shape, not once per layer), with everything they depend on
# as arguments.
@functools.partial(jax.jit, static_argnums=(2, 3))
def _winograd_conv(x: Array, kernel: Array, padding: Padding, m: int) -> Array:
  """3x3 stride-1 convolution of x zero-padded by `padding`, by Winograd F(m x m, 3 x 3)."""
  xp = _pad(x, padding)
  n, hp, wp, _ = xp.shape
  xp, t, s = _winograd_tiles(xp, m)
  mm = jnp.einsum("pti,pio->pto", _winograd_input(xp, m), _winograd_kernel(kernel, m))
  return _winograd_output(mm, m, n, t, s)[:, :hp - 2, :wp - 2]


@functools.partial(jax.jit, static_argnums=(2, 3))
def _winograd_conv_grads(x: Array, kernel: Array, padding: Padding, m: int, dy: Array):
  """(dx, dkernel) of `_winograd_conv`, both from the gradient of the products (the
  transposes of the transforms and of the batched matmul)."""
  n, h, w, _ = dy.shape
  xp, t, s = _winograd_tiles(_pad(x, padding), m)
  dm = _winograd_output_transpose(jnp.pad(dy, ((0, 0), (0, m * t - h), (0, m * s - w), (0, 0))),
                                  m)
  dk = _winograd_kernel_transpose(jnp.einsum("pti,pto->pio", _winograd_input(xp, m), dm), m)
  dv = jnp.einsum("pto,pio->pti", dm, _winograd_kernel(kernel, m))
  dxp = _winograd_input_transpose(dv, m, n, t, s)
  (top, _), (left, _) = padding
  return dxp[:, top:top + x.shape[1], left:left + x.shape[2]], dk


# The path is a static argument, so traces with different paths are never shared by JAX's
# tracing caches. Other platforms than the CPU always run XLA's convolution and gradients.
@functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3, 4))
def _conv_cpu(x, kernel, strides, padding, path):
  if not path.startswith("winograd"):
    return _conv(x, kernel, strides, padding)
  return jax.lax.platform_dependent(
      x, kernel, cpu=lambda x, k: _winograd_conv(x, k, padding, _winograd_tile(path)),
      default=lambda x, k: _conv(x, k, strides, padding))


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
  if path.startswith("winograd"):
    cpu_grads = lambda x, dy: _winograd_conv_grads(x, kernel, padding, _winograd_tile(path), dy)
  else:
    if path == "few_outputs":
      kernel_grad = lambda x, dy: _kernel_grad_few_outputs(x, dy, kernel.shape, padding)
    else:
      kernel_grad = lambda x, dy: _kernel_grad_by_image(x, dy, kernel.shape, strides, padding)

    def cpu_grads(x, dy):     # XLA's input gradient, the CPU kernel gradient in the kernel's dtype
      dx = jax.vjp(lambda x: conv(x, kernel), x)[1](dy)[0]
      return dx, kernel_grad(x, dy).astype(kernel.dtype)

  return jax.lax.platform_dependent(x, dy, cpu=cpu_grads, default=xla_grads)


_conv_cpu.defvjp(_conv_fwd, _conv_bwd)


def conv2d(x: Array, kernel: Array, strides: Sequence[int] = (1, 1),
           padding: str | Sequence[tuple[int, int]] = "SAME") -> Array:
  """2-D convolution, NHWC input and HWIO kernel: `lax.conv_general_dilated` with a kernel
  gradient that is fast on the CPU (see the module docstring).

  Args:
    x: [N, H, W, I].
    kernel: [kh, kw, I, O].
    strides: (sh, sw).
    padding: 'SAME', 'VALID' or ((top, bottom), (left, right)).
  """
  strides = tuple(int(s) for s in strides)
  if isinstance(padding, str):
    padding = jax.lax.padtype_to_pads(x.shape[1:3], kernel.shape[:2], strides, padding)
  padding = tuple((int(lo), int(hi)) for lo, hi in padding)
  path = _cpu_path(x, kernel, strides, padding)
  kh, kw = kernel.shape[:2]
  if (not path.startswith("winograd") and strides == (1, 1) and padding == ((0, 0), (0, 0))
      and kh % 2 and kw % 2):
    # XLA's CPU convolution without padding is several times slower than with it: compute
    # 'SAME' and crop the border, which holds the 'VALID' result.
    y = _conv_cpu(x, kernel, strides, ((kh // 2,) * 2, (kw // 2,) * 2), path)
    return y[:, kh // 2:y.shape[1] - kh // 2, kw // 2:y.shape[2] - kw // 2]
  return _conv_cpu(x, kernel, strides, padding, path)


class Conv(nn.Module):
  """`flax.linen.Conv` for NHWC images (same params {'kernel' [kh, kw, I, O], 'bias' [O]} and
  initialisers), computed with `conv2d`.

  Attributes:
    features: output channels.
    kernel_size: (kh, kw).
    strides: (sh, sw).
    padding: 'SAME', 'VALID' or ((top, bottom), (left, right)).
    use_bias: whether to add a bias.
    dtype: computation dtype (params stay float32).
    kernel_init: kernel initialiser.
  """
  features: int
  kernel_size: Sequence[int]
  strides: Sequence[int] = (1, 1)
  padding: Any = "SAME"
  use_bias: bool = True
  dtype: Dtype = jnp.float32
  kernel_init: Any = nn.initializers.lecun_normal()

  @nn.compact
  def __call__(self, x: Array) -> Array:
    kernel = self.param("kernel", self.kernel_init,
                        (*self.kernel_size, x.shape[-1], self.features), jnp.float32)
    y = conv2d(x.astype(self.dtype), kernel.astype(self.dtype), self.strides, self.padding)
    if self.use_bias:
      y = y + self.param("bias", nn.initializers.zeros, (self.features,), jnp.float32).astype(
          self.dtype)
    return y


class ReflectConv(nn.Module):
  """Stride-1 convolution with reflection padding (output size = input size).

  Attributes:
    features: output channels.
    kernel_size: odd square kernel size.
    use_bias: whether to add a bias.
    dtype: computation dtype (params stay float32).
  """
  features: int
  kernel_size: int = 3
  use_bias: bool = True
  dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x: Array) -> Array:
    return Conv(self.features, (self.kernel_size, self.kernel_size), padding="VALID",
                use_bias=self.use_bias, dtype=self.dtype, name="conv")(
                    reflect_pad(x, self.kernel_size // 2))


@functools.partial(jax.custom_vjp, nondiff_argnums=(1,))
def _instance_norm(x: Array, eps: float) -> Array:
  return _instance_norm_fwd(x, eps)[0]


def _instance_norm_fwd(x, eps):
  mean, std = channel_stats(x, eps)
  inv_std = 1.0 / std
  return ((x.astype(jnp.float32) - mean) * inv_std).astype(x.dtype), (x, mean, inv_std)


def _instance_norm_bwd(eps, res, dy):
  del eps
  x, mean, inv_std = res
  x_hat = (x.astype(jnp.float32) - mean) * inv_std
  dy = dy.astype(jnp.float32)
  dy_mean = jnp.mean(dy, axis=(1, 2), keepdims=True)
  dy_x_hat_mean = jnp.mean(dy * x_hat, axis=(1, 2), keepdims=True)
  return (((dy - dy_mean - x_hat * dy_x_hat_mean) * inv_std).astype(x.dtype),)


_instance_norm.defvjp(_instance_norm_fwd, _instance_norm_bwd)


def instance_norm(x: Array, eps: float = 1e-5) -> Array:
  """Instance normalisation without affine parameters (CycleGAN's default), NHWC.

  Statistics are taken in float32 whatever the input dtype, for bf16 stability. The gradient
  is the closed form dx = (dy - mean(dy) - x_hat * mean(dy * x_hat)) / std: two reductions and
  one elementwise pass, 2-4x faster on the CPU than XLA's derivative of the forward (the
  norm + ReLU at [2, 128, 128, 64]: 3.6 ms against 13.6 ms, forward and backward). It is
  itself differentiable, for second-order terms such as an R1 penalty.
  """
  return _instance_norm(x, eps)


def channel_stats(x: Array, eps: float = 1e-5) -> tuple[Array, Array]:
  """Per-image, per-channel mean and standard deviation over H, W.

  Args:
    x: features [N, H, W, C].
    eps: added to the variance before the square root.
  Returns:
    (mean, std), each [N, 1, 1, C], float32.
  """
  x32 = x.astype(jnp.float32)
  mean = jnp.mean(x32, axis=(1, 2), keepdims=True)
  std = jnp.sqrt(jnp.var(x32, axis=(1, 2), keepdims=True) + eps)
  return mean, std


def adain(content: Array, style_mean: Array, style_std: Array, eps: float = 1e-5) -> Array:
  """Adaptive instance normalisation (Huang & Belongie 2017).

  Args:
    content: content features [N, H, W, C].
    style_mean, style_std: target statistics, broadcastable to [N, 1, 1, C].
    eps: variance epsilon for the content statistics.
  Returns:
    Features [N, H, W, C] whose per-channel mean/std equal the style's.
  """
  c_mean, c_std = channel_stats(content, eps)
  out = (content.astype(jnp.float32) - c_mean) / c_std * style_std + style_mean
  return out.astype(content.dtype)


def max_pool_2x2(x: Array) -> Array:
  """2x2 max pooling, stride 2, NHWC ('VALID': an odd last row/column is dropped).

  Computed as a max over a [N, H/2, 2, W/2, 2, C] view rather than `nn.max_pool`'s
  reduce_window, whose gradient (select-and-scatter) XLA runs slowly on the CPU: VGG's first
  pool at [4, 128, 128, 64], forward and backward, 12 ms against 81 ms. Equal values in a
  window share the gradient (jnp.max's rule) where select-and-scatter gives it to one.
  """
  n, h, w, c = x.shape
  x = x[:, :h // 2 * 2, :w // 2 * 2]
  return jnp.max(x.reshape(n, h // 2, 2, w // 2, 2, c), axis=(2, 4))


def upsample_nearest(x: Array, factor: int = 2) -> Array:
  """Nearest-neighbour upsampling of an NHWC array by an integer factor."""
  return jnp.repeat(jnp.repeat(x, factor, axis=1), factor, axis=2)


def depth_to_space(x: Array, block: int = 2) -> Array:
  """[N, H, W, b*b*C] -> [N, b*H, b*W, C], channel index ordered (row phase, col phase, c)."""
  n, h, w, c = x.shape
  c_out = c // (block * block)
  x = x.reshape(n, h, w, block, block, c_out)
  x = x.transpose(0, 1, 3, 2, 4, 5)
  return x.reshape(n, h * block, w * block, c_out)


# For output phase p (0: even, 1: odd pixel) and input offset a (0: same pixel, 1: next pixel),
# the 3x3 transposed-conv tap that connects them (None: no connection). Derived from
# out[2i - 1 + k] += x[i] * w[k] (stride 2, padding 1, output_padding 1).
_PHASE_TAPS = ((1, None), (2, 0))


def subpixel_kernel(kernel: Array) -> Array:
  """Rearranges a 3x3 transposed-conv kernel [3, 3, I, O] into a 2x2 conv kernel [2, 2, I, 4*O]."""
  i_ch, o_ch = kernel.shape[2], kernel.shape[3]
  zeros = jnp.zeros((i_ch, o_ch), kernel.dtype)
  rows = []
  for a in range(2):          # input row offset
    cols = []
    for b in range(2):        # input column offset
      phases = []
      for py in range(2):
        for px in range(2):
          ky, kx = _PHASE_TAPS[py][a], _PHASE_TAPS[px][b]
          phases.append(zeros if ky is None or kx is None else kernel[ky, kx])
      cols.append(jnp.concatenate(phases, axis=-1))
    rows.append(jnp.stack(cols))
  return jnp.stack(rows)


class UpConv(nn.Module):
  """x2 upsampling convolution equal to PyTorch's ConvTranspose2d(3, stride=2, padding=1,
  output_padding=1): [N, H, W, I] -> [N, 2H, 2W, features].

  The kernel is stored as [3, 3, I, O] in scatter form: out[2i - 1 + k] += x[i] * kernel[k]
  (a PyTorch ConvTranspose2d weight [I, O, kh, kw] converts by a transpose to [kh, kw, I, O]).
  """
  features: int
  use_bias: bool = True
  dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x: Array) -> Array:
    kernel = self.param("kernel", nn.initializers.lecun_normal(),
                        (3, 3, x.shape[-1], self.features), jnp.float32)
    k2 = subpixel_kernel(kernel).astype(self.dtype)
    y = conv2d(x.astype(self.dtype), k2, padding=((0, 1), (0, 1)))
    if self.use_bias:
      bias = self.param("bias", nn.initializers.zeros, (self.features,), jnp.float32)
      y = y + jnp.tile(bias, 4).astype(self.dtype)
    return depth_to_space(y, 2)


class SpectralNormConv(nn.Module):
  """Convolution whose kernel is divided by its largest singular value (Miyato et al. 2018).

  Stateless variant: the power iteration starts from a fixed vector on every call
  (`n_iter` steps, stop-gradient on the singular vectors), so the layer is a pure function of
  its params and D needs no mutable state in the train step.
  """
  features: int
  kernel_size: tuple[int, int]
  strides: tuple[int, int] = (1, 1)
  padding: Any = "SAME"
  use_bias: bool = True
  n_iter: int = 5
  dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x: Array) -> Array:
    kernel = self.param("kernel", nn.initializers.lecun_normal(),
                        (*self.kernel_size, x.shape[-1], self.features), jnp.float32)
    w = kernel.reshape(-1, self.features)
    v = jnp.ones((self.features,), jnp.float32) / jnp.sqrt(self.features)
    for _ in range(self.n_iter):
      u = w @ v
      u = u / (jnp.linalg.norm(u) + 1e-12)
      v = w.T @ u
      v = v / (jnp.linalg.norm(v) + 1e-12)
    u, v = jax.lax.stop_gradient(u), jax.lax.stop_gradient(v)
    sigma = u @ w @ v
    y = conv2d(x.astype(self.dtype), (kernel / sigma).astype(self.dtype), self.strides,
               self.padding)
    if self.use_bias:
      y = y + self.param("bias", nn.initializers.zeros, (self.features,), jnp.float32).astype(
          self.dtype)
    return y
