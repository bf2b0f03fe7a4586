"""Tests for the embedded synthetic dataset: scenes, the fixed painting function, the builder."""

import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ganstyle_jax.data import synthetic


def test_render_scene_is_deterministic_varied_and_any_size():
  a = synthetic.render_scene(synthetic.scene_seed("photo", "train", 3), 48)
  b = synthetic.render_scene(synthetic.scene_seed("photo", "train", 3), 48)
  c = synthetic.render_scene(synthetic.scene_seed("photo", "train", 4), 48)
  assert a.shape == (48, 48, 3) and a.dtype == np.float32
  assert 0.0 <= a.min() and a.max() <= 1.0
  np.testing.assert_array_equal(a, b)
  assert np.abs(a - c).mean() > 0.05
  assert synthetic.render_scene(7, 80).shape == (80, 80, 3)
  # Domains and splits never share scene seeds (unpaired domains, held-out test scenes).
  seeds = {synthetic.scene_seed(d, s, 0) for d in ("photo", "painting") for s in ("train", "test")}
  assert len(seeds) == 4


def test_painting_on_hand_built_images():
  # A flat image: blur changes nothing, no edges, every pixel becomes its nearest palette colour.
  flat = np.full((8, 8, 3), (0.22, 0.33, 0.58), np.float32)
  np.testing.assert_allclose(
    synthetic.painting(flat), np.broadcast_to(synthetic.PALETTE[2], (8, 8, 3))
  )
  # A sharp black/white step: the pixels next to the step are darkened to 0.25 x palette.
  step = np.zeros((8, 8, 3), np.float32)
  step[:, 4:] = 1.0
  out = synthetic.painting(step)
  darkened = synthetic.EDGE_DARKEN * synthetic.PALETTE
  edge = np.isclose(out[..., None, :], darkened).all(-1).any(-1)
  assert edge[:, 2:6].all() and not edge[:, :2].any() and not edge[:, 7:].any()
  np.testing.assert_allclose(out[:, 0], np.broadcast_to(synthetic.PALETTE[6], (8, 3)))
  np.testing.assert_allclose(out[:, 7], np.broadcast_to(synthetic.PALETTE[0], (8, 3)))


def test_painting_is_deterministic_and_numpy_matches_jax():
  x = np.random.default_rng(0).uniform(0, 1, (2, 20, 20, 3)).astype(np.float32)
  a, b = synthetic.painting(x), synthetic.painting(x.copy())
  np.testing.assert_array_equal(a, b)
  np.testing.assert_allclose(np.asarray(synthetic.painting(jnp.asarray(x))), a, atol=1e-6)
  colours = np.concatenate([synthetic.PALETTE, synthetic.EDGE_DARKEN * synthetic.PALETTE])
  dist = np.abs(a.reshape(-1, 1, 3) - colours[None]).max(-1).min(-1)
  assert dist.max() < 1e-6  # every output pixel is a palette colour or its darkened version


def test_painting_is_shift_equivariant_away_from_borders():
  big = synthetic.render_scene(11, 48)
  a, b = big[0:32, 0:32], big[3:35, 5:37]  # b(i, j) = a(i + 3, j + 5)
  pa, pb = synthetic.painting(a), synthetic.painting(b)
  # Outputs 2 px inside both windows see only shared, unpadded pixels.
  np.testing.assert_array_equal(pb[2:27, 2:25], pa[5:30, 7:30])


def test_known_answer_metrics():
  photos = synthetic.render_scene(1, 32)[None] * 2 - 1
  perfect = synthetic.painting_signed(photos)
  m = synthetic.known_answer_metrics(photos, perfect)
  assert np.isinf(m["psnr"]) and m["ssim"] == pytest.approx(1.0, abs=1e-5)
  ident = synthetic.known_answer_metrics(photos, photos)
  assert ident["psnr"] == pytest.approx(ident["psnr_identity"])
  assert ident["ssim"] == pytest.approx(ident["ssim_identity"])
  assert ident["psnr_identity"] < 20  # the photo is far from its painting


