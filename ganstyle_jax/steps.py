"""Pure train and eval step bodies for adain_gan and cyclegan; no host code.

A step takes (state, batch, vgg_variables, key) and returns (new state, metrics). Written once
with an `axis_name` argument: under pmap (axis_name='batch') each device sees its slice of the
batch and gradients and metrics are averaged with `lax.pmean`; under jit over a mesh
(axis_name=None) the body sees the global batch and XLA partitions it. Both compute the same
numbers.

Order within one step (both families), as in the CycleGAN reference: G's outputs are computed
once; G's gradient is taken against D's current params, D's gradient against those same
outputs (detached; through the image pool for cyclegan); then both are updated. D sees real and
fake images in one call (concatenated on the batch axis; instance norm is per image, so this
equals two calls).
"""
from __future__ import annotations

import dataclasses
from typing import Any, Callable

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

from ganstyle_jax import losses
from ganstyle_jax.models import generators
from ganstyle_jax.models import layers as L
from ganstyle_jax.models import vgg as vgg_lib
from ganstyle_jax.state import GanState

Array = jax.Array
Metrics = dict[str, Array]


@dataclasses.dataclass(frozen=True)
class LossConfig:
  """Loss hyper-parameters (static inside the compiled step)."""
  adv_type: str = "lsgan"
  w_adv: float = 1.0
  w_content: float = 1.0
  w_style: float = 10.0
  w_cycle: float = 10.0
  w_identity: float = 5.0
  w_tv: float = 0.0
  r1_gamma: float = 0.0
  style_type: str = "mean_std"
  content_type: str = "perceptual"
  style_layers: tuple[str, ...] = vgg_lib.STYLE_LAYERS
  style_layer_weights: tuple[float, ...] = (1.0, 1.0, 1.0, 1.0)
  pool_size: int = 50


@dataclasses.dataclass(frozen=True)
class GanSetup:
  """The static pieces a step is built from: networks, optimizers, loss settings."""
  name: str                                  # 'adain_gan' | 'cyclegan'
  generator: nn.Module
  discriminator: nn.Module
  g_tx: optax.GradientTransformation
  d_tx: optax.GradientTransformation
  loss: LossConfig
  ema_decay: float = 0.0
  compute_dtype: Any = jnp.float32


def _split(x, n: int):
  """Splits D's output(s) on the batch axis into (first n, rest)."""
  leaves = jax.tree.map(lambda a: (a[:n], a[n:]), x, is_leaf=lambda a: isinstance(a, jax.Array))
  if isinstance(x, (list, tuple)):
    return [l[0] for l in leaves], [l[1] for l in leaves]
  return leaves


def _mean_logit(x) -> Array:
  leaves = jax.tree.leaves(x)
  return sum(jnp.mean(l) for l in leaves) / len(leaves)


def _pmean(tree, axis_name):
  return jax.lax.pmean(tree, axis_name) if axis_name else tree


def _d_objective(setup: GanSetup, d_params, real: Array, fake: Array) -> tuple[Array, Metrics]:
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


def _apply_updates(tx: optax.GradientTransformation, grads, opt_state, params):
  updates, opt_state = tx.update(grads, opt_state, params)
  return optax.apply_updates(params, updates), opt_state


# ----------------------------------------------------------------------------- adain_gan


def adain_generator_objective(setup: GanSetup, g_params, d_params, vgg_variables, content: Array,
                              style_feats: dict[str, Array]) -> tuple[Array, tuple[Array, Metrics]]:
  """L_G = w_content L_content + w_style L_style + w_adv L_adv + w_tv L_tv, and G's output."""
  g, lc = setup.generator, setup.loss
  enc = g.encoder_layer
  variables = generators.assemble_variables(vgg_variables, g_params)
  stats = L.channel_stats(style_feats[enc])
  out, t = g.apply(variables, content, style_stats=stats, method=g.transfer)
  out_feats = vgg_lib.VGG19(dtype=setup.compute_dtype).apply(
      vgg_variables, out, tuple(lc.style_layers) + (enc,))
  if lc.content_type == "perceptual":
    content_loss = losses.mse(out_feats[enc], jax.lax.stop_gradient(t))
  else:
    content_loss = losses.pixel_content_loss(out, content)
  style_loss = losses.style_loss(lc.style_type, out_feats, style_feats, lc.style_layers,
                                 lc.style_layer_weights)
  total = lc.w_content * content_loss + lc.w_style * style_loss
  metrics = {"content": content_loss, "style": style_loss}
  if lc.w_adv > 0:
    adv = losses.g_loss(lc.adv_type, setup.discriminator.apply(d_params, out))
    total = total + lc.w_adv * adv
    metrics["adv"] = adv
  if lc.w_tv > 0:
    tv = losses.total_variation(out)
    total = total + lc.w_tv * tv
    metrics["tv"] = tv
  metrics["loss"] = total
  return total, (out, metrics)


