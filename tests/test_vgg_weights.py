"""VGG19 weight loading from files written in the real Keras and torchvision layouts."""

import h5py
import jax
import numpy as np
import pytest
from scipy import signal

from ganstyle_jax.errors import UserError
from ganstyle_jax.models import vgg

CAFFE_MEAN_BGR = np.array([103.939, 116.779, 123.68])


def random_weights(seed=0):
  """HWIO kernels for RGB input and biases for all 16 convs, small enough to keep values sane."""
  rng = np.random.default_rng(seed)
  out, in_ch = {}, 3
  for name in vgg.CONV_NAMES:
    c = vgg.CONV_CHANNELS[name]
    out[name] = (
      rng.normal(0, np.sqrt(2 / (9 * in_ch)), (3, 3, in_ch, c)).astype(np.float32),
      rng.normal(0, 0.1, (c,)).astype(np.float32),
    )
    in_ch = c
  return out


def write_keras_h5(path, weights, skip=(), reshape=None):
  """The layout of keras-applications' vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5:
  root attr layer_names, one group per layer with attr weight_names and datasets
  '<layer>_W_1:0' (HWIO kernel; conv1_1 reads BGR input) and '<layer>_b_1:0'."""
  layer_names = [b"input_1"]
  with h5py.File(path, "w") as f:
    f.attrs["backend"] = b"tensorflow"
    f.attrs["keras_version"] = b"2.0.8"
    for b, n, _ in vgg._BLOCKS:
      for i in range(1, n + 1):
        name, lname = f"conv{b}_{i}", f"block{b}_conv{i}"
        layer_names.append(lname.encode())
        if name in skip:
          continue
        g = f.create_group(lname)
        k, bias = weights[name]
        if name == "conv1_1":
          k = k[:, :, ::-1, :]  # the published file expects BGR input
        if name == reshape:
          k = k[..., :-1]
        wn = [f"{lname}_W_1:0".encode(), f"{lname}_b_1:0".encode()]
        g.attrs["weight_names"] = wn
        g.create_dataset(wn[0].decode(), data=k)
        g.create_dataset(wn[1].decode(), data=bias)
      pool = f"block{b}_pool"
      layer_names.append(pool.encode())
      f.create_group(pool).attrs["weight_names"] = np.array([], dtype="S1")
    f.attrs["layer_names"] = layer_names


def write_torch_npz(path, weights):
  sd = {}
  for name, idx in vgg.TORCH_INDEX.items():
    k, b = weights[name]
    sd[f"features.{idx}.weight"] = np.ascontiguousarray(np.transpose(k, (3, 2, 0, 1)))  # OIHW
    sd[f"features.{idx}.bias"] = b
  np.savez(path, **sd)
  return sd


def first_block_reference(x01_channels, kernels):
  """relu1_2 by SciPy cross-correlation with zero padding; x01_channels [H, W, 3] normalised."""
  h = x01_channels
  for k, b in kernels:
    out = np.stack(
      [
        sum(signal.correlate2d(h[..., i], k[:, :, i, o], mode="same") for i in range(h.shape[-1]))
        + b[o]
        for o in range(k.shape[-1])
      ],
      -1,
    )
    h = np.maximum(out, 0)
  return h


@pytest.fixture(scope="module")
def weight_files(tmp_path_factory):
  d = tmp_path_factory.mktemp("vgg")
  w = random_weights()
  write_keras_h5(d / "vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5", w)
  sd = write_torch_npz(d / "vgg19.npz", w)
  from safetensors.numpy import save_file

  save_file(sd, str(d / "vgg19.safetensors"))
  return d, w


def test_keras_and_torch_files_load_the_same_weights(weight_files):
  d, w = weight_files
  keras = vgg.load_params(str(d / "vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5"))
  torch_npz = vgg.load_params(str(d / "vgg19.npz"))
  torch_st = vgg.load_params(str(d / "vgg19.safetensors"))
  for name in vgg.CONV_NAMES:
    for p in (keras, torch_npz, torch_st):
      np.testing.assert_array_equal(p["params"][name]["kernel"], w[name][0])
      np.testing.assert_array_equal(p["params"][name]["bias"], w[name][1])
  # Same weights under the same input normalisation give the same features.
  x = np.random.default_rng(3).uniform(-1, 1, (1, 16, 16, 3)).astype(np.float32)
  same_norm = dict(keras, preprocess=torch_npz["preprocess"])
  f1 = vgg.features(same_norm, x, ["relu3_1"])["relu3_1"]
  f2 = vgg.features(torch_npz, x, ["relu3_1"])["relu3_1"]
  np.testing.assert_allclose(f1, f2, rtol=1e-5, atol=1e-5)


