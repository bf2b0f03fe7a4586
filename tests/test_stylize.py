"""Stylize: functional API and CLI on checkpoints that the tests train for a few steps."""

import os

import numpy as np
import pytest
from PIL import Image

import helpers
import ganstyle_jax
from ganstyle_jax import images, stylize, train
from ganstyle_jax.errors import UserError
from configs.tiny import tiny_config

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def image(h, w, seed):
  return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


@pytest.fixture(scope="module")
def adain_workdir(tmp_path_factory):
  wd = tmp_path_factory.mktemp("adain")
  config = tiny_config("adain_gan", "jit", steps=2)
  config.model.generator.encoder_layer = "relu3_1"
  train.train_and_evaluate(config, str(wd))
  return wd


@pytest.fixture(scope="module")
def stylizer(adain_workdir):
  return ganstyle_jax.load(adain_workdir)


def test_load_gives_trained_step(stylizer):
  assert stylizer.step == 2 and stylizer.name == "adain_gan"


def test_alpha_zero_is_the_content_reconstruction(stylizer):
  content = image(32, 48, 0)
  a = stylizer.stylize(content, image(40, 40, 1), alpha=0.0)
  b = stylizer.stylize(content, image(24, 56, 2), alpha=0.0)
  np.testing.assert_array_equal(a, b)  # the style plays no part
  x = images.to_float(content)
  recon = stylizer._decode(stylizer.variables, stylizer._encode(stylizer.variables, x))
  np.testing.assert_array_equal(a, images.to_uint8(np.asarray(recon)[0]))
  assert not np.array_equal(a, stylizer.stylize(content, image(40, 40, 1), alpha=1.0))


def test_style_weights_one_zero_equal_the_first_style(stylizer):
  content, s1, s2 = image(32, 32, 3), image(32, 32, 4), image(32, 32, 5)
  np.testing.assert_array_equal(
    stylizer.stylize(content, [s1, s2], style_weights=[1.0, 0.0]), stylizer.stylize(content, s1)
  )
  mixed = stylizer.stylize(content, [s1, s2], style_weights=[0.5, 0.5])
  assert not np.array_equal(mixed, stylizer.stylize(content, s1))


@pytest.mark.parametrize("h,w", [(37, 29), (33, 64), (8, 8)])
def test_output_size_equals_input_size(stylizer, h, w):
  assert stylizer.stylize(image(h, w, 6), image(30, 30, 7)).shape == (h, w, 3)


def test_max_size_caps_the_long_side(stylizer):
  assert stylizer.stylize(image(40, 80, 6), image(30, 30, 7), max_size=40).shape == (20, 40, 3)


def test_tiled_matches_untiled(stylizer):
  # A smooth image: the tiled result may differ only near seams, within the receptive field.
  yy, xx = np.mgrid[0:96, 0:128]
  content = np.stack([yy * 2, xx * 2, (yy + xx)], -1).clip(0, 255).astype(np.uint8)
  style = image(32, 32, 8)
  full = stylizer.stylize(content, style).astype(np.float32)
  tiled = stylizer.stylize(content, style, tile=64).astype(np.float32)
  # Stated tolerance: mean |difference| below 1.5 grey levels, 99th percentile below 8.
  diff = np.abs(full - tiled)
  assert diff.mean() < 1.5 and np.percentile(diff, 99) < 8.0, (diff.mean(), diff.max())


def test_mask_splits_two_styles_and_is_resized(stylizer, caplog):
  content, s1, s2 = image(32, 32, 9), image(32, 32, 10), image(32, 32, 11)
  ones = np.full((32, 32), 255, np.uint8)
  np.testing.assert_array_equal(
    stylizer.stylize(content, [s1, s2], mask=ones), stylizer.stylize(content, s1)
  )
  out = stylizer.stylize(content, [s1, s2], mask=np.full((16, 20), 255, np.uint8))
  assert out.shape == (32, 32, 3) and "resized" in caplog.text


