"""Issue 18: config inference for timm's ResNets (SE, ECA, CBAM; deep stem, average-pool shortcut), the ca/sa CBAM
layout and renamed checkpoints, without torch or timm: shapes written from the layouts, and the committed fixtures
that tools/make_layout_fixtures.py made with timm."""
from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest

import export_checkpoint  # tools/ is on the path (conftest.py)
from cbamtools import safetensors_io
from cbamtools.checkpoint import CheckpointError, Layout, check_shapes, expected_shapes, infer_config

FIXTURES = Path(__file__).resolve().parents[1] / "CBAMEngineTests" / "Fixtures"
LAYOUT_FIXTURES = ["timm_seresnet", "timm_ecaresnet_deep_avgdown", "timm_cbam_resnet", "casa_cbam_resnet18", "renamed_seresnet"]


def arch(attention, block="bottleneck", stem="deep", shortcut="avgpool"):
    config = {"format": "cbam-resnet/1", "block": block, "layers": [2, 1, 1], "widths": [16, 32, 64], "stem": stem}
    if shortcut != "conv":
        config["shortcut"] = shortcut
    config["num_classes"] = 10
    config["attention"] = attention
    return config


@pytest.mark.parametrize("config,layout", [
    (arch({"type": "se", "reduction": 16, "stages": [True] * 3}), Layout("timm", attention="se")),
    (arch({"type": "eca", "kernel_size": 5, "stages": [True] * 3}), Layout("timm", attention="eca")),
    (arch({"type": "cbam", "reduction": 8, "kernel_size": 7, "stages": [True] * 3}, block="basic", stem="imagenet",
          shortcut="conv"), Layout("timm", attention="cbam")),
    (arch({"type": "cbam", "reduction": 4, "kernel_size": 7, "stages": [False, True, True]}, block="basic", stem="imagenet",
          shortcut="conv"), Layout("casa")),
], ids=["timm-se-deep-avgdown", "timm-eca-deep-avgdown", "timm-cbam", "casa-partial"])
def test_infers_the_config_the_shapes_came_from(config, layout):
    shapes = expected_shapes(config, layout)
    inferred, detected = infer_config(shapes)
    assert inferred == config
    assert detected == layout
    check_shapes(shapes, inferred, detected)


def test_known_names_of_a_timm_ecaresnet_block():
    # Written out by hand (timm 1.0.31's ecaresnet26t, stage 2 block 0), so a bug shared by expected_shapes and
    # infer_config shows up.
    config = arch({"type": "eca", "kernel_size": 3, "stages": [True] * 3})
    shapes = expected_shapes(config, Layout("timm", attention="eca"))
    for name, shape in {"conv1.0.weight": (8, 3, 3, 3), "conv1.1.running_var": (8,), "conv1.3.weight": (8, 8, 3, 3),
                        "conv1.6.weight": (16, 8, 3, 3), "bn1.weight": (16,), "layer2.0.se.conv.weight": (1, 1, 3),
                        "layer2.0.downsample.1.weight": (128, 64, 1, 1), "layer2.0.downsample.2.running_mean": (128,)}.items():
        assert shapes[name] == shape, name
    assert "layer2.0.downsample.0.weight" not in shapes


@pytest.mark.parametrize("name", LAYOUT_FIXTURES)
def test_committed_fixture_configs_are_what_the_inference_says(name):
    config = json.loads((FIXTURES / name / "config.json").read_text())
    arrays = safetensors_io.read(FIXTURES / name / "model.safetensors")
    names = [n for n in arrays if not n.endswith("num_batches_tracked")]
    rules = config.get("rename", [])
    renamed = {export_checkpoint.apply_rules(n, rules): tuple(arrays[n].shape) for n in names}
    inferred, _ = infer_config(renamed)
    assert {k: v for k, v in config.items() if k not in ("name", "input", "rename")} == inferred


