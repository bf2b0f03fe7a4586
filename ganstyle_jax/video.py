"""Video for the stylize CLI: decode with PyAV, stylize in batches, encode H.264.

  python -m ganstyle_jax.stylize --workdir=DIR --content=clip.mp4 --style=S --out=out.mp4 \\
      [--consistency=none|global|ema] [--batch_frames=N] [--ema_decay=D] [--fps=R]

Input: a video in any container and codec PyAV (FFmpeg) decodes, or a folder of frames (images
in natural order: frame_2 before frame_10; `--fps`, default 25). Output: H.264 in yuv420p
(.mp4, .m4v, .mov, .mkv) with every input frame, at the input's (average) frame rate, with
the first audio stream copied (re-encoded as AAC where the output container does not take
its codec); or a folder of PNG frames, frame_000001.png, ... (no audio). H.264's 4:2:0 chroma
needs even sizes: an odd width or height gets one edge-repeated column or row. The output is
constant-rate; subtitle and data streams are not copied. A run that fails (or is interrupted)
removes its partial video file.

Frames go through `Stylizer.stylize_batch`, batch_frames at a time with one compiled function
(the last batch padded), so a video takes `stylize`'s controls (--alpha, --style_weights,
--mask, --preserve_color, --max_size, --tile, cyclegan's --direction) and its memory guard.

Temporal consistency (adain_gan). AdaIN normalises the content features with their mean and
std before giving them the style's, so with per-frame statistics a small moving object (or
noise) re-normalises, and recolours, the whole frame: the static background flickers.
- none: each frame's own statistics, as for single images;
- global: the statistics of the whole sequence (a first pass over up to
  2 * GLOBAL_SAMPLE_FRAMES evenly spaced frames), shared by every frame: ReReVST's
  sequence-level sharing (Wang et al. 2020, "Consistent Video Style Transfer via Relaxation
  and Regularization"). The AdaIN generator has no instance norm of its own, so these are all
  the statistics it normalises with;
- ema: each frame's statistics smoothed over time (exponential moving average of the mean
  and the second moment, decay --ema_decay), for shots whose content changes.
cyclegan and pix2pix normalise with instance norm inside their generators: global and ema are
refused for them with one line (none works).
"""

from __future__ import annotations

import contextlib
import dataclasses
import fractions
import io
import os
import pathlib
import re
from typing import Callable, Iterable, Iterator

import jax.numpy as jnp
import numpy as np
from PIL import Image

from ganstyle_jax.data.decode import IMAGE_EXTENSIONS
from ganstyle_jax.errors import UserError

VIDEO_EXTENSIONS = (".mp4", ".m4v", ".mov", ".mkv")  # outputs: containers that take H.264
CONSISTENCY = ("none", "global", "ema")
GLOBAL_SAMPLE_FRAMES = 16  # global: at least this many (at most twice) frames sampled
DEFAULT_FPS = 25.0  # a folder of frames without --fps
CRF = "18"  # libx264 constant-rate factor: visually near-lossless


def require_av():
  """The PyAV module, or a UserError saying how to install it."""
  try:
    import av  # pylint: disable=g-import-not-at-top
  except ImportError:
    raise UserError("video needs PyAV: pip install 'ganstyle-jax[video]' (or pip install av)")
  return av


def is_sequence_job(content: pathlib.Path, out: pathlib.Path, consistency: str) -> bool:
  """Whether the stylize CLI treats --content as one sequence: a file that is not an image
  (a video), an --out video file, or --consistency other than none (a folder of frames)."""
  video_in = content.is_file() and content.suffix.lower() not in IMAGE_EXTENSIONS
  return video_in or out.suffix.lower() in VIDEO_EXTENSIONS or consistency != "none"


def _natural_key(path: pathlib.Path):
  return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", str(path))]


# ----------------------------------------------------------------------------- sources


