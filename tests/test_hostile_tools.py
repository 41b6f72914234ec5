"""Hostile uses of the tools that read a checkpoint or an image: an output that names an input
(the same path, a symlink, a hard link, a default name), a port that cannot be listened on, an
image of too many pixels. Each gets one ``error:`` line on stderr, exit status 2, no traceback,
and every input byte-identical afterwards.

The tools' mains run in this process (an interpreter start costs seconds); the issue's export
and predict commands also go through the command line.
"""

import os
import socket
import struct
import zlib
from pathlib import Path
from types import SimpleNamespace

import pytest
from PIL import Image, ImageDraw
from starlette.testclient import TestClient

from hostile_checks import refused, run_main
from lenet5.inspection import server
from lenet5.serving.checkpoints import load_checkpoint
from lenet5.serving.predict import MAX_PIXELS
from support import train_once


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory, tiny_data: Path) -> Path:
    """One finished train.py run on tiny data (its folder): a real checkpoint and run folder."""
    return train_once(tmp_path_factory.mktemp("hostile_tools"), tiny_data, "model=modern")


@pytest.fixture
def inputs(tmp_path: Path, trained: Path) -> SimpleNamespace:
    """A copy of the trained checkpoint, a drawn digit PNG, links to both; their bytes."""
    checkpoint = tmp_path / "model.ckpt"
    checkpoint.write_bytes(next((trained / "checkpoints").glob("epoch*.ckpt")).read_bytes())
    image = tmp_path / "seven.png"
    drawing = Image.new("L", (200, 240), 255)
    ImageDraw.Draw(drawing).line([(50, 48), (150, 48), (90, 204)], fill=0, width=14)
    drawing.save(image)
    for name, target in (("ckpt_link", checkpoint), ("image_link", image)):
        (tmp_path / name).symlink_to(target)
    os.link(checkpoint, tmp_path / "ckpt_hardlink")
    os.link(image, tmp_path / "image_hardlink")
    return SimpleNamespace(
        folder=tmp_path,
        checkpoint=checkpoint,
        image=image,
        saved={p: p.read_bytes() for p in (checkpoint, image)},
    )


def unchanged(inputs: SimpleNamespace) -> None:
    for path, content in inputs.saved.items():
        assert path.read_bytes() == content, f"{path} was changed"


TS = ["--format", "torchscript"]
OVERWRITES = [
    ("lenet5.export", ["{checkpoint}", *TS, "--output", "{checkpoint}"], "checkpoint"),
    ("lenet5.export", ["{checkpoint}", "--format", "onnx", "--output", "{checkpoint}"], "checkpoint"),
    ("lenet5.export", ["{checkpoint}", *TS, "--output", "{folder}/ckpt_link"], "checkpoint"),
    ("lenet5.export", ["{checkpoint}", "--output", "{folder}/ckpt_hardlink"], "checkpoint"),
    ("lenet5.export", ["{folder}/ckpt_link", *TS, "--output", "{checkpoint}"], "checkpoint"),
    ("lenet5.inspect", ["{checkpoint}", "{image}", "--output", "{image}"], "image"),
    ("lenet5.inspect", ["{checkpoint}", "{image}", "--output", "{checkpoint}"], "checkpoint"),
    ("lenet5.inspect", ["{checkpoint}", "{image}", "--output", "{folder}/image_link"], "image"),
    ("lenet5.inspect", ["{checkpoint}", "{image}", "--output", "{folder}/image_hardlink"], "image"),
    ("lenet5.inspect", ["{checkpoint}", "{image}", "--output", "{folder}/../{folder.name}/model.ckpt"],
     "checkpoint"),
]  # fmt: skip


@pytest.mark.parametrize("module, args, what", OVERWRITES, ids=[" ".join(a) for _, a, _ in OVERWRITES])
def test_an_output_never_overwrites_an_input(inputs, capsys, module: str, args: list[str], what: str) -> None:
    argv = [a.format(**vars(inputs)) for a in args]
    process = run_main(module, argv, capsys)
    refused(process, "--output", f"is the {what} itself")
    unchanged(inputs)


def test_a_default_output_that_is_the_checkpoint(inputs, capsys) -> None:
    """A checkpoint named model.pt is its own default TorchScript export."""
    named_pt = inputs.folder / "model.pt"
    inputs.checkpoint.rename(named_pt)
    inputs.saved = {named_pt: inputs.saved.pop(inputs.checkpoint), **inputs.saved}
    process = run_main("lenet5.export", [str(named_pt), "--format", "torchscript"], capsys)
    refused(process, "the default output", "give --output another file")
    unchanged(inputs)


