"""User-facing errors: bad input that the command line reports as one line, not a traceback."""


class UserError(Exception):
  """Something the user can fix (a path, a config key, a file); the message says what and how.

  The command-line entry points catch it and print `error: <message>` with exit status 2.
  """
