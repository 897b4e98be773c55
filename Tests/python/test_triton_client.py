"""The Open Inference Protocol side of `cbam-serve serve`, driven by Triton's own HTTP client (`tritonclient[http]`).

Starts the binary named by CBAM_SERVE_BIN (tools/test.sh builds it) on a free port with the service tests' small
model, reads the metadata, infers with JSON and with binary tensors, and compares the logits with what the engine
prints for the same .npy (`cbam-serve predict --logits`). Also: images as BYTES, errors, configuration from the
environment, and a clean exit on SIGTERM.
"""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from cbamtools.server import LocalServer  # tools/ is on the path (conftest.py)

tritonhttp = pytest.importorskip("tritonclient.http")
from tritonclient.utils import InferenceServerException  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
MODEL_DIR = ROOT / "Tests" / "CBAMServiceTests" / "Fixtures" / "model"
IMAGES = ROOT / "Tests" / "CBAMServiceTests" / "Fixtures" / "images"
MODEL = json.loads((MODEL_DIR / "config.json").read_text())["name"]
INPUT_NPY = MODEL_DIR / "input.npy"


def serve_binary() -> str:
    binary = os.environ.get("CBAM_SERVE_BIN")
    if not binary:
        candidates = [ROOT / ".build" / "release" / "cbam-serve", ROOT / ".build" / "debug" / "cbam-serve"]
        binary = next((str(c) for c in candidates if c.exists()), None)
    if not binary or not Path(binary).exists():
        pytest.fail("set CBAM_SERVE_BIN to a built cbam-serve (tools/test.sh does)")
    return binary


def start_server(env: dict[str, str]) -> LocalServer:
    """`cbam-serve serve` with the service tests' model, configured through the environment; ready when returned."""
    return LocalServer(serve_binary(), {"CBAM_MODEL": str(MODEL_DIR), **env}, probe="/v2/health/ready", startup_timeout_s=30)


@pytest.fixture(scope="module")
def server():
    s = start_server({"CBAM_MAX_BATCH_SIZE": "8", "CBAM_MAX_BATCH_DELAY_MS": "2"})
    yield s
    assert s.stop() == 0


@pytest.fixture(scope="module")
def client(server):
    return tritonhttp.InferenceServerClient(url=server.address)


@pytest.fixture(scope="module")
def engine_logits() -> np.ndarray:
    """What the engine itself computes for input.npy, through the CLI."""
    out = subprocess.run([serve_binary(), "predict", "--model", str(MODEL_DIR), "--logits", str(INPUT_NPY)],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    results = json.loads(out.stdout)["results"]
    return np.array([r["logits"] for r in sorted(results, key=lambda r: r["index"])], dtype=np.float32)


def test_health_and_metadata(client):
    assert client.is_server_live()
    assert client.is_server_ready()
    assert client.is_model_ready(MODEL)
    server_meta = client.get_server_metadata()
    assert "binary_tensor_data" in server_meta["extensions"]
    meta = client.get_model_metadata(MODEL)
    assert meta["name"] == MODEL
    inputs = {i["name"]: i for i in meta["inputs"]}
    assert inputs["input"]["datatype"] == "FP32" and inputs["input"]["shape"] == [-1, 3, 32, 32]
    assert inputs["image"]["datatype"] == "BYTES"
    assert [o["name"] for o in meta["outputs"]] == ["logits", "probabilities"]
    config = client.get_model_config(MODEL)
    assert config["max_batch_size"] == 8


@pytest.mark.parametrize("binary", [False, True], ids=["json", "binary"])
def test_fp32_inference_matches_the_engine(client, engine_logits, binary):
    x = np.load(INPUT_NPY)
    assert x.shape[0] >= 2, "the fixture should be a batch"
    tensor = tritonhttp.InferInput("input", list(x.shape), "FP32")
    tensor.set_data_from_numpy(x, binary_data=binary)
    outputs = [tritonhttp.InferRequestedOutput("logits", binary_data=binary),
               tritonhttp.InferRequestedOutput("probabilities", binary_data=binary)]
    result = client.infer(MODEL, [tensor], outputs=outputs, request_id="py-1")
    logits = result.as_numpy("logits")
    assert logits.shape == engine_logits.shape
    np.testing.assert_allclose(logits, engine_logits, atol=1e-5, rtol=0)
    probabilities = result.as_numpy("probabilities")
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)
    shifted = np.exp(engine_logits - engine_logits.max(axis=1, keepdims=True))
    np.testing.assert_allclose(probabilities, shifted / shifted.sum(axis=1, keepdims=True), atol=1e-6)
    assert result.get_response()["id"] == "py-1"


