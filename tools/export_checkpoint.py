#!/usr/bin/env python3
"""Turn a PyTorch CBAM-ResNet checkpoint into a cbam-serve model directory.

    python3 tools/export_checkpoint.py CHECKPOINT OUT_DIR [--preset cifar10 | --input-size 224 --resize 256 ...]

CHECKPOINT: .pth / .pth.tar / .pt (a plain state_dict, {"state_dict": ...} or {"model": ...}, with or without
`module.` prefixes) or .safetensors; torchvision or timm ResNet names (timm's deep stem and average-pool shortcut
included) with CBAM, SE or ECA attention in any layout the engine reads: canonical, the CBAM authors', timm's
(`layerX.Y.se.*`) or the stand-alone `ca`/`sa` one. The architecture (block, layers, widths, stem, shortcut,
num_classes, attention type/reduction/kernel/stages) is read from the tensor names and shapes; what they cannot say
(input size, resize, mean/std, labels, name) comes from the flags. Names in another layout: `--rename REGEX
REPLACEMENT` (repeatable, `$1` for a group, the syntax of config.json's "rename") maps them first, after a prefix
every name shares (`model.`, `backbone.`, `encoder.`, `net.`) is stripped without asking. The rules used are printed.
Writes OUT_DIR/config.json, OUT_DIR/model.safetensors (float32, num_batches_tracked dropped, prefixes
stripped, renamed, names otherwise kept) and OUT_DIR/labels.txt when labels are given. Only .pth needs torch; .safetensors needs
the `safetensors` package (numpy API).
"""
from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

import numpy as np

from cbamtools import safetensors_io
from cbamtools.checkpoint import IGNORED_SUFFIXES, CheckpointError, check_shapes, infer_config, strip_prefixes
from cbamtools.config import cifar10_input, imagenet_input, input_config, model_config
from cbamtools.datasets import CIFAR10_CLASSES

PRESETS = {"cifar10": (cifar10_input(), CIFAR10_CLASSES), "imagenet": (imagenet_input(), None)}  # (input, labels)
STATE_DICT_KEYS = ("state_dict", "model_state_dict", "model")


def load_tensors(path: Path, trust_pickle: bool = False) -> dict[str, np.ndarray]:
    """Every tensor of the checkpoint as a float32 (or integer) numpy array, names as stored."""
    if not path.exists():
        raise CheckpointError("not_found", f"checkpoint {path} does not exist")
    if path.name.endswith(".safetensors"):
        try:
            return safetensors_io.read(path)
        except ValueError as e:
            raise CheckpointError("corrupt_checkpoint", f"not a valid safetensors file: {e}") from e
    try:
        import torch
    except ImportError as e:
        raise CheckpointError("torch_missing", f"reading {path.name} needs PyTorch (pip install torch); "
                              ".safetensors checkpoints do not") from e
    try:
        obj = torch.load(path, map_location="cpu", weights_only=not trust_pickle)
    except Exception as e:  # torch raises many kinds for a bad file
        hint = "" if trust_pickle else " (if you trust this file, --trust-pickle loads arbitrary pickles)"
        raise CheckpointError("corrupt_checkpoint", f"torch.load({path.name}) failed: {str(e).splitlines()[0]}{hint}") from e
    if isinstance(obj, torch.nn.Module):
        obj = obj.state_dict()
    if isinstance(obj, dict):
        for key in STATE_DICT_KEYS:
            inner = obj.get(key)
            if isinstance(inner, torch.nn.Module):
                inner = inner.state_dict()
            if isinstance(inner, dict) and inner and all(torch.is_tensor(v) for v in inner.values()):
                obj = inner
                break
    if not isinstance(obj, dict) or not obj or not all(torch.is_tensor(v) for v in obj.values()):
        raise CheckpointError("not_a_state_dict", f"{path.name} holds no state_dict: expected {{name: tensor}} or a dict "
                              f"with one of the keys {list(STATE_DICT_KEYS)}")
    out = {}
    for name, t in obj.items():
        t = t.detach().cpu().contiguous()
        out[name] = (t.float() if t.is_floating_point() else t).numpy()
    return out


