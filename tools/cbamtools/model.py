"""Reference CBAM-ResNet in PyTorch, built from a model directory's config.json.

Woo et al., "CBAM: Convolutional Block Attention Module", ECCV 2018: inside each residual block,
after the last BN and before the identity add,
    F'  = M_c(F) * F,   M_c(F) = sigmoid(MLP(AvgPool(F)) + MLP(MaxPool(F)))
    F'' = M_s(F') * F', M_s(F) = sigmoid(conv_kxk([AvgPool_c(F); MaxPool_c(F)]))

Module names follow torchvision's ResNet, so a state_dict from here is the layout the Swift engine reads.
Two checkpoint layouts are supported, selected by `layout`:
  "canonical": layerX.Y.cbam.channel_attention.{mlp|fc}.0/.2 (1x1 convs or Linear, bias optional),
               layerX.Y.cbam.spatial_attention.conv, pooled channels in the order (mean, max);
  "authors":   layerX.Y.cbam.ChannelGate.mlp.1/.3 (Linear with bias),
               layerX.Y.cbam.SpatialGate.spatial.conv + .spatial.bn, pooled channels in the order (max, mean).
Each CBAM module keeps its last maps in `.channel_map` (N, C) and `.spatial_map` (N, H, W).
Also here: loading a model directory into the reference model, and the multiply-add counter.
"""
from __future__ import annotations

import json
from pathlib import Path

import torch
import torch.nn as nn

from . import safetensors_io
from .checkpoint import detect_layout


# ---- CBAM, canonical layout ----------------------------------------------------------------------

