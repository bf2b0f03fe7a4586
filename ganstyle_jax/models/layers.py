"""Building blocks shared by the networks: convolutions, instance norm, AdaIN, pooling,
upsampling.

These choices are made for XLA's sake (measured on the CPU; see experiments/benchmarks):
- Every convolution of the trained networks goes through `ops.conv2d` (`Conv` and the layers
  built on it), with the CPU path chosen by the layer's `conv_policy` (`ops.ConvPolicy`):
  Winograd for 3x3 layers, faster kernel gradients, 'VALID' as a cropped 'SAME'.
- The stride-2 transposed convolution (PyTorch's ConvTranspose2d(k=3, s=2, p=1,
  output_padding=1)) is `ops.conv_transpose_x2`: on the CPU one matmul by the kernel's 9
  taps and shifted sums, elsewhere one 2x2 convolution to 4x the channels then depth-to-space
  (sub-pixel form). Same function, same parameters, and gradients that avoid XLA's transposed
  convolution.
- `instance_norm` has a closed-form gradient (`jax.custom_vjp`) and `max_pool_2x2` is a max
  over a 2x2 view: XLA's derivative of the one and its select-and-scatter gradient of the
  other run several times slower on the CPU.
"""

from __future__ import annotations

import functools
from typing import Any, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from ganstyle_jax import ops

Array = jax.Array
Dtype = Any


def depthwise_conv(x: Array, kernel: Array, precision=None) -> Array:
  """'VALID' depthwise filtering of NHWC images x [N, H, W, C] by kernel [kh, kw, C, M]: each
  channel by its own M filters, C * M outputs (channel-major). Fixed filters (metrics, the
  colour generator's 3x3 filters) rather than trained layers: XLA's grouped convolution, on
  every platform, exported as one convolution."""
  kh, kw, c, m = kernel.shape
  return jax.lax.conv_general_dilated(
    x,
    kernel.reshape(kh, kw, 1, c * m),
    (1, 1),
    "VALID",
    dimension_numbers=("NHWC", "HWIO", "NHWC"),
    feature_group_count=c,
    precision=precision,
  )


def reflect_pad(x: Array, pad: int) -> Array:
  """Reflection-pads the two spatial axes of an NHWC array by `pad` pixels."""
  if pad == 0:
    return x
  return jnp.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0)), mode="reflect")


class Conv(nn.Module):
  """`flax.linen.Conv` for NHWC images (same params {'kernel' [kh, kw, I, O], 'bias' [O]} and
  initialisers), computed with `ops.conv2d`.

  Attributes:
    features: output channels.
    kernel_size: (kh, kw).
    strides: (sh, sw).
    padding: 'SAME', 'VALID' or ((top, bottom), (left, right)).
    use_bias: whether to add a bias.
    dtype: computation dtype (params stay float32).
    kernel_init: kernel initialiser.
    conv_policy: the CPU path choice of `ops.conv2d`.
  """

  features: int
  kernel_size: Sequence[int]
  strides: Sequence[int] = (1, 1)
  padding: Any = "SAME"
  use_bias: bool = True
  dtype: Dtype = jnp.float32
  kernel_init: Any = nn.initializers.lecun_normal()
  conv_policy: ops.ConvPolicy = ops.DEFAULT

  @nn.compact
  def __call__(self, x: Array) -> Array:
    kernel = self.param(
      "kernel", self.kernel_init, (*self.kernel_size, x.shape[-1], self.features), jnp.float32
    )
    y = ops.conv2d(
      x.astype(self.dtype), kernel.astype(self.dtype), self.strides, self.padding, self.conv_policy
    )
    if self.use_bias:
      y = y + self.param("bias", nn.initializers.zeros, (self.features,), jnp.float32).astype(
        self.dtype
      )
    return y


