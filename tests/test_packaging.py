"""The built wheel, installed into a fresh folder, works from any folder: the configs ship inside
it and every console script runs. The installed dependencies are reused (``--no-deps``), and the
run happens in a temporary folder with only that folder on PYTHONPATH, so neither the repo nor
its editable install can stand in for the wheel."""

import json
import subprocess
import sys
import zipfile
from importlib.metadata import packages_distributions
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from lenet5.extras import EXTRAS
from support import QUICK, REPO

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    tomllib = pytest.importorskip("tomli")

SCRIPTS = ("train", "evaluate", "predict", "export", "report", "summary", "inspect", "demo")
HELPED = ("predict", "report", "inspect", "demo")  # the scripts whose --help is all the test runs
# Runs each command of a JSON list (an installed console script's path, or "-m" and a module, then
# the arguments) as __main__, one after another in this one interpreter, each one's output after a
# "### run: <command>" line; the first to exit other than 0 ends it with that status. A subprocess per
# command would pay the imports (~5 s) again for each.
RUN_ALL = """
import json, runpy, sys
for argv in json.loads(sys.argv[1]):
    print("\\n### run: " + " ".join(argv), flush=True)
    try:
        if argv[0] == "-m":
            sys.argv = argv[1:]
            runpy.run_module(argv[1], run_name="__main__", alter_sys=True)
        else:
            sys.argv = list(argv)
            runpy.run_path(argv[0], run_name="__main__")
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
    assert all(f"Provides-Extra: {extra}" in metadata for extra in (*EXTRAS, "all", "dev"))
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

    trained = run(str(installed / "bin" / "lenet5-train"), *QUICK, "hydra.run.dir=run", "logger=none")
    assert trained.returncode == 0, trained.stderr[-3000:]
    checkpoint = next((tmp_path / "run" / "checkpoints").glob("epoch*.ckpt"))
    assert (tmp_path / "run" / "metrics.json").is_file()

    evaluated = run(str(installed / "bin" / "lenet5-evaluate"), f"ckpt_path={checkpoint}", "hydra.run.dir=ev")
    assert evaluated.returncode == 0, evaluated.stderr[-3000:]
    assert "test/acc" in evaluated.stdout
    exported = run(str(installed / "bin" / "lenet5-export"), str(checkpoint), "--format", "torchscript")
    assert exported.returncode == 0, exported.stderr[-3000:]

    # What needs no training of its own, in one interpreter. python -m lenet5.train runs the same
    # cli() as lenet5-train, which trained above: composing the job's config from the wheel's
    # conf/ (Hydra's --cfg job) is what is left to check.
    commands = [
        ["-m", "lenet5.summary", "model=classic"],
        ["-m", "lenet5.train", *QUICK, "--cfg", "job"],
        *([str(installed / "bin" / f"lenet5-{name}"), "--help"] for name in HELPED),
    ]
    together = run(sys.executable, "-c", RUN_ALL, json.dumps(commands))
    assert together.returncode == 0, together.stdout[-2000:] + together.stderr[-3000:]
    summary, module, *helped = together.stdout.split("\n### run: ")[1:]
    assert summary.startswith("-m lenet5.summary") and "60,000" in summary, summary[-2000:]
    assert module.startswith("-m lenet5.train"), module[-2000:]
    assert "max_epochs: 1" in module and "lenet5.models" in module, module[-2000:]
    for name, output in zip(HELPED, helped, strict=True):
        assert f"usage: python -m lenet5.{name}" in output, (name, output[-2000:])


PROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
OPTIONAL = PROJECT["optional-dependencies"]


def names(requirements: list[str]) -> set[str]:
    return {canonicalize_name(Requirement(r).name) for r in requirements}


def test_the_core_install_is_the_training_stack():
    core = names(PROJECT["dependencies"])
    assert {"torch", "lightning", "hydra-core", "wandb"} <= core
    for extra in EXTRAS:
        assert not core & names(OPTIONAL[extra]), extra


def test_each_extra_installs_what_its_one_line_names():
    (everything,) = OPTIONAL["all"]
    assert Requirement(everything).extras == set(EXTRAS)
    distributions = packages_distributions()
    for extra, modules in EXTRAS.items():
        for module in modules:
            installs = {canonicalize_name(d) for d in distributions.get(module.split(".")[0], [])}
            assert installs & names(OPTIONAL[extra]), (extra, module, installs)


def test_constraints_pin_every_requirement_within_pyproject():
    pins = {}
    for line in (REPO / "constraints.txt").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, version = line.split("==")
            pins[canonicalize_name(name)] = Version(version)
    wanted = [*PROJECT["dependencies"], *(r for extra, rs in OPTIONAL.items() if extra != "all" for r in rs)]
    for text in wanted:
        requirement = Requirement(text)
        pinned = pins.get(canonicalize_name(requirement.name))
        assert pinned is not None, f"constraints.txt has no pin for {requirement.name} (make constraints)"
        assert requirement.specifier.contains(pinned, prereleases=True), (text, pinned)