def test_default_outputs_come_back_binary(client, engine_logits):
    x = np.load(INPUT_NPY)[:1]
    tensor = tritonhttp.InferInput("input", list(x.shape), "FP32")
    tensor.set_data_from_numpy(x, binary_data=True)
    result = client.infer(MODEL, [tensor])  # no outputs named: tritonclient asks for binary_data_output
    for output in result.get_response()["outputs"]:
        assert "binary_data_size" in output["parameters"]
    np.testing.assert_allclose(result.as_numpy("logits"), engine_logits[:1], atol=1e-5, rtol=0)


def test_bytes_images(client):
    files = [IMAGES / "photo0.jpg", IMAGES / "photo3.png"]
    data = np.array([[f.read_bytes()] for f in files], dtype=np.object_)
    tensor = tritonhttp.InferInput("image", [len(files), 1], "BYTES")
    tensor.set_data_from_numpy(data, binary_data=True)
    result = client.infer(MODEL, [tensor], outputs=[tritonhttp.InferRequestedOutput("probabilities")])
    probabilities = result.as_numpy("probabilities")
    assert probabilities.shape == (2, 10)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)
    assert not np.allclose(probabilities[0], probabilities[1])
    assert result.as_numpy("logits") is None  # not asked for


def test_bytes_results_agree_with_v1_predict(server, client):
    """The same image through /v1/predict gives the same top class and probability."""
    image = (IMAGES / "photo1.jpg").read_bytes()
    tensor = tritonhttp.InferInput("image", [1, 1], "BYTES")
    tensor.set_data_from_numpy(np.array([[image]], dtype=np.object_), binary_data=True)
    probabilities = client.infer(MODEL, [tensor]).as_numpy("probabilities")[0]
    request = urllib.request.Request(f"http://{server.address}/v1/predict?top_k=1", data=image,
                                     headers={"Content-Type": "image/jpeg"})
    with urllib.request.urlopen(request, timeout=30) as r:
        top = json.load(r)["predictions"][0]
    assert top["index"] == int(np.argmax(probabilities))
    assert abs(top["probability"] - float(probabilities.max())) < 1e-6


def test_errors_reach_the_client(client):
    wrong = tritonhttp.InferInput("input", [1, 3, 16, 16], "FP32")
    wrong.set_data_from_numpy(np.zeros((1, 3, 16, 16), dtype=np.float32), binary_data=True)
    with pytest.raises(InferenceServerException) as error:
        client.infer(MODEL, [wrong])
    assert "shape" in str(error.value)
    with pytest.raises(InferenceServerException):
        client.get_model_metadata("no-such-model")
    assert not client.is_model_ready("no-such-model")


def test_api_key_from_the_environment_and_clean_exit_on_sigterm():
    s = start_server({"CBAM_API_KEY": "py-secret"})
    try:
        open_client = tritonhttp.InferenceServerClient(url=s.address)
        assert open_client.is_server_live()  # health probes need no key
        with pytest.raises(InferenceServerException):
            open_client.get_model_metadata(MODEL)
        keyed = tritonhttp.InferenceServerClient(url=s.address)
        assert keyed.get_model_metadata(MODEL, headers={"Authorization": "Bearer py-secret"})["name"] == MODEL
    finally:
        assert s.stop() == 0


