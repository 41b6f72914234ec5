"""No tool writes over what it reads: an output that names an input (the same path, or the same
file through a symlink or a hard link) is refused before anything is written."""

import os
from collections.abc import Iterable
from pathlib import Path

from lenet5.errors import UserError


def same_file(a: str | Path, b: str | Path) -> bool:
    """True when ``a`` and ``b`` are one file or folder on disk, however each is spelled."""
    try:
        return os.path.samefile(a, b)
    except OSError:  # one of them does not exist (yet): compare where each would be
        return Path(a).resolve() == Path(b).resolve()


def refuse_overwrite(
    output: Path, inputs: Iterable[tuple[str, Path]], flag: str = "--output", given: bool = True
) -> None:
    """A UserError when ``output`` is one of the ``(what, path)`` inputs; ``given``: the user
    named it with ``flag`` (else it is the tool's default name)."""
    for what, path in inputs:
        if same_file(output, path):
            named = f"{flag} {output}" if given else f"the default output {output}"
            raise UserError(f"{named} is the {what} itself ({path}): give {flag} another file")
