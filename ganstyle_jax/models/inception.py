"""Inception-v3 pool3 features (frozen) for FID / KID, and the loading of published weights.

`InceptionV3` is torchvision's `Inception3` (torchvision.models.inception_v3) without the
auxiliary classifier, dropout and fc: images NHWC in [-1, 1] are resized bilinearly to 299x299
and mapped to the 2048-d pool3 features [N, 2048] (the input of fc). Every BasicConv2d is a
conv without bias, BatchNorm (eps 0.001, running statistics) and ReLU. With `fid_variant=True`
the blocks are pytorch-fid's FIDInceptionA / C / E_1 (3x3 average pool without the zero
padding in the count) and FIDInceptionE_2 (3x3 max pool in the pool branch of Mixed_7c): the
graph of the TF 2015-12-05 Inception used by the reference FID implementation.

Variables are `{'params': {Conv2d_1a_3x3: {conv: {kernel}, bn: {scale, bias}}, ...},
'batch_stats': {Conv2d_1a_3x3: {bn: {mean, var}}, ...}}`, kernels HWIO. The module and
submodule names are torchvision's, so `Mixed_5b.branch5x5_1.conv.weight` (OIHW [48, 192, 1, 1])
is params['Mixed_5b']['branch5x5_1']['conv']['kernel'] (HWIO [1, 1, 192, 48]), and
`...bn.weight / bn.bias / bn.running_mean / bn.running_var` are bn scale / bias and
batch_stats mean / var.

`load_params(path)` reads a torchvision-layout Inception3 state dict saved as .npz
(`np.savez(path, **{name: array})`) or .safetensors; `fc.*`, `AuxLogits.*` and
`*.num_batches_tracked` entries are ignored, a leading `module.` is stripped. pytorch-fid's
`pt_inception-2015-12-05-6726825d.pth` uses the same names (its fc has 1008 classes), so one
loader serves both; use it with `InceptionV3(fid_variant=True)`. PyTorch pickles (.pth) are not
read here (no torch dependency); convert them once, where torch is installed:

  import numpy as np, torch
  sd = torch.load("pt_inception-2015-12-05-6726825d.pth", map_location="cpu")
  np.savez("pt_inception-2015-12-05.npz", **{k: v.numpy() for k, v in sd.items()})

and for torchvision's ImageNet weights (inception_v3_google-0cc3c7bd.pth):

  import numpy as np, torchvision
  m = torchvision.models.inception_v3(weights="IMAGENET1K_V1", aux_logits=True)
  np.savez("inception_v3_google.npz", **{k: v.numpy() for k, v in m.state_dict().items()})

(or `safetensors.torch.save_file({k: v.contiguous() for k, v in sd.items()}, "x.safetensors")`).

Input normalisation (`input_transform`): the network body of both published weight sets
expects RGB in [-1, 1]: pytorch-fid maps [0, 1] to [-1, 1], and torchvision's inception_v3
with pretrained weights sets transform_input=True, which turns its ImageNet-standardised input
back into exactly 2 * x01 - 1. So the default 'fid' (the [-1, 1] input as is) is right for
both; 'imagenet' ((x01 - mean) / std with the ImageNet mean/std, fed to the body) is for an
Inception3 trained with transform_input=False on standardised input.
"""

from __future__ import annotations

import functools
import os
import pathlib
from collections.abc import Mapping

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from ganstyle_jax.errors import UserError
from ganstyle_jax.models import state_dicts

Array = jax.Array

IMAGE_SIZE = 299
FEATURE_DIM = 2048
INPUT_TRANSFORMS = ("fid", "imagenet")
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# State-dict prefixes of the parts of Inception3 that are not part of the feature extractor.
IGNORED_PREFIXES = ("fc.", "AuxLogits.")
# Parameters (conv weights, BN weight and bias; not the running statistics) of the features:
# torchvision's Inception_V3_Weights num_params 27,161,264 minus fc (2048*1000 + 1000) and
# AuxLogits (98,304 + 256 + 2,457,600 + 1,536 + 768*1000 + 1000).
NUM_FEATURE_PARAMS = 21_785_568
_CONVERT_HINT = "see the conversion snippet in ganstyle_jax/models/inception.py's docstring"


def resize_bilinear(x: Array, size: int = IMAGE_SIZE) -> Array:
  """Bilinear resize of NHWC images to size x size, as torch's F.interpolate(mode='bilinear',
  align_corners=False) that pytorch-fid uses (half-pixel centres, no antialiasing)."""
  n, h, w, c = x.shape
  if (h, w) == (size, size):
    return x
  return jax.image.resize(x, (n, size, size, c), method="bilinear", antialias=False)


