"""cyclegan: unpaired translation between domains A and B (Zhu et al. 2017).

Batch {'A', 'B'}: G maps A->B, F maps B->A (ResNet generators); D_A and D_B (PatchGANs)
judge each domain, fed through the 50-image pool of past fakes. L_G = w_adv (adversarial of
G and F) + w_cycle (cycle consistency) + w_identity (identity mapping) (+ w_tv). The style is
the target domain B; VGG is not used by the step.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from ganstyle_jax import losses, ops, steps
from ganstyle_jax.families import base
from ganstyle_jax.models import generators
from ganstyle_jax.state import GanState

Array = jax.Array
DIRECTIONS = ("AtoB", "BtoA")


def batch_keys(config: ml_collections.ConfigDict) -> dict[str, str]:
  return {"A": config.data.content, "B": config.data.style}


def build_networks(config: ml_collections.ConfigDict, dtype, conv_policy: ops.ConvPolicy):
  gc = config.model.generator
  g = generators.ResNetGenerator(
    ngf=gc.ngf,
    n_blocks=gc.n_blocks,
    residual=gc.residual,
    scan_blocks=gc.scan_blocks,
    dtype=dtype,
    conv_policy=conv_policy,
  )
  return g, base.discriminator(config.model.discriminator, dtype, conv_policy)


def init_params(setup: steps.GanSetup, key: Array, image_size: int) -> dict:
  """G, F, D_A, D_B with independent keys, and the image pools when loss.pool_size > 0."""
  x = steps.INIT_INPUT
  k_g, k_f, k_da, k_db = jax.random.split(key, 4)
  d_init = lambda k: setup.discriminator.init(k, x)
  fields = {
    "g_params": {"G": setup.generator.init(k_g, x), "F": setup.generator.init(k_f, x)},
    "d_params": {"A": d_init(k_da), "B": d_init(k_db)},
  }
  if setup.loss.pool_size > 0:
    fields["pool"] = {
      dom: jnp.zeros((setup.loss.pool_size, image_size, image_size, 3), jnp.float32)
      for dom in ("A", "B")
    }
    fields["pool_count"] = jnp.zeros((), jnp.int32)
  return fields


def generator_objective(
  setup: steps.GanSetup, g_params, d_params, a: Array, b: Array
) -> tuple[Array, tuple[dict[str, Array], steps.Metrics]]:
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
  adv = losses.g_loss(lc.adv_type, d.apply(d_params["B"], fake_b)) + losses.g_loss(
    lc.adv_type, d.apply(d_params["A"], fake_a)
  )
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


def train_step(
  state: GanState,
  batch: dict[str, Array],
  vgg_variables,
  key: Array,
  *,
  setup: steps.GanSetup,
  axis_name: str | None = None,
) -> tuple[GanState, steps.Metrics]:
  """One step on batch {'A', 'B'}; vgg_variables are unused (kept for one signature)."""
  del vgg_variables
  dt = setup.compute_dtype
  a, b = batch["A"].astype(dt), batch["B"].astype(dt)
  grad_fn = jax.value_and_grad(generator_objective, argnums=1, has_aux=True)
  (_, (fakes, g_metrics)), g_grads = grad_fn(setup, state.g_params, state.d_params, a, b)
  pool, pool_count, pooled = steps.pooled_fakes(
    state, fakes, jax.random.fold_in(key, state.step), axis_name
  )

  def d_objective(d_params):
    loss_a, m_a = steps.d_objective(setup, d_params["A"], a, pooled["A"])
    loss_b, m_b = steps.d_objective(setup, d_params["B"], b, pooled["B"])
    m = {f"{k}_A": v for k, v in m_a.items()} | {f"{k}_B": v for k, v in m_b.items()}
    return loss_a + loss_b, m

  (d_loss, d_metrics), d_grads = jax.value_and_grad(d_objective, has_aux=True)(state.d_params)
  return steps.update(
    setup,
    state,
    axis_name,
    g_metrics,
    g_grads,
    (d_loss, d_metrics, d_grads),
    pool=pool,
    pool_count=pool_count,
  )


def eval_step(
  setup: steps.GanSetup, state: GanState, vgg_variables, batch: dict[str, Array]
) -> tuple[dict[str, Array], steps.Metrics]:
  """Held-out generator losses and outputs {'fake_B', 'fake_A'} for one batch (jit it)."""
  del vgg_variables
  _, (fakes, metrics) = generator_objective(
    setup, state.g_params, state.d_params, batch["A"], batch["B"]
  )
  return {"fake_B": fakes["B"], "fake_A": fakes["A"]}, metrics


def generate(
  setup: steps.GanSetup, g_params, vgg_variables, batch: dict[str, Array]
) -> dict[str, Array]:
  del vgg_variables
  g = setup.generator
  return {
    "fake_B": g.apply(g_params["G"], batch["A"]),
    "fake_A": g.apply(g_params["F"], batch["B"]),
  }


def translate(setup: steps.GanSetup, g_params, x: Array, direction: str) -> Array:
  """G(x) for 'AtoB', F(x) for 'BtoA'."""
  return setup.generator.apply(g_params["G" if direction == "AtoB" else "F"], x)


def size_multiple(setup: steps.GanSetup) -> int:
  del setup
  return 4  # two stride-2 downsamplings


def grid_columns(batch, outputs) -> list[np.ndarray]:
  return [batch["A"], outputs["fake_B"], batch["B"], outputs["fake_A"]]


def eval_views(batch, outputs) -> dict:
  return base.translation_views(batch["A"], batch["B"], outputs["fake_B"], batch.get("target"))


FAMILY = base.Family(
  name="cyclegan",
  content_key="A",
  needs_vgg=False,
  style_conditioned=False,
  batch_keys=batch_keys,
  build_networks=build_networks,
  init_params=init_params,
  train_step=train_step,
  eval_step=eval_step,
  generate=generate,
  translate=translate,
  directions=DIRECTIONS,
  size_multiple=size_multiple,
  grid_columns=grid_columns,
  eval_views=eval_views,
)
