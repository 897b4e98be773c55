#!/usr/bin/env python3
"""Writes the parity fixtures of the checkpoint layouts other libraries produce (issue 18), with those libraries:
timm's ResNet family with SE, ECA and CBAM attention (its deep stem, average-pool shortcut and rounded MLP widths
included), the stand-alone `ca`/`sa` CBAM-ResNet-18 layout, and one checkpoint whose names only a config.json
`rename` map makes loadable.

    pip install timm==1.0.31                      # not needed by CI: the fixtures are committed
    python3 tools/make_layout_fixtures.py         # Tests/CBAMEngineTests/Fixtures/<case>/
    python3 tools/make_layout_fixtures.py --r50 DIR   # a deep-stem, average-pool-shortcut ECA-ResNet-50 at 224x224

Each case directory is a model directory plus input.npy and expected.safetensors ("logits", "<layer>.channel" and,
for CBAM, "<layer>.spatial"), as tools/make_engine_fixtures.py writes them; config.json is what
tools/export_checkpoint.py infers from the checkpoint (so the fixtures test the inference too).
"""
from __future__ import annotations

import argparse
import re
from pathlib import Path

import torch
import torch.nn as nn

from cbamtools.checkpoint import check_shapes, infer_config
from cbamtools.config import input_config
from cbamtools.datasets import IMAGENET_MEAN, IMAGENET_STD
from cbamtools.parity_fixture import write_parity_fixture
from cbamtools.random_weights import measure_batchnorm, randomise

TIMM_VERSION = "1.0.31"
ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "Tests" / "CBAMEngineTests" / "Fixtures"


# --- the stand-alone CBAM code's layout: BasicBlock with `ca` (1x1-conv MLP fc1/fc2) and `sa` (conv1 over (mean, max)) ---

