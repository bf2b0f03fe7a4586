"""Export for serving: parity of the StableHLO and ONNX artifacts with `ganstyle_jax.load`'s
model output (seeded random params and a checkpoint trained for two steps), byte-identical
re-exports, the metadata, and bad input as one line.

The ONNX tests need jax2onnx (installed apart, see the README) and onnx/onnxruntime; they skip
where those are missing. Parity is checked on float outputs (max |difference| <= 1e-4) against
the Stylizer's own path (the same params, its default CPU convolution paths), and on uint8
against `Stylizer.stylize` (at most one grey level: the rounding of nearly equal floats).
"""

import os
import sys

import jax
import numpy as np
import pytest

import helpers
import ganstyle_jax
from ganstyle_jax import build, export, images, stylize, train
from ganstyle_jax.errors import UserError
from ganstyle_jax.models import vgg as vgg_lib
from configs.tiny import tiny_config

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TOL = 1e-4
# (content, style) sizes; the styles reuse the content sizes: fewer shapes for the Stylizer's
# reference path to compile.
SIZES = [((32, 32), (32, 48)), ((32, 48), (48, 32)), ((48, 32), (32, 32))]
ALPHAS = [0.0, 0.5, 1.0]
FORMATS = ["stablehlo", "onnx"]
MAX_DIFF: dict[str, float] = {}  # measured parity, printed at the end (pytest -s)


def image(h, w, seed):
  return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def need(fmt):
  """Skips the ONNX cases where the [export] extra or jax2onnx (installed apart) is missing."""
  if fmt == "onnx":
    pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    pytest.importorskip(
      "jax2onnx", reason=f"pip install --no-deps jax2onnx=={export.JAX2ONNX_VERSION} (README)"
    )


def record(key, diff):
  MAX_DIFF[key] = max(MAX_DIFF.get(key, 0.0), float(diff))
  assert diff <= TOL, (key, diff)


@pytest.fixture(scope="module", autouse=True)
def report_diffs():
  yield
  if MAX_DIFF:
    print("\nexport parity, max |difference|:", *(f"{k}: {v:.2e}" for k, v in MAX_DIFF.items()))


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
  """adain_gan trained for 2 steps with EMA params (what load() and export use)."""
  wd = tmp_path_factory.mktemp("adain")
  config = tiny_config("adain_gan", "jit", steps=2)
  config.model.ema_decay = 0.5
  config.eval_every_steps = config.sample_every_steps = 0
  train.train_and_evaluate(config, str(wd))
  return wd


@pytest.fixture(scope="module")
def trained(workdir):
  return ganstyle_jax.load(workdir)


@pytest.fixture(scope="module")
def exports(workdir, trained, tmp_path_factory):
  """{format: (files, Artifact)} of the trained checkpoint, exported once per format: StableHLO
  from the workdir (as the CLI does), ONNX from the loaded Stylizer (no second load)."""
  out, done = tmp_path_factory.mktemp("exports"), {}

  def get(fmt):
    need(fmt)
    if fmt not in done:
      path = out / f"adain.{fmt}"
      if fmt == "stablehlo":
        files = export.export_workdir(workdir, fmt, path, step=2)
      else:
        files = export.export(trained, fmt, path)
      done[fmt] = files, export.load(files["model"])
    return done[fmt]

  return get


def random_stylizer(model, seed=0, residual=False, colour=False):
  """A Stylizer of the tiny config with seeded random generator params: the init's shapes
  (traced, not run) filled with fan-in-scaled normal values, which costs no compilation.
  residual: cyclegan's residual generator (model.generator.residual); colour: adain_gan's
  colour generator with its smoothed query and outlines (the demo's)."""
  config = tiny_config(model)
  if residual:
    config.model.generator.residual = True
  if colour:
    g = config.model.generator
    g.transfer, g.outlines, g.smooth_query = "colour", True, True
  setup = build.build_setup(config)
  shapes = jax.eval_shape(
    lambda k: setup.family.init_params(setup, k, config.data.image_size)["g_params"],
    jax.random.key(0),
  )
  rng = np.random.default_rng(seed)
  scale = lambda shape: 1 / np.sqrt(np.prod(shape[:-1])) if len(shape) > 1 else 0.1
  g_params = jax.tree.map(
    lambda x: (rng.standard_normal(x.shape) * scale(x.shape)).astype(x.dtype), shapes
  )
  vgg_variables = vgg_lib.load_params("random") if setup.family.needs_vgg else None
  return stylize.Stylizer(config, g_params, vgg_variables, step=0)


def adain_reference(stylizer, content, style, alpha, **kw):
  """The Stylizer's float model output [1, H, W, 3] (clipped) for uint8 content and style."""
  s_stats = stylizer.style_stats([style] if isinstance(style, np.ndarray) else style, **kw)
  out = stylizer._stylize_adain(images.to_float(content), s_stats, alpha, None, None)
  return np.clip(out, -1, 1)


