"""Generators: the AdaIN generator G(C, S, alpha), CycleGAN's ResNet generator G(C) and
pix2pix's U-Net generator G(C).

Images are NHWC in [-1, 1]. Both are flax.linen modules used as pure `apply` functions.
"""

from __future__ import annotations

import functools
import math
from typing import Any, Mapping

import flax.linen as nn
import jax
import jax.numpy as jnp

from ganstyle_jax import ops
from ganstyle_jax.models import layers as L
from ganstyle_jax.models import vgg as vgg_lib

Array = jax.Array


def decoder_plan(encoder_layer: str) -> list[tuple[str, int]]:
  """The decoder mirroring the VGG19 encoder cut at `encoder_layer` (e.g. 'relu4_1').

  Each convolution of the encoder becomes one with input/output channels swapped, in reverse
  order; each max-pool becomes a nearest x2 upsampling. Returns [('conv', out_channels) |
  ('up', 0)], the last conv mapping to 3 channels (no activation after it).
  """
  order = vgg_lib.LAYER_ORDER[: vgg_lib.LAYER_ORDER.index(encoder_layer) + 1]
  plan: list[tuple[str, int]] = []
  in_ch = 3
  for name in order:
    if name.startswith("conv"):
      plan.append(("conv", in_ch))  # mirror: maps this conv's output back to its input
      in_ch = vgg_lib.CONV_CHANNELS[name]
    elif name.startswith("pool"):
      plan.append(("up", 0))
  return plan[::-1]


class AdaINDecoder(nn.Module):
  """Decoder of Huang & Belongie 2017: reflection-padded 3x3 convs, ReLU, nearest x2 upsampling.

  With encoder_layer='relu4_1' it has exactly 3,505,219 parameters. `conv_policy`: the CPU
  path choice of its convolutions (`ops.conv2d`). `zero_output`: the last conv starts at zero
  (kernel and bias), so the decoder starts as the constant 0 (a residual that starts off).
  """

  encoder_layer: str = "relu4_1"
  dtype: Any = jnp.float32
  conv_policy: ops.ConvPolicy = ops.DEFAULT
  zero_output: bool = False

  @nn.compact
  def __call__(self, t: Array) -> Array:
    plan = decoder_plan(self.encoder_layer)
    h = t.astype(self.dtype)
    n_conv = sum(kind == "conv" for kind, _ in plan)
    i = 0
    for kind, ch in plan:
      if kind == "up":
        h = L.upsample_nearest(h)
        continue
      zero = self.zero_output and i == n_conv - 1
      init = {"kernel_init": nn.initializers.zeros} if zero else {}
      h = L.ReflectConv(
        ch, 3, dtype=self.dtype, conv_policy=self.conv_policy, name=f"conv{i}", **init
      )(h)
      i += 1
      if i < n_conv:
        h = nn.relu(h)
    return h.astype(jnp.float32)


class StyleAttention(nn.Module):
  """Attention from content to style features: a soft style swap (Chen & Schmidt 2016, as an
  attention layer like SANet's, Park & Lee 2019).

  Each content position c queries every style position s: out(c) = sum_s softmax_s(q(c) .
  k(s) / sqrt(C)) f_s(s), with q = W_q f_c + b_q, k = W_k f_s + b_k learned 1x1 projections of
  the raw (un-normalised) features. The values are the style features themselves, so what the
  decoder sees is made of the style image's features, arranged by the content; attention
  that peaks on one position swaps in the nearest style feature. Queries and keys start as the
  identity projection, so at initialisation the match is the raw feature dot product.
  """

  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, f_c: Array, f_s: Array) -> Array:
    n, h, w, c = f_c.shape
    eye = lambda key, shape, dtype=jnp.float32: jnp.eye(*shape, dtype=dtype)
    q = nn.Dense(c, kernel_init=eye, dtype=self.dtype, name="query")(f_c).reshape(n, h * w, c)
    k = nn.Dense(c, kernel_init=eye, dtype=self.dtype, name="key")(f_s).reshape(n, -1, c)
    logits = jnp.einsum("nqc,nkc->nqk", q, k).astype(jnp.float32) / math.sqrt(c)
    weights = jax.nn.softmax(logits, axis=-1).astype(f_s.dtype)
    return jnp.einsum("nqk,nkc->nqc", weights, f_s.reshape(n, -1, c)).reshape(n, h, w, c)


