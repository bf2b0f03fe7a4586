"""Networks: reference parameter counts, shapes, ranges, AdaIN statistics, the sub-pixel UpConv."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ganstyle_jax import ops
from ganstyle_jax.models import discriminators, generators, layers, vgg


def n_params(tree) -> int:
  return sum(int(np.prod(x.shape)) for x in jax.tree.leaves(tree))


def abstract_init(module, *args):
  """Variable shapes without computing anything; non-array args are bound statically."""
  arrays = [a for a in args if isinstance(a, jax.ShapeDtypeStruct)]
  static = [a for a in args if not isinstance(a, jax.ShapeDtypeStruct)]
  return jax.eval_shape(lambda k, *xs: module.init(k, *xs, *static), jax.random.key(0), *arrays)


X64 = jax.ShapeDtypeStruct((1, 64, 64, 3), jnp.float32)


def test_reference_parameter_counts():
  v = abstract_init(vgg.VGG19(), X64, ("relu4_1",))
  assert n_params(v["params"]) == 3_505_728
  g = abstract_init(generators.AdaINGenerator(), X64, X64)
  assert n_params(g["params"]["decoder"]) == 3_505_219
  assert n_params(abstract_init(generators.ResNetGenerator(), X64)) == 11_378_179
  assert n_params(abstract_init(discriminators.PatchGAN(), X64)) == 2_764_737
  x256 = jax.ShapeDtypeStruct((1, 256, 256, 3), jnp.float32)
  assert n_params(abstract_init(generators.UNetGenerator(), x256)) == unet_reference_count()


def unet_reference_count(ngf=64, num_downs=8, input_nc=3, output_nc=3) -> int:
  """Parameters of pix2pix's UnetGenerator with affine-free instance norm, counted by building
  its blocks as the reference does (innermost first; every 4x4 conv has a bias, since
  instance norm has no affine parameters)."""
  conv = lambda i, o: i * o * 16 + o
  blocks = [(ngf * 8, ngf * 8, "innermost")]
  blocks += [(ngf * 8, ngf * 8, "middle")] * (num_downs - 5)
  blocks += [
    (ngf * 4, ngf * 8, "middle"),
    (ngf * 2, ngf * 4, "middle"),
    (ngf, ngf * 2, "middle"),
    (output_nc, ngf, "outermost"),
  ]
  total = 0
  for outer, inner, kind in blocks:
    total += conv(input_nc if kind == "outermost" else outer, inner)  # down conv
    total += conv(inner if kind == "innermost" else 2 * inner, outer)  # up (transposed)
  return total


def test_vgg_keys_and_stops_at_deepest_layer():
  x = jnp.zeros((1, 32, 32, 3))
  variables = vgg.VGG19().init(jax.random.key(0), x, ("relu2_1",))
  assert set(variables["params"]) == {"conv1_1", "conv1_2", "conv2_1"}
  out = vgg.VGG19().apply(variables, x, ("relu1_1", "relu2_1"))
  assert list(out) == ["conv1_1", "relu1_1", "conv1_2", "relu1_2", "pool1", "conv2_1", "relu2_1"]
  assert out["relu2_1"].shape == (1, 16, 16, 128)
  with pytest.raises(Exception, match="unknown VGG19 layer"):
    vgg.VGG19().apply(variables, x, ("relu9_9",))


@pytest.mark.parametrize("shape", [(2, 64, 64, 3), (1, 96, 64, 3)])
def test_networks_jit_and_run(shape):
  key = jax.random.key(1)
  x = jax.random.uniform(key, shape, minval=-1, maxval=1)
  vgg_vars = vgg.load_params("random")
  feats = jax.jit(lambda v, x: vgg.VGG19().apply(v, x, ("relu5_1",)))(vgg_vars, x)
  assert feats["relu4_1"].shape == (shape[0], shape[1] // 8, shape[2] // 8, 512)
  assert feats["relu5_1"].shape == (shape[0], shape[1] // 16, shape[2] // 16, 512)

  adain = generators.AdaINGenerator()
  dec = jax.jit(adain.init)(key, x, x)["params"]["decoder"]
  out = jax.jit(adain.apply)(generators.assemble_variables(vgg_vars, dec), x, x[::-1])
  assert out.shape == shape and np.isfinite(np.asarray(out)).all()

  resnet = generators.ResNetGenerator(ngf=8, n_blocks=2)
  y = jax.jit(resnet.apply)(jax.jit(resnet.init)(key, x), x)
  assert y.shape == shape
  assert float(jnp.min(y)) >= -1 and float(jnp.max(y)) <= 1

  for d in (
    discriminators.PatchGAN(ndf=8),
    discriminators.PatchGAN(ndf=8, spectral_norm=True, norm="none"),
  ):
    logits = jax.jit(d.apply)(jax.jit(d.init)(key, x), x)
    # 3 stride-2 4x4 convs (pad 1) then 2 stride-1 ones: H/8 - 2.
    assert logits.shape == (shape[0], shape[1] // 8 - 2, shape[2] // 8 - 2, 1)
  unet = generators.UNetGenerator(ngf=8, num_downs=5)
  u_vars = jax.jit(unet.init)(key, x)
  y = jax.jit(unet.apply)(u_vars, x)
  assert y.shape == shape and float(jnp.max(jnp.abs(y))) <= 1
  # num_downs=6 has one dropout level: train mode changes the output, reproducibly per key.
  unet6, x6 = generators.UNetGenerator(ngf=8, num_downs=6), x[:, :64, :64]
  v6 = jax.jit(unet6.init)(key, x6)
  drop = jax.jit(lambda v, x, k: unet6.apply(v, x, deterministic=False, rngs={"dropout": k}))
  np.testing.assert_array_equal(drop(v6, x6, key), drop(v6, x6, key))
  assert not np.allclose(drop(v6, x6, key), unet6.apply(v6, x6))
  ms = discriminators.MultiScalePatchGAN(num_scales=2, ndf=8)
  outs = jax.jit(ms.apply)(jax.jit(ms.init)(key, x), x)
  assert [o.shape[1:3] for o in outs] == [
    (shape[1] // 8 - 2, shape[2] // 8 - 2),
    (shape[1] // 16 - 2, shape[2] // 16 - 2),
  ]


def test_adain_matches_style_statistics():
  kc, ks = jax.random.split(jax.random.key(2))
  content = jax.random.normal(kc, (2, 8, 8, 16)) * 3 + 1
  style = jax.random.normal(ks, (2, 8, 8, 16)) * 0.5 - 2
  out = layers.adain(content, *layers.channel_stats(style))
  m_out, s_out = layers.channel_stats(out)
  m_sty, s_sty = layers.channel_stats(style)
  np.testing.assert_allclose(m_out, m_sty, atol=1e-4)
  np.testing.assert_allclose(s_out, s_sty, atol=1e-4)


def test_adain_generator_alpha_and_style_stats():
  key = jax.random.key(3)
  kc, ks = jax.random.split(key)
  content = jax.random.uniform(kc, (1, 32, 32, 3), minval=-1, maxval=1)
  style = jax.random.uniform(ks, (1, 32, 32, 3), minval=-1, maxval=1)
  g = generators.AdaINGenerator()
  variables = generators.assemble_variables(
    vgg.load_params("random"), g.init(key, content, style)["params"]["decoder"]
  )
  f_c = g.apply(variables, content, method=g.encode)["relu4_1"]
  _, t0 = g.apply(variables, content, style, 0.0, method=g.transfer)
  np.testing.assert_allclose(t0, f_c, atol=1e-6)
  _, t1 = g.apply(variables, content, style, 1.0, method=g.transfer)
  f_s = g.apply(variables, style, method=g.encode)["relu4_1"]
  # Near-constant channels (dead ReLUs of the random VGG) are dominated by the eps of the std.
  live = np.asarray((layers.channel_stats(f_c)[1] > 0.1) & (layers.channel_stats(f_s)[1] > 0.1))
  for a, b in zip(layers.channel_stats(t1), layers.channel_stats(f_s)):
    np.testing.assert_allclose(np.asarray(a)[live], np.asarray(b)[live], atol=1e-4, rtol=1e-4)
  # Precomputed statistics give the same output as the style image.
  stats = g.apply(variables, style, method=g.style_stats)
  np.testing.assert_allclose(
    g.apply(variables, content, style_stats=stats), g.apply(variables, content, style), atol=1e-5
  )


def test_style_attention_swaps_in_the_matching_style_feature():
  # Orthogonal style features; each content position equals one of them, so (with the
  # identity projections of initialisation) attention peaks there and returns that feature.
  c = 16
  f_s = 8.0 * jnp.eye(c)[None, :, None, :].reshape(1, 4, 4, c)
  order = jax.random.permutation(jax.random.key(0), c)
  f_c = f_s.reshape(1, c, c)[:, order].reshape(1, 4, 4, c)
  att = generators.StyleAttention()
  params = att.init(jax.random.key(1), f_c, f_s)
  out = att.apply(params, f_c, f_s)
  np.testing.assert_allclose(out, f_c, atol=1e-3)
  # The values are style features whatever the style's layout: permuting the style
  # positions changes nothing.
  shuffled = f_s.reshape(1, c, c)[:, order[::-1]].reshape(1, 4, 4, c)
  np.testing.assert_allclose(att.apply(params, f_c, shuffled), out, atol=1e-6)


def test_attention_generator_params_alpha_and_style_features():
  key = jax.random.key(4)
  content = jax.random.uniform(key, (2, 16, 16, 3), minval=-1, maxval=1)
  style = jnp.flip(content, axis=(0, 2))
  g = generators.AdaINGenerator(encoder_layer="relu2_1", transfer_kind="attention")
  params = g.init(key, content, style)["params"]
  trained = generators.trained_params(params)
  assert set(trained) == {"attention", "decoder"}
  variables = generators.assemble_variables(vgg.load_params("random"), trained)
  f_c = g.apply(variables, content, method=g.encode)["relu2_1"]
  _, t0 = g.apply(variables, content, style, 0.0, method=g.transfer)
  np.testing.assert_allclose(t0, f_c, atol=1e-6)
  f_s = g.apply(variables, style, method=g.encode)["relu2_1"]
  np.testing.assert_allclose(
    g.apply(variables, content, style_features=f_s), g.apply(variables, content, style), atol=1e-6
  )
  with pytest.raises(ValueError, match="style image"):
    g.apply(variables, content, style_stats=layers.channel_stats(f_s))
  # AdaIN checkpoints keep holding the decoder's params alone.
  adain = generators.AdaINGenerator(encoder_layer="relu2_1")
  trained = generators.trained_params(adain.init(key, content, style)["params"])
  assert "conv0" in trained


def test_colour_attention_takes_the_nearest_style_colour():
  # A style image of 4 flat colours and content pixels near them: with a narrow bandwidth
  # each pixel takes its nearest style colour (the NumPy nearest neighbour), whatever the
  # layout of the style image.
  rng = np.random.default_rng(0)
  colours = np.array([[-0.8, 0.6, 0.2], [0.7, -0.5, -0.1], [0.1, 0.1, 0.9], [-0.2, -0.9, 0.5]])
  style = np.repeat(colours, 16, axis=0).reshape(1, 8, 8, 3).astype(np.float32)
  labels = rng.integers(0, 4, (1, 8, 8))
  content = (colours[labels] + rng.normal(0, 0.05, (1, 8, 8, 3))).astype(np.float32)
  att = generators.ColourAttention(bandwidth=0.02)
  params = att.init(jax.random.key(0), content, style)
  out = att.apply(params, content, style)
  nearest = colours[((content[..., None, :] - colours) ** 2).sum(-1).argmin(-1)]
  np.testing.assert_allclose(out, nearest, atol=1e-4)
  np.testing.assert_allclose(att.apply(params, content, style[:, ::-1, ::-1]), out, atol=1e-6)
  # The keys are exact pixels on a keys_side grid: every 4th row and 3rd column of 64 x 48.
  x = np.arange(64 * 48 * 3, dtype=np.float32).reshape(1, 64, 48, 3)
  np.testing.assert_array_equal(generators.ColourAttention.key_grid(x, 16), x[:, ::4, ::3])
  big = np.repeat(np.repeat(style, 8, axis=1), 6, axis=2)  # 64 x 48, the same colours
  np.testing.assert_allclose(att.apply(params, content, big), out, atol=1e-4)


def test_colour_generator_starts_as_colour_attention_and_keeps_alpha():
  key = jax.random.key(5)
  content = jax.random.uniform(key, (2, 16, 16, 3), minval=-1, maxval=1)
  style = jnp.flip(content, axis=(0, 2)) * 0.5
  g = generators.AdaINGenerator(encoder_layer="relu2_1", transfer_kind="colour")
  trained = generators.trained_params(g.init(key, content, style)["params"])
  assert set(trained) == {"colour", "decoder"}
  variables = generators.assemble_variables(vgg.load_params("random"), trained)
  colour = generators.ColourAttention().apply({"params": trained["colour"]}, content, style)
  out, t = g.apply(variables, content, style, method=g.transfer)
  # The decoder's log-gain starts at 0: the output is the attended colours.
  np.testing.assert_allclose(out, colour, atol=1e-6)
  np.testing.assert_allclose(t, g.apply(variables, content, method=g.encode)["relu2_1"])
  np.testing.assert_allclose(g.apply(variables, content, style, 0.0), content, atol=1e-6)
  with pytest.raises(ValueError, match="style image"):
    g.apply(variables, content, style_features=t)


def test_outlines_darken_sharp_luminance_edges_only():
  # A vertical step from dark grey to light grey, a smooth ramp and a red/green boundary of
  # (nearly) equal luminance: outlines on the step's two columns (central differences of the
  # smoothed luminance are largest there), nowhere else.
  x = np.full((1, 16, 48, 3), -0.6, np.float32)
  x[:, :, 8:16] = 0.6  # the step at columns 7 | 8 (and back down at 15 | 16)
  x[:, :, 16:32] = np.linspace(-0.5, 0.5, 16)[None, None, :, None]  # ramp: gradient 1 / 30
  x[:, :, 32:40] = np.array([0.587, 0.299, 0.0]) / 0.886 * 2 - 1  # luminance ~ 0.5
  x[:, :, 40:] = np.array([0.0, 0.299 / 0.587, 0.0]) * 2 - 1  # green of the same luminance
  module = generators.Outlines()
  params = module.init(jax.random.key(0), x)
  log_gain = np.asarray(module.apply(params, x))[0, :, :, 0]
  assert log_gain.shape == (16, 48) and log_gain.max() <= 0.0
  np.testing.assert_allclose(log_gain[:, [7, 8]], np.log(0.5), atol=0.01)
  # Elsewhere under 1% darker (the sigmoid's floor at m = 0 is sigmoid(-5) of log 0.5).
  assert np.abs(log_gain[:, 1:6]).max() < 0.01 and np.abs(log_gain[:, 34:38]).max() < 0.01
  assert np.abs(log_gain[:, 18:30]).max() < 0.05  # a ramp is shading, not an outline
  # A flat image has finite gradients (the magnitude's epsilon) and no outlines.
  flat = np.zeros((1, 8, 8, 3), np.float32)
  grads = jax.grad(lambda p: module.apply(p, flat).sum())(params)
  assert all(np.isfinite(g).all() for g in jax.tree.leaves(grads))
  # log_gain scales the outlines: 0 turns them off.
  off = {"params": {**params["params"], "log_gain": jnp.zeros(())}}
  np.testing.assert_array_equal(module.apply(off, x), 0.0)


def test_smooth_query_picks_the_colour_nearest_the_smoothed_pixel():
  # A checkerboard of two colours: each pixel's nearest style colour is its own, but its 3x3
  # binomial average is the board's mean (centre 4/16 and corners 4/16 its own colour, the
  # four edge neighbours 8/16 the other), so with smooth_query every pixel picks the style
  # colour nearest the mean.
  a, b = np.array([-0.9, -0.9, -0.9]), np.array([0.9, 0.9, 0.9])
  mid = np.array([0.1, 0.1, 0.1])  # nearest to the checkerboard's mean (0, 0, 0)
  board = np.where((np.add.outer(np.arange(8), np.arange(8)) % 2)[..., None] == 0, a, b)
  content = board[None].astype(np.float32)
  style = np.stack([a, b, mid]).repeat(22, 0)[:64].reshape(1, 8, 8, 3).astype(np.float32)
  for smooth, want in ((False, content[0, 1:-1, 1:-1]), (True, np.broadcast_to(mid, (6, 6, 3)))):
    att = generators.ColourAttention(bandwidth=0.02, smooth_query=smooth)
    out = att.apply(att.init(jax.random.key(0), content, style), content, style)
    np.testing.assert_allclose(out[0, 1:-1, 1:-1], want, atol=1e-3)  # inside the edge padding


def test_colour_generator_with_outlines_darkens_the_attended_colours():
  key = jax.random.key(1)
  content = jax.random.uniform(key, (2, 16, 16, 3), minval=-1, maxval=1)
  style = jnp.flip(content, axis=(0, 2)) * 0.5
  g = generators.AdaINGenerator(encoder_layer="relu2_1", transfer_kind="colour", outlines=True)
  trained = generators.trained_params(g.init(key, content, style)["params"])
  assert set(trained) == {"colour", "decoder", "outline"}
  variables = generators.assemble_variables(vgg.load_params("random"), trained)
  colour = generators.ColourAttention().apply({"params": trained["colour"]}, content, style)
  gain = generators.Outlines().apply({"params": trained["outline"]}, content)
  np.testing.assert_allclose(
    g.apply(variables, content, style), (colour + 1) * np.exp(gain) - 1, atol=1e-5
  )
  with pytest.raises(ValueError, match="outlines and smooth_query need transfer_kind 'colour'"):
    generators.AdaINGenerator(outlines=True).init(key, content, style)


def test_decoder_mirrors_encoder():
  assert generators.decoder_plan("relu3_1") == [
    ("conv", 128),
    ("up", 0),
    ("conv", 128),
    ("conv", 64),
    ("up", 0),
    ("conv", 64),
    ("conv", 3),
  ]


def test_upconv_equals_transposed_convolution():
  """UpConv equals PyTorch's ConvTranspose2d(3, stride 2, padding 1, output_padding 1)."""
  x = np.random.default_rng(0).normal(size=(2, 5, 6, 4)).astype(np.float32)
  k = np.random.default_rng(1).normal(size=(3, 3, 4, 7)).astype(np.float32)
  y = layers.UpConv(7, use_bias=False).apply({"params": {"kernel": k}}, x)
  ref = np.zeros((2, 11, 13, 7))  # scatter form, then crop to 2H x 2W
  for i in range(5):
    for j in range(6):
      for a in range(3):
        for b in range(3):
          if 2 * i - 1 + a >= 0 and 2 * j - 1 + b >= 0:
            ref[:, 2 * i - 1 + a, 2 * j - 1 + b] += x[:, i, j] @ k[a, b]
  np.testing.assert_allclose(y, ref[:, :10, :12], atol=1e-4)


