"""``POST /predict`` and ``GET /`` through Starlette's TestClient, and the demo's command line."""

import io
import os
import socket
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from starlette.testclient import TestClient

from lenet5.inspection import server
from lenet5.inspection.layers import layer_outputs
from lenet5.serving import predict
from lenet5.serving.checkpoints import load_checkpoint

# The paper's layer sizes, as the JSON nests them.
SHAPES = {
    "c1": (6, 28, 28),
    "s2": (6, 14, 14),
    "c3": (16, 10, 10),
    "s4": (16, 5, 5),
    "c5": (120,),
    "f6": (84,),
}


@pytest.fixture(params=["classic", "modern"])
def variant(request) -> str:
    return request.param


@pytest.fixture
def client(make_checkpoint, variant: str):
    checkpoint = load_checkpoint(make_checkpoint(variant))
    with TestClient(server.create_app(checkpoint)) as client:
        client.checkpoint = checkpoint
        yield client


def png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def test_the_page_has_a_canvas(client: TestClient) -> None:
    page = client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert '<canvas id="pad"' in page.text and 'fetch("/predict"' in page.text
    assert "__CONFIG__" not in page.text and client.checkpoint.path.name in page.text


def test_a_good_image_gets_every_layer(client: TestClient, seven: Path, variant: str) -> None:
    answer = client.post("/predict", content=seven.read_bytes(), headers={"content-type": "image/png"})
    assert answer.status_code == 200
    body = answer.json()
    assert body["digit"] in range(10)
    assert len(body["probabilities"]) == 10 and sum(body["probabilities"]) == pytest.approx(1, abs=1e-4)
    assert body["probabilities"][body["digit"]] == max(body["probabilities"])
    assert {name: np.shape(value) for name, value in body["layers"].items()} == SHAPES
    assert np.shape(body["input"]) == (32, 32)
    # The numbers are the model's own on predict's prepared input, rounded.
    image = predict.read_one(str(seven))
    outputs = layer_outputs(client.checkpoint.module.model, image)
    for name in SHAPES:
        assert np.allclose(body["layers"][name], outputs[name][0].numpy(), atol=1e-3), name
    classes, _ = predict.classify(client.checkpoint.module.model, image)
    assert body["digit"] == int(classes[0])
    assert ("rbf_penalties" in body) == (variant == "classic")
    if variant == "classic":
        assert body["head"] == "rbf" and len(body["rbf_penalties"]) == 10 and len(body["rbf_code"]) == 84
        assert np.argmin(body["rbf_penalties"]) == body["digit"]


def test_a_multipart_upload_is_read_too(client: TestClient, seven: Path) -> None:
    raw = client.post("/predict", content=seven.read_bytes()).json()
    form = client.post("/predict", files={"image": ("seven.png", seven.read_bytes(), "image/png")})
    assert form.status_code == 200 and form.json() == raw
    two = [(name, (f"{name}.png", seven.read_bytes(), "image/png")) for name in "ab"]
    refused = client.post("/predict", files=two)
    assert refused.status_code == 400 and "the posted form cannot be read" in refused.json()["error"]


@pytest.mark.parametrize(
    "body, problem",
    [
        (b"", "empty, not an image"),
        (b"these are not pixels", "not an image PIL can read"),
        (png(Image.new("L", (300, 200), 255))[:60], "truncated or damaged image"),
        (png(Image.new("L", (300, 200), 255)), "no digit found"),
    ],
    ids=["empty", "text", "truncated", "blank"],
)
def test_a_bad_body_is_400_and_one_line(client: TestClient, body: bytes, problem: str) -> None:
    answer = client.post("/predict", content=body)
    assert answer.status_code == 400
    assert list(answer.json()) == ["error"] and problem in answer.json()["error"]
    assert "\n" not in answer.text and "Traceback" not in answer.text


def test_huge_bodies_and_images_are_refused(client: TestClient) -> None:
    big = b"\0" * (server.MAX_BODY + 1)
    declared = client.post("/predict", content=big)
    assert declared.status_code == 413 and "at most" in declared.json()["error"]
    # Chunked (no Content-Length): the stream is cut off past the limit.
    chunked = client.post("/predict", content=iter([big[: server.MAX_BODY], b"\0" * 10]))
    assert chunked.status_code == 413
    # Decompression bombs: small PNGs that would decode to 25 and 100 megapixels (over ours and
    # over PIL's own limit), refused before their pixels are decoded.
    for side in (5_000, 10_000):
        bomb = png(Image.new("1", (side, side), 1))
        assert len(bomb) < server.MAX_BODY
        answer = client.post("/predict", content=bomb)
        assert answer.status_code == 413 and "image too large" in answer.json()["error"]
        assert "\n" not in answer.text


def test_only_post_predicts(client: TestClient) -> None:
    assert client.get("/predict").status_code == 405


def test_the_newest_checkpoint_under_a_folder(tmp_path: Path, make_checkpoint) -> None:
    folder = tmp_path / "outputs"
    with pytest.raises(Exception, match=r"no checkpoint under .*outputs/: run make train first"):
        server.newest_checkpoint(folder)
    (folder / "runs" / "a").mkdir(parents=True)
    (folder / "runs" / "b").mkdir(parents=True)
    old = make_checkpoint("classic").rename(folder / "runs" / "a" / "last.ckpt")
    new = make_checkpoint("modern").rename(folder / "runs" / "b" / "last.ckpt")
    (folder / "runs" / "b" / ".last.ckpt.partial.ckpt").write_bytes(b"half")
    os.utime(old, (1, 1))
    assert server.newest_checkpoint(folder) == new


def test_the_command_line_refuses_bad_input_in_one_line(tmp_path: Path, make_checkpoint, capsys) -> None:
    checkpoint = make_checkpoint()
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen()
    port = busy.getsockname()[1]
    try:
        cases = {
            (str(tmp_path / "none.ckpt"),): "none.ckpt: no such file",
            (str(tmp_path / "empty_folder"),): "no such file",
            (str(checkpoint), "--port", str(port)): f"--port {port}: cannot listen there",
        }
        (tmp_path / "folder").mkdir()
        cases[(str(tmp_path / "folder"),)] = "no checkpoint under"
        for args, problem in cases.items():
            assert server.main(list(args)) == 2, args
            captured = capsys.readouterr()
            assert captured.err.startswith("error: ") and captured.err.count("\n") == 1
            assert problem in captured.err, captured.err
    finally:
        busy.close()


def test_inference_is_the_same_for_any_body_format(client: TestClient, seven: Path, tmp_path: Path) -> None:
    """A JPEG of the same drawing answers the same digit (the server decodes with PIL)."""
    jpeg = tmp_path / "seven.jpg"
    with Image.open(seven) as image:
        image.convert("RGB").save(jpeg, quality=95)
    as_png = client.post("/predict", content=seven.read_bytes()).json()
    as_jpeg = client.post("/predict", content=jpeg.read_bytes()).json()
    assert as_png["digit"] == as_jpeg["digit"]
    assert torch.allclose(torch.tensor(as_png["input"]), torch.tensor(as_jpeg["input"]), atol=0.1)