def depthwise3x3(x: Array, kernel: Array) -> Array:
  """x [N, H, W, C] filtered by kernel [3, 3, C, M] per channel (C * M outputs), edge
  padding: one convolution, which exported graphs (ONNX too) keep with symbolic H and W."""
  x = jnp.concatenate([x[:, :1], x, x[:, -1:]], axis=1)  # edge padding (jnp.pad's 'edge'
  x = jnp.concatenate([x[:, :, :1], x, x[:, :, -1:]], axis=2)  # mode does not export to ONNX)
  return L.depthwise_conv(x, kernel)


def delta(key, shape, dtype=jnp.float32):
  """A 3x3 filter bank [3, 3, *C] that passes its input unchanged (the identity)."""
  del key
  return jnp.zeros(shape, dtype).at[1, 1].set(1.0)


def binomial(key, shape, dtype=jnp.float32):
  """3x3 binomial smoothing [3, 3, *C]: outer([1, 2, 1], [1, 2, 1]) / 16 (Sobel's)."""
  del key
  f = jnp.outer(*2 * [jnp.array([1.0, 2.0, 1.0], dtype)]) / 16.0
  return jnp.broadcast_to(f.reshape(3, 3, *[1] * (len(shape) - 2)), shape).astype(dtype)


class ColourAttention(nn.Module):
  """Attention from content pixels to style pixels in colour space: every output pixel is a
  softmax-weighted mix of the style image's colours (a style swap on 1x1 RGB patches).

  out(c) = sum_s softmax_s(-beta ||P q(c) - P S(s)||^2) S(s): q = a learned 3x3 depthwise
  filter of the content (edge padding; starts as the identity, or with `smooth_query` as the
  3x3 binomial smoothing: denoise, then quantise, as in video abstraction, Winnemoeller et al.
  2006), P a learned 3x3 colour projection (starts as the identity) shared by queries and
  keys, beta = exp(log_sharpness) learned, starting at 1 / (2 bandwidth^2). The keys and
  values are the style image's pixels on a grid of keys_side x keys_side positions, rows
  i * h // keys_side and columns j * w // keys_side (exact pixels, not averages, so the
  colours mixed are colours the style image shows; a style image smaller than the grid repeats
  pixels). The grid is computed from the style's size as values, so exported graphs keep that
  size symbolic. Images in [-1, 1]; the output is too.
  """

  keys_side: int = 16
  bandwidth: float = 0.05
  smooth_query: bool = False

  @staticmethod
  def key_grid(style: Array, side: int) -> Array:
    """The style pixels the attention reads: [N, side, side, C]."""
    style = jnp.asarray(style)  # NumPy inputs too (init inputs under jax.eval_shape)
    rows = jnp.arange(side) * style.shape[1] // side
    cols = jnp.arange(side) * style.shape[2] // side
    return style[:, rows][:, :, cols]

  @nn.compact
  def __call__(self, content: Array, style: Array) -> Array:
    n, h, w, _ = content.shape
    filt = self.param("query_filter", binomial if self.smooth_query else delta, (3, 3, 3))
    q = depthwise3x3(content.astype(jnp.float32), filt[:, :, :, None])
    values = self.key_grid(style.astype(jnp.float32), self.keys_side).reshape(n, -1, 3)
    proj = self.param("projection", lambda key, shape: jnp.eye(*shape), (3, 3))
    log_sharpness = self.param(
      "log_sharpness", nn.initializers.constant(-math.log(2 * self.bandwidth**2)), ()
    )
    q, k = q.reshape(n, h * w, 3) @ proj, values @ proj
    # -beta ||q - k||^2 up to a per-query constant: beta (2 q.k - ||k||^2)
    logits = jnp.exp(log_sharpness) * (
      2.0 * jnp.einsum("nqc,nkc->nqk", q, k) - (k**2).sum(-1)[:, None, :]
    )
    weights = jax.nn.softmax(logits, axis=-1)
    return jnp.einsum("nqk,nkc->nqc", weights, values).reshape(n, h, w, 3)


