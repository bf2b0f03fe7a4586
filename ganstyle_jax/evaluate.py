"""Evaluation of a trained run: the metric suite, as a CLI and for the training loop.

    python -m ganstyle_jax.evaluate --workdir=DIR [--out=FILE.json] [--step=N] [--num_images=N]
        [--seed=S] [--vgg_weights=SPEC] [--inception_weights=FILE.npz|.safetensors]
        [--inception_variant=fid|torchvision]

The generator (EMA params when the run kept them) renders the first num_images held-out
content images (adain_gan: with the held-out style images; cyclegan: A -> B). The metrics, their
definitions and directions are in METRICS (formulas in metrics.py). Each distance also has an
`*_identity` twin: the same metric for the content images themselves, i.e. for a generator that
returns its input. The JSON names the checkpoint step, the source and split of every image set,
the number of images, the seed and every metric; a given seed gives the same numbers.

Temporal consistency (no flow network): temporal_error on known-flow clips (the content and
the content under known shifts) and temporal_stability on a static scene taken twice with
noise (`temporal_scores`; definitions in metrics.py).

Known answer (synthetic content; input_pipeline.load_eval_batch's 'target'): psnr and ssim of
G's output against the target, beside the baselines `*_identity` (the content itself) and
`*_colour_transfer` (Reinhard colour transfer of C toward S, ganstyle_jax.baselines), and on the
multi-style benchmark `*_style_blind` (the perfect style-0 painting of C, ignoring S: what a model
that does not use S at all can reach).
"""

from __future__ import annotations

import functools
import json
import os
from typing import Any

from absl import logging
import jax
import jax.numpy as jnp
import numpy as np

from ganstyle_jax import checkpointing, console, metrics, paths
from ganstyle_jax.errors import UserError, run_cli
from ganstyle_jax.models import vgg as vgg_lib
from ganstyle_jax.ops import warping

METRICS = {
  "psnr": "higher; PSNR (dB) of G(C, S) against the known answer painting_k(C), k = the style "
  "of S (single-style benchmark and cyclegan: painting(C), style 0; synthetic content "
  "only)",
  "ssim": "higher; SSIM of G(C, S) against the known answer painting_k(C) (synthetic content only)",
  "psnr_identity": "higher; baseline: PSNR of the content image C itself against the known answer",
  "ssim_identity": "higher; baseline: SSIM of C itself against the known answer",
  "psnr_colour_transfer": "higher; baseline: PSNR of Reinhard et al. 2001 colour transfer of C "
  "toward S (Lab mean/std; baselines.colour_transfer) against the "
  "known answer",
  "ssim_colour_transfer": "higher; baseline: SSIM of the colour transfer of C toward S against "
  "the known answer",
  "psnr_style_blind": "higher; reference (multi-style only): PSNR of painting_0(C), the "
  "perfect style-0 painting that ignores S, against the known answer: a "
  "model must beat it to show it uses S",
  "ssim_style_blind": "higher; reference (multi-style only): SSIM of painting_0(C) against "
  "the known answer",
  "content_distance": f"lower; mean squared VGG {metrics.CONTENT_LAYER} difference, output "
  "vs content",
  "style_gram": "lower; Gram-matrix distance to the style image over "
  f"{', '.join(metrics.STYLE_LAYERS)}",
  "style_mean_std": "lower; channel mean/std distance to the style image over the same layers",
  "swd": "lower; sliced Wasserstein distance x1e3 of Laplacian-pyramid 7x7 patches, outputs "
  "vs real style-domain images, mean over levels (swd_level_K: level K, finest first)",
  "fid_vgg": f"lower; Frechet distance of VGG19 {metrics.FID_VGG_LAYER} spatial-mean features, "
  "outputs vs real style-domain images (not Inception FID)",
  "kid_vgg": "lower; kernel (MMD^2, cubic polynomial) distance of the same VGG features",
  "fid": "lower; FID on Inception-v3 pool3 features (only with --inception_weights)",
  "kid": "lower; KID on Inception-v3 pool3 features (only with --inception_weights)",
  "temporal_error": "lower; known-flow clips: mean squared difference of G(W(C)) and W(G(C)) "
  f"for known integer shifts W {list(metrics.TEMPORAL_SHIFTS)}, away from the borders "
  "(metrics.temporal_error; 0 for a generator that commutes with motion)",
  "temporal_stability": "lower; static scene: mean squared difference of G's outputs for two "
  f"takes of C with Gaussian noise of std {metrics.STABILITY_NOISE} (metrics.temporal_stability)",
  "temporal_stability_identity": "lower; baseline: the same for C itself (about 2 std^2)",
}


