#!/usr/bin/env python3
"""A bounded mixed-load soak of cbam-serve on the loopback interface.

    python3 tools/soak.py [--seconds 60] [--workers 8] [--max-requests N] [--bin PATH | --url URL [--pid PID]]

Starts `cbam-serve serve` (the release build: --bin, $CBAM_SERVE_BIN or .build/release/cbam-serve) on a free
127.0.0.1 port with the default model, or uses a running server at a loopback --url. For --seconds, --workers
threads send a mix of good and bad requests, each with the statuses it may get:

  good      JPEG and PNG uploads, multipart with several files, OIP JSON and binary (FP32 and BYTES) infers,
            /metrics, /v1/models, /readyz                                                        -> 200
  bad       truncated, corrupt and empty images, text and GIF uploads, an OIP body that is not JSON,
            a wrong Content-Type, a Content-Length over the body limit, an unknown route  -> 400/404/413/415

while one more thread times GET /healthz every 50 ms and another samples the server's VmRSS and VmHWM from
/proc/PID/status every second. It prints the statuses by kind, the /healthz latency (p50, p99, max), RSS at the
start, its peak and at the end, and requests/s; it exits 1 if a request got a status outside its set, a 5xx, a
connection error, or the server died. Only the standard library.
"""
from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import socket
import struct
import sys
import threading
import time
import urllib.parse
import zlib
from collections import Counter, defaultdict
from pathlib import Path

from cbamtools.server import LocalServer, ServerError

ROOT = Path(__file__).resolve().parents[1]
MODEL = "cbam-resnet10-cifar10"
LOOPBACK = {"127.0.0.1", "localhost", "::1"}


# --------------------------------------------------------------------------------------------------- payloads

def png(width: int, height: int, colour_type: int, seed: int) -> bytes:
    """A valid 8-bit PNG (gray 0, RGB 2 or RGBA 6) with deterministic pixels, written without Pillow."""
    rng = random.Random(seed)
    channels = {0: 1, 2: 3, 6: 4}[colour_type]
    rows = b"".join(b"\x00" + bytes(rng.randrange(256) for _ in range(width * channels)) for _ in range(height))
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, colour_type, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


def multipart(files: list[tuple[str, bytes, str]]) -> tuple[bytes, str]:
    boundary = "soak" + "%016x" % random.getrandbits(64)
    body = b""
    for name, data, content_type in files:
        body += (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{name}\"\r\n"
                 f"Content-Type: {content_type}\r\n\r\n").encode() + data + b"\r\n"
    return body + f"--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


