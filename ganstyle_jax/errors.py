"""User-facing errors: bad input that the command line reports as one line, not a traceback."""


class UserError(Exception):
  """Something the user can fix (a path, a config key, a file); the message says what and how.

  The command-line entry points catch it and print `error: <message>` with exit status 2.
  """


def run_cli(main) -> None:
  """absl's app.run(main), with the console set up (ganstyle_jax/console.py: library INFO
  records hidden unless --verbosity=1), a flag error (unknown flag, bad value, missing required
  flag) printed as one `error: <message>` line with exit status 1, and a UserError printed as
  `error: <message>` with exit status 2."""
  import sys  # pylint: disable=g-import-not-at-top
  from absl import app  # pylint: disable=g-import-not-at-top

  from ganstyle_jax import console  # pylint: disable=g-import-not-at-top

  def parse_flags(argv):
    from absl import flags  # pylint: disable=g-import-not-at-top

    try:
      return flags.FLAGS(argv)
    except flags.Error as e:
      sys.exit(f"error: {e} (--helpshort lists the flags)")

  def guarded(argv):
    console.configure()
    try:
      main(argv)
    except UserError as e:
      print(f"error: {e}", file=sys.stderr)
      sys.exit(2)

  app.run(guarded, flags_parser=parse_flags)
