"""Inception-v3 (torchvision Inception3 / pytorch-fid) layout, weight loading and features."""

import jax
import numpy as np
import pytest

from ganstyle_jax.errors import UserError
from ganstyle_jax.models import inception

# Entries of torchvision's Inception3 state dict, read off torchvision/models/inception.py
# (conv_block(in, out, kernel_size=...) -> OIHW [out, in, kh, kw]).
KNOWN_SHAPES = {
  "Conv2d_1a_3x3.conv.weight": (32, 3, 3, 3),
  "Conv2d_2b_3x3.conv.weight": (64, 32, 3, 3),
  "Conv2d_3b_1x1.conv.weight": (80, 64, 1, 1),
  "Conv2d_4a_3x3.conv.weight": (192, 80, 3, 3),
  "Conv2d_4a_3x3.bn.weight": (192,),
  "Conv2d_4a_3x3.bn.running_var": (192,),
  "Mixed_5b.branch5x5_1.conv.weight": (48, 192, 1, 1),
  "Mixed_5b.branch5x5_1.bn.running_mean": (48,),
  "Mixed_5b.branch_pool.conv.weight": (32, 192, 1, 1),
  "Mixed_5d.branch5x5_2.conv.weight": (64, 48, 5, 5),
  "Mixed_6a.branch3x3.conv.weight": (384, 288, 3, 3),
  "Mixed_6b.branch7x7_2.conv.weight": (128, 128, 1, 7),
  "Mixed_6e.branch7x7dbl_5.conv.weight": (192, 192, 1, 7),
  "Mixed_7a.branch3x3_2.conv.weight": (320, 192, 3, 3),
  "Mixed_7b.branch3x3dbl_1.conv.weight": (448, 1280, 1, 1),
  "Mixed_7b.branch3x3_2b.conv.weight": (384, 384, 3, 1),
  "Mixed_7c.branch_pool.conv.weight": (192, 2048, 1, 1),
  "Mixed_7c.branch_pool.bn.bias": (192,),
}


def random_state_dict(seed=0):
  """Random weights in torchvision names and shapes (He-scaled OIHW convs, sane BN statistics),
  plus the entries a real checkpoint also holds and the loader must skip."""
  rng = np.random.default_rng(seed)
  sd = {}
  for name, shape in inception.param_shapes().items():
    if name.endswith("conv.weight"):
      fan_in = np.prod(shape[1:])
      v = rng.normal(0, np.sqrt(2 / fan_in), shape)
    elif name.endswith("bn.weight"):
      v = rng.uniform(0.8, 1.2, shape)
    elif name.endswith("running_var"):
      v = rng.uniform(0.5, 1.5, shape)
    else:  # bn.bias, bn.running_mean
      v = rng.normal(0, 0.1, shape)
    sd[name] = v.astype(np.float32)
    if name.endswith("running_var"):
      sd[name.replace("running_var", "num_batches_tracked")] = np.array(0, np.int64)
  sd["fc.weight"] = np.zeros((1008, 2048), np.float32)  # pytorch-fid: 1008 classes
  sd["fc.bias"] = np.zeros((1008,), np.float32)
  sd["AuxLogits.conv0.conv.weight"] = np.zeros((128, 768, 1, 1), np.float32)
  return sd


@pytest.fixture(scope="module")
def state_dict():
  return random_state_dict()


@pytest.fixture(scope="module")
def weight_files(tmp_path_factory, state_dict):
  from safetensors.numpy import save_file

  d = tmp_path_factory.mktemp("inception")
  np.savez(d / "pt_inception.npz", **state_dict)
  save_file(state_dict, str(d / "pt_inception.safetensors"))
  return d


@pytest.fixture(scope="module")
def images():
  # Small, non-square: the model resizes them to 299x299.
  return np.random.default_rng(1).uniform(-1, 1, (2, 24, 32, 3)).astype(np.float32)


