"""`cbam-serve predict` and `preprocess` end to end: image inputs, .npy inputs, batching, per-input errors."""
import json
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
BIN = os.environ.get("CBAM_SERVE_BIN")
MODEL = ROOT / "Tests/CBAMEngineTests/Fixtures/basic_cifar_selective"
IMAGES = ROOT / "Tests/CBAMImageTests/Fixtures"

pytestmark = pytest.mark.skipif(not BIN, reason="CBAM_SERVE_BIN (the built cbam-serve) is not set; tools/test.sh sets it")


def predict(*args: str) -> tuple[int, dict, str]:
    run = subprocess.run([BIN, "predict", "--model", str(MODEL), *args], capture_output=True, text=True, timeout=120)
    return run.returncode, json.loads(run.stdout), run.stderr


def test_image_and_its_preprocessed_tensor_give_the_same_logits(tmp_path):
    image = IMAGES / "jpeg/cjpeg_progressive.jpg"
    npy = tmp_path / "x.npy"
    subprocess.run([BIN, "preprocess", "--model", str(MODEL), "--output", str(npy), str(image)], check=True, capture_output=True)
    assert np.load(npy).shape == (1, 3, 32, 32)
    code, out, _ = predict("--logits", str(image), str(npy))
    assert code == 0
    a, b = out["results"]
    assert a["input"] == str(image) and b["input"] == str(npy)
    np.testing.assert_allclose(a["logits"], b["logits"], atol=1e-5)


def test_a_bad_file_gets_its_own_error_and_the_others_are_answered(tmp_path):
    text = tmp_path / "notes.jpg"
    text.write_text("this is not an image")
    good = IMAGES / "png/gray1.png"
    code, out, err = predict("--top-k", "3", str(good), str(text), str(MODEL / "input.npy"))
    assert code == 1, "a failed input must make the exit code non-zero"
    results = out["results"]
    assert [r["input"] for r in results] == [str(good), str(text)] + [str(MODEL / "input.npy")] * 3
    assert results[1]["error"]["code"] == "unsupported_format"
    assert "notes.jpg" in err
    for r in results[:1] + results[2:]:
        assert len(r["predictions"]) == 3
        probs = [p["probability"] for p in r["predictions"]]
        assert probs == sorted(probs, reverse=True) and 0 < probs[0] <= 1
    assert [r["index"] for r in results[2:]] == [0, 1, 2]


def test_attention_maps_have_the_layer_shapes():
    code, out, _ = predict("--attention", "all", str(IMAGES / "jpeg/cjpeg_gray.jpg"))
    assert code == 0
    layers = out["results"][0]["attention"]
    # stages [false, true, true] of 2 blocks each, widths 32 and 64 at 16x16 and 8x8
    assert [m["layer"] for m in layers] == ["layer2.0", "layer2.1", "layer3.0", "layer3.1"]
    for m, (c, h) in zip(layers, [(32, 16), (32, 16), (64, 8), (64, 8)]):
        assert len(m["channel"]) == c and all(0 < v < 1 for v in m["channel"])
        s = m["spatial"]
        assert (s["height"], s["width"], len(s["data"])) == (h, h, h * h)


@pytest.mark.parametrize("case", ["bottleneck_imagenet", "basic_cifar_selective", "authors_module_prefix"])
def test_inspect_counts_what_pytorch_counts(case):
    """reference.json holds PyTorch's parameter count and multiply-adds (tools/make_engine_fixtures.py)."""
    fixture = ROOT / "Tests/CBAMEngineTests/Fixtures" / case
    reference = json.loads((fixture / "reference.json").read_text())
    run = subprocess.run([BIN, "inspect", "--model", str(fixture), "--json"], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    summary = json.loads(run.stdout)
    assert summary["parameters"] == reference["parameters"]
    config = json.loads((fixture / "config.json").read_text())
    stages = config["attention"]["stages"]
    expected_layers = [f"layer{i + 1}.{j}" for i, n in enumerate(config["layers"]) if stages[i] for j in range(n)]
    assert [layer["layer"] for layer in summary["cbam_layers"]] == expected_layers


def test_inspect_of_a_missing_model_is_an_error_on_stderr(tmp_path):
    run = subprocess.run([BIN, "inspect", "--model", str(tmp_path)], capture_output=True, text=True, timeout=60)
    assert run.returncode != 0
    assert "config.json" in run.stderr and run.stdout == ""
