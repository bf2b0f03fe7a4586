"""The input pipeline: tf.data on the CPU, handing NumPy batches to JAX.

Sources (config strings, see DESIGN.md):
  `tfds:NAME[:SPLIT]`   any TFDS image dataset (split default 'train'; data.data_dir is the TFDS
                        data_dir), e.g. `tfds:cycle_gan/monet2photo:trainB`;
  `folder:PATH`         images found recursively under PATH (local or any tf.io.gfile path such as
                        gs://); PATH may also be a single image file;
  `synthetic:photo`, `synthetic:painting` [`:train`|`:test`]  the embedded dataset
                        (ganstyle_jax/data/synthetic.py), built into the TFDS data_dir on first use.

A training stream, per batch key (adain_gan: content, style, real; cyclegan: A, B):

  small elements (encoded bytes or file paths; this process's shard)
  -> per-epoch seeded shuffle, epochs chained (epoch e uses seed f(seed, key, e))
  -> enumerate (global element index) -> skip(resume offset)          [nothing decoded so far]
  -> prefetch                                                   [tf.data ends here]
  -> on the host, in a thread pool: decode with PIL (EXIF orientation, any mode -> RGB, size
     limit, bad files skipped+counted), resize the shorter side to load_size
  -> random crop to image_size and random horizontal flip, keyed on (seed, key, element
     index), so they do not depend on where the stream was restarted
  -> float32 in [-1, 1] -> batch of global_batch_size // process_count.

The iterator state is, per key, the number of elements consumed (a small JSON dict). Resuming
rebuilds the stream at epoch position // n and skips position % n raw elements, so a resumed run
continues the same stream, batch for batch, instead of starting it over.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import io
import queue
import threading
import zlib
from typing import Any

from absl import logging
import numpy as np
from PIL import Image, ImageFile, ImageOps
import tensorflow as tf
import tensorflow_datasets as tfds

from ganstyle_jax.errors import UserError


def _hide_accelerators_from_tf() -> None:
  """TensorFlow only feeds data here: it must not take GPU/TPU memory from JAX."""
  for kind in ('GPU', 'TPU'):
    try:
      tf.config.set_visible_devices([], kind)
    except (RuntimeError, ValueError):  # already initialised, or no such device type
      pass


_hide_accelerators_from_tf()
# Truncated files must raise (and be skipped), not decode into half-grey images.
ImageFile.LOAD_TRUNCATED_IMAGES = False

IMAGE_EXTENSIONS = ('.jpg', '.jpeg', '.jpe', '.jfif', '.png', '.bmp', '.webp', '.gif', '.tif',
                    '.tiff', '.ppm', '.pgm', '.pbm', '.pnm', '.tga', '.ico')
DEFAULT_MAX_IMAGE_PIXELS = 8192 * 8192
_INFINITE_EPOCHS = 2 ** 62

# Config fields read here and their defaults when a config lacks them.
DATA_DEFAULTS: dict[str, Any] = {
    'load_size': None,  # None: image_size
    'shuffle_buffer': 1024,
    'data_dir': None,
    'max_image_pixels': DEFAULT_MAX_IMAGE_PIXELS,
    'synthetic_size': 64,
    'synthetic_train_size': 2000,
    'synthetic_test_size': 64,
}


def _data_field(config, name: str):
  value = config.data.get(name, None) if hasattr(config.data, 'get') else getattr(
      config.data, name, None)
  return DATA_DEFAULTS.get(name) if value is None else value


def batch_keys(config) -> dict[str, str]:
  """The batch keys of config.model.name and the source string each one reads.

  Args:
    config: the run config (model.name, data.content, data.style, data.real).

  Returns:
    adain_gan: {'content': data.content, 'style': data.style, 'real': data.real or data.style};
    cyclegan: {'A': data.content, 'B': data.style}.
  """
  name = config.model.name
  if name == 'adain_gan':
    return {'content': config.data.content, 'style': config.data.style,
            'real': config.data.get('real', None) or config.data.style}
  if name == 'cyclegan':
    return {'A': config.data.content, 'B': config.data.style}
  raise UserError(f"model.name={name!r} is unknown: use 'adain_gan' or 'cyclegan'")


# ----------------------------------------------------------------------------------------------
# Sources.
# ----------------------------------------------------------------------------------------------


@dataclasses.dataclass
class _Elements:
  """Undecoded elements of one source: {'data': bytes or path, 'name': str} and their count."""
  dataset: tf.data.Dataset
  size: int
  is_path: bool  # 'data' holds a file path (read at decode time) rather than encoded bytes
  description: str


class Source:
  """One parsed and validated source string (tfds:..., folder:..., synthetic:...).

  Construction checks everything that can be checked before training (the path exists and holds
  images, the TFDS name and split exist and are prepared) and raises UserError otherwise.
  """

  def __init__(self, spec: str, config):
    if not isinstance(spec, str) or ':' not in spec:
      raise UserError(f'data source {spec!r} is not understood: use tfds:NAME[:SPLIT], '
                      'folder:PATH or synthetic:photo|painting')
    self.spec = spec
    self.kind, rest = spec.split(':', 1)
    self._config = config
    self._data_dir = _data_field(config, 'data_dir')
    if self.kind == 'folder':
      self._files = _list_images(rest, spec)
    elif self.kind == 'tfds':
      name, _, split = rest.partition(':')
      self._builder = _tfds_builder(name, self._data_dir, spec)
      self._split = split or 'train'
      _check_tfds_split(self._builder, self._split, spec)
      self._eval_split = self._split
      self._image_key = _image_feature_key(self._builder, spec)
    elif self.kind == 'synthetic':
      domain, _, split = rest.partition(':')
      from ganstyle_jax.data import synthetic  # pylint: disable=g-import-not-at-top
      if domain not in synthetic.DOMAINS or split not in ('', 'train', 'test'):
        raise UserError(f'data source {spec!r} is unknown: use synthetic:photo or '
                        'synthetic:painting (optionally :train or :test)')
      self.domain = domain
      self._builder = synthetic.get_builder(
          size=int(_data_field(config, 'synthetic_size')),
          num_train=int(_data_field(config, 'synthetic_train_size')),
          num_test=int(_data_field(config, 'synthetic_test_size')),
          data_dir=self._data_dir or synthetic.default_data_dir())
      self._split = f'{split or "train"}_{domain}'
      self._eval_split = f'test_{domain}'
      self._image_key = 'image'
    else:
      raise UserError(f'data source {spec!r} has an unknown kind {self.kind!r}: use '
                      'tfds:NAME[:SPLIT], folder:PATH or synthetic:photo|painting')

  @property
  def heldout_split(self) -> str:
    """The split `load_eval_batch` reads: synthetic test split, the named tfds split, or folder."""
    return 'all files, sorted' if self.kind == 'folder' else self._eval_split

  @property
  def is_synthetic_photo(self) -> bool:
    return self.kind == 'synthetic' and self.domain == 'photo'

  def elements(self, *, train: bool, process_index: int = 0, process_count: int = 1,
               seed: int = 0) -> _Elements:
    """This process's shard (train) or the whole held-out set in a fixed order (eval)."""
    if self.kind == 'folder':
      files = self._files
      if train:
        files = files[process_index::process_count]
        if not files:
          raise UserError(f'{self.spec}: {len(self._files)} images cannot be shared among '
                          f'{process_count} processes: add images or use fewer hosts')
      ds = tf.data.Dataset.from_tensor_slices({'data': files, 'name': files})
      return _Elements(ds, len(files), True, self.spec)

    split = self._split if train else self._eval_split
    # try_autocache off for eval: it reads only the first few examples.
    read_config = tfds.ReadConfig(add_tfds_id=True, shuffle_seed=seed,
                                  shuffle_reshuffle_each_iteration=False, try_autocache=train)
    try:
      if train and process_count > 1:
        split = tfds.split_for_jax_process(split, process_index=process_index,
                                           process_count=process_count)
      ds = self._builder.as_dataset(
          split=split, shuffle_files=train, read_config=read_config,
          decoders={self._image_key: tfds.decode.SkipDecoding()})
    except Exception as e:  # pylint: disable=broad-except
      builder = self._builder
      if not builder.is_prepared():
        root = builder.data_dir_root
        raise UserError(
            f'{self.spec}: TFDS dataset {builder.info.full_name} is not prepared in data_dir '
            f'{root}: run `tfds build {builder.name} --data_dir={root}` where there is network, '
            'or set data.data_dir') from e
      raise UserError(f'{self.spec}: cannot read split {split!r}: {_first_line(e)}') from e
    key = self._image_key
    ds = ds.map(lambda ex: {'data': ex[key], 'name': ex.get('tfds_id', tf.constant(self.spec))})
    size = int(ds.cardinality())
    if size < 0:  # unknown cardinality: count once (raw records, nothing decoded)
      size = int(ds.reduce(np.int64(0), lambda n, _: n + 1))
    if size == 0:
      raise UserError(f'{self.spec}: split {split!r} holds no examples for this process')
    return _Elements(ds, size, False, self.spec)


