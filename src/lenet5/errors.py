"""Errors the user can fix. Entry points print their message on one line and exit non-zero."""


class UserError(Exception):
    """Bad input: a value, a file or a folder; the message says which and what is allowed."""


class SettingError(UserError, ValueError):
    """A setting outside what it allows (lenet5.validation): one line for the command line, and
    the ValueError a Python caller expects of a constructor given a bad argument."""


def first_line(error: BaseException) -> str:
    """An error's message cut to its first line (its type's name when it has none)."""
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