def assert_equal_with_gradients(ours, ref, x, k):
  """ours(x, k) equals ref(x, k), and so do the gradients of sum(sin(.)) with respect to x and
  k, up to float32 rounding."""
  want = ref(x, k)
  np.testing.assert_allclose(ours(x, k), want, atol=1e-5 * float(np.abs(want).max()))
  loss = lambda f: lambda x, k: jnp.sum(jnp.sin(f(x, k)))
  got = jax.jit(jax.grad(loss(ours), argnums=(0, 1)))(x, k)
  want = jax.jit(jax.grad(loss(ref), argnums=(0, 1)))(x, k)
  for a, b in zip(got, want):
    np.testing.assert_allclose(a, b, atol=1e-5 * float(np.abs(b).max()))


@pytest.mark.parametrize(
  "policy",
  [ops.DEFAULT, ops.ConvPolicy(transpose_as_matmul=False), ops.ConvPolicy.xla()],
  ids=["matmul", "subpixel", "xla"],
)
@pytest.mark.parametrize("shape", [(2, 5, 6, 4, 7), (1, 8, 3, 16, 9)])
def test_conv_transpose_x2_equals_dilated_convolution(policy, shape):
  """ops.conv_transpose_x2, on each path, forward and both gradients: PyTorch's
  ConvTranspose2d(3, stride 2, padding 1, output_padding 1) written as XLA's convolution of the
  2x dilated input, padded (1, 2), with the spatially flipped kernel."""
  n, h, w, i, o = shape
  x = jnp.asarray(np.random.default_rng(0).normal(size=(n, h, w, i)), jnp.float32)
  k = jnp.asarray(np.random.default_rng(1).normal(size=(3, 3, i, o)), jnp.float32)
  ref = lambda x, k: jax.lax.conv_general_dilated(
    x,
    k[::-1, ::-1],
    (1, 1),
    ((1, 2), (1, 2)),
    lhs_dilation=(2, 2),
    dimension_numbers=("NHWC", "HWIO", "NHWC"),
  )
  assert ref(x, k).shape == (n, 2 * h, 2 * w, o)
  assert_equal_with_gradients(lambda x, k: ops.conv_transpose_x2(x, k, policy), ref, x, k)