def _first_line(e: BaseException) -> str:
  text = str(e).strip()
  return text.splitlines()[0] if text else type(e).__name__


def _list_images(path: str, spec: str) -> list[str]:
  """Sorted image files under `path` (recursive), local or any tf.io.gfile path."""
  if not path:
    raise UserError(f'{spec}: empty folder path: use folder:/path/to/images')
  if not tf.io.gfile.exists(path):
    raise UserError(f'{spec}: path {path!r} does not exist: check data.content/style/real')
  if not tf.io.gfile.isdir(path):
    if path.lower().endswith(IMAGE_EXTENSIONS):
      return [path]
    raise UserError(f'{spec}: {path!r} is neither a folder nor an image file')
  files = []
  for root, _, names in tf.io.gfile.walk(path):
    files.extend(f'{root.rstrip("/")}/{n}' for n in names if n.lower().endswith(IMAGE_EXTENSIONS))
  if not files:
    raise UserError(f'{spec}: no images ({", ".join(IMAGE_EXTENSIONS[:6])}, ...) found under '
                    f'{path!r}: put images there or point the source at another folder')
  return sorted(files)


def _tfds_builder(name: str, data_dir: str | None, spec: str):
  if not name:
    raise UserError(f'{spec}: no dataset name: use tfds:NAME[:SPLIT]')
  try:
    return tfds.builder(name, data_dir=data_dir)
  except Exception as e:  # DatasetNotFoundError, bad config names, ... pylint: disable=broad-except
    raise UserError(f'{spec}: unknown TFDS dataset {name!r} ({_first_line(e)}): check the name '
                    'at https://www.tensorflow.org/datasets/catalog') from e


