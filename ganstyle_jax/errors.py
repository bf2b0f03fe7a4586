"""User-facing errors: bad input that the command line reports as one line, not a traceback."""


class UserError(Exception):
  """Something the user can fix (a path, a config key, a file); the message says what and how.

  The command-line entry points catch it and print `error: <message>` with exit status 2.
  """


def lend_help_to_console_script(module_name: str) -> None:
  """absl's --help and --helpshort describe the `__main__` module: its docstring and the flags
  it defined. Run as a console script (`ganstyle-stylize`), `__main__` is pip's wrapper, which
  has neither; this gives it those of `module_name`, whose `run()` the wrapper calls. Nothing
  changes under `python -m`, where `__main__` is that module."""
  import sys  # pylint: disable=g-import-not-at-top
  from absl import flags  # pylint: disable=g-import-not-at-top

  wrapper = sys.modules["__main__"]
  spec = getattr(wrapper, "__spec__", None)
  if spec is not None and spec.name == module_name:
    return
  wrapper.__doc__ = wrapper.__doc__ or sys.modules[module_name].__doc__
  for flag in flags.FLAGS.get_key_flags_for_module(module_name):
    flags.FLAGS.register_key_flag_for_module(sys.argv[0], flag)


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

  lend_help_to_console_script(main.__module__)
  app.run(guarded, flags_parser=parse_flags)