SHARED_PREFIXES = ("model.", "backbone.", "encoder.", "net.")


def rename_rules(names: list[str], given: list[list[str]] | None) -> list[list[str]]:
    """A rule stripping a prefix every name shares (as `module.` is), then the user's rules."""
    rules: list[list[str]] = []
    for prefix in SHARED_PREFIXES:
        if names and all(n.startswith(prefix) for n in names):
            rules.append(["^" + re.escape(prefix), ""])
            break
    for pattern, replacement in given or []:
        try:
            re.compile(pattern)
        except re.error as e:
            raise CheckpointError("invalid_rename", f"--rename {pattern!r} is not a valid regular expression: {e}") from e
        rules.append([pattern, replacement])
    return rules


def apply_rules(name: str, rules: list[list[str]]) -> str:
    for pattern, replacement in rules:
        name = re.sub(pattern, re.sub(r"\$(\d+)", r"\\g<\1>", replacement), name)
    return name


def prepare(tensors: dict[str, np.ndarray], rename: list[list[str]] | None = None) -> tuple[dict[str, np.ndarray], list[list[str]]]:
    """Strip `module.` prefixes, apply the rename rules (and strip a shared prefix), drop num_batches_tracked, make every
    tensor float32. Returns the tensors and the rules used."""
    mapping = strip_prefixes(list(tensors))
    kept = {mapping[n]: a for n, a in tensors.items() if not n.endswith(IGNORED_SUFFIXES)}
    rules = rename_rules(list(kept), rename)
    out: dict[str, np.ndarray] = {}
    for n, a in kept.items():
        renamed = apply_rules(n, rules)
        if renamed in out:
            other = next(k for k in kept if apply_rules(k, rules) == renamed)
            raise CheckpointError("rename_collision", f"the rename rules map both {other} and {n} to {renamed}")
        out[renamed] = np.ascontiguousarray(a, dtype=np.float32)
    return out, rules


def input_section(args: argparse.Namespace) -> dict:
    preset = PRESETS[args.preset][0] if args.preset else {}
    size = args.input_size or preset.get("size")
    if size is None:
        raise CheckpointError("missing_input", "the checkpoint does not say its input size: pass --input-size (with "
                              "--resize, --mean, --std) or --preset cifar10|imagenet")
    resize = args.resize or preset.get("resize") or size
    mean = args.mean or preset.get("mean")
    std = args.std or preset.get("std")
    if mean is None or std is None:
        raise CheckpointError("missing_input", "pass --mean and --std (3 values each, e.g. --mean 0.485 0.456 0.406) or a --preset")
    if len(mean) != 3 or len(std) != 3 or any(s <= 0 for s in std):
        raise CheckpointError("invalid_input", f"--mean and --std need 3 values each, std > 0; got mean {mean}, std {std}")
    if resize < size:
        raise CheckpointError("invalid_input", f"--resize ({resize}) must be >= --input-size ({size})")
    return input_config(size, resize, mean, std, exif_transpose=not args.no_exif_transpose)


def labels_for(args: argparse.Namespace, num_classes: int) -> list[str] | None:
    if args.labels:
        labels = [line.strip() for line in Path(args.labels).read_text(encoding="utf-8").splitlines()]
        while labels and not labels[-1]:
            labels.pop()
    elif args.preset:
        labels = PRESETS[args.preset][1]
    else:
        return None
    if labels is not None and len(labels) != num_classes:
        raise CheckpointError("invalid_labels", f"{len(labels)} labels for a checkpoint with {num_classes} classes (fc.weight)")
    return labels