@pytest.mark.parametrize("features,ksize", [(3, 3), (16, 3), (3, 7)])
def test_reflect_conv_equals_valid_conv_on_reflect_padded_input(features, ksize):
  """Forward and gradients equal the textbook reflect-pad + VALID conv (both code paths)."""
  x = np.random.default_rng(2).normal(size=(2, 11, 9, 4)).astype(np.float32)
  conv = layers.ReflectConv(features, ksize)
  params = conv.init(jax.random.key(0), x)
  p = ksize // 2

  def reference(params, x):
    padded = jnp.pad(x, ((0, 0), (p, p), (p, p), (0, 0)), mode="reflect")
    y = jax.lax.conv_general_dilated(
      padded,
      params["params"]["conv"]["kernel"],
      (1, 1),
      "VALID",
      dimension_numbers=("NHWC", "HWIO", "NHWC"),
    )
    return y + params["params"]["conv"]["bias"]

  np.testing.assert_allclose(conv.apply(params, x), reference(params, x), atol=1e-5)
  loss = lambda f: lambda params, x: jnp.sum(jnp.sin(f(params, x)))
  got = jax.grad(loss(conv.apply), argnums=(0, 1))(params, x)
  want = jax.grad(loss(reference), argnums=(0, 1))(params, x)
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4), got, want)