class ChannelAttention(nn.Module):
    def __init__(self, channels: int, reduction: int, mlp_kind: str = "conv", bias: bool = False, mlp_name: str = "mlp"):
        super().__init__()
        hidden = max(channels // reduction, 1)
        if mlp_kind == "conv":
            mlp = nn.Sequential(nn.Conv2d(channels, hidden, 1, bias=bias), nn.ReLU(inplace=True), nn.Conv2d(hidden, channels, 1, bias=bias))
        else:
            mlp = nn.Sequential(nn.Linear(channels, hidden, bias=bias), nn.ReLU(inplace=True), nn.Linear(hidden, channels, bias=bias))
        self.mlp_kind, self.mlp_name = mlp_kind, mlp_name
        setattr(self, mlp_name, mlp)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mlp = getattr(self, self.mlp_name)
        avg, mx = x.mean(dim=(2, 3), keepdim=True), x.amax(dim=(2, 3), keepdim=True)
        if self.mlp_kind == "linear":
            return torch.sigmoid(mlp(avg.flatten(1)) + mlp(mx.flatten(1)))[:, :, None, None]
        return torch.sigmoid(mlp(avg) + mlp(mx))


class SpatialAttention(nn.Module):
    def __init__(self, kernel_size: int):
        super().__init__()
        self.conv = nn.Conv2d(2, 1, kernel_size, padding=kernel_size // 2, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = torch.cat([x.mean(dim=1, keepdim=True), x.amax(dim=1, keepdim=True)], dim=1)
        return torch.sigmoid(self.conv(pooled))


# ---- CBAM, the authors' layout (github.com/Jongchan/attention-module) --------------------------------

class ChannelGate(nn.Module):
    def __init__(self, channels: int, reduction: int):
        super().__init__()
        hidden = max(channels // reduction, 1)
        self.mlp = nn.Sequential(nn.Flatten(), nn.Linear(channels, hidden), nn.ReLU(), nn.Linear(hidden, channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        avg, mx = x.mean(dim=(2, 3), keepdim=True), x.amax(dim=(2, 3), keepdim=True)
        return torch.sigmoid(self.mlp(avg) + self.mlp(mx))[:, :, None, None]


class ConvBN(nn.Module):
    def __init__(self, kernel_size: int):
        super().__init__()
        self.conv = nn.Conv2d(2, 1, kernel_size, padding=kernel_size // 2, bias=False)
        self.bn = nn.BatchNorm2d(1, eps=1e-5, momentum=0.01)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn(self.conv(x))


class SpatialGate(nn.Module):
    def __init__(self, kernel_size: int):
        super().__init__()
        self.spatial = ConvBN(kernel_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = torch.cat([x.amax(dim=1, keepdim=True), x.mean(dim=1, keepdim=True)], dim=1)
        return torch.sigmoid(self.spatial(pooled))


class CBAM(nn.Module):
    def __init__(self, channels: int, reduction: int, kernel_size: int, layout: str = "canonical",
                 mlp_kind: str = "conv", bias: bool = False, mlp_name: str = "mlp"):
        super().__init__()
        self.layout = layout
        if layout == "authors":
            self.ChannelGate = ChannelGate(channels, reduction)
            self.SpatialGate = SpatialGate(kernel_size)
        else:
            self.channel_attention = ChannelAttention(channels, reduction, mlp_kind, bias, mlp_name)
            self.spatial_attention = SpatialAttention(kernel_size)
        self.channel_map: torch.Tensor | None = None
        self.spatial_map: torch.Tensor | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        channel, spatial = (self.ChannelGate, self.SpatialGate) if self.layout == "authors" else (self.channel_attention, self.spatial_attention)
        mc = channel(x)
        x = x * mc
        ms = spatial(x)
        self.channel_map, self.spatial_map = mc.detach().flatten(1), ms.detach()[:, 0]
        return x * ms


# ---- ResNet ------------------------------------------------------------------------------------------

class ResidualBlock(nn.Module):
    """out = relu(CBAM(F(x)) + shortcut(x)), shortcut = x or downsample(x); subclasses define F as `residual`."""

    def attach(self, downsample: nn.Module | None, cbam: CBAM | None) -> None:
        """Called last in a subclass's __init__, so modules register (and draw random weights) in torchvision's order."""
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample
        if cbam is not None:
            self.cbam = cbam

    def residual(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.residual(x)
        if hasattr(self, "cbam"):
            out = self.cbam(out)
        return self.relu(out + identity)


class BasicBlock(ResidualBlock):
    expansion = 1

    def __init__(self, inplanes: int, planes: int, stride: int, downsample: nn.Module | None, cbam: CBAM | None):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.attach(downsample, cbam)

    def residual(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn2(self.conv2(self.relu(self.bn1(self.conv1(x)))))


class Bottleneck(ResidualBlock):
    expansion = 4

    def __init__(self, inplanes: int, planes: int, stride: int, downsample: nn.Module | None, cbam: CBAM | None):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, planes * 4, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * 4)
        self.attach(downsample, cbam)

    def residual(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        return self.bn3(self.conv3(out))


class CBAMResNet(nn.Module):
    def __init__(self, config: dict, layout: str = "canonical", mlp_kind: str = "conv", bias: bool = False, mlp_name: str = "mlp"):
        super().__init__()
        block = BasicBlock if config["block"] == "basic" else Bottleneck
        layers = config["layers"]
        widths = config.get("widths") or [64 << i for i in range(len(layers))]
        attention = config.get("attention")
        stages = attention["stages"] if attention else [False] * len(layers)
        self.inplanes = widths[0]
        if config["stem"] == "imagenet":
            self.conv1 = nn.Conv2d(3, widths[0], 7, 2, 3, bias=False)
            self.maxpool = nn.MaxPool2d(3, 2, 1)
        else:
            self.conv1 = nn.Conv2d(3, widths[0], 3, 1, 1, bias=False)
            self.maxpool = nn.Identity()
        self.bn1 = nn.BatchNorm2d(widths[0])
        self.relu = nn.ReLU(inplace=True)
        for i, (count, width) in enumerate(zip(layers, widths)):
            blocks = []
            for j in range(count):
                stride = 2 if (i > 0 and j == 0) else 1
                downsample = None
                if stride != 1 or self.inplanes != width * block.expansion:
                    downsample = nn.Sequential(nn.Conv2d(self.inplanes, width * block.expansion, 1, stride, bias=False),
                                               nn.BatchNorm2d(width * block.expansion))
                cbam = None
                if stages[i]:
                    cbam = CBAM(width * block.expansion, attention["reduction"], attention["kernel_size"], layout, mlp_kind, bias, mlp_name)
                blocks.append(block(self.inplanes, width, stride, downsample, cbam))
                self.inplanes = width * block.expansion
            setattr(self, f"layer{i + 1}", nn.Sequential(*blocks))
        self.num_stages = len(layers)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(self.inplanes, config["num_classes"])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        for i in range(self.num_stages):
            x = getattr(self, f"layer{i + 1}")(x)
        return self.fc(torch.flatten(self.avgpool(x), 1))

    def attention_maps(self) -> list[tuple[str, torch.Tensor, torch.Tensor]]:
        """(layer name "layerX.Y", channel map (N, C), spatial map (N, H, W)) of the last forward pass."""
        maps = []
        for name, module in self.named_modules():
            if isinstance(module, CBAM) and module.channel_map is not None:
                maps.append((name.rsplit(".cbam", 1)[0], module.channel_map, module.spatial_map))
        return maps


def load_weights(model: nn.Module, arrays: dict, source) -> None:
    """Loads a model directory's tensors (`safetensors_io.read` of its `model.safetensors`, read from `source`) into
    `model`. The exporter drops BN's `num_batches_tracked` counters, so those are the only tensors allowed to be
    missing; anything else missing or unexpected is a ValueError that names the first few."""
    missing, unexpected = model.load_state_dict({name: torch.from_numpy(a) for name, a in arrays.items()}, strict=False)
    missing = [name for name in missing if not name.endswith("num_batches_tracked")]
    if missing or unexpected:
        raise ValueError(f"{source}: the weights do not fit the model: missing {missing[:3]}, unexpected {unexpected[:3]}")


def load_model_directory(model_dir: Path):
    """(model in eval mode, torchvision preprocessing, config) of a model directory: the reference model in the layout
    its weights are stored in, and Resize(resize), CenterCrop(size), ToTensor, Normalize(mean, std) from its config.
    Weights that do not fit the config raise ValueError."""
    from torchvision import transforms

    config = json.loads((model_dir / "config.json").read_text())
    weights = model_dir / "model.safetensors"
    arrays = safetensors_io.read(weights)
    layout = detect_layout({name: a.shape for name, a in arrays.items()})
    model = CBAMResNet(config, layout="authors" if layout.kind == "authors" else "canonical",
                       mlp_kind=layout.mlp, bias=layout.bias, mlp_name=layout.mlp_name)
    load_weights(model, arrays, weights)
    inp = config["input"]
    preprocess = transforms.Compose([transforms.Resize(inp["resize"]), transforms.CenterCrop(inp["size"]),
                                     transforms.ToTensor(), transforms.Normalize(inp["mean"], inp["std"])])
    return model.eval(), preprocess, config


@torch.no_grad()
def multiply_adds(model: nn.Module, x: torch.Tensor) -> int:
    """Multiply-adds per image of one forward pass of `x`, summed over every Conv1d (ECA), Conv2d and Linear call by hooks (the CBAM
    MLP runs twice, on the average- and the max-pooled vector; pooling and elementwise products are not counted).
    Put the model in eval mode first, or the pass updates its BN statistics."""
    total = 0

    def count(m: nn.Module, _inputs, out: torch.Tensor) -> None:
        nonlocal total
        per_output = m.weight[0].numel()  # in_channels / groups * k * k, or in_features
        total += out.numel() // out.shape[0] * per_output

    hooks = [m.register_forward_hook(count) for m in model.modules() if isinstance(m, (nn.Conv1d, nn.Conv2d, nn.Linear))]
    try:
        model(x)
    finally:
        for h in hooks:
            h.remove()
    return total