BASELINES = (
  ("identity", "identity"),
  ("colour_transfer", "colour transfer"),
  ("style_blind", "style-blind"),
)


def _versus(value: float, baselines: list[tuple[str, float]], unit: str, digits: int) -> str:
  """'11.34 dB  vs identity 11.18 (+0.16), colour transfer 10.86 (+0.48)'."""
  others = ", ".join(f"{name} {b:.{digits}f} ({value - b:+.{digits}f})" for name, b in baselines)
  return f"{value:.{digits}f}{unit}  vs {others}" if others else f"{value:.{digits}f}{unit}"


def summary_lines(values: dict[str, float], step: int, num_images: int) -> list[str]:
  """A few console lines of an evaluation: the known-answer PSNR and SSIM against each of
  their baselines (with the differences), or, without a known answer, the style and
  distribution distances beside their `*_identity` twins.

  Args:
    values: metrics as Evaluator returns them (no `eval/` prefix).
    step: the checkpoint step evaluated.
    num_images: held-out images scored.
  """
  if "psnr" in values:
    lines = [f"Evaluation at step {step} ({num_images} held-out images, known answer):"]
    for name, unit, digits in (("psnr", " dB", 2), ("ssim", "", 3)):
      baselines = [
        (label, values[f"{name}_{suffix}"])
        for suffix, label in BASELINES
        if f"{name}_{suffix}" in values
      ]
      if name in values:
        lines.append(f"  {name.upper():4} {_versus(values[name], baselines, unit, digits)}")
    return lines
  shown = [
    f"{k} {values[k]:.4g} (identity {values[k + '_identity']:.4g})"
    for k in ("style_mean_std", "swd", "fid_vgg")
    if k in values and k + "_identity" in values
  ]
  return [
    f"Evaluation at step {step} ({num_images} held-out images, lower is better):",
    "  " + ", ".join(shown),
  ]


def _vgg_metrics(vgg_variables, content, style, real, generated, key):
  feats = lambda x: vgg_lib.features(vgg_variables, x, metrics.VGG_LAYERS)
  f_gen, f_content, f_style, f_real = feats(generated), feats(content), feats(style), feats(real)
  out = {"pooled_real": metrics.pooled(f_real)}
  for suffix, f_x, x in (("", f_gen, generated), ("_identity", f_content, content)):
    out["content_distance" + suffix] = jnp.mean(metrics.content_distance(f_x, f_content))
    out["style_gram" + suffix] = jnp.mean(metrics.gram_distance(f_x, f_style))
    out["style_mean_std" + suffix] = jnp.mean(metrics.mean_std_distance(f_x, f_style))
    out["swd_levels" + suffix] = metrics.swd(x, real, key)
    out["pooled" + suffix] = metrics.pooled(f_x)
  del out["content_distance_identity"]  # 0 by definition
  return out