def _avg_pool_3x3(x: Array, count_include_pad: bool) -> Array:
  """F.avg_pool2d(x, kernel_size=3, stride=1, padding=1, count_include_pad=...)."""
  return nn.avg_pool(
    x, (3, 3), strides=(1, 1), padding=((1, 1), (1, 1)), count_include_pad=count_include_pad
  )


def _max_pool_3x3_s2(x: Array) -> Array:
  """nn.MaxPool2d(kernel_size=3, stride=2) / F.max_pool2d(x, kernel_size=3, stride=2)."""
  return nn.max_pool(x, (3, 3), strides=(2, 2), padding="VALID")


class BasicConv2d(nn.Module):
  """Conv (no bias) + BatchNorm(eps=0.001, running statistics) + ReLU; torch padding (ph, pw)."""

  features: int
  kernel_size: tuple[int, int]
  strides: int = 1
  padding: tuple[int, int] = (0, 0)
  dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(self, x: Array) -> Array:
    ph, pw = self.padding
    x = nn.Conv(
      self.features,
      self.kernel_size,
      strides=(self.strides, self.strides),
      padding=((ph, ph), (pw, pw)),
      use_bias=False,
      dtype=self.dtype,
      name="conv",
    )(x)
    x = nn.BatchNorm(use_running_average=True, epsilon=1e-3, dtype=self.dtype, name="bn")(x)
    return nn.relu(x)


def _conv(features: int, kernel_size, dtype, name: str, strides: int = 1, padding=0):
  ks = (kernel_size, kernel_size) if isinstance(kernel_size, int) else tuple(kernel_size)
  pad = (padding, padding) if isinstance(padding, int) else tuple(padding)
  return BasicConv2d(features, ks, strides, pad, dtype, name=name)


class InceptionA(nn.Module):
  """Mixed_5b/c/d; fid_variant: FIDInceptionA (average pool without the padding count)."""

  pool_features: int
  fid_variant: bool = False
  dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(self, x: Array) -> Array:
    d = self.dtype
    b1 = _conv(64, 1, d, "branch1x1")(x)
    b5 = _conv(48, 1, d, "branch5x5_1")(x)
    b5 = _conv(64, 5, d, "branch5x5_2", padding=2)(b5)
    b3 = _conv(64, 1, d, "branch3x3dbl_1")(x)
    b3 = _conv(96, 3, d, "branch3x3dbl_2", padding=1)(b3)
    b3 = _conv(96, 3, d, "branch3x3dbl_3", padding=1)(b3)
    bp = _avg_pool_3x3(x, count_include_pad=not self.fid_variant)
    bp = _conv(self.pool_features, 1, d, "branch_pool")(bp)
    return jnp.concatenate([b1, b5, b3, bp], axis=-1)


class InceptionB(nn.Module):
  """Mixed_6a (grid reduction 35 -> 17)."""

  dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(self, x: Array) -> Array:
    d = self.dtype
    b3 = _conv(384, 3, d, "branch3x3", strides=2)(x)
    bd = _conv(64, 1, d, "branch3x3dbl_1")(x)
    bd = _conv(96, 3, d, "branch3x3dbl_2", padding=1)(bd)
    bd = _conv(96, 3, d, "branch3x3dbl_3", strides=2)(bd)
    return jnp.concatenate([b3, bd, _max_pool_3x3_s2(x)], axis=-1)


class InceptionC(nn.Module):
  """Mixed_6b..6e; fid_variant: FIDInceptionC (average pool without the padding count)."""

  channels_7x7: int
  fid_variant: bool = False
  dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(self, x: Array) -> Array:
    d, c7 = self.dtype, self.channels_7x7
    b1 = _conv(192, 1, d, "branch1x1")(x)
    b7 = _conv(c7, 1, d, "branch7x7_1")(x)
    b7 = _conv(c7, (1, 7), d, "branch7x7_2", padding=(0, 3))(b7)
    b7 = _conv(192, (7, 1), d, "branch7x7_3", padding=(3, 0))(b7)
    bd = _conv(c7, 1, d, "branch7x7dbl_1")(x)
    bd = _conv(c7, (7, 1), d, "branch7x7dbl_2", padding=(3, 0))(bd)
    bd = _conv(c7, (1, 7), d, "branch7x7dbl_3", padding=(0, 3))(bd)
    bd = _conv(c7, (7, 1), d, "branch7x7dbl_4", padding=(3, 0))(bd)
    bd = _conv(192, (1, 7), d, "branch7x7dbl_5", padding=(0, 3))(bd)
    bp = _avg_pool_3x3(x, count_include_pad=not self.fid_variant)
    bp = _conv(192, 1, d, "branch_pool")(bp)
    return jnp.concatenate([b1, b7, bd, bp], axis=-1)


