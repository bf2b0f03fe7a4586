"""VGG19 features (frozen) and the loading of published VGG19 weights.

`VGG19` maps images NHWC in [-1, 1] to a dict of named activations ('conv1_1', 'relu1_1', ...,
'relu5_1', 'pool1', ...), computing only up to the deepest layer asked for. Its variables are
a pytree `{'params': {conv1_1: {kernel, bias}, ...}, 'preprocess': {'mean', 'std'}}`: the input
normalisation belongs to the weights (Keras/Caffe weights expect BGR 0-255 minus the mean
pixel, torchvision weights RGB 0-1 standardised), so it travels in the 'preprocess' collection.
Kernels are stored HWIO for RGB input; BGR weights are converted at load time.

`load_params(spec)` returns that pytree for spec = 'imagenet' | 'random' | a file path:
- Keras `vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5` (groups block1_conv1, ... each
  holding datasets block1_conv1_W_1:0 and block1_conv1_b_1:0), read with h5py;
- torchvision `vgg19` state-dict names (features.0.weight, features.0.bias, ...) in a .npz or
  .safetensors file, OIHW kernels converted to HWIO.
"""

from __future__ import annotations

import hashlib
import logging
import os
import pathlib
import urllib.error
import urllib.request
from typing import Iterable, Mapping, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from ganstyle_jax import ops
from ganstyle_jax.errors import UserError
from ganstyle_jax.models import layers as L
from ganstyle_jax.models import state_dicts

Array = jax.Array

# (block, convs per block, channels) of VGG19's feature extractor.
_BLOCKS = ((1, 2, 64), (2, 2, 128), (3, 4, 256), (4, 4, 512), (5, 4, 512))
CONV_NAMES: tuple[str, ...] = tuple(f"conv{b}_{i}" for b, n, _ in _BLOCKS for i in range(1, n + 1))
CONV_CHANNELS: dict[str, int] = {f"conv{b}_{i}": c for b, n, c in _BLOCKS for i in range(1, n + 1)}
# torchvision's vgg19().features index of each conv.
TORCH_INDEX: dict[str, int] = dict(
  zip(CONV_NAMES, (0, 2, 5, 7, 10, 12, 14, 16, 19, 21, 23, 25, 28, 30, 32, 34))
)


def _layer_order() -> tuple[str, ...]:
  order = []
  for b, n, _ in _BLOCKS:
    for i in range(1, n + 1):
      order += [f"conv{b}_{i}", f"relu{b}_{i}"]
    order.append(f"pool{b}")
  return tuple(order)


LAYER_ORDER: tuple[str, ...] = _layer_order()
STYLE_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1")

TORCH_MEAN = (0.485, 0.456, 0.406)
TORCH_STD = (0.229, 0.224, 0.225)
CAFFE_MEAN_RGB = (123.68, 116.779, 103.939)

IMAGENET_URL = (
  "https://storage.googleapis.com/tensorflow/keras-applications/vgg19/"
  "vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5"
)
IMAGENET_FILE = "vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5"
IMAGENET_MD5 = "253f8cb515780f3b799900260a226db6"  # keras.applications.vgg19 file_hash


def convs_up_to(layer: str) -> tuple[str, ...]:
  """Names of the convolutions needed to compute `layer` (e.g. 'relu4_1')."""
  if layer not in LAYER_ORDER:
    raise UserError(f"unknown VGG19 layer {layer!r}; valid names: {', '.join(LAYER_ORDER)}")
  idx = LAYER_ORDER.index(layer)
  return tuple(n for n in LAYER_ORDER[: idx + 1] if n.startswith("conv"))


class VGG19(nn.Module):
  """VGG19 feature extractor; images NHWC in [-1, 1] -> {layer name: activation}.

  Attributes:
    dtype: computation dtype (the returned activations have it).
    conv_policy: the CPU path choice of its convolutions (`ops.conv2d`).
  """

  dtype: jnp.dtype = jnp.float32
  conv_policy: ops.ConvPolicy = ops.DEFAULT

  @nn.compact
  def __call__(self, x: Array, layers: Sequence[str] = ("relu5_1",)) -> dict[str, Array]:
    """Computes activations up to the deepest of `layers`.

    Args:
      x: images [N, H, W, 3] in [-1, 1].
      layers: names of the activations wanted ('relu4_1', 'conv3_2', 'pool2', ...).
    Returns:
      A dict holding every activation up to the deepest requested layer.
    """
    unknown = [l for l in layers if l not in LAYER_ORDER]
    if unknown:
      raise UserError(f"unknown VGG19 layer(s) {unknown}; valid names: {', '.join(LAYER_ORDER)}")
    last = max(LAYER_ORDER.index(l) for l in layers)
    mean = self.variable("preprocess", "mean", lambda: jnp.asarray(TORCH_MEAN, jnp.float32))
    std = self.variable("preprocess", "std", lambda: jnp.asarray(TORCH_STD, jnp.float32))
    h = (((x.astype(jnp.float32) + 1.0) * 0.5 - mean.value) / std.value).astype(self.dtype)
    out = {}
    for name in LAYER_ORDER[: last + 1]:
      kind = name[:4]
      if kind == "conv":
        h = L.Conv(
          CONV_CHANNELS[name],
          (3, 3),
          padding="SAME",
          dtype=self.dtype,
          kernel_init=nn.initializers.he_normal(),
          conv_policy=self.conv_policy,
          name=name,
        )(h)
      elif kind == "relu":
        h = nn.relu(h)
      else:
        h = L.max_pool_2x2(h)
      out[name] = h
    return out