class Outlines(nn.Module):
  """Dark outlines where the content's luminance changes sharply: the ink lines of a
  flat-colour painting (as in toon shading and XDoG-style stylisation), as a per-pixel
  log-gain [N, H, W, 1] to add to the generator's.

  Y = the content's luminance in [0, 1] (learned channel weights, starting at Rec. 601's),
  smoothed by a learned 3x3 filter (edge padding; starts as the binomial filter, Sobel's
  smoothing); its central differences gx, gy give the gradient magnitude m = sqrt(gx^2 +
  gy^2); the outline strength is sigmoid((m - threshold) / width) and the log-gain log_gain *
  strength: outlines are exp(log_gain) times as bright. log_gain starts at `initial_log_gain`
  (outlines at half brightness), not 0: at 0 the threshold and the filter get no gradient, and
  in the study no loss term moved log_gain below 0 by itself.
  """

  threshold: float = 0.1
  width: float = 0.02
  initial_log_gain: float = math.log(0.5)

  @nn.compact
  def __call__(self, content: Array) -> Array:
    rgb = (content.astype(jnp.float32) + 1.0) / 2.0
    weights = self.param(
      "luminance", lambda key, shape: jnp.array([0.299, 0.587, 0.114], jnp.float32), (3,)
    )
    smooth = self.param("smoothing", binomial, (3, 3))
    y = depthwise3x3((rgb * weights).sum(-1, keepdims=True), smooth[:, :, None, None])
    central = jnp.zeros((3, 3)).at[1, 2].set(0.5).at[1, 0].set(-0.5)  # (Y[j+1] - Y[j-1]) / 2
    g = depthwise3x3(y, jnp.stack([central, central.T], -1)[:, :, None, :])  # gx, gy
    magnitude = jnp.sqrt((g**2).sum(-1) + 1e-8)  # eps: a finite gradient where Y is flat
    threshold = self.param("threshold", nn.initializers.constant(self.threshold), ())
    log_width = self.param("log_width", nn.initializers.constant(math.log(self.width)), ())
    log_gain = self.param("log_gain", nn.initializers.constant(self.initial_log_gain), ())
    strength = jax.nn.sigmoid((magnitude - threshold) / jnp.exp(log_width))
    return (log_gain * strength)[..., None]


TRANSFERS = ("adain", "attention", "colour")


