"""Discriminators: the 70x70 PatchGAN (Isola et al. 2017) and a multi-scale stack of them.

Images NHWC in [-1, 1] -> patch logits [N, h, w, 1] (float32).
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from ganstyle_jax import ops
from ganstyle_jax.models import layers as L

Array = jax.Array


class PatchGAN(nn.Module):
  """PatchGAN: 4x4 convs, stride 2 then 1, instance norm, LeakyReLU 0.2.

  n_layers=3, ndf=64 is the 70x70 discriminator with exactly 2,764,737 parameters.

  Attributes:
    ndf: filters of the first layer (doubling up to 8 * ndf).
    n_layers: number of stride-2 layers.
    norm: 'instance' or 'none' (usual with spectral_norm).
    spectral_norm: divide every kernel by its spectral norm.
    dtype: computation dtype.
    conv_policy: the CPU path choice of its convolutions (`ops.conv2d`).
  """

  ndf: int = 64
  n_layers: int = 3
  norm: str = "instance"
  spectral_norm: bool = False
  dtype: Any = jnp.float32
  conv_policy: ops.ConvPolicy = ops.DEFAULT

  def _conv(self, features: int, stride: int, name: str):
    kw = dict(
      kernel_size=(4, 4),
      strides=(stride, stride),
      padding=((1, 1), (1, 1)),
      dtype=self.dtype,
      conv_policy=self.conv_policy,
      name=name,
    )
    if self.spectral_norm:
      return L.SpectralNormConv(features, **kw)
    return L.Conv(features, **kw)

  def _norm(self, x: Array) -> Array:
    if self.norm == "instance":
      return L.instance_norm(x)
    if self.norm == "none":
      return x
    raise ValueError(f"unknown discriminator norm {self.norm!r}; use 'instance' or 'none'")

  @nn.compact
  def __call__(self, x: Array) -> Array:
    h = nn.leaky_relu(self._conv(self.ndf, 2, "conv0")(x.astype(self.dtype)), 0.2)
    mult = 1
    for i in range(1, self.n_layers + 1):
      mult = min(2**i, 8)
      stride = 2 if i < self.n_layers else 1
      h = nn.leaky_relu(self._norm(self._conv(self.ndf * mult, stride, f"conv{i}")(h)), 0.2)
    return self._conv(1, 1, f"conv{self.n_layers + 1}")(h).astype(jnp.float32)


class MultiScalePatchGAN(nn.Module):
  """`num_scales` PatchGANs on the image downsampled by 1, 2, 4, ... (pix2pixHD).

  Returns a list of logit maps, finest first; the adversarial losses average over the list.
  Attributes after `num_scales` are PatchGAN's.
  """

  num_scales: int = 2
  ndf: int = 64
  n_layers: int = 3
  norm: str = "instance"
  spectral_norm: bool = False
  dtype: Any = jnp.float32
  conv_policy: ops.ConvPolicy = ops.DEFAULT

  @nn.compact
  def __call__(self, x: Array) -> list[Array]:
    outs = []
    for i in range(self.num_scales):
      if i:
        # 3x3 average pooling, stride 2, as pix2pixHD (count_include_pad=False ~ 'SAME' here).
        x = nn.avg_pool(x, (3, 3), strides=(2, 2), padding="SAME", count_include_pad=False)
      outs.append(
        PatchGAN(
          self.ndf,
          self.n_layers,
          self.norm,
          self.spectral_norm,
          self.dtype,
          self.conv_policy,
          name=f"scale{i}",
        )(x)
      )
    return outs
