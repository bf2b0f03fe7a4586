"""The console of the command-line tools: what runs, progress, warnings and errors, a summary.

Every CLI (train, stylize, evaluate, benchmark, export, app) calls `configure()` once its flags
are parsed (`errors.run_cli` does it for the tools that use it). At the default verbosity:

- INFO records are hidden, the libraries' (orbax, TFDS, absl, TF, JAX/XLA) and ours alike:
  what a person needs from them is in the start line, the progress and the summary;
- warnings and errors are shown in one short form (`warning: ...`, `warning (orbax): ...`),
  less a few known, harmless library warnings (TFDS's "Using custom data configuration" for
  the embedded dataset, TF's deprecation notices inside TFDS);
- the native (C++) INFO and WARNING records of TF and XLA are hidden (TF_CPP_MIN_LOG_LEVEL=2
  where it is unset or JAX's default 1), TF's start-up notices (`import_tensorflow`, through
  which the data package imports TF: hidden at every verbosity and in library use), and
  TFDS's progress bars and messages while it builds the embedded dataset (one line says
  that it does).

`--verbosity=1` (absl's flag) shows every record as absl formats it, as before this console
existed; 2 and above add DEBUG records (absl's verbosity 1, 2, ...).

Progress: a tqdm bar on a terminal; anywhere else (a log file, CI, nohup) a plain line now and
then, never carriage-return updates. With several processes only process 0 prints progress,
the start line and the summary.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from typing import Iterable, Iterator, TypeVar

T = TypeVar("T")

_state = {"quiet": False}

# (path fragment, message prefix) of library warnings that say nothing to a user of this
# project: TFDS warns for every unregistered builder config (the embedded dataset makes one per
# size), TF's deprecation notices are about TFDS's own calls, orbax's about read-only use.
_HARMLESS_WARNINGS = (
  ("tensorflow_datasets", "Using custom data configuration"),
  ("tensorflow_datasets", "Variant folder"),  # a dataset not built yet: we build it next
  (os.path.join("tensorflow", "python", "util", "deprecation.py"), ""),
  # Readers (stylize, evaluate, the app) open the checkpoints read-only, on purpose.
  ("orbax", "CheckpointManagerOptions.read_only=True"),
  ("orbax", "Given directory is read only"),
)


def quiet() -> bool:
  """Whether `configure` hid the INFO records (the default verbosity)."""
  return _state["quiet"]


def is_main_process() -> bool:
  """Process 0 of a multi-process run (or the only one): the one that prints progress."""
  import jax  # pylint: disable=g-import-not-at-top

  return jax.process_index() == 0


def _library(pathname: str) -> str | None:
  """The top-level package a log record comes from, None for ganstyle_jax (or unknown)."""
  parts = os.path.normpath(pathname).split(os.sep)
  for marker in ("site-packages", "dist-packages"):
    if marker in parts:
      i = parts.index(marker)
      if i + 1 < len(parts):
        name = parts[i + 1]
        name = name[:-3] if name.endswith(".py") else name
        return None if name == "ganstyle_jax" else name.split(".")[0]
  return None


class _ConsoleFormatter(logging.Formatter):
  """`warning: message`, `error (orbax): message`: the level and, for a library, its name."""

  def format(self, record: logging.LogRecord) -> str:
    level = record.levelname.lower().replace("critical", "fatal")
    lib = _library(record.pathname)
    text = record.getMessage()
    if record.exc_info and record.levelno >= logging.ERROR:
      text += "\n" + self.formatException(record.exc_info)
    return f"{level} ({lib}): {text}" if lib else f"{level}: {text}"


class _ConsoleHandler(logging.Handler):
  """Writes records through tqdm, so that a progress bar on the terminal stays whole."""

  def __init__(self):
    super().__init__(logging.WARNING)
    self.setFormatter(_ConsoleFormatter())
    self.addFilter(self._keep)

  @staticmethod
  def _keep(record: logging.LogRecord) -> bool:
    if record.levelno >= logging.ERROR:
      return True
    msg = str(record.msg)
    return not any(
      where in record.pathname and msg.startswith(prefix) for where, prefix in _HARMLESS_WARNINGS
    )

  def emit(self, record: logging.LogRecord) -> None:
    try:
      write(self.format(record), err=True)
    except Exception:  # pylint: disable=broad-except
      self.handleError(record)


def configure(verbosity: int | None = None) -> None:
  """Sets up logging for a command-line tool; call it after absl parsed the flags.

  Args:
    verbosity: None reads absl's --verbosity (0 when not given). 0 or less: the console
      described in the module docstring; 1: every INFO record in absl's format; 2 and above:
      DEBUG records too.
  """
  from absl import flags  # pylint: disable=g-import-not-at-top
  from absl import logging as absl_logging  # pylint: disable=g-import-not-at-top

  if verbosity is None:
    flag = flags.FLAGS["verbosity"] if "verbosity" in flags.FLAGS else None
    verbosity = flag.value if flag is not None and flag.present else 0
  root = logging.getLogger()
  if verbosity >= 1:
    _state["quiet"] = False
    absl_logging.set_verbosity(verbosity - 1)  # absl's 0 is INFO, 1 DEBUG
    return
  _state["quiet"] = True
  quiet_native_logs()
  absl_logging.use_absl_handler()
  absl_logging.set_verbosity(absl_logging.WARNING)
  for handler in list(root.handlers):
    if handler is absl_logging.get_absl_handler() or isinstance(handler, _ConsoleHandler):
      root.removeHandler(handler)
  root.addHandler(_ConsoleHandler())
  root.setLevel(logging.WARNING)


def quiet_native_logs() -> None:
  """TF_CPP_MIN_LOG_LEVEL=2 (native INFO and WARNING records hidden) unless the environment
  chose a level other than the 1 that importing JAX sets by default. TF reads it once, when
  it is first imported: call this before."""
  if os.environ.get("TF_CPP_MIN_LOG_LEVEL", "1") == "1":
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "2"


def import_tensorflow() -> None:
  """Imports TensorFlow (the input pipeline's tf.data) with stderr closed meanwhile: TF prints
  its oneDNN notices through absl's C++ logging before that logging is set up, whatever
  TF_CPP_MIN_LOG_LEVEL says (TF 2.21: two notices on every import), and every command-line
  tool would print them before its first line. The data package imports TF through this, in
  library use too. An import error is still raised."""
  if "tensorflow" in sys.modules:
    return
  sys.stderr.flush()
  saved = os.dup(2)
  try:
    with open(os.devnull, "w") as null:
      os.dup2(null.fileno(), 2)
      try:
        import tensorflow  # noqa: F401  pylint: disable=g-import-not-at-top,unused-import
      finally:
        os.dup2(saved, 2)
  finally:
    os.close(saved)


def tfds_quiet():
  """A context in which TFDS prepares a dataset: in console mode without its progress bars
  and the lines it prints; otherwise as TFDS does it."""
  import contextlib  # pylint: disable=g-import-not-at-top
  import io  # pylint: disable=g-import-not-at-top

  if not quiet():
    return contextlib.nullcontext()
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top

  tfds.disable_progress_bar()
  return contextlib.redirect_stdout(io.StringIO())


def write(text: str, err: bool = False) -> None:
  """Prints a line to stdout (or stderr) without breaking a progress bar, and flushes it, so
  that stdout and stderr keep their order in one log file."""
  from tqdm import tqdm  # pylint: disable=g-import-not-at-top

  stream = sys.stderr if err else sys.stdout
  tqdm.write(text, file=stream)
  stream.flush()


def is_terminal(stream=None) -> bool:
  stream = stream or sys.stderr
  try:
    return stream.isatty()
  except (AttributeError, ValueError):
    return False


def duration(seconds: float) -> str:
  """'42.1 s', '4m12s', '1h05m'."""
  if seconds < 60:
    return f"{seconds:.1f} s"
  minutes, s = divmod(int(round(seconds)), 60)
  if minutes < 60:
    return f"{minutes}m{s:02d}s"
  hours, minutes = divmod(minutes, 60)
  return f"{hours}h{minutes:02d}m"


class StepProgress:
  """Training progress: step/total, it/s, ETA and the last losses and evaluation PSNR.

  On a terminal a tqdm bar (its postfix updated at log steps, when the metrics are fetched
  anyway); elsewhere one plain line per `log` call, so a log file gets one line per log step.

  Args:
    start: the step training resumes from (0 for a new run).
    total: the last step.
    enabled: False prints nothing (processes other than 0).
  """

  KEYS = ("g/loss", "d/loss")

  def __init__(self, start: int, total: int, enabled: bool = True, stream=None):
    self.start, self.total, self.enabled = start, total, enabled
    self.stream = stream or sys.stderr
    self.psnr: float | None = None
    self._metrics: dict[str, float] = {}
    self._bar = None
    self._t_line, self._s_line = time.time(), start
    self._t_first_line = self._s_first_line = None  # the first line's step includes compiling
    if enabled and is_terminal(self.stream):
      from tqdm import tqdm  # pylint: disable=g-import-not-at-top

      self._bar = tqdm(
        total=total,
        initial=start,
        unit="step",
        dynamic_ncols=True,
        mininterval=0.5,
        file=self.stream,
        bar_format="{l_bar}{bar}| {n_fmt}/{total_fmt} [{elapsed}<{remaining}, {rate_fmt}]{postfix}",
      )

  def step(self, step: int) -> None:
    """Called after every step: moves the bar (nothing to print in a log file)."""
    if self._bar is not None:
      self._bar.update(step - self._bar.n)

  def _postfix(self) -> str:
    parts = [f"{k} {self._metrics[k]:.3f}" for k in self.KEYS if k in self._metrics]
    if self.psnr is not None:
      parts.append(f"PSNR {self.psnr:.2f} dB")
    return "  ".join(parts)

  def log(self, step: int, metrics: dict[str, float], psnr: float | None = None) -> None:
    """At a log step: the losses just fetched and the last evaluation's PSNR (if any)."""
    if not self.enabled:
      return
    self._metrics = metrics
    self.psnr = psnr if psnr is not None else self.psnr
    if self._bar is not None:
      self._bar.set_postfix_str(self._postfix(), refresh=False)
      self.step(step)
      return
    now = time.time()
    rate = (step - self._s_line) / max(now - self._t_line, 1e-9)
    self._t_line, self._s_line = now, step
    # ETA from the mean rate since the first line (evaluations and saves included), which
    # leaves out the compilation of the first step; from the last interval until then.
    if self._t_first_line is None:
      self._t_first_line, self._s_first_line = now, step
      mean = rate
    else:
      mean = (step - self._s_first_line) / max(now - self._t_first_line, 1e-9)
    eta = duration((self.total - step) / mean) if mean > 0 else "?"
    width = len(str(self.total))
    text = f"step {step:{width}d}/{self.total}  {rate:5.2f} it/s  ETA {eta:>7}  {self._postfix()}"
    from tqdm import tqdm  # pylint: disable=g-import-not-at-top

    tqdm.write(text.rstrip(), file=self.stream)
    self.stream.flush()

  def close(self) -> None:
    if self._bar is not None:
      self._bar.close()
      self._bar = None


def progress(
  items: Iterable[T], total: int | None = None, desc: str = "", unit: str = "it", every_s=30.0
) -> Iterator[T]:
  """Iterates `items` with progress: a tqdm bar on a terminal, else a plain line at most every
  `every_s` seconds and one at the end; nothing for a single item."""
  items = list(items) if total is None else items
  total = len(items) if total is None else total
  if total <= 1:
    yield from items
    return
  if is_terminal():
    from tqdm import tqdm  # pylint: disable=g-import-not-at-top

    yield from tqdm(items, total=total, desc=desc, unit=unit, dynamic_ncols=True, file=sys.stderr)
    return
  t0 = t_line = time.time()
  n = 0
  for n, item in enumerate(items, 1):
    yield item
    now = time.time()
    if now - t_line >= every_s and n < total:
      write(f"{desc}: {n}/{total} {unit} ({n / (now - t0):.2f} {unit}/s)", err=True)
      t_line = now
  if n:
    write(f"{desc}: {n}/{total} {unit} in {duration(time.time() - t0)}", err=True)
