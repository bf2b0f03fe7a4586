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
"""
from __future__ import annotations

import functools
import json
import os
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from ganstyle_jax import metrics
from ganstyle_jax.data import synthetic
from ganstyle_jax.errors import UserError, run_cli
from ganstyle_jax.models import vgg as vgg_lib

METRICS = {
    "psnr": "higher; PSNR (dB) of G(photo) against the known answer painting(photo) "
            "(synthetic content only)",
    "ssim": "higher; SSIM of G(photo) against painting(photo) (synthetic content only)",
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
}


def model_views(model_name: str, batch: dict[str, Any], outputs: dict[str, Any]
                ) -> dict[str, Any]:
  """The image sets the metrics compare: content, style, real (style domain) and generated."""
  if model_name == "adain_gan":
    return {"content": batch["content"], "style": batch["style"], "real": batch["real"],
            "generated": outputs["output"]}
  return {"content": batch["A"], "style": batch["B"], "real": batch["B"],
          "generated": outputs["fake_B"]}


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
  del out["content_distance_identity"]   # 0 by definition
  return out


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
    self._inception = None
    if inception is not None:
      module, variables = inception
      self._inception = jax.jit(functools.partial(module.apply, variables))

  def __call__(self, content, style, real, generated, known_answer: bool = False
               ) -> dict[str, float]:
    """Metrics of generated images (all NHWC in [-1, 1]).

    known_answer: content is synthetic:photo, so painting(content) is the right output.
    """
    generated = jnp.clip(jnp.asarray(generated, jnp.float32), -1.0, 1.0)
    out = jax.device_get(self._vgg_fn(self._vgg_variables, content, style, real, generated,
                                      jax.random.key(self._seed)))
    result: dict[str, float] = {}
    if known_answer:
      result.update(synthetic.known_answer_metrics(content, generated))
    for suffix in ("", "_identity"):
      for name in ("content_distance", "style_gram", "style_mean_std"):
        if name + suffix in out:
          result[name + suffix] = float(out[name + suffix])
      levels = out["swd_levels" + suffix]
      result["swd" + suffix] = float(np.mean(levels))
      if not suffix:
        result.update({f"swd_level_{i}": float(v) for i, v in enumerate(levels)})
      self._distribution_metrics(result, "vgg", out["pooled" + suffix], out["pooled_real"],
                                 suffix)
    if self._inception is not None:
      f_real = self._inception(real)
      for suffix, x in (("", generated), ("_identity", content)):
        self._distribution_metrics(result, "", self._inception(x), f_real, suffix)
    return result

  def _distribution_metrics(self, result, net: str, feats, feats_real, suffix: str) -> None:
    tag = f"_{net}" if net else ""
    result[f"fid{tag}{suffix}"] = metrics.frechet_distance(feats, feats_real)
    result[f"kid{tag}{suffix}"] = metrics.kernel_distance(feats, feats_real, seed=self._seed)


def evaluate_run(workdir: str, *, step: int | None = None, num_images: int | None = None,
                 seed: int = 0, vgg_weights: str | None = None,
                 inception_weights: str | None = None, inception_variant: str = "fid"
                 ) -> dict[str, Any]:
  """Evaluates workdir's latest (or given) checkpoint; returns the JSON-ready report.

  inception_variant: 'fid' for the pytorch-fid weights (pt_inception-2015-12-05, the standard
  FID network), 'torchvision' for torchvision's ImageNet Inception-v3 weights.
  """
  from ganstyle_jax import build, input_pipeline, steps  # pylint: disable=g-import-not-at-top
  config, setup, state, step = build.restore_run(workdir, step)
  num_images = num_images or config.num_eval_images
  batch, splits = input_pipeline.load_eval_data(config, num_images)
  vgg_weights = vgg_weights or config.model.vgg.weights
  vgg_variables = vgg_lib.load_params(vgg_weights)
  g_params = state.ema_g_params if state.ema_g_params is not None else state.g_params
  outputs = jax.jit(functools.partial(steps.generate, setup))(
      g_params, vgg_variables if setup.name == "adain_gan" else None, batch)
  inception = None
  if inception_weights:
    from ganstyle_jax.models import inception as inception_lib  # pylint: disable=g-import-not-at-top
    if inception_variant not in ("fid", "torchvision"):
      raise UserError(f"unknown inception_variant {inception_variant!r}; use fid or torchvision")
    inception = (inception_lib.InceptionV3(fid_variant=inception_variant == "fid"),
                 inception_lib.load_params(inception_weights))
  views = model_views(setup.name, batch, outputs)
  values = Evaluator(vgg_variables, seed=seed, inception=inception)(
      **views, known_answer="target" in batch)
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
  report = evaluate_run(f.workdir, step=f.step, num_images=f.num_images, seed=f.seed,
                        vgg_weights=f.vgg_weights, inception_weights=f.inception_weights,
                        inception_variant=f.inception_variant)
  text = json.dumps(report, indent=2, sort_keys=True)
  if f.out:
    os.makedirs(os.path.dirname(os.path.abspath(f.out)), exist_ok=True)
    with open(f.out, "w") as fh:
      fh.write(text + "\n")
  print(text)


def run():
  """Console script `ganstyle-eval`."""
  from absl import flags  # pylint: disable=g-import-not-at-top
  flags.DEFINE_string("workdir", None, "Training workdir (config.json + checkpoints/).")
  flags.DEFINE_string("out", None, "Also write the JSON report to this file.")
  flags.DEFINE_integer("step", None, "Checkpoint step (default: the latest).")
  flags.DEFINE_integer("num_images", None, "Held-out images (default: config num_eval_images).")
  flags.DEFINE_integer("seed", 0, "Seed of SWD's patches and directions and KID's subsets.")
  flags.DEFINE_string("vgg_weights", None, "VGG19 weights for the metrics (default: the run's).")
  flags.DEFINE_string("inception_weights", None,
                      "Inception-v3 weights (.npz/.safetensors, torchvision names; see "
                      "models/inception.py) for FID/KID.")
  flags.DEFINE_enum("inception_variant", "fid", ["fid", "torchvision"],
                    "fid: pytorch-fid's pt_inception weights; torchvision: ImageNet weights.")
  flags.mark_flags_as_required(["workdir"])

  run_cli(main)


if __name__ == "__main__":
  run()
