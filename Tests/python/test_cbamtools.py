"""tools/cbamtools without torch: the config builder, safetensors I/O and the local server harness."""
from __future__ import annotations

import json
import stat
import sys

import numpy as np
import pytest

from cbamtools import safetensors_io  # tools/ is on the path (conftest.py)
from cbamtools.config import cbam_attention, cifar10_input, model_config
from cbamtools.server import LocalServer, ServerError, request


def test_config_keys_come_in_file_order_and_absent_parts_are_left_out():
    full = model_config("basic", (1, 1), (8, 16), "cifar", 10, cbam_attention(4, 3, (False, True)), cifar10_input(True), name="m")
    assert list(full) == ["format", "name", "block", "layers", "widths", "stem", "num_classes", "attention", "input"]
    assert full["format"] == "cbam-resnet/1" and full["layers"] == [1, 1] and full["attention"]["stages"] == [False, True]
    assert full["input"] == {"size": 32, "resize": 32, "mean": [0.4914, 0.4822, 0.4465], "std": [0.2470, 0.2435, 0.2616],
                             "exif_transpose": True}
    bare = model_config("bottleneck", [3, 4, 6, 3], [64, 128, 256, 512], "imagenet", 1000)
    assert list(bare) == ["format", "block", "layers", "widths", "stem", "num_classes"]


def test_safetensors_round_trip_and_a_corrupt_file_is_a_value_error(tmp_path):
    tensors = {"a.weight": np.arange(24, dtype=np.float32).reshape(2, 3, 4), "b.bias": np.array([1.5, -2.0], np.float32),
               "n": np.arange(3, dtype=np.int64)}
    safetensors_io.write(tmp_path / "t.safetensors", tensors, metadata={"source": "test"})
    back = safetensors_io.read(tmp_path / "t.safetensors")
    assert set(back) == set(tensors)
    for name, a in tensors.items():
        assert back[name].dtype == a.dtype
        np.testing.assert_array_equal(back[name], a)
    (tmp_path / "bad.safetensors").write_bytes((1 << 40).to_bytes(8, "little") + b"{}")
    with pytest.raises(ValueError, match="bad.safetensors"):
        safetensors_io.read(tmp_path / "bad.safetensors")
    header = json.dumps({"w": {"dtype": "BF16", "shape": [2], "data_offsets": [0, 4]}}).encode()
    header += b" " * (-len(header) % 8)
    (tmp_path / "bf16.safetensors").write_bytes(len(header).to_bytes(8, "little") + header + b"\x80\x3f\x00\x40")
    with pytest.raises(ValueError, match="bfloat16"):
        safetensors_io.read(tmp_path / "bf16.safetensors")


FAKE_SERVER = """#!{python}
import json, os, signal, sys
from http.server import BaseHTTPRequestHandler, HTTPServer
if os.environ.get("FAKE_EXIT"):
    sys.stderr.write("fake: told to fail\\n")
    sys.exit(3)
class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        body = json.dumps({{k: v for k, v in os.environ.items() if k.startswith("CBAM_")}}).encode()
        self.send_response(200 if self.path in ("/healthz", "/env") else 404)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args):
        pass
server = HTTPServer((os.environ["CBAM_HOST"], int(os.environ["CBAM_PORT"])), Handler)
signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
server.serve_forever()
"""


@pytest.fixture
def fake_binary(tmp_path):
    path = tmp_path / "fake-serve"
    path.write_text(FAKE_SERVER.format(python=sys.executable))
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def test_local_server_lays_settings_over_the_environment_and_stops_on_sigterm(fake_binary, monkeypatch):
    monkeypatch.setenv("CBAM_API_KEY", "from-the-caller")
    monkeypatch.setenv("CBAM_THREADS", "7")
    with LocalServer(fake_binary, {"CBAM_API_KEY": None, "CBAM_MAX_QUEUE": "5"}, startup_timeout_s=20) as server:
        status, body = request(server.base + "/env")
        env = json.loads(body)
        assert status == 200
        assert "CBAM_API_KEY" not in env
        assert env["CBAM_MAX_QUEUE"] == "5" and env["CBAM_THREADS"] == "7"
        assert env["CBAM_HOST"] == "127.0.0.1" and env["CBAM_PORT"] == str(server.port)
        assert request(server.base + "/missing")[0] == 404  # an error status is returned, not raised
        assert server.stop() == 0


def test_a_server_that_exits_at_startup_is_an_error_with_its_stderr(fake_binary, monkeypatch):
    monkeypatch.setenv("FAKE_EXIT", "1")
    with pytest.raises(ServerError, match="exited with 3: fake: told to fail"):
        LocalServer(fake_binary, startup_timeout_s=20)
