"""One device for a module, wherever it lives.

Every tensor the project feeds a torch module it did not get from a data loader (example
inputs for counting, tracing, pruning, gradients) is made here, on the module's own device:
after fine-tuning on CUDA the module stays there, and a CPU tensor fed to it fails.
"""

from __future__ import annotations

import torch
from torch import nn


def module_device(module: nn.Module) -> torch.device:
    """The device of the module's first parameter (or buffer); CPU for an empty module."""
    for tensor in (*module.parameters(), *module.buffers()):
        return tensor.device
    return torch.device("cpu")


def example_input(
    module: nn.Module, imgsz: int, batch: int = 1, random: bool = False
) -> torch.Tensor:
    """A ``(batch, 3, imgsz, imgsz)`` image batch on ``module``'s device (zeros or N(0, 1))."""
    make = torch.randn if random else torch.zeros
    return make(batch, 3, imgsz, imgsz, device=module_device(module))
