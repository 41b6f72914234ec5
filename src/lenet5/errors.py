"""Errors the user can fix. Entry points print their message on one line and exit non-zero."""


class UserError(Exception):
    """Bad input: a value, a file or a folder; the message says which and what is allowed."""
