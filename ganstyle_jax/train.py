"""The host loop: `train_and_evaluate(config, workdir)` wires data, steps, logging and checkpoints.

Everything device-side lives in steps.py (pure step bodies) and parallel.py (pmap / jit
wrappers). This file owns the host: the input iterator, the loop, metric writers, sample
grids, evaluation, checkpoints (with resume), preemption (SIGTERM) and divergence checks.
"""
from __future__ import annotations

import contextlib
import functools
import json
import os
import signal
import time
from typing import Any

from absl import logging
from clu import metric_writers, periodic_actions
import jax
from jax.experimental import multihost_utils
import ml_collections
import numpy as np
from PIL import Image

from ganstyle_jax import build, checkpointing, input_pipeline, parallel, steps
from ganstyle_jax import evaluate as evaluate_lib
from ganstyle_jax.errors import UserError
from ganstyle_jax.images import to_uint8
from ganstyle_jax.models import vgg as vgg_lib


class NonFiniteLossError(UserError):
  """A loss became NaN or inf; the run stopped without saving the diverged state."""


def load_vgg(config: ml_collections.ConfigDict):
  """The frozen VGG19 variables: adain_gan's losses, and every model's evaluation metrics."""
  if config.model.name != "adain_gan" and config.eval_every_steps <= 0:
    return None
  return vgg_lib.load_params(config.model.vgg.weights)


def write_config(config: ml_collections.ConfigDict, workdir: str) -> None:
  with open(os.path.join(workdir, "config.json"), "w") as f:
    f.write(config.to_json_best_effort(indent=2, sort_keys=True))


def sample_grid(columns: list[np.ndarray]) -> np.ndarray:
  """One row per image, one column per array [N, H, W, 3] in [-1, 1]; 2 px white gutters."""
  n, h, w, _ = columns[0].shape
  g = 2
  grid = np.full((n * (h + g) + g, len(columns) * (w + g) + g, 3), 255, np.uint8)
  for j, col in enumerate(columns):
    col = to_uint8(col)
    for i in range(n):
      y, x = g + i * (h + g), g + j * (w + g)
      grid[y:y + h, x:x + w] = col[i, :h, :w]
  return grid


def grid_columns(name: str, batch: dict[str, np.ndarray], outputs: dict[str, np.ndarray],
                 n: int) -> list[np.ndarray]:
  """adain_gan: content | style | output; cyclegan: A | G(A) | B | F(B)."""
  if name == "adain_gan":
    cols = [batch["content"], batch["style"], outputs["output"]]
  else:
    cols = [batch["A"], outputs["fake_B"], batch["B"], outputs["fake_A"]]
  return [np.asarray(c[:n]) for c in cols]


def check_finite(metrics: dict[str, Any], step: int) -> None:
  bad = {k: float(v) for k, v in metrics.items() if not np.isfinite(v)}
  if bad:
    k = sorted(bad)[0]
    raise NonFiniteLossError(
        f"{k} is {bad[k]} at step {step}: training diverged (the last good checkpoint is kept); "
        "lower optim.*.lr, enable optim.*.grad_clip_norm or check the data")


