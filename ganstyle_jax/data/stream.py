"""Seeded, resumable training streams: tf.data on the CPU, decoded on the host, NumPy batches.

A training stream, per batch key (adain_gan: content, style, real; cyclegan: A, B), or per
pair of keys for a paired family (pix2pix: input+target from two folders matched by file stem):

  small elements (encoded bytes or file paths; this process's shard, data/sources.py)
  -> per-epoch seeded shuffle, epochs chained (epoch e uses seed f(seed, key, e))
  -> enumerate (global element index) -> skip(resume offset)          [nothing decoded so far]
  -> prefetch                                                   [tf.data ends here]
  -> on the host, in a thread pool: decode (data/decode.py; bad files skipped+counted), resize
     the shorter side to load_size
  -> random crop to image_size and random horizontal flip, keyed on (seed, key, element
     index), so they do not depend on where the stream was restarted; the two images of a pair
     get the same crop and flip (the second is first resized to the first's size if they differ)
  -> float32 in [-1, 1] -> batch of global_batch_size // process_count.

Derived keys (`known_answers`): the synthetic known answer painting_k(C) of a content batch C,
k = each element's painting style index as carried by another stream's elements (adain_gan's
supervised target: the style image's style; synthetic pairs: the photo's own style). The index
travels with its element, so a resumed stream derives the same targets.

The iterator state is, per stream, the number of elements consumed (a small JSON dict). Resuming
rebuilds the stream at epoch position // n and skips position % n raw elements, so a resumed run
continues the same stream, batch for batch, instead of starting it over.
"""

from __future__ import annotations

import concurrent.futures
import threading
import zlib
from typing import Any, Sequence

from absl import logging
import numpy as np

from ganstyle_jax.data import decode
from ganstyle_jax.data.sources import Elements, first_line
from ganstyle_jax.data.tf_quiet import tf
from ganstyle_jax.errors import UserError

_INFINITE_EPOCHS = 2**62


class BadFileLog:
  """Counts distinct bad files (thread-safe) and warns once per file, naming it."""

  def __init__(self):
    self._lock = threading.Lock()
    self._bad: dict[str, set[str]] = {}

  def record(self, stream: str, name: str, error: Exception) -> int:
    """Records one bad file of `stream`; returns the stream's distinct bad-file count."""
    with self._lock:
      seen = self._bad.setdefault(stream, set())
      new = name not in seen
      seen.add(name)
      count = len(seen)
    if new:
      logging.warning(
        "Skipping bad image %s: %s: %s (%d bad in %s so far)",
        name,
        type(error).__name__,
        first_line(error),
        count,
        stream,
      )
    return count

  def is_known_bad(self, stream: str, name: str) -> bool:
    with self._lock:
      return name in self._bad.get(stream, ())

  @property
  def counts(self) -> dict[str, int]:
    with self._lock:
      return {k: len(v) for k, v in self._bad.items()}

  @property
  def total(self) -> int:
    return sum(self.counts.values())


def load_image(encoded: bytes, *, load_size: int, max_pixels: int) -> np.ndarray:
  """An encoded training/held-out image -> uint8 RGB, shorter side resized to load_size."""
  image = decode.decode(encoded, max_pixels=max_pixels, min_side=load_size)
  return decode.resize_shorter_side(image, load_size)


def stream_seed(seed: int, key: str) -> int:
  """A stable 31-bit seed per (run seed, batch key): streams of one source still differ."""
  return zlib.crc32(f"{int(seed)}/{key}".encode()) & 0x7FFFFFFF


def _augment_train(
  images: Sequence[np.ndarray], index: int, seed: int, image_size: int
) -> list[np.ndarray]:
  """One random crop + horizontal flip keyed on (stream seed, element index), applied to every
  image of an element (one image, or the two of an aligned pair, same shape) -> float32 [-1, 1]."""
  rng = np.random.default_rng((seed, int(index)))
  h, w = images[0].shape[:2]
  top = int(rng.integers(0, h - image_size + 1))
  left = int(rng.integers(0, w - image_size + 1))
  flip = rng.random() < 0.5
  out = []
  for image in images:
    crop = image[top : top + image_size, left : left + image_size]
    if flip:
      crop = crop[:, ::-1]
    out.append(crop.astype(np.float32) / 127.5 - 1.0)
  return out


def match_size(image: np.ndarray, like: np.ndarray) -> np.ndarray:
  """`image` bicubic-resized to `like`'s height and width (unchanged if they already agree):
  the second image of a pair takes the first's size, so one crop fits both."""
  if image.shape[:2] == like.shape[:2]:
    return image
  from PIL import Image  # pylint: disable=g-import-not-at-top

  h, w = like.shape[:2]
  return np.asarray(Image.fromarray(image).resize((w, h), Image.Resampling.BICUBIC))


def known_answer(content: np.ndarray, styles: Sequence[int]) -> np.ndarray:
  """painting_k(C) per image (the synthetic known answer), C and result float32 NHWC [-1, 1]."""
  from ganstyle_jax.data import synthetic  # pylint: disable=g-import-not-at-top

  styles = [int(k) for k in np.asarray(styles).reshape(-1)]
  if min(styles, default=0) < 0:
    raise UserError(
      "the synthetic known answer needs synthetic paintings (their style index is "
      "not known for other sources)"
    )
  return np.asarray(synthetic.painting_signed(np.asarray(content, np.float32), styles), np.float32)


