"""Command-line entry: python -m ganstyle_jax.main --config=configs/demo.py --workdir=DIR.

Overrides: --config.KEY=VALUE (the config is locked: an unknown key fails at once).
Multi-process (one process per host): --coordinator_address, --num_processes, --process_id,
--distributed (see ganstyle_jax/distributed.py and the README). --verbosity=1 shows the
libraries' INFO records (ganstyle_jax/console.py).
All logic lives in train.train_and_evaluate, importable from tests and notebooks.
"""

import os
import sys
import traceback

from absl import app, flags, logging
from ml_collections import config_flags

flags.DEFINE_string("workdir", None, "Directory for checkpoints, logs and sample grids.")
config_flags.DEFINE_config_file(
  "config", None, "Config file (a get_config() .py file).", lock_config=True
)
flags.DEFINE_enum(
  "distributed",
  "auto",
  ["auto", "on", "off"],
  "Multi-process runtime: auto (explicit flags, SLURM or Open MPI), on (also lets "
  "JAX detect TPU pod slices), off.",
)
flags.DEFINE_string("coordinator_address", None, "HOST:PORT of process 0's coordinator.")
flags.DEFINE_integer("num_processes", None, "Number of processes (hosts) in the run.")
flags.DEFINE_integer("process_id", None, "This process's index in [0, num_processes).")
flags.mark_flags_as_required(["config", "workdir"])
FLAGS = flags.FLAGS


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
  from ganstyle_jax import console  # pylint: disable=g-import-not-at-top

  console.configure()
  from ganstyle_jax import distributed, train  # after flag parsing: importing TF/JAX is slow
  from ganstyle_jax.errors import UserError

  try:
    distributed.initialize(
      FLAGS.distributed, FLAGS.coordinator_address, FLAGS.num_processes, FLAGS.process_id
    )
    train.train_and_evaluate(FLAGS.config, FLAGS.workdir)
  except UserError as e:
    if not console.quiet():  # the console prints the same line below
      logging.error("%s", e)
    print(f"error: {e}", file=sys.stderr)
    sys.exit(2)
  except KeyboardInterrupt:
    print(
      "error: aborted by a second Ctrl-C, without saving; the next start resumes from the "
      "last checkpoint",
      file=sys.stderr,
    )
    sys.exit(130)


def _config_arg(argv) -> str | None:
  """The value FILE[:ARGS] of --config in argv."""
  for i, arg in enumerate(argv):
    if arg.startswith("--config="):
      return arg.split("=", 1)[1]
    if arg == "--config" and i + 1 < len(argv):
      return argv[i + 1]
  return None


def _config_path(argv) -> str | None:
  """The file of --config=FILE[:ARGS] in argv."""
  value = _config_arg(argv)
  return None if value is None else os.path.abspath(value.split(":", 1)[0])


def unknown_override(argv) -> str | None:
  """'--config.a.b: config.a has no key 'b' ...' for the first --config.KEY=VALUE override
  whose KEY the config file's config lacks (with the closest key, or the keys there are);
  None when every override's key exists or the config file cannot be read."""
  import difflib  # pylint: disable=g-import-not-at-top
  import runpy  # pylint: disable=g-import-not-at-top

  import ml_collections  # pylint: disable=g-import-not-at-top

  file, _, arg = (_config_arg(argv) or "").partition(":")
  try:
    get_config = runpy.run_path(file)["get_config"]
    config = get_config(arg) if arg else get_config()
  except Exception:  # pylint: disable=broad-except
    return None
  for a in argv:
    if not a.startswith("--config."):
      continue
    node, where = config, "config"
    for key in a[len("--config.") :].split("=", 1)[0].split("."):
      if not isinstance(node, ml_collections.ConfigDict):
        break
      if key not in node:
        close = difflib.get_close_matches(key, list(node.keys()), n=1)
        hint = f"did you mean {close[0]!r}?" if close else f"its keys: {', '.join(node.keys())}"
        return f"{a.split('=', 1)[0]}: {where} has no key {key!r}; {hint}"
      node, where = node[key], f"{where}.{key}"
  return None


def config_file_error(e: BaseException, config_path: str | None) -> str | None:
  """'FILE, line N: Error: message' when the config file itself raised `e` (its syntax or its
  code), else None."""
  if config_path is None:
    return None
  if isinstance(e, SyntaxError):
    if e.filename and os.path.abspath(e.filename) == config_path:
      return f"{e.filename}, line {e.lineno}: {type(e).__name__}: {e.msg}"
    return None
  frames = [
    f for f in traceback.extract_tb(e.__traceback__) if os.path.abspath(f.filename) == config_path
  ]
  if not frames:
    return None
  return f"{frames[-1].filename}, line {frames[-1].lineno}: {type(e).__name__}: {e}"


def parse_flags(argv):
  """absl flag parsing, with config errors (unknown key, bad value, missing file, a config file
  that fails to import) as one line."""
  try:
    rest = FLAGS(argv)
    if FLAGS["verbosity"].value < 1:
      from ganstyle_jax import console  # pylint: disable=g-import-not-at-top

      console.quiet_native_logs()  # before a config file can import TF
    FLAGS.config.keys()  # the config file is loaded lazily: load it here, inside the try
    return rest
  except flags.Error as e:
    sys.exit(
      f"error: {e}\nusage: python -m ganstyle_jax.main --config=FILE --workdir=DIR "
      "[--config.KEY=VALUE ...]"
    )
  except Exception as e:  # pylint: disable=broad-except
    path = _config_path(argv)
    if path is not None and not os.path.isfile(path):
      sys.exit(f"error: --config={_config_arg(argv)}: no such config file")
    where = config_file_error(e, path)
    if where:
      sys.exit(f"error: the config file failed to load: {where}")
    unknown = unknown_override(argv) if isinstance(e, (AttributeError, KeyError)) else None
    if unknown:
      sys.exit(f"error: {unknown}")
    if isinstance(e, (AttributeError, KeyError, TypeError, ValueError, OSError)):
      msg = " ".join(str(e).strip("'\"").replace("\\n", "\n").replace("\\'", "'").split())
      sys.exit(f"error: bad --config or --config.KEY override: {msg}")
    raise


def run():
  """Console script `ganstyle-train`."""
  from ganstyle_jax.errors import lend_help_to_console_script  # pylint: disable=g-import-not-at-top

  lend_help_to_console_script(__name__)
  app.run(main, flags_parser=parse_flags)


if __name__ == "__main__":
  run()
