"""Non-learned baselines for the known-answer benchmark, and the CIE Lab conversion they use.

* identity: the content image C itself, scored against the known answer;
* colour transfer (Reinhard et al. 2001, "Color transfer between images"): C's per-channel mean
  and standard deviation in colour space matched to the style image S's. Reinhard et al. work
  in Ruderman's l-alpha-beta; we use CIE L*a*b* (D65), the common modern form of the method.

Colour conversion (IEC 61966-2-1 sRGB, D65 white, CIE 1976 L*a*b*):
  sRGB -> linear: c / 12.92 for c <= 0.04045, else ((c + 0.055) / 1.055) ** 2.4;
  linear -> XYZ: the sRGB matrix `RGB_TO_XYZ`; XYZ is divided by the white point `WHITE_D65`;
  XYZ -> Lab: L = 116 f(Y) - 16, a = 500 (f(X) - f(Y)), b = 200 (f(Y) - f(Z)) with
  f(t) = t ** (1/3) for t > (6/29)^3, else t / (3 (6/29)^2) + 4/29.
The inverse clips linear RGB to [0, 1] (out-of-gamut Lab colours map to the gamut boundary).

Everything works on NumPy arrays (computed in NumPy) and on JAX arrays (jax.numpy: jit-able,
batched); the functions taking library images expect NHWC in [-1, 1].
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from ganstyle_jax import metrics

RGB_TO_XYZ = np.array(
  [
    [0.4124564, 0.3575761, 0.1804375],
    [0.2126729, 0.7151522, 0.0721750],
    [0.0193339, 0.1191920, 0.9503041],
  ],
  dtype=np.float64,
)
XYZ_TO_RGB = np.linalg.inv(RGB_TO_XYZ)
WHITE_D65 = np.array([0.95047, 1.0, 1.08883], dtype=np.float64)
_DELTA = 6.0 / 29.0
# Floor on C's per-channel Lab std: a flat channel is shifted, not amplified without bound.
STD_EPS = 1e-3


def _xp(x: Any):
  """numpy for NumPy inputs, jax.numpy for JAX arrays and tracers."""
  return np if isinstance(x, np.ndarray) else jnp


def _matvec(v, matrix: np.ndarray, xp, dtype):
  """matrix @ v over the last axis, as an elementwise sum: full float32 precision on every
  platform (a TPU matmul would round its inputs to bfloat16)."""
  return (v[..., None, :] * xp.asarray(matrix, dtype)).sum(-1)


def rgb_to_lab(rgb):
  """sRGB in [0, 1], [..., 3] -> CIE L*a*b* (D65), [..., 3]: L in [0, 100], a, b about +-100."""
  xp = _xp(rgb)
  dtype = xp.float64 if xp is np and rgb.dtype == np.float64 else xp.float32
  c = xp.asarray(rgb, dtype)
  lin = xp.where(c <= 0.04045, c / 12.92, ((xp.maximum(c, 0.04045) + 0.055) / 1.055) ** 2.4)
  xyz = _matvec(lin, RGB_TO_XYZ, xp, dtype) / xp.asarray(WHITE_D65, dtype)
  f = xp.where(
    xyz > _DELTA**3, xp.cbrt(xp.maximum(xyz, _DELTA**3)), xyz / (3 * _DELTA**2) + 4.0 / 29.0
  )
  fx, fy, fz = f[..., 0], f[..., 1], f[..., 2]
  return xp.stack([116.0 * fy - 16.0, 500.0 * (fx - fy), 200.0 * (fy - fz)], axis=-1)


def lab_to_rgb(lab):
  """CIE L*a*b* (D65), [..., 3] -> sRGB in [0, 1], [..., 3]; out-of-gamut colours are clipped."""
  xp = _xp(lab)
  dtype = xp.float64 if xp is np and lab.dtype == np.float64 else xp.float32
  lab = xp.asarray(lab, dtype)
  fy = (lab[..., 0] + 16.0) / 116.0
  f = xp.stack([fy + lab[..., 1] / 500.0, fy, fy - lab[..., 2] / 200.0], axis=-1)
  xyz = xp.where(f > _DELTA, f**3, 3 * _DELTA**2 * (f - 4.0 / 29.0))
  lin = xp.clip(_matvec(xyz * xp.asarray(WHITE_D65, dtype), XYZ_TO_RGB, xp, dtype), 0.0, 1.0)
  srgb = xp.where(
    lin <= 0.0031308, 12.92 * lin, 1.055 * xp.maximum(lin, 0.0031308) ** (1.0 / 2.4) - 0.055
  )
  return xp.clip(srgb, 0.0, 1.0)


def colour_transfer(content, style):
  """Reinhard et al. 2001 colour transfer: C's per-image, per-channel Lab mean/std set to S's.

  out_lab = (lab(C) - mean_C) / max(std_C, STD_EPS) * std_S + mean_S, then back to sRGB
  (clipped to the gamut). Statistics are over each image's pixels (population std).

  Args:
    content: C, NHWC in [-1, 1] (NumPy or JAX).
    style: S, NHWC in [-1, 1], same N and channels (H, W may differ).

  Returns:
    C recoloured toward S, shaped like C, float32 in [-1, 1].
  """
  xp = _xp(content) if isinstance(style, np.ndarray) else jnp
  lab_c = rgb_to_lab((xp.asarray(content, xp.float32) + 1.0) / 2.0)
  lab_s = rgb_to_lab((xp.asarray(style, xp.float32) + 1.0) / 2.0)
  # Statistics of C relative to its first pixel: exact for flat channels (no float32 rounding
  # noise to amplify by 1 / STD_EPS).
  lab_c = lab_c - lab_c[:, :1, :1]
  mean_c = lab_c.mean(axis=(1, 2), keepdims=True)
  std_c = lab_c.std(axis=(1, 2), keepdims=True)
  mean_s = lab_s.mean(axis=(1, 2), keepdims=True)
  std_s = lab_s.std(axis=(1, 2), keepdims=True)
  out = (lab_c - mean_c) / xp.maximum(std_c, STD_EPS) * std_s + mean_s
  return (lab_to_rgb(out) * 2.0 - 1.0).astype(xp.float32)


@jax.jit
def _baseline_scores(
  content: jax.Array, style: jax.Array, target: jax.Array
) -> dict[str, jax.Array]:
  transferred = colour_transfer(content, style)
  return {
    "psnr_identity": metrics.psnr(content, target),
    "ssim_identity": metrics.ssim(content, target),
    "psnr_colour_transfer": metrics.psnr(transferred, target),
    "ssim_colour_transfer": metrics.ssim(transferred, target),
  }


def known_answer_baselines(content, style, target) -> dict[str, float]:
  """The two baselines reported beside every known-answer metric (batch means, Python floats).

  `*_identity`: C itself against the known answer; `*_colour_transfer`: `colour_transfer(C, S)`
  against it. A model is useful on the benchmark only where it beats both.

  Args:
    content: C, NHWC in [-1, 1] (H, W >= 11 for SSIM).
    style: S, NHWC in [-1, 1], one per content image.
    target: the known answer (e.g. painting_k(C) for S in style k), shaped like C, in [-1, 1].

  Returns:
    {"psnr_identity", "ssim_identity", "psnr_colour_transfer", "ssim_colour_transfer"}.
  """
  scores = _baseline_scores(
    jnp.asarray(content, jnp.float32),
    jnp.asarray(style, jnp.float32),
    jnp.asarray(target, jnp.float32),
  )
  return {k: float(jnp.mean(v)) for k, v in scores.items()}
