"""The multi-style known-answer benchmark end to end (data.synthetic_styles), the derived
supervised target (synthetic:known_answer) and the paired streams of paired families."""

import contextlib
import dataclasses
import json
import logging

import numpy as np
from PIL import Image
import pytest

from ganstyle_jax import baselines, evaluate, families, input_pipeline, metrics
from ganstyle_jax.config_base import base_config
from ganstyle_jax.data import stream, synthetic
from ganstyle_jax.data import KNOWN_ANSWER, SAME_STYLE
from ganstyle_jax.errors import UserError
from ganstyle_jax.models import vgg

SIZE, TRAIN, TEST = 16, 12, 6
KW = dict(process_index=0, process_count=1, local_device_count=4)
PAIRED = "paired_test"  # a stand-in for pix2pix: Family.paired, keys input + target


@pytest.fixture(scope="module")
def syn_dir(tmp_path_factory):
  return str(tmp_path_factory.mktemp("tfds"))


@pytest.fixture(autouse=True)
def test_families(monkeypatch):
  """A paired family and an adain_gan that asks for the supervised target."""
  adain = families.FAMILIES["adain_gan"]
  monkeypatch.setitem(
    families.FAMILIES,
    PAIRED,
    dataclasses.replace(
      adain,
      name=PAIRED,
      style_conditioned=False,
      paired=True,
      batch_keys=lambda c: {"input": c.data.content, "target": c.data.style},
    ),
  )
  monkeypatch.setitem(
    families.FAMILIES,
    "supervised_test",
    dataclasses.replace(
      adain,
      name="supervised_test",
      batch_keys=lambda c: {**adain.batch_keys(c), "target": KNOWN_ANSWER},
    ),
  )


def make_config(model="adain_gan", styles=1, data_dir="", **data):
  config = base_config("adain_gan" if model in (PAIRED, "supervised_test") else model)
  config.model.name = model
  config.data.update(
    dict(
      image_size=SIZE,
      load_size=SIZE,
      synthetic_size=SIZE,
      synthetic_train_size=TRAIN,
      synthetic_test_size=TEST,
      global_batch_size=4,
      shuffle_buffer=16,
      synthetic_styles=styles,
      data_dir=data_dir,
    )
  )
  config.data.update(data)
  return config


def take(it, n):
  return [next(it) for _ in range(n)]


def assert_batches_equal(a, b):
  assert len(a) == len(b)
  for x, y in zip(a, b):
    assert list(x) == list(y)
    for k in x:
      np.testing.assert_array_equal(x[k], y[k], err_msg=k)


def assert_resumes(config, full):
  """A fresh iterator restored after 4 batches yields full[4:6] (the positions are JSON)."""
  it = input_pipeline.create_train_iterator(config, **KW)
  take(it, 4)
  state = json.loads(json.dumps(it.get_state()))
  assert set(state["positions"]) == {"content", "style", "real"}
  resumed = input_pipeline.create_train_iterator(config, **KW)
  resumed.set_state(state)
  assert_batches_equal(take(resumed, 2), full[4:])


def colours(k):
  """Style k's possible painting colours: its palette and its darkened palette."""
  palette = synthetic.style_palette(k)
  return np.concatenate([palette, synthetic.style_edge_darken(k) * palette])


def styles_of(image, candidates):
  """The candidate styles whose colours hold every pixel of a painting in [-1, 1]."""
  x = ((image + 1.0) / 2.0).reshape(-1, 1, 3)
  return [
    k for k in candidates if (np.abs(x - colours(k)[None]).max(-1).min(-1) <= 0.51 / 255).all()
  ]


def style_of(image, n):
  """The one style (train 0..n-1 or held-out 1000..) that a synthetic painting is in."""
  found = styles_of(image, list(range(n)) + [synthetic.HELDOUT_STYLE_BASE + i for i in range(TEST)])
  assert len(found) == 1, found
  return found[0]


def signed(uint8):
  return uint8.astype(np.float32) / 127.5 - 1.0


# ----------------------------------------------------------------------------------------------
# data.synthetic_styles: training paintings, the held-out batch, its known answer.
# ----------------------------------------------------------------------------------------------


def test_single_style_default_is_style_zero(syn_dir):
  assert base_config().data.synthetic_styles == 1
  config = make_config(data_dir=syn_dir)
  batch = next(input_pipeline.create_train_iterator(config, **KW))
  for image in np.concatenate([batch["style"], batch["real"]]):
    assert style_of(image, 1) == 0
  ev = input_pipeline.load_eval_batch(config, 4)
  assert list(ev) == ["content", "style", "real", "target"]
  np.testing.assert_array_equal(ev["target"], synthetic.painting_signed(ev["content"]))
  for image in ev["style"]:
    assert style_of(image, 1) == 0


