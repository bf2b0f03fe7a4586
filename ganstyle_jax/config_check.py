"""Range checks of config values, run before training writes anything.

A bad value (keep_checkpoints=0 would make orbax delete every checkpoint, log_every_steps<0,
a negative learning rate, ema_decay=1, ...) fails at once with one line naming the key, the
value and the valid range, instead of a ZeroDivisionError deep in a library or a run that
"succeeds" having saved nothing. Keys a config does not have are skipped, so configs of
other families and older runs check too.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Callable

import ml_collections

from ganstyle_jax import build, families, losses, optim
from ganstyle_jax.errors import UserError
from ganstyle_jax.models import generators, vgg


class ConfigValueError(UserError):
  """A config value outside its valid range; the message names key, value and range."""


@dataclasses.dataclass(frozen=True)
class Rule:
  """A predicate on one value and the words that describe the values it accepts."""

  ok: Callable[[Any], bool]
  valid: str


def _number(x) -> bool:
  return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def _integer(x) -> bool:
  return isinstance(x, int) and not isinstance(x, bool)


def at_least(lo: int) -> Rule:
  return Rule(lambda x: _integer(x) and x >= lo, f"an integer >= {lo}")


def positive() -> Rule:
  return Rule(lambda x: _number(x) and x > 0, "a number > 0")


def non_negative() -> Rule:
  return Rule(lambda x: _number(x) and x >= 0, "a number >= 0")


def unit_interval() -> Rule:
  return Rule(lambda x: _number(x) and 0 <= x < 1, "a number in [0, 1)")


def one_of(*choices: str) -> Rule:
  return Rule(lambda x: x in choices, f"one of {', '.join(choices)}")


def _rules() -> dict[str, Rule]:
  rules = {
    "total_steps": at_least(1),
    "log_every_steps": at_least(0),
    "checkpoint_every_steps": at_least(0),
    "sample_every_steps": at_least(0),
    "eval_every_steps": at_least(0),
    "keep_checkpoints": at_least(1),
    "parallelism": one_of("pmap", "jit"),
    "compute_dtype": one_of(*build.DTYPES),
    "num_sample_images": at_least(1),
    "num_eval_images": at_least(1),
    "data.image_size": at_least(1),
    "data.load_size": at_least(1),
    "data.global_batch_size": at_least(1),
    "data.shuffle_buffer": at_least(1),
    "data.prefetch_batches": at_least(0),
    "data.max_image_pixels": at_least(1),
    "data.synthetic_size": at_least(1),
    "data.synthetic_train_size": at_least(1),
    "data.synthetic_test_size": at_least(1),
    "data.synthetic_styles": at_least(1),
    "model.name": one_of(*families.FAMILIES),
    "model.ema_decay": unit_interval(),
    "model.generator.encoder_layer": one_of(*_relu_layers()),
    "model.generator.transfer": one_of(*generators.TRANSFERS),
    "model.generator.ngf": at_least(1),
    "model.generator.n_blocks": at_least(0),
    "model.discriminator.ndf": at_least(1),
    "model.discriminator.n_layers": at_least(1),
    "model.discriminator.norm": one_of("instance", "none"),
    "model.discriminator.num_scales": at_least(1),
    "loss.adv_type": one_of(*losses.ADV_TYPES),
    "loss.adv_condition": one_of(*losses.ADV_CONDITIONS),
    "loss.style_type": one_of("mean_std", "gram"),
    "loss.content_type": one_of("perceptual", "pixel"),
    "loss.r1_gamma": non_negative(),
    "loss.temporal_max_shift": non_negative(),
    "loss.temporal_noise": non_negative(),
    "loss.pool_size": at_least(0),
  }
  for w in (
    "w_adv",
    "w_content",
    "w_style",
    "w_cycle",
    "w_identity",
    "w_tv",
    "w_supervised",
    "w_temporal",
  ):
    rules[f"loss.{w}"] = non_negative()
  for net in ("g", "d"):
    rules.update(
      {
        f"optim.{net}.lr": positive(),
        f"optim.{net}.b1": unit_interval(),
        f"optim.{net}.b2": unit_interval(),
        f"optim.{net}.schedule": one_of(*optim.SCHEDULES),
        f"optim.{net}.decay_start_step": at_least(0),
        f"optim.{net}.warmup_steps": at_least(0),
        f"optim.{net}.grad_clip_norm": non_negative(),
      }
    )
  return rules


def _get(config: ml_collections.ConfigDict, key: str) -> tuple[bool, Any]:
  node = config
  for part in key.split("."):
    if not isinstance(node, (ml_collections.ConfigDict, dict)) or part not in node:
      return False, None
    node = node[part]
  return True, node


def _fail(key: str, value: Any, valid: str) -> None:
  raise ConfigValueError(f"config.{key}={value!r} is out of range: use {valid}")


def validate(config: ml_collections.ConfigDict) -> None:
  """Checks every known key's value and the values that must agree with each other.

  Raises:
    ConfigValueError: the first bad value, as one line (key, value, valid range).
  """
  for key, rule in _rules().items():
    present, value = _get(config, key)
    if present and not rule.ok(value):
      _fail(key, value, rule.valid)
  d = config.data
  if d.load_size < d.image_size:
    _fail(
      "data.load_size",
      d.load_size,
      f"an integer >= data.image_size={d.image_size} "
      "(images are resized to load_size, then cropped to image_size)",
    )
  if config.num_sample_images > config.num_eval_images:
    _fail(
      "num_sample_images",
      config.num_sample_images,
      f"at most num_eval_images={config.num_eval_images} (samples are evaluation images)",
    )
  styles = config.loss.get("style_layers")
  weights = config.loss.get("style_layer_weights")
  if styles is not None and weights is not None:
    if not styles or any(s not in _relu_layers() for s in styles):
      _fail(
        "loss.style_layers",
        tuple(styles),
        f"a non-empty tuple of VGG19 layers among {', '.join(_relu_layers())}",
      )
    if len(weights) != len(styles) or any(not _number(w) or w < 0 for w in weights):
      _fail(
        "loss.style_layer_weights",
        tuple(weights),
        f"{len(styles)} numbers >= 0, one per loss.style_layers entry",
      )
  condition = config.loss.get("adv_condition", "none")
  if condition != "none" and config.model.name != "adain_gan":
    _fail(
      "loss.adv_condition",
      condition,
      f"'none' for {config.model.name} (a style-conditioned D is adain_gan's: it judges "
      "(image, style image) pairs)",
    )
  # Generator options of one family (and transfer): an error elsewhere, not silently unused.
  g, name = config.model.generator, config.model.name
  cyclegan, not_cyclegan = name == "cyclegan", f"False for {name}"
  colour = (name, g.transfer) == ("adain_gan", "colour")
  not_colour = "False unless model.name='adain_gan' with model.generator.transfer='colour'"
  for key, allowed, use, what in (
    ("residual", cyclegan, not_cyclegan, "the residual output is cyclegan's ResNet generator's"),
    (
      "scan_blocks",
      cyclegan,
      not_cyclegan,
      "the scanned residual blocks are cyclegan's ResNet generator's",
    ),
    ("outlines", colour, not_colour, "the outline module darkens the colour generator's output"),
    ("smooth_query", colour, not_colour, "the query filter is the colour generator's"),
  ):
    if g.get(key, False) and not allowed:
      _fail(f"model.generator.{key}", True, f"{use} ({what})")
  temporal = config.loss.get("w_temporal", 0.0)
  if temporal > 0 and not families.get(config.model.name).temporal_loss:
    with_it = [name for name, f in families.FAMILIES.items() if f.temporal_loss]
    _fail(
      "loss.w_temporal",
      temporal,
      f"0 for {config.model.name} (the temporal regulariser is implemented for "
      f"{', '.join(with_it)})",
    )
  if temporal > 0 and not config.loss.temporal_max_shift < config.data.image_size / 4:
    _fail(
      "loss.temporal_max_shift",
      config.loss.temporal_max_shift,
      f"a number in [0, data.image_size / 4 = {config.data.image_size / 4:g})",
    )
  for net in ("g", "d"):
    o = config.optim[net]
    if o.schedule == "linear" and not o.decay_start_step < config.total_steps:
      _fail(
        f"optim.{net}.decay_start_step",
        o.decay_start_step,
        f"an integer in [0, total_steps={config.total_steps}) for the linear schedule",
      )
    if o.warmup_steps and o.warmup_steps >= config.total_steps:
      _fail(
        f"optim.{net}.warmup_steps",
        o.warmup_steps,
        f"an integer in [0, total_steps={config.total_steps})",
      )


def _relu_layers() -> tuple[str, ...]:
  return tuple(n for n in vgg.LAYER_ORDER if n.startswith("relu"))
