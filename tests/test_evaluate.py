"""The evaluation CLI and Evaluator: every field, determinism, Inception FID, clear errors."""

import functools
import json
import os
import subprocess
import sys

import jax
import numpy as np
import pytest

from ganstyle_jax import baselines, checkpointing, evaluate, input_pipeline, metrics, train
from ganstyle_jax.data import synthetic
from ganstyle_jax.errors import UserError
from ganstyle_jax.models import inception, vgg
from configs.tiny import tiny_config

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SUITE = (
  "temporal_error",
  "temporal_stability",
  "temporal_stability_identity",
  "psnr",
  "ssim",
  "psnr_identity",
  "ssim_identity",
  "psnr_colour_transfer",
  "ssim_colour_transfer",
  "content_distance",
  "style_gram",
  "style_gram_identity",
  "style_mean_std",
  "style_mean_std_identity",
  "swd",
  "swd_identity",
  "swd_level_0",
  "swd_level_1",
  "fid_vgg",
  "fid_vgg_identity",
  "kid_vgg",
  "kid_vgg_identity",
)


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
  wd = tmp_path_factory.mktemp("eval")
  config = tiny_config("adain_gan", "jit", steps=3)
  config.checkpoint_every_steps = 2
  train.train_and_evaluate(config, str(wd))
  return str(wd)


@pytest.fixture(scope="module")
def multi_workdir(tmp_path_factory):
  wd = tmp_path_factory.mktemp("eval_multi")
  config = tiny_config("adain_gan", "jit", steps=1)
  config.data.synthetic_styles = 3
  config.checkpoint_every_steps = 1
  config.sample_every_steps = config.eval_every_steps = 0
  train.train_and_evaluate(config, str(wd))
  return str(wd)


def test_cli_writes_json_with_every_field(workdir, tmp_path):
  out = tmp_path / "sub" / "eval.json"
  proc = subprocess.run(
    [
      sys.executable,
      "-m",
      "ganstyle_jax.evaluate",
      f"--workdir={workdir}",
      f"--out={out}",
      "--step=2",
    ],
    cwd=REPO,
    capture_output=True,
    text=True,
    timeout=600,
  )
  assert proc.returncode == 0, proc.stderr[-2000:]
  report = json.loads(out.read_text())
  assert report["checkpoint_step"] == 2 and report["model"] == "adain_gan"
  assert report["num_images"] == 8 and report["seed"] == 0 and report["image_size"] == 32
  assert report["split"] == {
    "content": "synthetic:photo (test_photo)",
    "style": "synthetic:painting (test_painting)",
    "real": "synthetic:painting (test_painting)",
  }
  assert set(SUITE) <= set(report["metrics"])
  assert all(np.isfinite(v) for v in report["metrics"].values())
  assert {
    "psnr",
    "swd",
    "fid_vgg",
    "psnr_identity",
    "psnr_colour_transfer",
    "ssim_colour_transfer",
  } <= set(report["definitions"])
  assert "psnr_style_blind" not in report["metrics"]  # single-style: painting_0(C) is the answer


def test_multi_style_report_scores_the_target_beside_every_baseline(multi_workdir):
  """A run on the multi-style benchmark (data.synthetic_styles = 3): unseen held-out styles."""
  report = evaluate.evaluate_run(multi_workdir)
  m = report["metrics"]
  config = checkpointing.read_run_config(multi_workdir)
  assert config.data.synthetic_styles == 3
  batch = input_pipeline.load_eval_batch(config, report["num_images"])
  ref = baselines.known_answer_baselines(batch["content"], batch["style"], batch["target"])
  assert m["psnr_colour_transfer"] == ref["psnr_colour_transfer"]
  assert m["ssim_colour_transfer"] == ref["ssim_colour_transfer"]
  assert m["psnr_identity"] == pytest.approx(ref["psnr_identity"], rel=1e-6)
  assert m["ssim_identity"] == pytest.approx(ref["ssim_identity"], rel=1e-6)
  # psnr is against painting_k(C) for S's held-out style k, not the style-0 painting.
  blind = synthetic.painting_signed(batch["content"])
  assert not np.array_equal(blind, batch["target"])
  assert m["psnr_style_blind"] == pytest.approx(
    float(np.mean(metrics.psnr(blind, batch["target"])))
  )
  assert m["psnr_identity"] != pytest.approx(float(np.mean(metrics.psnr(batch["content"], blind))))
  assert {"psnr_identity", "psnr_colour_transfer", "psnr_style_blind", "ssim_style_blind"} <= set(
    report["definitions"]
  )
  assert all(np.isfinite(v) for v in m.values())


