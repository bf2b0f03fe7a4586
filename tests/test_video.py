"""Video: the warp, PyAV round trips, shared content statistics, the temporal regulariser."""

import functools
import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from configs.tiny import tiny_config
import helpers
from ganstyle_jax import build, checkpointing, losses, metrics, stylize, video
from ganstyle_jax.data import synthetic
from ganstyle_jax.errors import UserError
from ganstyle_jax.ops import warping

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


# ----------------------------------------------------------------------------- the warp


def test_warp_equals_np_roll_for_integer_shifts():
  x = np.random.default_rng(0).normal(size=(3, 12, 10, 2)).astype(np.float32)
  shifts = [(1, 0), (-2, 3), (4, -5)]
  flow = np.asarray(shifts, np.float32)[:, None, None, :]
  wrapped = np.asarray(warping.warp(x, flow, mode="wrap"))
  edged = np.asarray(warping.warp(x, flow))
  for i, s in enumerate(shifts):
    rolled = np.roll(x[i], s, axis=(0, 1))
    np.testing.assert_array_equal(wrapped[i], rolled)
    np.testing.assert_array_equal(edged[i, 5:-5, 5:-5], rolled[5:-5, 5:-5])  # away from borders
  half = np.asarray(warping.warp(x, np.asarray([0.5, 0.0], np.float32)[None, None, None]))
  np.testing.assert_allclose(half[:, 1:], (x[:, 1:] + x[:, :-1]) / 2, atol=1e-6)


def test_random_smooth_flow_is_bounded_smooth_and_seeded():
  key = jax.random.key(3)
  flow = np.asarray(warping.random_smooth_flow(key, 2, 32, 24, max_shift=4.0))
  assert flow.shape == (2, 32, 24, 2) and np.abs(flow).max() <= 4.0
  assert np.abs(np.diff(flow, axis=1)).max() < 0.5  # smooth: no jumps between neighbours
  np.testing.assert_array_equal(flow, warping.random_smooth_flow(key, 2, 32, 24, 4.0))


# ----------------------------------------------------------------------------- a tiny model


def untrained_config(encoder_layer="relu2_1"):
  config = tiny_config("adain_gan", "jit", steps=2)
  config.model.generator.encoder_layer = encoder_layer
  return config


def init_state(setup, size):
  """build.init_state, compiled: faster than flax's op-by-op init of VGG, decoder and D."""
  return jax.jit(lambda key: build.init_state(setup, key, size))(jax.random.key(0))


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
  """A workdir with one checkpoint of an untrained tiny adain_gan (written, not trained)."""
  wd = tmp_path_factory.mktemp("video_wd")
  config = untrained_config()
  setup = build.build_setup(config)
  state = init_state(setup, config.data.image_size)
  ckpt = checkpointing.Checkpointer(checkpointing.checkpoint_dir(wd), async_save=False, writer=True)
  ckpt.save(0, state, {}, {"model": setup.name, "config": json.loads(config.to_json_best_effort())})
  ckpt.close()
  return wd


@pytest.fixture(scope="module")
def stylizer(workdir):
  return stylize.load(workdir)


def scene(size=(48, 64), seed=0):
  img = synthetic.render_scene(seed, max(size))[: size[0], : size[1]]
  return synthetic.to_uint8(img)


# ----------------------------------------------------------------------------- PyAV


