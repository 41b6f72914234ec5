"""Every file the project writes is written whole or not at all.

The bytes go to a hidden temporary file beside the target, are flushed to disk, then renamed
over it (an atomic step on POSIX): a crash, a kill or a full disk leaves the previous file (or
none), never a truncated one. A full disk or a read-only folder becomes one UserError line.
"""

import csv
import errno
import io
import os
import tempfile
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from lenet5.errors import UserError

REASONS = {errno.ENOSPC: "no space left on the device", errno.EDQUOT: "disk quota exceeded"}


def _reason(error: OSError) -> str:
    return REASONS.get(error.errno, error.strerror or str(error))


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """A temporary path to write ``path``'s new content to (by any library); moved into place
    when the block ends without an error, removed otherwise."""
    path = Path(path)
    try:
        handle, name = tempfile.mkstemp(
            prefix=f".{path.name}.", suffix=f".partial{path.suffix}", dir=path.parent
        )
        os.close(handle)
    except OSError as error:
        raise UserError(f"{path}: cannot write ({_reason(error)})") from error
    partial = Path(name)
    try:
        yield partial
        with open(partial, "rb+") as file:
            os.fsync(file.fileno())
        os.chmod(partial, 0o644)
        os.replace(partial, path)
    except OSError as error:
        partial.unlink(missing_ok=True)
        raise UserError(f"{path}: not written, the previous state is kept ({_reason(error)})") from error
    except BaseException:
        partial.unlink(missing_ok=True)
        raise


def write_whole(path: str | Path, data: str | bytes) -> None:
    with atomic_path(path) as partial:
        if isinstance(data, str):
            partial.write_text(data)
        else:
            partial.write_bytes(data)


def save_whole(path: str | Path, save: Callable[[Path], None]) -> None:
    """``save(temporary_path)`` by any library (PIL, matplotlib, onnx, ``torch.save``), then
    moved into place."""
    with atomic_path(path) as partial:
        save(partial)


def write_rows(path: str | Path, fieldnames: list[str], rows: Iterable[dict[str, Any]]) -> None:
    """A CSV file of ``rows`` under a header of ``fieldnames``."""
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=fieldnames)
    writer.writeheader()
    writer.writerows(rows)
    write_whole(path, text.getvalue().encode())