class InceptionD(nn.Module):
  """Mixed_7a (grid reduction 17 -> 8)."""

  dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(self, x: Array) -> Array:
    d = self.dtype
    b3 = _conv(192, 1, d, "branch3x3_1")(x)
    b3 = _conv(320, 3, d, "branch3x3_2", strides=2)(b3)
    b7 = _conv(192, 1, d, "branch7x7x3_1")(x)
    b7 = _conv(192, (1, 7), d, "branch7x7x3_2", padding=(0, 3))(b7)
    b7 = _conv(192, (7, 1), d, "branch7x7x3_3", padding=(3, 0))(b7)
    b7 = _conv(192, 3, d, "branch7x7x3_4", strides=2)(b7)
    return jnp.concatenate([b3, b7, _max_pool_3x3_s2(x)], axis=-1)


class InceptionE(nn.Module):
  """Mixed_7b/c. pool: 'avg' (torchvision), 'avg_no_pad' (FIDInceptionE_1) or 'max'
  (FIDInceptionE_2: F.max_pool2d(x, 3, stride=1, padding=1))."""

  pool: str = "avg"
  dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(self, x: Array) -> Array:
    d = self.dtype
    b1 = _conv(320, 1, d, "branch1x1")(x)
    b3 = _conv(384, 1, d, "branch3x3_1")(x)
    b3 = jnp.concatenate(
      [
        _conv(384, (1, 3), d, "branch3x3_2a", padding=(0, 1))(b3),
        _conv(384, (3, 1), d, "branch3x3_2b", padding=(1, 0))(b3),
      ],
      axis=-1,
    )
    bd = _conv(448, 1, d, "branch3x3dbl_1")(x)
    bd = _conv(384, 3, d, "branch3x3dbl_2", padding=1)(bd)
    bd = jnp.concatenate(
      [
        _conv(384, (1, 3), d, "branch3x3dbl_3a", padding=(0, 1))(bd),
        _conv(384, (3, 1), d, "branch3x3dbl_3b", padding=(1, 0))(bd),
      ],
      axis=-1,
    )
    if self.pool == "max":
      bp = nn.max_pool(x, (3, 3), strides=(1, 1), padding=((1, 1), (1, 1)))
    else:
      bp = _avg_pool_3x3(x, count_include_pad=self.pool == "avg")
    bp = _conv(192, 1, d, "branch_pool")(bp)
    return jnp.concatenate([b1, b3, bd, bp], axis=-1)