def check_adain_parity(stylizer, artifact, key):
  for i, ((h, w), (sh, sw)) in enumerate(SIZES):
    content, style = image(h, w, i), image(sh, sw, 10 + i)
    for alpha in ALPHAS:
      out = artifact(
        content=images.to_float(content),
        style=images.to_float(style),
        alpha=np.float32(alpha),
      )["output"]
      assert out.shape == (1, h, w, 3)
      record(key, np.abs(out - adain_reference(stylizer, content, style, alpha)).max())
      if i == 1:  # the public API too (its memory guard compiles at 128 px: once)
        want = stylizer.stylize(content, style, alpha).astype(int)
        assert np.abs(images.to_uint8(out[0]).astype(int) - want).max() <= 1


@pytest.mark.parametrize("fmt", FORMATS)
def test_adain_trained_checkpoint_parity(trained, exports, fmt):
  files, artifact = exports(fmt)
  assert set(files) == {"model", "encoder", "decoder", "metadata"}
  check_adain_parity(trained, artifact, f"adain_gan trained {fmt}")


@pytest.mark.parametrize("fmt", FORMATS)
def test_adain_encoder_decoder_mix_styles_and_mask(trained, exports, fmt):
  """The encoder and decoder graphs reproduce stylize's style mixing and masks, the AdaIN
  target computed in NumPy as the metadata states it."""
  _, artifact = exports(fmt)
  content, s1, s2 = image(32, 48, 20), image(32, 32, 21), image(48, 32, 22)
  enc = lambda img: artifact.run("encoder", image=images.to_float(img))
  decode = lambda t: artifact.run("decoder", features=t)["output"]
  fc, (m1, d1), (m2, d2) = enc(content), *((e["mean"], e["std"]) for e in map(enc, (s1, s2)))
  f, c_mean, c_std = fc["features"], fc["mean"], fc["std"]
  alpha = 0.7
  mixed = export.adain_target(f, c_mean, c_std, 0.3 * m1 + 0.7 * m2, 0.3 * d1 + 0.7 * d2, alpha)
  want = adain_reference(trained, content, [s1, s2], alpha, weights=[0.3, 0.7])
  record(f"adain_gan encoder/decoder {fmt}", np.abs(decode(mixed) - want).max())

  mask = np.zeros((32, 48), np.float32)
  mask[:, :20] = 1.0
  fm = np.asarray(jax.image.resize(mask, f.shape[1:3], "linear"))[None, :, :, None]
  t1 = export.adain_target(f, c_mean, c_std, m1, d1, 1.0)
  t2 = export.adain_target(f, c_mean, c_std, m2, d2, 1.0)
  t = alpha * (fm * t1 + (1 - fm) * t2) + (1 - alpha) * f
  s_stats = trained.style_stats([s1, s2])
  m = trained._prepare_mask(mask, (32, 48), (32, 48))
  ref = trained._stylize_adain(images.to_float(content), s_stats, alpha, m, None)
  record(f"adain_gan encoder/decoder {fmt}", np.abs(decode(t) - np.clip(ref, -1, 1)).max())


def test_adain_reexport_is_byte_identical(exports, trained, tmp_path):
  """The Stylizer's export equals the workdir's (the same params as load()), byte for byte."""
  files, _ = exports("stablehlo")
  again = export.export(trained, "stablehlo", tmp_path / "adain")
  for name, path in files.items():
    assert again[name].name == path.name
    assert again[name].read_bytes() == path.read_bytes(), name


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize(
  "model,direction,residual",
  [("cyclegan", "BtoA", False), ("cyclegan", "AtoB", True), ("pix2pix", None, False)],
)
def test_translation_random_params_parity_and_identical_reexport(
  model, direction, residual, fmt, tmp_path
):
  need(fmt)
  s = random_stylizer(model, seed=4, residual=residual)
  files = export.export(s, fmt, tmp_path / "a" / "m", direction=direction)
  artifact = export.load(files["model"])
  assert artifact.meta["direction"] == (direction or "AtoB")
  m, n = s.multiple, artifact.meta["min_size"]
  sizes = [(n, n), (n, n + m), (n + m, n)] if model == "cyclegan" else [(n, n + m)]
  for i, (h, w) in enumerate(sizes):
    x = images.to_float(image(h, w, 30 + i))
    out = artifact(input=x)["output"]
    assert out.shape == (1, h, w, 3)
    ref = np.clip(np.asarray(s._translate(s.g_params, x, direction or "AtoB")), -1, 1)
    record(f"{model}{' residual' if residual else ''} random {fmt}", np.abs(out - ref).max())
  if model == "cyclegan" and not residual:  # exporting twice (in one process) gives the same bytes
    again = export.export(s, fmt, tmp_path / "b" / "m", direction=direction)
    for name, path in files.items():
      assert again[name].read_bytes() == path.read_bytes(), name


