"""A CBAM-ResNet's config.json, inferred from a checkpoint's tensor names and shapes alone (no torch needed).

Works on {name: shape} dicts so it can be tested without PyTorch. Understands torchvision's ResNet names
(conv1, bn1, layerX.Y.{conv,bn}N, layerX.Y.downsample.{0,1}, fc), timm's deep stem (conv1.0/.1/.3/.4/.6) and
average-pool shortcut (layerX.Y.downsample.{1,2}), with attention in one of the layouts the engine reads (see
Sources/CBAMEngine/CheckpointLayout.swift):
  canonical: layerX.Y.cbam.channel_attention.{mlp|fc}.{0,2}.weight (1x1 conv or Linear, bias optional),
             layerX.Y.cbam.spatial_attention.conv.weight [1, 2, k, k]
  authors:   layerX.Y.cbam.ChannelGate.mlp.{1,3}.{weight,bias}, layerX.Y.cbam.SpatialGate.spatial.{conv,bn}.*
  timm:      layerX.Y.se.fc1/fc2 (SE), layerX.Y.se.conv [1, 1, k] (ECA),
             layerX.Y.se.channel.fc1/fc2 + layerX.Y.se.spatial.conv.{conv,bn} (CBAM)
  casa:      layerX.Y.ca.fc1/fc2 (1x1 convs) + layerX.Y.sa.conv1 [1, 2, k, k] (CBAM)
In the timm and casa layouts the MLP's hidden width and ECA's kernel are read from each block's tensors (timm rounds
them its own way), so `reduction` and `kernel_size` in their configs are the first block's, for people to read.
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
    kind: str  # "canonical" | "authors" | "timm" | "casa" | "none"
    mlp: str = "conv"  # canonical only: "conv" (1x1 convs) | "linear"
    mlp_name: str = "mlp"  # canonical only: "mlp" | "fc"
    bias: bool = False  # canonical only
    attention: str = "cbam"  # timm: "cbam" | "se" | "eca"; the others hold CBAM


# (marker inside a name, layout) in the order the engine tries them.
MARKERS = [(".cbam.ChannelGate.", Layout("authors")), (".cbam.SpatialGate.", Layout("authors")),
           (".cbam.channel_attention.", None), (".cbam.spatial_attention.", None),
           (".se.channel.", Layout("timm", attention="cbam")), (".se.spatial.", Layout("timm", attention="cbam")),
           (".se.fc1.", Layout("timm", attention="se")), (".se.conv.", Layout("timm", attention="eca")),
           (".ca.", Layout("casa")), (".sa.", Layout("casa"))]
LAYOUT_EXAMPLES = ("canonical (layer1.0.cbam.channel_attention.mlp.0.weight), authors (layer1.0.cbam.ChannelGate.mlp.1.weight), "
                   "timm (layer1.0.se.channel.fc1.weight, layer1.0.se.fc1.weight, layer1.0.se.conv.weight), ca/sa (layer1.0.ca.fc1.weight)")
IGNORED_SUFFIXES = (".num_batches_tracked",)


def strip_prefixes(names: list[str]) -> dict[str, str]:
    """Original name -> name without a `module.` (DataParallel) prefix, repeated as often as every name has it."""
    mapping = {n: n for n in names}
    while mapping and all(v.startswith("module.") for v in mapping.values()):
        mapping = {k: v[len("module."):] for k, v in mapping.items()}
    return mapping


def is_resnet_name(name: str) -> bool:
    """Stem, blocks' convs and BNs, shortcut, classifier: the names every ResNet has; the rest is attention."""
    parts = name.split(".")
    if parts[0] in ("conv1", "bn1", "fc"):
        return True
    if not re.fullmatch(r"layer\d+", parts[0]) or len(parts) < 4:
        return False
    return parts[2] == "downsample" or (re.fullmatch(r"(conv|bn)\d+", parts[2]) is not None and len(parts) == 4)