class ReflectConv(nn.Module):
  """Stride-1 convolution with reflection padding (output size = input size).

  Attributes:
    features: output channels.
    kernel_size: odd square kernel size.
    use_bias: whether to add a bias.
    dtype: computation dtype (params stay float32).
    conv_policy: the CPU path choice of `ops.conv2d`.
    kernel_init: kernel initialiser.
  """

  features: int
  kernel_size: int = 3
  use_bias: bool = True
  dtype: Dtype = jnp.float32
  conv_policy: ops.ConvPolicy = ops.DEFAULT
  kernel_init: Any = nn.initializers.lecun_normal()

  @nn.compact
  def __call__(self, x: Array) -> Array:
    return Conv(
      self.features,
      (self.kernel_size, self.kernel_size),
      padding="VALID",
      use_bias=self.use_bias,
      dtype=self.dtype,
      conv_policy=self.conv_policy,
      kernel_init=self.kernel_init,
      name="conv",
    )(reflect_pad(x, self.kernel_size // 2))


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
  one elementwise pass, several times faster on the CPU than XLA's derivative of the forward.
  It is itself differentiable, for second-order terms such as an R1 penalty.
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
  reduce_window, whose gradient (select-and-scatter) XLA runs several times slower on the CPU.
  Equal values in a window share the gradient (jnp.max's rule) where select-and-scatter gives
  it to one.
  """
  n, h, w, c = x.shape
  x = x[:, : h // 2 * 2, : w // 2 * 2]
  return jnp.max(x.reshape(n, h // 2, 2, w // 2, 2, c), axis=(2, 4))


def upsample_nearest(x: Array, factor: int = 2) -> Array:
  """Nearest-neighbour upsampling of an NHWC array by an integer factor."""
  return jnp.repeat(jnp.repeat(x, factor, axis=1), factor, axis=2)


class UpConv(nn.Module):
  """x2 upsampling convolution equal to PyTorch's ConvTranspose2d(3, stride=2, padding=1,
  output_padding=1): [N, H, W, I] -> [N, 2H, 2W, features].

  The kernel is stored as [3, 3, I, O] in scatter form: out[2i - 1 + k] += x[i] * kernel[k]
  (a PyTorch ConvTranspose2d weight [I, O, kh, kw] converts by a transpose to [kh, kw, I, O]).
  `conv_policy`: the CPU path choice of `ops.conv_transpose_x2`.
  """

  features: int
  use_bias: bool = True
  dtype: Dtype = jnp.float32
  conv_policy: ops.ConvPolicy = ops.DEFAULT

  @nn.compact
  def __call__(self, x: Array) -> Array:
    kernel = self.param(
      "kernel", nn.initializers.lecun_normal(), (3, 3, x.shape[-1], self.features), jnp.float32
    )
    y = ops.conv_transpose_x2(x.astype(self.dtype), kernel.astype(self.dtype), self.conv_policy)
    if self.use_bias:
      bias = self.param("bias", nn.initializers.zeros, (self.features,), jnp.float32)
      y = y + bias.astype(self.dtype)
    return y


class SpectralNormConv(nn.Module):
  """Convolution whose kernel is divided by its largest singular value (Miyato et al. 2018).

  Stateless variant: the power iteration starts from a fixed vector on every call
  (`n_iter` steps, stop-gradient on the singular vectors), so the layer is a pure function of
  its params and D needs no mutable state in the train step. `conv_policy`: the CPU path choice
  of `ops.conv2d`.
  """

  features: int
  kernel_size: tuple[int, int]
  strides: tuple[int, int] = (1, 1)
  padding: Any = "SAME"
  use_bias: bool = True
  n_iter: int = 5
  dtype: Dtype = jnp.float32
  conv_policy: ops.ConvPolicy = ops.DEFAULT

  @nn.compact
  def __call__(self, x: Array) -> Array:
    kernel = self.param(
      "kernel",
      nn.initializers.lecun_normal(),
      (*self.kernel_size, x.shape[-1], self.features),
      jnp.float32,
    )
    w = kernel.reshape(-1, self.features)
    v = jnp.ones((self.features,), jnp.float32) / jnp.sqrt(self.features)
    for _ in range(self.n_iter):
      u = w @ v
      u = u / (jnp.linalg.norm(u) + 1e-12)
      v = w.T @ u
      v = v / (jnp.linalg.norm(v) + 1e-12)
    u, v = jax.lax.stop_gradient(u), jax.lax.stop_gradient(v)
    sigma = u @ w @ v
    y = ops.conv2d(
      x.astype(self.dtype),
      (kernel / sigma).astype(self.dtype),
      self.strides,
      self.padding,
      self.conv_policy,
    )
    if self.use_bias:
      y = y + self.param("bias", nn.initializers.zeros, (self.features,), jnp.float32).astype(
        self.dtype
      )
    return y
