"""The host loop: `train_and_evaluate(config, workdir)` wires data, steps, logging and checkpoints.

Everything device-side lives in families/ (the step bodies of each model family), steps.py
(their shared pieces) and parallel.py (pmap / jit wrappers). This file owns the host: the
config checks, the workdir lock, the input iterator, the loop, metric writers, sample grids,
evaluation, checkpoints (resume, fall-back past unreadable ones, failed saves), stop signals
(SIGTERM, SIGINT, SIGHUP) and divergence checks. Workdir I/O goes through paths.py (gs://).
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

from ganstyle_jax import build, checkpointing, config_check, console, families, input_pipeline
from ganstyle_jax import evaluate as evaluate_lib
from ganstyle_jax import parallel, paths
from ganstyle_jax.errors import UserError
from ganstyle_jax.images import to_uint8
from ganstyle_jax.models import vgg as vgg_lib


class NonFiniteLossError(UserError):
  """A loss became NaN or inf; the run stopped without saving the diverged state."""


def load_vgg(config: ml_collections.ConfigDict):
  """The frozen VGG19 variables: adain_gan's losses, and every model's evaluation metrics."""
  if not families.get(config.model.name).needs_vgg and config.eval_every_steps <= 0:
    return None
  return vgg_lib.load_params(config.model.vgg.weights)


def write_config(config: ml_collections.ConfigDict, workdir: str) -> None:
  paths.write_text(
    paths.join(workdir, "config.json"), config.to_json_best_effort(indent=2, sort_keys=True)
  )


def _flat(tree: dict, prefix: str = "") -> dict[str, Any]:
  out = {}
  for k, v in tree.items():
    if isinstance(v, dict):
      out.update(_flat(v, f"{prefix}{k}."))
    else:
      out[f"{prefix}{k}"] = v
  return out


def log_config_changes(saved: dict | None, config: ml_collections.ConfigDict, step: int) -> None:
  """Logs, in one block, the keys in which `config` differs from the checkpoint's config."""
  if saved is None:
    return
  old, new = _flat(saved), _flat(json.loads(config.to_json_best_effort()))
  changed = [
    f"  {k}: {old.get(k, '(absent)')!r} -> {new.get(k, '(absent)')!r}"
    for k in sorted(set(old) | set(new))
    if old.get(k) != new.get(k)
  ]
  if changed:
    logging.warning(
      "Resuming step %d with %d config key(s) changed from the checkpoint's config:\n%s",
      step,
      len(changed),
      "\n".join(changed),
    )


def sample_grid(columns: list[np.ndarray]) -> np.ndarray:
  """One row per image, one column per array [N, H, W, 3] in [-1, 1]; 2 px white gutters."""
  n, h, w, _ = columns[0].shape
  g = 2
  grid = np.full((n * (h + g) + g, len(columns) * (w + g) + g, 3), 255, np.uint8)
  for j, col in enumerate(columns):
    col = to_uint8(col)
    for i in range(n):
      y, x = g + i * (h + g), g + j * (w + g)
      grid[y : y + h, x : x + w] = col[i, :h, :w]
  return grid


def check_finite(metrics: dict[str, Any], step: int) -> None:
  bad = {k: float(v) for k, v in metrics.items() if not np.isfinite(v)}
  if bad:
    k = sorted(bad)[0]
    raise NonFiniteLossError(
      f"{k} is {bad[k]} at step {step}: training diverged (the last good checkpoint is kept); "
      "lower optim.*.lr, enable optim.*.grad_clip_norm or check the data"
    )


def describe_run(config, setup, workdir: str, start: int, resumed_from: str | None) -> str:
  """The console's start line: model, data, devices, parallelism, workdir, new or resumed."""
  seen, sources = set(), []
  for key, source in setup.family.batch_keys(config).items():
    if not source.startswith("synthetic:known_answer") and source not in seen:
      seen.add(source)
      sources.append(f"{key} {source}")
  styles = config.data.synthetic_styles
  data = ", ".join(sources) + (f" ({styles} train styles)" if styles > 1 else "")
  devices = f"{jax.device_count()} {jax.devices()[0].platform} device(s)"
  if jax.process_count() > 1:
    devices += f" in {jax.process_count()} processes"
  run = (
    f"Resumed from {resumed_from} at step {start}, to step {config.total_steps}"
    if resumed_from
    else f"new run, {config.total_steps} steps"
  )
  return (
    f"Training {setup.name} ({run}) on {data}, {config.data.image_size} px, batch "
    f"{config.data.global_batch_size}; {devices}, parallelism={config.parallelism}; "
    f"workdir {workdir}"
  )


