"""The built wheel, installed into a fresh folder, works from any folder: the configs ship inside
it and every console script runs. The installed dependencies are reused (``--no-deps``), and the
run happens in a temporary folder with only that folder on PYTHONPATH, so neither the repo nor
its editable install can stand in for the wheel."""

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from support import QUICK, REPO

SCRIPTS = ("train", "evaluate", "predict", "export", "report", "summary", "inspect", "demo")
HELPED = ("predict", "report", "inspect", "demo")  # the scripts whose --help is all the test runs
# Runs each script given (an installed console-script wrapper) as __main__ with --help; a
# wrapper that exits other than 0 ends this process with that status.
HELP_ALL = """
import runpy, sys
for script in sys.argv[1:]:
    sys.argv = [script.rsplit("/", 1)[-1], "--help"]
    try:
        runpy.run_path(script, run_name="__main__")
    except SystemExit as done:
        if done.code not in (0, None):
            raise
    sys.stdout.flush()
"""


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    wheels = tmp_path_factory.mktemp("wheels")
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--no-input"]
    build = tmp_path_factory.mktemp("build")  # setuptools' build folder, kept out of the repo
    subprocess.run(
        [*pip, "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(wheels), str(REPO)],
        check=True,
        cwd=build,
        env={**__import__("os").environ, "TMPDIR": str(build)},
    )
    (wheel,) = wheels.glob("lenet5-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        metadata = archive.read(next(n for n in names if n.endswith("dist-info/METADATA"))).decode()
    assert "lenet5/conf/train.yaml" in names and "lenet5/py.typed" in names
    assert "lenet5/inspection/page.html" in names
    assert any(n.endswith("licenses/LICENSE") for n in names)
    assert "License-Expression: MIT" in metadata
    target = tmp_path_factory.mktemp("site")
    subprocess.run([*pip, "install", "-q", "--no-deps", "--target", str(target), str(wheel)], check=True)
    return target


@pytest.fixture
def env_for(installed: Path, hermetic_env: dict[str, str]) -> dict[str, str]:
    return {**hermetic_env, "PYTHONPATH": str(installed)}


def test_the_installed_package_is_the_wheel(installed: Path, env_for, tmp_path: Path):
    where = subprocess.run(
        [sys.executable, "-c", "import lenet5; print(lenet5.__file__)"],
        cwd=tmp_path,
        env=env_for,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert where.startswith(str(installed)), where
    for name in SCRIPTS:
        assert (installed / "bin" / f"lenet5-{name}").is_file()


def test_train_and_tools_run_from_another_folder(installed: Path, env_for, tmp_path: Path):
    def run(*command: str) -> subprocess.CompletedProcess:
        return subprocess.run(command, cwd=tmp_path, env=env_for, capture_output=True, text=True, timeout=600)

    summary = run(sys.executable, "-m", "lenet5.summary", "model=classic")
    assert summary.returncode == 0, summary.stderr[-2000:]
    assert "60,000" in summary.stdout

    trained = run(str(installed / "bin" / "lenet5-train"), *QUICK, "hydra.run.dir=run", "logger=none")
    assert trained.returncode == 0, trained.stderr[-3000:]
    checkpoint = next((tmp_path / "run" / "checkpoints").glob("epoch*.ckpt"))
    assert (tmp_path / "run" / "metrics.json").is_file()

    # python -m lenet5.train runs the same cli() as lenet5-train, which trained above: composing
    # the job's config from the wheel's conf/ (Hydra's --cfg job) is what is left to check.
    module = run(sys.executable, "-m", "lenet5.train", *QUICK, "--cfg", "job")
    assert module.returncode == 0, module.stderr[-3000:]
    assert "max_epochs: 1" in module.stdout and "lenet5.models" in module.stdout, module.stdout[-2000:]

    evaluated = run(str(installed / "bin" / "lenet5-evaluate"), f"ckpt_path={checkpoint}", "hydra.run.dir=ev")
    assert evaluated.returncode == 0, evaluated.stderr[-3000:]
    assert "test/acc" in evaluated.stdout
    exported = run(str(installed / "bin" / "lenet5-export"), str(checkpoint), "--format", "torchscript")
    assert exported.returncode == 0, exported.stderr[-3000:]
    # The other console scripts' --help, each installed wrapper executed as its own __main__, in
    # one interpreter: a subprocess each would pay the imports four times over.
    helped = run(sys.executable, "-c", HELP_ALL, *(str(installed / "bin" / f"lenet5-{n}") for n in HELPED))
    assert helped.returncode == 0, helped.stdout[-2000:] + helped.stderr[-2000:]
    for name in HELPED:
        assert f"usage: python -m lenet5.{name}" in helped.stdout, (name, helped.stdout[-2000:])
