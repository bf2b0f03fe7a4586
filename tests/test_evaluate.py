"""The evaluation CLI and Evaluator: every field, determinism, Inception FID, clear errors."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from ganstyle_jax import evaluate, train
from ganstyle_jax.errors import UserError
from ganstyle_jax.models import inception, vgg
from tiny import tiny_config

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SUITE = ("psnr", "ssim", "psnr_identity", "ssim_identity", "content_distance", "style_gram",
         "style_gram_identity", "style_mean_std", "style_mean_std_identity", "swd",
         "swd_identity", "swd_level_0", "swd_level_1", "fid_vgg", "fid_vgg_identity", "kid_vgg",
         "kid_vgg_identity")


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
  wd = tmp_path_factory.mktemp("eval")
  config = tiny_config("adain_gan", "jit", steps=3)
  config.checkpoint_every_steps = 2
  train.train_and_evaluate(config, str(wd))
  return str(wd)


def test_cli_writes_json_with_every_field(workdir, tmp_path):
  out = tmp_path / "sub" / "eval.json"
  proc = subprocess.run([sys.executable, "-m", "ganstyle_jax.evaluate", f"--workdir={workdir}",
                         f"--out={out}", "--step=2"], cwd=REPO, capture_output=True, text=True,
                        timeout=600)
  assert proc.returncode == 0, proc.stderr[-2000:]
  report = json.loads(out.read_text())
  assert report["checkpoint_step"] == 2 and report["model"] == "adain_gan"
  assert report["num_images"] == 8 and report["seed"] == 0 and report["image_size"] == 32
  assert report["split"] == {"content": "synthetic:photo (test_photo)",
                             "style": "synthetic:painting (test_painting)",
                             "real": "synthetic:painting (test_painting)"}
  assert set(SUITE) <= set(report["metrics"])
  assert all(np.isfinite(v) for v in report["metrics"].values())
  assert {"psnr", "swd", "fid_vgg"} <= set(report["definitions"])


def test_evaluation_is_deterministic_for_a_seed(workdir):
  a = evaluate.evaluate_run(workdir, seed=3)
  b = evaluate.evaluate_run(workdir, seed=3)
  c = evaluate.evaluate_run(workdir, seed=4)
  assert a["checkpoint_step"] == 3
  assert a["metrics"] == b["metrics"]
  assert a["metrics"]["swd"] != c["metrics"]["swd"]           # seeds SWD's patches
  assert a["metrics"]["psnr"] == c["metrics"]["psnr"]         # not a sampled metric


def test_identity_generator_scores_the_identity_baseline():
  rng = np.random.default_rng(0)
  content, style = (rng.uniform(-1, 1, (4, 32, 32, 3)).astype(np.float32) for _ in range(2))
  ev = evaluate.Evaluator(vgg.load_params("random"), seed=0)
  m = ev(content, style, style, content, known_answer=True)
  for name in ("psnr", "ssim", "style_gram", "style_mean_std", "swd", "fid_vgg", "kid_vgg"):
    np.testing.assert_allclose(m[name], m[f"{name}_identity"], rtol=1e-5, atol=1e-6)
  assert m["content_distance"] == 0.0


def test_inception_fid_on_a_weights_file_in_the_real_layout(tmp_path):
  rng = np.random.default_rng(0)
  state_dict = {k: rng.normal(0, 0.1, s).astype(np.float32)
                for k, s in inception.param_shapes().items()}
  for k in state_dict:
    if k.endswith("running_var"):
      state_dict[k] = np.abs(state_dict[k]) + 1.0
  path = tmp_path / "pt_inception.npz"
  np.savez(path, **state_dict)
  module = inception.InceptionV3(fid_variant=True)
  ev = evaluate.Evaluator(vgg.load_params("random"), inception=(module,
                                                               inception.load_params(str(path))))
  x = rng.uniform(-1, 1, (3, 32, 32, 3)).astype(np.float32)
  m = ev(x, x[::-1], x[::-1], x)
  assert {"fid", "kid", "fid_identity", "kid_identity"} <= set(m)
  assert abs(m["fid"] - m["fid_identity"]) < 1e-3 * max(1.0, abs(m["fid"]))


def test_bad_workdir_and_flags_are_clear_errors(workdir, tmp_path):
  with pytest.raises(UserError, match="has no config.json"):
    evaluate.evaluate_run(str(tmp_path))
  with pytest.raises(UserError, match=r"no checkpoint at step 7 .* it has steps \[2, 3\]"):
    evaluate.evaluate_run(workdir, step=7)
  with pytest.raises(UserError, match="inception"):
    evaluate.evaluate_run(workdir, inception_weights=str(tmp_path / "missing.npz"))
  proc = subprocess.run([sys.executable, "-m", "ganstyle_jax.evaluate",
                         f"--workdir={tmp_path}"], cwd=REPO, capture_output=True, text=True,
                        timeout=300)
  assert proc.returncode == 2
  assert proc.stderr.strip().splitlines()[-1].startswith("error: ")
  assert "config.json" in proc.stderr
