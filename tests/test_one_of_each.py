"""The source keeps one of each thing: file names in lenet5.run_files, files replaced only by
lenet5.atomic, checkpoints read as data only, no library's private names but the one kept (with
its contract test), and no import cycle."""

import ast
import re
from pathlib import Path

import pytest

from support import REPO

SRC = REPO / "src"
SOURCES = sorted(p for p in SRC.rglob("*.py") if "egg-info" not in str(p))
NAMES = ("metrics.json", "failure.json", "interrupted.json", "history.csv", "last.ckpt", "config.yaml")
# The one private name kept: Lightning has no public way to tell ddp_spawn from ddp
# (tests/test_upstream_contracts.py fails when that changes).
PRIVATE_KEPT = {
    ("lenet5/training/spawned.py", "lightning.pytorch.strategies.launchers._MultiProcessingLauncher")
}


def module_name(path: Path) -> str:
    parts = path.relative_to(SRC).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def strings(path: Path) -> list[str]:
    return [
        node.value
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.Constant) and isinstance(node.value, str)
    ]


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(SRC)))
def test_file_names_come_from_the_table(path: Path) -> None:
    if path.name == "run_files.py":
        return
    spelled = [name for name in NAMES for text in strings(path) if text == name or text.endswith("/" + name)]
    assert not spelled, f"{path}: spell these through lenet5.run_files: {spelled}"


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(SRC)))
def test_one_atomic_writer_and_data_only_loads(path: Path) -> None:
    text = path.read_text()
    if path.name != "atomic.py":
        partial = [t for t in strings(path) if re.search(r"(?<![A-Za-z])\.partial(?!\()", t)]
        assert "os.replace(" not in text and not partial, f"{path}: write through lenet5.atomic"
    loads = re.findall(r"load\w*\([^)]*weights_only\s*=\s*False", text)
    assert not loads, f"{path}: a checkpoint is read as data only"


def imports(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found += [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        elif isinstance(node, ast.Import):
            found += [alias.name for alias in node.names]
    return found


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(SRC)))
def test_no_private_names_of_the_libraries(path: Path) -> None:
    where = str(path.relative_to(SRC))
    private = [
        name
        for name in imports(path)
        if name.split(".")[0] in ("lightning", "torch", "hydra", "omegaconf")
        and any(part.startswith("_") and not part.startswith("__") for part in name.split("."))
        and (where, name) not in PRIVATE_KEPT
    ]
    assert not private, f"{path}: private names {private}"


def test_no_import_cycle() -> None:
    modules = {module_name(p): p for p in SOURCES}
    graph = {name: {m for m in imports(path) if m in modules and m != name} for name, path in modules.items()}
    done: set[str] = set()

    def visit(name: str, trail: list[str]) -> None:
        if name in trail:
            cycle = trail[trail.index(name) :] + [name]
            raise AssertionError("import cycle: " + " -> ".join(cycle))
        if name in done:
            return
        for dependency in sorted(graph[name]):
            visit(dependency, [*trail, name])
        done.add(name)

    for name in sorted(graph):
        visit(name, [])
