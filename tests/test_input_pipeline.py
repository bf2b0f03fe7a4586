"""Tests for the input pipeline: TFDS (mocked), folders with bad files, synthetic data,
determinism, resume, per-process shards and the clear errors raised before training."""

import io
import json
import logging
import struct
import zlib

import numpy as np
from PIL import Image
import pytest
import tensorflow_datasets as tfds

from ganstyle_jax import input_pipeline
from ganstyle_jax.config_base import base_config
from ganstyle_jax.data import stream, synthetic
from ganstyle_jax.data.sources import Source
from ganstyle_jax.errors import UserError

SYN = dict(synthetic_size=32, synthetic_train_size=24, synthetic_test_size=6)


@pytest.fixture(scope="module")
def syn_dir(tmp_path_factory):
  path = tmp_path_factory.mktemp("tfds")
  synthetic.get_builder(size=32, num_train=24, num_test=6, data_dir=str(path))
  return str(path)


def make_config(
  model="adain_gan",
  content="synthetic:photo",
  style="synthetic:painting",
  real="synthetic:painting",
  **data,
):
  config = base_config(model)
  config.data.update(
    dict(
      content=content,
      style=style,
      real=real,
      image_size=16,
      load_size=20,
      global_batch_size=8,
      shuffle_buffer=16,
      **SYN,
    )
  )
  config.data.update(data)
  return config


def take(it, n):
  return [next(it) for _ in range(n)]


def assert_batches_equal(a, b):
  assert len(a) == len(b)
  for x, y in zip(a, b):
    assert x.keys() == y.keys()
    for k in x:
      np.testing.assert_array_equal(x[k], y[k])


# ----------------------------------------------------------------------------------------------
# Image files, good and bad.
# ----------------------------------------------------------------------------------------------


def _png_bytes(im):
  buf = io.BytesIO()
  im.save(buf, format="PNG")
  return buf.getvalue()


def _huge_png_header(w, h):
  """A PNG that claims w x h pixels but holds no pixel data (decoding it would need GBs)."""

  def chunk(kind, data):
    return (
      struct.pack(">I", len(data))
      + kind
      + data
      + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    )

  ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
  return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IEND", b"")


