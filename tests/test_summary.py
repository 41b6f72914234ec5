"""The per-layer table (lenet5.summary) against the paper's parameter and connection counts,
the Hydra config groups against the model registries, and the ``python -m lenet5.summary`` CLI."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate

from lenet5.config import CONFIG_DIR
from lenet5.models import (
    ACTIVATIONS,
    CONNECTIVITIES,
    HEADS,
    INITS,
    NORMALIZATIONS,
    POOLINGS,
    LeNet5,
)
from lenet5.summary import layer_rows

REPO_ROOT = Path(__file__).resolve().parents[1]

# The paper's table: layer -> (output shape, parameters, connections).
CLASSIC = {
    "C1": ((6, 28, 28), 156, 122_304),
    "S2": ((6, 14, 14), 12, 5_880),
    "C3": ((16, 10, 10), 1_516, 151_600),
    "S4": ((16, 5, 5), 32, 2_000),
    "C5": ((120, 1, 1), 48_120, 48_120),
    "F6": ((84,), 10_164, 10_164),
    "OUTPUT": ((10,), 0, 840),
}
CLASSIC_PARAMETERS, CLASSIC_CONNECTIONS = 60_000, 340_908

# Parameters per layer with parameter-free pooling, full C3 and a linear 84->10 head.
DENSE_HEAD_PARAMETERS = {
    "C1": 156,
    "S2": 0,
    "C3": 16 * 6 * 25 + 16,
    "S4": 0,
    "C5": 48_120,
    "F6": 10_164,
    "OUTPUT": 850,
}

REGISTRIES = {
    "activation": ACTIVATIONS,
    "pooling": POOLINGS,
    "c3": CONNECTIVITIES,
    "head": HEADS,
    "init": INITS,
    "normalization": NORMALIZATIONS,
}


def build(*overrides: str) -> LeNet5:
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        cfg = compose(config_name="summary", overrides=list(overrides))
    return instantiate(cfg.model)


# --- layer_rows against the paper ---------------------------------------------------------------


@pytest.fixture(scope="module")
def classic_rows():
    return layer_rows(build("model=classic"))


def test_classic_rows_are_the_papers_table(classic_rows):
    assert [row[0] for row in classic_rows] == list(CLASSIC)
    for name, shape, parameters, connections in classic_rows:
        assert (shape, parameters, connections) == CLASSIC[name], name


def test_classic_totals(classic_rows):
    assert sum(row[2] for row in classic_rows) == CLASSIC_PARAMETERS
    assert sum(row[3] for row in classic_rows) == CLASSIC_CONNECTIONS


def test_classic_preset_is_the_default_lenet5():
    model = build("model=classic")
    assert layer_rows(model) == layer_rows(LeNet5())
    assert model.parameter_count() == CLASSIC_PARAMETERS


@pytest.mark.parametrize("preset", ["modern", "d2l"])
def test_dense_head_presets_have_61706_parameters(preset):
    model = build(f"model={preset}")
    rows = layer_rows(model)
    assert {name: (shape, params) for name, shape, params, _ in rows} == {
        name: (CLASSIC[name][0], DENSE_HEAD_PARAMETERS[name]) for name in CLASSIC
    }
    assert sum(row[2] for row in rows) == 61_706
    assert model.parameter_count() == 61_706
    assert sum(p.numel() for p in model.parameters() if p.requires_grad) == 61_706


def test_full_c3_adds_the_absent_connections():
    rows = {row[0]: row for row in layer_rows(build("model=classic", "model/c3=full"))}
    assert rows["C3"][2:] == (2_416, 241_600)
    assert sum(row[2] for row in rows.values()) == CLASSIC_PARAMETERS + 900


# The presets' choices, from the reference (classic = the paper, d2l = the d2l.ai chapter, modern =
# the Keras-style LeNet of seed 003).
PRESETS = {
    "classic": {
        "activation": "scaled_tanh",
        "pooling": "trainable",
        "c3": "paper",
        "head": "rbf",
        "init": "paper",
        "normalization": "paper",
    },
    "d2l": {
        "activation": "sigmoid",
        "pooling": "avg",
        "c3": "full",
        "head": "linear",
        "init": "xavier",
        "normalization": "unit",
    },
    "modern": {"activation": "relu", "pooling": "max", "c3": "full", "head": "linear"},
}


@pytest.mark.parametrize("preset", list(PRESETS))
def test_presets_make_the_reference_choices(preset):
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        cfg = compose(config_name="summary", overrides=[f"model={preset}"])
    assert {axis: cfg.model[axis] for axis in PRESETS[preset]} == PRESETS[preset]


# --- config groups against the registries ---------------------------------------------------------


@pytest.mark.parametrize("axis", list(REGISTRIES))
def test_config_group_options_match_the_registry(axis):
    options = {path.stem for path in (Path(CONFIG_DIR) / "model" / axis).glob("*.yaml")}
    assert options == set(REGISTRIES[axis])


@pytest.mark.parametrize(
    ("axis", "option"),
    [(axis, option) for axis, registry in REGISTRIES.items() for option in registry],
)
def test_every_config_option_composes_into_a_model(axis, option):
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        cfg = compose(config_name="summary", overrides=["model=classic", f"model/{axis}={option}"])
    assert cfg.model[axis] == option
    model = instantiate(cfg.model)
    assert isinstance(model, LeNet5)
    assert [row[1] for row in layer_rows(model)] == [shape for shape, _, _ in CLASSIC.values()]


# --- the CLI --------------------------------------------------------------------------------------


def run_summary(*overrides: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "COLUMNS": "120", "PYTHONIOENCODING": "utf-8", "OMP_NUM_THREADS": "1"}
    return subprocess.run(
        [sys.executable, "-m", "lenet5.summary", *overrides],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=300,
    )


def table_cells(stdout: str) -> dict[str, list[str]]:
    """First cell -> non-empty cells of each table row (box characters or ASCII '|')."""
    rows = {}
    for line in stdout.splitlines():
        cells = [cell.strip() for cell in re.split(r"[│┃|]", line)]
        cells = [cell for cell in cells if cell]
        if cells:
            rows[cells[0]] = cells
    return rows


def test_cli_prints_the_papers_table():
    result = run_summary("model=classic")
    assert result.returncode == 0, result.stderr
    rows = table_cells(result.stdout)
    for name, (shape, parameters, connections) in CLASSIC.items():
        expected = [name, "x".join(map(str, shape)), f"{parameters:,}", f"{connections:,}"]
        assert rows.get(name) == expected, result.stdout
    assert rows.get("total") == ["total", "60,000", "340,908"], result.stdout


@pytest.fixture
def summary_in_process(cli_in_process, monkeypatch: pytest.MonkeyPatch):
    """``python -m lenet5.summary`` in this process, as run_summary's table width."""
    monkeypatch.setenv("COLUMNS", "120")
    return lambda *overrides: cli_in_process("-m", "lenet5.summary", *overrides)


def test_cli_rejects_an_unknown_option_and_lists_the_available_ones(summary_in_process):
    result = summary_in_process("model/activation=swishy")
    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert "swishy" in output
    for option in ["gelu", "relu", "scaled_tanh", "sigmoid", "tanh", *ACTIVATIONS]:
        assert re.search(rf"\b{option}\b", output), f"{option!r} not listed:\n{output}"


def test_cli_accepts_axis_overrides(summary_in_process):
    result = summary_in_process("model=classic", "model/activation=relu", "model/c3=full")
    assert result.returncode == 0, result.stderr
    assert "activation=relu" in result.stdout and "c3=full" in result.stdout
    rows = table_cells(result.stdout)
    assert rows.get("C3") == ["C3", "16x10x10", "2,416", "241,600"], result.stdout
    assert rows.get("total") == ["total", "60,900", "430,908"], result.stdout