def known_answer_scores(content, style, generated, target=None) -> dict[str, float]:
  """psnr/ssim of `generated` against the known answer, beside every baseline (batch means).

  `psnr`, `ssim`, `*_identity`: synthetic.known_answer_metrics; `*_colour_transfer`:
  baselines.known_answer_baselines (its identity numbers agree with these to float rounding);
  `*_style_blind`: painting_0(content) scored the same way, reported where it is not the
  known answer itself (the multi-style benchmark). target None: painting_0(content), the
  single-style answer.

  Args:
    content, style, generated, target: NHWC in [-1, 1] (H, W >= 11); style one per content.
  """
  from ganstyle_jax import baselines  # pylint: disable=g-import-not-at-top
  from ganstyle_jax.data import synthetic  # pylint: disable=g-import-not-at-top

  content = jnp.asarray(content, jnp.float32)
  blind = synthetic.painting_signed(content)
  target = blind if target is None else jnp.asarray(target, jnp.float32)
  result = synthetic.known_answer_metrics(content, generated, target)
  transfer = baselines.known_answer_baselines(content, style, target)
  result.update({k: v for k, v in transfer.items() if k.endswith("_colour_transfer")})
  # The stored answer is rounded to uint8 and was painted from the unrounded photo: where all
  # but a few pixels (ties at an edge threshold or between two palette colours) are within
  # one grey level, blind *is* the answer (the single-style benchmark), not a baseline.
  off = jnp.mean(jnp.any(jnp.abs(blind - target) > 1.01 / 127.5, axis=-1))
  if float(off) > 0.01:
    result["psnr_style_blind"] = float(jnp.mean(metrics.psnr(blind, target)))
    result["ssim_style_blind"] = float(jnp.mean(metrics.ssim(blind, target)))
  return result


class Evaluator:
  """The metric suite on fixed image sets; deterministic for a given seed.

  Args:
    vgg_variables: VGG19 variables (models.vgg.load_params) for the VGG-based metrics.
    seed: seeds SWD's patches and directions and KID's subsets.
    inception: optional (InceptionV3 module, its variables) for FID / KID.
  """

  def __init__(self, vgg_variables, *, seed: int = 0, inception=None):
    self._vgg_variables = vgg_variables
    self._seed = seed
    self._vgg_fn = jax.jit(_vgg_metrics)
    self._warned_single_style = False
    self._inception = None
    if inception is not None:
      module, variables = inception
      self._inception = jax.jit(functools.partial(module.apply, variables))

  def __call__(
    self, content, style, real, generated, known_answer: bool = False, target=None
  ) -> dict[str, float]:
    """Metrics of generated images (all NHWC in [-1, 1]).

    Args:
      content, style, real, generated: the evaluation views (Family.eval_views).
      known_answer: content is single-style synthetic:photo, so painting(content) (style 0) is
        the right output; ignored when `target` is given.
      target: the known answer itself (load_eval_batch's 'target', e.g. painting_k(C) for S in
        style k); scores psnr/ssim against it.

    With a known answer the result also holds its baselines (`known_answer_scores`).
    """
    generated = jnp.clip(jnp.asarray(generated, jnp.float32), -1.0, 1.0)
    out = jax.device_get(
      self._vgg_fn(self._vgg_variables, content, style, real, generated, jax.random.key(self._seed))
    )
    result: dict[str, float] = {}
    if target is None and known_answer and not self._warned_single_style:
      self._warned_single_style = True
      logging.warning(
        "Evaluator: known_answer without a target scores against painting_0("
        "content), the single-style answer; pass target= (the eval batch's "
        "'target') for the multi-style benchmark and paired data."
      )
    if target is not None or known_answer:
      result.update(known_answer_scores(content, style, generated, target))
    for suffix in ("", "_identity"):
      for name in ("content_distance", "style_gram", "style_mean_std"):
        if name + suffix in out:
          result[name + suffix] = float(out[name + suffix])
      levels = out["swd_levels" + suffix]
      result["swd" + suffix] = float(np.mean(levels))
      if not suffix:
        result.update({f"swd_level_{i}": float(v) for i, v in enumerate(levels)})
      self._distribution_metrics(result, "vgg", out["pooled" + suffix], out["pooled_real"], suffix)
    if self._inception is not None:
      f_real = self._inception(real)
      for suffix, x in (("", generated), ("_identity", content)):
        self._distribution_metrics(result, "", self._inception(x), f_real, suffix)
    return result

  def _distribution_metrics(self, result, net: str, feats, feats_real, suffix: str) -> None:
    tag = f"_{net}" if net else ""
    result[f"fid{tag}{suffix}"] = metrics.frechet_distance(feats, feats_real)
    result[f"kid{tag}{suffix}"] = metrics.kernel_distance(feats, feats_real, seed=self._seed)