def write_image_zoo(folder):
  """Every kind of file the pipeline must handle. Returns (good names, bad names)."""
  rng = np.random.default_rng(0)
  (folder / "sub" / "deeper").mkdir(parents=True)
  rgb = Image.fromarray(rng.integers(0, 255, (24, 30, 3), dtype=np.uint8))
  rgb.save(folder / "rgb.png")
  rgb.save(folder / "sub" / "rgb.JPG", format="JPEG")
  rgb.save(folder / "sub" / "deeper" / "rgb.bmp")
  rgb.save(folder / "rgb.webp")
  Image.new("L", (20, 20), 100).save(folder / "gray.png")
  Image.new("RGBA", (20, 20), (10, 20, 30, 0)).save(folder / "rgba.png")
  pal = Image.new("P", (20, 20), 0)
  pal.putpalette([200, 10, 10] * 256)
  pal.save(folder / "palette.png", transparency=1)
  Image.new("CMYK", (20, 20), (0, 0, 0, 0)).save(folder / "cmyk.jpg")
  Image.fromarray(np.full((20, 20), 65535, np.uint16)).save(folder / "gray16.png")
  exif = Image.Exif()
  exif[0x0112] = 6  # rotate 90 degrees clockwise when displayed
  Image.new("RGB", (40, 20), (0, 200, 0)).save(folder / "exif.jpg", exif=exif)
  Image.new("RGB", (5, 5), (0, 0, 255)).save(folder / "tiny.png")
  (folder / "notes.txt").write_text("not an image")
  good = [
    "rgb.png",
    "rgb.JPG",
    "rgb.bmp",
    "rgb.webp",
    "gray.png",
    "rgba.png",
    "palette.png",
    "cmyk.jpg",
    "gray16.png",
    "exif.jpg",
    "tiny.png",
  ]
  # Bad files: truncated, garbage, empty, absurdly large.
  jpg = io.BytesIO()
  rgb.save(jpg, format="JPEG")
  (folder / "truncated.jpg").write_bytes(jpg.getvalue()[: len(jpg.getvalue()) // 2])
  (folder / "sub" / "corrupt.png").write_bytes(rng.bytes(300))
  (folder / "empty.jpg").write_bytes(b"")
  (folder / "huge.png").write_bytes(_huge_png_header(9000, 9000))  # 81 Mpx > 8192^2
  bad = ["truncated.jpg", "corrupt.png", "empty.jpg", "huge.png"]
  return good, bad


def test_decode_converts_every_mode_to_rgb(tmp_path):
  write_image_zoo(tmp_path)

  def dec(name, load_size=16):
    return stream.load_image(
      (tmp_path / name).read_bytes(),
      load_size=load_size,
      max_pixels=base_config().data.max_image_pixels,
    )

  for name in ["gray.png", "rgba.png", "palette.png", "cmyk.jpg", "gray16.png", "tiny.png"]:
    out = dec(name)
    assert out.shape == (16, 16, 3) and out.dtype == np.uint8, name
  np.testing.assert_array_equal(dec("gray.png")[0, 0], [100, 100, 100])
  np.testing.assert_array_equal(dec("rgba.png")[0, 0], [255, 255, 255])  # alpha 0 -> white
  np.testing.assert_array_equal(dec("palette.png")[0, 0], [200, 10, 10])
  np.testing.assert_array_equal(dec("gray16.png")[0, 0], [255, 255, 255])  # 16-bit max -> 255
  np.testing.assert_array_equal(dec("cmyk.jpg")[0, 0], [255, 255, 255])
  np.testing.assert_array_equal(dec("tiny.png")[8, 8], [0, 0, 255])  # upscaled 5 -> 16
  assert dec("exif.jpg").shape == (32, 16, 3)  # 40x20 rotated by EXIF -> portrait
  assert dec("rgb.png").shape == (16, 20, 3)  # shorter side to load_size
  with pytest.raises(Exception, match="max_image_pixels"):
    dec("huge.png")
  for name in ["truncated.jpg", "sub/corrupt.png", "empty.jpg"]:
    with pytest.raises(Exception):
      dec(name)


def test_folder_with_bad_files_is_skipped_counted_and_named(tmp_path, caplog):
  good, bad = write_image_zoo(tmp_path)
  config = make_config(
    "cyclegan",
    content=f"folder:{tmp_path}",
    style=f"folder:{tmp_path}",
    global_batch_size=8,
    image_size=16,
    load_size=16,
  )
  it = input_pipeline.create_train_iterator(
    config, process_index=0, process_count=1, local_device_count=8
  )
  assert it.epoch_sizes == {"A": len(good) + len(bad), "B": len(good) + len(bad)}
  with caplog.at_level(logging.WARNING):
    batches = take(it, 6)  # > 2 epochs of each stream
  for b in batches:
    assert set(b) == {"A", "B"}
    for x in b.values():
      assert x.shape == (8, 16, 16, 3) and x.dtype == np.float32
      assert -1.0 <= x.min() and x.max() <= 1.0
  assert it.bad_files == 2 * len(bad)  # distinct bad files, per stream
  assert it.bad_file_counts == {k: len(bad) for k in it.bad_file_counts}
  for name in bad:
    assert any(name in r.getMessage() for r in caplog.records), name
  # Warned once per file, not once per epoch.
  assert sum("truncated.jpg" in r.getMessage() for r in caplog.records) == 2


def test_all_bad_files_is_a_clear_error_not_a_hang(tmp_path):
  (tmp_path / "a.png").write_bytes(b"garbage")
  (tmp_path / "b.jpg").write_bytes(b"")
  config = make_config("cyclegan", content=f"folder:{tmp_path}", style=f"folder:{tmp_path}")
  it = input_pipeline.create_train_iterator(
    config, process_index=0, process_count=1, local_device_count=1
  )
  with pytest.raises(UserError, match="unreadable"):
    next(it)


# ----------------------------------------------------------------------------------------------
# TFDS.
# ----------------------------------------------------------------------------------------------


def test_tfds_cycle_gan_under_mock_data():
  config = make_config(
    "cyclegan",
    content="tfds:cycle_gan/monet2photo:trainA",
    style="tfds:cycle_gan/monet2photo:trainB",
    data_dir="/tmp/no-such-dir",
  )
  with tfds.testing.mock_data(num_examples=12):
    it = input_pipeline.create_train_iterator(
      config, process_index=0, process_count=1, local_device_count=8
    )
    batches = take(it, 3)
    eval_batch = input_pipeline.load_eval_batch(config, 4)
  for b in batches:
    assert set(b) == {"A", "B"}
    for x in b.values():
      assert x.shape == (8, 16, 16, 3) and x.dtype == np.float32
      assert -1.0 <= x.min() and x.max() <= 1.0
  assert set(eval_batch) == {"A", "B"}
  assert eval_batch["A"].shape == (4, 16, 16, 3)
  assert it.bad_files == 0


def test_synthetic_adain_batches_and_eval_target(syn_dir):
  config = make_config(data_dir=syn_dir)
  it = input_pipeline.create_train_iterator(
    config, process_index=0, process_count=1, local_device_count=8
  )
  b = next(it)
  assert set(b) == {"content", "style", "real"}
  for x in b.values():
    assert x.shape == (8, 16, 16, 3) and x.dtype == np.float32
  # style and real read the same source through differently seeded streams.
  assert not np.array_equal(b["style"], b["real"])
  ev = input_pipeline.load_eval_batch(config, 5)
  assert set(ev) == {"content", "style", "real", "target"}
  assert ev["content"].shape == ev["target"].shape == (5, 16, 16, 3)
  np.testing.assert_allclose(ev["target"], synthetic.painting_signed(ev["content"]), atol=1e-6)
  # Deterministic: fixed held-out images, centre-cropped.
  assert_batches_equal([ev], [input_pipeline.load_eval_batch(config, 5)])
  # Fewer held-out images than asked: cycled to the requested count.
  assert input_pipeline.load_eval_batch(config, 9)["content"].shape[0] == 9


def test_same_seed_same_batches_and_other_seed_differs(syn_dir):
  config = make_config(data_dir=syn_dir)
  kw = dict(process_index=0, process_count=1, local_device_count=8)
  a = take(input_pipeline.create_train_iterator(config, **kw), 5)  # > 1 epoch (24 per epoch)
  b = take(input_pipeline.create_train_iterator(config, **kw), 5)
  assert_batches_equal(a, b)
  config.seed = 1
  c = take(input_pipeline.create_train_iterator(config, **kw), 1)
  assert not np.array_equal(a[0]["content"], c[0]["content"])


def test_resume_continues_the_stream(syn_dir, tmp_path):
  good, _ = write_image_zoo(tmp_path)
  del good
  # A folder with bad files too: positions count raw elements, so skipped files stay skipped.
  config = make_config(data_dir=syn_dir, real=f"folder:{tmp_path}")
  kw = dict(process_index=0, process_count=1, local_device_count=8)
  full = take(input_pipeline.create_train_iterator(config, **kw), 8)
  it = input_pipeline.create_train_iterator(config, **kw)
  take(it, 5)
  state = json.loads(json.dumps(it.get_state()))
  resumed = input_pipeline.create_train_iterator(config, **kw)
  resumed.set_state(state)
  assert_batches_equal(take(resumed, 3), full[5:])
  # set_state on a used iterator rewinds it too.
  it.set_state({"positions": {"content": 0, "style": 0, "real": 0}})
  assert_batches_equal(take(it, 2), full[:2])


def test_processes_read_disjoint_shards(syn_dir, tmp_path):
  good, bad = write_image_zoo(tmp_path)
  for spec, total in [
    (f"folder:{tmp_path}", len(good) + len(bad)),
    ("synthetic:photo", SYN["synthetic_train_size"]),
  ]:
    source = Source(spec, make_config(data_dir=syn_dir))
    names = []
    for p in range(3):
      el = source.elements(train=True, process_index=p, process_count=3)
      names.append({ex["name"] for ex in el.dataset.as_numpy_iterator()})
      assert len(names[-1]) == el.size > 0
    assert sum(len(n) for n in names) == total, spec
    assert len(set.union(*names)) == total, spec  # disjoint and complete
  # Each process gets global_batch // process_count images per batch.
  config = make_config(data_dir=syn_dir, global_batch_size=8)
  it = input_pipeline.create_train_iterator(
    config, process_index=1, process_count=2, local_device_count=4
  )
  assert next(it)["content"].shape == (4, 16, 16, 3)


# ----------------------------------------------------------------------------------------------
# Clear errors before training.
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
  "content, match",
  [
    ("folder:{empty}", "no images"),
    ("folder:{tmp}/does/not/exist", "does not exist"),
    ("tfds:no_such_dataset_xyz", "unknown TFDS dataset"),
    ("tfds:ganstyle_synthetic/s32_n24_t6_seed0:no_such_split", "has no split"),
    ("synthetic:sculpture", "synthetic:photo"),
    ("nonsense", "not understood"),
    ("http:x", "unknown kind"),
  ],
)
def test_clear_errors(content, match, syn_dir, tmp_path):
  empty = tmp_path / "empty"
  (empty / "sub").mkdir(parents=True)
  (empty / "readme.txt").write_text("no images here")
  config = make_config(content=content.format(empty=empty, tmp=tmp_path), data_dir=syn_dir)
  with pytest.raises(UserError, match=match) as e:
    input_pipeline.create_train_iterator(
      config, process_index=0, process_count=1, local_device_count=8
    )
  assert "\n" not in str(e.value)


def test_batch_not_divisible_by_devices_is_a_clear_error(syn_dir):
  config = make_config(data_dir=syn_dir, global_batch_size=12)
  with pytest.raises(UserError, match="not divisible by the 8 devices"):
    input_pipeline.create_train_iterator(
      config, process_index=0, process_count=1, local_device_count=8
    )
  with pytest.raises(UserError, match="load_size"):
    input_pipeline.create_train_iterator(
      make_config(data_dir=syn_dir, load_size=8),
      process_index=0,
      process_count=1,
      local_device_count=8,
    )
  with pytest.raises(UserError, match="model.name"):
    input_pipeline.create_train_iterator(
      make_config("no_such_model", data_dir=syn_dir),
      process_index=0,
      process_count=1,
      local_device_count=8,
    )


def test_unprepared_tfds_dataset_is_a_clear_error(tmp_path):
  config = make_config(
    "cyclegan",
    content="tfds:cycle_gan/monet2photo:trainA",
    style="tfds:cycle_gan/monet2photo:trainB",
    data_dir=str(tmp_path),
  )
  with pytest.raises(UserError, match="not prepared"):
    input_pipeline.create_train_iterator(
      config, process_index=0, process_count=1, local_device_count=8
    )


def test_elements_carry_their_painting_style(syn_dir, tmp_path):
  """The style index travels with each element (what the derived known answer paints with)."""
  Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / "x.png")
  single = Source("synthetic:painting", make_config(data_dir=syn_dir)).elements(train=True)
  assert {int(ex["style"]) for ex in single.dataset.as_numpy_iterator()} == {0}
  folder = Source(f"folder:{tmp_path}", make_config()).elements(train=True)
  assert [int(ex["style"]) for ex in folder.dataset.as_numpy_iterator()] == [-1]
  config = make_config(data_dir=syn_dir, synthetic_styles=3)
  train = Source("synthetic:painting", config).elements(train=True)
  styles = sorted(int(ex["style"]) for ex in train.dataset.as_numpy_iterator())
  assert styles == sorted([i % 3 for i in range(SYN["synthetic_train_size"])])
  test = Source("synthetic:photo", config).elements(train=False)
  assert sorted(int(ex["style"]) for ex in test.dataset.as_numpy_iterator()) == [
    1000 + i for i in range(SYN["synthetic_test_size"])
  ]


def test_paired_folder_shards_are_disjoint_pairs(tmp_path):
  from ganstyle_jax.data.sources import paired_folder_elements  # pylint: disable=g-import-not-at-top

  for folder in ("A", "B"):
    (tmp_path / folder).mkdir()
    for i in range(7):
      Image.fromarray(np.full((8, 8, 3), i, np.uint8)).save(tmp_path / folder / f"{i}.png")
  config = make_config()
  a, b = Source(f"folder:{tmp_path / 'A'}", config), Source(f"folder:{tmp_path / 'B'}", config)
  names = []
  for p in range(3):
    el = paired_folder_elements(a, b, train=True, process_index=p, process_count=3)
    exs = list(el.dataset.as_numpy_iterator())
    assert el.paired and len(exs) == el.size > 0
    for ex in exs:
      stem = ex["name"].decode()
      assert ex["data"].decode().endswith(f"A/{stem}.png")
      assert ex["data_b"].decode().endswith(f"B/{stem}.png")
    names += [ex["name"].decode() for ex in exs]
  assert sorted(names) == [str(i) for i in range(7)]
