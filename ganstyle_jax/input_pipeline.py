"""The input pipeline's entry points: training iterators and fixed held-out batches.

Source strings are parsed in data/sources.py, images decoded in data/decode.py and training
streams (seeded, resumable) built in data/stream.py; this module turns a run config into them.

What a family's batch keys become (`batch_keys`, families/):
* each key with a source string: its own independently shuffled stream;
* a key mapped to `synthetic:known_answer` (adain_gan's supervised target): derived per batch,
  painting_k(content) with k the painting style of each pair's style image; it needs
  synthetic:photo content and synthetic:painting style (`KNOWN_ANSWER_NEEDS` otherwise);
* a key mapped to `synthetic:same_style` (data.real for a style-conditioned D): its own stream
  of synthetic photos (shuffled independently of the content), each painted per batch in the
  style of the style image at its position (held out: the next scene's photo, so it is never
  the content's own answer);
* a paired family (`Family.paired`, pix2pix): its two keys are one stream of aligned pairs
  (same order, crop and flip): folder:A + folder:B matched by file stem, or synthetic:photo +
  synthetic:painting = (photo_i, painting_{style(i)}(photo_i)) of the same scene.

Multi-style synthetic data (data.synthetic_styles = N > 1; `effective_styles`) applies to
style-conditioned and paired families; other families (cyclegan) keep the single-style data and
its known answer painting_0(A).
"""

from __future__ import annotations

from absl import logging
import numpy as np

from ganstyle_jax import families
from ganstyle_jax.data import KNOWN_ANSWER, SAME_STYLE, stream
from ganstyle_jax.data.sources import (
  Elements,
  Source,
  paired_folder_elements,
  synthetic_styles,
)
from ganstyle_jax.errors import UserError

KNOWN_ANSWER_NEEDS = (
  "loss.w_supervised needs the synthetic known answer: set "
  "data.content=synthetic:photo and data.style=synthetic:painting"
)
PAIRED_NEEDS = (
  "paired data: use data.content=folder:A with data.style=folder:B (matched by "
  "file stem), or data.content=synthetic:photo with data.style=synthetic:painting"
)


def batch_keys(config) -> dict[str, str]:
  """{batch key: source string} of config.model.name's family (families/)."""
  return families.get(config.model.name).batch_keys(config)


def effective_styles(config) -> int:
  """The synthetic painting styles this run reads: data.synthetic_styles for style-conditioned
  and paired families, 1 (the single-style benchmark) for the others (cyclegan)."""
  n = synthetic_styles(config)
  family = families.get(config.model.name)
  if n > 1 and not (family.style_conditioned or family.paired):
    logging.warning(
      "data.synthetic_styles=%d: %s is not style-conditioned; it reads the "
      "single-style synthetic data (style 0).",
      n,
      family.name,
    )
    return 1
  return n