def test_the_export_of_the_issue_on_the_command_line(run_cli, inputs) -> None:
    ckpt = str(inputs.checkpoint)
    refused(run_cli("-m", "lenet5.export", ckpt, "--format", "torchscript", "--output", ckpt), ckpt)
    unchanged(inputs)


PORTS = ["99999", "65536", "-1", "abc", "1.5", ""]


@pytest.mark.parametrize("port", PORTS)
def test_a_port_outside_1_to_65535_is_one_line(inputs, capsys, port: str) -> None:
    process = run_main("lenet5.inspection.server", [str(inputs.checkpoint), "--port", port], capsys)
    refused(process, f"--port {port}: give a port number from 1 to 65535 (0: any free port)")
    unchanged(inputs)


def test_a_port_in_use_is_one_line(inputs, capsys) -> None:
    busy = socket.socket()
    busy.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as another uvicorn would
    busy.bind(("127.0.0.1", 0))
    busy.listen()
    port = busy.getsockname()[1]
    try:
        process = run_main("lenet5.inspection.server", [str(inputs.checkpoint), "--port", str(port)], capsys)
    finally:
        busy.close()
    refused(process, f"--port {port}: cannot listen there (the port is in use")
    unchanged(inputs)


def test_port_0_is_any_free_port() -> None:
    with server.listening_socket("127.0.0.1", server.port_number("0")) as sock:
        assert sock.getsockname()[1] > 0


def header_png(path: Path, width: int, height: int) -> Path:
    """A PNG whose header claims width x height pixels (a few bytes: a decompression bomb)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64))
    )
    return path


# (width, height, real): a real PNG drawn by Pillow, or only a header claiming the size.
LARGE = [
    (10_000, 8_000, True),  # the issue's 80 megapixels: under PIL's own limit (89 MP)
    (4_097, 4_096, True),  # one row over ours
    (9_800, 9_800, False),  # between PIL's warning (89 MP) and its error (179 MP)
    (40_000, 40_000, False),  # over PIL's error limit
]


@pytest.fixture(params=LARGE, ids=[f"{w}x{h}{'' if real else ' header'}" for w, h, real in LARGE])
def large(request, inputs) -> SimpleNamespace:
    width, height, real = request.param
    path = inputs.folder / f"large_{width}x{height}.png"
    if real:
        Image.new("1", (width, height), 1).save(path)
    else:
        header_png(path, width, height)
    inputs.saved[path] = path.read_bytes()
    return SimpleNamespace(path=path, pixels=width * height)


def test_predict_refuses_too_many_pixels_before_decoding(inputs, large, capsys) -> None:
    process = run_main("lenet5.predict", [str(inputs.checkpoint), str(large.path)], capsys)
    refused(process, str(large.path), f"{large.pixels / 1e6:.1f} megapixels", f"({MAX_PIXELS} pixels)")
    assert f"in {large.path.stat().st_size:,} bytes" in process.stderr
    unchanged(inputs)


def test_inspect_refuses_too_many_pixels(inputs, large, capsys) -> None:
    output = inputs.folder / "layers.png"
    process = run_main(
        "lenet5.inspect", [str(inputs.checkpoint), str(large.path), "--output", str(output)], capsys
    )
    refused(process, str(large.path), "image too large")
    assert not output.exists()
    unchanged(inputs)


def test_the_demo_refuses_too_many_pixels(inputs, large) -> None:
    with TestClient(server.create_app(load_checkpoint(inputs.checkpoint))) as client:
        answer = client.post("/predict", content=large.path.read_bytes())
    assert answer.status_code == 413
    assert "image too large" in answer.json()["error"] and f"({MAX_PIXELS} pixels)" in answer.json()["error"]
    assert "\n" not in answer.text and "Traceback" not in answer.text


def test_an_image_at_the_limit_is_read(inputs, capsys) -> None:
    """4096 x 4096 is not refused for its size: it is read, and found blank."""
    path = inputs.folder / "limit.png"
    Image.new("1", (4096, 4096), 1).save(path)
    process = run_main("lenet5.predict", [str(inputs.checkpoint), str(path)], capsys)
    refused(process, f"{path}: no digit found")


def test_the_image_of_the_issue_on_the_command_line(run_cli, inputs) -> None:
    path = inputs.folder / "80mp.png"
    Image.new("1", (10_000, 8_000), 1).save(path)
    process = run_cli("-m", "lenet5.predict", str(inputs.checkpoint), str(path), str(inputs.image))
    refused(process, f"{path}: image too large (10000x8000 = 80.0 megapixels")
    assert f"{inputs.image}: " in process.stdout  # the readable image is still classified