class Payloads:
    def __init__(self, samples: Path, size: int = 32):
        self.jpegs = [p.read_bytes() for p in sorted(samples.glob("*.jpg"))]
        if not self.jpegs:
            sys.exit(f"soak: no JPEG samples in {samples}")
        self.pngs = [png(32, 32, 2, 1), png(45, 31, 6, 2), png(64, 48, 0, 3)]
        rng = random.Random(4)
        values = [round(rng.uniform(-2, 2), 4) for _ in range(3 * size * size)]
        infer = f"/v2/models/{MODEL}/infer"
        self.oip_json = json.dumps({"inputs": [{"name": "input", "datatype": "FP32", "shape": [1, 3, size, size],
                                                "data": values}]}).encode()
        floats = struct.pack(f"<{len(values)}f", *values)
        header = json.dumps({"inputs": [{"name": "input", "datatype": "FP32", "shape": [1, 3, size, size],
                                         "parameters": {"binary_data_size": len(floats)}}],
                             "outputs": [{"name": "probabilities", "parameters": {"binary_data": True}}]}).encode()
        self.oip_binary = (header + floats, len(header))
        images = self.jpegs[:2]
        packed = b"".join(struct.pack("<I", len(i)) + i for i in images)
        header = json.dumps({"inputs": [{"name": "image", "datatype": "BYTES", "shape": [len(images), 1],
                                         "parameters": {"binary_data_size": len(packed)}}]}).encode()
        self.oip_bytes = (header + packed, len(header))
        self.infer = infer
        jpeg = self.jpegs[0]
        gif = b"GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\xff\xff\xff!\xf9\x04\x01\x00\x00\x00\x00,\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;"
        corrupt = jpeg[:20] + bytes(rng.randrange(256) for _ in range(300))  # a JPEG start, then noise
        # kind -> (method, path, body, headers, allowed statuses)
        self.good = [
            ("jpeg", lambda: ("POST", "/v1/predict?top_k=3", random.choice(self.jpegs), {"Content-Type": "image/jpeg"})),
            ("png", lambda: ("POST", "/v1/predict?attention=spatial", random.choice(self.pngs), {"Content-Type": "image/png"})),
            ("multipart", lambda: ("POST", f"/v1/models/{MODEL}/predict", *self._multipart())),
            ("oip_json", lambda: ("POST", infer, self.oip_json, {"Content-Type": "application/json"})),
            ("oip_binary", lambda: ("POST", infer, self.oip_binary[0], {
                "Content-Type": "application/octet-stream", "Inference-Header-Content-Length": str(self.oip_binary[1])})),
            ("oip_bytes", lambda: ("POST", infer, self.oip_bytes[0], {
                "Content-Type": "application/octet-stream", "Inference-Header-Content-Length": str(self.oip_bytes[1])})),
            ("metrics", lambda: ("GET", "/metrics", None, {})),
            ("models", lambda: ("GET", "/v1/models", None, {})),
            ("readyz", lambda: ("GET", "/readyz", None, {})),
        ]
        self.bad = [
            ("truncated_jpeg", lambda: ("POST", "/v1/predict", jpeg[: len(jpeg) * 6 // 10], {"Content-Type": "image/jpeg"}), {400}),
            ("truncated_png", lambda: ("POST", "/v1/predict", self.pngs[0][:60], {"Content-Type": "image/png"}), {400}),
            ("corrupt_jpeg", lambda: ("POST", "/v1/predict", corrupt, {"Content-Type": "image/jpeg"}), {400}),
            ("empty", lambda: ("POST", "/v1/predict", b"", {"Content-Type": "image/jpeg"}), {400}),
            ("text", lambda: ("POST", "/v1/predict", b"not an image\n" * 4, {"Content-Type": "text/plain"}), {415}),
            ("gif", lambda: ("POST", "/v1/predict", gif, {"Content-Type": "image/gif"}), {415}),
            ("oip_not_json", lambda: ("POST", infer, b"{\"inputs\": [", {"Content-Type": "application/json"}), {400}),
            ("oip_wrong_type", lambda: ("POST", infer, self.oip_json, {"Content-Type": "text/csv"}), {415}),
            ("unknown_route", lambda: ("GET", "/v1/nothing-here", None, {}), {404}),
        ]

    def _multipart(self):
        files = [(f"{i}.jpg", random.choice(self.jpegs), "image/jpeg") for i in range(3)]
        files.append(("x.png", random.choice(self.pngs), "image/png"))
        body, content_type = multipart(files)
        return body, {"Content-Type": content_type}


# ----------------------------------------------------------------------------------------------------- server

def memory(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM of `pid` in kB."""
    values = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, rest = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                values[key] = int(rest.split()[0])
    return values


# ------------------------------------------------------------------------------------------------------- load

class Soak:
    def __init__(self, host: str, port: int, payloads: Payloads, deadline: float, max_requests: int, max_body: int):
        self.host, self.port, self.payloads = host, port, payloads
        self.deadline, self.max_requests, self.max_body = deadline, max_requests, max_body
        self.lock = threading.Lock()
        self.sent = 0
        self.statuses: dict[str, Counter] = defaultdict(Counter)
        self.unexpected: Counter = Counter()
        self.errors: Counter = Counter()
        self.health: list[float] = []

    def claim(self) -> bool:
        with self.lock:
            if self.sent >= self.max_requests or time.monotonic() >= self.deadline:
                return False
            self.sent += 1
            return True

    def record(self, kind: str, status: int | str, allowed: set[int]):
        with self.lock:
            self.statuses[kind][status] += 1
            if status not in allowed:
                self.unexpected[(kind, status)] += 1

    def connection(self) -> http.client.HTTPConnection:
        return http.client.HTTPConnection(self.host, self.port, timeout=30)

    def worker(self, seed: int):
        rng = random.Random(seed)
        conn = self.connection()
        while self.claim():
            if rng.random() < 0.75:
                kind, make = rng.choice(self.payloads.good)
                allowed = {200}
            else:
                kind, make, allowed = rng.choice(self.payloads.bad)
            if rng.random() < 0.03:
                self.oversize()
                continue
            method, path, body, headers = make()
            try:
                conn.request(method, path, body=body, headers=headers)
                response = conn.getresponse()
                response.read()
                self.record(kind, response.status, allowed)
                if response.getheader("Connection", "").lower() == "close":
                    conn.close()
                    conn = self.connection()
            except (OSError, http.client.HTTPException) as error:
                self.record(kind, type(error).__name__, allowed)
                with self.lock:
                    self.errors[type(error).__name__] += 1
                conn.close()
                conn = self.connection()
        conn.close()

    def oversize(self):
        """A Content-Length over the body limit, with no body sent: refused from the header."""
        try:
            with socket.create_connection((self.host, self.port), timeout=30) as s:
                s.sendall(f"POST /v1/predict HTTP/1.1\r\nHost: soak\r\nContent-Type: image/jpeg\r\n"
                          f"Content-Length: {self.max_body + 1}\r\n\r\n".encode())
                answer = s.recv(64)
            status = int(answer.split()[1]) if answer.startswith(b"HTTP/1.1 ") else "no answer"
        except OSError as error:
            status = type(error).__name__
        self.record("oversize_declared", status, {413})

    def prober(self):
        conn = self.connection()
        while time.monotonic() < self.deadline:
            started = time.perf_counter()
            try:
                conn.request("GET", "/healthz")
                response = conn.getresponse()
                response.read()
                elapsed = time.perf_counter() - started
                with self.lock:
                    self.health.append(elapsed)
                self.record("healthz", response.status, {200})
            except (OSError, http.client.HTTPException) as error:
                self.record("healthz", type(error).__name__, {200})
                conn.close()
                conn = self.connection()
            time.sleep(0.05)
        conn.close()


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--max-requests", type=int, default=2_000_000)
    parser.add_argument("--bin", type=Path, default=Path(os.environ.get("CBAM_SERVE_BIN", ROOT / ".build/release/cbam-serve")))
    parser.add_argument("--url", help="a running server on the loopback interface instead of starting one")
    parser.add_argument("--pid", type=int, help="with --url: the server's process id, for RSS")
    parser.add_argument("--max-body-bytes", type=int, default=20 << 20,
                        help="the server's body limit (set when the soak starts the server)")
    parser.add_argument("--samples", type=Path, default=ROOT / "models" / MODEL / "samples")
    args = parser.parse_args()

    process = None
    if args.url:
        parsed = urllib.parse.urlsplit(args.url)
        if parsed.hostname not in LOOPBACK:
            sys.exit(f"soak: only loopback servers, not {parsed.hostname}")
        base, pid = args.url, args.pid
    else:
        try:
            server = LocalServer(args.bin, {"CBAM_API_KEY": None, "CBAM_MAX_BODY_BYTES": str(args.max_body_bytes)})
        except ServerError as error:
            sys.exit(f"soak: {error}")
        process, base = server.process, server.base
        pid = process.pid
    parsed = urllib.parse.urlsplit(base)
    payloads = Payloads(args.samples)

    samples: list[dict[str, int]] = []
    stop = threading.Event()
    def sampler():
        while not stop.is_set():
            try:
                samples.append(memory(pid))
            except OSError:
                return
            stop.wait(1.0)
    if pid:
        samples.append(memory(pid))

    started = time.monotonic()
    soak = Soak(parsed.hostname, parsed.port, payloads, started + args.seconds, args.max_requests, args.max_body_bytes)
    threads = [threading.Thread(target=soak.worker, args=(i,)) for i in range(args.workers)]
    threads.append(threading.Thread(target=soak.prober))
    if pid:
        threads.append(threading.Thread(target=sampler))
    for t in threads:
        t.start()
    for t in threads[:-1] if pid else threads:
        t.join()
    elapsed = time.monotonic() - started
    stop.set()
    if pid:
        threads[-1].join()
        try:
            samples.append(memory(pid))
        except OSError:
            pass

    died = process is not None and process.poll() is not None
    total = sum(sum(c.values()) for c in soak.statuses.values())
    print(f"soak: {elapsed:.0f} s, {args.workers} workers + /healthz prober, {total} requests, "
          f"{total / elapsed:.0f} requests/s, server {base} (pid {pid or '?'})")
    for kind in sorted(soak.statuses):
        counts = ", ".join(f"{status}: {n}" for status, n in sorted(soak.statuses[kind].items(), key=lambda x: str(x[0])))
        print(f"  {kind:18} {counts}")
    by_status = Counter()
    for counter in soak.statuses.values():
        by_status.update(counter)
    print("statuses: " + ", ".join(f"{s}: {n}" for s, n in sorted(by_status.items(), key=lambda x: str(x[0]))))
    h = soak.health
    print(f"/healthz latency: p50 {percentile(h, 0.5) * 1000:.2f} ms, p99 {percentile(h, 0.99) * 1000:.2f} ms, "
          f"max {max(h) * 1000 if h else float('nan'):.2f} ms ({len(h)} probes)")
    if samples:
        rss = [s["VmRSS"] for s in samples if "VmRSS" in s]
        print(f"RSS: start {rss[0] / 1024:.1f} MB, peak {max(s.get('VmHWM', 0) for s in samples) / 1024:.1f} MB "
              f"(VmHWM), max sampled {max(rss) / 1024:.1f} MB, end {rss[-1] / 1024:.1f} MB ({len(samples)} samples)")
        tenths = [rss[min(len(rss) - 1, i * (len(rss) - 1) // 10)] for i in range(11)]
        print("RSS every tenth of the run (MB): " + " ".join(f"{kb / 1024:.0f}" for kb in tenths))
    server_errors = sum(n for s, n in by_status.items() if isinstance(s, int) and s >= 500)
    problems = []
    if soak.unexpected:
        problems.append("unexpected statuses: " + ", ".join(f"{k} {s} x{n}" for (k, s), n in soak.unexpected.items()))
    if server_errors:
        problems.append(f"{server_errors} 5xx answers")
    if soak.errors:
        problems.append("connection errors: " + ", ".join(f"{e} x{n}" for e, n in soak.errors.items()))
    if died:
        problems.append(f"the server exited with {process.returncode}")
    if process is not None and not died:
        server.stop(timeout_s=15)
    for problem in problems:
        print("FAIL: " + problem)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