@dataclasses.dataclass
class _Frames:
  """A folder of frames (images of one size), in natural order."""

  files: list[pathlib.Path]
  rate: fractions.Fraction
  audio_stream = None

  @property
  def count(self) -> int:
    return len(self.files)

  def frames(self, on_audio=None) -> Iterator[np.ndarray]:
    del on_audio
    from ganstyle_jax.stylize import read_image  # pylint: disable=g-import-not-at-top

    for path in self.files:
      yield read_image(path)

  def sample(self, n: int) -> Iterator[np.ndarray]:
    """n to 2n evenly spaced frames."""
    from ganstyle_jax.stylize import read_image  # pylint: disable=g-import-not-at-top

    for path in self.files[:: max(1, self.count // n)]:
      yield read_image(path)

  def close(self) -> None:
    pass


class _Video:
  """A video file open for reading: its first video stream (and first audio stream)."""

  def __init__(self, path: pathlib.Path):
    av = require_av()
    self.path = path
    if not path.exists():
      raise UserError(f"{path}: no such file or folder")
    try:
      self._container = av.open(str(path))
    except (av.FFmpegError, OSError, ValueError) as e:
      raise UserError(f"{path}: not an image or a video that PyAV can read ({e})") from None
    if not self._container.streams.video:
      self._container.close()
      raise UserError(f"{path}: no video stream (streams: {self._streams()})")
    v = self._container.streams.video[0]
    self.rate = fractions.Fraction(v.average_rate or v.guessed_rate or v.base_rate or 25)
    duration = (
      v.duration * v.time_base
      if v.duration and v.time_base
      else (self._container.duration or 0) / 1e6
    )
    self.count = v.frames or round(duration * self.rate)  # an estimate where not stored
    audio = self._container.streams.audio
    self.audio_stream = audio[0] if audio else None

  def _streams(self) -> str:
    return ", ".join(s.type for s in self._container.streams) or "none"

  def frames(self, on_audio: Callable | None = None) -> Iterator[np.ndarray]:
    """uint8 HWC RGB frames in order; audio packets of the first audio stream, in file
    order between them, go to on_audio."""
    av = require_av()
    v = self._container.streams.video[0]
    v.thread_type = "AUTO"
    streams = [v] + ([self.audio_stream] if on_audio and self.audio_stream else [])
    n = 0
    try:
      for packet in self._container.demux(streams):
        if packet.stream.type == "audio":
          if packet.dts is not None:
            on_audio(packet)
          continue
        for frame in packet.decode():
          n += 1
          yield frame.to_ndarray(format="rgb24")
    except av.FFmpegError as e:
      raise UserError(f"{self.path}: cannot decode frame {n + 1}: {e}") from None
    if n == 0:
      raise UserError(f"{self.path}: no frames in its video stream")

  def sample(self, n: int) -> Iterator[np.ndarray]:
    """About n to 2n evenly spaced frames (all of them when the count is not stored), read
    by a second decoder, so the main pass is unaffected."""
    stride = max(1, self.count // n) if self.count else 1
    other = _Video(self.path)
    try:
      for i, frame in enumerate(other.frames()):
        if i % stride == 0:
          yield frame
    finally:
      other.close()

  def close(self) -> None:
    self._container.close()


def open_source(path: pathlib.Path, fps: float | None):
  """A folder of frames or a video file (the --content of a sequence job)."""
  if path.is_dir():
    files = sorted(
      (p for p in path.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file()),
      key=_natural_key,
    )
    if not files:
      raise UserError(f"{path}: no frames ({', '.join(IMAGE_EXTENSIONS)}) in this folder")
    if fps is not None and not fps > 0:
      raise UserError(f"--fps={fps}: use a frame rate > 0")
    return _Frames(files, fractions.Fraction(fps or DEFAULT_FPS).limit_denominator(1001))
  if fps is not None:
    raise UserError("--fps applies to a folder of frames: a video keeps its own frame rate")
  return _Video(path)


# ----------------------------------------------------------------------------- sinks


class _FrameFolder:
  """Writes frames as out/frame_000001.png, ..."""

  def __init__(self, out: pathlib.Path):
    self.out, self.count = out, 0
    try:
      out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
      raise UserError(f"{out}: cannot write the frames there: {e.strerror or e}") from None
    if not os.access(out, os.W_OK):
      raise UserError(f"{out}: cannot write the frames there: permission denied")

  def audio(self, packet) -> None:
    del packet

  def write(self, frame: np.ndarray) -> None:
    self.count += 1
    Image.fromarray(frame).save(self.out / f"frame_{self.count:06d}.png")

  def close(self, failed: bool = False) -> None:
    del failed


class _H264:
  """An H.264 (yuv420p) video file at a constant frame rate, with a copied (or AAC) audio
  stream; streams are added at the first frame (its size decides the video's), and audio
  packets that arrive before it wait."""

  def __init__(self, out: pathlib.Path, rate: fractions.Fraction, audio_stream=None):
    av = self._av = require_av()
    self.out, self.rate, self.count = out, rate, 0
    self._template, self._audio, self._video, self._waiting = audio_stream, None, None, []
    try:
      out.parent.mkdir(parents=True, exist_ok=True)
      self._container = av.open(str(out), "w")
    except (av.FFmpegError, OSError, ValueError) as e:
      raise UserError(
        f"{out}: cannot write the video: {getattr(e, 'strerror', None) or e}"
      ) from None

  def _start(self, h: int, w: int) -> None:
    av = self._av
    codec = "libx264" if "libx264" in av.codecs_available else "h264"
    self._video = self._container.add_stream(codec, rate=self.rate)
    self._video.width, self._video.height = w + w % 2, h + h % 2
    self._video.pix_fmt = "yuv420p"
    if codec == "libx264":
      self._video.options = {"crf": CRF}
    if (h % 2 or w % 2) and self.count == 0:
      from absl import logging  # pylint: disable=g-import-not-at-top

      logging.warning(
        "%dx%d frames padded to %dx%d (H.264 4:2:0 needs even sizes)",
        w,
        h,
        self._video.width,
        self._video.height,
      )
    if self._template is not None:
      if self._can_copy(self._template):
        self._audio = self._container.add_stream_from_template(self._template)
        self._copy = True
      else:
        n = self._template.layout.nb_channels
        layout = {1: "mono", 2: "stereo", 6: "5.1", 8: "7.1"}.get(n, "stereo")
        self._audio = self._container.add_stream("aac", rate=self._template.rate, layout=layout)
        self._copy = False
    for packet in self._waiting:
      self._mux_audio(packet)
    self._waiting = []

  def _can_copy(self, template) -> bool:
    """Whether the output container takes the audio codec as it is (a header written in
    memory says)."""
    av = self._av
    probe = av.open(io.BytesIO(), "w", format=self._container.format.name)
    try:
      probe.add_stream_from_template(template)
      probe.start_encoding()
      return True
    except (av.FFmpegError, ValueError):
      return False
    finally:
      with contextlib.suppress(av.FFmpegError, ValueError):
        probe.close()

  def audio(self, packet) -> None:
    if self._video is None:
      self._waiting.append(packet)
    else:
      self._mux_audio(packet)

  def _mux_audio(self, packet) -> None:
    if self._copy:
      packet.stream = self._audio
      self._container.mux(packet)
      return
    for frame in packet.decode():
      frame.pts = None  # the encoder numbers its own samples
      self._container.mux(self._audio.encode(frame))

  def write(self, frame: np.ndarray) -> None:
    h, w = frame.shape[:2]
    if self._video is None:
      self._start(h, w)
    if (h + h % 2, w + w % 2) != (self._video.height, self._video.width):
      raise UserError(
        f"frame {self.count + 1} is {w}x{h}, the first {self._video.width}x"
        f"{self._video.height}: a video's frames must have one size"
      )
    if h % 2 or w % 2:
      frame = np.pad(frame, ((0, h % 2), (0, w % 2), (0, 0)), mode="edge")
    vf = self._av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")
    vf.pts = self.count
    vf.time_base = 1 / self.rate
    self._container.mux(self._video.encode(vf))
    self.count += 1

  def close(self, failed: bool = False) -> None:
    av = self._av
    try:
      if not failed and self._video is not None:
        self._container.mux(self._video.encode())
        if self._audio is not None and not self._copy:
          self._container.mux(self._audio.encode())
    finally:
      with contextlib.suppress(av.FFmpegError, OSError, ValueError):
        self._container.close()
      if failed or self._video is None:
        with contextlib.suppress(OSError):
          self.out.unlink()


def open_sink(out: pathlib.Path, rate: fractions.Fraction, audio_stream=None):
  """An H.264 file (a VIDEO_EXTENSIONS name) or a folder of PNG frames (no extension)."""
  suffix = out.suffix.lower()
  if suffix in VIDEO_EXTENSIONS:
    return _H264(out, rate, audio_stream)
  if suffix:
    raise UserError(
      f"--out={out}: a sequence is written as a video ({', '.join(VIDEO_EXTENSIONS)}) "
      "or into a folder of frames (a name without an extension)"
    )
  return _FrameFolder(out)


# ----------------------------------------------------------------------------- stylizing


class EmaStats:
  """Content statistics smoothed over time: exponential moving averages of each channel's
  mean and second moment (decay d: s_t = d s_{t-1} + (1 - d) x_t, s_1 = x_1); the std
  follows from the two. Call it on consecutive frames' own (mean, std) [n, 1, 1, C]."""

  def __init__(self, decay: float):
    if not 0.0 <= decay < 1.0:
      raise UserError(f"--ema_decay={decay}: use a number in [0, 1)")
    self.decay = decay
    self._mean = self._sq = None

  def __call__(self, mean, std):
    mean = np.asarray(mean, np.float64)
    sq = np.asarray(std, np.float64) ** 2 + mean**2
    out_mean, out_sq = np.empty_like(mean), np.empty_like(sq)
    for i in range(len(mean)):
      if self._mean is None:
        self._mean, self._sq = mean[i], sq[i]
      else:
        self._mean = self.decay * self._mean + (1 - self.decay) * mean[i]
        self._sq = self.decay * self._sq + (1 - self.decay) * sq[i]
      out_mean[i], out_sq[i] = self._mean, self._sq
    out_std = np.sqrt(np.maximum(out_sq - out_mean**2, 1e-5))
    return jnp.asarray(out_mean, jnp.float32), jnp.asarray(out_std, jnp.float32)


def stylize_frames(
  stylizer,
  frames: Iterable[np.ndarray],
  style=None,
  alpha: float = 1.0,
  *,
  consistency: str = "none",
  batch_frames: int = 8,
  ema_decay: float = 0.9,
  sample: Iterable[np.ndarray] | None = None,
  **options,
) -> Iterator[np.ndarray]:
  """Stylizes a sequence of frames, batch_frames at a time with one compiled function.

  Args:
    stylizer: a `stylize.Stylizer` (`ganstyle_jax.load(workdir)`).
    frames: uint8 HWC RGB frames of one size (any iterable; read once, in order).
    style, alpha: as in `Stylizer.stylize`; **options: its other keyword arguments.
    consistency: 'none' | 'global' | 'ema' (module docstring).
    batch_frames: frames per compiled call.
    ema_decay: 'ema': the weight of the past, in [0, 1).
    sample: 'global': the frames to take the sequence's statistics from (default: `frames`
      itself, which must then be a sequence that can be read twice).
  Yields:
    uint8 HWC RGB frames, one per input frame.
  """
  if consistency not in CONSISTENCY:
    raise UserError(f"--consistency={consistency!r}: use one of {', '.join(CONSISTENCY)}")
  if batch_frames < 1:
    raise UserError(f"--batch_frames={batch_frames}: use a positive number of frames")
  if isinstance(frames, (list, tuple, np.ndarray)):  # a short sequence: no padded frames
    batch_frames = min(batch_frames, max(1, len(frames)))
  stats = None
  if consistency == "global":
    if sample is None:
      if not isinstance(frames, (list, tuple, np.ndarray)):
        raise UserError("consistency='global' on a one-pass iterable needs `sample` frames")
      step = max(1, len(frames) // GLOBAL_SAMPLE_FRAMES)
      sample = frames[::step]
    stats = stylizer.content_stats(sample, options.get("max_size"), batch_frames)
  elif consistency == "ema":
    stylizer._require_adain_for_stats()  # pylint: disable=protected-access
    stats = EmaStats(ema_decay)
  from ganstyle_jax.stylize import _chunks  # pylint: disable=g-import-not-at-top

  for chunk in _chunks(frames, batch_frames):
    yield from stylizer.stylize_batch(
      chunk, style, alpha, content_stats=stats, batch_size=batch_frames, **options
    )


def stylize_sequence(
  stylizer,
  content: pathlib.Path,
  out: pathlib.Path,
  style=None,
  alpha: float = 1.0,
  *,
  consistency: str = "none",
  batch_frames: int = 8,
  ema_decay: float = 0.9,
  fps: float | None = None,
  **options,
) -> int:
  """The stylize CLI's sequence job: a video or a folder of frames to a video or a folder of
  frames, with a progress bar; returns the number of frames written.

  Args:
    stylizer: a `stylize.Stylizer`, or a function returning one (called once the input and
      the output are open, so that bad paths fail before a checkpoint is loaded).
    content, out: the input and output paths (module docstring); the other arguments as in
      `stylize_frames`, and fps: the frame rate of a folder of frames.
  Raises:
    UserError: one line: not a video, no frames, an unwritable output, a bad option.
  """
  from ganstyle_jax import console  # pylint: disable=g-import-not-at-top

  if consistency not in CONSISTENCY:  # before anything is decoded or written
    raise UserError(f"--consistency={consistency!r}: use one of {', '.join(CONSISTENCY)}")
  source = open_source(content, fps)
  try:
    sink = open_sink(out, source.rate, source.audio_stream)
    failed = True
    try:
      if callable(stylizer):
        stylizer = stylizer()
      if source.count and batch_frames > source.count:  # a short clip: no padded frames
        batch_frames = max(1, source.count)
      sample = source.sample(GLOBAL_SAMPLE_FRAMES) if consistency == "global" else None
      outputs = stylize_frames(
        stylizer,
        source.frames(on_audio=sink.audio),
        style,
        alpha,
        consistency=consistency,
        batch_frames=batch_frames,
        ema_decay=ema_decay,
        sample=sample,
        **options,
      )
      for frame in console.progress(outputs, total=source.count, desc="stylize", unit="frame"):
        sink.write(frame)
      failed = False
    finally:
      sink.close(failed)
  finally:
    source.close()
  return sink.count
