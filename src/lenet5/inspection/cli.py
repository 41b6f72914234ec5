"""``python -m lenet5.inspect CKPT IMAGE [--output FILE.png] [--kernels]``: one picture of what
every layer of a trained LeNet-5 answers to one image.

The image is prepared as ``python -m lenet5.predict`` prepares it (the same 32x32 input), so
the figure shows the prediction predict prints.
"""

import argparse
import sys
from pathlib import Path

from lenet5.errors import UserError
from lenet5.inspection.figure import draw, save
from lenet5.inspection.layers import inspect_image
from lenet5.serving.checkpoints import load_checkpoint
from lenet5.serving.paths import refuse_overwrite
from lenet5.serving.predict import read_one

AXES = ("activation", "pooling", "c3", "head")


def default_output(image: Path) -> Path:
    return image.with_name(f"{image.stem}.layers.png")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m lenet5.inspect",
        description="Draw every layer's response of a lenet5 checkpoint to one image.",
    )
    parser.add_argument("checkpoint", type=Path, help="a .ckpt file written by train.py")
    parser.add_argument("image", type=Path, help="a PNG/JPEG of one digit (dark on light or light on dark)")
    parser.add_argument("--output", type=Path, help="the PNG to write (default: IMAGE.layers.png beside it)")
    parser.add_argument("--kernels", action="store_true", help="also draw C1's kernels and C3's connections")
    args = parser.parse_args(argv)
    output = args.output or default_output(args.image)
    try:
        inputs = [("image", args.image), ("checkpoint", args.checkpoint)]
        refuse_overwrite(output, inputs, given=args.output is not None)
        checkpoint = load_checkpoint(args.checkpoint)
        image = read_one(str(args.image))
        if not output.parent.is_dir():
            raise UserError(f"{output.parent}: no such folder for --output")
        model = checkpoint.module.model
        seen = inspect_image(model, image)
        names = checkpoint.class_names
        variant = ", ".join(f"{axis}={model.config[axis]}" for axis in AXES)
        title = (
            f"{args.image.name}: {names[seen.digit]} ({float(seen.probabilities[seen.digit]):.1%})"
            f"    {args.checkpoint.name}: {variant}"
        )
        save(draw(seen, model, names, title, kernels=args.kernels), output)
    except UserError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"{args.image}: {names[seen.digit]} ({float(seen.probabilities[seen.digit]):.1%})")
    print(f"wrote {output}")
    return 0