def summary_lines(
  config,
  setup,
  workdir: str,
  *,
  start: int,
  end: int,
  wall_s: float,
  setup_s: float,
  compile_s: float | None,
  images_per_s: float | None,
  result: dict[str, float],
  eval_step: int | None,
  checkpoint_steps: list[int],
  samples: list[str],
  stopped_by: str | None,
) -> list[str]:
  """The console's closing summary (see `_train`)."""
  how = f"stopped by {stopped_by} at step {end}" if stopped_by else f"steps {start} -> {end}"
  speed = f", then {images_per_s:.1f} images/s" if images_per_s else ""
  parts = [f"setup {console.duration(setup_s)}"]
  if compile_s is not None:
    parts.append(f"compiling the step {console.duration(compile_s)}")
  lines = [f"Done: {how} in {console.duration(wall_s)} ({', '.join(parts)}){speed}."]
  if stopped_by:
    lines.append("  The checkpoint is saved; the same command resumes.")
  scores = {k[len("eval/") :]: v for k, v in result.items() if k.startswith("eval/")}
  if eval_step is None or not scores:
    lines.append("Evaluation: none ran (eval_every_steps=0); python -m ganstyle_jax.evaluate does")
  else:
    lines += evaluate_lib.summary_lines(scores, eval_step, config.num_eval_images)
  steps = ", ".join(map(str, checkpoint_steps)) or "none"
  lines.append(f"Checkpoints: {checkpointing.checkpoint_dir(workdir)} (steps {steps})")
  if samples:
    lines.append(f"Samples:     {samples[-1]} (newest of {len(samples)} written)")
  lines.append(f"Events:      {workdir}/events.out.tfevents.*")
  if setup.family.style_conditioned:
    inputs = "--content=PHOTO.jpg --style=STYLE.jpg"
  else:
    inputs = f"--content=PHOTO.jpg --direction={setup.family.directions[0]}"
  lines.append(
    f"Stylize:     python -m ganstyle_jax.stylize --workdir={workdir} {inputs} --out=out.png"
  )
  lines.append(f"TensorBoard: tensorboard --logdir={workdir}")
  return lines


class _StopSignals:
  """Turns SIGTERM, SIGINT (Ctrl-C) and SIGHUP (a dropped ssh session) into a flag the loop
  checks between steps: it saves a checkpoint and returns (exit status 0). A second SIGINT
  aborts at once (KeyboardInterrupt), without saving.

  With several processes a save is a collective, so all must stop at the same step. JAX's
  preemption service (multihost_utils.reached_preemption_sync_point) agrees on that step in
  the background: its notifier owns SIGTERM, and SIGINT/SIGHUP are forwarded to it as SIGTERM,
  so every process saves at the same step, the first one after the signal that all reach,
  without waiting for a log step. The service counts on its step only growing, so this loop
  is its only caller (checkpointing._Manager keeps orbax's save thread from calling it).
  Without the service (jax_enable_preemption_service=False) the processes compare their flags
  at log steps instead.
  """

  SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)

  def __init__(self, start_step: int):
    self.requested: str | None = None
    self._previous: dict[int, Any] = {}
    self._sync = False
    if jax.process_count() > 1:
      try:
        multihost_utils.reached_preemption_sync_point(start_step)
        self._sync = True
      except RuntimeError:  # the preemption service is off
        logging.warning("JAX's preemption service is off: processes agree to stop at log steps.")

  def should_stop(self, step: int, at_log_step: bool) -> bool:
    """Whether to save and stop after `step` (the same answer on every process)."""
    if jax.process_count() == 1:
      return self.requested is not None
    if self._sync:
      return multihost_utils.reached_preemption_sync_point(step)
    if not at_log_step:
      return False
    flags = multihost_utils.process_allgather(np.asarray(self.requested is not None, np.int32))
    return bool(np.any(flags))

  def __enter__(self):
    for sig in self.SIGNALS:
      if self._sync and sig == signal.SIGTERM:
        continue  # JAX's preemption notifier handles it
      try:
        self._previous[sig] = signal.signal(sig, self._handle)
      except ValueError:  # not the main thread: no signal handling
        break
    return self

  def _handle(self, signum, frame):
    del frame
    name = signal.Signals(signum).name
    if self.requested is not None:
      if signum == signal.SIGINT:
        raise KeyboardInterrupt(f"second {name}")
      return
    self.requested = name
    logging.warning(
      "%s received: saving a checkpoint and stopping (press Ctrl-C again to abort "
      "at once, without saving).",
      name,
    )
    if self._sync:
      os.kill(os.getpid(), signal.SIGTERM)  # to JAX's notifier, which tells every process

  def __exit__(self, *exc):
    for sig, previous in self._previous.items():
      if previous is not None:  # None: a handler installed outside Python, left in place
        signal.signal(sig, previous)


