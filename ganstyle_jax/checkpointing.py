"""A thin wrapper around orbax's CheckpointManager for GanState + data position + metadata.

Each checkpoint `checkpoints/<step>/` holds three items:
  state: the GanState pytree (params, optimizer states, step, EMA, image pool);
  data:  the input iterator's position (JSON), so a resumed run continues the data stream;
  meta:  the model name, the resolved config, every state leaf's shape and CRC32 (JSON). The
         shapes are checked before a restore (a checkpoint of another model or shape gives one
         clear error); the checksums after it, so a truncated or zero-filled array file is
         detected, never loaded as garbage. stylize, evaluate and load() build the model from
         the config in meta: a checkpoint is self-contained.
Orbax writes into a temporary directory and renames it when complete (atomically), so a
crash or kill during a save leaves the previous checkpoints intact and is never restored.
Only the trainer (`writer=True`, holding the workdir lock) removes the temporary directories
such a kill leaves behind; readers (stylize, evaluate, load()) never delete anything.

A restore falls back to the newest readable checkpoint, with a warning naming each bad step
and why; the trainer moves bad steps aside (`unreadable_<step>`) so it can save them again.

Multi-process runs: the state is replicated (data parallelism), so it is saved as host NumPy
arrays from one local replica, which orbax writes from process 0 only (JSON items likewise),
while every process takes part in the save as orbax expects. A restore gives host arrays,
which the caller places on its devices: a checkpoint restores on any process or device count.
"""

from __future__ import annotations

import json
import logging as py_logging
import os
import re
import zlib
from typing import Any, Callable

from absl import logging
import jax
import ml_collections
import numpy as np
import orbax.checkpoint as ocp

from ganstyle_jax import build, paths
from ganstyle_jax.config_base import base_config
from ganstyle_jax.errors import UserError


class SaveError(UserError):
  """A checkpoint could not be written (disk full, quota, permissions); the run stopped."""


def checkpoint_dir(workdir: str | os.PathLike) -> str:
  """Where a workdir's checkpoints live (local paths made absolute, as orbax needs)."""
  return paths.join(workdir, "checkpoints")


def host_copy(tree):
  """Host NumPy copy of a replicated pytree, read from this process's first replica."""
  local = lambda x: (
    x.addressable_data(0) if isinstance(x, jax.Array) and not x.is_fully_addressable else x
  )
  return jax.device_get(jax.tree.map(local, tree))


def _host_target(x):
  """Where a restore writes a leaf: host memory of its shape (abstract leaves cost nothing)."""
  if isinstance(x, jax.ShapeDtypeStruct):
    return np.empty(x.shape, x.dtype)
  return x


def _leaves(tree) -> dict[str, Any]:
  flat, _ = jax.tree_util.tree_flatten_with_path(tree)
  return {jax.tree_util.keystr(path): leaf for path, leaf in flat}


def _shapes(tree) -> dict[str, list[int]]:
  return {k: list(np.shape(v)) for k, v in _leaves(tree).items()}


def _checksums(tree) -> dict[str, int]:
  return {
    k: zlib.crc32(np.ascontiguousarray(v).view(np.uint8).ravel()) for k, v in _leaves(tree).items()
  }


def _reason(e: Exception) -> str:
  """One line: tensorstore's OS errors (deep inside long messages) first, then the start."""
  text = " ".join(str(e).split()) or type(e).__name__
  errno = re.search(r"os_error_code='(\d+)'", text)
  if errno:
    text = f"{os.strerror(int(errno.group(1)))} (errno {errno.group(1)}): {text}"
  return text if len(text) <= 200 else text[:197] + "..."


class _BackgroundSaveErrors(py_logging.Filter):
  """Catches the errors orbax's background save logs (and swallows) instead of raising them.

  Orbax finalizes an asynchronous save in its own thread and only logs a failure there; this
  filter on absl's logger keeps the error for `Checkpointer.check_for_errors` to raise as one
  line, and drops the traceback record.
  """

  def __init__(self):
    super().__init__()
    self.error: BaseException | None = None

  def filter(self, record: py_logging.LogRecord) -> bool:
    if record.exc_info and record.exc_info[1] is not None and "orbax" in record.pathname:
      self.error = self.error or record.exc_info[1]
      return False
    return True


