"""``python -m lenet5.demo CKPT [--port N] [--host H]``: a page to draw a digit on and watch
every layer of a trained LeNet-5 answer as you draw.

A Starlette app served by uvicorn: ``GET /`` is the page (``page.html``: a canvas, pointer
events, the layers drawn client-side from numbers); ``POST /predict`` takes the bytes of an image
(the body itself, or the first file of a multipart form) and answers the prediction and every
layer's output as JSON. The image is prepared as ``python -m lenet5.predict`` prepares a file.
The model is loaded once; inference runs in a worker thread so the event loop keeps answering.
"""

import argparse
import errno
import json
import socket
import sys
from importlib import resources
from pathlib import Path
from typing import Any

import torch
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.formparsers import MultiPartException
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse
from starlette.routing import Route
from starlette.types import Message, Receive

from lenet5.errors import UserError
from lenet5.inspection.images import ImageTooLarge, digit_from_bytes
from lenet5.inspection.layers import inspect_image
from lenet5.run_files import CHECKPOINT_SUFFIX
from lenet5.serving.checkpoints import Checkpoint, load_checkpoint

MAX_BODY = 5 * 1024 * 1024  # bytes: a phone photo as JPEG fits, a flood does not
AXES = ("activation", "pooling", "c3", "head")
BACKLOG = 2048  # uvicorn's default


class BodyTooLarge(Exception):
    pass


def capped(receive: Receive, limit: int) -> Receive:
    """``receive`` that stops reading a request body once it passes ``limit`` bytes, however
    it is sent (with a Content-Length, chunked, or as a multipart form)."""
    seen = 0

    async def wrapped() -> Message:
        nonlocal seen
        message = await receive()
        if message["type"] == "http.request":
            seen += len(message.get("body", b""))
            if seen > limit:
                raise BodyTooLarge
        return message

    return wrapped


def error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


async def image_bytes(request: Request) -> bytes:
    """The raw body, or the first file (else the first field) of a multipart form."""
    content_type = request.headers.get("content-type", "")
    if not content_type.startswith("multipart/form-data"):
        return await request.body()
    async with request.form(max_files=1, max_fields=10, max_part_size=MAX_BODY) as form:
        for value in form.values():
            return await value.read() if hasattr(value, "read") else str(value).encode()
    return b""


def page(checkpoint: Checkpoint) -> str:
    model = checkpoint.module.model
    config = {
        "checkpoint": checkpoint.path.name,
        "variant": {axis: model.config[axis] for axis in AXES},
        "names": checkpoint.class_names,
        "maxBytes": MAX_BODY,
    }
    text = resources.files("lenet5.inspection").joinpath("page.html").read_text(encoding="utf-8")
    # JSON inside <script>: "<" escaped so no value can close the element.
    return text.replace("__CONFIG__", json.dumps(config).replace("<", "\\u003c"))


def create_app(checkpoint: Checkpoint) -> Starlette:
    model = checkpoint.module.model.eval()
    html = page(checkpoint)

    async def index(request: Request) -> HTMLResponse:
        return HTMLResponse(html)

    def answer(data: bytes) -> dict[str, Any]:
        image = digit_from_bytes(data, "the posted image")
        with torch.inference_mode():
            return inspect_image(model, image).as_json()

    async def predict(request: Request) -> JSONResponse:
        length = request.headers.get("content-length", "")
        if length.isdigit() and int(length) > MAX_BODY:
            return error(413, f"the body is {int(length)} bytes; at most {MAX_BODY} are read")
        request = Request(request.scope, capped(request.receive, MAX_BODY))
        try:
            data = await image_bytes(request)
            return JSONResponse(await run_in_threadpool(answer, data))
        except BodyTooLarge:
            return error(413, f"the body is over {MAX_BODY} bytes, the most that is read")
        except ImageTooLarge as problem:
            return error(413, str(problem))
        except UserError as problem:
            return error(400, str(problem))
        except (MultiPartException, HTTPException) as problem:  # a malformed multipart form
            return error(400, f"the posted form cannot be read ({getattr(problem, 'detail', problem)})")

    return Starlette(routes=[Route("/", index), Route("/predict", predict, methods=["POST"])])


def newest_checkpoint(folder: Path) -> Path:
    # A hidden one is a temporary file of lenet5.atomic, not yet (or never) moved into place.
    found = [p for p in folder.rglob(f"*{CHECKPOINT_SUFFIX}") if p.is_file() and not p.name.startswith(".")]
    if not found:
        raise UserError(f"no checkpoint under {folder}/: run make train first")
    return max(found, key=lambda path: path.stat().st_mtime)


def port_number(text: str) -> int:
    """``--port``'s value: 1..65535, or 0 for any free port (the OS picks, the banner says it)."""
    try:
        port = int(text)
    except ValueError:
        port = -1
    if not 0 <= port <= 65535:
        raise UserError(f"--port {text}: give a port number from 1 to 65535 (0: any free port)")
    return port


def listening_socket(host: str, port: int) -> socket.socket:
    """Bound and listening here, so a busy port or an unknown host is one line, not uvicorn's
    traceback (listening too: two servers may both bind with SO_REUSEADDR, only one listens)."""
    try:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
        sock = socket.socket(family, socket.SOCK_STREAM)
    except OSError as problem:
        raise UserError(f"--host {host}: unknown host ({problem})") from problem
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(BACKLOG)
    except OSError as problem:
        sock.close()
        reason = (
            "the port is in use: another server listens there; give another, or --port 0 for any free one"
            if problem.errno == errno.EADDRINUSE
            else str(problem)
        )
        raise UserError(f"--host {host} --port {port}: cannot listen there ({reason})") from problem
    return sock


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m lenet5.demo",
        description="Draw a digit in your browser and watch every layer of a lenet5 checkpoint answer.",
    )
    parser.add_argument("checkpoint", type=Path, help="a .ckpt file, or a folder: its newest .ckpt")
    parser.add_argument("--port", default="8000", help="default 8000 (0: any free port)")
    parser.add_argument("--host", default="127.0.0.1", help="default 127.0.0.1 (this machine only)")
    args = parser.parse_args(argv)
    try:
        port = port_number(args.port)
        path = newest_checkpoint(args.checkpoint) if args.checkpoint.is_dir() else args.checkpoint
        checkpoint = load_checkpoint(path)
        sock = listening_socket(args.host, port)
    except UserError as problem:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    import uvicorn

    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    print(f"serving {path} on http://{shown}:{port}  (Ctrl+C stops)", flush=True)
    server = uvicorn.Server(uvicorn.Config(create_app(checkpoint), log_level="warning"))
    server.run(sockets=[sock])
    return 0