@pytest.mark.parametrize("path", ["xla", "by_image", "few_outputs"])
@pytest.mark.parametrize(
  "shape",
  [
    # (images, size, in, out, kernel, stride, padding)
    (3, 13, 5, 17, 3, 1, "SAME"),
    (2, 16, 4, 20, 4, 2, ((1, 1), (1, 1))),  # PatchGAN's stride-2 4x4
    (2, 15, 4, 16, 4, 2, ((1, 1), (1, 1))),  # odd size: the dilated dy window crops
    (2, 12, 5, 3, 7, 1, ((3, 3), (3, 3))),  # an RGB output layer
    (2, 8, 3, 12, 2, 1, ((0, 1), (0, 1))),  # UpConv's sub-pixel 2x2
    (2, 12, 5, 16, 3, 1, "VALID"),
    (2, 13, 4, 16, 3, 2, "VALID"),
  ],
)
def test_conv2d_gradients_equal_xla_convolution(path, shape):
  """conv2d's CPU kernel gradients (each path forced on) equal lax.conv_general_dilated's."""
  n, size, i, o, k, s, pad = shape
  policy = ops.ConvPolicy(
    winograd_channels=1 << 30,
    few_outputs={"few_outputs": 1 << 30, "by_image": 0, "xla": 0}[path],
    by_image_bytes=0 if path == "by_image" else 1 << 62,
  )
  rng = np.random.default_rng(0)
  x = rng.normal(size=(n, size, size, i)).astype(np.float32)
  w = rng.normal(size=(k, k, i, o)).astype(np.float32)
  ref = lambda x, w: jax.lax.conv_general_dilated(
    x, w, (s, s), pad, dimension_numbers=("NHWC", "HWIO", "NHWC")
  )
  ours = lambda x, w: ops.conv2d(x, w, (s, s), pad, policy)
  loss = lambda f: lambda x, w: jnp.sum(jnp.sin(f(x, w)))
  np.testing.assert_allclose(ours(x, w), ref(x, w), rtol=1e-5, atol=1e-4)
  got = jax.jit(jax.grad(loss(ours), argnums=(0, 1)))(x, w)
  want = jax.jit(jax.grad(loss(ref), argnums=(0, 1)))(x, w)
  for a, b in zip(got, want):
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-3 * float(np.abs(b).max()))


