"""Data source strings, parsed and checked before training; their undecoded elements.

Sources (config strings, see DESIGN.md):
  `tfds:NAME[:SPLIT]`   any TFDS image dataset (split default 'train'; data.data_dir is the TFDS
                        data_dir), e.g. `tfds:cycle_gan/monet2photo:trainB`;
  `folder:PATH`         images found recursively under PATH (local or any tf.io.gfile path such as
                        gs://); PATH may also be a single image file;
  `synthetic:photo`, `synthetic:painting` [`:train`|`:test`]  the embedded dataset
                        (ganstyle_jax/data/synthetic.py), built into the TFDS data_dir on first use;
                        with data.synthetic_styles = N > 1 train painting i is in style i % N and
                        the test split in held-out styles (1000 + i) never seen in training;
  `synthetic:known_answer`  not a source but a derived batch key a family may ask for: the
                        known answer painting_k(content) of each training pair, k = the style of
                        the pair's style image (input_pipeline; needs synthetic photo content and
                        synthetic painting style).
  `synthetic:same_style`  data.real only (adain_gan with loss.adv_condition='style'): synthetic
                        photos drawn independently of the content (their own shuffle; held out:
                        the next scene's), each painted in the style of the batch's style image
                        at its position: real (painting, style image) pairs of one style for a
                        style-conditioned D (input_pipeline; needs synthetic painting style).

Elements stay undecoded (encoded bytes or file paths) so that shuffling and skipping to a
resume position cost nothing; data/stream.py decodes them. Every element also carries its
painting style index ('style': synthetic sources; -1 where unknown), so a derived known answer
travels with the image through shuffling and resume. `paired_folder_elements` matches two
folders by file stem into elements holding both files (the paired families' aligned streams).
"""

from __future__ import annotations

import dataclasses
import os

from absl import logging
import numpy as np

from ganstyle_jax.data import KNOWN_ANSWER, SAME_STYLE
from ganstyle_jax.data.decode import IMAGE_EXTENSIONS
from ganstyle_jax.data.tf_quiet import tf, tfds
from ganstyle_jax.errors import UserError

UNKNOWN_STYLE = -1  # the 'style' of an element whose painting style is not known


def first_line(e: BaseException) -> str:
  """The first line of an exception's message (its type name if empty), for one-line errors."""
  text = str(e).strip()
  return text.splitlines()[0] if text else type(e).__name__


@dataclasses.dataclass
class Elements:
  """Undecoded elements of one source: {'data': bytes or path, 'name': str, 'style': int32}
  and their count; paired elements also hold 'data_b' (the second image of the pair)."""

  dataset: tf.data.Dataset
  size: int
  is_path: bool  # 'data' holds a file path (read at decode time) rather than encoded bytes
  description: str
  paired: bool = False  # 'data_b' holds the aligned second image (a path when is_path)

  def encoded(self, data: bytes) -> bytes:
    """The encoded image file of one element's 'data' (a path is read, local or gs://)."""
    if not self.is_path:
      return data
    with tf.io.gfile.GFile(data.decode("utf-8"), "rb") as f:
      return f.read()


