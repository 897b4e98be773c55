#!/usr/bin/env python3
"""Train a CIFAR-style CBAM-ResNet on the CIFAR-10 JPEGs, on the CPU.

Data: <data>/<class>/<nnnn>.jpg (the unpacked train.tar.gz). A fixed seed picks 500 images per class as the
validation split, which is never trained on; the split is written to <out>/split.json.
All JPEGs are decoded once (PIL, convert("RGB")) into a uint8 cache; augmentation (random crop with 4-pixel
zero padding, horizontal flip, optional Cutout) runs on tensors. SGD with Nesterov momentum, one-cycle LR, label
smoothing, bf16 autocast + channels_last (AMX on Sapphire Rapids). Each epoch logs one JSON line and writes
<out>/last.pth ({"state_dict", "config", "epoch", ...}), so an interrupted run still leaves a model.

    python3 tools/train_cifar.py --data /work/scratch/train --out /work/scratch/run \
        --widths 64,128,256 --layers 2,2,2 --epochs 30
    python3 tools/train_cifar.py --bench ...   # seconds per epoch estimate, no training run
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from cbamtools import safetensors_io
from cbamtools.config import cbam_attention, cifar10_input, model_config as cbam_config
from cbamtools.datasets import CIFAR10_MEAN, CIFAR10_STD, split_files
from cbamtools.model import CBAMResNet, load_weights, multiply_adds


def decode_all(data: Path, items: list[tuple[str, int]]) -> tuple[torch.Tensor, torch.Tensor]:
    from PIL import Image
    images = np.empty((len(items), 32, 32, 3), dtype=np.uint8)
    for i, (rel, _) in enumerate(items):
        with Image.open(data / rel) as im:
            rgb = im.convert("RGB")
            if rgb.size != (32, 32):
                raise SystemExit(f"{rel}: size {rgb.size}, expected 32x32 (the cache assumes CIFAR-sized images)")
            images[i] = np.asarray(rgb)
    x = torch.from_numpy(images).permute(0, 3, 1, 2).contiguous()
    y = torch.tensor([label for _, label in items], dtype=torch.long)
    return x, y


def load_cache(data: Path, cache: Path, per_class_val: int, seed: int):
    train, val = split_files(data, per_class_val, seed)
    key = {"data": str(data), "seed": seed, "per_class_val": per_class_val, "n_train": len(train), "n_val": len(val)}
    if cache.exists():
        blob = torch.load(cache)
        if blob["key"] == key:
            return blob, train, val
    t0 = time.time()
    xt, yt = decode_all(data, train)
    xv, yv = decode_all(data, val)
    blob = {"key": key, "xt": xt, "yt": yt, "xv": xv, "yv": yv}
    cache.parent.mkdir(parents=True, exist_ok=True)
    torch.save(blob, cache)
    print(f"decoded {len(train)} + {len(val)} JPEGs in {time.time() - t0:.1f}s -> {cache}", flush=True)
    return blob, train, val


def normalize(x: torch.Tensor) -> torch.Tensor:
    """uint8 NCHW -> float, exactly ToTensor + Normalize."""
    mean = torch.tensor(CIFAR10_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(CIFAR10_STD).view(1, 3, 1, 1)
    return (x.float() / 255.0 - mean) / std


def augment(x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """Random 32x32 crop of the 4-pixel zero-padded image, then a random horizontal flip (uint8 in, uint8 out)."""
    n = x.shape[0]
    padded = F.pad(x, (4, 4, 4, 4))
    dx = torch.randint(0, 9, (n,), generator=g)
    dy = torch.randint(0, 9, (n,), generator=g)
    ar = torch.arange(32)
    rows = (dy[:, None] + ar[None, :])  # n,32
    cols = (dx[:, None] + ar[None, :])
    flip = torch.rand(n, generator=g) < 0.5
    cols = torch.where(flip[:, None], cols.flip(1), cols)
    idx_n = torch.arange(n)[:, None, None, None]
    idx_c = torch.arange(3)[None, :, None, None]
    return padded[idx_n, idx_c, rows[:, None, :, None], cols[:, None, None, :]]


def cutout(x: torch.Tensor, size: int, g: torch.Generator) -> torch.Tensor:
    """Cutout (DeVries & Taylor, 2017): one size x size square per image, centred anywhere in it (so it may be clipped
    at the border), set to 0, which after normalisation is the dataset mean. x: normalised float NCHW."""
    n, _, h, w = x.shape
    cy = torch.randint(0, h, (n,), generator=g)
    cx = torch.randint(0, w, (n,), generator=g)
    ys = torch.arange(h)[None, :] - (cy[:, None] - size // 2)  # n,h: offset of each row from the square's top
    xs = torch.arange(w)[None, :] - (cx[:, None] - size // 2)
    inside = ((ys >= 0) & (ys < size))[:, :, None] & ((xs >= 0) & (xs < size))[:, None, :]  # n,h,w
    return x.masked_fill(inside[:, None], 0.0)


def read_weights(source: Path) -> dict[str, torch.Tensor]:
    """The tensors of a training checkpoint (`{"state_dict": ...}`) or of a model directory / `model.safetensors`
    (an exported model, which has no BN `num_batches_tracked` counters)."""
    if source.is_dir() or source.suffix == ".safetensors":
        file = source / "model.safetensors" if source.is_dir() else source
        return {name: torch.from_numpy(a) for name, a in safetensors_io.read(file).items()}
    return torch.load(source)["state_dict"]


def init_weights(model: nn.Module, source: Path) -> None:
    """Loads the weights a second cycle starts from; they must fit the model exactly (BN counters aside)."""
    try:
        load_weights(model, {name: t.numpy() for name, t in read_weights(source).items()}, source)
    except ValueError as e:
        raise SystemExit(str(e)) from None


def grow_from(model: CBAMResNet, source: Path) -> list[str]:
    """Net2Net-style deepening (Chen et al., ICLR 2016): a deeper network of the same widths starts as the shallower
    one. Every tensor of `source` is copied to the tensor of the same name; the blocks `source` lacks (layerX.Y with
    Y past its depth) keep their random init except the residual branch's last BN, whose scale and shift are zeroed,
    so the branch outputs 0, CBAM passes 0 through, and the block is relu(0 + x) = x on its post-ReLU input.
    Returns the names of the new blocks."""
    old = read_weights(source)
    state = model.state_dict()
    misfits = [n for n, t in old.items() if n not in state or state[n].shape != t.shape]
    if misfits:
        raise SystemExit(f"{source}: cannot grow from it: {len(misfits)} tensors have no place of the same shape in "
                         f"the new model, e.g. {misfits[:3]}")

    def block_of(name: str) -> str:
        return ".".join(name.split(".")[:2])  # "layer3.1.conv1.weight" -> "layer3.1"

    old_blocks = {block_of(n) for n in old if n.startswith("layer")}
    missing = [n for n in state if n not in old and not n.endswith("num_batches_tracked")]
    stale = [n for n in missing if not n.startswith("layer") or block_of(n) in old_blocks]
    if stale:
        raise SystemExit(f"{source}: cannot grow from it: tensors of blocks it has are missing, e.g. {stale[:3]}")
    new_blocks = sorted({block_of(n) for n in missing})
    model.load_state_dict(old, strict=False)
    for name in new_blocks:
        block = model.get_submodule(name)
        last_bn = block.bn3 if hasattr(block, "bn3") else block.bn2
        nn.init.zeros_(last_bn.weight)
        nn.init.zeros_(last_bn.bias)
    return new_blocks


def model_config(args) -> dict:
    layers = [int(v) for v in args.layers.split(",")]
    widths = [int(v) for v in args.widths.split(",")]
    return cbam_config("basic", layers, widths, "cifar", 10, cbam_attention(args.reduction, args.kernel_size, [True] * len(layers)),
                       cifar10_input(exif_transpose=True), name=args.name)


def evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch: int = 500, bf16: bool = False) -> tuple[float, float]:
    model.eval()
    correct, loss = 0, 0.0
    with torch.no_grad():
        for i in range(0, len(x), batch):
            xb = normalize(x[i:i + batch]).contiguous(memory_format=torch.channels_last)
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                out = model(xb)
            out = out.float()
            loss += F.cross_entropy(out, y[i:i + batch], reduction="sum").item()
            correct += (out.argmax(1) == y[i:i + batch]).sum().item()
    return correct / len(x), loss / len(x)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=Path("/work/scratch/train"))
    ap.add_argument("--cache", type=Path, default=Path("/work/scratch/cifar10_u8.pt"))
    ap.add_argument("--out", type=Path, default=Path("/work/scratch/run"))
    ap.add_argument("--name", default="cbam-resnet-cifar10")
    ap.add_argument("--widths", default="64,128,256")
    ap.add_argument("--layers", default="2,2,2")
    ap.add_argument("--reduction", type=int, default=16)
    ap.add_argument("--kernel-size", type=int, default=7)
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--batch-size", type=int, default=256)
    ap.add_argument("--lr", type=float, default=0.2, help="peak LR of the one-cycle schedule")
    ap.add_argument("--momentum", type=float, default=0.9)
    ap.add_argument("--weight-decay", type=float, default=5e-4)
    ap.add_argument("--label-smoothing", type=float, default=0.1)
    ap.add_argument("--cutout", type=int, default=0, help="side of the Cutout square in pixels (0: no Cutout)")
    ap.add_argument("--pct-start", type=float, default=0.25)
    ap.add_argument("--seed", type=int, default=0, help="seed of the split, the init and the augmentation")
    ap.add_argument("--val-per-class", type=int, default=500)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--no-bf16", action="store_true", help="train in float32 (default: bf16 autocast)")
    ap.add_argument("--no-channels-last", action="store_true")
    ap.add_argument("--bench", type=int, default=0, help="time this many training steps, print sec/epoch, exit")
    ap.add_argument("--resume", action="store_true", help="continue from <out>/last.pth")
    start = ap.add_mutually_exclusive_group()
    start.add_argument("--init", type=Path, help="start from these weights, a checkpoint (.pth) or a model directory "
                                              "(a second cycle: new optimizer and schedule)")
    start.add_argument("--grow-from", type=Path, help="start from a shallower model of the same widths (checkpoint or "
                                                   "model directory); the blocks it lacks start as identities")
    ap.add_argument("--progressive", default="",
                    help="e.g. 0.3:16,0.55:24 = train on 16x16 downscaled crops until 30%% of the run, 24x24 until 55%%, then 32x32")
    ap.add_argument("--time-budget-min", type=float, default=0.0,
                    help="train for this many wall-clock minutes instead of --epochs: the one-cycle schedule follows "
                         "elapsed/budget, so the run anneals fully and ends on time however much CPU it gets")
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    bf16 = not args.no_bf16
    memory_format = torch.preserve_format if args.no_channels_last else torch.channels_last

    blob, train_items, val_items = load_cache(args.data, args.cache, args.val_per_class, args.seed)
    xt, yt, xv, yv = blob["xt"], blob["yt"], blob["xv"], blob["yv"]

    config = model_config(args)
    model = CBAMResNet(config)
    params = sum(p.numel() for p in model.parameters())
    macs = multiply_adds(model.eval(), torch.zeros(1, 3, 32, 32))  # one 32x32 image
    model = model.to(memory_format=memory_format)
    print(f"model {config['widths']} x {config['layers']}: {params / 1e6:.3f} M params, {macs / 1e6:.1f} M MACs", flush=True)

    steps_per_epoch = len(xt) // args.batch_size  # drop the last partial batch
    decay, no_decay = [], []
    for n, p in model.named_parameters():
        (no_decay if p.ndim <= 1 else decay).append(p)
    opt = torch.optim.SGD([{"params": decay, "weight_decay": args.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
                          lr=args.lr, momentum=args.momentum, nesterov=True)
    total_steps = max(args.epochs * steps_per_epoch, 1)
    budget_s = args.time_budget_min * 60.0
    t_start = time.time()

    def progress(step_index: int) -> float:
        """Fraction of the run done: by wall clock under a time budget, else by steps."""
        if budget_s > 0:
            return min((time.time() - t_start) / budget_s, 1.0)
        return min(step_index / total_steps, 1.0)

    def one_cycle(p: float) -> float:
        """Linear warm-up from lr/10 to lr over pct_start, then cosine down to lr/1000."""
        if p < args.pct_start:
            return args.lr * (0.1 + 0.9 * p / args.pct_start)
        q = (p - args.pct_start) / (1.0 - args.pct_start)
        return args.lr * (0.001 + 0.999 * 0.5 * (1.0 + math.cos(math.pi * q)))

    state = {"step": 0, "lr": one_cycle(0.0)}
    criterion = nn.CrossEntropyLoss(label_smoothing=args.label_smoothing)
    g = torch.Generator().manual_seed(args.seed)

    sizes = [(float(p), int(px)) for p, px in (item.split(":") for item in args.progressive.split(","))] if args.progressive else []

    def train_size() -> int:
        """Progressive resizing: cheap low-resolution steps early, full 32x32 for the rest of the run."""
        p = progress(state["step"])
        return next((px for until, px in sizes if p < until), 32)

    def step(xb_u8: torch.Tensor, yb: torch.Tensor) -> float:
        xb = normalize(augment(xb_u8, g))
        if args.cutout:
            xb = cutout(xb, args.cutout, g)
        size = train_size()
        if size != 32:
            xb = F.interpolate(xb, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
        xb = xb.contiguous(memory_format=memory_format)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            out = model(xb)
        loss = criterion(out.float(), yb)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        state["step"] += 1
        state["lr"] = one_cycle(progress(state["step"]))
        for group in opt.param_groups:
            group["lr"] = state["lr"]
        return loss.item()

    if args.bench:
        model.train()
        perm = torch.randperm(len(xt), generator=g)
        step(xt[perm[:args.batch_size]], yt[perm[:args.batch_size]])  # warm-up (oneDNN primitive creation)
        t0 = time.time()
        for k in range(args.bench):
            idx = perm[(k + 1) * args.batch_size:(k + 2) * args.batch_size]
            step(xt[idx], yt[idx])
        dt = (time.time() - t0) / args.bench
        print(json.dumps({"widths": config["widths"], "layers": config["layers"], "bf16": bf16,
                          "channels_last": not args.no_channels_last, "batch": args.batch_size,
                          "sec_per_step": round(dt, 3), "sec_per_epoch": round(dt * steps_per_epoch, 1),
                          "params": params, "macs": macs}), flush=True)
        return

    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "split.json").write_text(json.dumps({"seed": args.seed, "val_per_class": args.val_per_class,
                                                     "val": [rel for rel, _ in val_items]}, indent=0))
    log_path = args.out / "log.jsonl"
    start_epoch = 0
    if args.resume and (args.out / "last.pth").exists():
        ck = torch.load(args.out / "last.pth")
        model.load_state_dict(ck["state_dict"])
        opt.load_state_dict(ck["optimizer"])
        state["step"] = ck["step"]
        g.set_state(ck["generator"])
        start_epoch = ck["epoch"]
    elif args.init:
        init_weights(model, args.init)
    elif args.grow_from:
        new_blocks = grow_from(model, args.grow_from)
        print(f"grown from {args.grow_from}: new identity blocks {', '.join(new_blocks)}", flush=True)
    run_info = {"command": " ".join(sys.argv), "params": params, "macs": macs, "steps_per_epoch": steps_per_epoch,
                "train_images": len(xt), "val_images": len(xv), "bf16": bf16}
    (args.out / "run.json").write_text(json.dumps(run_info, indent=2))

    t_start = time.time()
    for group in opt.param_groups:
        group["lr"] = state["lr"]
    epoch = start_epoch
    done = False
    while not done:
        model.train()
        t0 = time.time()
        perm = torch.randperm(len(xt), generator=g)
        total, seen = 0.0, 0
        for k in range(steps_per_epoch):
            idx = perm[k * args.batch_size:(k + 1) * args.batch_size]
            total += step(xt[idx], yt[idx]) * len(idx)
            seen += len(idx)
            if state["step"] % 25 == 0:
                print(f"step {state['step']} loss {total / seen:.4f} lr {state['lr']:.4f} "
                      f"progress {progress(state['step']):.3f} size {train_size()} wall {time.time() - t_start:.0f}s", flush=True)
            if progress(state["step"]) >= 1.0:
                break
        done = progress(state["step"]) >= 1.0
        train_time = time.time() - t0
        acc, vloss = evaluate(model, xv, yv)
        epoch += 1
        record = {"epoch": round(epoch - 1 + seen / (steps_per_epoch * args.batch_size), 3),
                  "step": state["step"], "train_loss": round(total / seen, 4), "val_loss": round(vloss, 4),
                  "val_acc": round(acc, 4), "lr": round(state["lr"], 5), "epoch_sec": round(train_time, 1),
                  "wall_sec": round(time.time() - t_start, 1)}
        print(json.dumps(record), flush=True)
        with open(log_path, "a") as f:
            f.write(json.dumps(record) + "\n")
        ck = {"state_dict": model.state_dict(), "config": config, "epoch": epoch, "step": state["step"], "val_acc": acc,
              "optimizer": opt.state_dict(), "generator": g.get_state()}
        torch.save(ck, args.out / "last.pth.tmp")
        os.replace(args.out / "last.pth.tmp", args.out / "last.pth")


if __name__ == "__main__":
    main()
