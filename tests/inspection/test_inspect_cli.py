"""``python -m lenet5.inspect``: a figure for every variant, --kernels, one-line errors."""

from pathlib import Path

import pytest
from PIL import Image
from sketches import VARIANTS, draw_seven

from lenet5.inspection import cli, figure
from lenet5.inspection.layers import inspect_image
from lenet5.serving import predict
from lenet5.serving.checkpoints import load_checkpoint


@pytest.mark.parametrize("kernels", [False, True])
@pytest.mark.parametrize("variant", VARIANTS)
def test_a_figure_for_every_variant(make_checkpoint, seven: Path, tmp_path: Path, variant, kernels, capsys):
    checkpoint = make_checkpoint(variant)
    output = tmp_path / "layers.png"
    assert cli.main([str(checkpoint), str(seven), "--output", str(output), *(["--kernels"] * kernels)]) == 0
    printed = capsys.readouterr().out.splitlines()
    assert printed[-1] == f"wrote {output}"
    with Image.open(output) as image:
        assert image.format == "PNG" and image.width >= 1200 and image.height >= (1000 if kernels else 800)
    # The figure's prediction is predict's: the same prepared input, the same model.
    loaded = load_checkpoint(checkpoint)
    classes, probabilities = predict.classify(loaded.module.model, predict.read_one(str(seven)))
    assert printed[0] == f"{seven}: {int(classes[0])} ({float(probabilities[0, classes[0]]):.1%})"


@pytest.mark.parametrize(
    "variant, panels", [("classic", 7 + 6 + 16 + 16 + 1 + 4), ("d2l", 7 + 6 + 16 + 16 + 1 + 2)]
)
def test_every_layer_is_drawn(make_checkpoint, seven: Path, variant: str, panels: int) -> None:
    """Input + C1, S2, C3, S4, the C5 strip, F6 (+ the RBF code), the output (+ the penalties)."""
    loaded = load_checkpoint(make_checkpoint(variant))
    seen = inspect_image(loaded.module.model, predict.read_one(str(seven)))
    drawn = figure.draw(seen, loaded.module.model, loaded.class_names, "title")
    assert len(drawn.get_axes()) == panels
    with_kernels = figure.draw(seen, loaded.module.model, loaded.class_names, "title", kernels=True)
    assert len(with_kernels.get_axes()) == panels + 6 + 2  # C1's kernels, C3's table and its colour bar


def test_the_default_output_is_beside_the_image(run_cli, make_checkpoint, tmp_path: Path) -> None:
    image = draw_seven(tmp_path / "drawn 7.jpg", dark_on_light=False)
    process = run_cli("-m", "lenet5.inspect", str(make_checkpoint("modern")), str(image))
    assert process.returncode == 0, process.stderr[-2000:]
    assert (tmp_path / "drawn 7.layers.png").is_file()
    assert process.stdout.endswith(f"wrote {tmp_path / 'drawn 7.layers.png'}\n")


def test_bad_inputs_give_one_line_and_status_2(make_checkpoint, seven: Path, tmp_path: Path, capsys) -> None:
    checkpoint = make_checkpoint()
    (tmp_path / "notes.png").write_text("not pixels")
    (tmp_path / "bad.ckpt").write_text("not a checkpoint")
    Image.new("L", (40, 40), 255).save(tmp_path / "blank.png")
    cases = {
        (str(tmp_path / "missing.ckpt"), str(seven)): "missing.ckpt: no such file",
        (str(tmp_path / "bad.ckpt"), str(seven)): "bad.ckpt: not a lenet5 checkpoint",
        (str(checkpoint), str(tmp_path / "gone.png")): "gone.png: no such file",
        (str(checkpoint), str(tmp_path / "notes.png")): "notes.png: not an image PIL can read",
        (str(checkpoint), str(tmp_path / "blank.png")): "blank.png: no digit found",
        (
            str(checkpoint),
            str(seven),
            "--output",
            str(tmp_path / "no" / "x.png"),
        ): "no such folder for --output",
    }
    for args, problem in cases.items():
        assert cli.main(list(args)) == 2, args
        captured = capsys.readouterr()
        assert captured.out == "" and captured.err.startswith("error: ") and captured.err.count("\n") == 1
        assert problem in captured.err, captured.err
    assert not list(tmp_path.glob("*.layers.png"))