class _Manager(ocp.CheckpointManager):
  """orbax's CheckpointManager, minus its own questions to JAX's preemption service.

  The service agrees on a stop step from each process's last `reached_preemption_sync_point`
  call, so the step passed in must only grow (train._StopSignals calls it once per step).
  orbax also calls it, from its save-finalize thread, with the step being saved: that thread
  runs a step or two behind the loop and sets the counter back. A signal landing then makes
  the processes agree on a step one of them has already passed: the others save and exit, and
  it trains on alone, blocked in the next collective until the shutdown barrier kills it.
  Every save here is forced, so orbax needs no preemption answer of its own.
  """

  def reached_preemption(self, step: int) -> bool:
    del step
    return False


class CorruptCheckpointError(Exception):
  """A checkpoint's files exist but do not hold what was saved."""


class Checkpointer:
  """Saves and restores GanStates under `directory` (local path or gs://).

  Args:
    directory: the checkpoints folder.
    keep: checkpoints kept on disk (writer only).
    async_save: write in the background while training continues (writer only).
    writer: the trainer's own manager: may create the folder, save, remove orbax's leftover
      temporary directories and move unreadable checkpoints aside. Readers only read.
  """

  def __init__(self, directory: str, keep: int = 3, async_save: bool = True, writer: bool = False):
    self.directory = paths.absolute(directory)
    self.writer = writer
    if writer:
      options = ocp.CheckpointManagerOptions(
        max_to_keep=keep,
        create=True,
        enable_async_checkpointing=async_save,
        cleanup_tmp_directories=True,
      )
    else:
      options = ocp.CheckpointManagerOptions(
        read_only=True, create=False, enable_async_checkpointing=False
      )
    self.manager = _Manager(self.directory, options=options, item_names=("state", "data", "meta"))
    self.unreadable: dict[int, str] = {}  # step -> why, found by the last restore
    self.last_good: int | None = self.latest_step()
    self._pending: int | None = None
    self._failed = False  # a SaveError was raised: closing must not raise it again
    self._errors = _BackgroundSaveErrors()
    if writer:
      py_logging.getLogger("absl").addFilter(self._errors)

  def latest_step(self) -> int | None:
    return self.manager.latest_step()

  def save(self, step: int, state, data_state: dict, meta: dict) -> None:
    """Starts an (asynchronous) save of `state` at `step`; `meta` is any JSON-able dict."""
    self.wait()  # orbax would wait too; first learn how the last save went
    state = host_copy(state)
    meta = dict(meta, shapes=_shapes(state), checksums=_checksums(state))
    try:
      self.manager.save(
        step,
        args=ocp.args.Composite(
          state=ocp.args.StandardSave(state),
          data=ocp.args.JsonSave(data_state),
          meta=ocp.args.JsonSave(meta),
        ),
        force=True,
      )
    except Exception as e:  # pylint: disable=broad-except
      self._pending = step
      raise self._save_error(e) from e
    self._pending = step
    self.check_for_errors()

  def _save_error(self, e: BaseException) -> SaveError:
    self._failed = True
    good = (
      f"step {self.last_good} in {self.directory}"
      if self.last_good is not None
      else f"none in {self.directory}"
    )
    return SaveError(
      f"saving the checkpoint of step {self._pending} failed: {_reason(e)}; "
      f"the last good checkpoint is {good}"
    )

  def check_for_errors(self) -> None:
    """Raises SaveError if a background save failed; cheap, so the loop calls it every step."""
    if self._pending is None:
      return
    try:
      self.manager.check_for_errors()
    except Exception as e:  # pylint: disable=broad-except
      raise self._save_error(e) from e
    if self._errors.error is not None:
      error, self._errors.error = self._errors.error, None
      raise self._save_error(error) from error
    if self.manager.is_saving_in_progress():
      return
    if jax.process_index() == 0 and not paths.exists(
      paths.join(self.directory, str(self._pending))
    ):
      raise self._save_error(RuntimeError("the save did not complete (see the log above)"))
    self.last_good, self._pending = self._pending, None

  def _read_meta(self, step: int) -> dict:
    return self.manager.restore(step, args=ocp.args.Composite(meta=ocp.args.JsonRestore()))["meta"]

  def read_meta(self, step: int | None = None) -> dict:
    return self._read_meta(self.latest_step() if step is None else step)

  def restore(
    self, target, step: int | None = None, expected_model: str | None = None
  ) -> tuple[Any, dict, int]:
    """Restores onto `target` (a state, or its `jax.eval_shape`: no init needed).

    Returns:
      (state as host NumPy arrays, data_state, step).
    Raises:
      UserError: no (readable) checkpoint, or one of another model or other shapes.
    """
    state, data, step, _ = self.restore_readable(lambda meta: target, step, expected_model)
    return state, data, step

  def restore_readable(
    self,
    make_target: Callable[[dict], Any],
    step: int | None = None,
    expected_model: str | None = None,
  ) -> tuple[Any, dict, int, dict]:
    """The newest readable checkpoint (or `step`'s), onto `make_target(its meta)`.

    Unreadable checkpoints (missing or corrupt files, checksum mismatches) are skipped with a
    warning naming the step and the reason, and recorded in `self.unreadable`. A checkpoint
    of another model or other shapes is an error, not skipped: it is a config mistake.

    Returns:
      (state as host NumPy arrays, data_state, step, meta).
    """
    steps = sorted(self.manager.all_steps(), reverse=True)
    if step is not None:
      if step not in steps:
        raise UserError(
          f"no checkpoint at step {step} in {self.directory}; it has steps {sorted(steps)}"
        )
      steps = [step]
    if not steps:
      raise UserError(f"no checkpoint in {self.directory}; train first or give another --workdir")
    self.unreadable = {}
    for s in steps:
      try:
        return self._restore_step(s, make_target, expected_model)
      except UserError:
        raise
      except Exception as e:  # pylint: disable=broad-except  (orbax, tensorstore, JSON, ...)
        self.unreadable[s] = _reason(e)
        older = [t for t in steps if t < s]
        logging.warning(
          "Checkpoint %s/%d is unreadable (%s); %s.",
          self.directory,
          s,
          self.unreadable[s],
          f"falling back to step {older[0]}" if older else "no older one left",
        )
    bad = "; ".join(f"step {s}: {why}" for s, why in self.unreadable.items())
    raise UserError(
      f"no readable checkpoint in {self.directory} ({bad}); restore a backup or "
      "train again in another --workdir"
    )

  def _restore_step(self, step: int, make_target, expected_model):
    meta = self._read_meta(step)
    if expected_model is not None and meta.get("model") != expected_model:
      raise UserError(
        f"checkpoint {self.directory}/{step} is a {meta.get('model')!r} model, "
        f"but the config asks for {expected_model!r}; use its own config or "
        "another workdir"
      )
    target = make_target(meta)
    want, have = _shapes(target), meta.get("shapes", {})
    diff = [k for k in sorted(set(want) | set(have)) if want.get(k) != have.get(k)]
    if diff:
      k = diff[0]
      raise UserError(
        f"checkpoint {self.directory}/{step} does not fit this config: {len(diff)} "
        f"arrays differ, e.g. {k} is {have.get(k, 'absent')} in the checkpoint but "
        f"{want.get(k, 'absent')} here (another model size, image_size or loss.adv_condition?); use the "
        "config it was trained with or another workdir"
      )
    # Restore as host arrays, whatever devices saved them.
    abstract = jax.tree.map(_host_target, host_copy(target))
    restored = self.manager.restore(
      step,
      args=ocp.args.Composite(
        state=ocp.args.StandardRestore(abstract), data=ocp.args.JsonRestore()
      ),
    )
    expected = meta.get("checksums")  # absent in checkpoints written before checksums
    if expected is not None:
      bad = [k for k, c in _checksums(restored["state"]).items() if expected.get(k) != c]
      if bad:
        raise CorruptCheckpointError(
          f"{len(bad)} arrays do not match their saved checksum, "
          f"e.g. {bad[0]} (a truncated or overwritten file)"
        )
    return restored["state"], restored["data"], step, meta

  def set_aside_unreadable(self) -> None:
    """Writer: renames the unreadable steps newer than the restored one to unreadable_<step>,
    so the run can save those steps again and a person can inspect them."""
    if not self.writer:
      raise ValueError("only the trainer's Checkpointer moves checkpoints")
    if jax.process_index() == 0:
      for step in self.unreadable:
        src = paths.join(self.directory, str(step))
        dst = paths.join(self.directory, f"unreadable_{step}")
        if paths.exists(dst):
          dst = f"{dst}_{os.getpid()}"
        paths.rename(src, dst)
        logging.warning("Moved the unreadable checkpoint %s aside to %s.", src, dst)
    if jax.process_count() > 1:
      from jax.experimental import multihost_utils  # pylint: disable=g-import-not-at-top

      multihost_utils.sync_global_devices("checkpoints set aside")
    self.manager.reload()
    self.last_good = self.latest_step()

  def wait(self) -> None:
    """Blocks until pending asynchronous saves are on disk; raises SaveError if one failed."""
    try:
      self.manager.wait_until_finished()
    except Exception as e:  # pylint: disable=broad-except
      raise self._save_error(e) from e
    self.check_for_errors()

  def close(self) -> None:
    """Waits for pending saves and closes; after a SaveError, without raising it again."""
    reported = self._failed
    try:
      self.wait()
      self.manager.close()
    except Exception as e:  # pylint: disable=broad-except
      if not reported:
        raise e if isinstance(e, SaveError) else self._save_error(e) from e
    finally:
      py_logging.getLogger("absl").removeFilter(self._errors)