class InceptionV3(nn.Module):
  """torchvision Inception3 features; images NHWC in [-1, 1] -> pool3 features [N, 2048].

  Attributes:
    fid_variant: pytorch-fid's blocks (FIDInceptionA/C/E_1/E_2); use with its FID weights.
    input_transform: 'fid' (the [-1, 1] input as is; right for pytorch-fid's and for
      torchvision's pretrained weights) or 'imagenet' ((x01 - mean) / std with the ImageNet
      mean/std, for an Inception3 trained with transform_input=False).
    dtype: computation dtype (the returned features have it).
  """

  fid_variant: bool = False
  input_transform: str = "fid"
  dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(self, x: Array) -> Array:
    """Pool3 features of images x [N, H, W, 3] in [-1, 1] (any H, W: resized to 299x299)."""
    if self.input_transform not in INPUT_TRANSFORMS:
      raise UserError(
        f"unknown Inception input_transform {self.input_transform!r}; valid: "
        f"{', '.join(INPUT_TRANSFORMS)}"
      )
    if x.ndim != 4 or x.shape[-1] != 3:
      raise UserError(f"Inception-v3 takes RGB images [N, H, W, 3], got shape {x.shape}")
    h = resize_bilinear(x.astype(jnp.float32))
    if self.input_transform == "imagenet":
      h = ((h + 1.0) * 0.5 - jnp.asarray(IMAGENET_MEAN)) / jnp.asarray(IMAGENET_STD)
    h = h.astype(self.dtype)
    d, fid = self.dtype, self.fid_variant
    h = _conv(32, 3, d, "Conv2d_1a_3x3", strides=2)(h)  # 149 x 149 x 32
    h = _conv(32, 3, d, "Conv2d_2a_3x3")(h)  # 147 x 147 x 32
    h = _conv(64, 3, d, "Conv2d_2b_3x3", padding=1)(h)  # 147 x 147 x 64
    h = _max_pool_3x3_s2(h)  # 73 x 73 x 64
    h = _conv(80, 1, d, "Conv2d_3b_1x1")(h)  # 73 x 73 x 80
    h = _conv(192, 3, d, "Conv2d_4a_3x3")(h)  # 71 x 71 x 192
    h = _max_pool_3x3_s2(h)  # 35 x 35 x 192
    h = InceptionA(32, fid, d, name="Mixed_5b")(h)  # 35 x 35 x 256
    h = InceptionA(64, fid, d, name="Mixed_5c")(h)  # 35 x 35 x 288
    h = InceptionA(64, fid, d, name="Mixed_5d")(h)  # 35 x 35 x 288
    h = InceptionB(d, name="Mixed_6a")(h)  # 17 x 17 x 768
    h = InceptionC(128, fid, d, name="Mixed_6b")(h)
    h = InceptionC(160, fid, d, name="Mixed_6c")(h)
    h = InceptionC(160, fid, d, name="Mixed_6d")(h)
    h = InceptionC(192, fid, d, name="Mixed_6e")(h)  # 17 x 17 x 768
    h = InceptionD(d, name="Mixed_7a")(h)  # 8 x 8 x 1280
    h = InceptionE("avg_no_pad" if fid else "avg", d, name="Mixed_7b")(h)  # 8 x 8 x 2048
    h = InceptionE("max" if fid else "avg", d, name="Mixed_7c")(h)  # 8 x 8 x 2048
    return jnp.mean(h, axis=(1, 2))  # adaptive avg pool -> 2048


def features(
  inception_variables: Mapping,
  x: Array,
  *,
  fid_variant: bool = False,
  input_transform: str = "fid",
  dtype: jnp.dtype = jnp.float32,
) -> Array:
  """Pure-function form: pool3 features [N, 2048] of images x NHWC in [-1, 1]."""
  model = InceptionV3(fid_variant=fid_variant, input_transform=input_transform, dtype=dtype)
  return model.apply(inception_variables, x)


# ----------------------------------------------------------------------------- state dicts

# flax leaf (collection, name) <-> torch state-dict suffix.
_LEAF_TO_TORCH = {
  ("params", "kernel"): "conv.weight",
  ("params", "scale"): "bn.weight",
  ("params", "bias"): "bn.bias",
  ("batch_stats", "mean"): "bn.running_mean",
  ("batch_stats", "var"): "bn.running_var",
}


def _torch_name(collection: str, path: tuple[str, ...]) -> str:
  """('params', ('Mixed_5b', 'branch1x1', 'conv', 'kernel')) -> 'Mixed_5b.branch1x1.conv.weight'."""
  return ".".join(path[:-2] + (_LEAF_TO_TORCH[collection, path[-1]],))


def _flat(tree: Mapping, prefix: tuple[str, ...] = ()):
  for k, v in tree.items():
    if isinstance(v, Mapping):
      yield from _flat(v, prefix + (k,))
    else:
      yield prefix + (k,), v


@functools.lru_cache(maxsize=1)
def _variable_shapes() -> dict:
  """{collection: {flax path: shape}} of InceptionV3's variables, by abstract evaluation."""
  abstract = jax.eval_shape(
    InceptionV3().init,
    jax.random.key(0),
    jax.ShapeDtypeStruct((1, IMAGE_SIZE, IMAGE_SIZE, 3), jnp.float32),
  )
  return {
    col: {p: tuple(a.shape) for p, a in _flat(abstract[col])} for col in ("params", "batch_stats")
  }


def _torch_shape(collection: str, path: tuple[str, ...], shape: tuple[int, ...]):
  return (shape[3], shape[2], shape[0], shape[1]) if path[-1] == "kernel" else shape


def param_shapes() -> dict[str, tuple[int, ...]]:
  """torchvision Inception3 state-dict {name: shape} of the features (OIHW conv weights, BN
  weight/bias/running_mean/running_var; no fc, AuxLogits or num_batches_tracked)."""
  return {
    _torch_name(col, p): _torch_shape(col, p, s)
    for col, shapes in _variable_shapes().items()
    for p, s in shapes.items()
  }


