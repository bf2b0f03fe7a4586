"""From a config to networks, optimizers and an initial GanState (shared by train, stylize, bench)."""
from __future__ import annotations

import json
import os

import jax
import jax.numpy as jnp
import ml_collections
import optax

from ganstyle_jax import losses, steps
from ganstyle_jax.errors import UserError
from ganstyle_jax.models import discriminators, generators
from ganstyle_jax.state import GanState

MODELS = ("adain_gan", "cyclegan")
DTYPES = {"float32": jnp.float32, "bfloat16": jnp.bfloat16}


def learning_rate(cfg: ml_collections.ConfigDict, total_steps: int) -> optax.Schedule:
  """The schedule of one optimizer config: constant | linear (CycleGAN's) | cosine, + warm-up."""
  lr = cfg.lr
  if cfg.schedule == "constant":
    sched = optax.constant_schedule(lr)
  elif cfg.schedule == "linear":
    start = cfg.decay_start_step
    if not 0 <= start < total_steps:
      raise UserError(f"optim decay_start_step={start} must lie in [0, total_steps={total_steps})")
    sched = optax.join_schedules(
        [optax.constant_schedule(lr), optax.linear_schedule(lr, 0.0, total_steps - start)],
        [start])
  elif cfg.schedule == "cosine":
    sched = optax.cosine_decay_schedule(lr, max(total_steps - cfg.warmup_steps, 1))
  else:
    raise UserError(f"unknown optim schedule {cfg.schedule!r}; use constant, linear or cosine")
  if cfg.warmup_steps > 0:
    sched = optax.join_schedules([optax.linear_schedule(0.0, lr, cfg.warmup_steps), sched],
                                 [cfg.warmup_steps])
  return sched


def optimizer(cfg: ml_collections.ConfigDict, total_steps: int) -> optax.GradientTransformation:
  """Adam(lr schedule, b1, b2) with optional global-norm clipping."""
  adam = optax.adam(learning_rate(cfg, total_steps), b1=cfg.b1, b2=cfg.b2)
  if cfg.grad_clip_norm > 0:
    return optax.chain(optax.clip_by_global_norm(cfg.grad_clip_norm), adam)
  return adam


def build_setup(config: ml_collections.ConfigDict) -> steps.GanSetup:
  """Networks, optimizers and loss settings named by the config."""
  name = config.model.name
  if name not in MODELS:
    raise UserError(f"unknown model.name {name!r}; use one of {MODELS}")
  if config.compute_dtype not in DTYPES:
    raise UserError(f"unknown compute_dtype {config.compute_dtype!r}; use one of {tuple(DTYPES)}")
  dtype = DTYPES[config.compute_dtype]
  gc, dc, lc = config.model.generator, config.model.discriminator, config.loss
  if name == "adain_gan":
    g = generators.AdaINGenerator(encoder_layer=gc.encoder_layer, dtype=dtype)
  else:
    g = generators.ResNetGenerator(ngf=gc.ngf, n_blocks=gc.n_blocks, dtype=dtype)
  d_kw = dict(ndf=dc.ndf, n_layers=dc.n_layers, norm=dc.norm, spectral_norm=dc.spectral_norm,
              dtype=dtype)
  d = (discriminators.MultiScalePatchGAN(num_scales=dc.num_scales, **d_kw) if dc.num_scales > 1
       else discriminators.PatchGAN(**d_kw))
  loss = steps.LossConfig(
      adv_type=lc.adv_type, w_adv=lc.w_adv, w_content=lc.w_content, w_style=lc.w_style,
      w_cycle=lc.w_cycle, w_identity=lc.w_identity, w_tv=lc.w_tv, r1_gamma=lc.r1_gamma,
      style_type=lc.style_type, content_type=lc.content_type,
      style_layers=tuple(lc.style_layers), style_layer_weights=tuple(lc.style_layer_weights),
      pool_size=lc.pool_size)
  if loss.adv_type not in losses.ADV_TYPES:
    raise UserError(f"unknown loss.adv_type {loss.adv_type!r}; use one of {losses.ADV_TYPES}")
  if loss.style_type not in ("gram", "mean_std"):
    raise UserError(f"unknown loss.style_type {loss.style_type!r}; use gram or mean_std")
  if loss.content_type not in ("perceptual", "pixel"):
    raise UserError(f"unknown loss.content_type {loss.content_type!r}; use perceptual or pixel")
  return steps.GanSetup(
      name=name, generator=g, discriminator=d,
      g_tx=optimizer(config.optim.g, config.total_steps),
      d_tx=optimizer(config.optim.d, config.total_steps),
      loss=loss, ema_decay=config.model.ema_decay, compute_dtype=dtype)


def init_state(setup: steps.GanSetup, key: jax.Array, image_size: int) -> GanState:
  """A fresh GanState; G and D (and cyclegan's two pairs) get independent init keys."""
  x = jnp.zeros((1, 32, 32, 3), jnp.float32)   # param shapes do not depend on the image size
  k_g, k_f, k_da, k_db = jax.random.split(key, 4)
  d_init = lambda k: setup.discriminator.init(k, x)
  pool = pool_count = None
  if setup.name == "adain_gan":
    g_params = setup.generator.init(k_g, x, x)["params"]["decoder"]
    d_params = d_init(k_da)
  else:
    g_params = {"G": setup.generator.init(k_g, x), "F": setup.generator.init(k_f, x)}
    d_params = {"A": d_init(k_da), "B": d_init(k_db)}
    if setup.loss.pool_size > 0:
      pool = {dom: jnp.zeros((setup.loss.pool_size, image_size, image_size, 3), jnp.float32)
              for dom in ("A", "B")}
      pool_count = jnp.zeros((), jnp.int32)
  return GanState(
      step=jnp.zeros((), jnp.int32), g_params=g_params, d_params=d_params,
      g_opt_state=setup.g_tx.init(g_params), d_opt_state=setup.d_tx.init(d_params),
      # A copy: the step donates the state, and one buffer cannot be donated twice.
      ema_g_params=jax.tree.map(jnp.copy, g_params) if setup.ema_decay > 0 else None,
      pool=pool, pool_count=pool_count)


def read_run_config(workdir: str) -> ml_collections.ConfigDict:
  """The resolved config a training run wrote to workdir/config.json."""
  path = os.path.join(workdir, "config.json")
  if not os.path.exists(path):
    raise UserError(f"{workdir} has no config.json: is it a training workdir?")
  with open(path) as f:
    config = ml_collections.ConfigDict(json.load(f))
  for k in ("style_layers", "style_layer_weights"):   # JSON turns tuples into lists
    config.loss[k] = tuple(config.loss[k])
  return config


def restore_run(workdir: str | os.PathLike, step: int | None = None
                ) -> tuple[ml_collections.ConfigDict, steps.GanSetup, GanState, int]:
  """(config, setup, state, step) of workdir's latest (or given) checkpoint, on the host."""
  from ganstyle_jax import checkpointing  # pylint: disable=g-import-not-at-top
  workdir = os.fspath(workdir)
  config = read_run_config(workdir)
  setup = build_setup(config)
  target = init_state(setup, jax.random.key(0), config.data.image_size)
  ckpt = checkpointing.Checkpointer(os.path.join(workdir, "checkpoints"), async_save=False)
  try:
    state, _, step = ckpt.restore(target, step, expected_model=setup.name)
  finally:
    ckpt.close()
  return config, setup, state, step
