"""tools/export_checkpoint.py: config inference from tensor shapes (no torch needed) and .pth export (torch)."""
from __future__ import annotations

import json

import numpy as np
import pytest

import export_checkpoint  # tools/ is on the path (conftest.py)
from cbamtools import safetensors_io
from cbamtools.checkpoint import CheckpointError, Layout, check_shapes, expected_shapes, infer_config, strip_prefixes

try:
    import torch
except ImportError:  # CI has no torch: only the .pth tests are skipped
    torch = None
needs_torch = pytest.mark.skipif(torch is None, reason="PyTorch is not installed; .pth loading needs it (shape inference is tested without it)")


def arch(block="basic", layers=(1, 1, 1, 1), widths=(32, 64, 128, 256), stem="cifar", classes=10,
         reduction=16, kernel=7, stages=None):
    config = {"format": "cbam-resnet/1", "block": block, "layers": list(layers), "widths": list(widths), "stem": stem,
              "num_classes": classes}
    config["attention"] = None if stages is False else {
        "type": "cbam", "reduction": reduction, "kernel_size": kernel, "stages": list(stages or [True] * len(layers))}
    return config


LAYOUTS = [Layout("canonical", "conv", "mlp", False), Layout("canonical", "linear", "fc", True), Layout("authors")]


# ---- shape inference, no torch -------------------------------------------------------------------

@pytest.mark.parametrize("layout", LAYOUTS, ids=lambda l: f"{l.kind}-{l.mlp}-{l.mlp_name}")
@pytest.mark.parametrize("config", [
    arch(),
    arch(layers=(3, 3, 3), widths=(16, 32, 64)),
    arch(block="bottleneck", layers=(3, 4, 6, 3), widths=(64, 128, 256, 512), stem="imagenet", classes=1000),
    arch(layers=(2, 2), widths=(8, 16), reduction=4, kernel=3, stages=(False, True)),
    arch(layers=(1, 1), widths=(8, 16)),  # r = 16 exceeds the first stage's 8 channels: hidden is 1 in both
], ids=["resnet10-cifar", "resnet20-cifar", "resnet50-imagenet", "partial-attention", "reduction-above-width"])
def test_infers_the_config_the_shapes_came_from(config, layout):
    shapes = expected_shapes(config, layout)
    inferred, detected = infer_config(shapes)
    assert inferred == config
    assert detected == layout
    check_shapes(shapes, inferred, detected)


def test_plain_resnet_has_no_attention():
    shapes = expected_shapes(arch(stages=False), Layout("none"))
    inferred, layout = infer_config(shapes)
    assert inferred["attention"] is None and layout.kind == "none"


