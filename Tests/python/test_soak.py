"""tools/soak.py, briefly: a few seconds of its mixed load against a release server it starts itself.

Every kind of request gets the status it should (200 for the good ones, 400/404/413/415 for the bad), nothing
answers 5xx or drops the connection, and the summary has the /healthz latency and RSS lines. The README's soak
figures come from the same script run for longer.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
KINDS = {"jpeg", "png", "multipart", "oip_json", "oip_binary", "oip_bytes", "metrics", "models", "readyz",
         "truncated_jpeg", "truncated_png", "corrupt_jpeg", "empty", "text", "gif", "oip_not_json",
         "oip_wrong_type", "unknown_route", "oversize_declared", "healthz"}


def test_a_short_soak_gets_only_the_expected_statuses():
    binary = os.environ.get("CBAM_SERVE_BIN")
    if not binary:
        pytest.skip("CBAM_SERVE_BIN is not set (tools/test.sh sets it to the release build of cbam-serve)")
    if not (ROOT / "models" / "cbam-resnet10-cifar10" / "config.json").is_file():
        pytest.skip("the default model is not in the repository")
    # Enough requests that every kind is drawn (3 % of them are oversize_declared).
    result = subprocess.run([sys.executable, str(ROOT / "tools" / "soak.py"), "--seconds", "6", "--workers", "3",
                             "--bin", binary], capture_output=True, text=True, timeout=120)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    seen = set(re.findall(r"^  (\w+) +\S", result.stdout, re.MULTILINE))
    assert seen == KINDS, f"kinds missing: {KINDS - seen}, unknown: {seen - KINDS}\n{output}"
    assert re.search(r"/healthz latency: p50 [\d.]+ ms, p99 [\d.]+ ms, max [\d.]+ ms \(\d+ probes\)", output), output
    rss = re.search(r"RSS: start ([\d.]+) MB, peak ([\d.]+) MB", output)
    assert rss and 0 < float(rss.group(1)) <= float(rss.group(2)), output
    assert "FAIL" not in output