class AdaINGenerator(nn.Module):
  """G(C, S, alpha): VGG19 encoder (frozen) -> AdaIN -> decoder.

  Variables: {'params': {'encoder': VGG19 convs, 'decoder': ...}, 'preprocess': {'encoder': ...}}.
  Only the decoder is trained; `assemble_variables` builds the tree from separately held
  VGG variables and decoder params.

  Attributes:
    encoder_layer: the VGG19 layer the encoder stops at ('relu4_1' as in the paper).
    transfer_kind: how the style reaches the content: 'adain' (Huang & Belongie: the style's
      channel mean and std), 'attention' (`StyleAttention`: the style's features themselves,
      arranged by the content) or 'colour' (`ColourAttention`: each pixel takes the style
      image's colours nearest its own, A; the decoder maps the content's features to a
      per-pixel, per-channel log-gain D (shading and outlines; it starts at 0), and the output
      is (A + 1) exp(D) - 1). 'attention' and 'colour' need a style image, not statistics.
    outlines: 'colour' only: add `Outlines`' log-gain to D, dark lines where the content's
      luminance changes sharply.
    smooth_query: 'colour' only: the colour pick's query filter starts as a 3x3 smoothing
      (`ColourAttention.smooth_query`).
    dtype: computation dtype.
    conv_policy: the CPU path choice of the encoder's and decoder's convolutions.
  """

  encoder_layer: str = "relu4_1"
  transfer_kind: str = "adain"
  outlines: bool = False
  smooth_query: bool = False
  dtype: Any = jnp.float32
  conv_policy: ops.ConvPolicy = ops.DEFAULT

  def setup(self):
    self.encoder = vgg_lib.VGG19(dtype=self.dtype, conv_policy=self.conv_policy)
    if self.transfer_kind not in TRANSFERS:
      raise ValueError(f"transfer_kind must be one of {TRANSFERS}, got {self.transfer_kind!r}")
    self.decoder = AdaINDecoder(
      self.encoder_layer,
      dtype=self.dtype,
      conv_policy=self.conv_policy,
      zero_output=self.transfer_kind == "colour",
    )
    if self.transfer_kind == "attention":
      self.attention = StyleAttention(dtype=self.dtype)
    if self.transfer_kind == "colour":
      self.colour = ColourAttention(smooth_query=self.smooth_query)
    elif self.outlines or self.smooth_query:
      raise ValueError(
        f"outlines and smooth_query need transfer_kind 'colour', got {self.transfer_kind!r}"
      )
    if self.outlines:
      self.outline = Outlines()

  def encode(self, x: Array, layers: tuple[str, ...] = ()) -> dict[str, Array]:
    """VGG activations of images x: the encoder layer plus any extra `layers`."""
    return self.encoder(x, tuple(layers) + (self.encoder_layer,))

  def decode(self, t: Array) -> Array:
    """Decoder only: encoder-layer features [N, h, w, C] -> image [N, 8h, 8w, 3] (relu4_1)."""
    return self.decoder(t)

  def style_stats(self, style: Array) -> tuple[Array, Array]:
    """Mean and std [N, 1, 1, C] of the style image's encoder features (for mixing styles)."""
    return L.channel_stats(self.encode(style)[self.encoder_layer])

  def transfer(
    self,
    content: Array,
    style: Array | None = None,
    alpha: float | Array = 1.0,
    style_stats: tuple[Array, Array] | None = None,
    style_features: Array | None = None,
  ) -> tuple[Array, Array]:
    """Returns (output image, target features t) for the content/style pair; t is the AdaIN
    (or attention) target, for 'colour' the content's own features.

    Args:
      content: content images [N, H, W, 3] in [-1, 1], H and W multiples of 8 for relu4_1.
      style: style images [N, h, w, 3] in [-1, 1]; or None when style_stats is given.
      alpha: content-style trade-off in [0, 1]; 0 gives the content's own features.
      style_stats: precomputed (mean, std), each [N or 1, 1, 1, C], e.g. a weighted
        mixture of several styles' statistics ('adain' only).
      style_features: precomputed encoder-layer features of the style images (either
        transfer), instead of `style`.
    """
    f_c = self.encode(content)[self.encoder_layer]
    alpha = jnp.asarray(alpha, jnp.float32)
    if self.transfer_kind == "colour":
      if style is None:
        raise ValueError("colour transfer needs the style image (features or statistics do not do)")
      log_gain = self.decoder(f_c)
      if self.outlines:
        log_gain = log_gain + self.outline(content)
      painted = (self.colour(content, style) + 1.0) * jnp.exp(log_gain) - 1.0
      return alpha * painted + (1.0 - alpha) * content.astype(jnp.float32), f_c
    if style_features is None and style is not None:
      style_features = self.encode(style)[self.encoder_layer]
    if self.transfer_kind == "attention":
      if style_features is None:
        raise ValueError("attention transfer needs the style image (statistics do not do)")
      t = self.attention(f_c, style_features)
    else:
      if style_stats is None:
        if style_features is None:
          raise ValueError("give a style image or style_stats")
        style_stats = L.channel_stats(style_features)
      t = L.adain(f_c, *style_stats)
    alpha = alpha.astype(t.dtype)
    t = alpha * t + (1 - alpha) * f_c
    return self.decoder(t), t

  def __call__(
    self,
    content: Array,
    style: Array | None = None,
    alpha: float | Array = 1.0,
    style_stats: tuple[Array, Array] | None = None,
    style_features: Array | None = None,
  ) -> Array:
    """The stylised image [N, H, W, 3] (not clipped; clip to [-1, 1] for display)."""
    return self.transfer(content, style, alpha, style_stats, style_features)[0]


def trained_params(params: Mapping) -> dict:
  """The trained part of AdaINGenerator params (all but the frozen encoder): the decoder's
  params for 'adain' (as checkpoints have always held them), {'decoder', 'attention'} for
  'attention'."""
  rest = {k: v for k, v in params.items() if k != "encoder"}
  return rest["decoder"] if set(rest) == {"decoder"} else rest