def test_known_shapes_of_a_cifar_resnet20():
    # Written out by hand, not generated, so a bug shared by expected_shapes and infer_config shows up.
    shapes = {"conv1.weight": (16, 3, 3, 3), "fc.weight": (10, 64), "fc.bias": (10,),
              "layer1.0.conv1.weight": (16, 16, 3, 3), "layer1.1.conv1.weight": (16, 16, 3, 3), "layer1.2.conv1.weight": (16, 16, 3, 3),
              "layer2.0.conv1.weight": (32, 16, 3, 3), "layer2.1.conv1.weight": (32, 32, 3, 3), "layer2.2.conv1.weight": (32, 32, 3, 3),
              "layer3.0.conv1.weight": (64, 32, 3, 3), "layer3.1.conv1.weight": (64, 64, 3, 3), "layer3.2.conv1.weight": (64, 64, 3, 3)}
    for s, c in ((1, 16), (2, 32), (3, 64)):
        for j in range(3):
            shapes[f"layer{s}.{j}.cbam.channel_attention.mlp.0.weight"] = (max(c // 16, 1), c, 1, 1)
            shapes[f"layer{s}.{j}.cbam.spatial_attention.conv.weight"] = (1, 2, 7, 7)
    config, layout = infer_config(shapes)
    assert (config["block"], config["layers"], config["widths"], config["stem"], config["num_classes"]) == \
        ("basic", [3, 3, 3], [16, 32, 64], "cifar", 10)
    assert config["attention"] == {"type": "cbam", "reduction": 16, "kernel_size": 7, "stages": [True, True, True]}
    assert layout == Layout("canonical", "conv", "mlp", False)


def test_reduction_other_than_16_is_found():
    config = arch(layers=(1, 1), widths=(64, 128), reduction=8)
    inferred, _ = infer_config(expected_shapes(config, LAYOUTS[0]))
    assert inferred["attention"]["reduction"] == 8


def test_module_prefixes_are_stripped_only_when_every_name_has_them():
    assert strip_prefixes(["module.module.conv1.weight", "module.module.fc.bias"]) == {
        "module.module.conv1.weight": "conv1.weight", "module.module.fc.bias": "fc.bias"}
    assert strip_prefixes(["module.conv1.weight", "fc.bias"])["module.conv1.weight"] == "module.conv1.weight"


def test_stem_kernel_that_is_neither_3_nor_7_is_refused():
    shapes = expected_shapes(arch(), LAYOUTS[0])
    shapes["conv1.weight"] = (32, 3, 5, 5)
    with pytest.raises(CheckpointError) as e:
        infer_config(shapes)
    assert e.value.code == "unknown_stem" and "5x5" in e.value.message


def test_missing_misshapen_and_extra_tensors_are_named():
    config, layout = arch(), LAYOUTS[0]
    shapes = expected_shapes(config, layout)
    missing = dict(shapes)
    del missing["layer2.0.downsample.1.running_var"]
    with pytest.raises(CheckpointError, match="layer2.0.downsample.1.running_var") as e:
        check_shapes(missing, config, layout)
    assert e.value.code == "missing_tensor"

    wrong = dict(shapes, **{"layer3.0.conv2.weight": (128, 64, 3, 3)})
    with pytest.raises(CheckpointError) as e:
        check_shapes(wrong, config, layout)
    assert e.value.code == "shape_mismatch"
    assert e.value.message == "tensor layer3.0.conv2.weight has shape [128, 64, 3, 3], config expects [128, 128, 3, 3]"

    extra = dict(shapes, **{"head.weight": (10, 256)})
    with pytest.raises(CheckpointError, match="head.weight") as e:
        check_shapes(extra, config, layout)
    assert e.value.code == "unexpected_tensor"


def test_inconsistent_reduction_is_refused():
    shapes = expected_shapes(arch(layers=(1, 1), widths=(64, 128)), LAYOUTS[0])
    shapes["layer2.0.cbam.channel_attention.mlp.0.weight"] = (32, 128, 1, 1)  # r = 4 here, 16 in layer1
    with pytest.raises(CheckpointError) as e:
        infer_config(shapes)
    assert e.value.code == "inconsistent_reduction"


def test_not_a_resnet_is_refused():
    with pytest.raises(CheckpointError) as e:
        infer_config({"encoder.weight": (3, 3)})
    assert e.value.code == "missing_tensor" and "conv1.weight" in e.value.message


# ---- export of a .safetensors checkpoint, no torch -----------------------------------------------

def random_tensors(config, layout, prefix="", seed=0):
    rng = np.random.default_rng(seed)
    out = {prefix + n: rng.standard_normal(s).astype(np.float32) for n, s in expected_shapes(config, layout).items()}
    out[prefix + "bn1.num_batches_tracked"] = np.array(7, dtype=np.int64)
    return out


def test_exports_a_safetensors_checkpoint(tmp_path):
    config, layout = arch(layers=(2, 2, 2), widths=(16, 32, 64)), LAYOUTS[1]
    tensors = random_tensors(config, layout, prefix="module.")
    safetensors_io.write(tmp_path / "ck.safetensors", tensors)
    out = tmp_path / "my-model"
    assert export_checkpoint.main([str(tmp_path / "ck.safetensors"), str(out), "--preset", "cifar10"]) == 0
    written = json.loads((out / "config.json").read_text())
    assert written["name"] == "my-model"
    assert {k: written[k] for k in config} == config
    assert written["input"] == {"size": 32, "resize": 32, "mean": [0.4914, 0.4822, 0.4465], "std": [0.2470, 0.2435, 0.2616],
                                "exif_transpose": True}
    assert (out / "labels.txt").read_text().splitlines()[0] == "airplane"
    back = safetensors_io.read(out / "model.safetensors")
    assert set(back) == {n[len("module."):] for n in tensors if not n.endswith("num_batches_tracked")}
    np.testing.assert_array_equal(back["layer2.1.cbam.channel_attention.fc.0.bias"],
                                  tensors["module.layer2.1.cbam.channel_attention.fc.0.bias"])


def test_input_flags_are_required_without_a_preset(tmp_path, capsys):
    safetensors_io.write(tmp_path / "ck.safetensors", random_tensors(arch(), LAYOUTS[0]))
    assert export_checkpoint.main([str(tmp_path / "ck.safetensors"), str(tmp_path / "m")]) == 2
    assert "missing_input" in capsys.readouterr().err
    assert export_checkpoint.main([str(tmp_path / "ck.safetensors"), str(tmp_path / "m"), "--input-size", "224",
                                   "--resize", "256", "--mean", "0.5", "0.5", "0.5", "--std", "0.25", "0.25", "0.25"]) == 0
    written = json.loads((tmp_path / "m" / "config.json").read_text())
    assert written["input"]["resize"] == 256 and written["input"]["std"] == [0.25, 0.25, 0.25]
    assert not (tmp_path / "m" / "labels.txt").exists()


def test_labels_must_match_the_classes_and_files_are_not_overwritten(tmp_path, capsys):
    safetensors_io.write(tmp_path / "ck.safetensors", random_tensors(arch(), LAYOUTS[0]))
    (tmp_path / "labels.txt").write_text("a\nb\nc\n")
    args = [str(tmp_path / "ck.safetensors"), str(tmp_path / "m"), "--preset", "cifar10"]
    assert export_checkpoint.main(args + ["--labels", str(tmp_path / "labels.txt")]) == 2
    assert "3 labels for a checkpoint with 10 classes" in capsys.readouterr().err
    assert export_checkpoint.main(args) == 0
    assert export_checkpoint.main(args) == 2
    assert "--force" in capsys.readouterr().err
    assert export_checkpoint.main(args + ["--force"]) == 0


def test_corrupt_safetensors_is_a_clear_error(tmp_path, capsys):
    (tmp_path / "ck.safetensors").write_bytes(b"\xff" * 16)
    assert export_checkpoint.main([str(tmp_path / "ck.safetensors"), str(tmp_path / "m"), "--preset", "cifar10"]) == 2
    assert "corrupt_checkpoint" in capsys.readouterr().err


# ---- export of .pth checkpoints made by the reference PyTorch model ------------------------------

@needs_torch
@pytest.mark.parametrize("layout,kwargs", [
    ("canonical", {}), ("canonical", {"mlp_kind": "linear", "bias": True, "mlp_name": "fc"}), ("authors", {}),
], ids=["canonical-conv", "canonical-linear-fc", "authors"])
@pytest.mark.parametrize("wrap", ["plain", "state_dict-module"])
def test_pth_export_matches_the_reference_model(tmp_path, layout, kwargs, wrap):
    from cbamtools.model import CBAMResNet
    config = arch(layers=(1, 2), widths=(8, 16), reduction=4, kernel=3)
    torch.manual_seed(0)
    model = CBAMResNet(config, layout=layout, **kwargs)
    with torch.no_grad():  # non-trivial BN statistics, so a wrongly mapped tensor changes the output
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
    model.eval()
    state = model.state_dict()
    if wrap == "state_dict-module":
        state = {"epoch": 3, "state_dict": {f"module.{k}": v for k, v in state.items()}}
    path = tmp_path / "ck.pth.tar"
    torch.save(state, path)
    out = tmp_path / "m"
    assert export_checkpoint.main([str(path), str(out), "--preset", "cifar10", "--name", "tiny"]) == 0
    written = json.loads((out / "config.json").read_text())
    assert {k: written[k] for k in config} == config

    restored = CBAMResNet(written, layout=layout, **kwargs).eval()
    tensors = {k: torch.from_numpy(v) for k, v in safetensors_io.read(out / "model.safetensors").items()}
    missing, unexpected = restored.load_state_dict(tensors, strict=False)
    assert unexpected == [] and all(k.endswith("num_batches_tracked") for k in missing)
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(restored(x), model(x))


@needs_torch
def test_pth_without_a_state_dict_is_refused(tmp_path, capsys):
    torch.save({"epoch": 3, "best": 0.9}, tmp_path / "ck.pth")
    assert export_checkpoint.main([str(tmp_path / "ck.pth"), str(tmp_path / "m"), "--preset", "cifar10"]) == 2
    assert "not_a_state_dict" in capsys.readouterr().err
