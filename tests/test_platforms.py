"""Nothing Unix-only at import time, and a run that works without it: in an interpreter where the
signals Windows lacks are gone from the signal module and the Unix-only modules (fcntl, resource,
pwd, grp, termios) cannot be imported, every lenet5 module imports and stops on the signals that
are left; train.py then trains on tiny data there, its run folder unlocked (no fcntl). Windows
and macOS themselves are not tested (docs/training.md says so)."""

import json
import subprocess
import sys
from pathlib import Path

from support import QUICK

EXPECTED_SECONDS = 25  # every lenet5 module imported, then a train.py run (tests/conftest.py)

# What Windows' signal module has; every other SIG* name is removed while lenet5 is imported.
# They come back for the run: Lightning reads SIGKILL, SIGSTOP and SIGUSR1 where its own platform
# check says it is not on Windows, and lenet5 keeps what it found at import (SIGNALS).
KEPT_SIGNALS = ["SIGABRT", "SIGBREAK", "SIGFPE", "SIGILL", "SIGINT", "SIGSEGV", "SIGTERM"]
UNIX_ONLY = ["fcntl", "resource", "pwd", "grp", "termios"]
WITHOUT_UNIX = """
import json, pkgutil, importlib, runpy, signal, sys
kept, unix_only, argv = json.loads(sys.argv[1]), json.loads(sys.argv[2]), json.loads(sys.argv[3])
removed = {n: getattr(signal, n) for n in dir(signal) if n.startswith("SIG") and not n.startswith("SIG_")}
removed = {n: v for n, v in removed.items() if n not in kept}
for name in removed:
    delattr(signal, name)
for name in unix_only:
    sys.modules[name] = None
import lenet5, hydra_plugins.lenet5_launchers
names = sorted(m.name for m in pkgutil.walk_packages(lenet5.__path__, "lenet5."))
for name in names:
    importlib.import_module(name)
from lenet5.training.signals import SIGNALS
stops_on = sorted(signal.Signals(s).name for s in SIGNALS)
print(json.dumps({"imported": names, "signals_removed": sorted(removed), "stops_on": stops_on}), flush=True)
for name, value in removed.items():
    setattr(signal, name, value)
sys.argv = argv
try:
    runpy.run_module("lenet5.train", run_name="__main__", alter_sys=True)
except SystemExit as done:
    if done.code not in (0, None):
        raise
"""


def test_imports_and_trains_without_unix_only_parts(hermetic_env: dict[str, str], tmp_path: Path):
    argv = ["lenet5.train", *QUICK, "hydra.run.dir=run", "logger=csv"]
    process = subprocess.run(
        [sys.executable, "-c", WITHOUT_UNIX, *map(json.dumps, (KEPT_SIGNALS, UNIX_ONLY, argv))],
        cwd=tmp_path,
        env=hermetic_env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert process.returncode == 0, process.stderr[-3000:]
    done = json.loads(process.stdout.split("\n", 1)[0])
    assert {"lenet5.training.signals", "lenet5.training.run_folder", "lenet5.inspection.server"} <= set(
        done["imported"]
    )
    assert {"SIGUSR1", "SIGHUP", "SIGKILL", "SIGALRM", "SIGCHLD"} <= set(done["signals_removed"])
    assert done["stops_on"] == ["SIGINT", "SIGTERM"]
    assert json.loads((tmp_path / "run" / "metrics.json").read_text())["epochs"] == 1