def _check_tfds_split(builder, split: str, spec: str) -> None:
  """Checks the split against the prepared dataset's splits (slicing syntax allowed).

  Split names are only known once a dataset is prepared (and under tfds mocking any split is
  accepted); an unprepared dataset gets its clear error when its elements are first read.
  """
  splits = builder.info.splits
  if not splits:
    return
  try:
    splits[split]  # accepts slicing syntax such as train[:80%]
  except Exception as e:  # pylint: disable=broad-except
    raise UserError(f'{spec}: TFDS dataset {builder.info.full_name} has no split {split!r}; '
                    f'its splits are {", ".join(sorted(splits))}') from e


def _image_feature_key(builder, spec: str) -> str:
  features = builder.info.features
  if 'image' in features and isinstance(features['image'], tfds.features.Image):
    return 'image'
  for key, feature in features.items():
    if isinstance(feature, tfds.features.Image):
      return key
  raise UserError(f'{spec}: TFDS dataset {builder.info.full_name} has no image feature')


# ----------------------------------------------------------------------------------------------
# Decoding (PIL): every supported kind of file becomes uint8 RGB, every bad one a skip.
# ----------------------------------------------------------------------------------------------


class BadFileLog:
  """Counts distinct bad files (thread-safe) and warns once per file, naming it."""

  def __init__(self):
    self._lock = threading.Lock()
    self._bad: dict[str, set[str]] = {}

  def record(self, stream: str, name: str, reason: str) -> int:
    """Records one bad file of `stream`; returns the stream's distinct bad-file count."""
    with self._lock:
      seen = self._bad.setdefault(stream, set())
      new = name not in seen
      seen.add(name)
      count = len(seen)
    if new:
      logging.warning('Skipping bad image %s: %s (%d bad in %s so far)', name, reason, count,
                      stream)
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