def assert_conv2d_equals_xla(x, w, pad, policy):
  """conv2d(x, w, stride 1, pad) under `policy`, forward and both gradients, equals
  lax.conv_general_dilated's up to float32 rounding."""
  ref = lambda x, w: jax.lax.conv_general_dilated(
    x, w, (1, 1), pad, dimension_numbers=("NHWC", "HWIO", "NHWC")
  )
  assert_equal_with_gradients(lambda x, w: ops.conv2d(x, w, (1, 1), pad, policy), ref, x, w)


@pytest.mark.parametrize(
  "shape,padding",
  [((2, 8, 10, 3, 5), ((1, 1), (1, 1))), ((1, 6, 4, 16, 8), ((1, 0), (1, 0)))],
)
def test_stride2_phases_conv2d_equals_xla_convolution(shape, padding):
  """conv2d's stride2_phases path (3x3 stride 2, gradients by output phases): forward and
  both gradients equal lax.conv_general_dilated's."""
  n, h, w, i, o = shape
  x = jnp.asarray(np.random.default_rng(0).normal(size=(n, h, w, i)), jnp.float32)
  k = jnp.asarray(np.random.default_rng(1).normal(size=(3, 3, i, o)), jnp.float32)
  assert ops.DEFAULT.cpu_path(x, k, (2, 2), padding) == "stride2_phases"
  ref = lambda x, k: jax.lax.conv_general_dilated(
    x, k, (2, 2), padding, dimension_numbers=("NHWC", "HWIO", "NHWC")
  )
  assert_equal_with_gradients(lambda x, k: ops.conv2d(x, k, (2, 2), padding), ref, x, k)


@pytest.mark.parametrize("tile", [2, 4])
@pytest.mark.parametrize(
  "shape",
  [
    # (images, height, width, in, out, padding)
    (2, 12, 16, 4, 5, "SAME"),
    (1, 13, 10, 3, 6, "SAME"),  # not whole tiles: padded and cropped
    (2, 11, 9, 4, 4, "VALID"),  # ReflectConv's form
    (1, 9, 14, 2, 3, ((0, 2), (1, 0))),
  ],
)
def test_winograd_conv2d_equals_xla_convolution(tile, shape):
  """conv2d's Winograd F(2x2, 3x3) and F(4x4, 3x3) paths: forward and both gradients equal
  lax.conv_general_dilated's, up to Winograd's rounding."""
  policy = ops.ConvPolicy(
    winograd_channels=1, winograd_min_size=1, winograd_tile4_size=0 if tile == 4 else 1 << 30
  )
  n, h, w_, i, o, pad = shape
  rng = np.random.default_rng(7)
  x = rng.normal(size=(n, h, w_, i)).astype(np.float32)
  w = rng.normal(size=(3, 3, i, o)).astype(np.float32)
  pads = jax.lax.padtype_to_pads((h, w_), (3, 3), (1, 1), pad) if isinstance(pad, str) else pad
  assert policy.cpu_path(jnp.asarray(x), jnp.asarray(w), (1, 1), pads) == f"winograd_{tile}"
  assert_conv2d_equals_xla(x, w, pad, policy)


