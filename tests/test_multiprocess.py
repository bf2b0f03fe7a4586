"""2 processes x 4 CPU devices (jax.distributed, gloo) == 1 process x 8 devices; resume in 1."""

import ast
import os
import socket
import subprocess
import sys

import jax
import numpy as np
import pytest
from configs.tiny import DATA_DIR, tiny_config
from helpers import with_sgd

from ganstyle_jax import build, checkpointing, input_pipeline

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)


def free_port() -> int:
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


def run_workers(workdir, parallelism, steps, num_processes, extra=()):
  env = dict(os.environ, PYTHONPATH=REPO)
  env.pop("XLA_FLAGS", None)
  args = [
    sys.executable,
    os.path.join(HERE, "multiprocess_worker.py"),
    str(workdir),
    parallelism,
    str(steps),
    str(8 // num_processes),
    DATA_DIR,
  ]
  if num_processes > 1:
    port = free_port()
    procs = [
      subprocess.Popen(
        args + [str(port), str(num_processes), str(i), *extra],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
      )
      for i in range(num_processes)
    ]
  else:
    procs = [
      subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    ]
  outs = []
  for p in procs:
    try:
      outs.append(p.communicate(timeout=600)[0])
    finally:
      p.kill()
  for p, out in zip(procs, outs):
    assert p.returncode == 0, out[-3000:]
  return outs


def restored(workdir):
  config = tiny_config("adain_gan")
  setup = with_sgd(build.build_setup)(config)
  target = build.init_state(setup, jax.random.key(0), config.data.image_size)
  ckpt = checkpointing.Checkpointer(os.path.join(workdir, "checkpoints"), async_save=False)
  try:
    return ckpt.restore(target)
  finally:
    ckpt.close()


@pytest.fixture(scope="module")
def single(tmp_path_factory):
  input_pipeline.load_eval_batch(tiny_config("adain_gan"), 1)  # builds DATA_DIR once
  wd = tmp_path_factory.mktemp("single")
  run_workers(wd, "jit", 2, 1)
  return restored(str(wd))


@pytest.mark.parametrize("parallelism", ["pmap", "jit"])
def test_two_processes_match_one_and_resume_in_one(single, tmp_path, parallelism):
  outs = run_workers(tmp_path, parallelism, 2, 2)
  assert "process 0 of 2: done" in outs[0] and "process 1 of 2: done" in outs[1]
  state, data_state, step = restored(str(tmp_path))
  ref_state, _, ref_step = single
  assert step == ref_step == 2
  assert data_state == {"positions": {"batches": 2}}  # the batches trained on, not read ahead
  # Same global batches, same global mean gradient: the layouts differ only by float
  # summation order, tiny next to the distance the params travelled from their init.
  config = tiny_config("adain_gan")
  init_key, _ = jax.random.split(jax.random.key(config.seed))  # as train_and_evaluate does
  init = build.init_state(with_sgd(build.build_setup)(config), init_key, config.data.image_size)
  biggest = lambda f, *trees: max(
    jax.tree.leaves(jax.tree.map(lambda *x: float(np.max(np.abs(f(*x)))), *trees))
  )
  for name in ("g_params", "d_params"):
    a, b, a0 = getattr(state, name), getattr(ref_state, name), getattr(init, name)
    diff, travel = biggest(np.subtract, a, b), biggest(np.subtract, b, a0)
    assert diff < 1e-2 * travel, (name, diff, travel)
  # Metrics and samples come from process 0 only; both wrote nothing else.
  assert os.listdir(tmp_path / "samples") == ["step_000002.png"]
  # The 2-process checkpoint resumes in a single process with 8 devices. Checkpoints hold host
  # copies of the state whatever the parallelism (checkpointing.host_copy): one layout is enough.
  if parallelism == "pmap":
    return
  run_workers(tmp_path, parallelism, 4, 1)
  _, _, step = restored(str(tmp_path))
  assert step == 4


def test_sigterm_to_one_process_stops_all_at_one_step(tmp_path):
  outs = run_workers(tmp_path, "jit", 20, 2, extra=["3"])
  # Process 1 is signalled while it reads batch 3. JAX's preemption service makes all
  # processes agree on one step after the signal (which one depends on when the notice
  # reaches the others; without the service it is the next log step): they save there
  # together, well before the end, and exit 0.
  for out in outs:
    assert "Preempted: checkpoint saved at step" in out
    # The service agrees on the stop step from each process's latest call: one thread, the
    # loop's, with steps that never go back (orbax's save thread once set them back: a hang).
    calls = ast.literal_eval(out.split("preemption sync calls (thread, step): ")[1].splitlines()[0])
    assert {thread for thread, _ in calls} == {"MainThread"}, calls
    called = [step for _, step in calls]
    assert called == sorted(called), calls
  steps = {int(out.split("Preempted: checkpoint saved at step ")[1].split(".")[0]) for out in outs}
  assert len(steps) == 1
  agreed = steps.pop()
  assert 2 <= agreed < 20
  _, _, step = restored(str(tmp_path))
  assert step == agreed


def test_distributed_flags_are_checked_in_one_line(tmp_path):
  proc = subprocess.run(
    [
      sys.executable,
      "-m",
      "ganstyle_jax.main",
      "--config=configs/demo.py",
      f"--workdir={tmp_path}",
      "--num_processes=2",
      "--process_id=0",
    ],
    cwd=REPO,
    capture_output=True,
    text=True,
    timeout=300,
    check=False,
  )
  assert proc.returncode == 2
  assert proc.stderr.strip().splitlines()[-1] == (
    "error: --num_processes/--process_id need --coordinator_address=HOST:PORT"
  )