def num_conv_params(params: Mapping, upto: str = "relu5_1") -> int:
  """Number of conv parameters needed up to `upto` (3,505,728 for 'relu4_1')."""
  return sum(
    int(np.prod(params[c][k].shape)) for c in convs_up_to(upto) for k in ("kernel", "bias")
  )


# ----------------------------------------------------------------------------- loading


def _variables(
  kernels: Mapping[str, np.ndarray],
  biases: Mapping[str, np.ndarray],
  mean: Sequence[float],
  std: Sequence[float],
  source: str,
) -> dict:
  """Validates shapes and assembles the variables pytree."""
  params = {}
  in_ch = 3
  for name in CONV_NAMES:
    out_ch = CONV_CHANNELS[name]
    if name not in kernels or name not in biases:
      raise UserError(
        f"{source}: layer {name} is missing; expected all 16 VGG19 conv layers "
        f"({CONV_NAMES[0]} ... {CONV_NAMES[-1]})"
      )
    k, b = np.asarray(kernels[name], np.float32), np.asarray(biases[name], np.float32)
    if k.shape != (3, 3, in_ch, out_ch) or b.shape != (out_ch,):
      raise UserError(
        f"{source}: layer {name} has kernel {k.shape} / bias {b.shape}, expected "
        f"{(3, 3, in_ch, out_ch)} / {(out_ch,)} (HWIO): is this VGG19?"
      )
    params[name] = {"kernel": jnp.asarray(k), "bias": jnp.asarray(b)}
    in_ch = out_ch
  return {
    "params": params,
    "preprocess": {"mean": jnp.asarray(mean, jnp.float32), "std": jnp.asarray(std, jnp.float32)},
  }


def _keras_conv_name(name: str) -> str:
  block, idx = name[4:].split("_")
  return f"block{block}_conv{idx}"


def load_keras_h5(path: str | os.PathLike) -> dict:
  """Reads Keras' VGG19 notop .h5 (Caffe-converted weights: BGR input, 0-255, mean pixel)."""
  import h5py  # local: only this loader needs it

  kernels, biases = {}, {}
  try:
    with h5py.File(path, "r") as f:
      for name in CONV_NAMES:
        group_name = _keras_conv_name(name)
        if group_name not in f:
          continue
        g = f[group_name]
        # The published file lists its datasets in the group's 'weight_names' attribute
        # ('block1_conv1_W_1:0', 'block1_conv1_b_1:0'); newer Keras saves use 'kernel'/'bias'.
        names = [
          n.decode() if isinstance(n, bytes) else str(n) for n in g.attrs.get("weight_names", [])
        ]
        names = names or sorted(g.keys())
        if len(names) != 2:
          raise UserError(
            f"{path}: group {group_name} holds {len(names)} weights, expected a kernel and a bias"
          )
        kernel_name = next((n for n in names if "_W" in n or "kernel" in n), names[0])
        bias_name = next(n for n in names if n != kernel_name)
        kernels[name], biases[name] = np.asarray(g[kernel_name]), np.asarray(g[bias_name])
  except OSError as e:
    raise UserError(
      f"{path}: not a readable HDF5 file ({e}); re-download or check the path"
    ) from None
  # Caffe-converted kernels read BGR: reorder the input channels of the first conv to RGB.
  if "conv1_1" in kernels:
    kernels["conv1_1"] = kernels["conv1_1"][:, :, ::-1, :]
  return _variables(
    kernels,
    biases,
    mean=[m / 255.0 for m in CAFFE_MEAN_RGB],
    std=[1.0 / 255.0] * 3,
    source=str(path),
  )