class Source:
  """One parsed and validated source string (tfds:..., folder:..., synthetic:...).

  Construction checks everything that can be checked before training (the path exists and holds
  images, the TFDS name and split exist and are prepared) and raises UserError otherwise.
  Reads config.data.{data_dir, synthetic_size, synthetic_train_size, synthetic_test_size,
  synthetic_styles}; `styles` overrides data.synthetic_styles (the synthetic painting styles).
  """

  def __init__(self, spec: str, config, *, styles: int | None = None):
    if not isinstance(spec, str) or ":" not in spec:
      raise UserError(
        f"data source {spec!r} is not understood: use tfds:NAME[:SPLIT], "
        "folder:PATH or synthetic:photo|painting"
      )
    self.spec = spec
    self.kind, rest = spec.split(":", 1)
    self._data_dir = config.data.data_dir or None
    self.domain = None
    self.styles = 1
    if self.kind == "folder":
      self.root = rest
      self._files = _list_images(rest, spec)
    elif self.kind == "tfds":
      name, _, split = rest.partition(":")
      self._builder = _tfds_builder(name, self._data_dir, spec)
      self._split = split or "train"
      _check_tfds_split(self._builder, self._split, spec)
      self._eval_split = self._split
      self._image_key = _image_feature_key(self._builder, spec)
    elif self.kind == "synthetic":
      domain, _, split = rest.partition(":")
      from ganstyle_jax.data import synthetic  # pylint: disable=g-import-not-at-top

      if spec in (KNOWN_ANSWER, SAME_STYLE):
        raise UserError(
          f"{spec} is not an image source: it names images a family derives from "
          "synthetic photos and the style images' styles (see config_base.py)"
        )
      if domain not in synthetic.DOMAINS or split not in ("", "train", "test"):
        raise UserError(
          f"data source {spec!r} is unknown: use synthetic:photo or "
          "synthetic:painting (optionally :train or :test)"
        )
      self.domain = domain
      self.styles = synthetic_styles(config) if styles is None else int(styles)
      self._builder = synthetic.get_builder(
        size=int(config.data.synthetic_size),
        num_train=int(config.data.synthetic_train_size),
        num_test=int(config.data.synthetic_test_size),
        data_dir=self._data_dir or synthetic.default_data_dir(),
        styles=self.styles,
      )
      self._split = f"{split or 'train'}_{domain}"
      self._eval_split = f"test_{domain}"
      self._image_key = "image"
    else:
      raise UserError(
        f"data source {spec!r} has an unknown kind {self.kind!r}: use "
        "tfds:NAME[:SPLIT], folder:PATH or synthetic:photo|painting"
      )

  @property
  def heldout_split(self) -> str:
    """The split `load_eval_batch` reads: synthetic test split, the named tfds split, or folder."""
    return "all files, sorted" if self.kind == "folder" else self._eval_split

  @property
  def is_synthetic_photo(self) -> bool:
    return self.kind == "synthetic" and self.domain == "photo"

  @property
  def is_synthetic_painting(self) -> bool:
    return self.kind == "synthetic" and self.domain == "painting"

  @property
  def files(self) -> list[str]:
    """A folder source's image files, sorted."""
    return list(self._files)

  def elements(
    self, *, train: bool, process_index: int = 0, process_count: int = 1, seed: int = 0
  ) -> Elements:
    """This process's shard (train) or the whole held-out set in a fixed order (eval)."""
    if self.kind == "folder":
      files = self._files
      if train:
        files = files[process_index::process_count]
        if not files:
          raise UserError(
            f"{self.spec}: {len(self._files)} images cannot be shared among "
            f"{process_count} processes: add images or use fewer hosts"
          )
      ds = tf.data.Dataset.from_tensor_slices(
        {"data": files, "name": files, "style": np.full(len(files), UNKNOWN_STYLE, np.int32)}
      )
      return Elements(ds, len(files), True, self.spec)

    split = self._split if train else self._eval_split
    # try_autocache off for eval: it reads only the first few examples.
    read_config = tfds.ReadConfig(
      add_tfds_id=True,
      shuffle_seed=seed,
      shuffle_reshuffle_each_iteration=False,
      try_autocache=train,
    )
    try:
      if train and process_count > 1:
        split = tfds.split_for_jax_process(
          split, process_index=process_index, process_count=process_count
        )
      # Every image feature stays encoded (only the one read is decoded, later, on the host).
      features = self._builder.info.features
      decoders = {
        k: tfds.decode.SkipDecoding()
        for k in features
        if isinstance(features[k], tfds.features.Image)
      }
      ds = self._builder.as_dataset(
        split=split, shuffle_files=train, read_config=read_config, decoders=decoders
      )
    except Exception as e:  # pylint: disable=broad-except
      builder = self._builder
      if not builder.is_prepared():
        root = builder.data_dir_root
        raise UserError(
          f"{self.spec}: TFDS dataset {builder.info.full_name} is not prepared in data_dir "
          f"{root}: run `tfds build {builder.name} --data_dir={root}` where there is network, "
          "or set data.data_dir"
        ) from e
      raise UserError(f"{self.spec}: cannot read split {split!r}: {first_line(e)}") from e
    key = self._image_key
    if self.kind == "synthetic" and "style" in self._builder.info.features:
      style_of = lambda ex: tf.cast(ex["style"], tf.int32)
    else:  # single-style synthetic data is all style 0; other sources have no known style
      default = 0 if self.kind == "synthetic" else UNKNOWN_STYLE
      style_of = lambda ex: tf.constant(default, tf.int32)
    ds = ds.map(
      lambda ex: {
        "data": ex[key],
        "name": ex.get("tfds_id", tf.constant(self.spec)),
        "style": style_of(ex),
      }
    )
    size = int(ds.cardinality())
    if size < 0:  # unknown cardinality: count once (raw records, nothing decoded)
      size = int(ds.reduce(np.int64(0), lambda n, _: n + 1))
    if size == 0:
      raise UserError(f"{self.spec}: split {split!r} holds no examples for this process")
    return Elements(ds, size, False, self.spec)


def synthetic_styles(config) -> int:
  """data.synthetic_styles, checked: the train painting styles of the synthetic sources."""
  from ganstyle_jax.data import synthetic  # pylint: disable=g-import-not-at-top

  n = config.data.get("synthetic_styles", 1)
  if isinstance(n, bool) or int(n) != n or not 1 <= int(n) <= synthetic.MAX_TRAIN_STYLES:
    raise UserError(
      f"data.synthetic_styles={n!r} must be an integer in "
      f"1..{synthetic.MAX_TRAIN_STYLES} (1 = the single-style benchmark)"
    )
  return int(n)