def num_params(shapes: Mapping[str, tuple[int, ...]] | None = None) -> int:
  """Learnable parameters (conv weights, BN weight and bias) in a {torch name: shape} dict;
  NUM_FEATURE_PARAMS for `param_shapes()`."""
  shapes = param_shapes() if shapes is None else shapes
  return sum(
    int(np.prod(s)) for k, s in shapes.items() if not k.endswith(("running_mean", "running_var"))
  )


def _nest(flat: Mapping[tuple[str, ...], Array]) -> dict:
  out: dict = {}
  for path, v in flat.items():
    d = out
    for k in path[:-1]:
      d = d.setdefault(k, {})
    d[path[-1]] = v
  return out


def from_state_dict(state_dict: Mapping[str, np.ndarray], source: str = "state dict") -> dict:
  """InceptionV3 variables from a torchvision-layout Inception3 state dict {name: array}.

  Raises:
    UserError: a missing or unexpected key, or a wrong shape (the message names `source`).
  """
  sd = {k.removeprefix("module."): v for k, v in state_dict.items()}
  sd = {
    k: v
    for k, v in sd.items()
    if not k.startswith(IGNORED_PREFIXES) and not k.endswith(".num_batches_tracked")
  }
  expected = param_shapes()
  missing = [k for k in expected if k not in sd]
  if missing:
    more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
    raise UserError(
      f"{source}: {missing[0]} is missing{more}; expected a torchvision Inception3 "
      f"(or pytorch-fid) state dict with {len(expected)} feature entries, "
      f"{_CONVERT_HINT}"
    )
  unexpected = [k for k in sd if k not in expected]
  if unexpected:
    more = f" (and {len(unexpected) - 1} more)" if len(unexpected) > 1 else ""
    raise UserError(
      f"{source}: unexpected entry {unexpected[0]}{more}; is this a torchvision "
      f"Inception3 state dict? {_CONVERT_HINT}"
    )
  variables = {}
  for col, shapes in _variable_shapes().items():
    flat = {}
    for path in shapes:
      name = _torch_name(col, path)
      value = np.asarray(sd[name])
      if value.shape != expected[name]:
        raise UserError(
          f"{source}: {name} has shape {value.shape}, expected {expected[name]} "
          "(torchvision Inception3, OIHW conv weights): is this Inception-v3?"
        )
      if path[-1] == "kernel":
        value = np.transpose(value, (2, 3, 1, 0))  # OIHW -> HWIO
      flat[path] = jnp.asarray(value, jnp.float32)
    variables[col] = _nest(flat)
  return variables


def to_state_dict(variables: Mapping) -> dict[str, np.ndarray]:
  """The inverse of `from_state_dict`: torchvision names, OIHW conv weights, float32 NumPy."""
  out = {}
  for col in ("params", "batch_stats"):
    for path, v in _flat(variables[col]):
      v = np.asarray(v, np.float32)
      out[_torch_name(col, path)] = np.transpose(v, (3, 2, 0, 1)) if path[-1] == "kernel" else v
  return out


def load_params(path: str | os.PathLike) -> dict:
  """InceptionV3 variables from a torchvision-layout state dict in a .npz or .safetensors file.

  Returns:
    {'params': {...: {conv: {kernel HWIO}, bn: {scale, bias}}},
     'batch_stats': {...: {bn: {mean, var}}}}, the variables of `InceptionV3().apply`.
  Raises:
    UserError: a missing file, an unknown format, an unreadable file, a missing key or a wrong
      shape.
  """
  path = pathlib.Path(os.path.expanduser(str(path)))
  if path.suffix in (".pth", ".pt", ".bin", ".ckpt"):
    raise UserError(
      f"Inception weights {str(path)!r}: PyTorch pickles are not read (no torch "
      f"dependency); convert the state dict to .npz or .safetensors, {_CONVERT_HINT}"
    )
  if not path.exists():
    raise UserError(
      f"Inception weights file {str(path)!r} does not exist; give a torchvision "
      f"Inception3 state dict as .npz or .safetensors, {_CONVERT_HINT}"
    )
  if path.suffix not in (".npz", ".safetensors"):
    raise UserError(
      f"Inception weights file {str(path)!r}: unknown format {path.suffix!r}; "
      f"expected .npz or .safetensors (torchvision state dict), {_CONVERT_HINT}"
    )
  return from_state_dict(
    state_dicts.read(path, f"re-export the state dict, {_CONVERT_HINT}"), source=str(path)
  )
