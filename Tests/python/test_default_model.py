"""The embedded default model answers its committed sample photos (CIFAR-10 validation images) as PyTorch does."""
import json
import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
MODEL = ROOT / "models/cbam-resnet10-cifar10"
BIN = os.environ.get("CBAM_SERVE_BIN")

pytestmark = pytest.mark.skipif(not BIN, reason="CBAM_SERVE_BIN (the built cbam-serve) is not set; tools/test.sh sets it")


def test_sample_photos_get_pytorchs_labels_through_predict():
    expected = json.loads((MODEL / "samples/samples.json").read_text())["samples"]
    files = [str(MODEL / "samples" / s["file"]) for s in expected]
    # No --model: the default model is what `predict` uses out of the box (run from the repository root).
    run = subprocess.run([BIN, "predict", "--top-k", "10", *files], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    results = json.loads(run.stdout)["results"]
    assert json.loads(run.stdout)["model"] == "cbam-resnet10-cifar10"
    assert [r["input"] for r in results] == files
    for sample, result in zip(expected, results):
        probability = {p["label"]: p["probability"] for p in result["predictions"]}
        # samples.json keeps PyTorch's probabilities to 4 decimals.
        assert probability[sample["predicted"]] == pytest.approx(sample["probability"], abs=1e-3), sample["file"]
        if sample["probability"] - sample["runner_up_probability"] > 0.01:
            assert result["predictions"][0]["label"] == sample["predicted"], sample["file"]
    right = sum(r["predictions"][0]["label"] == s["label"] for s, r in zip(expected, results))
    assert right >= 0.7 * len(expected), f"only {right} of {len(expected)} sample photos classified correctly"
