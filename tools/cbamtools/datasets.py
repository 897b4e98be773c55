"""The datasets the tools know: CIFAR-10's classes and per-channel mean/std, ImageNet's mean/std, and the fixed
train/validation split of the CIFAR-10 JPEGs. Stdlib only on import (the split imports numpy), so the service
client in evaluate_service.py stays stdlib only."""
from __future__ import annotations

from pathlib import Path

CIFAR10_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
CIFAR10_MEAN = [0.4914, 0.4822, 0.4465]
CIFAR10_STD = [0.2470, 0.2435, 0.2616]
IMAGENET_MEAN = [0.485, 0.456, 0.406]
IMAGENET_STD = [0.229, 0.224, 0.225]


def split_files(data: Path, per_class_val: int, seed: int,
                classes: list[str] = CIFAR10_CLASSES) -> tuple[list[tuple[str, int]], list[tuple[str, int]]]:
    """(train, val) lists of (path relative to data, label): per class, the files sorted by name, then
    `per_class_val` of them picked by one numpy Generator(seed) permutation per class, in class order."""
    import numpy as np

    rng = np.random.default_rng(seed)
    train, val = [], []
    for label, name in enumerate(classes):
        files = sorted(p.name for p in (data / name).glob("*.jpg"))
        if len(files) <= per_class_val:
            raise ValueError(f"{data / name}: {len(files)} JPEGs, need more than {per_class_val} to hold {per_class_val} out")
        order = rng.permutation(len(files))
        held = set(order[:per_class_val].tolist())
        for i, f in enumerate(files):
            (val if i in held else train).append((f"{name}/{f}", label))
    return train, val
