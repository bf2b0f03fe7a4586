"""Long-run reliability on the command line and in train_and_evaluate: the workdir lock, corrupt
checkpoints, failed saves, stop signals, the checkpoint's own config and gs://-style workdirs."""

import glob
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import pytest

import helpers
import tensorflow as tf
from etils.epath import gpath
from etils.epath import backend as epath_backend
from etils.epath import register as epath_register

import ganstyle_jax
from configs.tiny import DATA_DIR, tiny_config
from ganstyle_jax import checkpointing, input_pipeline, paths, train
from ganstyle_jax.errors import UserError

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)

CONFIG = f"""
import sys
sys.path.insert(0, {HERE!r})
from configs.tiny import tiny_config


def get_config():
  c = tiny_config("adain_gan", "jit", steps=200)
  c.checkpoint_every_steps = 2
  c.log_every_steps = 1
  c.eval_every_steps = c.sample_every_steps = 0
  c.data.data_dir = {DATA_DIR!r}
  return c
"""


@pytest.fixture(scope="module")
def config_file(tmp_path_factory):
  input_pipeline.load_eval_batch(tiny_config(), 1)  # build the dataset once, outside limits
  path = tmp_path_factory.mktemp("cfg") / "long_config.py"
  path.write_text(CONFIG)
  return path


# Sets the file-size limit, then becomes the command (exec keeps the limit). Not a preexec_fn:
# Python code between fork and exec can deadlock in a process whose other threads (JAX's,
# TensorFlow's) held a lock at the fork.
WITH_FILE_SIZE_LIMIT = (
  "import os, resource, sys; n = int(sys.argv[1]); "
  "resource.setrlimit(resource.RLIMIT_FSIZE, (n, n)); os.execv(sys.executable, sys.argv[2:])"
)


def start(config_path, workdir, log, file_size_limit=None, env=None):
  env = {**os.environ, **helpers.CHEAP_COMPILES, "PYTHONPATH": REPO, **(env or {})}
  command = [
    sys.executable,
    "-m",
    "ganstyle_jax.main",
    f"--config={config_path}",
    f"--workdir={workdir}",
  ]
  if file_size_limit is not None:
    command = [sys.executable, "-c", WITH_FILE_SIZE_LIMIT, str(file_size_limit), *command]
  return subprocess.Popen(command, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)


def wait_for_checkpoint(proc, workdir, log_path, timeout=300):
  deadline = time.time() + timeout
  while time.time() < deadline and proc.poll() is None:
    if glob.glob(os.path.join(workdir, "checkpoints", "[0-9]*")):
      return
    time.sleep(0.05)
  raise AssertionError(open(log_path).read()[-3000:])


def short(config_steps=2, model="adain_gan"):
  config = tiny_config(model, "jit", steps=config_steps)
  config.eval_every_steps = config.sample_every_steps = 0
  return config


# ----------------------------------------------------------------------------- signals


def test_sigint_on_the_cli_saves_and_exits_0(tmp_path, config_file):
  workdir = str(tmp_path / "run")
  log_path = tmp_path / "log.txt"
  with open(log_path, "w") as log:
    proc = start(config_file, workdir, log)
    wait_for_checkpoint(proc, workdir, log_path)
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=300) == 0, open(log_path).read()[-3000:]
  text = open(log_path).read()
  assert "SIGINT received: saving a checkpoint and stopping" in text
  assert "checkpoint_manager.py" not in text  # the console hides orbax's INFO records
  assert "Done: stopped by SIGINT at step" in text
  saved = int(text.split("Preempted: checkpoint saved at step ")[1].split(".")[0])
  assert checkpointing.restore_run(workdir)[3] == saved < 200
  assert not os.path.exists(os.path.join(workdir, "lock"))  # released


@pytest.mark.parametrize(
  "signals,outcome", [((signal.SIGHUP,), "saved"), ((signal.SIGINT, signal.SIGINT), "aborted")]
)
def test_sighup_saves_and_a_second_sigint_aborts(tmp_path, monkeypatch, signals, outcome):
  from test_train import wrap_train_iterator

  def signal_at_3(n, batch):
    if n == 3:
      for sig in signals:
        os.kill(os.getpid(), sig)
    return batch

  wrap_train_iterator(monkeypatch, signal_at_3)
  config = short(50)
  config.checkpoint_every_steps = 100
  config.data.prefetch_batches = 0  # batches read in the main thread: the handler runs at once
  if outcome == "saved":
    train.train_and_evaluate(config, str(tmp_path))
    assert checkpointing.restore_run(tmp_path)[3] == 3
  else:
    with pytest.raises(KeyboardInterrupt):
      train.train_and_evaluate(config, str(tmp_path))
    assert not glob.glob(str(tmp_path / "checkpoints" / "[0-9]*"))  # nothing saved
  assert not os.path.exists(tmp_path / "lock")