def assemble_variables(vgg_variables: Mapping, g_params: Mapping) -> dict:
  """AdaINGenerator variables from frozen VGG variables and `trained_params`."""
  trained = dict(g_params) if "decoder" in g_params else {"decoder": g_params}
  return {
    "params": {"encoder": vgg_variables["params"], **trained},
    "preprocess": {"encoder": vgg_variables["preprocess"]},
  }


class ResnetBlock(nn.Module):
  """Residual block: [reflect-pad conv3x3, IN, ReLU, reflect-pad conv3x3, IN] + skip."""

  features: int
  dtype: Any = jnp.float32
  conv_policy: ops.ConvPolicy = ops.DEFAULT

  @nn.compact
  def __call__(self, x: Array) -> Array:
    conv = lambda: L.ReflectConv(self.features, 3, dtype=self.dtype, conv_policy=self.conv_policy)
    h = nn.relu(L.instance_norm(conv()(x)))
    h = L.instance_norm(conv()(h))
    return x + h


class ResNetGenerator(nn.Module):
  """CycleGAN's generator: c7s1-ngf, d2ngf, d4ngf, n_blocks x R4ngf, u2ngf, ungf, c7s1-3, tanh.

  Instance norm without affine parameters, reflection padding; ngf=64, n_blocks=9 gives
  exactly 11,378,179 parameters. Images NHWC in [-1, 1], H and W multiples of 4.
  `conv_policy`: the CPU path choice of its convolutions (`ops.conv2d`). `residual`: the
  network gives a change to its input in tanh space, tanh(atanh(x) + h), its last conv
  starting at zero, so G starts as the identity (x clipped to +-RESIDUAL_CLIP) rather than as
  noise: the cycle and identity losses start at their minimum and the adversarial term moves
  the image from there (a refiner, as in SimGAN, Shrivastava et al. 2017). Same parameters.
  `scan_blocks`: the residual blocks as one `lax.scan` (see `_blocks`); the same function
  and parameters, compiled in about 30% less time, but on the CPU steps ran 7-19% slower at
  128 px (and not faster at 256 px), so it is off by default.
  """

  ngf: int = 64
  n_blocks: int = 9
  out_channels: int = 3
  residual: bool = False
  scan_blocks: bool = False
  dtype: Any = jnp.float32
  conv_policy: ops.ConvPolicy = ops.DEFAULT

  RESIDUAL_CLIP = 0.99  # atanh(0.99) = 2.65: pixels at +-1 stay movable

  @nn.compact
  def __call__(self, x: Array) -> Array:
    d, p = self.dtype, self.conv_policy
    h = nn.relu(L.instance_norm(L.ReflectConv(self.ngf, 7, dtype=d, conv_policy=p)(x.astype(d))))
    for mult in (2, 4):
      h = L.Conv(
        self.ngf * mult, (3, 3), strides=(2, 2), padding=((1, 1), (1, 1)), dtype=d, conv_policy=p
      )(h)
      h = nn.relu(L.instance_norm(h))
    h = self._blocks(h)
    for mult in (2, 1):
      h = nn.relu(L.instance_norm(L.UpConv(self.ngf * mult, dtype=d, conv_policy=p)(h)))
    init = {"kernel_init": nn.initializers.zeros} if self.residual else {}
    h = L.ReflectConv(self.out_channels, 7, dtype=d, conv_policy=p, **init)(h)
    h = h.astype(jnp.float32)
    if self.residual:
      x = jnp.clip(x.astype(jnp.float32), -self.RESIDUAL_CLIP, self.RESIDUAL_CLIP)
      h = jnp.arctanh(x) + h
    return jnp.tanh(h)

  def _blocks(self, h: Array) -> Array:
    """The residual blocks ResnetBlock_0 .. ResnetBlock_{n_blocks-1}. With `scan_blocks`, an
    applied network (not one being initialised) runs them as one `lax.scan` over their stacked
    parameters: XLA compiles one block, forward and backward, instead of n_blocks, and the
    parameters keep their per-block layout (checkpoints, PyTorch weights)."""
    block = functools.partial(
      ResnetBlock, self.ngf * 4, dtype=self.dtype, conv_policy=self.conv_policy
    )
    names = [f"ResnetBlock_{i}" for i in range(self.n_blocks)]
    if (
      self.is_initializing()
      or not self.scan_blocks
      or self.n_blocks < 2
      or not self._scan_is_fast(h)
    ):
      for name in names:
        h = block(name=name)(h)
      return h
    params = self.variables["params"]
    stacked = jax.tree.map(lambda *leaves: jnp.stack(leaves), *(params[n] for n in names))
    one = block()
    # _split_transpose: the backward pass as two loops, the second for the kernel gradients.
    # With one loop G's gradient was about 10% slower on the CPU than unrolled; with two, as
    # fast (experiments/benchmarks/README.md, "Compile time").
    h, _ = jax.lax.scan(
      lambda h, p: (one.apply({"params": p}, h), None), h, stacked, _split_transpose=True
    )
    return h

  def _scan_is_fast(self, h: Array) -> bool:
    """False on the CPU when the blocks' 3x3 convolutions would not take Winograd's path
    (bfloat16, or fewer channels than the policy's threshold): inside a loop, XLA's CPU
    convolution gradients ran about 20x slower than unrolled (a 3x3 256->256 kernel gradient
    at 32x32, float32 and bfloat16; experiments/benchmarks/README.md), so there the blocks
    stay unrolled."""
    if jax.default_backend() != "cpu":
      return True
    x = jax.ShapeDtypeStruct((h.shape[0], h.shape[1] + 2, h.shape[2] + 2, h.shape[3]), self.dtype)
    kernel = jax.ShapeDtypeStruct((3, 3, self.ngf * 4, self.ngf * 4), self.dtype)
    return self.conv_policy.cpu_path(x, kernel, (1, 1), ((0, 0), (0, 0))).startswith("winograd")


