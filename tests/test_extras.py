"""Without an extra installed, each command that needs it says in one line which extra to install
and exits 2, before it starts, and train.py still trains on its defaults: simulated in one
interpreter where those packages cannot be imported (each set to None in sys.modules, which is
what an absent package looks like to an import and to importlib.util.find_spec), every command
run there one after another."""

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from lenet5.errors import UserError
from lenet5.extras import EXTRAS, require, require_for_overrides
from support import QUICK

# The extras' modules, and what stands in for some of them (tensorboardX for tensorboard).
ABSENT = [*(m for modules in EXTRAS.values() for m in modules), "multipart", "tensorboardX"]
# Runs each command (a module and its arguments) as __main__ in this one interpreter with ABSENT
# unimportable; after each, a "### exit <status>" line on stderr.
WITHOUT = """
import json, runpy, sys
absent, commands = json.loads(sys.argv[1]), json.loads(sys.argv[2])
for name in absent:
    sys.modules[name] = None
for argv in commands:
    sys.argv = list(argv)
    try:
        runpy.run_module(argv[0], run_name="__main__", alter_sys=True)
        status = 0
    except SystemExit as done:
        status = done.code
    print(f"### exit {status}", file=sys.stderr, flush=True)
"""
EXPECTED = {
    "export": "lenet5-export --format onnx needs the 'export' extra (no module onnx, onnxscript, "
    "onnxruntime): pip install 'lenet5[export]'",
    "demo": "lenet5-demo needs the 'demo' extra (no module starlette, uvicorn, python_multipart): "
    "pip install 'lenet5[demo]'",
    "optuna": "hparams_search=mnist_optuna needs the 'optuna' extra (no module optuna, sqlalchemy, "
    "hydra_plugins.hydra_optuna_sweeper): pip install 'lenet5[optuna]'",
    "mlflow": "logger=mlflow needs the 'mlflow' extra (no module mlflow): pip install 'lenet5[mlflow]'",
    "tensorboard": "logger=tensorboard needs the 'tensorboard' extra (no module tensorboard): "
    "pip install 'lenet5[tensorboard]'",
}


def test_each_command_names_its_missing_extra(hermetic_env: dict[str, str], tmp_path: Path):
    train = ["lenet5.train", *QUICK, "hydra.run.dir=run"]
    commands = [
        ["lenet5.export", "model.ckpt"],  # --format onnx is the default
        ["lenet5.demo", "outputs"],
        [*train, "hparams_search=mnist_optuna"],
        [*train, "logger=[csv,mlflow]"],
        [*train, "logger=tensorboard"],
        train,  # the core install trains on its defaults (logger=csv)
    ]
    process = subprocess.run(
        [sys.executable, "-c", WITHOUT, json.dumps(ABSENT), json.dumps(commands)],
        cwd=tmp_path,
        env=hermetic_env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert process.returncode == 0, process.stderr[-3000:]
    parts = re.split(r"### exit (\S+)\n", process.stderr)  # output, status, output, status, ...
    assert len(parts) == 2 * len(commands) + 1, process.stderr[-3000:]
    for extra, output, status in zip(EXPECTED, parts[0::2], parts[1::2], strict=False):
        assert (status, output.strip().splitlines()) == ("2", [f"error: {EXPECTED[extra]}"]), extra
    assert parts[-2] == "0", parts[-3][-3000:]
    assert (tmp_path / "run" / "metrics.json").is_file()


def test_installed_extras_pass_and_other_overrides_need_none():
    require("demo", "lenet5-demo")  # installed here (make install: every extra)
    require_for_overrides(["hparams_search=null", "hydra/sweeper=basic", "model=classic"])


def test_a_missing_module_is_named(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setitem(sys.modules, "onnxscript", None)
    with pytest.raises(UserError, match=r"^x needs the 'export' extra \(no module onnxscript\): pip "):
        require("export", "x")
