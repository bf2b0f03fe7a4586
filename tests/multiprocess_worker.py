"""One process of a multi-process CPU run (used by test_multiprocess.py), or a single process.

    python tests/multiprocess_worker.py WORKDIR PARALLELISM STEPS LOCAL_DEVICES DATA_DIR \
        [PORT NUM_PROCESSES PROCESS_ID [SIGTERM_BATCH]]

Trains the tiny adain_gan config (SGD, see helpers.with_sgd) on a fixed stream of global batches
(batch n is the same in every layout), each process feeding only its own slice of the global
batch, so N processes x D devices can be compared with 1 process x N*D devices. With
SIGTERM_BATCH, the last process sends itself SIGTERM when it reads that batch.
"""

import os
import signal
import sys


class FixedGlobalBatches:
  """Global batch n = f(n); this process yields its contiguous slice of it."""

  def __init__(self, config, process_index: int, process_count: int, sigterm_batch: int = 0):
    self.sigterm_batch = sigterm_batch
    self.global_batch = config.data.global_batch_size
    self.size = config.data.image_size
    self.process_index, self.process_count = process_index, process_count
    self.n = 0
    self.bad_files = 0

  def __next__(self):
    import numpy as np  # pylint: disable=g-import-not-at-top

    self.n += 1
    if self.n == self.sigterm_batch and self.process_index == self.process_count - 1:
      os.kill(os.getpid(), signal.SIGTERM)
    rng = np.random.default_rng(self.n)
    full = {
      k: rng.uniform(-1, 1, (self.global_batch, self.size, self.size, 3)).astype(np.float32)
      for k in ("content", "style", "real")
    }
    local = self.global_batch // self.process_count
    lo = self.process_index * local
    return {k: v[lo : lo + local] for k, v in full.items()}

  def get_state(self):
    return {"positions": {"batches": self.n}}

  def set_state(self, state):
    self.n = state["positions"]["batches"]


def record_preemption_sync_calls() -> list:
  """Records each call to JAX's preemption service: (thread name, step), in call order."""
  import threading  # pylint: disable=g-import-not-at-top

  from jax.experimental import multihost_utils  # pylint: disable=g-import-not-at-top

  calls, reached = [], multihost_utils.reached_preemption_sync_point

  def recorded(step):
    calls.append((threading.current_thread().name, step))
    return reached(step)

  multihost_utils.reached_preemption_sync_point = recorded
  return calls


def main(argv):
  workdir, parallelism, steps, local_devices, data_dir = argv[1:6]
  os.environ["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={local_devices}"
  here = os.path.dirname(os.path.abspath(__file__))
  sys.path[:0] = [here, os.path.dirname(here)]
  import jax  # pylint: disable=g-import-not-at-top
  from configs import tiny  # pylint: disable=g-import-not-at-top
  import helpers  # pylint: disable=g-import-not-at-top

  from ganstyle_jax import build, distributed, input_pipeline, train  # pylint: disable=g-import-not-at-top

  sigterm_batch = int(argv[9]) if len(argv) > 9 else 0
  sync_calls = record_preemption_sync_calls()
  if len(argv) > 6:
    port, n, i = argv[6:9]
    distributed.initialize("auto", f"127.0.0.1:{port}", int(n), int(i))
  jax.config.update("jax_disable_most_optimizations", True)
  input_pipeline.create_train_iterator = lambda config, **kw: FixedGlobalBatches(
    config, jax.process_index(), jax.process_count(), sigterm_batch
  )
  # On these uniform-noise batches the tiny config's losses are large: SGD at 1e-4 diverges
  # by step 6 (inf content loss), which a run longer than a few steps reaches.
  build.build_setup = helpers.with_sgd(build.build_setup, lr=1e-5)
  config = tiny.tiny_config("adain_gan", parallelism, steps=int(steps))
  config.data.data_dir = data_dir
  config.checkpoint_every_steps = 2
  config.sample_every_steps = int(steps)
  config.eval_every_steps = 0  # evaluation is process 0's alone, as sampling (test_train covers it)
  if sigterm_batch:
    # Read batches in the main thread, where Python runs the SIGTERM handler at once; from the
    # prefetch thread the signal could land several steps later, past a busy machine's timing.
    config.data.prefetch_batches = 0
  train.train_and_evaluate(config, workdir)
  print(f"preemption sync calls (thread, step): {sync_calls}", flush=True)
  print(f"process {jax.process_index()} of {jax.process_count()}: done", flush=True)


if __name__ == "__main__":
  main(sys.argv)
