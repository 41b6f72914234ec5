"""Errors the user can fix. Entry points print their message on one line and exit non-zero."""


class UserError(Exception):
    """Bad input: a value, a file or a folder; the message says which and what is allowed."""


class SettingError(UserError, ValueError):
    """A setting outside what it allows (lenet5.validation): one line for the command line, and
    the ValueError a Python caller expects of a constructor given a bad argument."""