def style_features(setup: GanSetup, vgg_variables, style: Array) -> dict[str, Array]:
  """VGG features of the style images at the style layers and the encoder layer."""
  layers = tuple(setup.loss.style_layers) + (setup.generator.encoder_layer,)
  return vgg_lib.VGG19(dtype=setup.compute_dtype).apply(vgg_variables, style, layers)


def adain_train_step(state: GanState, batch: dict[str, Array], vgg_variables, key: Array, *,
                     setup: GanSetup, axis_name: str | None = None) -> tuple[GanState, Metrics]:
  """One adain_gan step on batch {'content', 'style', 'real'} (NHWC in [-1, 1])."""
  del key  # no randomness in this step
  dt = setup.compute_dtype
  content, style, real = (batch[k].astype(dt) for k in ("content", "style", "real"))
  style_feats = style_features(setup, vgg_variables, style)
  grad_fn = jax.value_and_grad(adain_generator_objective, argnums=1, has_aux=True)
  (_, (out, g_metrics)), g_grads = grad_fn(setup, state.g_params, state.d_params, vgg_variables,
                                           content, style_feats)
  metrics = {f"g/{k}": v for k, v in g_metrics.items()}
  g_grads = _pmean(g_grads, axis_name)
  metrics["g/grad_norm"] = optax.global_norm(g_grads)
  g_params, g_opt_state = _apply_updates(setup.g_tx, g_grads, state.g_opt_state, state.g_params)
  d_params, d_opt_state = state.d_params, state.d_opt_state
  if setup.loss.w_adv > 0:
    (d_loss, d_metrics), d_grads = jax.value_and_grad(_d_objective, argnums=1, has_aux=True)(
        setup, state.d_params, real, out)
    d_grads = _pmean(d_grads, axis_name)
    metrics.update({"d/loss": d_loss, "d/grad_norm": optax.global_norm(d_grads),
                    **{f"d/{k}": v for k, v in d_metrics.items()}})
    d_params, d_opt_state = _apply_updates(setup.d_tx, d_grads, state.d_opt_state, state.d_params)
  state = _finish(setup, state, g_params, g_opt_state, d_params, d_opt_state)
  return state, _pmean(metrics, axis_name)


def _finish(setup: GanSetup, state: GanState, g_params, g_opt_state, d_params, d_opt_state,
            **extra) -> GanState:
  ema = state.ema_g_params
  if setup.ema_decay > 0:
    ema = optax.incremental_update(g_params, ema, 1.0 - setup.ema_decay)
  return state.replace(step=state.step + 1, g_params=g_params, g_opt_state=g_opt_state,
                       d_params=d_params, d_opt_state=d_opt_state, ema_g_params=ema, **extra)


# ----------------------------------------------------------------------------- cyclegan


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


def _pooled(state: GanState, fakes: dict[str, Array], key: Array, axis_name: str | None):
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
    new_pool[dom], new_count, imgs = pool_query(state.pool[dom], count,
                                                glob, jax.random.fold_in(key, i))
    if axis_name:
      start = jax.lax.axis_index(axis_name) * local.shape[0]
      imgs = jax.lax.dynamic_slice_in_dim(imgs, start, local.shape[0])
    out[dom] = imgs.astype(local.dtype)
  return new_pool, new_count, out


def cyclegan_generator_objective(setup: GanSetup, g_params, d_params, a: Array, b: Array
                                 ) -> tuple[Array, tuple[dict[str, Array], Metrics]]:
  """LSGAN (or other) adversarial + w_cycle * cycle + w_identity * identity, for G and F.

  G maps A->B, F maps B->A; D_B judges domain B, D_A domain A. Returns the fakes
  {'A': F(b), 'B': G(a)} for D's update.
  """
  g, d, lc = setup.generator, setup.discriminator, setup.loss
  n = a.shape[0]
  use_idt = lc.w_identity > 0
  # One call per generator on [x, y]: the translation and (optionally) the identity mapping.
  g_out = g.apply(g_params["G"], jnp.concatenate([a, b]) if use_idt else a)
  f_out = g.apply(g_params["F"], jnp.concatenate([b, a]) if use_idt else b)
  fake_b, fake_a = g_out[:n], f_out[:n]
  rec_a = g.apply(g_params["F"], fake_b.astype(a.dtype))
  rec_b = g.apply(g_params["G"], fake_a.astype(a.dtype))
  adv = (losses.g_loss(lc.adv_type, d.apply(d_params["B"], fake_b))
         + losses.g_loss(lc.adv_type, d.apply(d_params["A"], fake_a)))
  cycle = losses.cycle_loss(rec_a, a) + losses.cycle_loss(rec_b, b)
  total = lc.w_adv * adv + lc.w_cycle * cycle
  metrics = {"adv": adv, "cycle": cycle}
  if use_idt:
    idt = losses.identity_loss(g_out[n:], b) + losses.identity_loss(f_out[n:], a)
    total = total + lc.w_identity * idt
    metrics["identity"] = idt
  if lc.w_tv > 0:
    tv = losses.total_variation(fake_a) + losses.total_variation(fake_b)
    total = total + lc.w_tv * tv
    metrics["tv"] = tv
  metrics["loss"] = total
  return total, ({"A": fake_a, "B": fake_b}, metrics)