def test_help_lists_every_flag_with_its_environment_variable():
    out = subprocess.run([serve_binary(), "serve", "--help"], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0
    text = " ".join(out.stdout.split())  # --help wraps lines
    for flag, env in [("--host", "CBAM_HOST"), ("--port", "CBAM_PORT"), ("--model", "CBAM_MODEL"),
                      ("--api-key", "CBAM_API_KEY"), ("--max-batch-size", "CBAM_MAX_BATCH_SIZE"),
                      ("--max-batch-delay-ms", "CBAM_MAX_BATCH_DELAY_MS"), ("--max-queue", "CBAM_MAX_QUEUE"),
                      ("--request-timeout-ms", "CBAM_REQUEST_TIMEOUT_MS"), ("--threads", "CBAM_THREADS"),
                      ("--max-body-bytes", "CBAM_MAX_BODY_BYTES"), ("--max-connections", "CBAM_MAX_CONNECTIONS"),
                      ("--body-timeout-s", "CBAM_BODY_TIMEOUT_S"), ("--drain-timeout-s", "CBAM_DRAIN_TIMEOUT_S"), ("--log-level", "CBAM_LOG_LEVEL"),
                      ("--attention-store-size", "CBAM_ATTENTION_STORE_SIZE"), ("--attention-ttl-s", "CBAM_ATTENTION_TTL_S")]:
        assert flag in text and env in text, flag


def test_a_bad_environment_value_is_a_clear_startup_error():
    env = dict(os.environ, CBAM_MODEL=str(MODEL_DIR), CBAM_PORT="0", CBAM_MAX_BATCH_SIZE="many")
    out = subprocess.run([serve_binary(), "serve"], env=env, capture_output=True, text=True, timeout=30)
    assert out.returncode != 0
    assert "CBAM_MAX_BATCH_SIZE" in out.stderr
    missing = subprocess.run([serve_binary(), "serve", "--model", "/nonexistent/model", "--port", "0"],
                             capture_output=True, text=True, timeout=30)
    assert missing.returncode != 0
    assert "/nonexistent/model" in missing.stderr


def test_the_body_timeout_from_the_environment_ends_a_trickling_upload():
    """A client sending a byte every 200 ms never trips the 30 s silence timeout; CBAM_BODY_TIMEOUT_S=1 ends it
    with 408 about a second after the head, and the server goes on answering."""
    s = start_server({"CBAM_BODY_TIMEOUT_S": "1"})
    try:
        with socket.create_connection(("127.0.0.1", s.port), timeout=10) as conn:
            conn.sendall(b"POST /v1/predict HTTP/1.1\r\nHost: t\r\nContent-Type: image/jpeg\r\n"
                         b"Content-Length: 1000\r\n\r\n")
            start, reply = time.monotonic(), b""
            conn.settimeout(0.2)
            while time.monotonic() - start < 8 and b"\r\n\r\n" not in reply:
                try:
                    conn.sendall(b"x")
                    reply += conn.recv(4096)
                except socket.timeout:
                    continue
                except (BrokenPipeError, ConnectionResetError):
                    break
            elapsed = time.monotonic() - start
            conn.settimeout(2)
            try:
                while chunk := conn.recv(4096):
                    reply += chunk
            except OSError:
                pass
        assert reply.startswith(b"HTTP/1.1 408"), reply[:200]
        assert b"body timeout" in reply
        assert 0.9 < elapsed < 3.0, elapsed
        with urllib.request.urlopen(f"http://{s.address}/v2/health/ready", timeout=5) as r:
            assert r.status == 200
    finally:
        assert s.stop() == 0


def test_sigterm_lets_a_queued_request_finish():
    """Graceful shutdown: a request still waiting in the batching queue is answered before the process exits 0."""
    import threading

    s = start_server({"CBAM_MAX_BATCH_DELAY_MS": "1500", "CBAM_DRAIN_TIMEOUT_S": "10"})
    outcome = {}

    def predict():
        request = urllib.request.Request(f"http://{s.address}/v1/predict", data=(IMAGES / "photo0.jpg").read_bytes(),
                                         headers={"Content-Type": "image/jpeg"})
        with urllib.request.urlopen(request, timeout=30) as r:
            outcome["status"] = r.status
            outcome["body"] = json.load(r)

    thread = threading.Thread(target=predict)
    thread.start()
    time.sleep(0.5)  # the request now waits for company in the queue
    s.process.send_signal(signal.SIGTERM)
    thread.join(timeout=30)
    assert s.process.wait(timeout=30) == 0
    assert outcome.get("status") == 200
    assert outcome["body"]["predictions"]
