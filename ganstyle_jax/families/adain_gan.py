"""adain_gan, the seed's model: G(C, S) = AdaIN decoder over a frozen VGG19 encoder, plus a D.

Batch {'content', 'style', 'real'} (NHWC in [-1, 1]): G renders each content image in the
style of its style image; D (PatchGAN) judges G's outputs against real style-domain images.
L_G = w_content L_content + w_style L_style + w_adv L_adv (+ w_tv L_tv, + w_temporal L_temporal);
the trainable params are the decoder's (the encoder is the frozen VGG19 passed in as
`vgg_variables`).
"""

from __future__ import annotations

import math

import jax
import ml_collections
import numpy as np

from ganstyle_jax import losses, ops, steps
from ganstyle_jax.families import base
from ganstyle_jax.models import generators
from ganstyle_jax.models import vgg as vgg_lib
from ganstyle_jax.data import SAME_STYLE
from ganstyle_jax.errors import UserError
from ganstyle_jax.ops import warping
from ganstyle_jax.state import GanState

Array = jax.Array


def batch_keys(config: ml_collections.ConfigDict) -> dict[str, str]:
  """content, style and real images; with loss.w_supervised > 0 also the known answer."""
  keys = {
    "content": config.data.content,
    "style": config.data.style,
    "real": config.data.real or config.data.style,
  }
  if config.loss.w_supervised > 0:
    keys["target"] = "synthetic:known_answer"  # painting_k(content), k = the style's style
  if config.loss.adv_condition == "style" and keys["real"] != SAME_STYLE:
    raise UserError(
      "loss.adv_condition='style' judges (real, style image) pairs of one style: set "
      f"data.real={SAME_STYLE} (it is {keys['real']!r}; other sources have no such pairs)"
    )
  return keys


def build_networks(config: ml_collections.ConfigDict, dtype, conv_policy: ops.ConvPolicy):
  g = generators.AdaINGenerator(
    encoder_layer=config.model.generator.encoder_layer,
    transfer_kind=config.model.generator.transfer,
    outlines=config.model.generator.outlines,
    smooth_query=config.model.generator.smooth_query,
    dtype=dtype,
    conv_policy=conv_policy,
  )
  return g, base.discriminator(config.model.discriminator, dtype, conv_policy)


def init_params(setup: steps.GanSetup, key: Array, image_size: int) -> dict:
  del image_size
  k_g, _, k_d, _ = jax.random.split(key, 4)
  x = steps.INIT_INPUT
  return {
    "g_params": generators.trained_params(setup.generator.init(k_g, x, x)["params"]),
    "d_params": setup.discriminator.init(k_d, judged(setup, x, x)),
  }


def judged(setup: steps.GanSetup, images, style):
  """What D judges: the images, or with loss.adv_condition='style' each image with its style
  image on the channels (6 channels), so D can tell whether it is a painting in that style."""
  if setup.loss.adv_condition == "style":
    return jax.numpy.concatenate([images, style.astype(images.dtype)], axis=-1)
  return images


def _loss_vgg(setup: steps.GanSetup) -> vgg_lib.VGG19:
  return vgg_lib.VGG19(dtype=setup.compute_dtype, conv_policy=setup.conv_policy)


def style_features(setup: steps.GanSetup, vgg_variables, style: Array) -> dict[str, Array]:
  """VGG features of the style images at the style layers and the encoder layer."""
  layers = tuple(setup.loss.style_layers) + (setup.generator.encoder_layer,)
  return _loss_vgg(setup).apply(vgg_variables, style, layers)


def generator_objective(
  setup: steps.GanSetup,
  g_params,
  d_params,
  vgg_variables,
  content: Array,
  style: Array,
  style_feats: dict[str, Array],
  target: Array | None = None,
  key: Array | None = None,
) -> tuple[Array, tuple[Array, steps.Metrics]]:
  """L_G = w_content L_content + w_style L_style + w_adv L_adv + w_tv L_tv, and G's output.

  With loss.w_supervised > 0 and a known answer `target`, + w_supervised |G(C, S) - target|_1
  (the supervised ceiling of the synthetic benchmark). With loss.w_temporal > 0 and a `key`,
  + w_temporal L_temporal (`temporal_term`).
  """
  g, lc = setup.generator, setup.loss
  enc = g.encoder_layer
  variables = generators.assemble_variables(vgg_variables, g_params)
  f_s = style_feats[enc]
  out, t = g.apply(variables, content, style, style_features=f_s, method=g.transfer)
  out_feats = _loss_vgg(setup).apply(vgg_variables, out, tuple(lc.style_layers) + (enc,))
  if lc.content_type == "perceptual":
    content_loss = losses.mse(out_feats[enc], jax.lax.stop_gradient(t))
  else:
    content_loss = losses.pixel_content_loss(out, content)
  style_loss = losses.style_loss(
    lc.style_type, out_feats, style_feats, lc.style_layers, lc.style_layer_weights
  )
  total = lc.w_content * content_loss + lc.w_style * style_loss
  metrics = {"content": content_loss, "style": style_loss}
  if lc.w_adv > 0:
    adv = losses.g_loss(lc.adv_type, setup.discriminator.apply(d_params, judged(setup, out, style)))
    total = total + lc.w_adv * adv
    metrics["adv"] = adv
  if lc.w_tv > 0:
    tv = losses.total_variation(out)
    total = total + lc.w_tv * tv
    metrics["tv"] = tv
  if lc.w_supervised > 0 and target is not None:
    supervised = losses.l1(out, target)
    total = total + lc.w_supervised * supervised
    metrics["supervised"] = supervised
  if lc.w_temporal > 0 and key is not None:
    temporal = temporal_term(setup, variables, content, style, f_s, out, key)
    total = total + lc.w_temporal * temporal
    metrics["temporal"] = temporal
  metrics["loss"] = total
  return total, (out, metrics)


