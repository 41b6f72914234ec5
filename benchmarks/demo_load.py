"""The demo server under load: ``python benchmarks/demo_load.py CKPT [--requests N] [--clients C]``.

Starts ``python -m lenet5.demo CKPT --port 0`` as users start it (a subprocess, any free port),
posts the PNG a browser sends (the page's 280x280 canvas with a drawn 7) N times from C client
threads, each on its own keep-alive connection, and prints the requests per second, the answer
times (median, 99th percentile, slowest), the failures, and the server's resident memory after
start-up (and one warm-up answer), after the load, and its peak. Then a few hostile uploads
(a 16.8-megapixel PNG over the limit, a 40,000 x 40,000 header, garbage) to show they are
answered 413/400 without a rise in memory.
"""

import argparse
import http.client
import io
import re
import statistics
import struct
import subprocess
import sys
import threading
import time
import zlib
from pathlib import Path

from PIL import Image, ImageDraw

BANNER = re.compile(r"serving .* on http://(?P<host>[^ ]+):(?P<port>\d+)")


def png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def drawn_seven() -> bytes:
    """What the page posts: its white 280x280 canvas, a black stroke of width 18."""
    image = Image.new("RGBA", (280, 280), "white")
    ImageDraw.Draw(image).line([(70, 56), (210, 56), (126, 238)], fill="black", width=18)
    return png(image)


def header_bomb(side: int = 40_000) -> bytes:
    """A PNG header claiming side x side pixels, a few bytes in all."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\0"))
        + chunk(b"IEND", b"")
    )


def resident_mb(pid: int) -> tuple[float, float]:
    """(resident memory now, its peak) of process ``pid``, in MB (Linux's /proc)."""
    fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines())
    return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024


def post(connection: http.client.HTTPConnection, body: bytes) -> tuple[int, float]:
    started = time.perf_counter()
    connection.request("POST", "/predict", body=body, headers={"Content-Type": "image/png"})
    response = connection.getresponse()
    response.read()
    return response.status, time.perf_counter() - started


def load(host: str, port: int, body: bytes, requests: int, clients: int) -> tuple[list[float], int, float]:
    """(answer seconds of each request, failures, wall seconds) for ``requests`` posts."""
    times: list[float] = []
    failures = [0]
    lock = threading.Lock()
    share = [requests // clients + (i < requests % clients) for i in range(clients)]

    def client(count: int) -> None:
        connection = http.client.HTTPConnection(host, port, timeout=60)
        for _ in range(count):
            try:
                status, seconds = post(connection, body)
            except (OSError, http.client.HTTPException):
                status, seconds = 0, 0.0
                connection.close()
                connection = http.client.HTTPConnection(host, port, timeout=60)
            with lock:
                times.append(seconds)
                failures[0] += status != 200
        connection.close()

    threads = [threading.Thread(target=client, args=(count,)) for count in share]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return times, failures[0], time.perf_counter() - started


def start_server(checkpoint: Path) -> tuple[subprocess.Popen, str, int]:
    command = [sys.executable, "-m", "lenet5.demo", str(checkpoint), "--port", "0"]
    server = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    line = server.stdout.readline()
    found = BANNER.search(line)
    if not found:
        server.kill()
        sys.exit(f"the demo did not start: {line}{server.stdout.read()[-2000:]}")
    return server, found["host"].strip("[]"), int(found["port"])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("checkpoint", type=Path, help="a .ckpt written by train.py")
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--clients", type=int, default=4, help="concurrent connections (default 4)")
    args = parser.parse_args()
    server, host, port = start_server(args.checkpoint)
    try:
        body = drawn_seven()
        warm = http.client.HTTPConnection(host, port, timeout=60)
        status, first = post(warm, body)
        warm.close()
        if status != 200:
            sys.exit(f"the demo answered {status} to a drawn digit")
        before, _ = resident_mb(server.pid)
        times, failures, wall = load(host, port, body, args.requests, args.clients)
        after, peak = resident_mb(server.pid)
        ordered = sorted(times)
        print(f"checkpoint: {args.checkpoint}; body: a {len(body):,}-byte 280x280 PNG")
        print(f"first answer (warm-up): {1000 * first:.0f} ms")
        print(
            f"{len(times)} requests, {args.clients} clients: {len(times) / wall:.0f} requests/s, "
            f"{failures} failed, {wall:.1f} s"
        )
        print(
            f"answer time: median {1000 * statistics.median(ordered):.1f} ms, "
            f"99th percentile {1000 * ordered[int(0.99 * (len(ordered) - 1))]:.1f} ms, "
            f"slowest {1000 * ordered[-1]:.1f} ms"
        )
        print(f"server memory: {before:.0f} MB before, {after:.0f} MB after, peak {peak:.0f} MB")
        hostile = {
            "16.8+ MP PNG": png(Image.new("1", (4100, 4100), 1)),
            "40000x40000 header": header_bomb(),
            "garbage": b"not an image" * 100,
        }
        connection = http.client.HTTPConnection(host, port, timeout=60)
        answers = []
        for name, data in hostile.items():
            status, seconds = post(connection, data)
            answers.append(f"{name} ({len(data):,} bytes) {status} in {1000 * seconds:.0f} ms")
        connection.close()
        now, peak = resident_mb(server.pid)
        print(f"hostile uploads: {'; '.join(answers)}; memory then {now:.0f} MB, peak {peak:.0f} MB")
    finally:
        server.terminate()
        server.wait(timeout=30)
    return 0


if __name__ == "__main__":
    sys.exit(main())
