"""Building blocks shared by the networks: padded convolutions, instance norm, AdaIN, upsampling.

Two choices here are made for XLA's sake (see shared/PERF_NOTES.md, measured on CPU):
- Reflection padding is done as `pad(reflect) -> conv(padding='SAME') -> crop`, which computes
  exactly what `pad(reflect) -> conv(padding='VALID')` computes, at a fraction of the cost.
- The stride-2 transposed convolution (PyTorch's ConvTranspose2d(k=3, s=2, p=1,
  output_padding=1)) is computed in sub-pixel form: one 2x2 convolution to 4x the channels,
  whose weights are gathered from the same 3x3 kernel, then depth-to-space. Same function, same
  parameters, and a weight gradient that is a cheap ordinary convolution gradient.
"""
from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

Array = jax.Array
Dtype = Any


def reflect_pad(x: Array, pad: int) -> Array:
  """Reflection-pads the two spatial axes of an NHWC array by `pad` pixels."""
  if pad == 0:
    return x
  return jnp.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0)), mode="reflect")


def _conv_same_crop(xp: Array, kernel: Array) -> Array:
  """'VALID' convolution of a pre-padded input, computed as SAME conv + crop (faster on XLA)."""
  p = kernel.shape[0] // 2
  y = jax.lax.conv_general_dilated(xp, kernel, (1, 1), "SAME",
                                   dimension_numbers=("NHWC", "HWIO", "NHWC"))
  return y[:, p:y.shape[1] - p, p:y.shape[2] - p, :] if p else y


@jax.custom_vjp
def valid_conv_few_outputs(xp: Array, kernel: Array) -> Array:
  """'VALID' stride-1 conv for layers with few output channels (e.g. an RGB output layer).

  Same function as `_conv_same_crop`; only the kernel gradient differs in how it is computed:
  as a correlation with batch and channel axes swapped (input channels as the batch, images as
  features), which XLA's CPU backend runs about 3x faster than its own weight gradient when
  the layer has 3 output channels (233 -> 76 ms for a 7x7 64->3 conv at 128 px, batch 2).
  """
  return _conv_same_crop(xp, kernel)


def _few_outputs_fwd(xp, kernel):
  return _conv_same_crop(xp, kernel), (xp, kernel)


def _few_outputs_bwd(res, dy):
  xp, kernel = res
  dx = jax.vjp(lambda x: _conv_same_crop(x, kernel), xp)[1](dy)[0]
  dk = jax.lax.conv_general_dilated(
      xp.transpose(3, 1, 2, 0), dy.transpose(1, 2, 0, 3), (1, 1), "VALID",
      dimension_numbers=("NHWC", "HWIO", "NHWC")).transpose(1, 2, 0, 3)
  return dx, dk.astype(kernel.dtype)


valid_conv_few_outputs.defvjp(_few_outputs_fwd, _few_outputs_bwd)

# Output channels up to which `valid_conv_few_outputs` beats XLA's own weight gradient.
FEW_OUTPUTS = 8


class _PaddedConv(nn.Module):
  """Params {'kernel' [k, k, I, O], 'bias' [O]} as nn.Conv; 'VALID' conv of a padded input."""
  features: int
  kernel_size: int
  use_bias: bool = True
  dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, xp: Array) -> Array:
    k = self.kernel_size
    kernel = self.param("kernel", nn.initializers.lecun_normal(),
                        (k, k, xp.shape[-1], self.features), jnp.float32)
    y = valid_conv_few_outputs(xp.astype(self.dtype), kernel.astype(self.dtype))
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
    p = self.kernel_size // 2
    if self.features <= FEW_OUTPUTS:
      return _PaddedConv(self.features, self.kernel_size, self.use_bias, self.dtype,
                         name="conv")(reflect_pad(x, p))
    y = nn.Conv(self.features, (self.kernel_size, self.kernel_size), padding="SAME",
                use_bias=self.use_bias, dtype=self.dtype, name="conv")(reflect_pad(x, p))
    return y[:, p:y.shape[1] - p, p:y.shape[2] - p, :] if p else y


def instance_norm(x: Array, eps: float = 1e-5) -> Array:
  """Instance normalisation without affine parameters (CycleGAN's default), NHWC.

  Statistics are taken in float32 whatever the input dtype, for bf16 stability.
  """
  x32 = x.astype(jnp.float32)
  mean = jnp.mean(x32, axis=(1, 2), keepdims=True)
  var = jnp.var(x32, axis=(1, 2), keepdims=True)
  return ((x32 - mean) * jax.lax.rsqrt(var + eps)).astype(x.dtype)


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
    y = jax.lax.conv_general_dilated(
        x.astype(self.dtype), k2, window_strides=(1, 1), padding=((0, 1), (0, 1)),
        dimension_numbers=("NHWC", "HWIO", "NHWC"))
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
    y = jax.lax.conv_general_dilated(
        x.astype(self.dtype), (kernel / sigma).astype(self.dtype), self.strides, self.padding,
        dimension_numbers=("NHWC", "HWIO", "NHWC"))
    if self.use_bias:
      y = y + self.param("bias", nn.initializers.zeros, (self.features,), jnp.float32).astype(
          self.dtype)
    return y
