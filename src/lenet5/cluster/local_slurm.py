"""A one-node SLURM cluster on this machine, everything in one folder (its slurm.conf, MUNGE key,
state and spool folders, logs): enough to run ``hydra/launcher=slurm`` sweeps, requeues and DDP
through ``srun`` as on a real cluster. The tests start it through ``start`` and ``stop``.

    python -m lenet5.cluster.local_slurm start [FOLDER]   # then: export SLURM_CONF=FOLDER/slurm.conf
    python -m lenet5.cluster.local_slurm stop [FOLDER]

Needs Debian's (or Ubuntu's) ``slurm-wlm`` and ``munge`` packages and root, as slurmd does to
start jobs. The node is this machine as ``slurmd -C`` reports it (its cores and memory), with
process tracking by process tree (no cgroups) and no accounting database: ``sacct`` has nothing
to say, ``squeue`` has. The daemons are started in the foreground of their own sessions and
stopped by the process ids recorded in FOLDER/pids.
"""

import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

DEFAULT_FOLDER = Path(tempfile.gettempdir()) / "lenet5-slurm"
PROGRAMS = ("munged", "slurmctld", "slurmd", "sbatch", "srun", "squeue", "sinfo", "scontrol", "scancel")
PIDS = "pids"  # one "<daemon> <pid>" line each, in the order they started
READY_SECONDS = 90.0


class ClusterError(RuntimeError):
    """The cluster could not be started or stopped; the message says which step and its log."""


def unavailable() -> str | None:
    """Why this machine cannot run the cluster (a program missing, not root), else None."""
    missing = [name for name in PROGRAMS if shutil.which(name) is None]
    if missing:
        return f"{', '.join(missing)} not found: install Debian's slurm-wlm and munge packages"
    if hasattr(os, "geteuid") and os.geteuid() != 0:
        return "slurmd starts jobs as their users and so runs as root: run this as root"
    return None


def conf_path(folder: Path) -> Path:
    return Path(folder) / "slurm.conf"


def environment(folder: Path) -> dict[str, str]:
    """What SLURM's commands (sbatch, squeue, srun, ...) need to talk to this cluster."""
    return {"SLURM_CONF": str(conf_path(folder))}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def node_line() -> str:
    """This machine as slurmd sees it: ``NodeName=... CPUs=... RealMemory=...``."""
    found = subprocess.run(["slurmd", "-C"], capture_output=True, text=True, timeout=60)
    line = next((w for w in found.stdout.splitlines() if w.startswith("NodeName=")), None)
    if found.returncode != 0 or line is None:
        raise ClusterError(f"slurmd -C did not describe this machine: {found.stderr.strip()[:300]}")
    return line


def config_text(folder: Path, node: str) -> str:
    name = node.split()[0].removeprefix("NodeName=")
    folder = Path(folder)
    lines = [
        "# A one-node cluster for lenet5 (python -m lenet5.cluster.local_slurm).",
        "ClusterName=lenet5",
        f"SlurmctldHost={name}(127.0.0.1)",
        f"SlurmctldPort={free_port()}",
        f"SlurmdPort={free_port()}",
        "SlurmUser=root",
        "SlurmdUser=root",
        "AuthType=auth/munge",
        "CredType=cred/munge",
        f"AuthInfo=socket={folder / 'munge.socket'}",
        f"StateSaveLocation={folder / 'state'}",
        f"SlurmdSpoolDir={folder / 'spool'}",
        f"SlurmctldPidFile={folder / 'slurmctld.pid'}",
        f"SlurmdPidFile={folder / 'slurmd.pid'}",
        f"SlurmctldLogFile={folder / 'slurmctld.log'}",
        f"SlurmdLogFile={folder / 'slurmd.log'}",
        # No cgroups (containers rarely allow them): processes tracked by their parent ids.
        "ProctrackType=proctrack/linuxproc",
        "TaskPlugin=task/none",
        "MpiDefault=none",
        "SwitchType=switch/none",
        "SchedulerType=sched/backfill",
        # Cores and memory are what jobs reserve, so several small jobs share the node.
        "SelectType=select/cons_tres",
        "SelectTypeParameters=CR_CPU_Memory",
        "AccountingStorageType=accounting_storage/none",
        "JobAcctGatherType=jobacct_gather/none",
        "JobCompType=jobcomp/none",
        "ReturnToService=2",
        "KillWait=30",
        "MinJobAge=300",
        f"{node.replace(' UpTime=', ' #').split(' #')[0]} NodeAddr=127.0.0.1 State=UNKNOWN",
        "PartitionName=local Nodes=ALL Default=YES MaxTime=INFINITE State=UP",
    ]
    return "\n".join(lines) + "\n"


def _recorded(folder: Path) -> list[tuple[str, int]]:
    path = Path(folder) / PIDS
    if not path.is_file():
        return []
    return [
        (name, int(pid)) for name, pid in (line.split() for line in path.read_text().splitlines() if line)
    ]


def _alive(pid: int, folder: Path) -> bool:
    """The process exists and is one this folder's cluster started (its command line names a
    file of the folder), so a process id the system reused is never signalled."""
    try:
        command = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
    except OSError:
        return False
    return str(Path(folder)) in command


def running(folder: Path) -> bool:
    return any(_alive(pid, folder) for _, pid in _recorded(folder))