def config_text(config: dict) -> str:
    """Indented JSON with short lists of numbers or booleans kept on one line."""
    text = json.dumps(config, indent=2)
    return re.sub(r"\[\s*([-\d.eE,\s]+|(?:true|false|,|\s)+)\s*\]",
                  lambda m: "[" + ", ".join(v.strip() for v in m.group(1).split(",")) + "]", text) + "\n"


def export(checkpoint: Path, out_dir: Path, args: argparse.Namespace) -> dict:
    tensors, rules = prepare(load_tensors(checkpoint, args.trust_pickle), getattr(args, "rename", None))
    shapes = {n: tuple(a.shape) for n, a in tensors.items()}
    arch, layout = infer_config(shapes)
    check_shapes(shapes, arch, layout)
    config = model_config(arch["block"], arch["layers"], arch["widths"], arch["stem"], arch["num_classes"],
                          arch["attention"], input_section(args), name=args.name or out_dir.name,
                          shortcut=arch.get("shortcut", "conv"))
    labels = labels_for(args, arch["num_classes"])

    out_dir.mkdir(parents=True, exist_ok=True)
    targets = [out_dir / "config.json", out_dir / "model.safetensors"] + ([out_dir / "labels.txt"] if labels else [])
    existing = [p.name for p in targets if p.exists()]
    if existing and not args.force:
        raise CheckpointError("exists", f"{out_dir} already has {', '.join(existing)}; pass --force to overwrite")
    safetensors_io.write(out_dir / "model.safetensors", tensors,
                         metadata={"source": checkpoint.name, "layout": layout.kind, "format": "pt"})
    (out_dir / "config.json").write_text(config_text(config))
    if labels:
        (out_dir / "labels.txt").write_text("\n".join(labels) + "\n")
    return {"config": config, "layout": layout.__dict__, "tensors": len(tensors), "rename": rules,
            "parameters": int(sum(a.size for a in tensors.values()))}


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("checkpoint", type=Path)
    ap.add_argument("out_dir", type=Path)
    ap.add_argument("--name", help="model name in config.json (default: the directory's name)")
    ap.add_argument("--preset", choices=sorted(PRESETS), help="input size/resize/mean/std (and CIFAR-10's labels)")
    ap.add_argument("--input-size", type=int, help="side of the square network input (center crop)")
    ap.add_argument("--resize", type=int, help="shorter side the image is resized to before the crop (default: input size)")
    ap.add_argument("--mean", type=float, nargs=3)
    ap.add_argument("--std", type=float, nargs=3)
    ap.add_argument("--no-exif-transpose", action="store_true", help="ignore the EXIF orientation of uploads")
    ap.add_argument("--labels", type=Path, help="text file, one class name a line, in class-index order")
    ap.add_argument("--trust-pickle", action="store_true", help="torch.load with weights_only=False (runs pickled code)")
    ap.add_argument("--force", action="store_true", help="overwrite an existing model directory's files")
    ap.add_argument("--rename", nargs=2, action="append", metavar=("REGEX", "REPLACEMENT"),
                    help="rename tensors before reading them ($1 for a group); repeatable, applied in order")
    return ap


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        summary = export(args.checkpoint, args.out_dir, args)
    except CheckpointError as e:
        print(f"error: {e.code}: {e.message}", file=sys.stderr)
        return 2
    c = summary["config"]
    layout = summary["layout"]
    kind = layout["kind"] + (f" ({layout['attention']})" if layout["kind"] == "timm" else "")
    print(f"wrote {args.out_dir}: {c['block']} blocks {c['layers']}, widths {c['widths']}, stem {c['stem']}, "
          f"shortcut {c.get('shortcut', 'conv')}, {c['num_classes']} classes, attention {c.get('attention')}, layout {kind}, "
          f"{summary['tensors']} tensors, {summary['parameters']} parameters")
    rules = summary["rename"]
    print("rename rules used: " + (json.dumps(rules) if rules else "none"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