def test_unknown_layout_lists_the_first_unmatched_names_and_the_layouts_tried():
    arrays = safetensors_io.read(FIXTURES / "renamed_seresnet" / "model.safetensors")
    shapes = {n: tuple(a.shape) for n, a in arrays.items() if not n.endswith("num_batches_tracked")}
    with pytest.raises(CheckpointError) as e:
        infer_config(shapes)
    # Without the rename rules its blocks are "stages.N.blocks.M", not layerX.Y: no ResNet at all.
    assert e.value.code in ("missing_tensor", "unknown_layout")
    shapes = {n.replace("stages.1.blocks.0.", "layer1.0."): s for n, s in shapes.items()}
    with pytest.raises(CheckpointError) as e:
        infer_config({n: s for n, s in shapes.items() if "stages." not in n})
    assert e.value.code == "unknown_layout"
    assert "layer1.0.attn.excite.bias" in e.value.message and "layouts tried" in e.value.message and "--rename" in e.value.message


def test_rename_flags_map_a_layout_and_a_shared_prefix_is_stripped(tmp_path, capsys):
    source = FIXTURES / "renamed_seresnet"
    arrays = safetensors_io.read(source / "model.safetensors")
    safetensors_io.write(tmp_path / "ck.safetensors", {"backbone." + n: a for n, a in arrays.items()})
    rules = json.loads((source / "config.json").read_text())["rename"]
    flags = [arg for pattern, replacement in rules for arg in ("--rename", pattern, replacement)]
    out = tmp_path / "m"
    assert export_checkpoint.main([str(tmp_path / "ck.safetensors"), str(out), "--input-size", "48", "--mean", "0", "0", "0",
                                   "--std", "1", "1", "1"] + flags) == 0
    printed = capsys.readouterr().out
    assert "layout timm (se)" in printed and "rename rules used: [[" in printed and "^backbone\\\\." in printed
    back = safetensors_io.read(out / "model.safetensors")
    assert "layer1.0.se.fc1.weight" in back and "conv1.weight" in back and not any(n.startswith("backbone.") for n in back)
    written = json.loads((out / "config.json").read_text())
    assert written["attention"]["type"] == "se" and "rename" not in written


def test_bad_rename_regex_is_a_clear_error(tmp_path, capsys):
    arrays = safetensors_io.read(FIXTURES / "timm_seresnet" / "model.safetensors")
    safetensors_io.write(tmp_path / "ck.safetensors", arrays)
    assert export_checkpoint.main([str(tmp_path / "ck.safetensors"), str(tmp_path / "m"), "--preset", "imagenet",
                                   "--rename", "(open", "x"]) == 2
    assert "invalid_rename" in capsys.readouterr().err


BIN = os.environ.get("CBAM_SERVE_BIN")
needs_bin = pytest.mark.skipif(not BIN, reason="CBAM_SERVE_BIN (the built cbam-serve) is not set; tools/test.sh sets it")


@needs_bin
def test_inspect_names_the_layout_the_attention_type_and_the_stem():
    run = subprocess.run([BIN, "inspect", "--model", str(FIXTURES / "timm_ecaresnet_deep_avgdown")], capture_output=True,
                         text=True, timeout=60, check=True)
    assert "timm (ECA as layerX.Y.se) layout" in run.stdout
    assert "ECA: channel map only" in run.stdout and "deep stem, average-pool shortcut" in run.stdout
    summary = json.loads(subprocess.run([BIN, "inspect", "--model", str(FIXTURES / "casa_cbam_resnet18"), "--json"],
                                        capture_output=True, text=True, timeout=60, check=True).stdout)
    assert summary["attention_type"] == "cbam" and summary["checkpoint_layout"].startswith("ca/sa")
    assert all(layer["spatial_height"] > 0 for layer in summary["cbam_layers"])


@needs_bin
def test_predict_writes_null_for_the_spatial_map_of_se_layers():
    fixture = FIXTURES / "timm_seresnet"
    run = subprocess.run([BIN, "predict", "--model", str(fixture), "--attention", "all", str(fixture / "input.npy")],
                         capture_output=True, text=True, timeout=60, check=True)
    results = json.loads(run.stdout)["results"]
    assert len(results) == 2
    for result in results:
        assert [len(layer["channel"]) for layer in result["attention"]] == [16, 24, 32, 48]
        assert all("spatial" in layer and layer["spatial"] is None for layer in result["attention"])
