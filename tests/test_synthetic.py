"""Tests for the embedded synthetic dataset: scenes, the fixed painting function, the builder."""

import jax.numpy as jnp
import numpy as np
import pytest

from ganstyle_jax.data import synthetic


def test_render_scene_is_deterministic_varied_and_any_size():
  a = synthetic.render_scene(synthetic.scene_seed('photo', 'train', 3), 48)
  b = synthetic.render_scene(synthetic.scene_seed('photo', 'train', 3), 48)
  c = synthetic.render_scene(synthetic.scene_seed('photo', 'train', 4), 48)
  assert a.shape == (48, 48, 3) and a.dtype == np.float32
  assert 0.0 <= a.min() and a.max() <= 1.0
  np.testing.assert_array_equal(a, b)
  assert np.abs(a - c).mean() > 0.05
  assert synthetic.render_scene(7, 80).shape == (80, 80, 3)
  # Domains and splits never share scene seeds (unpaired domains, held-out test scenes).
  seeds = {synthetic.scene_seed(d, s, 0) for d in ('photo', 'painting') for s in ('train', 'test')}
  assert len(seeds) == 4


def test_painting_on_hand_built_images():
  # A flat image: blur changes nothing, no edges, every pixel becomes its nearest palette colour.
  flat = np.full((8, 8, 3), (0.22, 0.33, 0.58), np.float32)
  np.testing.assert_allclose(synthetic.painting(flat), np.broadcast_to(synthetic.PALETTE[2],
                                                                       (8, 8, 3)))
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
  assert np.isinf(m['psnr']) and m['ssim'] == pytest.approx(1.0, abs=1e-5)
  ident = synthetic.known_answer_metrics(photos, photos)
  assert ident['psnr'] == pytest.approx(ident['psnr_identity'])
  assert ident['ssim'] == pytest.approx(ident['ssim_identity'])
  assert ident['psnr_identity'] < 20  # the photo is far from its painting


def test_builder_builds_offline_with_paired_test_split(tmp_path):
  builder = synthetic.get_builder(size=24, num_train=6, num_test=3, data_dir=str(tmp_path))
  splits = builder.info.splits
  assert {k: splits[k].num_examples for k in splits} == {
      'train_photo': 6, 'train_painting': 6, 'test_photo': 3, 'test_painting': 3}
  examples = list(builder.as_dataset(split='test_photo').as_numpy_iterator())
  assert len(examples) == 3
  for ex in examples:
    assert ex['image'].shape == (24, 24, 3)
    expected = synthetic.to_uint8(synthetic.painting(ex['image'].astype(np.float32) / 255))
    np.testing.assert_array_equal(ex['target'], expected)  # the exact known answer
  # A second call reuses the prepared data.
  again = synthetic.get_builder(size=24, num_train=6, num_test=3, data_dir=str(tmp_path))
  assert again.is_prepared()