def render(
  setup,
  g_params,
  vgg_variables,
  batch: dict[str, np.ndarray],
  batch_size: int,
  show_progress: bool = False,
) -> dict[str, np.ndarray]:
  """The generator's outputs for every image of `batch`, batch_size images per call (one
  compiled function; the last, smaller chunk is padded so it reuses it); show_progress: a
  console progress bar over the calls."""
  # setup is a static argument (not bound with partial): repeated calls reuse one compile.
  fn = jax.jit(setup.family.generate, static_argnums=0)
  n = len(next(iter(batch.values())))
  chunks = []
  starts = range(0, n, batch_size)
  if show_progress:
    starts = console.progress(starts, desc="render", unit="batch")
  for start in starts:
    chunk = {k: v[start : start + batch_size] for k, v in batch.items()}
    m = len(next(iter(chunk.values())))
    if m < batch_size and n > batch_size:
      chunk = {
        k: np.concatenate([v, np.repeat(v[-1:], batch_size - m, 0)]) for k, v in chunk.items()
      }
    chunks.append(
      jax.tree.map(lambda x: np.asarray(x)[:m], fn(setup, g_params, vgg_variables, chunk))
    )
  return {k: np.concatenate([c[k] for c in chunks]) for k in chunks[0]}


def temporal_scores(
  setup, g_params, vgg_variables, batch: dict[str, np.ndarray], output, batch_size: int, seed: int
) -> dict[str, float]:
  """temporal_error and temporal_stability (metrics.py) of the generator on batch's content.

  The content image (family.content_key) is shifted, and taken twice with noise, and each
  version rendered with the rest of the batch unchanged (the same style images).

  Args:
    output: the generator's output for `batch` unchanged (eval_views' 'generated').
  """
  key = setup.family.content_key
  content = np.asarray(batch[key], np.float32)

  def generated(x):
    outputs = render(setup, g_params, vgg_variables, {**batch, key: np.asarray(x)}, batch_size)
    return np.clip(setup.family.eval_views({**batch, key: x}, outputs)["generated"], -1.0, 1.0)

  flow = metrics.temporal_shifts(len(content))
  shifted = generated(warping.warp(content, flow))
  take_1, take_2 = metrics.stability_frames(content, jax.random.key(seed))
  output = np.clip(np.asarray(output, np.float32), -1.0, 1.0)
  return {
    "temporal_error": float(jnp.mean(metrics.temporal_error(shifted, output, flow))),
    "temporal_stability": float(
      jnp.mean(metrics.temporal_stability(generated(take_1), generated(take_2)))
    ),
    "temporal_stability_identity": float(jnp.mean(metrics.temporal_stability(take_1, take_2))),
  }