def center_crop(image: np.ndarray, size: int) -> np.ndarray:
  """Centre square crop of an HWC array to size x size (H, W >= size)."""
  h, w = image.shape[:2]
  top, left = (h - size) // 2, (w - size) // 2
  return image[top : top + size, left : left + size]


def _train_dataset(
  elements: Elements, *, seed: int, position: int, shuffle_buffer: int, prefetch: int
) -> tf.data.Dataset:
  """Undecoded elements (index, data, name) of the endless shuffled stream from `position`.

  Decoding happens on the host in Python threads (`_Stream`), not in tf.numpy_function: a
  Python callback inside tf.data can deadlock against the GIL when the iterator is destroyed.
  """
  n = elements.size
  start_epoch, offset = divmod(int(position), n)
  # Paths are tiny: shuffle a whole epoch; encoded bytes: the configured buffer.
  buffer = n if elements.is_path else max(1, min(int(shuffle_buffer), n))
  base = elements.dataset

  def epoch(e):
    return base.shuffle(
      buffer, seed=tf.constant(seed, tf.int64) * 1_000_003 + e, reshuffle_each_iteration=False
    )

  ds = tf.data.Dataset.range(start_epoch, _INFINITE_EPOCHS).flat_map(epoch)
  ds = ds.enumerate(start=start_epoch * n).skip(offset)
  return ds.prefetch(prefetch)


class _Stream:
  """One endless stream: undecoded elements from tf.data, decoded in threads.

  It yields the batch key `keys[0]` (or, for paired elements, the aligned keys `keys[0]` and
  `keys[1]`) and the painting style index of every element.
  """

  def __init__(
    self,
    key: str,
    elements: Elements,
    *,
    seed: int,
    position: int,
    local_batch: int,
    image_size: int,
    load_size: int,
    shuffle_buffer: int,
    max_pixels: int,
    bad_log: BadFileLog,
    pool: concurrent.futures.Executor,
    keys: Sequence[str] | None = None,
  ):
    self.key, self.elements = key, elements
    self.keys = tuple(keys or (key,))
    if len(self.keys) != (2 if elements.paired else 1):
      raise ValueError(
        f"stream {key!r}: {len(self.keys)} keys for "
        f"{'paired' if elements.paired else 'single'} elements"
      )
    self.name = f"{key} ({elements.description})"
    self.seed, self.local_batch = seed, local_batch
    self.image_size, self.load_size, self.max_pixels = image_size, load_size, max_pixels
    self.bad_log, self.pool = bad_log, pool
    self.position = int(position)
    self._it = _train_dataset(
      elements,
      seed=seed,
      position=position,
      shuffle_buffer=shuffle_buffer,
      prefetch=2 * local_batch,
    ).as_numpy_iterator()

  def _decode(self, item) -> tuple[int, list[np.ndarray] | None, int]:
    index, ex = item
    name = ex["name"].decode("utf-8", "replace")
    style = int(ex["style"])
    if self.bad_log.is_known_bad(self.name, name):
      return index, None, style
    try:
      images = [
        load_image(
          self.elements.encoded(ex["data"]), load_size=self.load_size, max_pixels=self.max_pixels
        )
      ]
      if self.elements.paired:
        other = load_image(
          self.elements.encoded(ex["data_b"]), load_size=self.load_size, max_pixels=self.max_pixels
        )
        images.append(match_size(other, images[0]))
    except Exception as e:  # unreadable files are skipped pylint: disable=broad-except
      self.bad_log.record(self.name, name, e)
      return index, None, style
    return index, _augment_train(images, index, self.seed, self.image_size), style

  def next_batch(self) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """({key: float32 [local_batch, S, S, 3]}, int32 [local_batch] style indices); bad files
    are skipped (and counted)."""
    images: list[list[np.ndarray]] = []
    styles: list[int] = []
    while len(images) < self.local_batch:
      if self.bad_log.counts.get(self.name, 0) >= self.elements.size:
        raise UserError(
          f"{self.key}: all {self.elements.size} images of "
          f"{self.elements.description} are unreadable (see the warnings above): "
          "fix or replace the files"
        )
      want = self.local_batch - len(images)
      items = [next(self._it) for _ in range(want)]
      for index, decoded, style in self.pool.map(self._decode, items):
        self.position = int(index) + 1
        if decoded is not None:
          images.append(decoded)
          styles.append(style)
    batch = {key: np.stack([im[i] for im in images]) for i, key in enumerate(self.keys)}
    return batch, np.array(styles, np.int32)


