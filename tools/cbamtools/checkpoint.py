"""A CBAM-ResNet's config.json, inferred from a checkpoint's tensor names and shapes alone (no torch needed).

Works on {name: shape} dicts so it can be tested without PyTorch. Understands torchvision's ResNet names
(conv1, bn1, layerX.Y.{conv,bn}N, layerX.Y.downsample.{0,1}, fc) with CBAM in one of the layouts the engine
reads (see Sources/CBAMEngine/CheckpointLayout.swift):
  canonical: layerX.Y.cbam.channel_attention.{mlp|fc}.{0,2}.weight (1x1 conv or Linear, bias optional),
             layerX.Y.cbam.spatial_attention.conv.weight [1, 2, k, k]
  authors:   layerX.Y.cbam.ChannelGate.mlp.{1,3}.{weight,bias}, layerX.Y.cbam.SpatialGate.spatial.{conv,bn}.*
What the shapes cannot say (input size, resize, mean/std, labels, name) comes from the caller.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from .config import cbam_attention, model_config

Shapes = dict[str, tuple[int, ...]]


class CheckpointError(Exception):
    """A checkpoint that cannot become a model directory: a code and a sentence saying what was expected."""

    def __init__(self, code: str, message: str):
        super().__init__(f"{code}: {message}")
        self.code, self.message = code, message


@dataclass(frozen=True)
class Layout:
    kind: str  # "canonical" | "authors" | "none"
    mlp: str = "conv"  # canonical only: "conv" (1x1 convs) | "linear"
    mlp_name: str = "mlp"  # canonical only: "mlp" | "fc"
    bias: bool = False  # canonical only


IGNORED_SUFFIXES = (".num_batches_tracked",)


def strip_prefixes(names: list[str]) -> dict[str, str]:
    """Original name -> name without a `module.` (DataParallel) prefix, repeated as often as every name has it."""
    mapping = {n: n for n in names}
    while mapping and all(v.startswith("module.") for v in mapping.values()):
        mapping = {k: v[len("module."):] for k, v in mapping.items()}
    return mapping


def detect_layout(shapes: Shapes) -> Layout:
    cbam = [n for n in shapes if ".cbam." in n]
    if not cbam:
        return Layout("none")
    if any(".cbam.ChannelGate." in n or ".cbam.SpatialGate." in n for n in cbam):
        return Layout("authors")
    name = "fc" if any(".cbam.channel_attention.fc." in n for n in cbam) else "mlp"
    first = next((n for n in sorted(cbam) if n.endswith(f".cbam.channel_attention.{name}.0.weight")), None)
    if first is None:
        raise CheckpointError("unknown_layout", f"CBAM tensors found (e.g. {cbam[0]}) but no "
                              f"layerX.Y.cbam.channel_attention.{name}.0.weight nor layerX.Y.cbam.ChannelGate.mlp.1.weight")
    rank = len(shapes[first])
    if rank not in (2, 4):
        raise CheckpointError("shape_mismatch", f"tensor {first} has shape {list(shapes[first])}, "
                              "expected a 1x1 conv [C/r,C,1,1] or a Linear [C/r,C]")
    bias = any(n.endswith(f".cbam.channel_attention.{name}.0.bias") for n in cbam)
    return Layout("canonical", "conv" if rank == 4 else "linear", name, bias)


def _require(shapes: Shapes, name: str) -> tuple[int, ...]:
    if name not in shapes:
        raise CheckpointError("missing_tensor", f"tensor {name} is missing; the checkpoint does not look like a torchvision-style ResNet")
    return shapes[name]


def infer_config(shapes: Shapes) -> tuple[dict, Layout]:
    """The architecture part of config.json (block, layers, widths, stem, num_classes, attention) and the CBAM layout.

    `shapes` must already have its prefixes stripped. Raises CheckpointError when the shapes say nothing
    consistent; call `check_shapes` afterwards to compare every tensor with what the config implies.
    """
    conv1 = _require(shapes, "conv1.weight")
    if len(conv1) != 4 or conv1[1] != 3:
        raise CheckpointError("shape_mismatch", f"tensor conv1.weight has shape {list(conv1)}, expected [C, 3, k, k]")
    stems = {7: "imagenet", 3: "cifar"}
    if conv1[2] not in stems:
        raise CheckpointError("unknown_stem", f"conv1.weight is a {conv1[2]}x{conv1[3]} kernel; expected 7x7 (imagenet stem) or 3x3 (cifar stem)")
    stem = stems[conv1[2]]

    blocks: dict[int, set[int]] = {}
    for n in shapes:
        m = re.match(r"layer(\d+)\.(\d+)\.", n)
        if m:
            blocks.setdefault(int(m.group(1)), set()).add(int(m.group(2)))
    if not blocks:
        raise CheckpointError("missing_tensor", "no layerX.Y.* tensors: not a ResNet checkpoint")
    stages = sorted(blocks)
    if stages != list(range(1, len(stages) + 1)):
        raise CheckpointError("shape_mismatch", f"stages found: layer{stages}; expected layer1..layer{len(stages)} with no gaps")
    layers = []
    for s in stages:
        idx = sorted(blocks[s])
        if idx != list(range(len(idx))):
            raise CheckpointError("shape_mismatch", f"layer{s} has blocks {idx}; expected 0..{len(idx) - 1} with no gaps")
        layers.append(len(idx))

    block = "bottleneck" if "layer1.0.conv3.weight" in shapes else "basic"
    widths = [_require(shapes, f"layer{s}.0.conv1.weight")[0] for s in stages]
    fc = _require(shapes, "fc.weight")
    if len(fc) != 2:
        raise CheckpointError("shape_mismatch", f"tensor fc.weight has shape {list(fc)}, expected [num_classes, features]")
    config = model_config(block, layers, widths, stem, fc[0])

    layout = detect_layout(shapes)
    if layout.kind == "none":
        config["attention"] = None
        return config, layout

    expansion = 4 if block == "bottleneck" else 1
    has_cbam = [any(n.startswith(f"layer{s}.") and ".cbam." in n for n in shapes) for s in stages]
    hidden_by_channels: list[tuple[str, int, int]] = []  # (tensor, channels, hidden)
    kernel = None
    for s, count, width in zip(stages, layers, widths):
        if not has_cbam[s - 1]:
            continue
        for j in range(count):
            p = f"layer{s}.{j}.cbam"
            if layout.kind == "authors":
                w1, conv = f"{p}.ChannelGate.mlp.1.weight", f"{p}.SpatialGate.spatial.conv.weight"
            else:
                w1, conv = f"{p}.channel_attention.{layout.mlp_name}.0.weight", f"{p}.spatial_attention.conv.weight"
            shape = _require(shapes, w1)
            hidden_by_channels.append((w1, width * expansion, shape[0]))
            k = _require(shapes, conv)
            if len(k) != 4 or k[:2] != (1, 2) or k[2] != k[3]:
                raise CheckpointError("shape_mismatch", f"tensor {conv} has shape {list(k)}, expected [1, 2, k, k]")
            if kernel is not None and k[2] != kernel:
                raise CheckpointError("shape_mismatch", f"tensor {conv} is {k[2]}x{k[2]}, earlier spatial convs are {kernel}x{kernel}")
            kernel = k[2]
    config["attention"] = cbam_attention(infer_reduction(hidden_by_channels), kernel, has_cbam)
    return config, layout


def infer_reduction(hidden_by_channels: list[tuple[str, int, int]]) -> int:
    """The one reduction r with max(C // r, 1) == hidden for every CBAM; 16 when several fit (the paper's value)."""
    # Every r above the widest C gives hidden 1 everywhere, so r up to that (or 16) covers every distinct outcome.
    largest = max(max((c for _, c, _ in hidden_by_channels), default=1) + 1, 16)
    candidates: set[int] | None = None
    for _, channels, hidden in hidden_by_channels:
        fits = {r for r in range(1, largest + 1) if max(channels // r, 1) == hidden}
        candidates = fits if candidates is None else candidates & fits
    if not candidates:
        detail = ", ".join(f"{name}: {c} channels -> {h}" for name, c, h in hidden_by_channels[:4])
        raise CheckpointError("inconsistent_reduction", f"no single reduction ratio r gives hidden = max(C // r, 1) for every CBAM ({detail})")
    return 16 if 16 in candidates else min(candidates)


def expected_shapes(config: dict, layout: Layout) -> Shapes:
    """Every tensor (no num_batches_tracked) the engine reads for this config in this layout, with its shape."""
    out: Shapes = {}

    def conv_bn(conv: str, bn: str, cin: int, cout: int, k: int) -> None:
        out[f"{conv}.weight"] = (cout, cin, k, k)
        for t in ("weight", "bias", "running_mean", "running_var"):
            out[f"{bn}.{t}"] = (cout,)

    widths, layers = config["widths"], config["layers"]
    conv_bn("conv1", "bn1", 3, widths[0], 7 if config["stem"] == "imagenet" else 3)
    expansion = 4 if config["block"] == "bottleneck" else 1
    attention = config.get("attention")
    inplanes = widths[0]
    for i, (count, width) in enumerate(zip(layers, widths)):
        for j in range(count):
            p = f"layer{i + 1}.{j}"
            stride = 2 if i > 0 and j == 0 else 1
            cout = width * expansion
            if config["block"] == "basic":
                conv_bn(f"{p}.conv1", f"{p}.bn1", inplanes, width, 3)
                conv_bn(f"{p}.conv2", f"{p}.bn2", width, width, 3)
            else:
                conv_bn(f"{p}.conv1", f"{p}.bn1", inplanes, width, 1)
                conv_bn(f"{p}.conv2", f"{p}.bn2", width, width, 3)
                conv_bn(f"{p}.conv3", f"{p}.bn3", width, cout, 1)
            if stride != 1 or inplanes != cout:
                conv_bn(f"{p}.downsample.0", f"{p}.downsample.1", inplanes, cout, 1)
            if attention and attention["stages"][i]:
                h, k = max(cout // attention["reduction"], 1), attention["kernel_size"]
                c = f"{p}.cbam"
                if layout.kind == "authors":
                    out.update({f"{c}.ChannelGate.mlp.1.weight": (h, cout), f"{c}.ChannelGate.mlp.1.bias": (h,),
                                f"{c}.ChannelGate.mlp.3.weight": (cout, h), f"{c}.ChannelGate.mlp.3.bias": (cout,),
                                f"{c}.SpatialGate.spatial.conv.weight": (1, 2, k, k)})
                    for t in ("weight", "bias", "running_mean", "running_var"):
                        out[f"{c}.SpatialGate.spatial.bn.{t}"] = (1,)
                else:
                    m = f"{c}.channel_attention.{layout.mlp_name}"
                    tail = (1, 1) if layout.mlp == "conv" else ()
                    out[f"{m}.0.weight"], out[f"{m}.2.weight"] = (h, cout) + tail, (cout, h) + tail
                    if layout.bias:
                        out[f"{m}.0.bias"], out[f"{m}.2.bias"] = (h,), (cout,)
                    out[f"{c}.spatial_attention.conv.weight"] = (1, 2, k, k)
            inplanes = cout
    out["fc.weight"] = (config["num_classes"], inplanes)
    out["fc.bias"] = (config["num_classes"],)
    return out


def check_shapes(shapes: Shapes, config: dict, layout: Layout) -> None:
    """Raises CheckpointError naming the first missing, misshapen or unexpected tensor."""
    expected = expected_shapes(config, layout)
    for name, shape in expected.items():
        if name not in shapes:
            raise CheckpointError("missing_tensor", f"tensor {name} {list(shape)} is missing from the checkpoint")
        if tuple(shapes[name]) != shape:
            raise CheckpointError("shape_mismatch", f"tensor {name} has shape {list(shapes[name])}, config expects {list(shape)}")
    extra = sorted(set(shapes) - set(expected))
    if extra:
        more = f" (and {len(extra) - 3} more)" if len(extra) > 3 else ""
        raise CheckpointError("unexpected_tensor", f"tensors the model does not use: {', '.join(extra[:3])}{more}")