def detect_layout(shapes: Shapes) -> Layout:
    others = sorted(n for n in shapes if not is_resnet_name(n))
    found = next(((marker, layout) for marker, layout in MARKERS if any(marker in n for n in others)), None)
    if found is None:
        if others:
            raise CheckpointError("unknown_layout", f"tensors that are not the ResNet's and in no known attention layout: "
                                  f"{', '.join(others[:5])}{' ...' if len(others) > 5 else ''}; layouts tried: {LAYOUT_EXAMPLES}; "
                                  "--rename REGEX REPLACEMENT maps other names onto one of these")
        return Layout("none")
    if found[1] is not None:
        return found[1]
    cbam = [n for n in shapes if ".cbam." in n]
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


def attention_prefix(layout: Layout) -> str:
    """The module of a block that holds its attention."""
    return {"timm": ".se.", "casa": ".ca."}.get(layout.kind, ".cbam.")


def mlp_and_kernel_names(p: str, layout: Layout) -> tuple[str | None, str]:
    """(first MLP weight or None for ECA, the spatial or 1-D kernel's weight) of block `p` ("layerX.Y")."""
    if layout.kind == "authors":
        return f"{p}.cbam.ChannelGate.mlp.1.weight", f"{p}.cbam.SpatialGate.spatial.conv.weight"
    if layout.kind == "canonical":
        return f"{p}.cbam.channel_attention.{layout.mlp_name}.0.weight", f"{p}.cbam.spatial_attention.conv.weight"
    if layout.kind == "casa":
        return f"{p}.ca.fc1.weight", f"{p}.sa.conv1.weight"
    return {"cbam": (f"{p}.se.channel.fc1.weight", f"{p}.se.spatial.conv.conv.weight"),
            "se": (f"{p}.se.fc1.weight", ""), "eca": (None, f"{p}.se.conv.weight")}[layout.attention]


def _require(shapes: Shapes, name: str) -> tuple[int, ...]:
    if name not in shapes:
        raise CheckpointError("missing_tensor", f"tensor {name} is missing; the checkpoint does not look like a torchvision-style ResNet")
    return shapes[name]


def infer_config(shapes: Shapes) -> tuple[dict, Layout]:
    """The architecture part of config.json (block, layers, widths, stem, shortcut, num_classes, attention) and the
    attention layout.

    `shapes` must already have its prefixes stripped. Raises CheckpointError when the shapes say nothing
    consistent; call `check_shapes` afterwards to compare every tensor with what the config implies.
    """
    if "conv1.0.weight" in shapes:
        stem = "deep"
        for n in ("conv1.0.weight", "conv1.3.weight", "conv1.6.weight"):
            k = _require(shapes, n)
            if len(k) != 4 or k[2:] != (3, 3):
                raise CheckpointError("shape_mismatch", f"tensor {n} has shape {list(k)}; a deep stem has three 3x3 convs")
    else:
        conv1 = _require(shapes, "conv1.weight")
        if len(conv1) != 4 or conv1[1] != 3:
            raise CheckpointError("shape_mismatch", f"tensor conv1.weight has shape {list(conv1)}, expected [C, 3, k, k]")
        stems = {7: "imagenet", 3: "cifar"}
        if conv1[2] not in stems:
            raise CheckpointError("unknown_stem", f"conv1.weight is a {conv1[2]}x{conv1[3]} kernel; expected 7x7 (imagenet stem), "
                                  "3x3 (cifar stem) or conv1.0/.3/.6 (deep stem)")
        stem = stems[conv1[2]]
    shortcut = "avgpool" if any(re.fullmatch(r"layer\d+\.\d+\.downsample\.2\.weight", n) for n in shapes) else "conv"

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
    config = model_config(block, layers, widths, stem, fc[0], shortcut=shortcut)

    layout = detect_layout(shapes)
    if layout.kind == "none":
        config["attention"] = None
        return config, layout

    expansion = 4 if block == "bottleneck" else 1
    marker = attention_prefix(layout)
    has_attention = [any(n.startswith(f"layer{s}.") and marker in n for n in shapes) for s in stages]
    hidden_by_channels: list[tuple[str, int, int]] = []  # (tensor, channels, hidden)
    kernel = None
    for s, count, width in zip(stages, layers, widths):
        if not has_attention[s - 1]:
            continue
        for j in range(count):
            w1, conv = mlp_and_kernel_names(f"layer{s}.{j}", layout)
            if w1 is not None:
                hidden_by_channels.append((w1, width * expansion, _require(shapes, w1)[0]))
            if layout.attention == "eca":
                k = _require(shapes, conv)
                if len(k) != 3 or k[:2] != (1, 1) or k[2] % 2 == 0:
                    raise CheckpointError("shape_mismatch", f"tensor {conv} has shape {list(k)}, expected [1, 1, k] with k odd")
                kernel = kernel or k[2]
            elif conv:
                k = _require(shapes, conv)
                if len(k) != 4 or k[:2] != (1, 2) or k[2] != k[3]:
                    raise CheckpointError("shape_mismatch", f"tensor {conv} has shape {list(k)}, expected [1, 2, k, k]")
                if kernel is not None and k[2] != kernel:
                    raise CheckpointError("shape_mismatch", f"tensor {conv} is {k[2]}x{k[2]}, earlier spatial convs are {kernel}x{kernel}")
                kernel = k[2]
    if layout.kind in ("canonical", "authors"):
        config["attention"] = cbam_attention(infer_reduction(hidden_by_channels), kernel, has_attention)
    else:
        # Widths come from each block's tensors; the first block's ratio is written for people to read.
        _, c, h = hidden_by_channels[0] if hidden_by_channels else ("", 16, 1)
        section = {"type": layout.attention}
        if layout.attention != "eca":
            section["reduction"] = max(round(c / h), 1)
        if layout.attention != "se":
            section["kernel_size"] = kernel
        config["attention"] = section | {"stages": has_attention}
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