class ChannelAttention(nn.Module):
    def __init__(self, planes: int, ratio: int):
        super().__init__()
        self.fc1 = nn.Conv2d(planes, planes // ratio, 1, bias=False)
        self.relu1 = nn.ReLU()
        self.fc2 = nn.Conv2d(planes // ratio, planes, 1, bias=False)

    def forward(self, x):
        avg = self.fc2(self.relu1(self.fc1(x.mean((2, 3), keepdim=True))))
        mx = self.fc2(self.relu1(self.fc1(x.amax((2, 3), keepdim=True))))
        self.map = torch.sigmoid(avg + mx)
        return self.map


class SpatialAttention(nn.Module):
    def __init__(self, kernel_size: int = 7):
        super().__init__()
        self.conv1 = nn.Conv2d(2, 1, kernel_size, padding=kernel_size // 2, bias=False)

    def forward(self, x):
        self.map = torch.sigmoid(self.conv1(torch.cat([x.mean(1, keepdim=True), x.amax(1, keepdim=True)], 1)))
        return self.map


class CaSaBasicBlock(nn.Module):
    def __init__(self, inplanes: int, planes: int, stride: int, ratio: int):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.ca = ChannelAttention(planes, ratio)
        self.sa = SpatialAttention()
        self.downsample = None
        if stride != 1 or inplanes != planes:
            self.downsample = nn.Sequential(nn.Conv2d(inplanes, planes, 1, stride, bias=False), nn.BatchNorm2d(planes))

    def forward(self, x):
        out = self.bn2(self.conv2(torch.relu(self.bn1(self.conv1(x)))))
        out = self.ca(out) * out
        out = self.sa(out) * out
        return torch.relu(out + (x if self.downsample is None else self.downsample(x)))


class CaSaResNet18(nn.Module):
    """ResNet-18's structure ([2, 2, 2, 2] basic blocks, 7x7 stem + max-pool) with CBAM as `ca`/`sa` in every block."""

    def __init__(self, widths: list[int], num_classes: int, ratio: int):
        super().__init__()
        self.conv1 = nn.Conv2d(3, widths[0], 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(widths[0])
        inplanes = widths[0]
        for i, w in enumerate(widths):
            blocks = [CaSaBasicBlock(inplanes, w, 1 if i == 0 else 2, ratio), CaSaBasicBlock(w, w, 1, ratio)]
            setattr(self, f"layer{i + 1}", nn.Sequential(*blocks))
            inplanes = w
        self.fc = nn.Linear(inplanes, num_classes)

    def forward(self, x):
        x = nn.functional.max_pool2d(torch.relu(self.bn1(self.conv1(x))), 3, 2, 1)
        for i in range(4):
            x = getattr(self, f"layer{i + 1}")(x)
        return self.fc(x.mean((2, 3)))


# --- the maps PyTorch computes, by hooks on each library's own modules ---

def attention_blocks(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """(block name "layerX.Y", block) of every residual block, in order."""
    return [(n, m) for n, m in model.named_modules() if re.fullmatch(r"layer\d+\.\d+", n)]


class MapRecorder:
    """Records each block's pre-sigmoid channel (and spatial) attention during a forward pass."""

    def __init__(self, model: nn.Module):
        self.hooks = []
        self.channel: dict[str, list[torch.Tensor]] = {}
        self.spatial: dict[str, torch.Tensor] = {}
        for name, block in attention_blocks(model):
            for module, kind in self.sources(block):
                self.hooks.append(module.register_forward_hook(self.record(name, kind)))

    @staticmethod
    def sources(block: nn.Module) -> list[tuple[nn.Module, str]]:
        if hasattr(block, "ca"):
            return [(block.ca.fc2, "channel"), (block.sa.conv1, "spatial")]
        se = block.se
        if hasattr(se, "channel"):  # timm CbamModule
            return [(se.channel.fc2, "channel"), (se.spatial.conv, "spatial")]
        if hasattr(se, "fc2"):  # timm SEModule
            return [(se.fc2, "channel")]
        return [(se.conv, "channel")]  # timm EcaModule

    def record(self, name: str, kind: str):
        def hook(_m, _i, out):
            if kind == "channel":
                self.channel.setdefault(name, []).append(out.reshape(out.shape[0], -1))
            else:
                self.spatial[name] = out[:, 0]
        return hook

    def run(self, model: nn.Module, x: torch.Tensor) -> torch.Tensor:
        self.channel, self.spatial = {}, {}
        return model(x)

    def pre_sigmoid(self) -> list[tuple[str, torch.Tensor, torch.Tensor | None]]:
        """(layer, channel logits [N, C], spatial logits [N, H, W] or None); CBAM's MLP runs twice, summed."""
        return [(n, sum(parts), self.spatial.get(n)) for n, parts in self.channel.items()]

    def remove(self) -> None:
        for h in self.hooks:
            h.remove()


@torch.no_grad()
def condition(model: nn.Module, calibration: torch.Tensor, generator: torch.Generator) -> None:
    """He-initialised weights, measured BN statistics, every pre-sigmoid map rescaled to RMS 1, logits of std 3."""
    randomise(model, generator)
    for m in model.modules():
        if isinstance(m, nn.Conv1d):
            m.weight.data = torch.randn(m.weight.shape, generator=generator)
    recorder = MapRecorder(model)
    for _ in range(2):
        measure_batchnorm(model, calibration)
        for name, block in attention_blocks(model):
            sources = dict((kind, module) for module, kind in MapRecorder.sources(block))
            for kind in ("channel", "spatial"):
                if kind not in sources:
                    continue
                recorder.run(model, calibration)
                logits = {n: (c if kind == "channel" else s) for n, c, s in recorder.pre_sigmoid()}[name]
                scale = 1.0 / logits.pow(2).mean().sqrt().item()
                target = sources[kind]
                if kind == "spatial" and hasattr(target, "bn"):  # timm: the BN after the conv
                    target = target.bn
                target.weight.mul_(scale)
                if getattr(target, "bias", None) is not None:
                    target.bias.mul_(scale)
    recorder.remove()
    logits = model(calibration)
    model.fc.weight.mul_(3.0 / logits.std().item())
    model.fc.bias.data = torch.randn(model.fc.bias.shape, generator=generator) * 0.5


@torch.no_grad()
def expected_outputs(name: str, model: nn.Module, x: torch.Tensor) -> dict[str, torch.Tensor]:
    recorder = MapRecorder(model)
    logits = recorder.run(model, x)
    expected = {"logits": logits.contiguous()}
    lo, hi = 1.0, 0.0
    for layer, channel, spatial in recorder.pre_sigmoid():
        for kind, value in (("channel", channel), ("spatial", spatial)):
            if value is None:
                continue
            m = torch.sigmoid(value).contiguous()
            expected[f"{layer}.{kind}"] = m
            lo, hi = min(lo, m.min().item()), max(hi, m.max().item())
    recorder.remove()
    print(f"{name}: input {list(x.shape)}, logits in [{logits.min():.2f}, {logits.max():.2f}], maps in [{lo:.4f}, {hi:.4f}]")
    assert 1.0 <= logits.abs().max().item() <= 30.0, "logits are not of order 1-10"
    assert 0.001 < lo and hi < 0.999, "attention maps saturate"
    return expected


def timm_resnet(block: str, layers: list[int], channels: list[int], attn: str, num_classes: int, **kwargs) -> nn.Module:
    import timm
    from timm.models.resnet import BasicBlock, Bottleneck, ResNet
    assert timm.__version__ == TIMM_VERSION, f"fixtures are made with timm {TIMM_VERSION}, found {timm.__version__}"
    return ResNet(BasicBlock if block == "basic" else Bottleneck, layers, num_classes=num_classes, channels=tuple(channels),
                  block_args=dict(attn_layer=attn), **kwargs)


# The renamed case: a checkpoint whose blocks are "stages.N.blocks.M" and whose SE is "attn.squeeze/excite".
RENAMED = [(r"^layer(\d+)\.(\d+)\.se\.fc1\.", r"stages.\1.blocks.\2.attn.squeeze."),
           (r"^layer(\d+)\.(\d+)\.se\.fc2\.", r"stages.\1.blocks.\2.attn.excite."),
           (r"^layer(\d+)\.(\d+)\.", r"stages.\1.blocks.\2.")]
RENAME_RULES = [[r"^stages\.(\d+)\.blocks\.(\d+)\.attn\.squeeze\.", "layer$1.$2.se.fc1."],
                [r"^stages\.(\d+)\.blocks\.(\d+)\.attn\.excite\.", "layer$1.$2.se.fc2."],
                [r"^stages\.(\d+)\.blocks\.(\d+)\.", "layer$1.$2."]]


def cases() -> dict:
    """name: (model factory, input shape, rename rules the config needs or None, renaming of the saved names)."""
    return {
        # timm SE-ResNet (seresnet*): basic blocks, 64-wide stem before 16-wide stage 1, SE MLP rounded up to 8.
        "timm_seresnet": (lambda: timm_resnet("basic", [1, 1, 1, 1], [16, 24, 32, 48], "se", 10), (2, 3, 64, 64), None, None),
        # timm ECA-ResNet-26t's stem and shortcut (ecaresnet*t/d): bottlenecks, tiered deep stem, average-pool
        # shortcut, an odd input so the pools' ceil mode matters; ECA kernels 3 and 5 (sized per block by timm).
        "timm_ecaresnet_deep_avgdown": (
            lambda: timm_resnet("bottleneck", [1, 1, 1, 1], [8, 16, 32, 64], "eca", 7, stem_type="deep_tiered", stem_width=16,
                                avg_down=True), (3, 3, 57, 57), None, None),
        # timm ResNet with attn_layer="cbam": se.channel.fc1/fc2 and se.spatial.conv.conv + .bn.
        "timm_cbam_resnet": (lambda: timm_resnet("basic", [2, 1, 1, 1], [16, 24, 32, 48], "cbam", 10), (2, 3, 48, 40), None, None),
        # The stand-alone ca/sa CBAM-ResNet-18 (narrow widths, so the fixture stays small).
        "casa_cbam_resnet18": (lambda: CaSaResNet18([16, 24, 32, 48], 10, 4), (2, 3, 64, 64), None, None),
        # A checkpoint in no known layout, loadable only through config.json's rename map.
        "renamed_seresnet": (lambda: timm_resnet("basic", [1, 1, 1, 1], [16, 16, 24, 32], "se", 5), (2, 3, 48, 48),
                             RENAME_RULES, RENAMED),
    }


def rename(state: dict, rules) -> dict:
    out = {}
    for k, v in state.items():
        for pattern, replacement in rules:
            k = re.sub(pattern, replacement, k)
        out[k] = v
    return out


def write_case(directory: Path, name: str, model: nn.Module, shape: tuple, rules, renaming, seed: int) -> None:
    generator = torch.Generator().manual_seed(seed)
    n, _, h, w = shape
    model.eval()
    condition(model, torch.randn((max(8, n), 3, h, w), generator=generator), generator)
    x = torch.randn(shape, generator=generator)
    expected = expected_outputs(name, model, x)
    state = {k: v.contiguous() for k, v in model.state_dict().items()}
    shapes = {k: tuple(v.shape) for k, v in state.items() if not k.endswith("num_batches_tracked")}
    arch, layout = infer_config(shapes)
    check_shapes(shapes, arch, layout)
    config = {"format": arch["format"], "name": name} | {k: v for k, v in arch.items() if k != "format"}
    config["input"] = input_config(h, h, IMAGENET_MEAN, IMAGENET_STD)
    if renaming:
        state = rename(state, renaming)
        config["rename"] = rules
    params, macs = write_parity_fixture(directory, config, state, model, x, expected)
    print(f"  -> {directory} ({params} parameters, {macs} multiply-adds per image, layout {layout})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--r50", type=Path, help="write a deep-stem, average-pool-shortcut ECA-ResNet-50 at 224x224 (batch 2) here")
    parser.add_argument("--seed", type=int, default=2020)
    args = parser.parse_args()
    torch.set_num_threads(2)
    if args.r50:
        model = timm_resnet("bottleneck", [3, 4, 6, 3], [64, 128, 256, 512], "eca", 1000, stem_type="deep", stem_width=32,
                            avg_down=True)  # timm's ecaresnet50d
        write_case(args.r50, "ecaresnet50d-random", model, (2, 3, 224, 224), None, None, args.seed)
        return
    for i, (name, (factory, shape, rules, renaming)) in enumerate(cases().items()):
        torch.manual_seed(args.seed + i)
        write_case(FIXTURES / name, name, factory(), shape, rules, renaming, args.seed + i)
    total = sum(f.stat().st_size for name in cases() for f in (FIXTURES / name).rglob("*") if f.is_file())
    print(f"layout fixtures: {total / 1e6:.2f} MB")
    assert total <= 4_000_000, "layout fixtures exceed 4 MB"


if __name__ == "__main__":
    main()
