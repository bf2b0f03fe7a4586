"""A thin wrapper around orbax's CheckpointManager for GanState + data position + metadata.

Each checkpoint `checkpoints/<step>/` holds three items:
  state: the GanState pytree (params, optimizer states, step, EMA, image pool);
  data:  the input iterator's position (JSON), so a resumed run continues the data stream;
  meta:  the model name, config and every state leaf's shape (JSON), checked before a restore
         so that a checkpoint of another model or shape gives one clear error.
Orbax writes into a temporary directory and renames it when complete (atomically), so a
crash or kill during a save leaves the previous checkpoints intact and is never restored;
the temporary directories such a kill leaves behind are removed at the next start.

Multi-process runs: the state is replicated (data parallelism), so it is saved as host NumPy
arrays from one local replica, which orbax writes from process 0 only (JSON items likewise),
while every process takes part in the save as orbax expects. A restore gives host arrays,
which the caller places on its devices: a checkpoint restores on any process or device count.
"""
from __future__ import annotations

import os
from typing import Any

import jax
import numpy as np
import orbax.checkpoint as ocp

from ganstyle_jax.errors import UserError


def host_copy(tree):
  """Host NumPy copy of a replicated pytree, read from this process's first replica."""
  local = lambda x: (x.addressable_data(0)
                     if isinstance(x, jax.Array) and not x.is_fully_addressable else x)
  return jax.device_get(jax.tree.map(local, tree))


def _shapes(tree) -> dict[str, list[int]]:
  flat, _ = jax.tree_util.tree_flatten_with_path(tree)
  return {jax.tree_util.keystr(path): list(np.shape(leaf)) for path, leaf in flat}


class Checkpointer:
  """Saves and restores GanStates under `directory` (local path or gs://)."""

  def __init__(self, directory: str, keep: int = 3, async_save: bool = True):
    directory = os.fspath(directory)
    # Orbax wants absolute paths; a relative --workdir is relative to the current directory.
    self.directory = directory if "://" in directory else os.path.abspath(directory)
    options = ocp.CheckpointManagerOptions(max_to_keep=keep, create=True,
                                           enable_async_checkpointing=async_save,
                                           cleanup_tmp_directories=True)
    self.manager = ocp.CheckpointManager(self.directory, options=options,
                                         item_names=("state", "data", "meta"))

  def latest_step(self) -> int | None:
    return self.manager.latest_step()

  def save(self, step: int, state, data_state: dict, meta: dict) -> None:
    """Starts an (asynchronous) save of `state` at `step`; `meta` is any JSON-able dict."""
    meta = dict(meta, shapes=_shapes(state))
    state = host_copy(state)
    self.manager.save(step, args=ocp.args.Composite(
        state=ocp.args.StandardSave(state), data=ocp.args.JsonSave(data_state),
        meta=ocp.args.JsonSave(meta)), force=True)

  def read_meta(self, step: int | None = None) -> dict:
    step = self.latest_step() if step is None else step
    return self.manager.restore(step, args=ocp.args.Composite(meta=ocp.args.JsonRestore()))["meta"]

  def restore(self, target, step: int | None = None, expected_model: str | None = None
              ) -> tuple[Any, dict, int]:
    """Restores onto `target` (a state or its abstract shapes/shardings).

    Returns:
      (state as host NumPy arrays, data_state, step).
    Raises:
      UserError: no checkpoint, or one of another model or other shapes.
    """
    step = self.latest_step() if step is None else step
    if step is None:
      raise UserError(f"no checkpoint in {self.directory}; train first or give another --workdir")
    if step not in self.manager.all_steps():
      raise UserError(f"no checkpoint at step {step} in {self.directory}; it has steps "
                      f"{sorted(self.manager.all_steps())}")
    meta = self.read_meta(step)
    if expected_model is not None and meta.get("model") != expected_model:
      raise UserError(f"checkpoint {self.directory}/{step} is a {meta.get('model')!r} model, "
                      f"but the config asks for {expected_model!r}; use its own config or "
                      "another workdir")
    want, have = _shapes(target), meta.get("shapes", {})
    diff = [k for k in sorted(set(want) | set(have)) if want.get(k) != have.get(k)]
    if diff:
      k = diff[0]
      raise UserError(
          f"checkpoint {self.directory}/{step} does not fit this config: {len(diff)} "
          f"arrays differ, e.g. {k} is {have.get(k, 'absent')} in the checkpoint but "
          f"{want.get(k, 'absent')} here (another model size or image_size?); use the "
          "config it was trained with or another workdir")
    abstract = host_copy(target)   # restore as host arrays, whatever devices saved them
    restored = self.manager.restore(step, args=ocp.args.Composite(
        state=ocp.args.StandardRestore(abstract), data=ocp.args.JsonRestore()))
    return restored["state"], restored["data"], step

  def wait(self) -> None:
    """Blocks until pending asynchronous saves are on disk."""
    self.manager.wait_until_finished()

  def close(self) -> None:
    self.manager.wait_until_finished()
    self.manager.close()