def test_evaluation_is_deterministic_for_a_seed_and_batch_size(workdir):
  a = evaluate.evaluate_run(workdir, seed=3)
  b = evaluate.evaluate_run(workdir, seed=3, batch_size=3)  # rendered 3 at a time (8 images)
  c = evaluate.evaluate_run(workdir, seed=4)
  assert a["checkpoint_step"] == 3
  for k, v in a["metrics"].items():  # equal up to the float rounding of other batch shapes
    np.testing.assert_allclose(b["metrics"][k], v, rtol=1e-4, atol=1e-5, err_msg=k)
  assert a["metrics"]["swd"] != c["metrics"]["swd"]  # seeds SWD's patches
  assert a["metrics"]["psnr"] == c["metrics"]["psnr"]  # not a sampled metric


def test_identity_generator_scores_the_identity_baseline():
  rng = np.random.default_rng(0)
  content, style = (rng.uniform(-1, 1, (4, 32, 32, 3)).astype(np.float32) for _ in range(2))
  ev = evaluate.Evaluator(vgg.load_params("random"), seed=0)
  m = ev(content, style, style, content, known_answer=True)
  assert m == ev(content, style, style, content, target=synthetic.painting_signed(content))
  for name in ("psnr", "ssim", "style_gram", "style_mean_std", "swd", "fid_vgg", "kid_vgg"):
    np.testing.assert_allclose(m[name], m[f"{name}_identity"], rtol=1e-5, atol=1e-6)
  assert m["content_distance"] == 0.0


def test_inception_fid_on_a_weights_file_in_the_real_layout(tmp_path):
  rng = np.random.default_rng(0)
  state_dict = {
    k: rng.normal(0, 0.1, s).astype(np.float32) for k, s in inception.param_shapes().items()
  }
  for k in state_dict:
    if k.endswith("running_var"):
      state_dict[k] = np.abs(state_dict[k]) + 1.0
  path = tmp_path / "pt_inception.npz"
  np.savez(path, **state_dict)
  module = inception.InceptionV3(fid_variant=True)
  ev = evaluate.Evaluator(
    vgg.load_params("random"), inception=(module, inception.load_params(str(path)))
  )
  real = rng.uniform(-1, 1, (4, 32, 32, 3)).astype(np.float32)
  content = rng.uniform(-1, -0.5, (4, 32, 32, 3)).astype(np.float32)  # darker, another set
  generated = real[::-1]  # the real set in another order: the same distribution
  m = ev(content, real, real, generated)
  assert {"fid", "kid", "fid_identity", "kid_identity"} <= set(m)
  feats = jax.jit(functools.partial(module.apply, inception.load_params(str(path))))
  np.testing.assert_allclose(
    m["fid_identity"], metrics.frechet_distance(feats(content), feats(real)), rtol=1e-4
  )
  assert m["fid_identity"] > 0
  assert abs(m["fid"]) < 1e-3 * m["fid_identity"]  # generated and real sets agree


def test_bad_workdir_and_flags_are_clear_errors(workdir, tmp_path):
  with pytest.raises(UserError, match="is it a training workdir"):
    evaluate.evaluate_run(str(tmp_path))
  with pytest.raises(UserError, match=r"no checkpoint at step 7 .* it has steps \[2, 3\]"):
    evaluate.evaluate_run(workdir, step=7)
  with pytest.raises(UserError, match="inception"):
    evaluate.evaluate_run(workdir, inception_weights=str(tmp_path / "missing.npz"))
  for n in (0, -3):  # not the config's default in disguise
    with pytest.raises(UserError, match=f"--num_images={n}: use a positive number"):
      evaluate.evaluate_run(workdir, num_images=n)
  proc = subprocess.run(
    [sys.executable, "-m", "ganstyle_jax.evaluate", f"--workdir={tmp_path}"],
    cwd=REPO,
    capture_output=True,
    text=True,
    timeout=300,
  )
  assert proc.returncode == 2
  assert proc.stderr.strip().splitlines()[-1].startswith("error: ")
  assert "training workdir" in proc.stderr
