"""The training data pipeline: the fixed validation split (numpy) and the tensor augmentation (torch)."""
from __future__ import annotations

from pathlib import Path

import pytest

from cbamtools.datasets import split_files  # tools/ is on the path (conftest.py)

try:
    import torch
except ImportError:
    torch = None


def fake_dataset(root: Path, per_class: int = 20, classes=("cat", "dog", "ship")) -> Path:
    for c in classes:
        (root / c).mkdir(parents=True)
        for i in range(per_class):
            (root / c / f"{i:04d}.jpg").write_bytes(b"")
    return root


def test_split_holds_out_a_fixed_disjoint_set_per_class(tmp_path):
    data = fake_dataset(tmp_path)
    classes = ["cat", "dog", "ship"]
    train, val = split_files(data, 5, seed=0, classes=classes)
    assert len(train) == 45 and len(val) == 15
    assert not {f for f, _ in train} & {f for f, _ in val}
    for label, c in enumerate(classes):
        assert sum(1 for f, lab in val if f.startswith(c + "/") and lab == label) == 5
    assert split_files(data, 5, seed=0, classes=classes) == (train, val)
    assert split_files(data, 5, seed=1, classes=classes)[1] != val


def test_split_refuses_a_class_too_small_to_hold_out(tmp_path):
    data = fake_dataset(tmp_path, per_class=3)
    with pytest.raises(ValueError, match="need more than 5"):
        split_files(data, 5, seed=0, classes=["cat"])


@pytest.mark.skipif(torch is None, reason="PyTorch is not installed (training needs it; CI does not train)")
def test_augment_is_a_padded_crop_with_optional_flip():
    from train_cifar import augment, normalize
    x = torch.randint(1, 256, (64, 3, 32, 32), dtype=torch.uint8)
    out = augment(x, torch.Generator().manual_seed(0))
    assert out.shape == x.shape and out.dtype == torch.uint8
    padded = torch.nn.functional.pad(x, (4, 4, 4, 4))
    for i in range(64):
        windows = [padded[i, :, dy:dy + 32, dx:dx + 32] for dy in range(9) for dx in range(9)]
        assert any(torch.equal(out[i], w) or torch.equal(out[i], w.flip(-1)) for w in windows)
    assert normalize(torch.full((1, 3, 1, 1), 255, dtype=torch.uint8)).flatten().tolist() == pytest.approx(
        [(1 - 0.4914) / 0.2470, (1 - 0.4822) / 0.2435, (1 - 0.4465) / 0.2616], rel=1e-5)


@pytest.mark.skipif(torch is None, reason="PyTorch is not installed (training needs it; CI does not train)")
def test_cutout_zeroes_one_clipped_square_per_image_and_nothing_else():
    from train_cifar import cutout
    x = torch.rand(256, 3, 32, 32) + 1.0  # no zeros of its own
    out = cutout(x, 12, torch.Generator().manual_seed(0))
    zero = out == 0
    assert torch.equal(zero[:, 0], zero[:, 1]) and torch.equal(zero[:, 0], zero[:, 2])  # same square in every channel
    assert torch.equal(out[~zero], x[~zero])
    clipped = 0
    for i in range(256):
        rows = zero[i, 0].any(1).nonzero().flatten()
        cols = zero[i, 0].any(0).nonzero().flatten()
        assert 1 <= len(rows) <= 12 and 1 <= len(cols) <= 12
        assert zero[i, 0].sum() == len(rows) * len(cols)  # a filled rectangle
        assert rows[-1] - rows[0] + 1 == len(rows) and cols[-1] - cols[0] + 1 == len(cols)
        clipped += len(rows) * len(cols) < 144
        if len(rows) < 12:
            assert rows[0] == 0 or rows[-1] == 31  # only the border clips the square
    assert 0 < clipped < 256


@pytest.mark.skipif(torch is None, reason="PyTorch is not installed (training needs it; CI does not train)")
def test_a_second_cycle_can_start_from_an_exported_model_directory(tmp_path):
    import argparse
    from cbamtools.model import CBAMResNet
    from cbamtools.safetensors_io import write
    from train_cifar import init_weights, model_config
    args = argparse.Namespace(layers="1,1", widths="8,16", name="t", reduction=4, kernel_size=3)
    trained = CBAMResNet(model_config(args))
    for p in trained.parameters():
        torch.nn.init.normal_(p)
    exported = {k: v.numpy() for k, v in trained.state_dict().items() if not k.endswith("num_batches_tracked")}
    write(tmp_path / "model.safetensors", exported)
    fresh = CBAMResNet(model_config(args))
    init_weights(fresh, tmp_path)
    for name, value in trained.state_dict().items():
        if not name.endswith("num_batches_tracked"):
            assert torch.equal(fresh.state_dict()[name], value), name
    del exported["fc.weight"]
    write(tmp_path / "model.safetensors", exported)
    with pytest.raises(SystemExit, match="missing \\['fc.weight'\\]"):
        init_weights(CBAMResNet(model_config(args)), tmp_path)


@pytest.mark.skipif(torch is None, reason="PyTorch is not installed (training needs it; CI does not train)")
def test_a_deeper_network_grown_from_a_shallower_one_computes_the_same_function(tmp_path):
    import argparse
    from cbamtools.model import CBAMResNet
    from cbamtools.safetensors_io import write
    from train_cifar import grow_from, model_config
    shallow_args = argparse.Namespace(layers="1,1", widths="8,16", name="t", reduction=4, kernel_size=3)
    shallow = CBAMResNet(model_config(shallow_args))
    torch.manual_seed(0)
    for p in shallow.parameters():
        torch.nn.init.normal_(p, std=0.5)
    write(tmp_path / "model.safetensors",
          {k: v.numpy() for k, v in shallow.state_dict().items() if not k.endswith("num_batches_tracked")})

    deep = CBAMResNet(model_config(argparse.Namespace(**{**vars(shallow_args), "layers": "3,2"})))
    assert grow_from(deep, tmp_path) == ["layer1.1", "layer1.2", "layer2.1"]
    # The new blocks' convolutions keep their random init: only the zeroed last BN makes them identities.
    assert deep.layer1[1].conv1.weight.abs().sum() > 0
    x = torch.randn(4, 3, 16, 16)
    shallow.eval(), deep.eval()
    with torch.no_grad():
        assert torch.allclose(deep(x), shallow(x), atol=1e-5)
        deep.layer2[1].bn2.bias.fill_(0.1)  # the identity really hangs on the zeroed BN
        assert not torch.allclose(deep(x), shallow(x), atol=1e-3)

    wider = CBAMResNet(model_config(argparse.Namespace(**{**vars(shallow_args), "layers": "2,2", "widths": "8,32"})))
    with pytest.raises(SystemExit, match="no place of the same shape"):
        grow_from(wider, tmp_path)