@pytest.fixture(scope="module")
def outputs(weight_files, images):
  """The two forwards of this file: torchvision blocks and pytorch-fid blocks."""
  variables = inception.load_params(str(weight_files / "pt_inception.npz"))
  return {
    fid: np.asarray(jax.jit(inception.InceptionV3(fid_variant=fid).apply)(variables, images))
    for fid in (False, True)
  }


def test_state_dict_layout_matches_torchvision():
  shapes = inception.param_shapes()
  for name, shape in KNOWN_SHAPES.items():
    assert shapes[name] == shape, name
  # 94 BasicConv2d outside AuxLogits, 5 entries each (conv.weight, bn weight/bias/mean/var).
  assert len(shapes) == 94 * 5
  assert not any(k.startswith(("fc.", "AuxLogits.")) for k in shapes)
  # torchvision's Inception_V3_Weights num_params 27,161,264 minus fc and AuxLogits.
  fc = 2048 * 1000 + 1000
  aux = 768 * 128 + 2 * 128 + 128 * 768 * 5 * 5 + 2 * 768 + 768 * 1000 + 1000
  assert inception.num_params(shapes) == 27_161_264 - fc - aux == inception.NUM_FEATURE_PARAMS


def test_npz_and_safetensors_load_the_same_weights(weight_files, state_dict):
  p_npz = inception.load_params(str(weight_files / "pt_inception.npz"))
  p_st = inception.load_params(weight_files / "pt_inception.safetensors")
  jax.tree.map(np.testing.assert_array_equal, p_npz, p_st)
  k = p_npz["params"]["Mixed_6e"]["branch7x7dbl_5"]["conv"]["kernel"]
  assert k.shape == (1, 7, 192, 192)  # HWIO
  np.testing.assert_array_equal(
    k, np.transpose(state_dict["Mixed_6e.branch7x7dbl_5.conv.weight"], (2, 3, 1, 0))
  )
  bn = p_npz["batch_stats"]["Mixed_5b"]["branch5x5_1"]["bn"]
  np.testing.assert_array_equal(bn["var"], state_dict["Mixed_5b.branch5x5_1.bn.running_var"])
  np.testing.assert_array_equal(
    p_npz["params"]["Conv2d_1a_3x3"]["bn"]["scale"], state_dict["Conv2d_1a_3x3.bn.weight"]
  )
  # Round trip back to the (feature part of the) state dict.
  back = inception.to_state_dict(p_npz)
  assert back.keys() == inception.param_shapes().keys()
  for name, v in back.items():
    np.testing.assert_array_equal(v, state_dict[name])


def test_pool3_features(outputs):
  f = outputs[False]
  assert f.shape == (2, inception.FEATURE_DIM)
  assert np.isfinite(f).all() and (f >= 0).all()  # the mean of ReLU outputs
  assert f.std() > 0 and not np.allclose(f[0], f[1])


def test_fid_variant_changes_the_features(outputs):
  a, b = outputs[False], outputs[True]
  assert b.shape == (2, 2048) and np.isfinite(b).all() and (b >= 0).all()
  assert not np.allclose(a, b, rtol=1e-3, atol=1e-5)


def _torch_bilinear_1d(n_in, n_out):
  """Interpolation matrix of F.interpolate(mode='bilinear', align_corners=False) on one axis."""
  m = np.zeros((n_out, n_in))
  for i in range(n_out):
    src = max((i + 0.5) * n_in / n_out - 0.5, 0.0)
    i0 = min(int(np.floor(src)), n_in - 1)
    i1 = min(i0 + 1, n_in - 1)
    m[i, i0] += 1 - (src - i0)
    m[i, i1] += src - i0
  return m