def test_first_block_matches_scipy_reference(weight_files):
  d, w = weight_files
  x = np.random.default_rng(4).uniform(-1, 1, (1, 12, 10, 3)).astype(np.float32)
  block1 = [w["conv1_1"], w["conv1_2"]]
  # Keras: BGR, 0-255, minus the mean pixel, with the BGR-ordered kernel as stored in the file.
  keras = vgg.load_params(str(d / "vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5"))
  bgr = ((x[0] + 1) * 127.5)[..., ::-1] - CAFFE_MEAN_BGR
  ref = first_block_reference(
    bgr, [(w["conv1_1"][0][:, :, ::-1, :], w["conv1_1"][1]), w["conv1_2"]]
  )
  np.testing.assert_allclose(
    vgg.features(keras, x, ["relu1_2"])["relu1_2"][0], ref, rtol=1e-3, atol=1e-2
  )
  # torchvision: RGB in [0, 1] standardised with the ImageNet mean/std.
  torch_p = vgg.load_params(str(d / "vgg19.npz"))
  rgb = ((x[0] + 1) / 2 - np.array(vgg.TORCH_MEAN)) / np.array(vgg.TORCH_STD)
  ref = first_block_reference(rgb, block1)
  np.testing.assert_allclose(
    vgg.features(torch_p, x, ["relu1_2"])["relu1_2"][0], ref, rtol=1e-4, atol=1e-4
  )


def test_missing_layer_is_a_clear_error(tmp_path):
  path = tmp_path / "missing.h5"
  write_keras_h5(path, random_weights(), skip=("conv3_2",))
  with pytest.raises(UserError, match="conv3_2 is missing"):
    vgg.load_params(str(path))


def test_wrong_shape_is_a_clear_error(tmp_path):
  path = tmp_path / "shape.h5"
  write_keras_h5(path, random_weights(), reshape="conv2_1")
  with pytest.raises(UserError, match=r"conv2_1 has kernel \(3, 3, 64, 127\)"):
    vgg.load_params(str(path))


def test_corrupt_and_missing_files(tmp_path):
  bad = tmp_path / "corrupt.h5"
  bad.write_bytes(b"not an hdf5 file" * 10)
  with pytest.raises(UserError, match="corrupt.h5: not a readable HDF5 file"):
    vgg.load_params(str(bad))
  bad_npz = tmp_path / "corrupt.npz"
  bad_npz.write_bytes(b"PK\x03\x04garbage")
  with pytest.raises(UserError, match="corrupt.npz: cannot read"):
    vgg.load_params(str(bad_npz))
  with pytest.raises(UserError, match="does not exist"):
    vgg.load_params(str(tmp_path / "nope.h5"))
  with pytest.raises(UserError, match="unknown format"):
    vgg.load_params(str(bad.with_suffix(".txt")) if bad.with_suffix(".txt").write_text("x") else "")


def test_imagenet_offline_error_names_url_and_path(tmp_path, monkeypatch):
  monkeypatch.setenv("GANSTYLE_CACHE", str(tmp_path))

  def no_network(*args, **kwargs):
    raise OSError("network unreachable")

  monkeypatch.setattr(vgg.urllib.request, "urlretrieve", no_network)
  with pytest.raises(UserError) as e:
    vgg.load_params("imagenet")
  msg = str(e.value)
  assert vgg.IMAGENET_URL in msg and str(tmp_path / vgg.IMAGENET_FILE) in msg
  assert "\n" not in msg


def test_imagenet_cached_file_is_verified(tmp_path, monkeypatch):
  monkeypatch.setenv("GANSTYLE_CACHE", str(tmp_path))
  write_keras_h5(tmp_path / vgg.IMAGENET_FILE, random_weights())
  with pytest.raises(UserError, match="does not match the published md5"):
    vgg.load_params("imagenet")


def test_random_weights_warn(caplog):
  p = vgg.load_params("random")
  assert "quality" in caplog.text or "weaker" in caplog.text
  assert vgg.num_conv_params(p["params"], "relu4_1") == 3_505_728
  assert all(np.isfinite(np.asarray(x)).all() for x in jax.tree.leaves(p))
