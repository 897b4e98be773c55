"""A model directory's config.json (format `cbam-resnet/1`, read by Sources/CBAMEngine/ModelConfig.swift), built in
one place, and its labels.txt.

The dict's keys come in the order the files have them: format, name, block, layers, widths, stem, shortcut,
num_classes, attention, input; name, shortcut (when not "conv"), attention and input only when given.
"""
from __future__ import annotations

from pathlib import Path

from .datasets import CIFAR10_CLASSES, CIFAR10_MEAN, CIFAR10_STD, IMAGENET_MEAN, IMAGENET_STD

FORMAT = "cbam-resnet/1"


def model_config(block: str, layers: list[int], widths: list[int], stem: str, num_classes: int,
                 attention: dict | None = None, input: dict | None = None, name: str | None = None,
                 shortcut: str = "conv") -> dict:
    """block "basic" | "bottleneck", stem "cifar" (3x3 conv) | "imagenet" (7x7 conv + max pool) | "deep" (timm's three
    3x3 convs + max pool); shortcut "conv" (written only when "avgpool": timm's average-pool shortcut)."""
    config: dict = {"format": FORMAT}
    if name is not None:
        config["name"] = name
    config.update({"block": block, "layers": list(layers), "widths": list(widths), "stem": stem})
    if shortcut != "conv":
        config["shortcut"] = shortcut
    config["num_classes"] = num_classes
    if attention is not None:
        config["attention"] = attention
    if input is not None:
        config["input"] = input
    return config


def cbam_attention(reduction: int, kernel_size: int, stages: list[bool]) -> dict:
    """CBAM in the blocks of the stages marked True: channel MLP hidden = max(C // reduction, 1), spatial conv k x k."""
    return {"type": "cbam", "reduction": reduction, "kernel_size": kernel_size, "stages": list(stages)}


def input_config(size: int, resize: int, mean: list[float], std: list[float], exif_transpose: bool | None = None) -> dict:
    """Preprocessing: Resize(resize) (shorter side), CenterCrop(size), ToTensor, Normalize(mean, std)."""
    section = {"size": size, "resize": resize, "mean": list(mean), "std": list(std)}
    if exif_transpose is not None:
        section["exif_transpose"] = exif_transpose
    return section


def cifar10_input(exif_transpose: bool | None = None) -> dict:
    return input_config(32, 32, CIFAR10_MEAN, CIFAR10_STD, exif_transpose)


def imagenet_input(exif_transpose: bool | None = None) -> dict:
    return input_config(224, 256, IMAGENET_MEAN, IMAGENET_STD, exif_transpose)


def cbam_resnet50(name: str | None = None) -> dict:
    """CBAM-ResNet-50 for ImageNet at 224x224, CBAM (r = 16, 7x7) in every block, as in the paper."""
    return model_config("bottleneck", [3, 4, 6, 3], [64, 128, 256, 512], "imagenet", 1000,
                        cbam_attention(16, 7, [True] * 4), imagenet_input(), name)


def cbam_resnet20_cifar(name: str | None = None) -> dict:
    """CBAM-ResNet-20 for CIFAR-10 at 32x32 (widths 16, 32, 64), CBAM (r = 16, 7x7) in every block."""
    return model_config("basic", [3, 3, 3], [16, 32, 64], "cifar", 10, cbam_attention(16, 7, [True] * 3), cifar10_input(), name)


def read_labels(model_dir: Path | None, default: list[str] = CIFAR10_CLASSES) -> list[str]:
    """The model directory's labels.txt, one label a line (blank lines skipped); `default` when it has none."""
    if model_dir is not None and (model_dir / "labels.txt").exists():
        return [line.strip() for line in (model_dir / "labels.txt").read_text().splitlines() if line.strip()]
    return default
