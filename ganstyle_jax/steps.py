"""Shared pure pieces of the train and eval steps; the step bodies live in families/.

A step (families/*.py) takes (state, batch, vgg_variables, key) and returns (new state,
metrics). Written once with an `axis_name` argument: under pmap (axis_name='batch') each device sees its slice of the
batch and gradients and metrics are averaged with `lax.pmean`; under jit over a mesh
(axis_name=None) the body sees the global batch and XLA partitions it. Both compute the same
numbers.

Order within one step (every family), as in the CycleGAN reference: G's outputs are computed
once; G's gradient is taken against D's current params, D's gradient against those same
outputs (detached; through the image pool for cyclegan); then both are updated. D sees real and
fake images in one call (concatenated on the batch axis; instance norm is per image, so this
equals two calls).
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

from ganstyle_jax import losses, ops
from ganstyle_jax.models import vgg as vgg_lib
from ganstyle_jax.state import GanState

if TYPE_CHECKING:
  from ganstyle_jax.families.base import Family

Array = jax.Array
Metrics = dict[str, Array]


@dataclasses.dataclass(frozen=True)
class LossConfig:
  """Loss hyper-parameters (static inside the compiled step)."""

  adv_type: str = "lsgan"
  w_adv: float = 1.0
  adv_condition: str = "none"  # adain_gan: 'style' = D judges (image, style image) pairs
  w_content: float = 1.0
  w_style: float = 10.0
  w_cycle: float = 10.0
  w_identity: float = 5.0
  w_tv: float = 0.0
  w_supervised: float = 0.0
  w_temporal: float = 0.0
  temporal_max_shift: float = 4.0
  temporal_noise: float = 0.02
  r1_gamma: float = 0.0
  style_type: str = "mean_std"
  content_type: str = "perceptual"
  style_layers: tuple[str, ...] = vgg_lib.STYLE_LAYERS
  style_layer_weights: tuple[float, ...] = (1.0, 1.0, 1.0, 1.0)
  pool_size: int = 50


@dataclasses.dataclass(frozen=True)
class GanSetup:
  """The static pieces a step is built from: networks, optimizers, loss settings."""

  family: Family  # what config.model.name names (families/)
  generator: nn.Module
  discriminator: nn.Module
  g_tx: optax.GradientTransformation
  d_tx: optax.GradientTransformation
  loss: LossConfig
  ema_decay: float = 0.0
  compute_dtype: Any = jnp.float32
  conv_policy: ops.ConvPolicy = ops.DEFAULT  # CPU convolution paths of every network

  @property
  def name(self) -> str:
    return self.family.name


# Init inputs: param shapes do not depend on the image size.
INIT_INPUT = np.zeros((1, 32, 32, 3), np.float32)  # NumPy: importing starts no backend


def _split(x, n: int):
  """Splits D's output(s) on the batch axis into (first n, rest)."""
  leaves = jax.tree.map(lambda a: (a[:n], a[n:]), x, is_leaf=lambda a: isinstance(a, jax.Array))
  if isinstance(x, (list, tuple)):
    return [l[0] for l in leaves], [l[1] for l in leaves]
  return leaves


def _mean_logit(x) -> Array:
  leaves = jax.tree.leaves(x)
  return sum(jnp.mean(l) for l in leaves) / len(leaves)


def pmean(tree, axis_name):
  return jax.lax.pmean(tree, axis_name) if axis_name else tree


def step_key(key: Array, step, axis_name: str | None) -> Array:
  """The train step's key for this step and device: fresh randomness every step, and its own
  on each device of a parallel step."""
  key = jax.random.fold_in(key, step)
  return jax.random.fold_in(key, jax.lax.axis_index(axis_name)) if axis_name else key


def d_objective(setup: GanSetup, d_params, real: Array, fake: Array) -> tuple[Array, Metrics]:
  """D's loss on real vs (detached) fake images, with the optional R1 penalty."""
  d = setup.discriminator
  fake = jax.lax.stop_gradient(fake)
  logits = d.apply(d_params, jnp.concatenate([real, fake.astype(real.dtype)]))
  real_logits, fake_logits = _split(logits, real.shape[0])
  loss = losses.d_loss(setup.loss.adv_type, real_logits, fake_logits)
  metrics = {"real_score": _mean_logit(real_logits), "fake_score": _mean_logit(fake_logits)}
  if setup.loss.r1_gamma > 0:
    r1 = losses.r1_penalty(lambda x: d.apply(d_params, x), real)
    loss = loss + setup.loss.r1_gamma * r1
    metrics["r1"] = r1
  return loss, metrics


def apply_updates(tx: optax.GradientTransformation, grads, opt_state, params):
  updates, opt_state = tx.update(grads, opt_state, params)
  return optax.apply_updates(params, updates), opt_state


