"""(torch) The files of one engine parity fixture, written the same way for every generator of them
(tools/make_engine_fixtures.py, tools/make_layout_fixtures.py): what the Swift tests read.

    config.json            the model's config
    model.safetensors      its weights, under the names the fixture is about
    labels.txt             class names, when given
    input.npy              the input batch, float32 NCHW
    expected.safetensors   PyTorch's outputs for that input (logits and attention maps)
    reference.json         parameters, multiply-adds per image and the input size
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import save_file

from cbamtools.model import multiply_adds


def write_parity_fixture(directory: Path, config: dict, state: dict[str, torch.Tensor], model: torch.nn.Module,
                         x: torch.Tensor, expected: dict[str, torch.Tensor],
                         labels: list[str] | None = None) -> tuple[int, int]:
    """Writes the files above into `directory` and returns (parameters, multiply-adds per image) of `model`."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    save_file(state, directory / "model.safetensors")
    if labels:
        (directory / "labels.txt").write_text("\n".join(labels) + "\n")
    np.save(directory / "input.npy", x.numpy().astype(np.float32))
    save_file(expected, directory / "expected.safetensors")
    params = sum(p.numel() for p in model.parameters())
    macs = multiply_adds(model, x[:1])
    h, w = x.shape[2], x.shape[3]
    (directory / "reference.json").write_text(json.dumps({"parameters": params, "multiply_adds": macs,
                                                          "input_height": h, "input_width": w}) + "\n")
    return params, macs