class _Plan:
  """How a config's batch keys are read: streams (a key, or a paired key pair) and derived
  known-answer keys {key: (content key, stream whose style indices paint it)}."""

  def __init__(self, config):
    self.keys = batch_keys(config)
    family = families.get(config.model.name)
    self.styles = styles = effective_styles(config)
    self.sources: dict[str, Source] = {}
    self.pairs: dict[str, tuple[str, str]] = {}
    self.known_answers: dict[str, tuple[str, str]] = {}
    self.labels: dict[str, str] = {}  # what a derived key's held-out images are
    self.same_style: set[str] = set()  # derived keys painted from their own photo stream
    image_keys = [k for k, spec in self.keys.items() if spec != KNOWN_ANSWER]
    sources = {
      k: Source(
        "synthetic:photo" if self.keys[k] == SAME_STYLE else self.keys[k], config, styles=styles
      )
      for k in image_keys
    }
    for key, spec in self.keys.items():
      if spec == KNOWN_ANSWER:
        content, style = sources.get("content"), sources.get("style")
        if not (content and style and content.is_synthetic_photo and style.is_synthetic_painting):
          raise UserError(
            f"{KNOWN_ANSWER_NEEDS} (they are {config.data.content!r} and {config.data.style!r})"
          )
        self.known_answers[key] = ("content", "style")
        self.labels[key] = (
          f"{KNOWN_ANSWER} (painting_k(content), k = the style of each style "
          f"image, {style.heldout_split})"
        )
      elif spec == SAME_STYLE:
        if key in ("content", "style"):
          raise UserError(
            f"data.{key}={SAME_STYLE}: it is for data.real only (synthetic photos painted in "
            "the style images' styles)"
          )
        style = sources.get("style")
        if not (style and style.is_synthetic_painting):
          raise UserError(
            f"data.{key}={SAME_STYLE} paints synthetic photos in the style images' styles: it "
            f"needs data.style=synthetic:painting (it is {config.data.style!r})"
          )
        if int(config.data.synthetic_test_size) < 2:
          raise UserError(
            f"data.{key}={SAME_STYLE} paints the next held-out scene for each pair: set "
            f"data.synthetic_test_size >= 2 (it is {config.data.synthetic_test_size})"
          )
        self.known_answers[key] = (key, "style")
        self.same_style.add(key)
        self.labels[key] = (
          f"{SAME_STYLE} (the next held-out scene's synthetic photo painted in each style image's style, "
          f"{style.heldout_split})"
        )
    if not family.paired:
      self.sources = sources
      return
    if len(image_keys) != 2:
      raise UserError(f"{family.name}: a paired family needs two image keys, got {image_keys}")
    key_a, key_b = image_keys
    a, b = sources[key_a], sources[key_b]
    if a.kind == b.kind == "folder":
      self.pairs[f"{key_a}+{key_b}"] = (key_a, key_b)
      self.sources = {f"{key_a}+{key_b}": (a, b)}
    elif a.is_synthetic_photo and b.is_synthetic_painting:
      # The painting of the photo's own scene, in the photo's style (train i % N; test: held out).
      self.sources = {key_a: a}
      self.known_answers[key_b] = (key_a, key_a)
      self.labels[key_b] = (
        f"{b.spec} (painting of each {key_a} scene in its style, {a.heldout_split})"
      )
    else:
      raise UserError(f"{family.name} reads {PAIRED_NEEDS} (they are {a.spec!r} and {b.spec!r})")

  def elements(
    self, name: str, *, train: bool, process_index: int = 0, process_count: int = 1, seed: int = 0
  ) -> Elements:
    src = self.sources[name]
    if name in self.pairs:
      return paired_folder_elements(
        *src, train=train, process_index=process_index, process_count=process_count
      )
    return src.elements(
      train=train, process_index=process_index, process_count=process_count, seed=seed
    )

  def description(self, name: str) -> str:
    src = self.sources[name]
    if name in self.pairs:
      return f"{src[0].spec} + {src[1].spec} (pairs by file stem, sorted)"
    return f"{src.spec} ({src.heldout_split})"


def _check_sizes(config) -> tuple[int, int]:
  image_size = int(config.data.image_size)
  load_size = int(config.data.load_size)
  if image_size <= 0:
    raise UserError(f"data.image_size={image_size} must be positive")
  if load_size < image_size:
    raise UserError(
      f"data.load_size={load_size} is smaller than data.image_size={image_size}: "
      "set load_size >= image_size"
    )
  return image_size, load_size