def test_builder_builds_offline_with_paired_test_split(tmp_path):
  builder = synthetic.get_builder(size=24, num_train=6, num_test=3, data_dir=str(tmp_path))
  splits = builder.info.splits
  assert {k: splits[k].num_examples for k in splits} == {
    "train_photo": 6,
    "train_painting": 6,
    "test_photo": 3,
    "test_painting": 3,
  }
  examples = list(builder.as_dataset(split="test_photo").as_numpy_iterator())
  assert len(examples) == 3
  for ex in examples:
    assert ex["image"].shape == (24, 24, 3)
    expected = synthetic.to_uint8(synthetic.painting(ex["image"].astype(np.float32) / 255))
    np.testing.assert_array_equal(ex["target"], expected)  # the exact known answer
  # A second call reuses the prepared data.
  again = synthetic.get_builder(size=24, num_train=6, num_test=3, data_dir=str(tmp_path))
  assert again.is_prepared()


def test_builds_started_together_all_succeed_with_one_copy(tmp_path):
  """Runs started at once on a fresh machine: one process builds, the others wait for it and
  read its copy (without the lock all but one failed renaming their copy into place)."""
  code = (
    "import sys; from ganstyle_jax.data import synthetic; "
    "b = synthetic.get_builder(size=24, num_train=40, num_test=3, data_dir=sys.argv[1]); "
    "print(b.info.splits['train_photo'].num_examples)"
  )
  procs = [
    subprocess.Popen(
      [sys.executable, "-c", code, str(tmp_path)], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    for _ in range(3)
  ]
  results = [(*p.communicate(timeout=300), p.returncode) for p in procs]
  for out, err, rc in results:
    assert rc == 0, err.decode()[-2000:]
    assert out.decode().split()[-1] == "40"  # the last line; TFDS prints its progress before
  builds = sum(b"Preparing the embedded synthetic dataset" in err for _, err, _ in results)
  assert builds == 1, [err.decode()[-500:] for _, err, _ in results]
  # One prepared copy, no leftover temporary directory of a losing build.
  versions = os.listdir(tmp_path / "ganstyle_synthetic" / "s24_n40_t3_seed0")
  assert versions == [str(synthetic.GanstyleSynthetic.VERSION)], versions


# ---------------------------------------------------------------------------- painting styles


def _colours(style: int) -> np.ndarray:
  """Style k's 16 possible output colours: its palette and its darkened palette."""
  palette = synthetic.style_palette(style)
  return np.concatenate([palette, synthetic.style_edge_darken(style) * palette])


def _is_in(image: np.ndarray, colours: np.ndarray, atol: float = 1e-6) -> np.ndarray:
  """Per pixel: is the colour one of `colours`?"""
  return np.abs(image.reshape(-1, 1, 3) - colours[None]).max(-1).min(-1) <= atol


def test_style_zero_is_the_original_painting():
  np.testing.assert_array_equal(synthetic.style_palette(0), synthetic.PALETTE)
  assert synthetic.style_edge_darken(0) == synthetic.EDGE_DARKEN
  x = np.random.default_rng(1).uniform(0, 1, (2, 16, 16, 3)).astype(np.float32)
  np.testing.assert_array_equal(synthetic.painting(x, 0), synthetic.painting(x))
  np.testing.assert_array_equal(synthetic.painting(x, [0, 0]), synthetic.painting(x))


def test_styles_are_deterministic_distinct_and_valid():
  palettes = [synthetic.style_palette(k) for k in (1, 2, 3, 1000, 1001)]
  np.testing.assert_array_equal(palettes[0], synthetic.style_palette(1))
  for p in palettes:
    assert p.shape == (8, 3) and p.dtype == np.float32
    assert p.min() >= 0.0 and p.max() <= 1.0
    dist = np.abs(p[:, None] - p[None]).max(-1) + np.eye(8)
    assert dist.min() > 0.02  # 8 distinguishable colours
  for i in range(len(palettes)):
    for j in range(i):
      assert np.abs(palettes[i] - palettes[j]).max() > 0.05
  darken = [synthetic.style_edge_darken(k) for k in range(1, 50)]
  assert min(darken) >= 0.1 and max(darken) <= 0.4 and np.std(darken) > 0.03
  with pytest.raises(ValueError):
    synthetic.style_palette(-1)


def test_style_palette_is_a_hue_rotation_and_lightness_scale_of_the_base():
  """Rotation about the grey axis then RGB x s: every distance and the grey level scale by s."""
  base = synthetic.PALETTE.astype(np.float64)
  hue_angles = []
  for k in range(1, 40):
    p = synthetic.style_palette(k).astype(np.float64)
    unclipped = (p > 1e-6).all(-1) & (p < 1 - 1e-6).all(-1)
    assert unclipped.sum() >= 4  # clipping to [0, 1] touches at most 4 colours
    b, q = base[unclipped], p[unclipped]
    # Grey level (RGB mean) scales by s; chroma vectors (RGB - grey) by s and rotate.
    scale = q.mean(-1) / b.mean(-1)
    assert 0.8 - 1e-5 <= scale.min() and scale.max() <= 1.2 + 1e-5
    np.testing.assert_allclose(scale, scale[0], rtol=1e-5)
    s = scale[0]
    np.testing.assert_allclose(
      np.linalg.norm(q[:, None] - q[None], axis=-1),
      s * np.linalg.norm(b[:, None] - b[None], axis=-1),
      atol=1e-5,
    )
    cb, cq = b - b.mean(-1, keepdims=True), q / s - q.mean(-1, keepdims=True) / s
    i = np.argmax(np.linalg.norm(cb, axis=-1))
    cos = cb[i] @ cq[i] / (np.linalg.norm(cb[i]) * np.linalg.norm(cq[i]))
    hue_angles.append(np.arccos(np.clip(cos, -1, 1)))
  # Hue rotations spread over the turn (angles between chroma vectors up to pi).
  assert min(hue_angles) < 0.6 and max(hue_angles) > 2.5


def test_style_k_snaps_to_its_own_palette_on_the_edges_of_style_zero():
  x = np.stack([synthetic.render_scene(i, 32) for i in range(3)])
  _, base_edge = synthetic.painting_regions(x)
  pad = np.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)), mode="edge")
  blurred = sum(pad[:, i : i + 32, j : j + 32] for i in range(3) for j in range(3)) / 9.0
  for k in (1, 7, 1003):
    out = synthetic.painting(x, k)
    palette_k, darken_k = synthetic.style_palette(k), synthetic.style_edge_darken(k)
    # Every pixel is the style's colour nearest to the blurred photo (darkened on edges, which
    # are style 0's: the palette does not move them).
    nearest = palette_k[((blurred[..., None, :] - palette_k) ** 2).sum(-1).argmin(-1)]
    want = np.where(base_edge, darken_k * nearest, nearest)
    np.testing.assert_allclose(out, want, rtol=1e-6, atol=1e-7)
    assert _is_in(out, _colours(k)).all()
    assert len(np.unique(out.reshape(-1, 3), axis=0)) > 3


