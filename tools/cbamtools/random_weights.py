"""Random but well-conditioned weights for untrained reference models (engine fixtures, benchmarks), so activations
stay of order 1 as after training: no saturated sigmoids, no denormals."""
from __future__ import annotations

import math

import torch
import torch.nn as nn


def randomise(model: nn.Module, generator: torch.Generator) -> None:
    """He-initialised convs and Linears; BN affine parameters spread around 1 and 0, with the last BN of each
    block smaller (as in trained ResNets), so that residual sums stay O(1)."""
    for name, m in model.named_modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            fan_in = m.weight[0].numel()
            m.weight.data = torch.randn(m.weight.shape, generator=generator) * math.sqrt(2.0 / fan_in)
            if m.bias is not None:
                m.bias.data = torch.randn(m.bias.shape, generator=generator) * 0.1
        elif isinstance(m, nn.BatchNorm2d):
            last = name.endswith(("bn2", "bn3")) and "layer" in name
            low, high = (0.2, 0.6) if last else (0.6, 1.4)
            m.weight.data = low + (high - low) * torch.rand(m.weight.shape, generator=generator)
            m.bias.data = torch.randn(m.bias.shape, generator=generator) * 0.1


@torch.no_grad()
def measure_batchnorm(model: nn.Module, inputs: torch.Tensor) -> None:
    """Running statistics = the exact batch statistics of `inputs` (cumulative average, one batch); leaves the model
    in eval mode."""
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.reset_running_stats()
            m.momentum = None
    model.train()
    model(inputs)
    model.eval()