def create_train_iterator(
  config,
  *,
  process_index: int | None = None,
  process_count: int | None = None,
  local_device_count: int | None = None,
) -> stream.TrainIterator:
  """Validates the data config and returns this process's endless training iterator.

  Args:
    config: the run config; reads seed, model.name, data.{content, style, real, image_size,
      load_size, global_batch_size, shuffle_buffer, data_dir, max_image_pixels, synthetic_size,
      synthetic_train_size, synthetic_test_size, synthetic_styles}.
    process_index: this process; default jax.process_index().
    process_count: the number of processes; default jax.process_count().
    local_device_count: devices of this process; default jax.local_device_count().

  Returns:
    A `TrainIterator` yielding dicts of float32 [global_batch_size // process_count, image_size,
    image_size, 3] in [-1, 1], one per batch key of the family (derived known-answer keys
    and paired keys included; see the module docstring).

  Raises:
    UserError: one line for a bad source (missing path, empty folder, unknown TFDS name or
      split), a batch size not divisible by the device count, bad sizes, a known answer or
      pairs asked of sources that have none.
  """
  if process_index is None or process_count is None or local_device_count is None:
    import jax  # pylint: disable=g-import-not-at-top

    process_index = jax.process_index() if process_index is None else process_index
    process_count = jax.process_count() if process_count is None else process_count
    local_device_count = (
      jax.local_device_count() if local_device_count is None else local_device_count
    )
  global_batch = int(config.data.global_batch_size)
  devices = process_count * local_device_count
  if global_batch <= 0 or global_batch % devices:
    raise UserError(
      f"data.global_batch_size={global_batch} is not divisible by the {devices} devices "
      f"({process_count} process(es) x {local_device_count} local devices): use a multiple "
      f"of {devices}, e.g. {devices * max(1, global_batch // devices)}"
    )
  image_size, load_size = _check_sizes(config)
  seed = int(config.seed)
  plan = _Plan(config)
  elements = {
    name: plan.elements(
      name,
      train=True,
      process_index=process_index,
      process_count=process_count,
      seed=stream.stream_seed(seed, name),
    )
    for name in plan.sources
  }
  return stream.TrainIterator(
    elements,
    seed=seed,
    local_batch=global_batch // process_count,
    image_size=image_size,
    load_size=load_size,
    shuffle_buffer=int(config.data.shuffle_buffer),
    max_pixels=int(config.data.max_image_pixels),
    process_count=process_count,
    pairs=plan.pairs,
    known_answers=plan.known_answers,
    order=tuple(plan.keys),
  )


def load_eval_batch(config, num_images: int) -> dict[str, np.ndarray]:
  """Fixed held-out images, centre-cropped and deterministic, for samples and evaluation.

  Held-out sets: synthetic sources use their test split (multi-style: in the order of their
  held-out styles 1000 + i, so image i of every synthetic key is test scene i), tfds sources the
  split they name, folders their first files in sorted order (paired folders: the first pairs by
  stem). Bad files are skipped (and logged); a set with fewer good images than num_images is
  cycled.

  Args:
    config: the run config (as for `create_train_iterator`).
    num_images: images per key.

  Returns:
    Same keys as training batches, float32 [num_images, image_size, image_size, 3] in [-1, 1];
    plus 'target', the known answer (same shape and range), where there is one:
    * single-style synthetic:photo content (cyclegan: A): painting(content), style 0;
    * multi-style (data.synthetic_styles > 1, style-conditioned family) with synthetic:painting
      style images: painting_k(content_i), k = the held-out style of style image i (a
      different test scene);
    * paired families: the target key itself (synthetic: painting of the photo's scene in its
      held-out style; folders: the B images).
  """
  return load_eval_data(config, num_images)[0]


