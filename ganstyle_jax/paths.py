"""Workdir file I/O on any filesystem, and the one-trainer-per-workdir lock.

Every host-side read and write of a workdir (config.json, samples, the lock; TensorBoard
events and orbax checkpoints use the same layer inside clu and orbax) goes through
etils.epath, so `--workdir=gs://BUCKET/run` (or any scheme epath serves through tf.io.gfile
or fsspec) writes the bucket instead of a local folder named "gs:". Local paths stay plain
paths, made absolute (orbax needs absolute paths).
"""

from __future__ import annotations

import datetime
import io
import json
import os
import secrets
import socket

from absl import logging
from etils import epath
from PIL import Image

from ganstyle_jax.errors import UserError

LOCK_NAME = "lock"


def is_local(path: str | os.PathLike) -> bool:
  return "://" not in os.fspath(path)


def absolute(path: str | os.PathLike) -> str:
  """`path` as a string: absolute if local, unchanged if a URI (gs://...)."""
  path = os.fspath(path)
  return os.path.abspath(path) if is_local(path) else path


def join(base: str | os.PathLike, *parts: str) -> str:
  return os.fspath(epath.Path(absolute(base)).joinpath(*parts))


def exists(path: str | os.PathLike) -> bool:
  return epath.Path(absolute(path)).exists()


def makedirs(path: str | os.PathLike) -> None:
  epath.Path(absolute(path)).mkdir(parents=True, exist_ok=True)


def read_text(path: str | os.PathLike) -> str:
  return epath.Path(absolute(path)).read_text()


def write_text(path: str | os.PathLike, text: str) -> None:
  """Writes a whole file. Local files go through a temporary file and a rename, so a reader
  or a kill never leaves a half-written one; object stores write whole objects anyway."""
  path = absolute(path)
  if is_local(path):
    tmp = f"{path}.tmp-{os.getpid()}"
    with open(tmp, "w") as f:
      f.write(text)
    os.replace(tmp, path)
  else:
    epath.Path(path).write_text(text)


def write_png(path: str | os.PathLike, image) -> None:
  buf = io.BytesIO()
  Image.fromarray(image).save(buf, format="PNG")
  epath.Path(absolute(path)).write_bytes(buf.getvalue())


def remove(path: str | os.PathLike) -> None:
  epath.Path(absolute(path)).unlink(missing_ok=True)


def rename(src: str | os.PathLike, dst: str | os.PathLike) -> None:
  epath.Path(absolute(src)).rename(absolute(dst))


# ----------------------------------------------------------------------------- the lock


def _start_ticks(pid: int) -> str | None:
  """A process's start time in clock ticks since boot (Linux /proc), to tell a reused PID."""
  try:
    with open(f"/proc/{pid}/stat") as f:
      return f.read().rsplit(")", 1)[1].split()[19]
  except (OSError, IndexError):
    return None


def _alive(holder: dict) -> bool:
  """Whether a same-host lock holder is still running (and is the process that locked)."""
  pid = int(holder.get("pid", -1))
  try:
    os.kill(pid, 0)
  except ProcessLookupError:
    return False
  except PermissionError:
    return True
  ticks = holder.get("start_ticks")
  return ticks is None or _start_ticks(pid) in (None, ticks)


class WorkdirLock:
  """workdir/lock: the running trainer's host, PID and start time.

  Taken before a trainer writes anything, removed when it ends. A second trainer refuses with
  one line naming the holder. A lock whose holder is dead (same host: no such PID any more) is
  taken over with a warning, as after kill -9. Local files are created exclusively (O_EXCL);
  on object stores (gs://) the create is check-then-write and read back, which two trainers
  starting within the same second could both pass.
  """

  def __init__(self, workdir: str | os.PathLike):
    self.path = join(workdir, LOCK_NAME)
    self.token = secrets.token_hex(8)
    self.held = False

  def _record(self) -> dict:
    return {
      "host": socket.gethostname(),
      "pid": os.getpid(),
      "start_ticks": _start_ticks(os.getpid()),
      "started": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
      "token": self.token,
    }

  def _create(self) -> bool:
    text = json.dumps(self._record(), indent=2)
    if is_local(self.path):
      try:
        fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
      except FileExistsError:
        return False
      with os.fdopen(fd, "w") as f:
        f.write(text)
      return True
    if exists(self.path):
      return False
    write_text(self.path, text)
    return json.loads(read_text(self.path)).get("token") == self.token

  def _holder(self) -> dict:
    try:
      return json.loads(read_text(self.path))
    except (OSError, ValueError):  # being written, or not JSON: described as unknown
      return {}

  def acquire(self) -> None:
    """Takes the lock, or raises UserError naming its holder and how to proceed."""
    for _ in range(3):
      if self._create():
        self.held = True
        return
      holder = self._holder()
      same_host = holder.get("host") == socket.gethostname()
      if holder and same_host and not _alive(holder):
        logging.warning(
          "Taking over the stale lock %s of PID %s (started %s), which is no longer running.",
          self.path,
          holder.get("pid"),
          holder.get("started"),
        )
        remove(self.path)
        continue
      who = (
        f"PID {holder.get('pid')} on host {holder.get('host')}, started {holder.get('started')}"
        if holder
        else "an unknown holder"
      )
      raise UserError(
        f"{os.path.dirname(self.path)} is in use by another trainer ({who}); "
        f"wait for it, stop it, or use another --workdir (if that run is dead, "
        f"delete {self.path})"
      )
    raise UserError(f"could not take the lock {self.path}: it keeps changing")

  def release(self) -> None:
    """Removes the lock if this trainer still holds it."""
    if self.held and self._holder().get("token") == self.token:
      remove(self.path)
    self.held = False