def test_painting_with_a_style_per_image_numpy_jax_and_jit():
  x = np.random.default_rng(2).uniform(0, 1, (3, 12, 12, 3)).astype(np.float32)
  styles = [0, 5, 1001]
  out = synthetic.painting(x, styles)
  for i, k in enumerate(styles):
    np.testing.assert_array_equal(out[i], synthetic.painting(x[i], k))
  np.testing.assert_allclose(np.asarray(synthetic.painting(jnp.asarray(x), styles)), out, atol=1e-6)
  # In a jitted step the style tables are data: one trace for any styles.
  palettes, darken = synthetic.style_tables(styles)
  paint = jax.jit(
    lambda im, p, d: synthetic.paint_regions(*synthetic.painting_regions(im, p), p, d)
  )
  np.testing.assert_allclose(np.asarray(paint(jnp.asarray(x), palettes, darken)), out, atol=1e-6)
  with pytest.raises(ValueError):
    synthetic.painting(x, [1, 2])


def test_split_rule_holds_out_unseen_styles():
  assert [synthetic.example_style("train", i, 1) for i in range(5)] == [0] * 5
  assert [synthetic.example_style("test", i, 1) for i in range(5)] == [0] * 5
  assert [synthetic.example_style("train", i, 3) for i in range(7)] == [0, 1, 2, 0, 1, 2, 0]
  train = {synthetic.example_style("train", i, 1000) for i in range(3000)}
  test = [synthetic.example_style("test", i, n) for n in (2, 1000) for i in range(50)]
  assert train == set(range(1000)) and not train & set(test)
  assert test[:3] == [1000, 1001, 1002] and test[:50] == test[50:]  # the same for every N
  for bad in (0, 1001):
    with pytest.raises(ValueError):
      synthetic.example_style("train", 0, bad)
  with pytest.raises(ValueError):
    synthetic.example_style("val", 0, 2)