def _heldout(
  elements: Elements,
  key: str,
  spec: str,
  num: int,
  *,
  image_size: int,
  load_size: int,
  max_pixels: int,
  by_style: bool,
  bad_log: stream.BadFileLog,
) -> tuple[list[list[np.ndarray]], list[int]]:
  """The first `num` readable held-out elements (cycled if fewer), centre-cropped uint8:
  ([images of element i (one, or a pair)], [style index of element i])."""
  items = elements.dataset.as_numpy_iterator()
  if by_style:  # multi-style synthetic test splits: style 1000 + i is test scene i
    items = sorted(items, key=lambda ex: int(ex["style"]))
  images, styles = [], []
  for ex in items:
    name = ex["name"].decode("utf-8", "replace")
    try:
      decoded = [
        stream.load_image(elements.encoded(ex["data"]), load_size=load_size, max_pixels=max_pixels)
      ]
      if elements.paired:
        other = stream.load_image(
          elements.encoded(ex["data_b"]), load_size=load_size, max_pixels=max_pixels
        )
        decoded.append(stream.match_size(other, decoded[0]))
    except Exception as e:  # unreadable files are skipped pylint: disable=broad-except
      bad_log.record(key, name, e)
      continue
    images.append([stream.center_crop(im, image_size) for im in decoded])
    styles.append(int(ex["style"]))
    if len(images) == num:
      break
  if not images:
    raise UserError(f"{spec}: no readable held-out images for {key!r}")
  if len(images) < num:
    logging.warning(
      "%s: only %d held-out images for %r; cycling them to %d", spec, len(images), key, num
    )
    images = [images[i % len(images)] for i in range(num)]
    styles = [styles[i % len(styles)] for i in range(num)]
  return images, styles


def load_eval_data(config, num_images: int) -> tuple[dict[str, np.ndarray], dict[str, str]]:
  """`load_eval_batch` and, per key, the source and split the images came from."""
  image_size, load_size = _check_sizes(config)
  max_pixels = int(config.data.max_image_pixels)
  bad_log = stream.BadFileLog()
  plan = _Plan(config)
  family = families.get(config.model.name)
  multi_style = plan.styles > 1
  batch: dict[str, np.ndarray] = {}
  styles: dict[str, list[int]] = {}
  splits: dict[str, str] = {}
  for name in plan.sources:
    keys = plan.pairs.get(name, (name,))
    src = plan.sources[name]
    spec = " + ".join(s.spec for s in src) if name in plan.pairs else src.spec
    images, styles[name] = _heldout(
      plan.elements(name, train=False),
      name,
      spec,
      num_images,
      image_size=image_size,
      load_size=load_size,
      max_pixels=max_pixels,
      by_style=multi_style and name not in plan.pairs and src.kind == "synthetic",
      bad_log=bad_log,
    )
    for i, key in enumerate(keys):
      batch[key] = np.stack([im[i] for im in images]).astype(np.float32) / 127.5 - 1.0
      splits[key] = plan.description(name)
  for key, (content_key, stream_name) in plan.known_answers.items():
    photos = batch[content_key]
    if key in plan.same_style:  # the held-out photos are the content's: take the next scene's
      photos = np.roll(photos, -1, axis=0)
    batch[key] = stream.known_answer(photos, styles[stream_name])
    splits[key] = plan.labels[key]
  if not family.paired and "target" not in batch:
    target = _eval_target(plan, batch, styles, multi_style)
    if target is not None:
      batch["target"] = target
  return {
    key: batch[key] for key in list(plan.keys) + [k for k in batch if k not in plan.keys]
  }, splits


def _eval_target(plan: _Plan, batch, styles, multi_style: bool) -> np.ndarray | None:
  """The known answer of an unpaired family's held-out batch, or None (see load_eval_batch)."""
  from ganstyle_jax.data import synthetic  # pylint: disable=g-import-not-at-top

  content_key = next(
    (k for k in ("content", "A") if k in plan.sources and plan.sources[k].is_synthetic_photo), None
  )
  if content_key is None:
    return None
  if not multi_style:
    return synthetic.painting_signed(batch[content_key]).astype(np.float32)
  style = plan.sources.get("style")
  if style is None or not style.is_synthetic_painting:
    logging.warning(
      "data.synthetic_styles > 1 but data.style is %s: the held-out batch has no "
      "known answer (it needs synthetic:painting style images).",
      style.spec if style else "absent",
    )
    return None
  return stream.known_answer(batch[content_key], styles["style"])
