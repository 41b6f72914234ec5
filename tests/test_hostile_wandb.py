"""``logger=wandb`` online where it cannot work: no API key (wandb would ask for one on a terminal
and wait), a key but no server answering (wandb waits 90 s, then raises CommError), a W&B folder
that cannot be written. Each stops before training with one ``error:`` line and exit status 2.
"""

import os
import pty
import select
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from lenet5.errors import UserError
from lenet5.results import wandb_logging
from support import QUICK, REPO

NO_PROMPT_SECONDS = 240  # far over the refusal's time on a busy machine; a prompt waits forever


@pytest.fixture
def no_key(tmp_path: Path, hermetic_env: dict[str, str], monkeypatch) -> dict[str, str]:
    """No API key anywhere wandb looks: environment, netrc, its settings file."""
    env = {k: v for k, v in hermetic_env.items() if k not in ("WANDB_API_KEY", "WANDB_MODE")}
    env["NETRC"] = str(tmp_path / "no_netrc")
    for name in ("WANDB_API_KEY", "WANDB_IDENTITY_TOKEN_FILE", "WANDB_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    for name in ("NETRC", "WANDB_CONFIG_DIR", "WANDB_CACHE_DIR", "WANDB_DIR"):
        monkeypatch.setenv(name, env[name])
    return env


def on_a_terminal(command: list[str], env: dict[str, str], cwd: Path) -> tuple[int, str]:
    """Run ``command`` with a pseudo-terminal as stdin, stdout and stderr, as a user would: a
    program that asks for input waits here, and is killed after NO_PROMPT_SECONDS."""
    main, child = pty.openpty()
    process = subprocess.Popen(command, stdin=child, stdout=child, stderr=child, env=env, cwd=cwd)
    os.close(child)
    output, deadline = b"", time.monotonic() + NO_PROMPT_SECONDS
    try:
        while time.monotonic() < deadline:
            if select.select([main], [], [], 1)[0]:
                try:
                    chunk = os.read(main, 65536)
                except OSError:  # the terminal's other end closed: the program ended
                    chunk = b""
                if not chunk:
                    break
                output += chunk
        else:
            process.kill()
            pytest.fail(f"still running after {NO_PROMPT_SECONDS} s, waiting for input?\n{output[-2000:]}")
    finally:
        os.close(main)
    return process.wait(timeout=60), output.decode(errors="replace")


def test_online_without_a_key_never_prompts_on_a_terminal(tmp_path: Path, no_key) -> None:
    run = tmp_path / "run"
    command = [sys.executable, str(REPO / "train.py"), *QUICK, "logger=wandb", "logger.wandb.mode=online"]
    status, output = on_a_terminal([*command, f"hydra.run.dir={run}"], no_key, tmp_path)
    assert status == 2, output[-2000:]
    assert "Traceback" not in output and "Enter your choice" not in output, output[-2000:]
    errors = [line for line in output.splitlines() if line.startswith("error:")]
    assert errors == [
        "error: no W&B API key for online logging (logger.wandb.mode=online): run `wandb login` or set "
        "WANDB_API_KEY, or use logger.wandb.mode=offline (upload later with `wandb sync`)"
    ], output[-2000:]
    assert not (run / "checkpoints").exists()  # refused before training


def test_wandb_mode_online_without_a_key_is_one_line(train_cli_in_process, no_key, monkeypatch) -> None:
    monkeypatch.setenv("WANDB_MODE", "online")
    process, run = train_cli_in_process("logger=wandb")
    assert process.returncode == 2, process.stderr[-2000:]
    assert process.stderr.splitlines() == [
        "error: no W&B API key for online logging (WANDB_MODE=online): run `wandb login` or set "
        "WANDB_API_KEY, or use logger.wandb.mode=offline (upload later with `wandb sync`)"
    ]
    assert not (run / "checkpoints").exists()


UNREACHABLE = """
import sys
from lenet5.errors import UserError
from lenet5.results.wandb_logging import RunLogger
try:
    RunLogger(mode="online", save_dir=sys.argv[1], project="lenet5", init_timeout=1).experiment
except UserError as error:
    print(f"error: {error}", file=sys.stderr)
    sys.exit(2)
"""


def test_a_key_but_no_server_is_one_line_in_bounded_time(tmp_path: Path, hermetic_env) -> None:
    """The first use of the run (Lightning's, before training) starts wandb.init: bounded by
    init_timeout, its CommError becomes the line (wandb's own progress lines come before it)."""
    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]  # closed again: nothing answers there
    env = {**hermetic_env, "WANDB_API_KEY": "0" * 40, "WANDB_BASE_URL": f"http://127.0.0.1:{port}"}
    env.pop("WANDB_MODE")
    started = time.monotonic()
    process = subprocess.run(
        [sys.executable, "-c", UNREACHABLE, str(tmp_path / "run")],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert process.returncode == 2, process.stderr[-3000:]
    assert "Traceback" not in process.stderr, process.stderr[-3000:]
    last = process.stderr.strip().splitlines()[-1]
    assert last.startswith("error: W&B online: the run did not start on the W&B server within "), last
    assert "init_timeout=1 s (" in last and last.endswith(", " + wandb_logging.OFFLINE_ADVICE), last
    assert time.monotonic() - started < 120  # wandb's default alone waits 90 s before its error


@pytest.mark.parametrize("blocker", ["a file", "a read-only folder"])
def test_a_wandb_folder_that_cannot_be_written_is_named(
    train_cli_in_process, tmp_path: Path, blocker
) -> None:
    run = tmp_path / "run"
    run.mkdir()
    folder = run / "wandb"
    if blocker == "a file":
        folder.write_text("in the way\n")
    else:
        if os.geteuid() == 0:
            pytest.skip("root writes into read-only folders")
        folder.mkdir(mode=0o555)
    before = folder.read_bytes() if folder.is_file() else None
    process, _ = train_cli_in_process("logger=wandb", run_dir=run)
    assert process.returncode == 2, process.stderr[-2000:]
    lines = process.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {folder}: W&B cannot write there ("), lines
    assert before is None or folder.read_bytes() == before


@pytest.fixture
def wandb_sees(monkeypatch):
    for name in ("WANDB_MODE", "WANDB_API_KEY"):
        monkeypatch.delenv(name, raising=False)

    def set_key(found: bool) -> None:
        monkeypatch.setattr(wandb_logging, "wandb_finds_key", lambda: found)

    return set_key


def test_online_by_default_without_a_key_wandb_reads_logs_offline(wandb_sees) -> None:
    """A netrc entry for another host (what has_credentials saw) is not one wandb reads."""
    wandb_sees(False)
    assert wandb_logging.checked_mode(None, "online") == "offline"
    with pytest.raises(UserError, match=r"no W&B API key for online logging \(logger.wandb.mode=online\)"):
        wandb_logging.checked_mode("online", "online")
    wandb_sees(True)
    assert wandb_logging.checked_mode("online", "online") == "online"
    assert wandb_logging.checked_mode(None, "online") == "online"
