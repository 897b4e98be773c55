#!/usr/bin/env python3
"""Writes the engine's parity fixtures: small CBAM-ResNets with random but well-conditioned weights,
their inputs, and the logits and attention maps PyTorch computes for them.

    python3 tools/make_engine_fixtures.py                 # Tests/CBAMEngineTests/Fixtures/<case>/
    python3 tools/make_engine_fixtures.py --r50 DIR        # CBAM-ResNet-50 at 224x224 into DIR (for CBAM_R50_FIXTURE)

Each case directory is a model directory (config.json, model.safetensors, maybe labels.txt) plus
input.npy ([N,3,H,W] float32) and expected.safetensors ("logits" [N,K], "<layer>.channel" [N,C],
"<layer>.spatial" [N,H,W]).

"Well-conditioned": conv weights are He-initialised, BN running statistics are measured on random inputs
(so every BN output is roughly unit-variance, as after training), the pre-sigmoid values of every attention
map are rescaled to an RMS of about 1 (maps spread over (0, 1), not saturated), and the classifier is
rescaled so logits have a standard deviation of about 3. The ranges are printed and checked.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import torch
import torch.nn as nn

from cbamtools.config import cbam_attention, cbam_resnet50, input_config, model_config
from cbamtools.datasets import CIFAR10_CLASSES, CIFAR10_MEAN, CIFAR10_STD, IMAGENET_MEAN, IMAGENET_STD
from cbamtools.model import CBAM, CBAMResNet
from cbamtools.parity_fixture import write_parity_fixture
from cbamtools.random_weights import measure_batchnorm, randomise

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "Tests" / "CBAMEngineTests" / "Fixtures"

# name: (config, layout options, input shape [N, 3, H, W], labels, module prefix)
CASES = {
    # Bottleneck blocks + ImageNet stem, canonical layout with 1x1-conv MLP and no bias, odd input size 97.
    "bottleneck_imagenet": (
        model_config("bottleneck", [2, 1, 1, 1], [8, 16, 24, 32], "imagenet", 10, cbam_attention(4, 7, [True] * 4),
                     input_config(97, 110, IMAGENET_MEAN, IMAGENET_STD), name="bottleneck_imagenet"),
        {"layout": "canonical", "mlp_kind": "conv", "bias": False, "mlp_name": "mlp"}, (2, 3, 97, 97), None, False),
    # Basic blocks + CIFAR stem, CBAM only in stages 2-3, 3x3 spatial kernel, Linear MLP with bias named `fc`, batch 3.
    "basic_cifar_selective": (
        model_config("basic", [2, 2, 2], [16, 32, 64], "cifar", 10, cbam_attention(8, 3, [False, True, True]),
                     input_config(32, 32, CIFAR10_MEAN, CIFAR10_STD), name="basic_cifar_selective"),
        {"layout": "canonical", "mlp_kind": "linear", "bias": True, "mlp_name": "fc"}, (3, 3, 32, 32), CIFAR10_CLASSES, False),
    # The CBAM authors' layout (ChannelGate/SpatialGate, BN after the 7x7 conv, (max, mean)), saved from
    # DataParallel with a `module.` prefix; a non-square input.
    "authors_module_prefix": (
        model_config("basic", [1, 1, 1], [16, 24, 32], "cifar", 7, cbam_attention(4, 7, [True] * 3),
                     input_config(32, 36, IMAGENET_MEAN, IMAGENET_STD), name="authors_module_prefix"),
        {"layout": "authors"}, (2, 3, 40, 28), None, True),
}


def cbam_modules(model: nn.Module) -> list[CBAM]:
    return [m for m in model.modules() if isinstance(m, CBAM)]


def pre_sigmoid(p: torch.Tensor) -> torch.Tensor:
    return torch.logit(p.clamp(1e-7, 1 - 1e-7).double())


@torch.no_grad()
def scale_attention(model: CBAMResNet, inputs: torch.Tensor, target_rms: float = 1.0) -> None:
    """Rescales, block by block, the last linear map before each sigmoid so its input has RMS `target_rms`."""
    for cbam in cbam_modules(model):
        model(inputs)
        rms_c = pre_sigmoid(cbam.channel_map).pow(2).mean().sqrt().item()
        if cbam.layout == "authors":
            last = cbam.ChannelGate.mlp[3]
        else:
            mlp = getattr(cbam.channel_attention, cbam.channel_attention.mlp_name)
            last = mlp[2]
        last.weight.mul_(target_rms / rms_c)
        if last.bias is not None:
            last.bias.mul_(target_rms / rms_c)
        model(inputs)
        rms_s = pre_sigmoid(cbam.spatial_map).pow(2).mean().sqrt().item()
        if cbam.layout == "authors":
            cbam.SpatialGate.spatial.bn.weight.mul_(target_rms / rms_s)
            cbam.SpatialGate.spatial.bn.bias.mul_(target_rms / rms_s)
        else:
            cbam.spatial_attention.conv.weight.mul_(target_rms / rms_s)


@torch.no_grad()
def condition(model: CBAMResNet, calibration: torch.Tensor, generator: torch.Generator) -> None:
    randomise(model, generator)
    for _ in range(2):
        measure_batchnorm(model, calibration)
        scale_attention(model, calibration)
    logits = model(calibration)
    model.fc.weight.mul_(3.0 / logits.std().item())
    model.fc.bias.data = torch.randn(model.fc.bias.shape, generator=generator) * 0.5


@torch.no_grad()
def report(name: str, model: CBAMResNet, x: torch.Tensor) -> dict[str, torch.Tensor]:
    """Runs the model, prints and checks the ranges, and returns the expected tensors."""
    peaks: list[float] = []
    hooks = [m.register_forward_hook(lambda _m, _i, out: peaks.append(out.abs().max().item()))
             for n, m in model.named_modules() if n.count(".") == 1 and n.startswith("layer")]
    logits = model(x)
    for h in hooks:
        h.remove()
    expected = {"logits": logits.contiguous()}
    lo_c = lo_s = 1.0
    hi_c = hi_s = 0.0
    for layer, channel, spatial in model.attention_maps():
        expected[f"{layer}.channel"] = channel.contiguous()
        expected[f"{layer}.spatial"] = spatial.contiguous()
        lo_c, hi_c = min(lo_c, channel.min().item()), max(hi_c, channel.max().item())
        lo_s, hi_s = min(lo_s, spatial.min().item()), max(hi_s, spatial.max().item())
    print(f"{name}: input {list(x.shape)}, logits in [{logits.min():.2f}, {logits.max():.2f}] (std {logits.std():.2f}), "
          f"block outputs |max| {min(peaks):.1f}..{max(peaks):.1f}, channel maps in [{lo_c:.4f}, {hi_c:.4f}], "
          f"spatial maps in [{lo_s:.4f}, {hi_s:.4f}], {len(expected) // 2} CBAM layers")
    assert 1.0 <= logits.abs().max().item() <= 30.0, "logits are not of order 1-10"
    assert 0.001 < lo_c and hi_c < 0.999 and 0.001 < lo_s and hi_s < 0.999, "attention maps saturate"
    return expected


def write_case(directory: Path, config: dict, options: dict, shape: tuple, labels: list[str] | None,
               module_prefix: bool, seed: int) -> None:
    generator = torch.Generator().manual_seed(seed)
    name = config["name"]
    model = CBAMResNet(config, **options)
    n, _, h, w = shape
    condition(model, torch.randn((max(8, n), 3, h, w), generator=generator), generator)
    x = torch.randn(shape, generator=generator)
    expected = report(name, model, x)

    state = {("module." if module_prefix else "") + k: v.contiguous() for k, v in model.state_dict().items()}
    params, macs = write_parity_fixture(directory, config, state, model, x, expected, labels)
    print(f"  -> {directory} ({params} parameters, {macs} multiply-adds per image)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--r50", type=Path, help="write CBAM-ResNet-50 at 224x224 (batch 2) into this directory instead")
    parser.add_argument("--seed", type=int, default=2018)
    args = parser.parse_args()
    torch.set_num_threads(2)
    if args.r50:
        write_case(args.r50, cbam_resnet50("cbam-resnet50-random"), {"layout": "canonical", "mlp_kind": "conv", "bias": False},
                   (2, 3, 224, 224), None, False, args.seed)
        return
    for i, (name, (config, options, shape, labels, prefix)) in enumerate(CASES.items()):
        write_case(FIXTURES / name, config, options, shape, labels, prefix, args.seed + i)
    # Only this script's cases: tools/make_layout_fixtures.py writes its own beside them, with its own budget.
    total = sum(f.stat().st_size for name in CASES for f in (FIXTURES / name).rglob("*") if f.is_file())
    print(f"fixtures: {total / 1e6:.2f} MB of {len(CASES)} cases in {FIXTURES}")
    assert total <= 3_000_000, "fixtures exceed 3 MB"


if __name__ == "__main__":
    main()