@pytest.mark.parametrize("size_in", [(5, 7), (13, 11)])  # up- and downsampling
def test_resize_and_pools_match_torch_semantics(size_in):
  rng = np.random.default_rng(2)
  x = rng.normal(size=(1, *size_in, 2)).astype(np.float32)
  out = np.asarray(inception.resize_bilinear(x, 9))
  ref = np.einsum(
    "ih,jw,nhwc->nijc", _torch_bilinear_1d(size_in[0], 9), _torch_bilinear_1d(size_in[1], 9), x
  )
  np.testing.assert_allclose(out, ref, rtol=1e-5, atol=1e-5)
  # 3x3 / stride 1 / padding 1 average pool, with (torchvision) and without (pytorch-fid) the
  # zero padding in the count; at a corner only 4 of the 9 taps are inside the image.
  x1 = np.ones((1, 4, 4, 1), np.float32)
  with_pad = np.asarray(inception._avg_pool_3x3(x1, count_include_pad=True))
  without = np.asarray(inception._avg_pool_3x3(x1, count_include_pad=False))
  assert with_pad[0, 0, 0, 0] == pytest.approx(4 / 9) and with_pad[0, 1, 1, 0] == 1
  np.testing.assert_allclose(without, 1.0)


def _write(path, sd):
  np.savez(path, **sd)
  return str(path)


def test_missing_key_is_a_clear_error(tmp_path, state_dict):
  sd = dict(state_dict)
  del sd["Mixed_6c.branch7x7_3.bn.running_mean"]
  with pytest.raises(UserError) as e:
    inception.load_params(_write(tmp_path / "missing.npz", sd))
  msg = str(e.value)
  assert "Mixed_6c.branch7x7_3.bn.running_mean is missing" in msg and "docstring" in msg
  assert "\n" not in msg


def test_wrong_shape_is_a_clear_error(tmp_path, state_dict):
  sd = dict(state_dict)
  sd["Mixed_5c.branch1x1.conv.weight"] = np.zeros((64, 256, 3, 3), np.float32)
  with pytest.raises(
    UserError,
    match=r"Mixed_5c.branch1x1.conv.weight has shape "
    r"\(64, 256, 3, 3\), expected \(64, 256, 1, 1\)",
  ):
    inception.load_params(_write(tmp_path / "shape.npz", sd))


def test_unexpected_key_is_a_clear_error(tmp_path, state_dict):
  sd = dict(state_dict, **{"features.0.weight": np.zeros((64, 3, 3, 3), np.float32)})
  with pytest.raises(UserError, match="unexpected entry features.0.weight"):
    inception.load_params(_write(tmp_path / "other.npz", sd))


def test_file_errors(tmp_path):
  with pytest.raises(UserError, match="nope.npz' does not exist.*conversion snippet"):
    inception.load_params(str(tmp_path / "nope.npz"))
  with pytest.raises(UserError, match="PyTorch pickles are not read.*convert"):
    inception.load_params(str(tmp_path / "pt_inception-2015-12-05-6726825d.pth"))
  txt = tmp_path / "weights.txt"
  txt.write_text("x")
  with pytest.raises(UserError, match="unknown format '.txt'"):
    inception.load_params(str(txt))
  bad = tmp_path / "corrupt.safetensors"
  bad.write_bytes(b"\x00" * 16)
  with pytest.raises(UserError, match="corrupt.safetensors: cannot read .safetensors weights"):
    inception.load_params(str(bad))


def test_bad_input_is_a_user_error():
  with pytest.raises(UserError, match="input_transform 'caffe'"):
    inception.InceptionV3(input_transform="caffe").init(
      jax.random.key(0), np.zeros((1, 8, 8, 3), np.float32)
    )


# --------------------------------------------------------------- NumPy reference of two blocks


def _np_conv_block(sd, name, x, padding=(0, 0), stride=1):
  """torchvision BasicConv2d on NHWC x with the OIHW weights of state dict `sd`."""
  w = sd[f"{name}.conv.weight"].astype(np.float64)
  _, _, kh, kw = w.shape
  ph, pw = padding
  xp = np.pad(x, ((0, 0), (ph, ph), (pw, pw), (0, 0)))
  oh, ow = (xp.shape[1] - kh) // stride + 1, (xp.shape[2] - kw) // stride + 1
  y = sum(
    np.einsum(
      "nhwc,oc->nhwo",
      xp[:, i : i + stride * oh : stride, j : j + stride * ow : stride],
      w[:, :, i, j],
    )
    for i in range(kh)
    for j in range(kw)
  )
  y = (y - sd[f"{name}.bn.running_mean"]) / np.sqrt(sd[f"{name}.bn.running_var"] + 1e-3) * sd[
    f"{name}.bn.weight"
  ] + sd[f"{name}.bn.bias"]
  return np.maximum(y, 0)


