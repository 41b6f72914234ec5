"""What a single run may do with the folder it is given (``hydra.run.dir=...``).

- One process at a time trains there: an exclusive ``flock`` on ``<folder>/.lenet5.lock``,
  held for the run's whole life. The kernel releases it when its holder dies, however it dies,
  so a lock file left by a killed run never blocks the next one; the file holds its holder's
  process id for the second process's message. Where ``fcntl`` or the filesystem has no
  ``flock`` (Windows, some network filesystems), runs go unlocked rather than failing.
- A fresh run (no ``ckpt_path``) may not run into a folder holding a finished run or
  checkpoints: Hydra would rewrite every file of it.
"""

import errno
import os
import sys
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager, suppress
from pathlib import Path
from typing import Any

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None

from lenet5.run_files import LOCK as LOCK_FILE
from lenet5.run_files import METRICS

# Command-line flags after which Hydra prints something and runs nothing.
NO_RUN_FLAGS = ("--help", "-h", "--hydra-help", "--cfg", "-c", "--info", "-i", "--shell-completion", "-sc")


class FolderBusy(Exception):
    def __init__(self, folder: Path, holder: str):
        super().__init__(
            f"{folder} is being trained by another process (pid {holder}); wait for it to finish"
        )


def refuse(message: str) -> None:
    """The command line's one line and exit status 2, for a refusal before Hydra starts."""
    print(f"error: {message}", file=sys.stderr)
    raise SystemExit(2)


def option(argv: list[str], key: str) -> Any:
    """The value the last ``key=`` word of argv gives it, as Hydra's grammar reads it (quotes
    removed, ``null`` as None); a word Hydra cannot parse is left for Hydra to report."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    value = None
    for word in argv:
        if "=" not in word or word.split("=", 1)[0].lstrip("+~") != key:
            continue
        try:
            value = OverridesParser.create().parse_override(word).value()
        except Exception:  # noqa: BLE001 - Hydra reports it in its own words
            value = word.split("=", 1)[1]
    return value


def runs_nothing(argv: list[str]) -> bool:
    """A multirun (each job has a folder of its own), a flag that only prints, or a DDP process
    Lightning, torchrun or SLURM started beside the first one: that one owns the folder."""
    ranks = (os.environ.get(name, "0") for name in ("LOCAL_RANK", "RANK", "SLURM_PROCID"))
    secondary = any(rank not in ("", "0") for rank in ranks)
    return secondary or any(a in ("-m", "--multirun", *NO_RUN_FLAGS) for a in argv)


def earlier_run(folder: Path) -> str | None:
    """What in ``folder`` a fresh run would overwrite: a finished run's metrics or checkpoints."""
    if (folder / METRICS).is_file():
        return f"a finished run ({METRICS})"
    checkpoint = next((p for p in sorted(folder.rglob("*.ckpt")) if p.is_file()), None)
    return f"a run's checkpoints ({checkpoint.relative_to(folder)})" if checkpoint else None


def _holder(fd: int) -> str:
    os.lseek(fd, 0, os.SEEK_SET)
    return os.read(fd, 32).decode(errors="replace").strip() or "unknown"


@contextmanager
def folder_lock(folder: Path) -> Iterator[None]:
    """Raises FolderBusy, leaving the folder as it was, if another process holds it."""
    if fcntl is None:
        yield
        return
    path = folder / LOCK_FILE
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as error:
            busy = error.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES)
            holder = _holder(fd) if busy else ""
            os.close(fd)
            if busy:
                raise FolderBusy(folder, holder) from None
            yield  # no flock on this filesystem
            return
        try:
            same = os.path.samestat(os.fstat(fd), os.stat(path))
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)  # its holder removed the file between our open and our lock: take the new one
    try:
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        yield
    finally:
        with suppress(OSError):
            path.unlink()  # while still locked: a process that opened it retries on a new file
        os.close(fd)


@contextmanager
def owned_folder(folder: Path, given: str, fresh: bool) -> Iterator[None]:
    """The folder created if need be and locked around the run; refused in one line, the
    folder left as it was, if another process holds it, if it cannot be written, or if a
    ``fresh`` run would overwrite a run. A folder created here that nothing was written into
    is removed again (a config error before Hydra started)."""
    created = not folder.exists()
    try:
        with ExitStack() as stack:
            try:
                folder.mkdir(parents=True, exist_ok=True)
                stack.enter_context(folder_lock(folder))
            except FolderBusy as busy:
                refuse(str(busy))
            except OSError as error:
                refuse(f"hydra.run.dir={given}: cannot write there ({error.strerror}); choose another folder")
            if fresh and (earlier := earlier_run(folder)):
                refuse(
                    f"hydra.run.dir={given} holds {earlier}: resume it with ckpt_path=last (and a "
                    f"larger trainer.max_epochs if it finished), or choose another hydra.run.dir"
                )
            yield
    finally:
        if created and folder.is_dir() and not any(folder.iterdir()):
            folder.rmdir()