def test_preserve_color_keeps_content_chroma(stylizer):
  content = (image(32, 32, 12) // 2 + 64).astype(np.uint8)  # mid-range colours: in gamut
  style = image(32, 32, 13)
  out = stylizer.stylize(content, style, preserve_color=True)
  cb_out = np.asarray(Image.fromarray(out).convert("YCbCr"))[..., 1:].astype(float)
  cb_in = np.asarray(Image.fromarray(content).convert("YCbCr"))[..., 1:].astype(float)
  # Chroma is the content's up to rounding, except where the new luma leaves the RGB gamut.
  assert np.median(np.abs(cb_out - cb_in)) <= 1.0
  plain = stylizer.stylize(content, style)
  cb_plain = np.asarray(Image.fromarray(plain).convert("YCbCr"))[..., 1:].astype(float)
  assert np.median(np.abs(cb_plain - cb_in)) > np.median(np.abs(cb_out - cb_in))


def test_bad_inputs_are_clear_errors(stylizer, tmp_path):
  with pytest.raises(UserError, match="outside"):
    stylizer.stylize(image(16, 16, 0), image(16, 16, 1), alpha=1.5)
  with pytest.raises(UserError, match="--max_size=-5: use a positive number of pixels"):
    stylizer.stylize(image(16, 16, 0), image(16, 16, 1), max_size=-5)  # not a 1 px image
  with pytest.raises(UserError, match="--tile=-3: use a positive tile size"):
    stylizer.stylize(image(16, 16, 0), image(16, 16, 1), tile=-3)
  with pytest.raises(
    UserError, match=r"--style_weights \[0.7, 0.3\]: use one .* per --style image \(1 of them\)"
  ):
    stylizer.stylize(image(16, 16, 0), image(16, 16, 1), style_weights=[0.7, 0.3])
  with pytest.raises(UserError, match="--direction=BtoA: this adain_gan checkpoint renders"):
    stylizer.stylize(image(16, 16, 0), image(16, 16, 1), direction="BtoA")  # not ignored
  with pytest.raises(UserError, match="no such image"):
    stylize.read_image(tmp_path / "missing.png")
  bad = tmp_path / "bad.jpg"
  bad.write_bytes(b"\xff\xd8\xff\xe0 truncated")
  with pytest.raises(UserError, match="cannot read"):
    stylize.read_image(bad)
  with pytest.raises(UserError, match="no checkpoints/: is it a training workdir"):
    ganstyle_jax.load(tmp_path)


def run_cli(*args):
  return helpers.run_module("stylize", *args)


def test_cli_end_to_end(adain_workdir, tmp_path):
  cdir = tmp_path / "content"
  cdir.mkdir()
  for i in range(2):
    Image.fromarray(image(30 + i, 40, i)).save(cdir / f"c{i}.png")
  Image.fromarray(image(32, 32, 9)).save(tmp_path / "s.png")
  out = tmp_path / "out"
  proc = run_cli(
    f"--workdir={adain_workdir}",
    f"--content={cdir}",
    f"--style={tmp_path / 's.png'}",
    f"--out={out}",
    "--alpha=0.5",
  )
  assert proc.returncode == 0, proc.stderr[-2000:]
  assert sorted(os.listdir(out)) == ["c0__s.png", "c1__s.png"]
  assert np.asarray(Image.open(out / "c1__s.png")).shape == (31, 40, 3)
  proc = run_cli(
    f"--workdir={tmp_path}", f"--content={cdir}", f"--style={tmp_path / 's.png'}", f"--out={out}"
  )
  assert proc.returncode == 2 and proc.stderr.strip().splitlines()[-1].startswith("error:")
  # A wrong option is one error before any image is read, not a skip for every image.
  proc = run_cli(
    f"--workdir={adain_workdir}",
    f"--content={cdir}",
    f"--style={tmp_path / 's.png'}",
    f"--out={tmp_path / 'out2'}",
    "--alpha=1.5",
  )
  assert proc.returncode == 2 and "skipped" not in proc.stderr, proc.stderr[-2000:]
  assert proc.stderr.strip().splitlines()[-1].startswith("error: --alpha=1.5 is outside [0, 1]")
  assert not (tmp_path / "out2").exists()


def test_cyclegan_direction_tile_and_style_error(tmp_path):
  train.train_and_evaluate(tiny_config("cyclegan", "jit", steps=2), str(tmp_path))
  s = ganstyle_jax.load(tmp_path)
  img = image(30, 34, 0)
  a, b = s.stylize(img), s.stylize(img, direction="BtoA")
  assert a.shape == img.shape and not np.array_equal(a, b)
  with pytest.raises(UserError, match="style-conditioned"):
    s.stylize(img, image(8, 8, 1))
  # --tile for G(x) is used, not ignored: tiles cover the image (same shape; a tile as large
  # as the image is the whole-image translation). Each tile has its own instance-norm
  # statistics, so tiled output is close to, not equal to, the untiled one.
  noise = image(96, 128, 16)
  full = s.stylize(noise)
  np.testing.assert_array_equal(s.stylize(noise, tile=128), full)
  tiled = s.stylize(noise, tile=64)
  assert tiled.shape == noise.shape and not np.array_equal(tiled, full)


def test_memory_guard_tiles_automatically_or_refuses(stylizer, caplog):
  content, style = image(96, 128, 14), image(32, 32, 15)
  per_pixel = stylizer._bytes_per_pixel()
  assert stylizer.memory_needed(96, 128) == int(per_pixel * 96 * 128) > 0
  try:
    stylizer.memory_limit = int(per_pixel * 72.5**2)  # a 72 px tile fits, the image not
    auto = stylizer.stylize(content, style)
    assert "stylizing in tiles of 72 px" in caplog.text
    np.testing.assert_array_equal(auto, stylizer.stylize(content, style, tile=72))
    stylizer.memory_limit = int(per_pixel * 40 * 40)  # below the smallest automatic tile
    with pytest.raises(UserError, match=r"needs about .* use --max_size=\d+ or less"):
      stylizer.stylize(content, style)
    with pytest.raises(UserError, match="--tile=96 needs about .* use a smaller --tile"):
      stylizer.stylize(content, style, tile=96)
  finally:
    stylizer.memory_limit = None


def test_cli_folder_mode_skips_bad_files_and_keeps_every_output(adain_workdir, tmp_path):
  cdir = tmp_path / "content"
  for sub in ("a", "b"):
    (cdir / sub).mkdir(parents=True)
    Image.fromarray(image(24, 24, 1)).save(cdir / sub / "x.png")
  Image.fromarray(image(24, 24, 2)).save(cdir / "x.png")
  Image.fromarray(image(24, 24, 3)).save(cdir / "x.jpg")
  (cdir / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated")
  Image.fromarray(image(32, 32, 9)).save(tmp_path / "s.png")
  out = tmp_path / "out"
  proc = run_cli(
    f"--workdir={adain_workdir}",
    f"--content={cdir}",
    f"--style={tmp_path / 's.png'}",
    f"--out={out}",
  )
  assert proc.returncode == 1, proc.stderr[-2000:]
  written = sorted(str(p.relative_to(out)) for p in out.rglob("*.png"))
  assert written == ["a/x__s.png", "b/x__s.png", "x__s.png", "x_png__s.png"], written
  assert proc.stderr.strip().splitlines()[-2:] == [
    "skipped 1 of 5 images:",
    f"  {cdir / 'broken.jpg'}: cannot read the image: "
    + proc.stderr.split("broken.jpg: cannot read the image: ")[1].splitlines()[0],
  ]


@pytest.mark.parametrize(
  "transfer,outlines", [("attention", False), ("colour", False), ("colour", True)]
)
def test_attention_generator_stylizes_through_g_and_refuses_adain_only_options(
  transfer, outlines, tmp_path
):
  import jax

  from ganstyle_jax import build
  from ganstyle_jax.models import generators, vgg

  config = tiny_config("adain_gan", "jit")
  config.model.generator.transfer = transfer
  config.model.generator.outlines = outlines
  setup = build.build_setup(config)
  g_params = setup.family.init_params(setup, jax.random.key(0), 32)["g_params"]
  vgg_variables = vgg.load_params("random")
  s = stylize.Stylizer(config, g_params, vgg_variables)
  content, style = image(32, 40, 0), image(24, 24, 1)
  out = s.stylize(content, style, alpha=0.7)
  g = setup.generator
  want = g.apply(
    generators.assemble_variables(vgg_variables, g_params),
    images.to_float(content),
    images.to_float(style),
    0.7,
  )
  np.testing.assert_array_equal(out, images.to_uint8(np.asarray(want)[0]))
  for kwargs in ({"style": [style, style], "style_weights": [1, 1]}, {"mask": image(32, 40, 3)}):
    kwargs.setdefault("style", [style, style])
    with pytest.raises(UserError, match=f"transfer='{transfer}'"):
      s.stylize(content, **kwargs)
  with pytest.raises(UserError, match=f"uses {transfer} transfer"):
    s.content_stats([content])
  if transfer == "colour":  # the exported graph (symbolic sizes) computes what G does
    from ganstyle_jax import export

    files = export.export(s, "stablehlo", tmp_path / "m")
    assert set(files) == {"model", "metadata"}
    c2, s2 = images.to_float(image(24, 16, 5)), images.to_float(image(40, 32, 6))
    got = export.load(files["model"])(content=c2, style=s2, alpha=np.float32(0.7))["output"]
    want = np.clip(
      g.apply(generators.assemble_variables(vgg_variables, g_params), c2, s2, 0.7), -1, 1
    )
    np.testing.assert_allclose(got, want, atol=1e-4)


def test_a_style_conditioned_run_loads_and_stylizes_with_its_trained_generator(tmp_path):
  """A run whose D judged (image, style image) pairs (loss.adv_condition=style, D's first conv
  reading 6 channels) restores through ganstyle_jax.load, and its G stylizes."""
  import jax

  from ganstyle_jax import build, checkpointing
  from ganstyle_jax.models import generators, vgg

  config = tiny_config("adain_gan", "jit", steps=2)
  config.data.synthetic_styles = 3
  config.data.real = "synthetic:same_style"
  config.loss.adv_condition = "style"
  config.model.generator.transfer = "colour"
  config.model.generator.outlines = True
  train.train_and_evaluate(config, str(tmp_path))
  s = ganstyle_jax.load(tmp_path)
  assert (s.step, s.name, s.config.loss.adv_condition) == (2, "adain_gan", "style")
  state = checkpointing.restore_run(str(tmp_path))[2]
  in_channels = {x.shape[2] for x in jax.tree.leaves(state.d_params) if x.ndim == 4}
  assert 6 in in_channels  # the checkpoint's D reads (image, style image): 3 + 3 channels
  content, style = image(32, 32, 7), image(32, 32, 8)
  want = build.build_setup(config).generator.apply(
    generators.assemble_variables(vgg.load_params("random"), state.g_params),
    images.to_float(content),
    images.to_float(style),
  )
  np.testing.assert_array_equal(s.stylize(content, style), images.to_uint8(np.asarray(want)[0]))