# ----------------------------------------------------------------------------- the lock


def test_second_trainer_refuses_in_one_line_and_stale_lock_is_taken_over(tmp_path, config_file):
  workdir = tmp_path / "run"
  workdir.mkdir()
  holder = subprocess.Popen(["sleep", "300"])  # a live process on this host holds the lock
  try:
    (workdir / "lock").write_text(
      json.dumps(
        {"host": socket.gethostname(), "pid": holder.pid, "started": "2024-01-01T00:00:00+00:00"}
      )
    )
    proc = subprocess.run(
      [
        sys.executable,
        "-m",
        "ganstyle_jax.main",
        f"--config={config_file}",
        f"--workdir={workdir}",
      ],
      cwd=REPO,
      capture_output=True,
      text=True,
      timeout=300,
    )
  finally:
    holder.kill()
    holder.wait()
  assert proc.returncode == 2
  last = proc.stderr.strip().splitlines()[-1]
  assert last == (
    f"error: {workdir} is in use by another trainer (PID {holder.pid} on host "
    f"{socket.gethostname()}, started 2024-01-01T00:00:00+00:00); wait for it, "
    f"stop it, or use another --workdir (if that run is dead, delete "
    f"{workdir / 'lock'})"
  )
  assert sorted(os.listdir(workdir)) == ["lock"]  # nothing else was written
  # The holder is dead now: the lock is stale and the next trainer takes it over.
  train.train_and_evaluate(short(2), str(workdir))
  assert checkpointing.restore_run(workdir)[3] == 2
  assert not os.path.exists(workdir / "lock")


# ----------------------------------------------------------------------------- corrupt checkpoints


@pytest.fixture(scope="module")
def two_checkpoints(tmp_path_factory):
  wd = tmp_path_factory.mktemp("two")
  train.train_and_evaluate(short(4), str(wd))
  return wd