def to_rgb(im: Image.Image) -> Image.Image:
  """Converts any PIL mode to RGB: alpha is composited on white, 16-bit/float scaled to 8 bits.

  Args:
    im: a loaded PIL image of any mode (1, L, P, RGBA, LA, PA, CMYK, YCbCr, I;16, I, F, ...).

  Returns:
    A PIL image in mode 'RGB'.
  """
  mode = im.mode
  if mode == 'RGB':
    return im
  if mode.startswith('I') or mode == 'F':
    arr = np.asarray(im).astype(np.float64)
    if mode == 'F':
      arr = arr * 255.0 if arr.size and arr.max() <= 1.0 else arr
    elif mode.startswith('I;16') or (arr.size and arr.max() > 255):
      arr = arr / 257.0  # 16-bit -> 8-bit
    arr = np.clip(np.round(arr), 0, 255).astype(np.uint8)
    if arr.ndim == 3:
      arr = arr[..., :3]
    return Image.fromarray(arr).convert('RGB')
  if mode in ('RGBA', 'LA', 'PA', 'La', 'RGBa') or (mode == 'P' and 'transparency' in im.info):
    rgba = im.convert('RGBA')
    background = Image.new('RGBA', rgba.size, (255, 255, 255, 255))
    return Image.alpha_composite(background, rgba).convert('RGB')
  return im.convert('RGB')


class _BadImage(Exception):
  pass


def decode_image(data: bytes, *, load_size: int, max_pixels: int) -> np.ndarray:
  """Decodes encoded image bytes to uint8 RGB with the shorter side resized to load_size.

  EXIF orientation is applied; any mode becomes RGB (see `to_rgb`); small images are upscaled.

  Args:
    data: the encoded file contents.
    load_size: the shorter side of the result, in pixels.
    max_pixels: images with more pixels than this are refused before decoding.

  Returns:
    uint8 [H, W, 3] with min(H, W) == load_size.

  Raises:
    _BadImage or any PIL/OS error for unreadable, truncated or oversized images.
  """
  im = Image.open(io.BytesIO(data))
  w, h = im.size
  if w <= 0 or h <= 0:
    raise _BadImage(f'empty image {w}x{h}')
  if w * h > max_pixels:
    raise _BadImage(f'{w}x{h} = {w * h} pixels exceeds data.max_image_pixels={max_pixels}')
  scale = load_size / min(w, h)
  if scale < 1 and im.format == 'JPEG':
    # Decode at a reduced DCT scale (never below the target size): faster, less memory.
    im.draft('RGB', (max(1, int(w * scale)), max(1, int(h * scale))))
  im.load()
  im = ImageOps.exif_transpose(im)
  im = to_rgb(im)
  w, h = im.size
  if min(w, h) != load_size:
    scale = load_size / min(w, h)
    size = (max(load_size, round(w * scale)), max(load_size, round(h * scale)))
    im = im.resize(size, Image.Resampling.BICUBIC)
  arr = np.asarray(im, dtype=np.uint8)
  if arr.ndim != 3 or arr.shape[2] != 3:
    raise _BadImage(f'unexpected decoded shape {arr.shape}')
  return arr


def _decode_element(data: bytes, *, is_path: bool, load_size: int,
                    max_pixels: int) -> np.ndarray:
  """Reads (if a path) and decodes one element to uint8 RGB, shorter side load_size."""
  if is_path:
    with tf.io.gfile.GFile(data.decode('utf-8'), 'rb') as f:
      data = f.read()
  return decode_image(data, load_size=load_size, max_pixels=max_pixels)


# ----------------------------------------------------------------------------------------------
# Streams.
# ----------------------------------------------------------------------------------------------


def _stream_seed(seed: int, key: str) -> int:
  """A stable 31-bit seed per (run seed, batch key): streams of one source still differ."""
  return zlib.crc32(f'{int(seed)}/{key}'.encode()) & 0x7FFFFFFF


def _augment_train(image: np.ndarray, index: int, stream_seed: int, image_size: int
                   ) -> np.ndarray:
  """Random crop + horizontal flip keyed on (stream seed, element index) -> float32 [-1, 1]."""
  rng = np.random.default_rng((stream_seed, int(index)))
  h, w = image.shape[:2]
  top = int(rng.integers(0, h - image_size + 1))
  left = int(rng.integers(0, w - image_size + 1))
  crop = image[top:top + image_size, left:left + image_size]
  if rng.random() < 0.5:
    crop = crop[:, ::-1]
  return crop.astype(np.float32) / 127.5 - 1.0


def center_crop(image: np.ndarray, size: int) -> np.ndarray:
  """Centre square crop of an HWC array to size x size (H, W >= size)."""
  h, w = image.shape[:2]
  top, left = (h - size) // 2, (w - size) // 2
  return image[top:top + size, left:left + size]