def finish(
  setup: GanSetup, state: GanState, g_params, g_opt_state, d_params, d_opt_state, **extra
) -> GanState:
  """The state after a step: new params and optimizer states, EMA of G, step + 1."""
  ema = state.ema_g_params
  if setup.ema_decay > 0:
    ema = optax.incremental_update(g_params, ema, 1.0 - setup.ema_decay)
  return state.replace(
    step=state.step + 1,
    g_params=g_params,
    g_opt_state=g_opt_state,
    d_params=d_params,
    d_opt_state=d_opt_state,
    ema_g_params=ema,
    **extra,
  )


def update(
  setup: GanSetup,
  state: GanState,
  axis_name: str | None,
  g_metrics: Metrics,
  g_grads,
  d: tuple[Array, Metrics, Any] | None = None,
  **extra,
) -> tuple[GanState, Metrics]:
  """The common end of every family's step: averages the gradients over devices, logs their
  norms, applies G's update and, when `d` = (D's loss, D's metrics, D's gradients) is given,
  D's, then the EMA and step + 1 (`extra`: other GanState fields, e.g. the image pool).

  Returns:
    (new state, metrics averaged over devices: g/*, g/grad_norm, d/loss, d/grad_norm, d/*).
  """
  metrics = {f"g/{k}": v for k, v in g_metrics.items()}
  g_grads = pmean(g_grads, axis_name)
  metrics["g/grad_norm"] = optax.global_norm(g_grads)
  g_params, g_opt_state = apply_updates(setup.g_tx, g_grads, state.g_opt_state, state.g_params)
  d_params, d_opt_state = state.d_params, state.d_opt_state
  if d is not None:
    d_loss, d_metrics, d_grads = d
    d_grads = pmean(d_grads, axis_name)
    metrics.update(
      {
        "d/loss": d_loss,
        "d/grad_norm": optax.global_norm(d_grads),
        **{f"d/{k}": v for k, v in d_metrics.items()},
      }
    )
    d_params, d_opt_state = apply_updates(setup.d_tx, d_grads, state.d_opt_state, state.d_params)
  state = finish(setup, state, g_params, g_opt_state, d_params, d_opt_state, **extra)
  return state, pmean(metrics, axis_name)


# ----------------------------------------------------------------------------- image pool


def pool_query(pool: Array, count: Array, fakes: Array, key: Array) -> tuple[Array, Array, Array]:
  """CycleGAN's image pool (Shrivastava et al. 2017), image by image in batch order.

  While the pool is not full, each fake is stored and returned. Afterwards, with probability
  0.5 a random stored image is returned and replaced by the fake, otherwise the fake itself.

  Args:
    pool: [P, H, W, 3] stored fakes; count: images stored so far; fakes: [B, H, W, 3].
  Returns:
    (new pool, new count, images for D [B, H, W, 3]).
  """
  size = pool.shape[0]

  def one(carry, inp):
    pool, count = carry
    img, k = inp
    k_swap, k_idx = jax.random.split(k)
    full = count >= size
    swap = full & (jax.random.uniform(k_swap) > 0.5)
    idx = jnp.where(full, jax.random.randint(k_idx, (), 0, size), jnp.minimum(count, size - 1))
    old = pool[idx]
    store = swap | ~full
    pool = pool.at[idx].set(jnp.where(store, img, old))
    return (pool, jnp.minimum(count + 1, size)), jnp.where(swap, old, img)

  keys = jax.random.split(key, fakes.shape[0])
  (pool, count), out = jax.lax.scan(one, (pool, count), (fakes.astype(pool.dtype), keys))
  return pool, count, out


def pooled_fakes(state: GanState, fakes: dict[str, Array], key: Array, axis_name: str | None):
  """Passes this step's fakes through the pools; identical on every device.

  Under pmap each device gathers the global batch of fakes, runs the same pool updates with
  the same key, and keeps its own slice, so the replicated pool state stays identical and the
  result equals the single-device computation on the global batch.
  """
  if state.pool is None:
    return state.pool, state.pool_count, fakes
  new_pool, out = {}, {}
  count = state.pool_count
  for i, dom in enumerate(sorted(fakes)):
    local = jax.lax.stop_gradient(fakes[dom])
    glob = jax.lax.all_gather(local, axis_name, tiled=True) if axis_name else local
    new_pool[dom], new_count, imgs = pool_query(
      state.pool[dom], count, glob, jax.random.fold_in(key, i)
    )
    if axis_name:
      start = jax.lax.axis_index(axis_name) * local.shape[0]
      imgs = jax.lax.dynamic_slice_in_dim(imgs, start, local.shape[0])
    out[dom] = imgs.astype(local.dtype)
  return new_pool, new_count, out