def test_make_example_in_styles():
  for split, i, n in (("train", 4, 3), ("test", 2, 3)):
    k = synthetic.example_style(split, i, n)
    photo = synthetic.make_example("photo", split, i, 24, num_styles=n)
    np.testing.assert_array_equal(
      photo["target"], synthetic.to_uint8(synthetic.painting(photo["image"] / 255.0, k))
    )
    paint = synthetic.make_example("painting", split, i, 24, num_styles=n)
    scene = synthetic.render_scene(synthetic.scene_seed("painting", split, i), 24)
    np.testing.assert_array_equal(paint["image"], synthetic.to_uint8(synthetic.painting(scene, k)))
    np.testing.assert_array_equal(paint["target"], paint["image"])
  explicit = synthetic.make_example("painting", "train", 4, 24, style=9)
  scene = synthetic.render_scene(synthetic.scene_seed("painting", "train", 4), 24)
  np.testing.assert_array_equal(explicit["image"], synthetic.to_uint8(synthetic.painting(scene, 9)))


def test_heldout_pairs_are_content_style_and_known_answer():
  pairs = synthetic.heldout_pairs(3, 32, num_styles=4)
  assert pairs["style_index"].tolist() == [1000, 1001, 1002]
  for key in ("content", "style", "target"):
    assert pairs[key].shape == (3, 32, 32, 3) and pairs[key].dtype == np.float32
    assert pairs[key].min() >= -1 and pairs[key].max() <= 1
  for i, k in enumerate(pairs["style_index"]):
    one = synthetic.heldout_pair(i, 32, num_styles=4)
    np.testing.assert_array_equal(
      one["content"], synthetic.make_example("photo", "test", i, 32)["image"]
    )
    np.testing.assert_array_equal(
      one["target"], synthetic.to_uint8(synthetic.painting(one["content"] / 255.0, k))
    )
    # S is another scene, painted in style k and in no other style.
    style = one["style"].astype(np.float32) / 255.0
    assert _is_in(style, _colours(k), atol=0.5 / 255).all()
    assert not _is_in(style, _colours(k + 1), atol=0.5 / 255).all()
    assert np.abs(synthetic.painting(one["content"] / 255.0, k) - style).mean() > 0.05
  single = synthetic.heldout_pair(0, 32, num_styles=1)
  assert single["style_index"] == 0


def test_known_answer_metrics_with_target_and_style_images():
  pairs = synthetic.heldout_pairs(2, 32, num_styles=2)
  m = synthetic.known_answer_metrics(
    pairs["content"], pairs["target"], target=pairs["target"], style_images=pairs["style"]
  )
  assert set(m) == {
    "psnr",
    "ssim",
    "psnr_identity",
    "ssim_identity",
    "psnr_colour_transfer",
    "ssim_colour_transfer",
  }
  assert np.isinf(m["psnr"]) and m["psnr_identity"] < 20 and m["psnr_colour_transfer"] < 20


def test_multi_style_builder(tmp_path):
  assert synthetic.config_name(64, 2000, 64) == "s64_n2000_t64_seed0"  # default name unchanged
  builder = synthetic.get_builder(
    size=16, num_train=4, num_test=2, data_dir=str(tmp_path), styles=3
  )
  assert builder.builder_config.name == "s16_n4_t2_seed0_styles3"
  train = list(builder.as_dataset(split="train_painting").as_numpy_iterator())
  assert sorted(int(ex["style"]) for ex in train) == [0, 0, 1, 2]
  for ex in train:
    np.testing.assert_array_equal(ex["style_image"], ex["image"])
  tests = list(builder.as_dataset(split="test_photo").as_numpy_iterator())
  assert sorted(int(ex["style"]) for ex in tests) == [1000, 1001]
  for ex in tests:
    i = int(ex["style"]) - 1000
    pair = synthetic.heldout_pair(i, 16, num_styles=3)
    for key, feature in (("content", "image"), ("style", "style_image"), ("target", "target")):
      np.testing.assert_array_equal(ex[feature], pair[key])