def _np_pool_3x3(x, kind):
  """F.avg_pool2d(3, 1, 1) with/without count_include_pad, or F.max_pool2d(3, 1, 1)."""
  fill = -np.inf if kind == "max" else 0.0
  xp = np.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)), constant_values=fill)
  taps = [xp[:, i : i + x.shape[1], j : j + x.shape[2]] for i in range(3) for j in range(3)]
  if kind == "max":
    return np.max(taps, axis=0)
  count = 9.0 if kind == "avg" else _np_pool_3x3(np.ones_like(x[..., :1]), "avg") * 9
  return np.sum(taps, axis=0) / count


def _np_inception_c(sd, m, x, pool):
  c = lambda name, h, p=(0, 0): _np_conv_block(sd, f"{m}.{name}", h, p)
  b7 = c("branch7x7_3", c("branch7x7_2", c("branch7x7_1", x), (0, 3)), (3, 0))
  bd = c("branch7x7dbl_1", x)
  for i, p in ((2, (3, 0)), (3, (0, 3)), (4, (3, 0)), (5, (0, 3))):
    bd = c(f"branch7x7dbl_{i}", bd, p)
  return np.concatenate([c("branch1x1", x), b7, bd, c("branch_pool", _np_pool_3x3(x, pool))], -1)


def _np_inception_e(sd, m, x, pool):
  c = lambda name, h, p=(0, 0): _np_conv_block(sd, f"{m}.{name}", h, p)
  b3 = c("branch3x3_1", x)
  b3 = np.concatenate([c("branch3x3_2a", b3, (0, 1)), c("branch3x3_2b", b3, (1, 0))], -1)
  bd = c("branch3x3dbl_2", c("branch3x3dbl_1", x), (1, 1))
  bd = np.concatenate([c("branch3x3dbl_3a", bd, (0, 1)), c("branch3x3dbl_3b", bd, (1, 0))], -1)
  return np.concatenate([c("branch1x1", x), b3, bd, c("branch_pool", _np_pool_3x3(x, pool))], -1)


@pytest.mark.parametrize("fid", [False, True])
def test_blocks_match_numpy_reference(weight_files, state_dict, fid):
  """Mixed_6b (1x7 / 7x1 convs) and Mixed_7c (split 1x3 / 3x1 branches; pytorch-fid's max
  pool) against a float64 NumPy transcription of torchvision's / pytorch-fid's forward."""
  variables = inception.load_params(str(weight_files / "pt_inception.npz"))
  sub = lambda m: {c: variables[c][m] for c in ("params", "batch_stats")}
  rng = np.random.default_rng(5)
  x6 = np.abs(rng.normal(size=(1, 5, 6, 768))).astype(np.float32)
  x7 = np.abs(rng.normal(size=(1, 4, 3, 2048))).astype(np.float32)
  got6 = inception.InceptionC(128, fid_variant=fid).apply(sub("Mixed_6b"), x6)
  got7 = inception.InceptionE("max" if fid else "avg").apply(sub("Mixed_7c"), x7)
  pool = "avg_no_pad" if fid else "avg"
  np.testing.assert_allclose(
    got6, _np_inception_c(state_dict, "Mixed_6b", x6, pool), rtol=1e-4, atol=1e-4
  )
  np.testing.assert_allclose(
    got7, _np_inception_e(state_dict, "Mixed_7c", x7, "max" if fid else "avg"), rtol=1e-4, atol=1e-4
  )