def file_stem(path: str, root: str) -> str:
  """A file's path relative to `root` without its extension (a single file: its base name)."""
  root = root.rstrip("/")
  rel = path[len(root) + 1 :] if path.startswith(root + "/") else os.path.basename(path)
  return os.path.splitext(rel)[0]


def match_by_stem(a: Source, b: Source) -> list[tuple[str, str, str]]:
  """(stem, file of a, file of b) for every stem both folder sources hold, sorted by stem.

  Files without a partner (and extra files of a stem already taken, e.g. x.png beside x.jpg)
  are listed in one warning; no match at all is a one-line UserError.
  """

  def by_stem(src: Source) -> tuple[dict[str, str], list[str]]:
    out, extra = {}, []
    for f in src.files:
      stem = file_stem(f, src.root)
      if stem in out:
        extra.append(f)
      else:
        out[stem] = f
    return out, extra

  files_a, extra_a = by_stem(a)
  files_b, extra_b = by_stem(b)
  stems = sorted(set(files_a) & set(files_b))
  if not stems:
    raise UserError(
      f"{a.spec} and {b.spec}: no file stem is in both folders ({len(files_a)} "
      f"and {len(files_b)} images): pairs are matched by relative path without "
      "extension, e.g. A/x.png with B/x.jpg"
    )
  unmatched = (
    [files_a[s] for s in sorted(set(files_a) - set(files_b))]
    + extra_a
    + [files_b[s] for s in sorted(set(files_b) - set(files_a))]
    + extra_b
  )
  if unmatched:
    logging.warning(
      "Paired folders %s and %s: %d file(s) without a partner of the same stem are not used: %s",
      a.spec,
      b.spec,
      len(unmatched),
      ", ".join(unmatched),
    )
  return [(s, files_a[s], files_b[s]) for s in stems]


def paired_folder_elements(
  a: Source, b: Source, *, train: bool, process_index: int = 0, process_count: int = 1
) -> Elements:
  """Aligned pairs of two folder sources matched by file stem: {'data': file of a, 'data_b':
  file of b, 'name': stem, 'style': -1}; train: this process's shard, eval: sorted by stem."""
  pairs = match_by_stem(a, b)
  total = len(pairs)
  if train:
    pairs = pairs[process_index::process_count]
    if not pairs:
      raise UserError(
        f"{a.spec} + {b.spec}: {total} pairs cannot be shared among "
        f"{process_count} processes: add pairs or use fewer hosts"
      )
  stems, files_a, files_b = (list(x) for x in zip(*pairs))
  ds = tf.data.Dataset.from_tensor_slices(
    {
      "data": files_a,
      "data_b": files_b,
      "name": stems,
      "style": np.full(len(pairs), UNKNOWN_STYLE, np.int32),
    }
  )
  return Elements(ds, len(pairs), True, f"{a.spec} + {b.spec}", paired=True)


def _list_images(path: str, spec: str) -> list[str]:
  """Sorted image files under `path` (recursive), local or any tf.io.gfile path."""
  if not path:
    raise UserError(f"{spec}: empty folder path: use folder:/path/to/images")
  if not tf.io.gfile.exists(path):
    raise UserError(f"{spec}: path {path!r} does not exist: check data.content/style/real")
  if not tf.io.gfile.isdir(path):
    if path.lower().endswith(IMAGE_EXTENSIONS):
      return [path]
    raise UserError(f"{spec}: {path!r} is neither a folder nor an image file")
  files = []
  for root, _, names in tf.io.gfile.walk(path):
    files.extend(f"{root.rstrip('/')}/{n}" for n in names if n.lower().endswith(IMAGE_EXTENSIONS))
  if not files:
    raise UserError(
      f"{spec}: no images ({', '.join(IMAGE_EXTENSIONS[:6])}, ...) found under "
      f"{path!r}: put images there or point the source at another folder"
    )
  return sorted(files)


def _tfds_builder(name: str, data_dir: str | None, spec: str):
  if not name:
    raise UserError(f"{spec}: no dataset name: use tfds:NAME[:SPLIT]")
  try:
    return tfds.builder(name, data_dir=data_dir)
  except Exception as e:  # DatasetNotFoundError, bad config names, ... pylint: disable=broad-except
    raise UserError(
      f"{spec}: unknown TFDS dataset {name!r} ({first_line(e)}): check the name "
      "at https://www.tensorflow.org/datasets/catalog"
    ) from e


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
    raise UserError(
      f"{spec}: TFDS dataset {builder.info.full_name} has no split {split!r}; "
      f"its splits are {', '.join(sorted(splits))}"
    ) from e


def _image_feature_key(builder, spec: str) -> str:
  features = builder.info.features
  if "image" in features and isinstance(features["image"], tfds.features.Image):
    return "image"
  for key, feature in features.items():
    if isinstance(feature, tfds.features.Image):
      return key
  raise UserError(f"{spec}: TFDS dataset {builder.info.full_name} has no image feature")