@pytest.mark.parametrize("fmt", FORMATS)
def test_colour_generator_random_params_parity(fmt, tmp_path):
  """The demo's generator (colour pick with smoothed query, outlines) keeps H, W, h, w
  symbolic in both formats: its 3x3 filters are convolutions of edge-padded images."""
  need(fmt)
  s = random_stylizer("adain_gan", seed=5, colour=True)
  artifact = export.load(export.export(s, fmt, tmp_path / "m")["model"])
  n, m = artifact.meta["min_size"], s.multiple
  for i, ((h, w), (sh, sw)) in enumerate((((n, n + m), (n + m, n)), ((n + 2 * m, n), (n, n)))):
    c, st = images.to_float(image(h, w, 40 + i)), images.to_float(image(sh, sw, 50 + i))
    out = artifact(content=c, style=st, alpha=np.float32(0.5))["output"]
    assert out.shape == (1, h, w, 3)
    ref = np.clip(np.asarray(s._generate(s.variables, c, st, np.float32(0.5))), -1, 1)
    record(f"adain_gan colour random {fmt}", np.abs(out - ref).max())


@pytest.mark.parametrize("fmt", FORMATS)
def test_metadata(exports, trained, fmt):
  _, artifact = exports(fmt)
  meta = artifact.meta
  assert meta["model"] == "adain_gan" and meta["step"] == trained.step == 2
  assert meta["size_multiple"] == trained.multiple == 2 and meta["min_size"] == 4
  assert meta["input_conventions"]["range"] == [-1.0, 1.0]
  assert meta["versions"]["jax"] == jax.__version__
  model = meta["graphs"]["model"]
  assert [i["name"] for i in model["inputs"]] == ["content", "style", "alpha"]
  assert [i["shape"] for i in model["inputs"]] == [[1, "H", "W", 3], [1, "h", "w", 3], []]
  assert [o["name"] for o in meta["graphs"]["encoder"]["outputs"]] == ["features", "mean", "std"]
  if fmt == "stablehlo":
    assert model["platforms"] == list(export.PLATFORMS)
  else:
    assert meta["versions"]["jax2onnx"] == export.JAX2ONNX_VERSION


def test_onnx_graphs_are_checked_standard_and_dynamic(exports):
  files, _ = exports("onnx")
  import onnx

  for name in ("model", "encoder", "decoder"):
    model = onnx.load(str(files[name]))
    onnx.checker.check_model(model, full_check=True)
    assert {n.domain for n in model.graph.node} <= {"", "ai.onnx"} and not model.functions
    assert {o.domain for o in model.opset_import} <= {"", "ai.onnx"}
  model = onnx.load(str(files["model"]))
  dims = lambda v: [d.dim_param or d.dim_value for d in v.type.tensor_type.shape.dim]
  assert [(i.name, dims(i)) for i in model.graph.input] == [
    ("content", [1, "H", "W", 3]),
    ("style", [1, "h", "w", 3]),
    ("alpha", []),
  ]
  assert [(o.name, dims(o)) for o in model.graph.output] == [("output", [1, "H", "W", 3])]


@pytest.mark.parametrize("fmt", FORMATS)
def test_size_not_a_multiple_is_one_clear_line(exports, fmt):
  _, artifact = exports(fmt)
  x = images.to_float(image(32, 32, 0))
  with pytest.raises(
    UserError, match=r"content is 31x32 \(WxH\).*multiples of 2 .*pad it to 32x32"
  ):
    artifact(content=x[:, :, :31], style=x, alpha=np.float32(1))
  with pytest.raises(UserError, match="at least 4"):
    artifact(content=x[:, :2, :2], style=x, alpha=np.float32(1))
  with pytest.raises(UserError, match="takes inputs content, style, alpha"):
    artifact(content=x)


def test_bad_workdir_format_direction_and_missing_jax2onnx(workdir, trained, tmp_path, monkeypatch):
  with pytest.raises(UserError, match="no checkpoints/: is it a training workdir"):
    export.export_workdir(tmp_path, "stablehlo", tmp_path / "m")
  with pytest.raises(UserError, match="--format=tflite: use one of stablehlo, onnx"):
    export.export_workdir(workdir, "tflite", tmp_path / "m")
  with pytest.raises(UserError, match="--direction=BtoA: adain_gan has none"):
    export.export(trained, "stablehlo", tmp_path / "m", direction="BtoA")
  with pytest.raises(UserError, match="--direction=BtoA: pix2pix has AtoB"):
    export.export(random_stylizer("pix2pix"), "stablehlo", tmp_path / "m", direction="BtoA")
  with pytest.raises(UserError, match="--platforms=metal"):
    export.export(trained, "stablehlo", tmp_path / "m", platforms=["metal"])
  monkeypatch.setitem(sys.modules, "jax2onnx", None)  # not installed
  with pytest.raises(
    UserError, match=r"needs jax2onnx: .*pip install --no-deps jax2onnx==0\.17\.1"
  ):
    export.export(trained, "onnx", tmp_path / "m")
  assert not list(tmp_path.glob("m*"))  # nothing written


def run_cli(*args):
  return helpers.run_module("export", *args)


def test_cli_error_is_one_line(tmp_path):
  proc = run_cli(f"--workdir={tmp_path}", "--format=stablehlo", f"--out={tmp_path / 'm'}")
  lines = proc.stderr.strip().splitlines()
  assert proc.returncode == 2 and lines == [
    f"error: {tmp_path} has no checkpoints/: is it a training workdir (train first)?"
  ], proc.stderr[-2000:]