@pytest.mark.parametrize(
  "shape",
  [
    # (images, height, width, in, out, kernel, padding)
    (2, 8, 10, 5, 16, 2, ((0, 1), (0, 1))),  # UpConv's sub-pixel 2x2
    (1, 13, 12, 3, 16, 7, "VALID"),  # ReflectConv's 7x7
    (2, 9, 9, 4, 17, 4, ((1, 2), (2, 1))),  # a PatchGAN 4x4
  ],
)
def test_im2col_conv2d_equals_xla_convolution(shape):
  """conv2d's im2col path (stride-1 kernels other than 3x3, when the policy enables it):
  forward and both gradients equal lax.conv_general_dilated's."""
  n, h, w_, i, o, k, pad = shape
  rng = np.random.default_rng(3)
  x = rng.normal(size=(n, h, w_, i)).astype(np.float32)
  w = rng.normal(size=(k, k, i, o)).astype(np.float32)
  pads = jax.lax.padtype_to_pads((h, w_), (k, k), (1, 1), pad) if isinstance(pad, str) else pad
  policy = ops.ConvPolicy(im2col_bytes=2**20)
  assert policy.cpu_path(jnp.asarray(x), jnp.asarray(w), (1, 1), pads) == "im2col"
  assert_conv2d_equals_xla(x, w, pad, policy)


def test_conv2d_path_choice():
  """Winograd for 3x3 stride-1 float32 layers with enough channels (F(2x2, 3x3) for small
  outputs), XLA's otherwise; XLA's everywhere under ConvPolicy.xla()."""
  x, k = jnp.zeros((2, 16, 16, 256)), jnp.zeros((3, 3, 256, 256))
  same, valid = ((1, 1), (1, 1)), ((0, 0), (0, 0))
  path = ops.DEFAULT.cpu_path
  assert path(x, k, (1, 1), same) == "winograd_4"
  assert path(x, k, (1, 1), valid) == "winograd_2"  # a 14 x 14 output
  assert path(x[:, :8, :8], k, (1, 1), valid) == "xla"  # 6 x 6: not worth it
  assert path(x, k, (2, 2), same) == "stride2_phases"
  assert path(x, k, (2, 2), ((0, 1), (0, 1))) == "xla"  # 'SAME' at stride 2: not padded at the top
  assert path(x[:, :15], k, (2, 2), same) == "xla"  # odd height
  assert ops.ConvPolicy(stride2_phases=False).cpu_path(x, k, (2, 2), same) == "xla"
  assert path(x.astype(jnp.bfloat16), k.astype(jnp.bfloat16), (1, 1), same) == "xla"
  assert path(x, jnp.zeros((4, 4, 256, 256)), (1, 1), same) == "xla"
  assert path(x, jnp.zeros((3, 3, 256, 3)), (1, 1), same) == "few_outputs"
  assert path(jnp.zeros((2, 64, 64, 256)), jnp.zeros((4, 4, 256, 256)), (2, 2), same) == "by_image"
  # A small input, a large output (CycleGAN's 7x7 input layer at 256 px): by image too.
  first, pad3 = jnp.zeros((7, 7, 3, 64)), ((3, 3), (3, 3))
  assert path(jnp.zeros((2, 262, 262, 3)), first, (1, 1), pad3) == "by_image"
  assert path(jnp.zeros((1, 262, 262, 3)), first, (1, 1), pad3) == "xla"
  assert path(jnp.zeros((2, 64, 64, 3)), first, (1, 1), pad3) == "xla"  # 2 MiB out
  up, pad = jnp.zeros((2, 2, 128, 256)), ((0, 1), (0, 1))  # UpConv's sub-pixel kernel
  assert path(jnp.zeros((2, 128, 128, 128)), up, (1, 1), pad) == "by_image"
  im2col = ops.ConvPolicy(im2col_bytes=512 * 2**20).cpu_path
  assert im2col(jnp.zeros((2, 128, 128, 128)), up, (1, 1), pad) == "im2col"
  assert im2col(jnp.zeros((32, 128, 128, 128)), up, (1, 1), pad) == "by_image"  # 1 GiB
  assert im2col(x, jnp.zeros((4, 4, 256, 256)), (1, 1), same) == "im2col"
  assert im2col(x, k, (1, 1), same) == "winograd_4"
  assert im2col(jnp.zeros((2, 64, 64, 64)), jnp.zeros((3, 3, 64, 32)), (1, 1), same) == "xla"
  xla = ops.ConvPolicy.xla().cpu_path
  assert xla(x, k, (1, 1), same) == "xla"
  assert xla(x, jnp.zeros((3, 3, 256, 3)), (1, 1), same) == "xla"
  assert xla(jnp.zeros((2, 64, 64, 256)), jnp.zeros((4, 4, 256, 256)), (2, 2), same) == "xla"


def test_winograd_is_cpu_only():
  """Lowered for the CPU, a 3x3 layer's forward and gradients are Winograd's matmuls; for GPU
  and TPU they stay XLA's convolutions."""
  x, k = jnp.zeros((2, 16, 16, 64)), jnp.zeros((3, 3, 64, 64))
  grads = lambda x, k: jax.grad(lambda x, k: jnp.sum(ops.conv2d(x, k) ** 2), (0, 1))(x, k)
  for platform, convolutions in [("cpu", 0), ("cuda", 3), ("tpu", 3)]:
    text = jax.export.export(jax.jit(grads), platforms=[platform])(x, k).mlir_module()
    assert text.count("stablehlo.convolution") == convolutions, platform
    assert ("stablehlo.dot_general" in text) == (platform == "cpu"), platform


