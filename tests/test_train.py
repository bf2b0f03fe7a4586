"""train_and_evaluate end to end on tiny configs: outputs, exact resume, SIGTERM, NaN, errors."""

import glob
import json
import os
import signal
import subprocess
import sys

import jax
import numpy as np
import pytest

from ganstyle_jax import build, checkpointing, input_pipeline, train
from ganstyle_jax.errors import UserError
from configs.tiny import tiny_config

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def restored_state(workdir, config, step=None):
  setup = build.build_setup(config)
  target = build.init_state(setup, jax.random.key(0), config.data.image_size)
  ckpt = checkpointing.Checkpointer(os.path.join(workdir, "checkpoints"))
  state, data_state, step = ckpt.restore(target, step)
  ckpt.close()
  return state, data_state, step


@pytest.mark.parametrize("model,parallelism", [("adain_gan", "pmap"), ("cyclegan", "jit")])
def test_train_writes_everything(tmp_path, monkeypatch, capsys, model, parallelism):
  config = tiny_config(model, parallelism, steps=2)
  monkeypatch.chdir(tmp_path.parent)  # a relative --workdir, as in the README's command
  result = train.train_and_evaluate(config, tmp_path.name)
  # The console: what runs, then the summary (PSNR against its baselines, where things are).
  out = capsys.readouterr().out.splitlines()
  out = out[next(i for i, line in enumerate(out) if line.startswith("Training ")) :]
  assert out[0].startswith(f"Training {model} (new run, 2 steps) on ") and str(tmp_path) in out[0]
  assert out[1].startswith("Done: steps 0 -> 2 in ")
  assert out[3].startswith("  PSNR ") and "vs identity" in out[3] and "colour transfer" in out[3]
  assert any(line.startswith("Stylize:     python -m ganstyle_jax.stylize") for line in out)
  assert json.load(open(tmp_path / "config.json"))["model"]["name"] == model
  assert os.path.exists(tmp_path / "samples" / "step_000002.png")
  assert glob.glob(str(tmp_path / "events.out.tfevents.*"))
  assert all(np.isfinite(v) for v in result.values())
  assert "eval/psnr" in result and "eval/psnr_identity" in result  # synthetic known answer
  for name in ("content_distance", "style_gram", "style_mean_std", "swd", "fid_vgg", "kid_vgg"):
    assert f"eval/{name}" in result  # the evaluation suite, logged in the loop
  state, data_state, step = restored_state(str(tmp_path), config)
  assert step == 2 and int(state.step) == 2 and data_state


def test_resume_is_exact(tmp_path):
  straight = tiny_config("adain_gan", "jit", steps=4)
  train.train_and_evaluate(straight, str(tmp_path / "straight"))
  first = tiny_config("adain_gan", "jit", steps=2)
  train.train_and_evaluate(first, str(tmp_path / "resumed"))
  train.train_and_evaluate(tiny_config("adain_gan", "jit", steps=4), str(tmp_path / "resumed"))
  a, da, _ = restored_state(str(tmp_path / "straight"), straight)
  b, db, _ = restored_state(str(tmp_path / "resumed"), straight)
  assert da == db
  # Bit-exact on CPU: same programs, same data stream, same optimizer and schedule state.
  jax.tree.map(np.testing.assert_array_equal, a, b)


def wrap_train_iterator(monkeypatch, on_next):
  """Makes train_and_evaluate's iterator call on_next(n, batch) -> batch for batch n = 1, 2, ..."""
  real = input_pipeline.create_train_iterator

  class Wrapped:
    def __init__(self, it):
      self.it, self.n = it, 0

    def __getattr__(self, name):
      return getattr(self.it, name)

    def __next__(self):
      self.n += 1
      return on_next(self.n, next(self.it))

  monkeypatch.setattr(
    input_pipeline, "create_train_iterator", lambda *a, **k: Wrapped(real(*a, **k))
  )


def test_sigterm_saves_and_returns(tmp_path, monkeypatch):
  def preempt_at_3(n, batch):
    if n == 3:
      os.kill(os.getpid(), signal.SIGTERM)
    return batch

  wrap_train_iterator(monkeypatch, preempt_at_3)
  config = tiny_config("adain_gan", "pmap", steps=50)
  config.checkpoint_every_steps = 100
  train.train_and_evaluate(config, str(tmp_path))
  _, data_state, step = restored_state(str(tmp_path), config)
  # The signal comes from the prefetch thread while it reads batch 3, so the loop stops at a
  # step <= 3; the saved data position counts exactly the batches trained on, not those read.
  assert 1 <= step <= 3
  batch = config.data.global_batch_size
  assert data_state["positions"] == {
    "content": step * batch,
    "style": step * batch,
    "real": step * batch,
  }


def test_nan_stops_with_clear_error_and_keeps_last_checkpoint(tmp_path, monkeypatch):
  wrap_train_iterator(
    monkeypatch, lambda n, batch: {k: v * np.nan for k, v in batch.items()} if n >= 3 else batch
  )
  config = tiny_config("adain_gan", "pmap", steps=6)
  with pytest.raises(train.NonFiniteLossError, match=r"is nan at step 4"):
    train.train_and_evaluate(config, str(tmp_path))
  state, _, step = restored_state(str(tmp_path), config)
  assert step == 2
  assert all(np.isfinite(np.asarray(x)).all() for x in jax.tree.leaves(state))


def test_checkpoint_of_another_model_is_a_clear_error(tmp_path):
  train.train_and_evaluate(tiny_config("adain_gan", "pmap", steps=2), str(tmp_path))
  with pytest.raises(UserError, match="is a 'adain_gan' model, but the config asks for 'cyclegan'"):
    train.train_and_evaluate(tiny_config("cyclegan", "pmap", steps=4), str(tmp_path))
  wider = tiny_config("adain_gan", "pmap", steps=4)
  wider.model.discriminator.ndf = 16
  with pytest.raises(UserError, match="does not fit this config"):
    train.train_and_evaluate(wider, str(tmp_path))


def test_config_typo_fails_at_once(tmp_path):
  proc = subprocess.run(
    [
      sys.executable,
      "-m",
      "ganstyle_jax.main",
      "--config=configs/demo.py",
      f"--workdir={tmp_path}",
      "--config.data.imag_size=32",
    ],
    cwd=REPO,
    capture_output=True,
    text=True,
    timeout=120,
  )
  assert proc.returncode != 0
  assert "imag_size" in proc.stderr
  assert not os.path.exists(tmp_path / "checkpoints")


@pytest.mark.parametrize("path", sorted(glob.glob(os.path.join(REPO, "configs", "*.py"))))
def test_every_config_loads_and_builds(path):
  from ml_collections import config_flags

  config = config_flags.config_flags._LoadConfigModule("c", path).get_config()
  reference = tiny_config(config.model.name)
  assert set(config.keys()) == set(reference.keys())
  build.build_setup(config)