def make_clip(path, n=12, size=(48, 64), fps=12, audio="aac", seed=0):
  """A test clip written with PyAV: n frames of a scene whose square moves, mpeg4 video, and
  a silent audio track (codec `audio`; None: no audio) as long as the video."""
  av = pytest.importorskip("av")
  h, w = size
  out = av.open(str(path), "w")
  vs = out.add_stream("mpeg4", rate=fps)
  vs.width, vs.height, vs.pix_fmt = w, h, "yuv420p"
  a = out.add_stream(audio, rate=16000, layout="mono") if audio else None
  frames = []
  for i in range(n):
    img = scene(size, seed).copy()
    img[10:18, 4 + 3 * i : 12 + 3 * i] = 255
    frames.append(img)
    out.mux(vs.encode(av.VideoFrame.from_ndarray(img, format="rgb24")))
  out.mux(vs.encode())
  if a is not None:
    fmt, size_ = a.codec_context.format.name, a.codec_context.frame_size or 1024
    for start in range(0, 16000 * n // fps, size_):
      af = av.AudioFrame(format=fmt, layout="mono", samples=size_)
      for plane in af.planes:
        plane.update(bytes(plane.buffer_size))
      af.sample_rate, af.pts = 16000, start
      out.mux(a.encode(af))
    out.mux(a.encode())
  out.close()
  return frames


def probe_frames(path):
  av = pytest.importorskip("av")
  with av.open(str(path)) as c:
    return [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]


def probe(path):
  av = pytest.importorskip("av")
  with av.open(str(path)) as c:
    v = c.streams.video[0]
    streams = [(s.type, s.codec_context.name) for s in c.streams]
    frames = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
    return dict(
      streams=streams,
      frames=len(frames),
      size=frames[0].shape[:2],
      rate=v.average_rate,
      pix_fmt=v.codec_context.pix_fmt,
    )


def test_clip_round_trips_frames_size_rate_and_audio(stylizer, tmp_path):
  clip = tmp_path / "clip.mp4"
  make_clip(clip)
  style = scene(seed=5)
  out = tmp_path / "out" / "styled.mp4"
  n = video.stylize_sequence(stylizer, clip, out, style, batch_frames=5)  # 5 + 5 + 2 (padded)
  info = probe(out)
  assert n == 12 and info["frames"] == 12 and info["size"] == (48, 64), info
  assert info["rate"] == 12 and info["pix_fmt"] == "yuv420p"
  assert ("video", "h264") in info["streams"] and ("audio", "aac") in info["streams"]
  # The frames are the stylizer's, up to H.264's loss.
  first_frame = lambda path: probe_frames(path)[0]
  expected = stylizer.stylize(first_frame(clip), style)
  first = first_frame(out)
  # (an untrained generator's output is noisy: 4:2:0 chroma and H.264 lose some of it)
  assert np.corrcoef(first.ravel(), expected.ravel())[0, 1] > 0.85


def test_odd_sizes_and_a_folder_of_frames(stylizer, tmp_path):
  from PIL import Image

  frames = tmp_path / "frames"
  frames.mkdir()
  for i in (1, 2, 10):  # natural order: 1, 2, 10
    img = scene((33, 45), seed=i)
    Image.fromarray(img).save(frames / f"f{i}.png")
  out = tmp_path / "odd.mkv"
  assert video.stylize_sequence(stylizer, frames, out, scene(seed=5), fps=10) == 3
  info = probe(out)
  assert info["frames"] == 3 and info["size"] == (34, 46) and info["rate"] == 10, info
  folder = tmp_path / "out_frames"
  video.stylize_sequence(stylizer, frames, folder, scene(seed=5))
  names = sorted(os.listdir(folder))
  assert names == ["frame_000001.png", "frame_000002.png", "frame_000003.png"]
  inputs = [scene((33, 45), seed=i) for i in (1, 2, 10)]
  want = stylizer.stylize_batch(inputs, scene(seed=5), batch_size=3)
  for name, frame in zip(names, want):
    np.testing.assert_array_equal(np.asarray(Image.open(folder / name)), frame)


class Identity:
  """Stands in for a Stylizer where only the video I/O is tested: returns the frames."""

  def stylize_batch(self, frames, style=None, alpha=1.0, **options):
    return np.stack(frames)


def test_audio_is_copied_or_reencoded_as_the_container_allows(tmp_path):
  clip = tmp_path / "pcm.mkv"
  make_clip(clip, n=3, audio="pcm_s16le")
  for name, codec in (("copy.mov", "pcm_s16le"), ("aac.m4v", "aac")):  # .m4v takes no PCM
    assert video.stylize_sequence(Identity(), clip, tmp_path / name) == 3
    assert probe(tmp_path / name)["streams"] == [("video", "h264"), ("audio", codec)]


def test_bad_inputs_are_one_line(stylizer, tmp_path):
  pytest.importorskip("av")
  style = scene(seed=5)
  bad = tmp_path / "notes.mp4"
  bad.write_text("not a video")
  cases = [
    (bad, tmp_path / "o.mp4", "not an image or a video that PyAV can read"),
    (tmp_path / "missing.mp4", tmp_path / "o.mp4", "no such file"),
    (tmp_path, tmp_path / "o.mp4", "no frames"),  # a folder with no images
  ]
  clip = tmp_path / "clip.mkv"
  make_clip(clip, n=2, audio=None)
  locked = tmp_path / "locked"
  locked.mkdir()
  locked.chmod(0o500)
  cases += [
    (clip, tmp_path / "o.webm", r"a sequence is written as a video \(\.mp4"),
    (clip, tmp_path / "o.png", "a sequence is written as a video"),
  ]
  if os.geteuid() != 0:  # root writes anywhere
    cases.append((clip, locked / "o.mp4", "cannot write the video"))
  cases.append((clip, tmp_path / "file.mp4" / "o.mp4", "cannot write the video"))
  (tmp_path / "file.mp4").write_text("a file, not a folder")
  for content, out, message in cases:
    with pytest.raises(UserError, match=message) as e:
      video.stylize_sequence(stylizer, content, out, style)
    assert "\n" not in str(e.value), str(e.value)
    assert not out.exists() or out.is_dir() or out == tmp_path / "file.mp4", out
  with pytest.raises(UserError, match="use one of none, global, ema"):
    video.stylize_sequence(stylizer, clip, tmp_path / "o.mp4", style, consistency="per-frame")


def test_cli_stylizes_a_video(workdir, tmp_path):
  pytest.importorskip("av")
  from PIL import Image

  clip = tmp_path / "clip.mp4"
  make_clip(clip, n=4)
  Image.fromarray(scene(seed=5)).save(tmp_path / "s.png")
  out = tmp_path / "out.mp4"
  run = lambda *a: helpers.run_module(
    "stylize",
    f"--workdir={workdir}",
    *a,
    env={**os.environ, **helpers.CHEAP_COMPILES},  # compile time dominates
  )
  proc = run(
    f"--content={clip}", f"--style={tmp_path / 's.png'}", f"--out={out}", "--consistency=global"
  )
  assert proc.returncode == 0, proc.stderr[-2000:]
  assert probe(out)["frames"] == 4 and "wrote 4 frames" in proc.stdout + proc.stderr
  (tmp_path / "bad.mp4").write_text("not a video")
  proc = run(f"--content={tmp_path / 'bad.mp4'}", f"--style={tmp_path / 's.png'}", f"--out={out}")
  assert proc.returncode == 2
  assert proc.stderr.strip().splitlines()[-1].startswith(f"error: {tmp_path / 'bad.mp4'}: not an")


# ----------------------------------------------------------------------------- consistency


def background_change(outputs, patch_rows, margin):
  """Mean |change| between consecutive output frames, rows away from the moving patch."""
  keep = np.ones(outputs[0].shape[0], bool)
  keep[max(0, patch_rows[0] - margin) : patch_rows[1] + margin] = False
  o = np.asarray(outputs, np.float32)[:, keep]
  return float(np.abs(np.diff(o, axis=0)).mean())


def test_global_statistics_keep_the_static_background_steadier(stylizer):
  frames = []
  for i in range(6):  # a static scene; only a small bright patch moves
    img = scene(seed=1).copy()
    img[10:18, 4 + 6 * i : 12 + 6 * i] = 255
    frames.append(img)
  style = scene(seed=5)
  change = {}
  for mode in video.CONSISTENCY:
    out = list(video.stylize_frames(stylizer, frames, style, consistency=mode, batch_frames=5))
    assert len(out) == 6 and out[0].shape == (48, 64, 3)
    change[mode] = background_change(out, (10, 18), margin=12)
  assert change["global"] < 0.5 * change["none"], change
  assert change["ema"] < change["none"], change
  # The shared statistics are the frames' pooled ones: with one frame they are its own.
  one = list(video.stylize_frames(stylizer, frames[:1], style, consistency="global"))
  np.testing.assert_array_equal(one[0], stylizer.stylize(frames[0], style))


def test_g_x_families_refuse_shared_statistics():
  s = stylize.Stylizer(tiny_config("cyclegan", "jit"), None, None)  # refused before G runs
  frames = [scene((32, 32))] * 2
  for mode in ("global", "ema"):
    with pytest.raises(UserError, match="not supported for cyclegan"):
      list(video.stylize_frames(s, frames, consistency=mode))


# ----------------------------------------------------------------------------- training


def test_temporal_loss_lowers_the_temporal_error(stylizer):
  """A short run with loss.w_temporal gives a lower known-flow temporal error than the same
  run without it (same init, data and steps)."""
  size, steps, n = 32, 20, 2
  scenes = lambda k: np.stack([synthetic.render_scene((k, i), size) for i in range(n)])
  style = synthetic.painting(scenes(2)) * 2 - 1
  batch = {"content": scenes(1) * 2 - 1, "style": style, "real": style}
  batch = jax.tree.map(lambda x: jnp.asarray(x, jnp.float32), batch)
  held_out = jnp.asarray(scenes(3) * 2 - 1, jnp.float32)
  vgg = stylizer.vgg_variables  # random VGG19, loaded once
  flow = metrics.temporal_shifts(n)
  errors, render = {}, None
  for w in (0.0, 300.0):
    config = untrained_config()
    config.loss.w_adv, config.loss.w_temporal = 0.0, w  # no D: G's objective only
    config.loss.style_layers, config.loss.style_layer_weights = ("relu1_1", "relu2_1"), (1, 1)
    config.optim.g.lr = 1e-3
    setup = build.build_setup(config)
    state = init_state(setup, size)
    step = jax.jit(functools.partial(setup.family.train_step, setup=setup))
    for _ in range(steps):
      state, m = step(state, batch, vgg, jax.random.key(1))
    assert ("g/temporal" in m) == (w > 0) and np.isfinite(float(m["g/loss"]))
    if render is None:  # one compile: both runs have the same generator
      render = jax.jit(functools.partial(setup.family.generate, setup))
    outputs = lambda x: render(state.g_params, vgg, {"content": x, "style": batch["style"]})
    shifted, unshifted = outputs(warping.warp(held_out, flow)), outputs(held_out)
    shifted, unshifted = shifted["output"], unshifted["output"]
    errors[w] = float(jnp.mean(metrics.temporal_error(shifted, unshifted, flow)))
  assert errors[300.0] < 0.8 * errors[0.0], errors


def test_temporal_loss_is_zero_for_a_commuting_pair():
  x = jnp.asarray(np.random.default_rng(0).normal(size=(2, 16, 16, 3)), jnp.float32)
  flow = jnp.asarray([[[[1.0, -2.0]]]])
  assert float(losses.temporal_loss(warping.warp(x, flow), warping.warp(x, flow), 2)) == 0.0
  assert float(losses.temporal_loss(x, warping.warp(x, flow), 2)) > 0.1


def test_temporal_metrics_on_known_generators():
  x = jnp.asarray(np.random.default_rng(1).uniform(-1, 1, (4, 32, 32, 3)), jnp.float32)
  flow = metrics.temporal_shifts(4)
  shifted = warping.warp(x, flow)
  np.testing.assert_array_equal(metrics.temporal_error(shifted, x, flow), 0.0)  # G = identity
  still = metrics.temporal_error(x, x, flow)  # a G whose output does not move with the scene
  assert np.all(np.asarray(still) > 0.1)
  a, b = metrics.stability_frames(x, jax.random.key(0))
  s = float(jnp.mean(metrics.temporal_stability(a, b)))
  assert s == pytest.approx(2 * metrics.STABILITY_NOISE**2, rel=0.15)  # clipping lowers it