def test_networks_pass_their_conv_policy_to_every_convolution():
  """A network's conv_policy reaches all its convolutions: with ConvPolicy.xla() the CPU
  gradient has XLA's convolutions only (no Winograd or kernel-gradient matmuls), with the
  default it has matmuls; the variables are the same."""
  nets = [
    (generators.AdaINGenerator, {}, (X64, X64)),
    (generators.ResNetGenerator, dict(ngf=16, n_blocks=1), (X64,)),
    (discriminators.PatchGAN, dict(ndf=8), (X64,)),
    (discriminators.MultiScalePatchGAN, dict(ndf=8), (X64,)),
    (vgg.VGG19, {}, (X64, ("relu2_1",))),
  ]
  for make, kwargs, args in nets:
    arrays = [a for a in args if isinstance(a, jax.ShapeDtypeStruct)]
    static = [a for a in args if not isinstance(a, jax.ShapeDtypeStruct)]
    lowered, shapes = {}, {}
    for policy in (ops.DEFAULT, ops.ConvPolicy.xla()):
      net = make(**kwargs, conv_policy=policy)
      variables = abstract_init(net, *args)
      loss = lambda v, *xs: sum(jnp.sum(y) for y in jax.tree.leaves(net.apply(v, *xs, *static)))
      lowered[policy] = jax.jit(jax.grad(loss)).lower(variables, *arrays).as_text()
      shapes[policy] = jax.tree.map(lambda a: a.shape, variables)
    assert "dot_general" in lowered[ops.DEFAULT], make
    assert "dot_general" not in lowered[ops.ConvPolicy.xla()], make
    assert shapes[ops.DEFAULT] == shapes[ops.ConvPolicy.xla()], make


@pytest.mark.parametrize("path", ["by_image", "winograd"])
def test_conv2d_second_order_gradient_for_r1(path):
  """The gradient of an input-gradient penalty (R1) through conv2d equals XLA's."""
  policy = ops.ConvPolicy(by_image_bytes=0, winograd_channels=1)
  k, s = (4, 2) if path == "by_image" else (3, 1)
  x = np.random.default_rng(1).normal(size=(2, 8, 8, 3)).astype(np.float32)
  w = np.random.default_rng(2).normal(size=(k, k, 3, 16)).astype(np.float32)
  assert policy.cpu_path(jnp.asarray(x), jnp.asarray(w), (s, s), ((1, 1),) * 2).startswith(path)

  def penalty(conv):
    return lambda w: jnp.sum(jax.grad(lambda x: jnp.sum(jnp.tanh(conv(x, w))))(x) ** 2)

  ref = lambda x, w: jax.lax.conv_general_dilated(
    x, w, (s, s), ((1, 1), (1, 1)), dimension_numbers=("NHWC", "HWIO", "NHWC")
  )
  ours = lambda x, w: ops.conv2d(x, w, (s, s), ((1, 1), (1, 1)), policy)
  want = jax.grad(penalty(ref))(w)
  np.testing.assert_allclose(
    jax.grad(penalty(ours))(w), want, rtol=1e-4, atol=1e-5 * float(np.abs(want).max())
  )


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.bfloat16])
def test_instance_norm_gradients_equal_autodiff_of_the_formula(dtype):
  """instance_norm's closed-form VJP equals autodiff of the textbook formula, to second order."""
  rng = np.random.default_rng(4)
  x = jnp.asarray(rng.normal(size=(2, 5, 7, 3)) * 2 + 1, dtype)
  w, v = (jnp.asarray(rng.normal(size=x.shape), jnp.float32) for _ in range(2))

  def textbook(x, eps=1e-5):
    x32 = x.astype(jnp.float32)
    mean = jnp.mean(x32, axis=(1, 2), keepdims=True)
    return ((x32 - mean) / jnp.sqrt(jnp.var(x32, axis=(1, 2), keepdims=True) + eps)).astype(x.dtype)

  def derivatives(norm):
    loss = lambda x: jnp.sum(jnp.sin(norm(x).astype(jnp.float32)) * w)
    penalty = lambda x: jnp.sum(jax.grad(loss)(x).astype(jnp.float32) ** 2 * v)  # R1-like
    return norm(x), jax.grad(loss)(x), jax.grad(penalty)(x)

  tol = 1e-4 if dtype == jnp.float32 else 5e-2
  for got, want in zip(derivatives(layers.instance_norm), derivatives(textbook)):
    assert got.dtype == want.dtype == dtype
    scale = float(jnp.abs(want.astype(jnp.float32)).max())
    np.testing.assert_allclose(got.astype(jnp.float32), want.astype(jnp.float32), atol=tol * scale)


