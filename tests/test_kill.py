"""kill -9 at random moments of training and checkpointing: the next start takes over the dead
trainer's lock, restores the newest complete checkpoint and continues; partial checkpoints are
never restored nor left behind."""

import os
import random
import re
import signal
import subprocess
import sys
import time

import pytest

import helpers

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
TOTAL_STEPS = 12

CONFIG = f"""
import sys
sys.path.insert(0, {HERE!r})
from configs.tiny import tiny_config


def get_config():
  c = tiny_config("adain_gan", "jit", steps={TOTAL_STEPS})
  c.checkpoint_every_steps = 1          # a save is nearly always in flight
  c.log_every_steps = 1
  c.eval_every_steps = c.sample_every_steps = 0
  c.data.data_dir = {{data_dir!r}}
  return c
"""


def checkpoint_dirs(workdir):
  root = os.path.join(workdir, "checkpoints")
  names = os.listdir(root) if os.path.isdir(root) else []
  steps = sorted(int(n) for n in names if n.isdigit())
  return steps, [n for n in names if not n.isdigit()]


def start(config_path, workdir, log):
  # The starts share a compilation cache of their own: a kill during a cache write must not
  # leave a cut entry in the suite's shared cache (conftest).
  cache = os.path.join(os.path.dirname(workdir), "jax_cache")
  env = {
    **os.environ,
    **helpers.CHEAP_COMPILES,
    "PYTHONPATH": REPO,
    "JAX_COMPILATION_CACHE_DIR": cache,
  }
  return subprocess.Popen(
    [sys.executable, "-m", "ganstyle_jax.main", f"--config={config_path}", f"--workdir={workdir}"],
    cwd=REPO,
    env=env,
    stdout=log,
    stderr=subprocess.STDOUT,
  )


@pytest.mark.parametrize("seed", [0])
def test_kill_9_never_loses_or_restores_a_partial_checkpoint(tmp_path, seed):
  from configs.tiny import DATA_DIR, tiny_config

  from ganstyle_jax import input_pipeline

  input_pipeline.load_eval_batch(tiny_config(), 1)  # build the dataset before the kills
  config_path = tmp_path / "kill_config.py"
  config_path.write_text(CONFIG.format(data_dir=DATA_DIR))
  workdir = str(tmp_path / "run")
  rng = random.Random(seed)
  newest = None
  for attempt in range(2):  # the second start takes over the first's lock and resumes
    log_path = tmp_path / f"log_{attempt}.txt"
    with open(log_path, "w") as log:
      proc = start(config_path, workdir, log)
      # Wait for a save beyond the newest one, then kill at a random moment after it.
      deadline = time.time() + 300
      while time.time() < deadline and proc.poll() is None:
        steps, _ = checkpoint_dirs(workdir)
        if steps and (newest is None or steps[-1] > newest):
          break
        time.sleep(0.05)
      time.sleep(rng.uniform(0.0, 1.5))
      assert proc.poll() is None, open(log_path).read()[-3000:]
      proc.send_signal(signal.SIGKILL)
      proc.wait()
    text = open(log_path).read()
    if newest is not None:  # this start resumed from the newest complete checkpoint
      assert re.search(rf"Resumed from .* at step {newest}\b", text), text[-3000:]
      assert "Taking over the stale lock" in text, text[-3000:]
    steps, leftovers = checkpoint_dirs(workdir)
    print(f"killed {attempt}: complete {steps}, partial {leftovers}")
    newest = steps[-1]
  with open(tmp_path / "log_final.txt", "w") as log:
    proc = start(config_path, workdir, log)
    assert proc.wait(timeout=600) == 0, open(tmp_path / "log_final.txt").read()[-3000:]
  text = open(tmp_path / "log_final.txt").read()
  assert re.search(rf"Resumed from .* at step {newest}\b", text), text[-3000:]
  steps, leftovers = checkpoint_dirs(workdir)
  assert steps[-1] == TOTAL_STEPS
  assert leftovers == [], leftovers  # orbax's temporary directories were cleaned up
  assert not os.path.exists(os.path.join(workdir, "lock"))  # released at the end
