"""Multi-process runs on JAX's distributed runtime (one process per host, multi-controller).

`initialize` is called by the CLIs before any JAX computation:

- explicit: `--coordinator_address=HOST:PORT --num_processes=N --process_id=I` on every
  process (any cluster, or several processes on one machine);
- automatic: `--distributed=on` without an address lets JAX detect Cloud TPU pod slices, SLURM
  and Open MPI (jax.distributed.initialize() with no arguments). With the default
  `--distributed=auto` a multi-task SLURM or Open MPI job is detected the same way, and a
  single process stays single (no coordinator needed).

On the CPU the cross-process collectives use gloo (jax_cpu_collectives_implementation), which
is how the tests run 2 processes x 4 fake CPU devices on one machine.
"""

from __future__ import annotations

import os

import jax
from absl import logging

from ganstyle_jax.errors import UserError

MODES = ("auto", "on", "off")


def _cluster_job() -> bool:
  """A multi-task job of a cluster manager that jax.distributed detects on its own."""
  tasks = os.environ.get("SLURM_NTASKS") or os.environ.get("OMPI_COMM_WORLD_SIZE") or "1"
  return int(tasks) > 1


def initialize(
  mode: str = "auto",
  coordinator_address: str | None = None,
  num_processes: int | None = None,
  process_id: int | None = None,
) -> bool:
  """Starts jax.distributed when the run is multi-process; returns whether it did."""
  if mode not in MODES:
    raise UserError(f"--distributed={mode!r}: use one of {', '.join(MODES)}")
  explicit = (coordinator_address, num_processes, process_id)
  if mode == "off" or (mode == "auto" and not coordinator_address and not _cluster_job()):
    if any(v is not None for v in explicit):
      raise UserError("--num_processes/--process_id need --coordinator_address=HOST:PORT")
    return False
  if coordinator_address and (num_processes is None or process_id is None):
    raise UserError(
      "--coordinator_address needs --num_processes and --process_id on every "
      "process (process 0 hosts the coordinator)"
    )
  if num_processes is not None and not 0 <= (process_id or 0) < num_processes:
    raise UserError(f"--process_id={process_id} must lie in [0, --num_processes={num_processes})")
  if "JAX_CPU_COLLECTIVES_IMPLEMENTATION" not in os.environ:
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
  try:
    jax.distributed.initialize(coordinator_address, num_processes, process_id)
  except (RuntimeError, ValueError) as e:
    first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    raise UserError(
      f"jax.distributed.initialize failed: {first} (check --coordinator_address, "
      "that process 0 is running and the port is reachable)"
    ) from e
  logging.info(
    "jax.distributed: process %d of %d, %d local / %d global devices.",
    jax.process_index(),
    jax.process_count(),
    jax.local_device_count(),
    jax.device_count(),
  )
  return True