def test_train_paintings_cover_the_train_styles_and_no_heldout_style(syn_dir):
  n = 3
  it = input_pipeline.create_train_iterator(make_config(styles=n, data_dir=syn_dir), **KW)
  seen = []
  for batch in take(it, 2 * TRAIN // 4):  # two epochs of each stream
    seen += [style_of(image, n) for image in np.concatenate([batch["style"], batch["real"]])]
  assert set(seen) == set(range(n))  # every train style, never a held-out one
  assert sorted(seen) == sorted(list(range(n)) * (4 * TRAIN // n))  # painting i: style i % n


def test_multi_style_eval_batch_is_the_heldout_pairs(syn_dir):
  n = 3
  config = make_config(styles=n, data_dir=syn_dir)
  ev, splits = input_pipeline.load_eval_data(config, 4)
  assert list(ev) == ["content", "style", "real", "target"]
  pairs = synthetic.heldout_pairs(4, SIZE, num_styles=n)
  # C_i = held-out photo i; S_i = another held-out scene in unseen style 1000 + i.
  np.testing.assert_array_equal(ev["content"], pairs["content"])
  np.testing.assert_array_equal(ev["style"], pairs["style"])
  np.testing.assert_array_equal(ev["real"], pairs["style"])
  for i, image in enumerate(ev["style"]):
    assert style_of(image, n) == 1000 + i == pairs["style_index"][i]
  # target_i = painting_k(C_i) for k the style of S_i (exact; the stored answer is its uint8).
  np.testing.assert_array_equal(
    ev["target"], synthetic.painting_signed(ev["content"], pairs["style_index"].tolist())
  )
  np.testing.assert_allclose(ev["target"], pairs["target"], atol=1.01 / 255)
  assert not np.array_equal(ev["target"], synthetic.painting_signed(ev["content"]))
  assert splits["style"] == "synthetic:painting (test_painting)"
  # Cycled past the held-out set, the pairs stay aligned.
  many = input_pipeline.load_eval_batch(config, TEST + 2)
  np.testing.assert_array_equal(many["target"][TEST:], many["target"][:2])
  np.testing.assert_array_equal(many["style"][TEST:], many["style"][:2])


def test_cyclegan_keeps_the_single_style_meaning(syn_dir, caplog):
  config = make_config("cyclegan", styles=3, data_dir=syn_dir)
  with caplog.at_level(logging.WARNING):
    batch = next(input_pipeline.create_train_iterator(config, **KW))
  assert any("single-style" in r.getMessage() for r in caplog.records)
  assert {style_of(image, 1) for image in batch["B"]} == {0}
  ev = input_pipeline.load_eval_batch(config, 4)
  np.testing.assert_array_equal(ev["target"], synthetic.painting_signed(ev["A"]))
  np.testing.assert_array_equal(
    ev["target"],
    input_pipeline.load_eval_batch(make_config("cyclegan", data_dir=syn_dir), 4)["target"],
  )


def test_multi_style_without_synthetic_style_images_has_no_known_answer(syn_dir, tmp_path):
  Image.fromarray(np.zeros((SIZE, SIZE, 3), np.uint8)).save(tmp_path / "s.png")
  config = make_config(styles=3, data_dir=syn_dir, style=f"folder:{tmp_path}")
  assert "target" not in input_pipeline.load_eval_batch(config, 2)


@pytest.mark.parametrize("styles", [0, 1001])
def test_bad_style_counts_are_clear_errors(styles, syn_dir):
  with pytest.raises(UserError, match="synthetic_styles") as e:
    input_pipeline.create_train_iterator(make_config(styles=styles, data_dir=syn_dir), **KW)
  assert "\n" not in str(e.value)


def test_evaluator_reports_the_baselines_beside_the_known_answer(syn_dir):
  ev = input_pipeline.load_eval_batch(make_config(styles=3, data_dir=syn_dir), 4)
  generated = np.tanh(1.5 * ev["content"])[::-1].copy()
  m = evaluate.Evaluator(vgg.load_params("random"), seed=0)(
    ev["content"], ev["style"], ev["real"], generated, target=ev["target"]
  )
  ref = baselines.known_answer_baselines(ev["content"], ev["style"], ev["target"])
  for name in ("psnr_colour_transfer", "ssim_colour_transfer"):
    assert m[name] == ref[name]
  for name in ("psnr_identity", "ssim_identity"):
    assert m[name] == pytest.approx(ref[name], rel=1e-6)
  assert m["psnr"] == pytest.approx(float(np.mean(metrics.psnr(generated, ev["target"]))))
  blind = synthetic.painting_signed(ev["content"])
  assert m["psnr_style_blind"] == pytest.approx(float(np.mean(metrics.psnr(blind, ev["target"]))))
  assert m["ssim_style_blind"] == pytest.approx(float(np.mean(metrics.ssim(blind, ev["target"]))))
  assert all(name in evaluate.METRICS for name in m if "psnr" in name or "ssim" in name)
  # The perfect output scores the target, not painting_0(C).
  perfect = evaluate.known_answer_scores(ev["content"], ev["style"], ev["target"], ev["target"])
  assert np.isinf(perfect["psnr"]) and perfect["ssim"] == pytest.approx(1.0)
  # Single-style: painting_0(C) is the answer, so there is no style-blind reference.
  single = evaluate.known_answer_scores(ev["content"], ev["style"], generated)
  assert "psnr_style_blind" not in single and "psnr_colour_transfer" in single
  # ... nor where the stored answer differs from it in a few pixels (painted from the
  # unrounded photo: ties at an edge threshold), which would give an infinite mean PSNR.
  near = np.array(blind)
  near[0, 0, :3] = -near[0, 0, :3]
  single = evaluate.known_answer_scores(ev["content"], ev["style"], generated, near)
  assert "psnr_style_blind" not in single


# ----------------------------------------------------------------------------------------------
# synthetic:known_answer: the supervised target of a training batch.
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("n", [1, 3])
def test_supervised_target_is_the_painting_of_content_in_the_style_images_style(n, syn_dir):
  config = make_config("supervised_test", styles=n, data_dir=syn_dir)
  it = input_pipeline.create_train_iterator(config, **KW)
  full = take(it, 6)  # two epochs
  for batch in full:
    assert list(batch) == ["content", "style", "real", "target"]
    ks = [style_of(image, n) for image in batch["style"]]
    np.testing.assert_array_equal(batch["target"], synthetic.painting_signed(batch["content"], ks))
  assert len({style_of(image, n) for b in full for image in b["style"]}) == n
  # Resume: the style index travels with its painting, so the targets are the same.
  assert_resumes(config, full)
  # Held out: the eval batch's target is the same known answer.
  ev = input_pipeline.load_eval_batch(config, 3)
  ks = [style_of(image, n) for image in ev["style"]]
  np.testing.assert_array_equal(ev["target"], synthetic.painting_signed(ev["content"], ks))


@pytest.mark.parametrize(
  "content, style",
  [
    ("folder:{tmp}", "synthetic:painting"),
    ("synthetic:photo", "folder:{tmp}"),
    ("synthetic:painting", "synthetic:painting"),
  ],
)
def test_supervised_target_without_the_synthetic_known_answer_is_a_clear_error(
  content, style, syn_dir, tmp_path
):
  Image.fromarray(np.zeros((SIZE, SIZE, 3), np.uint8)).save(tmp_path / "x.png")
  config = make_config(
    "supervised_test",
    data_dir=syn_dir,
    content=content.format(tmp=tmp_path),
    style=style.format(tmp=tmp_path),
  )
  for call in (
    lambda: input_pipeline.create_train_iterator(config, **KW),
    lambda: input_pipeline.load_eval_batch(config, 2),
  ):
    with pytest.raises(UserError, match="loss.w_supervised needs the synthetic known answer") as e:
      call()
    assert "\n" not in str(e.value)


def same_style_config(n, syn_dir, **data):
  config = make_config(styles=n, data_dir=syn_dir, real=SAME_STYLE, **data)
  config.loss.adv_condition = "style"
  return config


def test_same_style_reals_are_other_scenes_in_each_style_images_style(syn_dir):
  """data.real=synthetic:same_style: real_i is a synthetic photo painted in S_i's style, from its
  own stream (not the content's answer); held out: the next scene's photo in S_i's style."""
  n = 3
  config = same_style_config(n, syn_dir)
  it = input_pipeline.create_train_iterator(config, **KW)
  full = take(it, 6)
  own = 0  # reals that are the content's own answer: chance only (own shuffle, 12 scenes)
  for batch in full:
    assert list(batch) == ["content", "style", "real"]
    ks = [style_of(image, n) for image in batch["style"]]
    assert [style_of(image, n) for image in batch["real"]] == ks
    answers = synthetic.painting_signed(batch["content"], ks)
    own += sum(np.array_equal(r, a) for r, a in zip(batch["real"], answers))
  assert own <= 6, own  # of 24
  assert len({style_of(image, n) for b in full for image in b["style"]}) == n
  assert_resumes(config, full)
  ev, splits = input_pipeline.load_eval_data(config, 4)
  ks = [style_of(image, n) for image in ev["style"]]
  np.testing.assert_array_equal(
    ev["real"], synthetic.painting_signed(np.roll(ev["content"], -1, axis=0), ks)
  )
  for real, target in zip(ev["real"], ev["target"]):
    assert not np.array_equal(real, target)
  assert splits["real"].startswith(SAME_STYLE)


@pytest.mark.parametrize(
  "case", ["unconditioned_real", "folder_style", "as_style", "one_test_scene"]
)
def test_same_style_misuse_is_a_clear_error(case, syn_dir, tmp_path):
  Image.fromarray(np.zeros((SIZE, SIZE, 3), np.uint8)).save(tmp_path / "x.png")
  if case == "unconditioned_real":  # a style-conditioned D needs the same-style reals
    config, match = make_config(styles=3, data_dir=syn_dir), "set data.real=synthetic:same_style"
    config.loss.adv_condition = "style"
  elif case == "folder_style":
    config = same_style_config(3, syn_dir, style=f"folder:{tmp_path}")
    match = "needs data.style=synthetic:painting"
  elif case == "as_style":
    config, match = make_config(data_dir=syn_dir, style=SAME_STYLE), "for data.real only"
  else:  # the held-out reals are the next scene's: one scene would be the content's answer
    config = same_style_config(3, syn_dir, synthetic_test_size=1)
    match = "set data.synthetic_test_size >= 2"
  for call in (
    lambda: input_pipeline.create_train_iterator(config, **KW),
    lambda: input_pipeline.load_eval_batch(config, 2),
  ):
    with pytest.raises(UserError, match=match) as e:
      call()
    assert "\n" not in str(e.value)


# ----------------------------------------------------------------------------------------------
# Paired families: aligned streams.
# ----------------------------------------------------------------------------------------------


def write_pairs(root, stems, *, size=(20, 24), b_ext=".bmp"):
  """A/<stem>.png random, B/<stem><b_ext> = 255 - A (a pixelwise, lossless function of A)."""
  rng = np.random.default_rng(0)
  for stem in stems:
    a = rng.integers(0, 256, size + (3,), dtype=np.uint8)
    for folder, image, ext in (("A", a, ".png"), ("B", 255 - a, b_ext)):
      path = root / folder / f"{stem}{ext}"
      path.parent.mkdir(parents=True, exist_ok=True)
      Image.fromarray(image).save(path)


def paired_config(root, **data):
  return make_config(
    PAIRED, content=f"folder:{root / 'A'}", style=f"folder:{root / 'B'}", load_size=20, **data
  )


def test_paired_folders_pair_by_stem_with_equal_crops(tmp_path, caplog):
  stems = [f"x{i}" for i in range(5)] + ["sub/y0", "sub/y1"]
  write_pairs(tmp_path, stems)
  Image.fromarray(np.zeros((20, 20, 3), np.uint8)).save(tmp_path / "A" / "only_a.png")
  Image.fromarray(np.zeros((20, 20, 3), np.uint8)).save(tmp_path / "B" / "sub" / "only_b.png")
  config = paired_config(tmp_path)
  with caplog.at_level(logging.WARNING):
    it = input_pipeline.create_train_iterator(config, **KW)
  warnings = [r.getMessage() for r in caplog.records if "without a partner" in r.getMessage()]
  assert len(warnings) == 1 and "only_a.png" in warnings[0] and "only_b.png" in warnings[0]
  assert it.epoch_sizes == {"input+target": len(stems)}
  full = take(it, 6)  # > 3 epochs: every pair, several crops and flips
  for batch in full:
    assert list(batch) == ["input", "target"]
    assert batch["input"].shape == (4, SIZE, SIZE, 3)
    np.testing.assert_allclose(batch["target"], -batch["input"], atol=1e-6)  # B = 255 - A
  assert not np.array_equal(full[0]["input"], full[1]["input"])
  # Resume continues the pair stream exactly.
  it = input_pipeline.create_train_iterator(config, **KW)
  take(it, 4)
  resumed = input_pipeline.create_train_iterator(config, **KW)
  resumed.set_state(json.loads(json.dumps(it.get_state())))
  assert_batches_equal(take(resumed, 2), full[4:])
  # Held out: the first pairs by stem, centre-cropped alike.
  ev, splits = input_pipeline.load_eval_data(config, 3)
  assert list(ev) == ["input", "target"]
  np.testing.assert_allclose(ev["target"], -ev["input"], atol=1e-6)
  first = np.asarray(Image.open(tmp_path / "A" / "sub" / "y0.png"))  # 'sub/y0' sorts first
  np.testing.assert_array_equal(ev["input"][0], signed(stream.center_crop(first, SIZE)))
  assert "by file stem" in splits["input"]


def test_paired_images_of_different_sizes_share_one_crop(tmp_path):
  (tmp_path / "A").mkdir()
  (tmp_path / "B").mkdir()
  yy, xx = np.mgrid[0:20, 0:30]
  a = np.stack([xx * 8, yy * 12, (xx * yy) % 256], -1).astype(np.uint8)  # smooth but not flat
  Image.fromarray(a).save(tmp_path / "A" / "p.png")
  Image.fromarray(a).resize((60, 40), Image.Resampling.BICUBIC).save(tmp_path / "B" / "p.png")
  batch = next(input_pipeline.create_train_iterator(paired_config(tmp_path), **KW))
  # B is resized to A's size before the shared crop: the same picture, up to resampling.
  assert batch["target"].shape == batch["input"].shape
  err = np.abs(batch["target"] - batch["input"]).mean()
  assert err < 0.05
  assert err < 0.5 * np.abs(batch["target"][:, :, ::-1] - batch["input"]).mean()


def test_paired_folders_without_a_common_stem_are_a_clear_error(tmp_path):
  write_pairs(tmp_path / "one", ["x"])
  write_pairs(tmp_path / "two", ["y"])
  config = make_config(
    PAIRED,
    content=f"folder:{tmp_path / 'one' / 'A'}",
    style=f"folder:{tmp_path / 'two' / 'B'}",
    load_size=20,
  )
  with pytest.raises(UserError, match="no file stem is in both folders") as e:
    input_pipeline.create_train_iterator(config, **KW)
  assert "\n" not in str(e.value)


@pytest.mark.parametrize("n", [1, 3])
def test_synthetic_pairs_are_photo_and_painting_of_the_same_scene(n, syn_dir):
  config = make_config(
    PAIRED, styles=n, data_dir=syn_dir, content="synthetic:photo", style="synthetic:painting"
  )
  it = input_pipeline.create_train_iterator(config, **KW)
  full = take(it, 6)
  seen = set()
  for batch in full:
    assert list(batch) == ["input", "target"]
    for x, y in zip(batch["input"], batch["target"]):
      k = style_of(y, n)
      assert k < n
      seen.add(k)
      np.testing.assert_array_equal(y, synthetic.painting_signed(x, k))
  assert seen == set(range(n))
  it = input_pipeline.create_train_iterator(config, **KW)
  take(it, 4)
  resumed = input_pipeline.create_train_iterator(config, **KW)
  resumed.set_state(json.loads(json.dumps(it.get_state())))
  assert_batches_equal(take(resumed, 2), full[4:])
  # Held out: the test pairs (multi-style: test pair i in unseen style 1000 + i).
  ev = input_pipeline.load_eval_batch(config, 4)
  assert list(ev) == ["input", "target"]
  if n == 1:
    np.testing.assert_array_equal(ev["target"], synthetic.painting_signed(ev["input"]))
  else:
    pairs = synthetic.heldout_pairs(4, SIZE, num_styles=n)
    np.testing.assert_array_equal(ev["input"], pairs["content"])
    np.testing.assert_allclose(ev["target"], pairs["target"], atol=1.01 / 255)
    assert [style_of(y, n) for y in ev["target"]] == pairs["style_index"].tolist()


@pytest.mark.parametrize(
  "content, style",
  [
    ("synthetic:photo", "folder:{tmp}"),
    ("synthetic:painting", "synthetic:photo"),
    ("tfds:cycle_gan/monet2photo:trainA", "tfds:cycle_gan/monet2photo:trainB"),
  ],
)
def test_unpairable_sources_are_a_clear_error(content, style, syn_dir, tmp_path):
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top

  Image.fromarray(np.zeros((SIZE, SIZE, 3), np.uint8)).save(tmp_path / "x.png")
  config = make_config(
    PAIRED, data_dir=syn_dir, content=content.format(tmp=tmp_path), style=style.format(tmp=tmp_path)
  )
  mock = (
    tfds.testing.mock_data(num_examples=4)
    if content.startswith("tfds")
    else contextlib.nullcontext()
  )
  with mock:
    with pytest.raises(UserError, match="paired data") as e:
      input_pipeline.create_train_iterator(config, **KW)
  assert "\n" not in str(e.value)