class TrainIterator:
  """Endless training batches with a checkpointable position.

  `next(it)` gives a dict of float32 [local_batch, H, W, 3] in [-1, 1] (adain_gan: content,
  style, real; cyclegan: A, B), local_batch = global_batch_size // process_count.
  `get_state()` / `set_state()` save and restore the stream position (JSON-serialisable).
  `bad_files` counts the distinct bad files skipped so far (`bad_file_counts` per stream).

  Args:
    elements: {stream name: its elements}; a stream yields the batch key of its name, or
      `pairs[name]` (two keys) for paired elements.
    pairs: {stream name: (key, key)} for the paired streams.
    known_answers: {derived key: (content key, stream name)}: the key is
      `known_answer(batch[content key], style indices of that stream's elements)`; a derived
      key that is also its own content key (synthetic:same_style) repaints its stream's photos.
    order: the batch keys in the order the batch dict lists them (default: streams, then the
      derived keys).
  """

  def __init__(
    self,
    elements: dict[str, Elements],
    *,
    seed: int,
    local_batch: int,
    image_size: int,
    load_size: int,
    shuffle_buffer: int,
    max_pixels: int,
    process_count: int = 1,
    pairs: dict[str, tuple[str, str]] | None = None,
    known_answers: dict[str, tuple[str, str]] | None = None,
    order: Sequence[str] | None = None,
  ):
    self._process_count = process_count
    self._elements = elements
    self._pairs = dict(pairs or {})
    self._known_answers = dict(known_answers or {})
    keys = [k for name in elements for k in self._pairs.get(name, (name,))]
    # A derived key may be a stream's own key (synthetic:same_style): its photos are repainted.
    all_keys = keys + [k for k in self._known_answers if k not in keys]
    self._order = tuple(order) if order is not None else tuple(all_keys)
    if sorted(self._order) != sorted(all_keys):
      raise ValueError(
        f"batch order {self._order} does not list the keys {keys} and {list(self._known_answers)}"
      )
    self._seed = seed
    self._local_batch = local_batch
    self._image_size = image_size
    self._load_size = load_size
    self._shuffle_buffer = shuffle_buffer
    self._max_pixels = max_pixels
    self._bad_log = BadFileLog()
    self._positions = {k: 0 for k in elements}
    self._iterators: dict[str, _Stream] | None = None
    # PIL decodes and resizes without holding the GIL: threads give real parallelism.
    self._pool = concurrent.futures.ThreadPoolExecutor(max_workers=4, thread_name_prefix="decode")

  @property
  def local_batch_size(self) -> int:
    return self._local_batch

  @property
  def epoch_sizes(self) -> dict[str, int]:
    """Elements per epoch of each stream (this process's shard)."""
    return {k: e.size for k, e in self._elements.items()}

  @property
  def bad_files(self) -> int:
    return self._bad_log.total

  @property
  def bad_file_counts(self) -> dict[str, int]:
    return self._bad_log.counts

  def _build(self) -> dict[str, _Stream]:
    return {
      key: _Stream(
        key,
        elements,
        seed=stream_seed(self._seed, key),
        position=self._positions[key],
        local_batch=self._local_batch,
        image_size=self._image_size,
        load_size=self._load_size,
        shuffle_buffer=self._shuffle_buffer,
        max_pixels=self._max_pixels,
        bad_log=self._bad_log,
        pool=self._pool,
        keys=self._pairs.get(key),
      )
      for key, elements in self._elements.items()
    }

  def __iter__(self) -> TrainIterator:
    return self

  def __next__(self) -> dict[str, np.ndarray]:
    if self._iterators is None:
      self._iterators = self._build()
    batch: dict[str, np.ndarray] = {}
    styles: dict[str, np.ndarray] = {}
    for name, stream in self._iterators.items():
      batch_part, styles[name] = stream.next_batch()
      batch.update(batch_part)
    for key, (content_key, stream_name) in self._known_answers.items():
      batch[key] = known_answer(batch[content_key], styles[stream_name])
    self._positions.update({key: stream.position for key, stream in self._iterators.items()})
    return {key: batch[key] for key in self._order}

  def get_state(self) -> dict[str, Any]:
    """The stream position, JSON-serialisable: {'positions': {key: elements consumed by this
    process}, 'process_count': n} (every process consumes the same number of its own shard)."""
    return {"positions": dict(self._positions), "process_count": self._process_count}

  def set_state(self, state: dict[str, Any]) -> None:
    """Continues the stream exactly where `get_state` was taken (same config and seed).

    A state saved with another process count is re-sharded: each process starts its new shard
    at the same fraction of the data (positions x old count / new count), which keeps the
    epoch count and schedule but not the exact order of images.
    """
    positions = state["positions"]
    if set(positions) != set(self._positions):
      raise UserError(
        f"the data-iterator state has streams {sorted(positions)} but this run "
        f"reads {sorted(self._positions)}: the checkpoint is from another model"
      )
    saved_count = int(state.get("process_count", self._process_count))
    if saved_count != self._process_count:
      logging.warning(
        "Data position saved with %d process(es), resumed with %d: re-sharding "
        "the stream at the same point of the data.",
        saved_count,
        self._process_count,
      )
      positions = {k: int(v) * saved_count // self._process_count for k, v in positions.items()}
    self._positions = {k: int(v) for k, v in positions.items()}
    self._iterators = None  # rebuilt lazily at the new position