def _train_dataset(elements: _Elements, *, stream_seed: int, position: int,
                   shuffle_buffer: int, prefetch: int) -> tf.data.Dataset:
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
    return base.shuffle(buffer, seed=tf.constant(stream_seed, tf.int64) * 1_000_003 + e,
                        reshuffle_each_iteration=False)

  ds = tf.data.Dataset.range(start_epoch, _INFINITE_EPOCHS).flat_map(epoch)
  ds = ds.enumerate(start=start_epoch * n).skip(offset)
  return ds.prefetch(prefetch)


class _Stream:
  """One batch key's endless stream: undecoded elements from tf.data, decoded in threads."""

  def __init__(self, key: str, elements: _Elements, *, stream_seed: int, position: int,
               local_batch: int, image_size: int, load_size: int, shuffle_buffer: int,
               max_pixels: int, bad_log: BadFileLog, pool: concurrent.futures.Executor):
    self.key, self.elements = key, elements
    self.name = f'{key} ({elements.description})'
    self.stream_seed, self.local_batch = stream_seed, local_batch
    self.image_size, self.load_size, self.max_pixels = image_size, load_size, max_pixels
    self.bad_log, self.pool = bad_log, pool
    self.position = int(position)
    self._it = _train_dataset(elements, stream_seed=stream_seed, position=position,
                              shuffle_buffer=shuffle_buffer,
                              prefetch=2 * local_batch).as_numpy_iterator()

  def _decode(self, item):
    index, ex = item
    name = ex['name'].decode('utf-8', 'replace')
    if self.bad_log.is_known_bad(self.name, name):
      return index, None
    try:
      image = _decode_element(ex['data'], is_path=self.elements.is_path,
                              load_size=self.load_size, max_pixels=self.max_pixels)
    except Exception as e:  # pylint: disable=broad-except
      self.bad_log.record(self.name, name, f'{type(e).__name__}: {_first_line(e)}')
      return index, None
    return index, _augment_train(image, index, self.stream_seed, self.image_size)

  def next_batch(self) -> np.ndarray:
    """float32 [local_batch, S, S, 3]; bad files are skipped (and counted)."""
    images: list[np.ndarray] = []
    while len(images) < self.local_batch:
      if self.bad_log.counts.get(self.name, 0) >= self.elements.size:
        raise UserError(f'{self.key}: all {self.elements.size} images of {self.elements.description} '
                        'are unreadable (see the warnings above): fix or replace the files')
      want = self.local_batch - len(images)
      items = [next(self._it) for _ in range(want)]
      for index, image in self.pool.map(self._decode, items):
        self.position = int(index) + 1
        if image is not None:
          images.append(image)
    return np.stack(images)


