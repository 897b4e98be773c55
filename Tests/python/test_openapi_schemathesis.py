"""The live server's /openapi.json says exactly what the server does, checked by schemathesis.

A release `cbam-serve serve` (binary from $CBAM_SERVE_BIN, default model) runs on a free loopback port, once
without and once with an API key; schemathesis runs every check it has (`--checks all`) over every documented
operation with a bounded number of examples and a fixed seed, and must report no failure. With the key it sends
`Authorization: Bearer <key>` and its own checks also try every operation without it and with a wrong one.

What JSON Schema cannot say: whether bytes are a decodable JPEG or PNG, and whether an inference input's data
holds as many values as its shape. Schema-valid requests to the predict and infer operations are therefore
allowed a 400, 413 or 415 answer (positive_data_acceptance); every other check applies to them in full.

Longer runs: CBAM_SCHEMATHESIS_EXAMPLES (default 25 per operation) and CBAM_SCHEMATHESIS_SEED (default 1).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from cbamtools.server import LocalServer, request  # tools/ is on the path (conftest.py)

ROOT = Path(__file__).resolve().parents[2]
MODEL = ROOT / "models" / "cbam-resnet10-cifar10"
SAMPLE = MODEL / "samples" / "cat_0013.jpg"
API_KEY = "schemathesis-key-0123456789abcdef"
EXAMPLES = int(os.environ.get("CBAM_SCHEMATHESIS_EXAMPLES", "25"))
SEED = int(os.environ.get("CBAM_SCHEMATHESIS_SEED", "1"))

# Operations whose valid requests carry content JSON Schema cannot describe (image bytes, tensor data sized by
# the shape): a schema-valid request may still be refused as a bad image or tensor.
CONFIG = """
[[operations]]
include-path-regex = "/(predict|infer)$"
checks.positive_data_acceptance.expected-statuses = ["2xx", "400", "413", "415"]

[[operations]]
include-path = "/v1/attention/{{id}}"
parameters = {{ "path.id" = "{attention_id}" }}
"""


def server_binary() -> Path:
    value = os.environ.get("CBAM_SERVE_BIN")
    if not value:
        pytest.skip("CBAM_SERVE_BIN is not set (tools/test.sh sets it to the release build of cbam-serve)")
    if not (MODEL / "config.json").is_file():
        pytest.skip(f"the default model is not in {MODEL}")
    path = Path(value)
    assert path.is_file() and os.access(path, os.X_OK), f"CBAM_SERVE_BIN={value} is not an executable file"
    return path


def schemathesis_command() -> list[str]:
    if shutil.which("schemathesis"):
        return ["schemathesis"]
    pytest.skip("schemathesis is not installed (pip install -r tools/requirements-test.txt)")


@contextlib.contextmanager
def running_server(api_key: str | None):
    settings = {"CBAM_THREADS": "1", "CBAM_DRAIN_TIMEOUT_S": "3", "CBAM_API_KEY": api_key or None}
    with LocalServer(server_binary(), settings) as server:
        yield server.base
        assert server.process.poll() is None, "cbam-serve exited during the schemathesis run"


def operations(document: dict) -> list[str]:
    return [f"{method.upper()} {path}" for path, ops in document["paths"].items() for method in ops]


@pytest.mark.parametrize("api_key", [None, API_KEY], ids=["without-api-key", "with-api-key"])
def test_schemathesis_finds_nothing(api_key, tmp_path):
    command = schemathesis_command()
    with running_server(api_key) as base:
        auth = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        status, body = request(base + "/openapi.json", headers=auth)
        assert status == 200, body
        document = json.loads(body)
        # Security is declared exactly when a key is configured.
        assert ("security" in document) == bool(api_key)
        assert ("securitySchemes" in document["components"]) == bool(api_key)
        answers_401 = [f"{method} {path}" for path, ops in document["paths"].items() for method, op in ops.items()
                       if "401" in op["responses"]]
        assert len(answers_401) == (len(operations(document)) - 4 if api_key else 0), answers_401  # 4 health probes

        # A real prediction, so that GET /v1/attention/{id} is tested on a stored response and not only on 404s.
        status, body = request(base + "/v1/predict", data=SAMPLE.read_bytes(),
                               headers={**auth, "Content-Type": "image/jpeg"})
        assert status == 200, body
        config = tmp_path / "schemathesis.toml"
        config.write_text(CONFIG.format(attention_id=json.loads(body)["id"]))

        args = [*command, "--config-file", str(config), "run", base + "/openapi.json", "--checks", "all",
                "--max-examples", str(EXAMPLES), "--seed", str(SEED), "--workers", "1", "--no-color",
                "--generation-database", "none", "--request-timeout", "10", "--max-failures", "50"]
        if api_key:
            args += ["--header", f"Authorization: Bearer {api_key}"]
        started = time.monotonic()
        result = subprocess.run(args, cwd=tmp_path, capture_output=True, text=True, timeout=300)
        elapsed = time.monotonic() - started
    output = result.stdout + result.stderr
    tail = output[-6000:]
    assert result.returncode == 0, f"schemathesis failed ({result.returncode}) in {elapsed:.0f} s:\n{tail}"
    # Every operation but /openapi.json itself (schemathesis leaves out the document it reads), every case passed.
    selected = re.search(r"Selected:\s+(\d+)/(\d+)", output)
    tested = re.search(r"Tested:\s+(\d+)", output)
    assert selected and tested, tail
    assert int(selected.group(1)) == int(selected.group(2)) == int(tested.group(1)) == len(operations(document)) - 1, tail
    cases = re.search(r"(\d+) generated, (\d+) passed", output)
    assert cases and cases.group(1) == cases.group(2), tail
    assert int(cases.group(1)) >= 10 * int(tested.group(1)), f"only {cases.group(1)} test cases:\n{tail}"
