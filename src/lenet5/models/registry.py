"""Name -> builder lookup shared by every model axis, so a bad name says what is allowed."""

from collections.abc import Mapping
from typing import TypeVar

T = TypeVar("T")


def choose(options: Mapping[str, T], axis: str, name: str) -> T:
    if name not in options:
        raise ValueError(f"unknown {axis} {name!r}; choose one of: {', '.join(options)}")
    return options[name]