def _launch(folder: Path, name: str, command: list[str], env: dict[str, str]) -> None:
    log = open(Path(folder) / f"{name}.out", "ab")  # noqa: SIM115 - the daemon keeps it
    process = subprocess.Popen(
        command,
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
        start_new_session=True,
    )
    log.close()
    with open(Path(folder) / PIDS, "a") as pids:
        pids.write(f"{name} {process.pid}\n")
    time.sleep(0.5)
    if process.poll() is not None:
        raise ClusterError(f"{name} exited at once (status {process.returncode}): see {folder}/{name}.out")


def _wait_for(what: str, ready, folder: Path, seconds: float = READY_SECONDS) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if ready():
            return
        time.sleep(0.3)
    raise ClusterError(f"{what} not ready after {seconds:.0f} s: see the logs in {folder}")


def node_state(folder: Path) -> str:
    found = subprocess.run(
        ["sinfo", "-h", "-o", "%T"],
        capture_output=True,
        text=True,
        timeout=30,
        env={**os.environ, **environment(folder)},
    )
    return found.stdout.strip() if found.returncode == 0 else ""


def start(folder: Path = DEFAULT_FOLDER) -> dict[str, str]:
    """Write the cluster's files into ``folder`` and start munged, slurmctld and slurmd; returns
    the environment SLURM's commands need (SLURM_CONF) once the node takes jobs."""
    folder = Path(folder).resolve()
    reason = unavailable()
    if reason:
        raise ClusterError(reason)
    if running(folder):
        raise ClusterError(f"a cluster of {folder} is running: stop it first")
    for sub in ("state", "spool"):
        shutil.rmtree(folder / sub, ignore_errors=True)
        (folder / sub).mkdir(parents=True, mode=0o755)
    (folder / PIDS).unlink(missing_ok=True)
    folder.chmod(0o755)  # munged refuses a socket folder others may write into
    key = folder / "munge.key"
    key.unlink(missing_ok=True)
    key.write_bytes(os.urandom(1024))
    key.chmod(0o400)
    conf_path(folder).write_text(config_text(folder, node_line()))
    env = {**os.environ, **environment(folder)}
    try:
        munge = [
            "munged",
            "--foreground",
            "--force",
            f"--key-file={key}",
            f"--socket={folder / 'munge.socket'}",
        ]
        munge += [f"--pid-file={folder / 'munged.pid'}", f"--log-file={folder / 'munged.log'}"]
        _launch(folder, "munged", [*munge, f"--seed-file={folder / 'munged.seed'}"], env)
        _wait_for("munged", (folder / "munge.socket").exists, folder)
        _launch(folder, "slurmctld", ["slurmctld", "-D", "-i", "-f", str(conf_path(folder))], env)
        _launch(folder, "slurmd", ["slurmd", "-D", "-f", str(conf_path(folder))], env)
        _wait_for("the node", lambda: node_state(folder) in ("idle", "mixed", "allocated"), folder)
    except BaseException:
        stop(folder)
        raise
    return environment(folder)


def stop(folder: Path = DEFAULT_FOLDER, seconds: float = 30.0) -> None:
    """Cancel the cluster's jobs, then end its daemons (slurmd, slurmctld, munged) by their
    recorded process ids: SIGTERM, and SIGKILL for one still there after ``seconds``."""
    folder = Path(folder).resolve()
    env = {**os.environ, **environment(folder)}
    daemons = _recorded(folder)
    if any(name == "slurmctld" and _alive(pid, folder) for name, pid in daemons):
        jobs = subprocess.run(
            ["squeue", "-h", "-o", "%A"], capture_output=True, text=True, timeout=30, env=env
        )
        ids = sorted(set(jobs.stdout.split()))
        if ids:
            subprocess.run(["scancel", *ids], capture_output=True, timeout=30, env=env)
            _wait_quietly(lambda: not _queue(env), seconds)
    for _, pid in reversed(daemons):
        if _alive(pid, folder):
            os.kill(pid, signal.SIGTERM)
            if not _wait_quietly(lambda pid=pid: not _alive(pid, folder), seconds):
                os.kill(pid, signal.SIGKILL)
        _reap(pid)
    (folder / PIDS).unlink(missing_ok=True)


def _queue(env: dict[str, str]) -> str:
    found = subprocess.run(["squeue", "-h", "-o", "%A"], capture_output=True, text=True, timeout=30, env=env)
    return found.stdout.strip() if found.returncode == 0 else ""


def _wait_quietly(done, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if done():
            return True
        time.sleep(0.2)
    return done()


def _reap(pid: int) -> None:
    """A daemon this process started is its child until collected."""
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m lenet5.cluster.local_slurm", description=__doc__.split("\n")[0]
    )
    parser.add_argument("action", choices=("start", "stop", "status"))
    parser.add_argument("folder", nargs="?", type=Path, default=DEFAULT_FOLDER)
    args = parser.parse_args(argv)
    try:
        if args.action == "start":
            env = start(args.folder)
            print(
                f"SLURM is up (node {node_state(args.folder)}); for sbatch, squeue and hydra/launcher=slurm:"
            )
            print(f"export SLURM_CONF={env['SLURM_CONF']}")
        elif args.action == "stop":
            stop(args.folder)
            print(f"stopped the cluster of {Path(args.folder).resolve()}")
        else:
            up = running(args.folder)
            print(f"{'running' if up else 'not running'}: {Path(args.folder).resolve()}")
            raise SystemExit(0 if up else 1)
    except ClusterError as error:
        print(f"error: {error}", file=sys.stderr)
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()