class _LockedWorkdir(contextlib.AbstractContextManager):
  """Process 0 holds the workdir lock for the run; every process learns whether it got it."""

  def __init__(self, workdir: str):
    self.lock = paths.WorkdirLock(workdir) if jax.process_index() == 0 else None
    self.workdir = workdir

  def __enter__(self):
    error = None
    if self.lock is not None:
      try:
        paths.makedirs(self.workdir)
        self.lock.acquire()
      except UserError as e:
        error = e
    if jax.process_count() > 1:
      ok = multihost_utils.broadcast_one_to_all(np.asarray(error is None, np.int32))
      if not ok and error is None:
        error = UserError(f"process 0 could not lock {self.workdir}; see its log")
    if error is not None:
      raise error
    return self

  def __exit__(self, *exc):
    if self.lock is not None:
      self.lock.release()


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str) -> dict[str, float]:
  """Trains config.model.name for config.total_steps, resuming from workdir's newest readable
  checkpoint.

  Nothing is written before the config values are checked and the workdir lock is taken;
  config.json only after a resume was accepted.

  Args:
    config: a locked ConfigDict with the keys of config_base.base_config.
    workdir: directory (local or gs://) for config.json, checkpoints/, TensorBoard events,
      samples/ and the lock.
  Returns:
    The last logged train metrics and eval metrics (host floats), for tests and scripts.
  Raises:
    UserError: a bad config value, a locked workdir, an unusable checkpoint, a failed save.
  """
  t_start = time.time()
  config_check.validate(config)
  n_devices = jax.device_count()
  if config.data.global_batch_size % n_devices:
    raise UserError(
      f"data.global_batch_size={config.data.global_batch_size} does not split "
      f"over {n_devices} devices; use a multiple of {n_devices}"
    )
  workdir = paths.absolute(workdir)
  with _LockedWorkdir(workdir):
    setup = build.build_setup(config)
    ckpt = checkpointing.Checkpointer(
      checkpointing.checkpoint_dir(workdir), keep=config.keep_checkpoints, writer=True
    )
    try:
      return _train(config, workdir, setup, ckpt, t_start)
    finally:
      ckpt.close()