def cyclegan_train_step(state: GanState, batch: dict[str, Array], vgg_variables, key: Array, *,
                        setup: GanSetup, axis_name: str | None = None
                        ) -> tuple[GanState, Metrics]:
  """One cyclegan step on batch {'A', 'B'}; vgg_variables are unused (kept for one signature)."""
  del vgg_variables
  dt = setup.compute_dtype
  a, b = batch["A"].astype(dt), batch["B"].astype(dt)
  grad_fn = jax.value_and_grad(cyclegan_generator_objective, argnums=1, has_aux=True)
  (_, (fakes, g_metrics)), g_grads = grad_fn(setup, state.g_params, state.d_params, a, b)
  metrics = {f"g/{k}": v for k, v in g_metrics.items()}
  g_grads = _pmean(g_grads, axis_name)
  metrics["g/grad_norm"] = optax.global_norm(g_grads)
  pool, pool_count, pooled = _pooled(state, fakes, jax.random.fold_in(key, state.step), axis_name)

  def d_objective(d_params):
    loss_a, m_a = _d_objective(setup, d_params["A"], a, pooled["A"])
    loss_b, m_b = _d_objective(setup, d_params["B"], b, pooled["B"])
    m = {f"{k}_A": v for k, v in m_a.items()} | {f"{k}_B": v for k, v in m_b.items()}
    return loss_a + loss_b, m

  (d_loss, d_metrics), d_grads = jax.value_and_grad(d_objective, has_aux=True)(state.d_params)
  d_grads = _pmean(d_grads, axis_name)
  metrics.update({"d/loss": d_loss, "d/grad_norm": optax.global_norm(d_grads),
                  **{f"d/{k}": v for k, v in d_metrics.items()}})
  g_params, g_opt_state = _apply_updates(setup.g_tx, g_grads, state.g_opt_state, state.g_params)
  d_params, d_opt_state = _apply_updates(setup.d_tx, d_grads, state.d_opt_state, state.d_params)
  state = _finish(setup, state, g_params, g_opt_state, d_params, d_opt_state, pool=pool,
                  pool_count=pool_count)
  return state, _pmean(metrics, axis_name)


def train_step_fn(setup: GanSetup) -> Callable:
  """The step body for setup.name (to be bound with setup and wrapped by parallel.py)."""
  return {"adain_gan": adain_train_step, "cyclegan": cyclegan_train_step}[setup.name]


# ----------------------------------------------------------------------------- inference


def generate(setup: GanSetup, g_params, vgg_variables, batch: dict[str, Array]) -> dict[str, Array]:
  """G's outputs for a batch (no gradients): adain_gan {'output'}; cyclegan {'fake_B', 'fake_A'}."""
  g = setup.generator
  if setup.name == "adain_gan":
    variables = generators.assemble_variables(vgg_variables, g_params)
    return {"output": g.apply(variables, batch["content"], batch["style"])}
  return {"fake_B": g.apply(g_params["G"], batch["A"]), "fake_A": g.apply(g_params["F"], batch["B"])}


def eval_step(setup: GanSetup, state: GanState, vgg_variables, batch: dict[str, Array]
              ) -> tuple[dict[str, Array], Metrics]:
  """Held-out generator losses and outputs for one batch (single device, jit it)."""
  if setup.name == "adain_gan":
    style_feats = style_features(setup, vgg_variables, batch["style"])
    _, (out, metrics) = adain_generator_objective(setup, state.g_params, state.d_params,
                                                  vgg_variables, batch["content"], style_feats)
    return {"output": out}, metrics
  _, (fakes, metrics) = cyclegan_generator_objective(setup, state.g_params, state.d_params,
                                                     batch["A"], batch["B"])
  return {"fake_B": fakes["B"], "fake_A": fakes["A"]}, metrics