def config_from_dict(saved: dict) -> ml_collections.ConfigDict:
  """A saved (JSON) config onto the current defaults: a key added since gets its default."""
  config = base_config(saved.get("model", {}).get("name", "adain_gan"))
  config.update(saved)  # typed: JSON's lists become the defaults' tuples again
  return config


def read_run_config(workdir: str | os.PathLike) -> ml_collections.ConfigDict:
  """The resolved config a training run wrote to workdir/config.json."""
  path = paths.join(workdir, "config.json")
  if not paths.exists(path):
    raise UserError(f"{workdir} has no config.json: is it a training workdir?")
  return config_from_dict(json.loads(paths.read_text(path)))


def restore_run(workdir: str | os.PathLike, step: int | None = None):
  """(config, setup, state, step) of workdir's newest readable (or given) checkpoint, on the
  host, with the config saved in that checkpoint (config.json only for checkpoints without).

  The state is restored onto the abstract shapes of a fresh init (`jax.eval_shape`), so no
  parameters are initialised only to be overwritten. Reads only: deletes nothing.
  """
  directory = checkpoint_dir(workdir)
  if not paths.exists(directory):
    raise UserError(f"{workdir} has no checkpoints/: is it a training workdir (train first)?")
  built = {}

  def target(meta: dict):
    config = config_from_dict(meta["config"]) if "config" in meta else read_run_config(workdir)
    built.update(config=config, setup=build.build_setup(config))
    return jax.eval_shape(
      lambda: build.init_state(built["setup"], jax.random.key(0), config.data.image_size)
    )

  ckpt = Checkpointer(directory)
  try:
    state, _, step, _ = ckpt.restore_readable(target, step)
  finally:
    ckpt.close()
  return built["config"], built["setup"], state, step
