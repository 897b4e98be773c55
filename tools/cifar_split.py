"""The fixed train/validation split of the CIFAR-10 JPEGs (numpy only, so tests and tools need no torch)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


def split_files(data: Path, per_class_val: int, seed: int, classes: list[str] = CLASSES) -> tuple[list[tuple[str, int]], list[tuple[str, int]]]:
    """(train, val) lists of (path relative to data, label): per class, the files sorted by name, then
    `per_class_val` of them picked by one numpy Generator(seed) permutation per class, in class order."""
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
