"""Learning-rate schedules and the optax optimizers of G and D (config.optim.g, config.optim.d)."""

from __future__ import annotations

import ml_collections
import optax

from ganstyle_jax.errors import UserError

SCHEDULES = ("constant", "linear", "cosine")


def learning_rate(cfg: ml_collections.ConfigDict, total_steps: int) -> optax.Schedule:
  """The schedule of one optimizer config: constant | linear (CycleGAN's) | cosine, + warm-up.

  linear: constant until decay_start_step, then linearly to 0 at total_steps. cosine: cosine
  decay to 0 over the steps after the warm-up. warmup_steps > 0 prepends a linear ramp from 0.
  """
  lr = cfg.lr
  if cfg.schedule == "constant":
    sched = optax.constant_schedule(lr)
  elif cfg.schedule == "linear":
    start = cfg.decay_start_step
    if not 0 <= start < total_steps:
      raise UserError(f"optim decay_start_step={start} must lie in [0, total_steps={total_steps})")
    sched = optax.join_schedules(
      [optax.constant_schedule(lr), optax.linear_schedule(lr, 0.0, total_steps - start)], [start]
    )
  elif cfg.schedule == "cosine":
    sched = optax.cosine_decay_schedule(lr, max(total_steps - cfg.warmup_steps, 1))
  else:
    raise UserError(f"unknown optim schedule {cfg.schedule!r}; use one of {SCHEDULES}")
  if cfg.warmup_steps > 0:
    sched = optax.join_schedules(
      [optax.linear_schedule(0.0, lr, cfg.warmup_steps), sched], [cfg.warmup_steps]
    )
  return sched


def optimizer(cfg: ml_collections.ConfigDict, total_steps: int) -> optax.GradientTransformation:
  """Adam(lr schedule, b1, b2), after clipping the global gradient norm when grad_clip_norm > 0."""
  adam = optax.adam(learning_rate(cfg, total_steps), b1=cfg.b1, b2=cfg.b2)
  if cfg.grad_clip_norm > 0:
    return optax.chain(optax.clip_by_global_norm(cfg.grad_clip_norm), adam)
  return adam