class _Preemption:
  """Turns SIGTERM into a flag the loop checks between steps (then saves and exits 0).

  With several processes, a save is a collective: `should_stop(agree)` makes all of them
  stop at the same step, the first `agree` step (a log step) after any one was signalled.
  """

  def __init__(self):
    self.requested = False
    self._previous = None

  def should_stop(self, agree: bool) -> bool:
    if jax.process_count() == 1:
      return self.requested
    if not agree:
      return False
    flags = multihost_utils.process_allgather(np.asarray(self.requested, np.int32))
    return bool(np.any(flags))

  def __enter__(self):
    try:
      self._previous = signal.signal(signal.SIGTERM, self._handle)
    except ValueError:   # not the main thread: no signal handling
      self._previous = None
    return self

  def _handle(self, signum, frame):
    del signum, frame
    logging.warning("SIGTERM received: saving a checkpoint and stopping.")
    self.requested = True

  def __exit__(self, *exc):
    if self._previous is not None:
      signal.signal(signal.SIGTERM, self._previous)


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str) -> dict[str, float]:
  """Trains config.model.name for config.total_steps, resuming from workdir's latest checkpoint.

  Args:
    config: a locked ConfigDict with the keys of config_base.base_config.
    workdir: directory (local or gs://) for config.json, checkpoints/, TensorBoard events and
      samples/.
  Returns:
    The last logged train metrics and eval metrics (host floats), for tests and scripts.
  """
  workdir = os.fspath(workdir)
  is_main = jax.process_index() == 0
  os.makedirs(workdir, exist_ok=True)
  if is_main:
    write_config(config, workdir)
  writer = metric_writers.create_default_writer(workdir, just_logging=not is_main)

  setup = build.build_setup(config)
  n_devices = jax.device_count()
  if config.data.global_batch_size % n_devices:
    raise UserError(f"data.global_batch_size={config.data.global_batch_size} does not split "
                    f"over {n_devices} devices; use a multiple of {n_devices}")
  train_iter = input_pipeline.create_train_iterator(config)
  host_vgg = load_vgg(config)
  vgg_variables = host_vgg if setup.name == "adain_gan" else None
  step_fn = parallel.make_step(functools.partial(steps.train_step_fn(setup), setup=setup),
                               config.parallelism)
  base_key = jax.random.key(config.seed)
  init_key, step_key = jax.random.split(base_key)

  state = build.init_state(setup, init_key, config.data.image_size)
  ckpt = checkpointing.Checkpointer(os.path.join(workdir, "checkpoints"),
                                    keep=config.keep_checkpoints)
  if ckpt.latest_step() is not None:
    state, data_state, start = ckpt.restore(state, expected_model=setup.name)
    train_iter.set_state(data_state)
    logging.info("Resumed from %s at step %d.", ckpt.directory, start)
  start_step = int(state.step)
  state = step_fn.place_replicated(state)
  vgg_variables = step_fn.place_replicated(vgg_variables)
  step_key = step_fn.place_replicated(step_key)

  # Evaluation and samples run on process 0 alone, on its first local replica of the state.
  eval_batch = input_pipeline.load_eval_batch(config, config.num_eval_images) if is_main else None
  eval_inputs = jax.device_put(eval_batch)   # fixed: transferred once, not at every evaluation
  local_vgg = host_vgg if jax.process_count() > 1 else vgg_variables   # same values, local
  eval_fn = jax.jit(functools.partial(steps.eval_step, setup))
  evaluator = evaluate_lib.Evaluator(host_vgg, seed=config.seed) if host_vgg is not None else None
  meta = {"model": setup.name, "config": json.loads(config.to_json_best_effort())}

  def evaluate(state, step: int, do_eval: bool, do_sample: bool) -> dict[str, float]:
    if jax.process_count() > 1:
      state = checkpointing.host_copy(state)
    eval_state = (state.replace(g_params=state.ema_g_params)
                  if state.ema_g_params is not None else state)
    outputs, metrics = jax.device_get(eval_fn(eval_state, local_vgg, eval_inputs))
    result = {}
    if do_eval:
      result = {f"eval/{k}": float(v) for k, v in metrics.items()}
      views = evaluate_lib.model_views(setup.name, eval_batch, outputs)
      suite = evaluator(**views, known_answer="target" in eval_batch)
      result.update({f"eval/{k}": v for k, v in suite.items()})
      writer.write_scalars(step, result)
    if do_sample:
      grid = sample_grid(grid_columns(setup.name, eval_batch, outputs, config.num_sample_images))
      os.makedirs(os.path.join(workdir, "samples"), exist_ok=True)
      Image.fromarray(grid).save(os.path.join(workdir, "samples", f"step_{step:06d}.png"))
      writer.write_images(step, {"samples": grid[None]})
    return result

  report = periodic_actions.ReportProgress(num_train_steps=config.total_steps, writer=writer,
                                           every_steps=config.log_every_steps)
  last_train: dict[str, float] = {}
  last_eval: dict[str, float] = {}
  every = lambda n, s: n > 0 and s % n == 0
  logging.info("Training %s from step %d to %d on %d %s device(s), parallelism=%s.", setup.name,
               start_step, config.total_steps, n_devices, jax.devices()[0].platform,
               config.parallelism)
  t_log, s_log = time.time(), start_step
  batches = input_pipeline.DevicePrefetcher(train_iter, step_fn.prepare_batch,
                                            config.data.prefetch_batches)
  with _Preemption() as preempt, contextlib.closing(batches):
    for step in range(start_step + 1, config.total_steps + 1):
      batch, data_state = next(batches)
      state, metrics = step_fn(state, batch, vgg_variables, step_key)
      report(step)
      is_last = step == config.total_steps
      stop = preempt.should_stop(agree=every(config.log_every_steps, step) or is_last)
      save = every(config.checkpoint_every_steps, step) or is_last or stop
      if every(config.log_every_steps, step) or save:
        last_train = {k: float(v) for k, v in jax.device_get(metrics).items()}
        check_finite(last_train, step)
      if every(config.log_every_steps, step):
        dt = time.time() - t_log
        last_train["images_per_sec"] = (step - s_log) * config.data.global_batch_size / dt
        last_train["data/bad_files"] = float(train_iter.bad_files)
        t_log, s_log = time.time(), step
        writer.write_scalars(step, last_train)
      do_eval, do_sample = every(config.eval_every_steps, step), every(config.sample_every_steps,
                                                                       step)
      if (do_eval or do_sample) and is_main:
        last_eval = evaluate(state, step, do_eval, do_sample) or last_eval
      if save:
        ckpt.save(step, state, data_state, meta)
      if stop:
        logging.warning("Preempted: checkpoint saved at step %d.", step)
        break
  ckpt.close()
  writer.flush()
  return {**last_train, **last_eval}
