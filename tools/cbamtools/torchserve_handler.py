"""A TorchServe handler for a cbam-serve model directory, so that both servers answer with the same model.

It is archived into a .mar by tools/bench_peers.py together with this package and the model directory's files
(config.json, model.safetensors, labels.txt), and loads them from the archive: the reference PyTorch CBAM-ResNet
(cbamtools.model) with the directory's weights, and PIL + torchvision preprocessing from config.json (EXIF
orientation applied when the config asks for it, as cbam-serve does). Each request is one JPEG or PNG body; the
answer is the top 5 classes as JSON, `[{"index", "label", "probability"}, ...]`, like cbam-serve's predictions.
"""
from __future__ import annotations

import io
import json
import os
from pathlib import Path

import torch
from PIL import Image, ImageOps

TOP_K = 5


class CBAMHandler:
    """TorchServe's handler protocol: `initialize(context)` once per worker, then `handle(batch, context)`."""

    def initialize(self, context) -> None:
        from cbamtools.config import read_labels
        from cbamtools.model import load_model_directory

        model_dir = Path(context.system_properties["model_dir"])
        torch.set_num_threads(int(os.environ.get("CBAM_TORCH_THREADS", "1")))
        self.model, self.preprocess, config = load_model_directory(model_dir)
        self.exif_transpose = config["input"].get("exif_transpose", False)
        self.labels = read_labels(model_dir)
        self.initialized = True

    def _image(self, row: dict) -> Image.Image:
        body = row.get("data") or row.get("body")
        image = Image.open(io.BytesIO(body))
        if self.exif_transpose:
            image = ImageOps.exif_transpose(image)
        return image.convert("RGB")

    def handle(self, data: list[dict], context) -> list[str]:
        batch = torch.stack([self.preprocess(self._image(row)) for row in data])
        with torch.inference_mode():
            probabilities = torch.softmax(self.model(batch), dim=1)
        top = probabilities.topk(min(TOP_K, probabilities.shape[1]), dim=1)
        return [json.dumps([{"index": int(i), "label": self.labels[int(i)], "probability": float(p)}
                            for p, i in zip(values, indices)])
                for values, indices in zip(top.values.tolist(), top.indices.tolist())]


_service = CBAMHandler()


def handle(data, context):
    """TorchServe's module-level entry point: initialises the handler on first use."""
    if not getattr(_service, "initialized", False):
        _service.initialize(context)
    if data is None:
        return None
    return _service.handle(data, context)