def load_torch(path: str | os.PathLike) -> dict:
  """Reads torchvision vgg19 state-dict weights (features.N.weight OIHW, features.N.bias)."""
  path = pathlib.Path(path)
  sd = state_dicts.read(path)

  # Accept 'features.0.weight' with or without a prefix such as 'vgg.' or 'module.'.
  def find(suffix: str):
    keys = [k for k in sd if k == suffix or k.endswith("." + suffix)]
    return sd[keys[0]] if keys else None

  kernels, biases = {}, {}
  for name, idx in TORCH_INDEX.items():
    w, b = find(f"features.{idx}.weight"), find(f"features.{idx}.bias")
    if w is None or b is None:
      continue
    if np.ndim(w) != 4:
      raise UserError(
        f"{path}: features.{idx}.weight ({name}) has shape {np.shape(w)}, "
        "expected a 4-D OIHW kernel"
      )
    kernels[name], biases[name] = np.transpose(w, (2, 3, 1, 0)), b
  return _variables(kernels, biases, TORCH_MEAN, TORCH_STD, source=str(path))


def random_params(seed: int = 0) -> dict:
  """He-initialised VGG19 variables (frozen features for offline runs and tests)."""
  logging.warning(
    "VGG19 weights 'random': frozen He-initialised features. Perceptual content/style losses "
    "and metrics work but are weaker than with ImageNet weights (model.vgg.weights=imagenet)."
  )
  # Compiled: one XLA graph instead of flax's op-by-op init (9 s -> 5 s cold, measured; a
  # persistent compilation cache makes it near-instant). Same values as the eager init.
  init = jax.jit(VGG19().init, static_argnums=2)
  return init(jax.random.key(seed), jnp.zeros((1, 32, 32, 3)), ("relu5_1",))


def cache_dir() -> pathlib.Path:
  """$GANSTYLE_CACHE, else ~/.cache/ganstyle_jax."""
  return pathlib.Path(
    os.environ.get("GANSTYLE_CACHE", pathlib.Path.home() / ".cache" / "ganstyle_jax")
  )


def _md5(path: pathlib.Path) -> str:
  h = hashlib.md5()
  with open(path, "rb") as f:
    for chunk in iter(lambda: f.read(1 << 20), b""):
      h.update(chunk)
  return h.hexdigest()


def imagenet_weights_path(download: bool = True) -> pathlib.Path:
  """Path of the verified Keras ImageNet VGG19 file, downloading it once if needed."""
  path = cache_dir() / IMAGENET_FILE
  if not path.exists() and download:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".part")
    logging.info("Downloading VGG19 ImageNet weights from %s", IMAGENET_URL)
    try:
      urllib.request.urlretrieve(IMAGENET_URL, tmp)
    except (urllib.error.URLError, OSError) as e:
      tmp.unlink(missing_ok=True)
      raise UserError(
        f"cannot download VGG19 weights ({e}). Without network, fetch {IMAGENET_URL} "
        f"elsewhere and put it at {path}, or use model.vgg.weights=random"
      ) from None
    if _md5(tmp) != IMAGENET_MD5:
      tmp.unlink(missing_ok=True)
      raise UserError(f"downloaded {IMAGENET_URL} does not match its published md5 {IMAGENET_MD5}")
    os.replace(tmp, path)
  if not path.exists():
    raise UserError(f"VGG19 weights not found at {path}; download {IMAGENET_URL} there")
  if _md5(path) != IMAGENET_MD5:
    raise UserError(
      f"{path} does not match the published md5 {IMAGENET_MD5} (corrupt or "
      f"partial); delete it and download {IMAGENET_URL} again"
    )
  return path


def load_params(spec: str) -> dict:
  """VGG19 variables for spec 'imagenet' | 'random' | 'random:SEED' | a weights file path.

  Returns:
    {'params': {conv1_1..conv5_4: {kernel [3,3,I,O], bias [O]}}, 'preprocess': {mean, std}}.
  Raises:
    UserError: a missing file, a corrupt file, a missing layer or a wrong shape.
  """
  if spec == "imagenet":
    return load_keras_h5(imagenet_weights_path())
  if spec == "random" or spec.startswith("random:"):
    return random_params(int(spec.partition(":")[2] or 0))
  path = pathlib.Path(os.path.expanduser(spec))
  if not path.exists():
    raise UserError(
      f"VGG weights file {spec!r} does not exist; give a Keras .h5, a torchvision "
      ".npz/.safetensors, 'imagenet' or 'random'"
    )
  if path.suffix in (".h5", ".hdf5"):
    return load_keras_h5(path)
  if path.suffix in (".npz", ".safetensors"):
    return load_torch(path)
  raise UserError(
    f"VGG weights file {spec!r}: unknown format {path.suffix!r}; expected .h5 "
    "(Keras), .npz or .safetensors (torchvision state dict)"
  )


def features(
  vgg_variables: Mapping, x: Array, layers: Iterable[str], dtype: jnp.dtype = jnp.float32
) -> dict[str, Array]:
  """Pure-function form: the requested activations of images x NHWC in [-1, 1]."""
  layers = tuple(layers)
  out = VGG19(dtype=dtype).apply(vgg_variables, x, layers)
  return {l: out[l] for l in layers}
