"""ONNX and TorchScript exports give PyTorch's probabilities (normalization included) for
every preset and any batch size; the CLI writes them beside the checkpoint."""

import json
import warnings
from pathlib import Path

import numpy as np
import onnxruntime
import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate

from lenet5.config import CONFIG_DIR
from lenet5.models import LeNet5
from lenet5.serving import export
from lenet5.serving.export import Probabilities, export_onnx, export_torchscript
from lenet5.training.module import LeNet5Module

PRESETS = ("classic", "d2l", "modern")
TOLERANCE = 1e-5


def preset_model(preset: str) -> tuple[LeNet5, dict]:
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        cfg = compose(config_name="train", overrides=[f"model={preset}"])
    torch.manual_seed(0)
    config = {key: cfg.model[key] for key in cfg.model}
    return instantiate(cfg.model).eval(), config


def inputs(batch: int) -> torch.Tensor:
    """Digit-like inputs: mostly background, some ink, in [0, 1]."""
    generator = torch.Generator().manual_seed(batch)
    return (torch.rand(batch, 1, 32, 32, generator=generator) > 0.8).float()


def run_onnx(path: Path, images: torch.Tensor) -> np.ndarray:
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {"images": images.numpy()})[0]


def run_torchscript(path: Path, images: torch.Tensor) -> np.ndarray:
    with warnings.catch_warnings():  # torch.jit.load is deprecated in favour of torch.export
        warnings.simplefilter("ignore", FutureWarning)
        return torch.jit.load(str(path))(images).detach().numpy()


@pytest.mark.parametrize("preset", PRESETS)
def test_exports_match_pytorch(preset: str, tmp_path: Path) -> None:
    model, _ = preset_model(preset)
    reference = Probabilities(model).eval()
    export_onnx(model, tmp_path / "model.onnx", {"dataset": "mnist"})
    export_torchscript(model, tmp_path / "model.pt", {"dataset": "mnist"})
    for batch in (1, 7, 64):  # exported with a batch of 2: the batch dimension is dynamic
        images = inputs(batch)
        with torch.no_grad():
            expected = reference(images).numpy()
        assert np.allclose(expected.sum(axis=1), 1, atol=1e-5)
        for name, run in (("model.onnx", run_onnx), ("model.pt", run_torchscript)):
            got = run(tmp_path / name, images)
            assert got.shape == (batch, 10)
            assert np.abs(got - expected).max() <= TOLERANCE, f"{preset} {name} batch {batch}"


def test_normalization_is_inside_the_export(tmp_path: Path) -> None:
    """Changing the model's input convention changes the exported outputs."""
    model, _ = preset_model("modern")
    images = inputs(4)
    export_onnx(model, tmp_path / "a.onnx", {})
    model.normalize.scale.mul_(3.0)
    export_onnx(model, tmp_path / "b.onnx", {})
    with torch.no_grad():
        expected = Probabilities(model)(images).numpy()
    assert np.abs(run_onnx(tmp_path / "b.onnx", images) - expected).max() <= TOLERANCE
    assert np.abs(run_onnx(tmp_path / "a.onnx", images) - expected).max() > 1e-3


def test_cli_exports_a_checkpoint_beside_it(tmp_path: Path, capsys) -> None:
    """The command line's main in this process; the installed lenet5-export runs as a command
    in test_packaging.py, and test_hostile_inputs.py sends refusals through python -m."""
    _, config = preset_model("d2l")
    module = LeNet5Module(model=config)
    checkpoint = tmp_path / "best.ckpt"
    torch.save(
        {
            "hyper_parameters": {"model": config},
            "state_dict": module.state_dict(),
            "datamodule_hyper_parameters": {"dataset": "fashion_mnist"},
        },
        checkpoint,
    )
    images = inputs(3)
    with torch.no_grad():
        expected = Probabilities(module.model.eval())(images).numpy()
    for fmt, suffix, run in (("onnx", ".onnx", run_onnx), ("torchscript", ".pt", run_torchscript)):
        status = export.main([str(checkpoint), "--format", fmt])
        output = capsys.readouterr()
        assert status == 0, output.err[-3000:]
        assert output.out.strip() == f"wrote {checkpoint.with_suffix(suffix)}"
        assert np.abs(run(checkpoint.with_suffix(suffix), images) - expected).max() <= TOLERANCE
    session = onnxruntime.InferenceSession(str(checkpoint.with_suffix(".onnx")))
    metadata = session.get_modelmeta().custom_metadata_map
    assert json.loads(metadata["classes"])[9] == "Ankle boot"


def test_cli_error_for_a_bad_checkpoint(tmp_path: Path, capsys) -> None:
    bad = tmp_path / "bad.ckpt"
    bad.write_bytes(b"PK\x03\x04 cut short")
    assert export.main([str(bad), "--format", "onnx"]) == 2
    assert capsys.readouterr().err == f"error: {bad}: truncated checkpoint (an incomplete zip archive)\n"
    assert not bad.with_suffix(".onnx").exists()
