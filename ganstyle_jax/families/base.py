"""What a model family provides: the one object the rest of the code asks family questions.

A family is one module in this package that builds a `Family` from its own functions; the
registry in `families/__init__.py` maps `config.model.name` to it. Train, evaluate, stylize
and benchmark code only call these fields (and read its capabilities), so adding a family is
one new module plus one registry line.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable

import jax
import ml_collections
import numpy as np

from ganstyle_jax import ops
from ganstyle_jax.models import discriminators

Array = jax.Array
Batch = dict[str, Any]


@dataclasses.dataclass(frozen=True)
class Family:
  """A model family's capabilities and functions.

  Attributes:
    name: config.model.name of the family.
    needs_vgg: its train and eval steps use the frozen VGG19 features (passed as an argument).
    style_conditioned: G(C, S): the generator takes a style image and exposes `encode`,
      `decode` and `encoder_layer` (stylize's AdaIN controls apply). Otherwise G(x) translates
      in one of `directions`.
    directions: the translations a G(x) family offers (e.g. ('AtoB', 'BtoA')).
    paired: its two image keys are aligned pairs (the same scene, the same crop and flip), as
      pix2pix's (input, target); otherwise each key is an independent stream.
    content_key: the batch key of the image G transforms (the one the temporal-consistency
      metric warps).
    temporal_loss: its train step implements loss.w_temporal.
    batch_keys: config -> {batch key: data source string}, the order the step reads them.
    build_networks: (config, dtype, conv_policy) -> (generator, discriminator) flax modules.
    init_params: (setup, key, image_size) -> dict of GanState fields (g_params, d_params and
      any family-specific fields such as an image pool).
    train_step: (state, batch, vgg_variables, key, *, setup, axis_name) -> (state, metrics).
    eval_step: (setup, state, vgg_variables, batch) -> (outputs, metrics) on held-out data.
    generate: (setup, g_params, vgg_variables, batch) -> outputs (no gradients).
    translate: (setup, g_params, x, direction) -> G(x); G(x) families only.
    size_multiple: setup -> the multiple an input's height and width must have.
    grid_columns: (batch, outputs) -> the sample grid's columns, left to right.
    eval_views: (batch, outputs) -> {'content', 'style', 'real', 'generated', 'target'} for
      the metrics (target: the known answer, or None where the data has none).
  """

  name: str
  needs_vgg: bool
  style_conditioned: bool
  batch_keys: Callable[[ml_collections.ConfigDict], dict[str, str]]
  build_networks: Callable[..., tuple[Any, Any]]
  init_params: Callable[..., dict[str, Any]]
  train_step: Callable[..., tuple[Any, dict[str, Array]]]
  eval_step: Callable[..., tuple[dict[str, Array], dict[str, Array]]]
  generate: Callable[..., dict[str, Array]]
  size_multiple: Callable[[Any], int]
  grid_columns: Callable[[Batch, Batch], list[np.ndarray]]
  eval_views: Callable[[Batch, Batch], Batch]
  translate: Callable[..., Array] | None = None
  directions: tuple[str, ...] = ()
  paired: bool = False
  content_key: str = "content"
  temporal_loss: bool = False


def discriminator(dc: ml_collections.ConfigDict, dtype, conv_policy: ops.ConvPolicy):
  """The PatchGAN (or multi-scale PatchGAN) that config.model.discriminator describes."""
  kw = dict(
    ndf=dc.ndf,
    n_layers=dc.n_layers,
    norm=dc.norm,
    spectral_norm=dc.spectral_norm,
    dtype=dtype,
    conv_policy=conv_policy,
  )
  if dc.num_scales > 1:
    return discriminators.MultiScalePatchGAN(num_scales=dc.num_scales, **kw)
  return discriminators.PatchGAN(**kw)


def translation_views(content, style_domain, generated, target) -> dict:
  """The eval views of a G(x) family; target: the known answer where the data has one.

  The style reference is another image of the style domain (the next one in the batch), not
  the answer to the same input: the colour-transfer baseline must not see the answer.
  """
  return {
    "content": content,
    "style": np.roll(style_domain, 1, axis=0),
    "real": style_domain,
    "generated": generated,
    "target": target,
  }
