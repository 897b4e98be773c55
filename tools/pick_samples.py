#!/usr/bin/env python3
"""Copy a few validation JPEGs per class into <model_dir>/samples/ with what PyTorch predicts for them.

The first N files of each class in the validation list (sorted, no choosing by result) are copied as
samples/<class>_<file>.jpg; samples/samples.json records for each its true label and PyTorch's top-1 label,
index and probability (and the runner-up's), read through the model directory's weights with the service's
preprocessing. A test of the service should expect `predicted` (what the same weights give), not `label`.

    python3 tools/pick_samples.py models/cbam-resnet10-cifar10 --data /work/scratch/train \
        --files models/cbam-resnet10-cifar10/validation_files.txt --per-class 3
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

from cbamtools.config import read_labels


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model_dir", type=Path)
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--files", type=Path, required=True, help="validation files relative to --data, one a line")
    ap.add_argument("--per-class", type=int, default=3)
    args = ap.parse_args()

    import torch
    from PIL import Image

    from cbamtools.model import load_model_directory

    labels = read_labels(args.model_dir)
    files = sorted(line.strip() for line in args.files.read_text().splitlines() if line.strip())
    chosen = [rel for cls in labels for rel in [f for f in files if Path(f).parent.name == cls][:args.per_class]]
    model, preprocess, _ = load_model_directory(args.model_dir)
    out_dir = args.model_dir / "samples"
    out_dir.mkdir(exist_ok=True)
    with torch.no_grad():
        probs = torch.softmax(model(torch.stack([preprocess(Image.open(args.data / rel).convert("RGB")) for rel in chosen])), 1)
    records = []
    for rel, p in zip(chosen, probs):
        name = f"{Path(rel).parent.name}_{Path(rel).name}"
        shutil.copyfile(args.data / rel, out_dir / name)
        top = torch.topk(p, 2)
        records.append({"file": name, "source": rel, "label": Path(rel).parent.name,
                        "predicted": labels[top.indices[0]], "predicted_index": int(top.indices[0]),
                        "probability": round(float(top.values[0]), 4),
                        "runner_up": labels[top.indices[1]], "runner_up_probability": round(float(top.values[1]), 4)})
    (out_dir / "samples.json").write_text(json.dumps({"model": args.model_dir.name, "samples": records}, indent=1) + "\n")
    right = sum(r["label"] == r["predicted"] for r in records)
    print(f"{len(records)} samples -> {out_dir}; PyTorch predicts {right} of them right")
    return 0


if __name__ == "__main__":
    sys.exit(main())
