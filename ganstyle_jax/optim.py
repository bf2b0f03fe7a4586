"""Learning-rate schedules and the optax optimizers of G and D (config.optim.g, config.optim.d)."""

from __future__ import annotations

import re

import jax
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


def parse_lr_scales(spec: str) -> tuple[tuple[str, float], ...]:
  """'REGEX=SCALE,REGEX=SCALE' -> ((regex, scale), ...); '' -> (). Raises UserError when malformed."""
  rules = []
  for part in filter(None, (p.strip() for p in spec.split(","))):
    pattern, sep, scale = part.rpartition("=")
    try:
      value = float(scale)
      re.compile(pattern)
    except (ValueError, re.error):
      value = None
    if not sep or not pattern or value is None or not value > 0:
      raise UserError(
        f"optim lr_scales rule {part!r} is malformed: write REGEX=SCALE with SCALE > 0, "
        "rules separated by commas (e.g. 'colour=25')"
      )
    rules.append((pattern, value))
  return tuple(rules)


def param_path(path) -> str:
  """A parameter's tree path as the names lr_scales matches: 'decoder/conv0/conv/kernel'."""
  return jax.tree_util.keystr(path, simple=True, separator="/")


def scale_by_path(rules: tuple[tuple[str, float], ...]) -> optax.GradientTransformation:
  """Multiplies each parameter's update by the scale of the first rule whose regex it matches.

  After Adam this is Adam with that group's learning rate times the scale (Adam's step is
  lr * m / sqrt(v)); it keeps no state. init raises UserError when a rule matches no
  parameter (a typo).
  """

  def scale_of(path) -> float:
    name = param_path(path)
    return next((s for pattern, s in rules if re.search(pattern, name)), 1.0)

  def init(params):
    names = [param_path(p) for p, _ in jax.tree_util.tree_leaves_with_path(params)]
    for pattern, _ in rules:
      if not any(re.search(pattern, n) for n in names):
        raise UserError(
          f"optim lr_scales pattern {pattern!r} matches no parameter; the parameters are "
          f"named like {', '.join(names[:4])}, ..."
        )
    return optax.EmptyState()

  def update(updates, state, params=None):
    del params
    scaled = jax.tree_util.tree_map_with_path(lambda p, u: u * scale_of(p), updates)
    return scaled, state

  return optax.GradientTransformation(init, update)


def optimizer(cfg: ml_collections.ConfigDict, total_steps: int) -> optax.GradientTransformation:
  """Adam(lr schedule, b1, b2), after clipping the global gradient norm when grad_clip_norm > 0.

  cfg.lr_scales ('REGEX=SCALE,...') multiplies the learning rate of the parameters whose
  '/'-joined path the regex matches (first rule wins; others keep 1).
  """
  parts = [optax.adam(learning_rate(cfg, total_steps), b1=cfg.b1, b2=cfg.b2)]
  if cfg.grad_clip_norm > 0:
    parts.insert(0, optax.clip_by_global_norm(cfg.grad_clip_norm))
  if rules := parse_lr_scales(cfg.lr_scales):
    parts.append(scale_by_path(rules))
  return parts[0] if len(parts) == 1 else optax.chain(*parts)