def evaluate_run(
  workdir: str,
  *,
  step: int | None = None,
  num_images: int | None = None,
  seed: int = 0,
  vgg_weights: str | None = None,
  inception_weights: str | None = None,
  inception_variant: str = "fid",
  batch_size: int = 16,
  show_progress: bool = False,
) -> dict[str, Any]:
  """Evaluates workdir's latest (or given) checkpoint; returns the JSON-ready report.

  inception_variant: 'fid' for the pytorch-fid weights (pt_inception-2015-12-05, the standard
  FID network), 'torchvision' for torchvision's ImageNet Inception-v3 weights. The generator
  renders batch_size images at a time (show_progress: with a console progress bar).
  """
  from ganstyle_jax import input_pipeline  # pylint: disable=g-import-not-at-top

  if batch_size < 1:
    raise UserError(f"--batch_size={batch_size}: use a positive number of images per call")
  if num_images is not None and num_images < 1:
    raise UserError(f"--num_images={num_images}: use a positive number of held-out images")
  config, setup, state, step = checkpointing.restore_run(workdir, step)
  num_images = num_images or config.num_eval_images
  batch, splits = input_pipeline.load_eval_data(config, num_images)
  vgg_weights = vgg_weights or config.model.vgg.weights
  vgg_variables = vgg_lib.load_params(vgg_weights)
  g_params = state.ema_g_params if state.ema_g_params is not None else state.g_params
  outputs = render(
    setup,
    g_params,
    vgg_variables if setup.family.needs_vgg else None,
    batch,
    batch_size,
    show_progress,
  )
  inception = None
  if inception_weights:
    from ganstyle_jax.models import inception as inception_lib  # pylint: disable=g-import-not-at-top

    if inception_variant not in ("fid", "torchvision"):
      raise UserError(f"unknown inception_variant {inception_variant!r}; use fid or torchvision")
    inception = (
      inception_lib.InceptionV3(fid_variant=inception_variant == "fid"),
      inception_lib.load_params(inception_weights),
    )
  views = dict(setup.family.eval_views(batch, outputs))
  views.setdefault("target", batch.get("target"))
  values = Evaluator(vgg_variables, seed=seed, inception=inception)(**views)
  values.update(
    temporal_scores(
      setup,
      g_params,
      vgg_variables if setup.family.needs_vgg else None,
      batch,
      views["generated"],
      batch_size,
      seed,
    )
  )
  return {
    "workdir": os.path.abspath(workdir),
    "model": setup.name,
    "checkpoint_step": int(step),
    "split": splits,
    "num_images": num_images,
    "image_size": config.data.image_size,
    "seed": seed,
    "vgg_weights": vgg_weights,
    "inception_weights": inception_weights,
    "inception_variant": inception_variant if inception_weights else None,
    "metrics": values,
    "definitions": {k: v for k, v in METRICS.items() if k in values},
  }


def main(argv):
  from absl import flags  # pylint: disable=g-import-not-at-top

  if len(argv) > 1:
    raise UserError(f"unexpected arguments: {' '.join(argv[1:])}")
  f = flags.FLAGS
  report = evaluate_run(
    f.workdir,
    step=f.step,
    num_images=f.num_images,
    seed=f.seed,
    vgg_weights=f.vgg_weights,
    inception_weights=f.inception_weights,
    inception_variant=f.inception_variant,
    batch_size=f.batch_size,
    show_progress=True,
  )
  text = json.dumps(report, indent=2, sort_keys=True)
  if f.out:
    out = paths.absolute(f.out)
    paths.makedirs(os.path.dirname(out))
    paths.write_text(out, text + "\n")
  print(text, flush=True)
  # The JSON is the output (stdout); a person reads the gist on stderr.
  lines = summary_lines(report["metrics"], report["checkpoint_step"], report["num_images"])
  if f.out:
    lines.append(f"Wrote {paths.absolute(f.out)}")
  console.write("\n".join(lines), err=True)


def run():
  """Console script `ganstyle-eval`."""
  from absl import flags  # pylint: disable=g-import-not-at-top

  flags.DEFINE_string("workdir", None, "Training workdir (config.json + checkpoints/).")
  flags.DEFINE_string("out", None, "Also write the JSON report to this file.")
  flags.DEFINE_integer("step", None, "Checkpoint step (default: the latest).")
  flags.DEFINE_integer("num_images", None, "Held-out images (default: config num_eval_images).")
  flags.DEFINE_integer("batch_size", 16, "Images the generator renders per call.")
  flags.DEFINE_integer("seed", 0, "Seed of SWD's patches and directions and KID's subsets.")
  flags.DEFINE_string("vgg_weights", None, "VGG19 weights for the metrics (default: the run's).")
  flags.DEFINE_string(
    "inception_weights",
    None,
    "Inception-v3 weights (.npz/.safetensors, torchvision names; see "
    "models/inception.py) for FID/KID.",
  )
  flags.DEFINE_enum(
    "inception_variant",
    "fid",
    ["fid", "torchvision"],
    "fid: pytorch-fid's pt_inception weights; torchvision: ImageNet weights.",
  )
  flags.mark_flags_as_required(["workdir"])

  run_cli(main)


if __name__ == "__main__":
  run()
