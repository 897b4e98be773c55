"""tools/evaluate_service.py against a stand-in HTTP service (stdlib only, no torch, no Swift build)."""
from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

import evaluate_service  # tools/ is on the path (conftest.py)
from cbamtools.datasets import CIFAR10_CLASSES

LABELS = CIFAR10_CLASSES


class StandIn(BaseHTTPRequestHandler):
    """Answers like /v1/predict: the 'image' bytes are `<class index>` the service 'predicts'; `fail` gives a 503."""
    protocol_version = "HTTP/1.1"
    seen: list[tuple[str, str, str | None]] = []
    in_flight = 0
    peak = 0
    lock = threading.Lock()

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        cls = type(self)
        with cls.lock:
            cls.seen.append((self.path, self.headers.get("Content-Type"), self.headers.get("Authorization")))
            cls.in_flight += 1
            cls.peak = max(cls.peak, cls.in_flight)
        time.sleep(0.02)  # long enough for the client's threads to overlap
        with cls.lock:
            cls.in_flight -= 1
        if body == b"fail":
            status, reply = 503, {"error": {"code": "queue_full", "message": "the queue is full"}}
        else:
            k = int(body)
            status, reply = 200, {"id": "x", "model": "m", "predictions": [{"index": k, "label": LABELS[k], "probability": 0.9}]}
        data = json.dumps(reply).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


@pytest.fixture
def service():
    StandIn.seen, StandIn.in_flight, StandIn.peak = [], 0, 0
    server = ThreadingHTTPServer(("127.0.0.1", 0), StandIn)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def write_dataset(root: Path, answers: dict[str, bytes]) -> Path:
    for rel, body in answers.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(body)
    listing = root / "files.txt"
    listing.write_text("\n".join(answers) + "\n")
    return listing


def test_accuracy_concurrency_and_headers(tmp_path, service, capsys):
    # 40 files: 30 answered with their true class, 10 with a wrong one -> top-1 0.75.
    answers = {}
    for i in range(40):
        true = i % 10
        answers[f"{LABELS[true]}/{i:04d}.jpg"] = str(true if i < 30 else (true + 1) % 10).encode()
    listing = write_dataset(tmp_path / "data", answers)
    out = tmp_path / "service.json"
    rc = evaluate_service.main(["--url", service, "--data", str(tmp_path / "data"), "--files", str(listing),
                                "--threads", "8", "--api-key", "s3cret", "--predictions-out", str(out)])
    assert rc == 0
    summary = json.loads(capsys.readouterr().out)
    assert (summary["images"], summary["correct"], summary["top1"], summary["errors"]) == (40, 30, 0.75, 0)
    assert summary["images_per_s"] > 0 and summary["latency_ms"]["p50"] >= 20
    assert StandIn.peak > 1, "requests were not sent concurrently"
    assert len(StandIn.seen) == 40
    assert all(s == ("/v1/predict?top_k=1", "image/jpeg", "Bearer s3cret") for s in StandIn.seen)
    saved = json.loads(out.read_text())
    assert saved["predictions"]["airplane/0030.jpg"] == 1


def test_errors_are_counted_not_scored_as_correct(tmp_path, service, capsys):
    listing = write_dataset(tmp_path / "data", {"cat/a.jpg": b"3", "dog/b.jpg": b"fail"})
    rc = evaluate_service.main(["--url", service, "--data", str(tmp_path / "data"), "--files", str(listing),
                                "--model", "tiny"])
    assert rc == 1
    summary = json.loads(capsys.readouterr().out)
    assert (summary["correct"], summary["errors"]) == (1, 1)
    assert "HTTP 503 queue_full" in summary["first_errors"][0][1]
    assert {s[0] for s in StandIn.seen} == {"/v1/models/tiny/predict?top_k=1"}


def test_compare_counts_differing_predictions(tmp_path, service, capsys):
    listing = write_dataset(tmp_path / "data", {"cat/a.jpg": b"3", "dog/b.jpg": b"5", "ship/c.jpg": b"1"})
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"predictions": {"cat/a.jpg": 3, "dog/b.jpg": 5, "ship/c.jpg": 8}}))
    assert evaluate_service.main(["--url", service, "--data", str(tmp_path / "data"), "--files", str(listing),
                                  "--compare", str(other)]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["compare"]["differ"] == 1 and summary["compare"]["first_differ"] == ["ship/c.jpg"]


def test_unknown_class_directory_is_a_clear_error(tmp_path, capsys):
    listing = write_dataset(tmp_path / "data", {"zebra/a.jpg": b"3"})
    assert evaluate_service.main(["--data", str(tmp_path / "data"), "--files", str(listing)]) == 2
    assert "'zebra' is not one of the labels" in capsys.readouterr().err


def test_unreachable_service_reports_errors(tmp_path, capsys):
    listing = write_dataset(tmp_path / "data", {"cat/a.jpg": b"3"})
    assert evaluate_service.main(["--url", "http://127.0.0.1:9", "--data", str(tmp_path / "data"),
                                  "--files", str(listing), "--timeout", "2"]) == 1
    summary = json.loads(capsys.readouterr().out)
    assert summary["errors"] == 1 and summary["correct"] == 0
