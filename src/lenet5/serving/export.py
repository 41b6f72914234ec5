"""Ship a checkpoint: ``python -m lenet5.export CKPT --format onnx|torchscript [--output PATH]``.

The exported graph takes what the PyTorch model takes, (N, 1, 32, 32) float32 images in
[0, 1] with ink = 1 (a 28x28 digit padded by 2), any N, and returns class probabilities
(N, classes): the input normalization is inside it (buffers of its first layer), and the
head's rule (softmax of its scores: logits, or negated RBF penalties) too, so the class is always
the argmax, whatever the head.
"""

import argparse
import json
import sys
import warnings
from pathlib import Path

import torch
from torch import nn

from lenet5.atomic import save_whole
from lenet5.errors import UserError
from lenet5.extras import require
from lenet5.models import INPUT_SIZE, LeNet5
from lenet5.serving.checkpoints import Checkpoint, load_checkpoint
from lenet5.serving.paths import refuse_overwrite

FORMATS = {"onnx": ".onnx", "torchscript": ".pt"}
INPUT_NAME, OUTPUT_NAME = "images", "probabilities"


class Probabilities(nn.Module):
    """The model and its head's probability rule as one graph."""

    def __init__(self, model: LeNet5):
        super().__init__()
        self.model = model

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.model.probabilities(self.model(images))


def example_input(batch: int = 2) -> torch.Tensor:
    return torch.rand(batch, 1, INPUT_SIZE, INPUT_SIZE)


def export_onnx(model: LeNet5, path: Path, metadata: dict[str, str]) -> None:
    """The dynamo exporter (torch.export), with a dynamic batch dimension."""
    import onnx

    wrapped = Probabilities(model).eval()
    batch = torch.export.Dim("batch", min=1)
    program = torch.onnx.export(
        wrapped,
        (example_input(),),
        dynamo=True,
        input_names=[INPUT_NAME],
        output_names=[OUTPUT_NAME],
        dynamic_shapes={"images": {0: batch}},
        verbose=False,
    )
    program.save(str(path))
    exported = onnx.load(str(path))
    onnx.helper.set_model_props(exported, metadata)
    onnx.save(exported, str(path))


def export_torchscript(model: LeNet5, path: Path, metadata: dict[str, str]) -> None:
    """Traced: nothing in the forward pass depends on the batch size. The tracer's warning is
    about the input shape check, which a trace rightly keeps as a constant."""
    with warnings.catch_warnings():  # also PyTorch's notice that TorchScript is deprecated
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        warnings.simplefilter("ignore", FutureWarning)
        traced = torch.jit.trace(Probabilities(model).eval(), example_input())
        torch.jit.save(traced, str(path), _extra_files={"lenet5.json": json.dumps(metadata)})


def export(checkpoint: Checkpoint, fmt: str, path: Path) -> Path:
    metadata = {
        "dataset": checkpoint.dataset,
        "classes": json.dumps(checkpoint.class_names),
        "input": f"(N, 1, {INPUT_SIZE}, {INPUT_SIZE}) float32 in [0, 1], ink = 1",
        "output": "(N, classes) probabilities",
    }
    model = checkpoint.module.model.eval()
    writer = {"onnx": export_onnx, "torchscript": export_torchscript}[fmt]
    # Whole or not at all: a full disk leaves the previous export (or none), never half a file.
    save_whole(path, lambda partial: writer(model, partial, metadata))
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m lenet5.export", description="Export a lenet5 checkpoint to ONNX or TorchScript."
    )
    parser.add_argument("checkpoint", type=Path, help="a .ckpt file written by train.py")
    parser.add_argument("--format", choices=FORMATS, default="onnx")
    parser.add_argument("--output", type=Path, help="default: beside the checkpoint, same name")
    args = parser.parse_args(argv)
    output = args.output or args.checkpoint.with_suffix(FORMATS[args.format])
    try:
        if args.format == "onnx":
            require("export", "lenet5-export --format onnx")
        # A checkpoint named model.pt is its own default TorchScript output: --output is needed.
        refuse_overwrite(output, [("checkpoint", args.checkpoint)], given=args.output is not None)
        checkpoint = load_checkpoint(args.checkpoint)
        if not output.parent.is_dir():
            raise UserError(f"{output.parent}: no such folder for --output")
        export(checkpoint, args.format, output)
    except UserError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"wrote {output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