class UNetGenerator(nn.Module):
  """pix2pix's U-Net (Isola et al. 2017): num_downs stride-2 4x4 convolutions down to 1x1 at
  size 2 ** num_downs, mirrored by 4x4 transposed convolutions, each level's down output
  concatenated to the up path (skip connections).

  Channels from the outermost level: ngf, 2 ngf, 4 ngf, then 8 ngf. Down: LeakyReLU(0.2)
  (not at the input), conv, instance norm (not at the outermost or innermost level). Up: ReLU,
  transposed conv, instance norm (tanh at the output); dropout 0.5 after the up path of the
  num_downs - 5 levels above the innermost. Instance norm has no affine parameters, so every
  conv has a bias; num_downs=8, ngf=64 ('unet_256') has 54,409,603 parameters, the count of
  the reference definition with instance norm. Images NHWC in [-1, 1], H and W multiples of
  2 ** num_downs. `conv_policy`: the CPU path choice of the down convolutions.
  """

  ngf: int = 64
  num_downs: int = 8
  out_channels: int = 3
  use_dropout: bool = True
  dtype: Any = jnp.float32
  conv_policy: ops.ConvPolicy = ops.DEFAULT

  @nn.compact
  def __call__(self, x: Array, deterministic: bool = True) -> Array:
    n, d = self.num_downs, self.dtype
    if n < 5:
      raise ValueError(f"UNetGenerator needs num_downs >= 5, got {n}")
    channels = [self.ngf, self.ngf * 2, self.ngf * 4] + [self.ngf * 8] * (n - 3)
    skips, h = [], x.astype(d)
    for i, c in enumerate(channels):
      if i > 0:
        h = nn.leaky_relu(h, 0.2)
      h = L.Conv(
        c,
        (4, 4),
        strides=(2, 2),
        padding=((1, 1), (1, 1)),
        dtype=d,
        conv_policy=self.conv_policy,
        name=f"down_{i}",
      )(h)
      if 0 < i < n - 1:
        h = L.instance_norm(h)
      skips.append(h)
    for i in reversed(range(n)):
      if i < n - 1:
        h = jnp.concatenate([skips[i], h], axis=-1)
      out = channels[i - 1] if i > 0 else self.out_channels
      h = nn.ConvTranspose(
        out, (4, 4), strides=(2, 2), padding=((2, 2), (2, 2)), dtype=d, name=f"up_{i}"
      )(nn.relu(h))
      if i > 0:
        h = L.instance_norm(h)
      if self.use_dropout and 4 <= i <= n - 2:
        h = nn.Dropout(0.5, deterministic=deterministic)(h)
    return jnp.tanh(h.astype(jnp.float32))