def _train(
  config: ml_collections.ConfigDict,
  workdir: str,
  setup,
  ckpt: checkpointing.Checkpointer,
  t_start: float,
) -> dict[str, float]:
  """Resumes (or initialises) the state, writes config.json, then runs the loop.

  The console (process 0): one line of what runs, a progress bar (or a line per log step in a
  log file), and a summary at the end: steps, time, images/s, the last evaluation against its
  baselines, where checkpoints, samples and events are, and the commands to go on with.
  """
  is_main = jax.process_index() == 0
  n_devices = jax.device_count()
  train_iter = input_pipeline.create_train_iterator(config)
  step_fn = parallel.make_step(
    functools.partial(setup.family.train_step, setup=setup), config.parallelism
  )
  base_key = jax.random.key(config.seed)
  init_key, step_key = jax.random.split(base_key)

  state = build.init_state(setup, init_key, config.data.image_size)
  resumed_from = None
  if ckpt.latest_step() is not None:
    fresh = state
    state, data_state, start, saved = ckpt.restore_readable(
      lambda meta: fresh, expected_model=setup.name
    )
    if ckpt.unreadable:
      ckpt.set_aside_unreadable()
    train_iter.set_state(data_state)
    log_config_changes(saved.get("config"), config, start)
    logging.info("Resumed from %s at step %d.", ckpt.directory, start)
    resumed_from = ckpt.directory
  if is_main:
    console.write(describe_run(config, setup, workdir, int(state.step), resumed_from))
  host_vgg = load_vgg(config)
  vgg_variables = host_vgg if setup.family.needs_vgg else None
  if is_main:
    write_config(config, workdir)  # only now: a refused resume leaves the workdir as it was
  writer = metric_writers.create_default_writer(workdir, just_logging=not is_main)
  start_step = int(state.step)
  state = step_fn.place_replicated(state)
  vgg_variables = step_fn.place_replicated(vgg_variables)
  step_key = step_fn.place_replicated(step_key)

  # Evaluation and samples run on process 0 alone, on its first local replica of the state.
  eval_batch = input_pipeline.load_eval_batch(config, config.num_eval_images) if is_main else None
  eval_inputs = jax.device_put(eval_batch)  # fixed: transferred once, not at every evaluation
  local_vgg = host_vgg if jax.process_count() > 1 else vgg_variables  # same values, local
  eval_fn = jax.jit(functools.partial(setup.family.eval_step, setup))
  evaluator = evaluate_lib.Evaluator(host_vgg, seed=config.seed) if host_vgg is not None else None
  meta = {"model": setup.name, "config": json.loads(config.to_json_best_effort())}

  def evaluate(state, step: int, do_eval: bool, do_sample: bool) -> dict[str, float]:
    if jax.process_count() > 1:
      state = checkpointing.host_copy(state)
    eval_state = (
      state.replace(g_params=state.ema_g_params) if state.ema_g_params is not None else state
    )
    outputs, metrics = jax.device_get(eval_fn(eval_state, local_vgg, eval_inputs))
    result = {}
    if do_eval:
      result = {f"eval/{k}": float(v) for k, v in metrics.items()}
      views = setup.family.eval_views(eval_batch, outputs)
      suite = evaluator(**views, known_answer="target" in eval_batch)
      result.update({f"eval/{k}": v for k, v in suite.items()})
      writer.write_scalars(step, result)
    if do_sample:
      columns = setup.family.grid_columns(eval_batch, outputs)
      grid = sample_grid([np.asarray(c[: config.num_sample_images]) for c in columns])
      paths.makedirs(paths.join(workdir, "samples"))
      samples.append(paths.join(workdir, "samples", f"step_{step:06d}.png"))
      paths.write_png(samples[-1], grid)
      writer.write_images(step, {"samples": grid[None]})
    return result

  report = periodic_actions.ReportProgress(
    num_train_steps=config.total_steps, writer=writer, every_steps=config.log_every_steps or None
  )
  last_train: dict[str, float] = {}
  last_eval: dict[str, float] = {}
  samples: list[str] = []
  eval_step = None
  every = lambda n, s: n > 0 and s % n == 0
  logging.info(
    "Training %s from step %d to %d on %d %s device(s), parallelism=%s.",
    setup.name,
    start_step,
    config.total_steps,
    n_devices,
    jax.devices()[0].platform,
    config.parallelism,
  )
  t_log, s_log = time.time(), start_step
  batches = parallel.DevicePrefetcher(
    train_iter, step_fn.prepare_batch, config.data.prefetch_batches
  )
  bar = console.StepProgress(start_step, config.total_steps, enabled=is_main)
  t_loop, t_first, stopped_by, end = time.time(), None, None, start_step
  with _StopSignals(start_step) as stopper, contextlib.closing(batches), contextlib.closing(bar):
    for step in range(start_step + 1, config.total_steps + 1):
      batch, data_state = next(batches)
      state, metrics = step_fn(state, batch, vgg_variables, step_key)
      if t_first is None:
        t_first = time.time()  # the first call returns once compiled (it runs asynchronously)
      end = step
      try:
        ckpt.check_for_errors()  # a failed background save stops the run here, one step on
      except checkpointing.SaveError as e:
        raise checkpointing.SaveError(f"{e}; stopped at step {step}") from e.__cause__
      report(step)
      is_last = step == config.total_steps
      stop = stopper.should_stop(step, every(config.log_every_steps, step) or is_last)
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
      do_eval, do_sample = (
        every(config.eval_every_steps, step),
        every(config.sample_every_steps, step),
      )
      if (do_eval or do_sample) and is_main:
        last_eval = evaluate(state, step, do_eval, do_sample) or last_eval
        eval_step = step if do_eval else eval_step
      if every(config.log_every_steps, step):
        bar.log(step, last_train, last_eval.get("eval/psnr"))
      else:
        bar.step(step)
      if save:
        ckpt.save(step, state, data_state, meta)
      if stop:
        ckpt.wait()
        logging.warning("Preempted: checkpoint saved at step %d.", step)
        stopped_by = stopper.requested or "a signal to another process"
        break
  ckpt.wait()  # the last save's errors too
  writer.flush()
  if is_main:
    t_end = time.time()
    images = (end - start_step - 1) * config.data.global_batch_size
    lines = summary_lines(
      config,
      setup,
      workdir,
      start=start_step,
      end=end,
      wall_s=t_end - t_start,
      setup_s=t_loop - t_start,
      compile_s=None if t_first is None else t_first - t_loop,
      images_per_s=images / (t_end - t_first) if t_first and images > 0 else None,
      result=last_eval,
      eval_step=eval_step,
      checkpoint_steps=list(ckpt.manager.all_steps()),
      samples=samples,
      stopped_by=stopped_by,
    )
    console.write("\n".join(lines))
  return {**last_train, **last_eval}