@pytest.mark.parametrize("shape", [(2, 8, 6, 3), (1, 7, 9, 4)])
def test_max_pool_2x2_equals_linen_max_pool(shape):
  """Forward and gradient equal nn.max_pool's 2x2/2 (distinct values: no ties), odd sizes too."""
  x = jnp.asarray(np.random.default_rng(5).permutation(np.prod(shape)).reshape(shape), jnp.float32)
  w = jnp.asarray(
    np.random.default_rng(6).normal(size=(shape[0], shape[1] // 2, shape[2] // 2, shape[3])),
    jnp.float32,
  )
  linen = lambda x: nn.max_pool(x, (2, 2), strides=(2, 2))
  np.testing.assert_array_equal(layers.max_pool_2x2(x), linen(x))
  grad = lambda pool: jax.grad(lambda x: jnp.sum(pool(x) * w))(x)
  np.testing.assert_array_equal(grad(layers.max_pool_2x2), grad(linen))


def test_conv_module_has_linen_conv_params():
  """layers.Conv keeps flax.linen.Conv's variables, so checkpoints and weight files still load."""
  x = jnp.zeros((1, 8, 8, 3))
  ours = layers.Conv(5, (3, 3)).init(jax.random.key(0), x)
  linen = nn.Conv(5, (3, 3)).init(jax.random.key(0), x)
  assert jax.tree.map(jnp.shape, ours) == jax.tree.map(jnp.shape, linen)
  np.testing.assert_allclose(
    layers.Conv(5, (3, 3)).apply(linen, x + 1.0),
    nn.Conv(5, (3, 3)).apply(linen, x + 1.0),
    atol=1e-6,
  )


@pytest.mark.parametrize("out_channels,by_image_bytes", [(3, 1 << 62), (16, 0), (16, 1 << 62)])
def test_conv2d_bfloat16_gradients(out_channels, by_image_bytes):
  """In bf16 compute every kernel-gradient path returns bf16, close to the float32 gradient."""
  policy = ops.ConvPolicy(by_image_bytes=by_image_bytes)
  rng = np.random.default_rng(3)
  x = jnp.asarray(rng.normal(size=(2, 10, 10, 4)), jnp.float32)
  w = jnp.asarray(rng.normal(size=(3, 3, 4, out_channels)) * 0.2, jnp.float32)
  loss = lambda x, w: jnp.sum(jnp.sin(ops.conv2d(x, w, policy=policy).astype(jnp.float32)))
  g16 = jax.jit(jax.grad(loss, argnums=1))(x.astype(jnp.bfloat16), w.astype(jnp.bfloat16))
  g32 = jax.jit(jax.grad(loss, argnums=1))(x, w)
  assert g16.dtype == jnp.bfloat16
  np.testing.assert_allclose(g16.astype(jnp.float32), g32, atol=0.05 * float(jnp.abs(g32).max()))


def test_residual_resnet_generator_starts_as_the_identity_and_learns_a_change():
  """residual=True: the same parameters; at init G(x) = x (clipped to +-0.99); the last conv
  is the only zero layer, so a gradient step moves the output away from x."""
  x = jnp.asarray(np.random.default_rng(0).uniform(-1, 1, (2, 16, 16, 3)), jnp.float32)
  plain, res = (generators.ResNetGenerator(ngf=8, n_blocks=1, residual=r) for r in (False, True))
  assert n_params(abstract_init(res, X64)) == n_params(abstract_init(plain, X64))
  params = jax.jit(res.init)(jax.random.key(0), x)
  clip = generators.ResNetGenerator.RESIDUAL_CLIP
  np.testing.assert_allclose(res.apply(params, x), jnp.clip(x, -clip, clip), atol=1e-6)
  target = -x  # any change: its gradient reaches the zero last conv
  loss = lambda p: jnp.mean((res.apply(p, x) - target) ** 2)
  grads = jax.grad(loss)(params)
  moved = jax.tree.map(lambda p, g: p - 0.1 * g, params, grads)
  assert loss(moved) < loss(params)
  assert float(jnp.max(jnp.abs(res.apply(moved, x)))) < 1  # still an image in (-1, 1)


def test_scanned_residual_blocks_equal_the_unrolled_ones():
  """scan_blocks: the residual blocks run as one lax.scan over their stacked parameters,
  which keep the per-block layout; output and gradients equal the unrolled loop's. (The
  blocks' convolutions take Winograd's path: the CPU scans only those, next test.)"""
  x = jnp.asarray(np.random.default_rng(0).uniform(-1, 1, (2, 16, 16, 3)), jnp.float32)
  winograd = ops.ConvPolicy(winograd_channels=1, winograd_min_size=1)
  scanned = generators.ResNetGenerator(ngf=8, n_blocks=3, scan_blocks=True, conv_policy=winograd)
  unrolled = scanned.clone(scan_blocks=False)
  params = jax.jit(scanned.init)(jax.random.key(0), x)
  assert [k for k in params["params"] if k.startswith("ResnetBlock")] == [
    f"ResnetBlock_{i}" for i in range(3)
  ]
  assert "while" in jax.jit(scanned.apply).lower(params, x).as_text()
  assert "while" not in jax.jit(unrolled.apply).lower(params, x).as_text()
  np.testing.assert_allclose(scanned.apply(params, x), unrolled.apply(params, x), atol=1e-5)
  grad = lambda g: jax.grad(lambda p: jnp.mean((g.apply(p, x) + x) ** 2))(params)
  g_scanned, g_unrolled = jax.tree.leaves(grad(scanned)), jax.tree.leaves(grad(unrolled))
  scale = max(float(jnp.abs(g).max()) for g in g_unrolled)
  for a, b in zip(g_scanned, g_unrolled):
    np.testing.assert_allclose(a, b, atol=1e-5 * scale)


@pytest.mark.parametrize("dtype, ngf", [(jnp.bfloat16, 64), (jnp.float32, 8)])
def test_scan_blocks_unrolls_on_the_cpu_without_winograd(dtype, ngf):
  """On the CPU, blocks whose convolutions would take XLA's path (bfloat16, or narrower than
  the policy's Winograd threshold) stay unrolled: XLA's convolution gradients in a loop are
  about 20x slower there. 64-channel float32 blocks (ngf=16) are scanned."""
  x = jnp.zeros((1, 32, 32, 3), jnp.float32)
  make = lambda dtype, ngf: generators.ResNetGenerator(
    ngf=ngf, n_blocks=2, scan_blocks=True, dtype=dtype
  )
  g = make(dtype, ngf)
  params = jax.eval_shape(g.init, jax.random.key(0), x)
  assert "while" not in jax.jit(g.apply).lower(params, x).as_text()
  g = make(jnp.float32, 16)
  params = jax.eval_shape(g.init, jax.random.key(0), x)
  assert "while" in jax.jit(g.apply).lower(params, x).as_text()
