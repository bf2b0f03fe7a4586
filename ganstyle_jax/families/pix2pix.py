"""pix2pix: paired translation input -> target (Isola et al. 2017).

Batch {'input', 'target'}: aligned pairs (Family.paired: the same scene, crop and flip).
G is a U-Net with skip connections; D a PatchGAN on the (input, image) pair, channels
concatenated, so it judges whether the image fits its input. L_G = w_adv L_adv(D(x, G(x)))
+ w_supervised |G(x) - y|_1 (+ w_tv); the papers' weights are 1 and 100 with the BCE
(`nonsat`) loss. Dropout in G is its only noise, keyed per step (and device).
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


def batch_keys(config: ml_collections.ConfigDict) -> dict[str, str]:
  return {"input": config.data.content, "target": config.data.style}


def build_networks(config: ml_collections.ConfigDict, dtype, conv_policy: ops.ConvPolicy):
  gc = config.model.generator
  g = generators.UNetGenerator(
    ngf=gc.ngf,
    num_downs=gc.num_downs,
    use_dropout=gc.use_dropout,
    dtype=dtype,
    conv_policy=conv_policy,
  )
  return g, base.discriminator(config.model.discriminator, dtype, conv_policy)


def init_params(setup: steps.GanSetup, key: Array, image_size: int) -> dict:
  del image_size
  k_g, _, k_d, _ = jax.random.split(key, 4)
  # The U-Net halves its input num_downs times: init at the smallest size it accepts.
  size = 2**setup.generator.num_downs
  x = jnp.zeros((1, size, size, 3), jnp.float32)
  return {
    "g_params": setup.generator.init(k_g, x),
    "d_params": setup.discriminator.init(k_d, jnp.zeros((1, 32, 32, 6), jnp.float32)),
  }


def _pair(x: Array, y: Array) -> Array:
  return jnp.concatenate([x, y.astype(x.dtype)], axis=-1)


def generator_objective(
  setup: steps.GanSetup, g_params, d_params, x: Array, y: Array, dropout_key: Array | None
) -> tuple[Array, tuple[Array, steps.Metrics]]:
  """w_adv L_adv + w_supervised L1 (+ w_tv TV) and G's output; dropout_key None: no dropout."""
  lc = setup.loss
  rngs = {"dropout": dropout_key} if dropout_key is not None else None
  fake = setup.generator.apply(g_params, x, deterministic=dropout_key is None, rngs=rngs)
  adv = losses.g_loss(lc.adv_type, setup.discriminator.apply(d_params, _pair(x, fake)))
  l1 = losses.l1(fake, y)
  total = lc.w_adv * adv + lc.w_supervised * l1
  metrics = {"adv": adv, "l1": l1}
  if lc.w_tv > 0:
    tv = losses.total_variation(fake)
    total = total + lc.w_tv * tv
    metrics["tv"] = tv
  metrics["loss"] = total
  return total, (fake, metrics)


def train_step(
  state: GanState,
  batch: dict[str, Array],
  vgg_variables,
  key: Array,
  *,
  setup: steps.GanSetup,
  axis_name: str | None = None,
) -> tuple[GanState, steps.Metrics]:
  """One step on batch {'input', 'target'}; vgg_variables are unused (one signature)."""
  del vgg_variables
  dt = setup.compute_dtype
  x, y = batch["input"].astype(dt), batch["target"].astype(dt)
  key = steps.step_key(key, state.step, axis_name)
  grad_fn = jax.value_and_grad(generator_objective, argnums=1, has_aux=True)
  (_, (fake, g_metrics)), g_grads = grad_fn(setup, state.g_params, state.d_params, x, y, key)
  (d_loss, d_metrics), d_grads = jax.value_and_grad(steps.d_objective, argnums=1, has_aux=True)(
    setup, state.d_params, _pair(x, y), _pair(x, fake)
  )
  return steps.update(setup, state, axis_name, g_metrics, g_grads, (d_loss, d_metrics, d_grads))


def eval_step(
  setup: steps.GanSetup, state: GanState, vgg_variables, batch: dict[str, Array]
) -> tuple[dict[str, Array], steps.Metrics]:
  """Held-out losses and outputs {'output'} (no dropout) for one batch (jit it)."""
  del vgg_variables
  _, (fake, metrics) = generator_objective(
    setup, state.g_params, state.d_params, batch["input"], batch["target"], None
  )
  return {"output": fake}, metrics


def generate(
  setup: steps.GanSetup, g_params, vgg_variables, batch: dict[str, Array]
) -> dict[str, Array]:
  del vgg_variables
  return {"output": setup.generator.apply(g_params, batch["input"])}


def translate(setup: steps.GanSetup, g_params, x: Array, direction: str) -> Array:
  del direction  # one direction: input -> target
  return setup.generator.apply(g_params, x)


def size_multiple(setup: steps.GanSetup) -> int:
  return 2**setup.generator.num_downs


def grid_columns(batch, outputs) -> list[np.ndarray]:
  return [batch["input"], outputs["output"], batch["target"]]


def eval_views(batch, outputs) -> dict:
  return base.translation_views(
    batch["input"], batch["target"], outputs["output"], batch.get("target")
  )


FAMILY = base.Family(
  name="pix2pix",
  content_key="input",
  needs_vgg=False,
  style_conditioned=False,
  paired=True,
  batch_keys=batch_keys,
  build_networks=build_networks,
  init_params=init_params,
  train_step=train_step,
  eval_step=eval_step,
  generate=generate,
  translate=translate,
  directions=("AtoB",),
  size_multiple=size_multiple,
  grid_columns=grid_columns,
  eval_views=eval_views,
)