def temporal_term(
  setup: steps.GanSetup, variables, content: Array, style: Array, f_s, out: Array, key
):
  """ReReVST's compound regularisation (Wang et al. 2020): a random smooth warp W and Gaussian
  noise applied to the content; mean (G(W(C) + noise, S) - W(G(C, S)))^2 away from a border
  of loss.temporal_max_shift pixels (where W repeats the border). Gradients reach G through
  both outputs.
  """
  g, lc = setup.generator, setup.loss
  n, h, w, _ = content.shape
  k_flow, k_noise = jax.random.split(key)
  flow = warping.random_smooth_flow(k_flow, n, h, w, lc.temporal_max_shift)
  noise = lc.temporal_noise * jax.random.normal(k_noise, content.shape)
  moved = (warping.warp(content, flow) + noise).astype(content.dtype)
  out_moved, _ = g.apply(variables, moved, style, style_features=f_s, method=g.transfer)
  margin = math.ceil(lc.temporal_max_shift)
  return losses.temporal_loss(out_moved, warping.warp(out, flow), margin)


def train_step(
  state: GanState,
  batch: dict[str, Array],
  vgg_variables,
  key: Array,
  *,
  setup: steps.GanSetup,
  axis_name: str | None = None,
) -> tuple[GanState, steps.Metrics]:
  """One step on batch {'content', 'style', 'real'}: G against D's current params, then D.

  `key` (folded with the step and the device index) draws loss.w_temporal's warps and noise;
  unused when w_temporal is 0.
  """
  key = steps.step_key(key, state.step, axis_name)
  dt = setup.compute_dtype
  content, style, real = (batch[k].astype(dt) for k in ("content", "style", "real"))
  style_feats = style_features(setup, vgg_variables, style)
  grad_fn = jax.value_and_grad(generator_objective, argnums=1, has_aux=True)
  target = batch["target"].astype(dt) if "target" in batch else None
  (_, (out, g_metrics)), g_grads = grad_fn(
    setup, state.g_params, state.d_params, vgg_variables, content, style, style_feats, target, key
  )
  d = None
  if setup.loss.w_adv > 0:
    (d_loss, d_metrics), d_grads = jax.value_and_grad(steps.d_objective, argnums=1, has_aux=True)(
      setup, state.d_params, judged(setup, real, style), judged(setup, out, style)
    )
    d = (d_loss, d_metrics, d_grads)
  return steps.update(setup, state, axis_name, g_metrics, g_grads, d)


def eval_step(
  setup: steps.GanSetup, state: GanState, vgg_variables, batch: dict[str, Array]
) -> tuple[dict[str, Array], steps.Metrics]:
  """Held-out generator losses and outputs {'output'} for one batch (jit it); the temporal
  term (loss.w_temporal > 0) with fixed warps, so evaluations compare."""
  style_feats = style_features(setup, vgg_variables, batch["style"])
  _, (out, metrics) = generator_objective(
    setup,
    state.g_params,
    state.d_params,
    vgg_variables,
    batch["content"],
    batch["style"],
    style_feats,
    batch.get("target"),
    jax.random.key(0),
  )
  return {"output": out}, metrics


def generate(
  setup: steps.GanSetup, g_params, vgg_variables, batch: dict[str, Array]
) -> dict[str, Array]:
  variables = generators.assemble_variables(vgg_variables, g_params)
  return {"output": setup.generator.apply(variables, batch["content"], batch["style"])}


def size_multiple(setup: steps.GanSetup) -> int:
  """2 ** (VGG poolings before the encoder layer)."""
  order = vgg_lib.LAYER_ORDER
  return 2 ** sum(n.startswith("pool") for n in order[: order.index(setup.generator.encoder_layer)])


def grid_columns(batch, outputs) -> list[np.ndarray]:
  """content | style | output, and | known answer where the data has one."""
  known = [batch["target"]] if "target" in batch else []
  return [batch["content"], batch["style"], outputs["output"], *known]


def eval_views(batch, outputs) -> dict:
  """The metrics' image sets; target: the known answer where the data has one."""
  return {
    "content": batch["content"],
    "style": batch["style"],
    "real": batch["real"],
    "generated": outputs["output"],
    "target": batch.get("target"),
  }


FAMILY = base.Family(
  name="adain_gan",
  needs_vgg=True,
  style_conditioned=True,
  temporal_loss=True,
  batch_keys=batch_keys,
  build_networks=build_networks,
  init_params=init_params,
  train_step=train_step,
  eval_step=eval_step,
  generate=generate,
  size_multiple=size_multiple,
  grid_columns=grid_columns,
  eval_views=eval_views,
)