def expected_shapes(config: dict, layout: Layout, shapes: Shapes | None = None) -> Shapes:
    """Every tensor (no num_batches_tracked) the engine reads for this config in this layout, with its shape. Where
    the engine reads a width from the checkpoint (the stem, timm's and ca/sa's MLP widths, ECA's kernels, optional
    biases), `shapes` gives it; without `shapes`, the config's values."""
    shapes = shapes or {}
    out: Shapes = {}

    def conv_bn(conv: str, bn: str, cin: int, cout: int, k: int) -> None:
        out[f"{conv}.weight"] = (cout, cin, k, k)
        for t in ("weight", "bias", "running_mean", "running_var"):
            out[f"{bn}.{t}"] = (cout,)

    def width(name: str, fallback: int) -> int:
        return shapes[name][0] if name in shapes else fallback

    widths, layers = config["widths"], config["layers"]
    if config["stem"] == "deep":
        inplanes = width("conv1.6.weight", widths[0])
        s0, s1 = width("conv1.0.weight", inplanes // 2), width("conv1.3.weight", inplanes // 2)
        conv_bn("conv1.0", "conv1.1", 3, s0, 3)
        conv_bn("conv1.3", "conv1.4", s0, s1, 3)
        conv_bn("conv1.6", "bn1", s1, inplanes, 3)
    else:
        inplanes = width("conv1.weight", widths[0])
        conv_bn("conv1", "bn1", 3, inplanes, 7 if config["stem"] == "imagenet" else 3)
    expansion = 4 if config["block"] == "bottleneck" else 1
    attention = config.get("attention")
    avgpool = config.get("shortcut", "conv") == "avgpool"
    for i, (count, w) in enumerate(zip(layers, widths)):
        for j in range(count):
            p = f"layer{i + 1}.{j}"
            stride = 2 if i > 0 and j == 0 else 1
            cout = w * expansion
            if config["block"] == "basic":
                conv_bn(f"{p}.conv1", f"{p}.bn1", inplanes, w, 3)
                conv_bn(f"{p}.conv2", f"{p}.bn2", w, w, 3)
            else:
                conv_bn(f"{p}.conv1", f"{p}.bn1", inplanes, w, 1)
                conv_bn(f"{p}.conv2", f"{p}.bn2", w, w, 3)
                conv_bn(f"{p}.conv3", f"{p}.bn3", w, cout, 1)
            if stride != 1 or inplanes != cout:
                if avgpool:
                    conv_bn(f"{p}.downsample.1", f"{p}.downsample.2", inplanes, cout, 1)
                else:
                    conv_bn(f"{p}.downsample.0", f"{p}.downsample.1", inplanes, cout, 1)
            if attention and attention["stages"][i]:
                out.update(attention_shapes(p, cout, attention, layout, shapes))
            inplanes = cout
    out["fc.weight"] = (config["num_classes"], inplanes)
    out["fc.bias"] = (config["num_classes"],)
    return out


def attention_shapes(p: str, cout: int, attention: dict, layout: Layout, shapes: Shapes) -> Shapes:
    """The attention tensors of block `p` with `cout` output channels."""
    out: Shapes = {}
    h, k = max(cout // attention.get("reduction", 16), 1), attention.get("kernel_size", 7)

    def bn(prefix: str) -> None:
        for t in ("weight", "bias", "running_mean", "running_var"):
            out[f"{prefix}.{t}"] = (1,)

    def conv_mlp(fc1: str, fc2: str, biases: bool | None = None) -> None:
        hidden = shapes[f"{fc1}.weight"][0] if f"{fc1}.weight" in shapes else h
        out[f"{fc1}.weight"], out[f"{fc2}.weight"] = (hidden, cout, 1, 1), (cout, hidden, 1, 1)
        for name, n in ((fc1, hidden), (fc2, cout)):
            if biases or (biases is None and f"{name}.bias" in shapes):
                out[f"{name}.bias"] = (n,)

    c = f"{p}.cbam"
    if layout.kind == "authors":
        out.update({f"{c}.ChannelGate.mlp.1.weight": (h, cout), f"{c}.ChannelGate.mlp.1.bias": (h,),
                    f"{c}.ChannelGate.mlp.3.weight": (cout, h), f"{c}.ChannelGate.mlp.3.bias": (cout,),
                    f"{c}.SpatialGate.spatial.conv.weight": (1, 2, k, k)})
        bn(f"{c}.SpatialGate.spatial.bn")
    elif layout.kind == "canonical":
        m = f"{c}.channel_attention.{layout.mlp_name}"
        tail = (1, 1) if layout.mlp == "conv" else ()
        out[f"{m}.0.weight"], out[f"{m}.2.weight"] = (h, cout) + tail, (cout, h) + tail
        if layout.bias:
            out[f"{m}.0.bias"], out[f"{m}.2.bias"] = (h,), (cout,)
        out[f"{c}.spatial_attention.conv.weight"] = (1, 2, k, k)
    elif layout.kind == "casa":
        conv_mlp(f"{p}.ca.fc1", f"{p}.ca.fc2")
        out[f"{p}.sa.conv1.weight"] = (1, 2, k, k)
        if f"{p}.sa.conv1.bias" in shapes:
            out[f"{p}.sa.conv1.bias"] = (1,)
    elif layout.attention == "se":
        conv_mlp(f"{p}.se.fc1", f"{p}.se.fc2", biases=True if not shapes else None)
    elif layout.attention == "eca":
        name = f"{p}.se.conv.weight"
        out[name] = tuple(shapes[name]) if name in shapes and len(shapes[name]) == 3 else (1, 1, k)
    else:
        conv_mlp(f"{p}.se.channel.fc1", f"{p}.se.channel.fc2")
        out[f"{p}.se.spatial.conv.conv.weight"] = (1, 2, k, k)
        bn(f"{p}.se.spatial.conv.bn")
    return out


def check_shapes(shapes: Shapes, config: dict, layout: Layout) -> None:
    """Raises CheckpointError naming the first missing, misshapen or unexpected tensor."""
    expected = expected_shapes(config, layout, shapes)
    for name, shape in expected.items():
        if name not in shapes:
            raise CheckpointError("missing_tensor", f"tensor {name} {list(shape)} is missing from the checkpoint")
        if tuple(shapes[name]) != shape:
            raise CheckpointError("shape_mismatch", f"tensor {name} has shape {list(shapes[name])}, config expects {list(shape)}")
    extra = sorted(set(shapes) - set(expected))
    if extra:
        more = f" (and {len(extra) - 3} more)" if len(extra) > 3 else ""
        raise CheckpointError("unexpected_tensor", f"tensors the model does not use: {', '.join(extra[:3])}{more}")