def damage(workdir, step, how):
  files = [
    f
    for f in glob.glob(
      os.path.join(workdir, "checkpoints", str(step), "state", "**"), recursive=True
    )
    if os.path.isfile(f) and "/d/" in f
  ]
  assert files
  for f in files:
    size = os.path.getsize(f)
    with open(f, "r+b") as fh:
      if how == "truncated":
        fh.truncate(size // 2)
      else:
        fh.write(b"\0" * size)


@pytest.mark.parametrize("how", ["truncated", "zero-filled"])
def test_restore_falls_back_past_a_corrupt_checkpoint(two_checkpoints, tmp_path, how, caplog):
  wd = tmp_path / "run"
  shutil.copytree(two_checkpoints, wd)
  damage(wd, 4, how)
  stylizer = ganstyle_jax.load(wd)  # load(), stylize, evaluate
  assert stylizer.step == 2
  assert "/checkpoints/4 is unreadable" in caplog.text and "falling back to step 2" in caplog.text
  caplog.clear()
  train.train_and_evaluate(short(6), str(wd))  # training
  assert "falling back to step 2" in caplog.text
  assert os.path.isdir(wd / "checkpoints" / "unreadable_4")  # set aside, kept for inspection
  assert checkpointing.restore_run(wd)[3] == 6


def test_checksum_catches_data_that_decodes(two_checkpoints, tmp_path, caplog):
  wd = tmp_path / "run"
  shutil.copytree(two_checkpoints, wd)
  meta_file = wd / "checkpoints" / "4" / "meta" / "metadata"
  meta = json.loads(meta_file.read_text())
  key = sorted(meta["checksums"])[0]
  meta["checksums"][key] ^= 1  # as if one array's bytes had changed on disk
  meta_file.write_text(json.dumps(meta))
  assert checkpointing.restore_run(wd)[3] == 2
  assert "do not match their saved checksum" in caplog.text


def test_no_readable_checkpoint_is_one_clear_error(two_checkpoints, tmp_path):
  wd = tmp_path / "run"
  shutil.copytree(two_checkpoints, wd)
  damage(wd, 4, "zero-filled")
  damage(wd, 2, "truncated")
  with pytest.raises(UserError, match=r"no readable checkpoint in .* \(step 4: .*; step 2: "):
    checkpointing.restore_run(wd)


def test_readers_delete_nothing(two_checkpoints, tmp_path):
  wd = tmp_path / "run"
  shutil.copytree(two_checkpoints, wd)
  in_progress = wd / "checkpoints" / "6.orbax-checkpoint-tmp-1234"  # a live run's save
  in_progress.mkdir()
  ganstyle_jax.load(wd)
  assert in_progress.exists()


# ----------------------------------------------------------------------------- failed saves


def test_failed_save_stops_the_run_in_one_line(tmp_path, config_file):
  workdir = str(tmp_path / "run")
  # Files over 64 KB cannot be written ("disk full" for the checkpoint's array file only:
  # the events file and config.json stay far below).
  log_path = tmp_path / "log.txt"
  with open(log_path, "w") as log:
    # No compilation cache: its entries would be cut at 64 KB and stay broken for other tests.
    proc = start(config_file, workdir, log, 64 * 1024, env=helpers.NO_COMPILATION_CACHE)
    rc = proc.wait(timeout=300)
  text = open(log_path).read()
  assert rc == 2, text[-3000:]
  last = text.strip().splitlines()[-1]
  assert last.startswith(
    "error: saving the checkpoint of step 2 failed: File too large (errno 27): "
  ), text[-3000:]
  assert "the last good checkpoint is none in" in last
  stopped = int(last.rsplit("stopped at step ", 1)[1])
  assert 3 <= stopped <= 4  # the next step, or the one after on a busy machine
  # No traceback through this package (tensorstore may print asyncio noise of its own).
  assert f'File "{REPO}/ganstyle_jax' not in text, text[-3000:]
  assert not os.path.exists(os.path.join(workdir, "lock"))


# ----------------------------------------------------------------------------- the config


def test_config_json_only_after_an_accepted_resume_and_checkpoint_has_its_config(tmp_path, caplog):
  train.train_and_evaluate(short(2), str(tmp_path))
  before = (tmp_path / "config.json").read_text()
  with pytest.raises(UserError, match="is a 'adain_gan' model"):
    train.train_and_evaluate(short(4, "cyclegan"), str(tmp_path))
  assert (tmp_path / "config.json").read_text() == before  # a refused resume changes nothing
  longer = short(4)
  longer.loss.w_style = 3.0
  train.train_and_evaluate(longer, str(tmp_path))
  assert (
    "Resuming step 2 with 2 config key(s) changed from the checkpoint's config:\n"
    "  loss.w_style: 10.0 -> 3.0\n  total_steps: 2 -> 4"
  ) in caplog.text
  os.remove(tmp_path / "config.json")  # stylize and evaluate read the checkpoint's own config
  config, _, _, step = checkpointing.restore_run(tmp_path)
  assert step == 4 and config.loss.w_style == 3.0 and config.total_steps == 4


# ----------------------------------------------------------------------------- gs:// workdirs


@pytest.fixture
def ram_scheme(monkeypatch, tmp_path):
  """ram:// (TensorFlow's in-memory filesystem) served by epath like gs://: through
  tf.io.gfile. Orbax's array files are written by tensorstore, which has no ram://, so the
  checkpoints alone go to a local folder."""
  monkeypatch.setattr(gpath, "_URI_PREFIXES", gpath._URI_PREFIXES + ("ram://",))
  monkeypatch.setattr(gpath, "_URI_SCHEMES", gpath._URI_SCHEMES | {"ram"})
  monkeypatch.setitem(gpath._URI_MAP_ROOT, "ram://", "/ram/")
  monkeypatch.setitem(gpath._PREFIX_TO_BACKEND, "ram", epath_backend.tf_backend)
  monkeypatch.setitem(epath_register._URI_PREFIXES_TO_CLS, "ram://", gpath.PosixGPath)
  local = tmp_path / "checkpoints"
  monkeypatch.setattr(
    checkpointing,
    "checkpoint_dir",
    lambda workdir: (
      str(local) if str(workdir).startswith("ram://") else paths.join(workdir, "checkpoints")
    ),
  )
  return local


def test_every_workdir_file_goes_through_the_path_layer(ram_scheme, tmp_path, monkeypatch):
  monkeypatch.chdir(tmp_path)
  workdir = "ram://bucket/run"
  config = tiny_config("adain_gan", "jit", steps=2)
  train.train_and_evaluate(config, workdir)
  files = tf.io.gfile.listdir(workdir)
  assert "config.json" in files and "lock" not in files
  assert any(f.startswith("events.out.tfevents") for f in files)
  assert tf.io.gfile.listdir(f"{workdir}/samples") == ["step_000002.png"]
  assert json.loads(tf.io.gfile.GFile(f"{workdir}/config.json").read())["total_steps"] == 2
  assert not os.path.exists(tmp_path / "ram:")  # no local folder named after the scheme
  assert sorted(os.listdir(ram_scheme)) == ["2"]
  # A lock on the remote workdir refuses a second trainer too.
  tf.io.gfile.GFile(f"{workdir}/lock", "w").write(
    json.dumps({"host": "other-host", "pid": 1, "started": "then"})
  )
  with pytest.raises(UserError, match="PID 1 on host other-host"):
    train.train_and_evaluate(tiny_config("adain_gan", "jit", steps=4), workdir)
  tf.io.gfile.remove(f"{workdir}/lock")
  out = ganstyle_jax.load(workdir).stylize(
    np.zeros((16, 16, 3), np.uint8), np.zeros((16, 16, 3), np.uint8)
  )
  assert out.shape == (16, 16, 3)