class TrainIterator:
  """Endless training batches with a checkpointable position.

  `next(it)` gives a dict of float32 [local_batch, H, W, 3] in [-1, 1] (adain_gan: content,
  style, real; cyclegan: A, B), local_batch = global_batch_size // process_count.
  `get_state()` / `set_state()` save and restore the stream position (JSON-serialisable).
  `bad_files` counts the distinct bad files skipped so far (`bad_file_counts` per stream).
  """

  def __init__(self, sources: dict[str, Source], elements: dict[str, _Elements], *,
               seed: int, local_batch: int, image_size: int, load_size: int,
               shuffle_buffer: int, max_pixels: int, process_count: int = 1):
    self._sources = sources
    self._process_count = process_count
    self._elements = elements
    self._seed = seed
    self._local_batch = local_batch
    self._image_size = image_size
    self._load_size = load_size
    self._shuffle_buffer = shuffle_buffer
    self._max_pixels = max_pixels
    self._bad_log = BadFileLog()
    self._positions = {k: 0 for k in sources}
    self._iterators: dict[str, _Stream] | None = None
    # PIL decodes and resizes without holding the GIL: threads give real parallelism.
    self._pool = concurrent.futures.ThreadPoolExecutor(max_workers=4,
                                                      thread_name_prefix='decode')

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
    return {key: _Stream(key, elements, stream_seed=_stream_seed(self._seed, key),
                         position=self._positions[key], local_batch=self._local_batch,
                         image_size=self._image_size, load_size=self._load_size,
                         shuffle_buffer=self._shuffle_buffer, max_pixels=self._max_pixels,
                         bad_log=self._bad_log, pool=self._pool)
            for key, elements in self._elements.items()}

  def __iter__(self) -> 'TrainIterator':
    return self

  def __next__(self) -> dict[str, np.ndarray]:
    if self._iterators is None:
      self._iterators = self._build()
    batch = {key: stream.next_batch() for key, stream in self._iterators.items()}
    self._positions.update({key: stream.position for key, stream in self._iterators.items()})
    return batch

  def get_state(self) -> dict[str, Any]:
    """The stream position, JSON-serialisable: {'positions': {key: elements consumed by this
    process}, 'process_count': n} (every process consumes the same number of its own shard)."""
    return {'positions': dict(self._positions), 'process_count': self._process_count}

  def set_state(self, state: dict[str, Any]) -> None:
    """Continues the stream exactly where `get_state` was taken (same config and seed).

    A state saved with another process count is re-sharded: each process starts its new shard
    at the same fraction of the data (positions x old count / new count), which keeps the
    epoch count and schedule but not the exact order of images.
    """
    positions = state['positions']
    if set(positions) != set(self._positions):
      raise UserError(f'the data-iterator state has streams {sorted(positions)} but this run '
                      f'reads {sorted(self._positions)}: the checkpoint is from another model')
    saved_count = int(state.get('process_count', self._process_count))
    if saved_count != self._process_count:
      logging.warning('Data position saved with %d process(es), resumed with %d: re-sharding '
                      'the stream at the same point of the data.', saved_count,
                      self._process_count)
      positions = {k: int(v) * saved_count // self._process_count for k, v in positions.items()}
    self._positions = {k: int(v) for k, v in positions.items()}
    self._iterators = None  # rebuilt lazily at the new position


def _check_sizes(config) -> tuple[int, int]:
  image_size = int(config.data.image_size)
  load_size = int(_data_field(config, 'load_size') or image_size)
  if image_size <= 0:
    raise UserError(f'data.image_size={image_size} must be positive')
  if load_size < image_size:
    raise UserError(f'data.load_size={load_size} is smaller than data.image_size={image_size}: '
                    'set load_size >= image_size')
  return image_size, load_size


def create_train_iterator(config, *, process_index: int | None = None,
                          process_count: int | None = None,
                          local_device_count: int | None = None) -> TrainIterator:
  """Validates the data config and returns this process's endless training iterator.

  Args:
    config: the run config; reads seed, model.name, data.{content, style, real, image_size,
      load_size, global_batch_size, shuffle_buffer, data_dir, max_image_pixels, synthetic_size,
      synthetic_train_size, synthetic_test_size}.
    process_index: this process; default jax.process_index().
    process_count: the number of processes; default jax.process_count().
    local_device_count: devices of this process; default jax.local_device_count().

  Returns:
    A `TrainIterator` yielding dicts of float32 [global_batch_size // process_count, image_size,
    image_size, 3] in [-1, 1].

  Raises:
    UserError: one line for a bad source (missing path, empty folder, unknown TFDS name or
      split), a batch size not divisible by the device count, or bad sizes.
  """
  if process_index is None or process_count is None or local_device_count is None:
    import jax  # pylint: disable=g-import-not-at-top
    process_index = jax.process_index() if process_index is None else process_index
    process_count = jax.process_count() if process_count is None else process_count
    local_device_count = (jax.local_device_count() if local_device_count is None
                          else local_device_count)
  global_batch = int(config.data.global_batch_size)
  devices = process_count * local_device_count
  if global_batch <= 0 or global_batch % devices:
    raise UserError(
        f'data.global_batch_size={global_batch} is not divisible by the {devices} devices '
        f'({process_count} process(es) x {local_device_count} local devices): use a multiple '
        f'of {devices}, e.g. {devices * max(1, global_batch // devices)}')
  image_size, load_size = _check_sizes(config)
  keys = batch_keys(config)
  seed = int(config.seed)
  sources = {key: Source(spec, config) for key, spec in keys.items()}
  elements = {
      key: src.elements(train=True, process_index=process_index, process_count=process_count,
                        seed=_stream_seed(seed, key))
      for key, src in sources.items()}
  return TrainIterator(
      sources, elements, seed=seed, local_batch=global_batch // process_count,
      image_size=image_size, load_size=load_size,
      shuffle_buffer=int(_data_field(config, 'shuffle_buffer')),
      max_pixels=int(_data_field(config, 'max_image_pixels')), process_count=process_count)


def load_eval_batch(config, num_images: int) -> dict[str, np.ndarray]:
  """Fixed held-out images, centre-cropped and deterministic, for samples and evaluation.

  Held-out sets: synthetic sources use their test split, tfds sources the split they name,
  folders their first files in sorted order. Bad files are skipped (and logged); a set with fewer
  good images than num_images is cycled.

  Args:
    config: the run config (as for `create_train_iterator`).
    num_images: images per key.

  Returns:
    Same keys as training batches, float32 [num_images, image_size, image_size, 3] in [-1, 1];
    plus 'target' = painting(content) (the known answer, same shape and range) when the content
    source (cyclegan: A) is synthetic:photo.
  """
  return load_eval_data(config, num_images)[0]


def load_eval_data(config, num_images: int) -> tuple[dict[str, np.ndarray], dict[str, str]]:
  """`load_eval_batch` and, per key, the source and split the images came from."""
  from ganstyle_jax.data import synthetic  # pylint: disable=g-import-not-at-top
  image_size, load_size = _check_sizes(config)
  max_pixels = int(_data_field(config, 'max_image_pixels'))
  bad_log = BadFileLog()
  batch = {}
  splits = {}
  target_key = None
  for key, spec in batch_keys(config).items():
    source = Source(spec, config)
    splits[key] = f'{spec} ({source.heldout_split})'
    if source.is_synthetic_photo and key in ('content', 'A'):
      target_key = key
    elements = source.elements(train=False)
    images = []
    for ex in elements.dataset.as_numpy_iterator():
      name = ex['name'].decode('utf-8', 'replace')
      try:
        image = _decode_element(ex['data'], is_path=elements.is_path, load_size=load_size,
                                max_pixels=max_pixels)
      except Exception as e:  # pylint: disable=broad-except
        bad_log.record(key, name, f'{type(e).__name__}: {_first_line(e)}')
        continue
      images.append(center_crop(image, image_size))
      if len(images) == num_images:
        break
    if not images:
      raise UserError(f'{spec}: no readable held-out images for {key!r}')
    if len(images) < num_images:
      logging.warning('%s: only %d held-out images for %r; cycling them to %d', spec,
                      len(images), key, num_images)
      images = [images[i % len(images)] for i in range(num_images)]
    batch[key] = np.stack(images).astype(np.float32) / 127.5 - 1.0
  if target_key is not None:
    batch['target'] = synthetic.painting_signed(batch[target_key]).astype(np.float32)
  return batch, splits


class DevicePrefetcher:
  """Reads, decodes and transfers the next `size` batches in a background thread.

  `put` turns a host batch into device arrays (e.g. `ParallelStep.prepare_batch`). Each item is
  `(device_batch, data_state)`, where data_state is the iterator's position right after that
  batch: a checkpoint saved after training on it resumes with the batch that follows, however
  far ahead the thread has read. Errors in the thread (e.g. a source with no readable image)
  are raised by `next()`. size=0 reads synchronously in the caller's thread.
  """

  def __init__(self, iterator: TrainIterator, put, size: int = 2):
    self._iterator, self._put, self._size = iterator, put, size
    self._queue: queue.Queue = queue.Queue(maxsize=max(size, 1))
    self._stop = threading.Event()
    self._thread = None
    if size > 0:
      self._thread = threading.Thread(target=self._run, name='prefetch', daemon=True)
      self._thread.start()

  def _produce(self):
    batch = self._put(next(self._iterator))
    return batch, self._iterator.get_state()

  def _run(self) -> None:
    while not self._stop.is_set():
      try:
        item = (self._produce(), None)
      except BaseException as e:  # handed to the consumer, which re-raises it
        item = (None, e)
      while not self._stop.is_set():
        try:
          self._queue.put(item, timeout=0.1)
          break
        except queue.Full:
          continue
      if item[1] is not None:
        return

  def __iter__(self) -> 'DevicePrefetcher':
    return self

  def __next__(self):
    if self._thread is None:
      return self._produce()
    item, error = self._queue.get()
    if error is not None:
      raise error
    return item

  def close(self) -> None:
    """Stops the thread; batches read ahead are dropped (the saved position excludes them)."""
    self._stop.set()
    if self._thread is not None:
      self._thread.join()
