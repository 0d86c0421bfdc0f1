"""INT8-friendly activations: swap YOLOv8's SiLU for ReLU, ReLU6 or LeakyReLU (speed lever 2).

After static quantization, SiLU runs as two lookup passes over every activation
(QLinearSigmoid + QLinearMul) while a ReLU/ReLU6 after a conv costs nothing: the quantizer
folds it into the conv's output range (onnxruntime's QDQ removable activations). LeakyReLU is
one lookup pass. The swapped model must be fine-tuned to recover (with distillation from the
SiLU model, :func:`yeo.optimize.finetune.finetune`).
"""

from __future__ import annotations

from torch import nn

from yeo.optimize.settings import ACTIVATIONS

HYBRID_LAYERS = 5  # the stem and the stride-4/8 stages (model.0-4): most activations by area


def _make(kind: str) -> nn.Module:
    return {
        "relu": lambda: nn.ReLU(inplace=True),
        "relu6": lambda: nn.ReLU6(inplace=True),
        "leakyrelu": lambda: nn.LeakyReLU(0.1, inplace=True),
    }[kind]()


def swap_activation(model: nn.Module, kind: str) -> int:
    """Replace the SiLU of every conv block of ``model`` (an ultralytics DetectionModel) by
    ``kind``, in place; ``hybrid``: ReLU in the high-resolution stages only. The number of
    activations replaced (0 for ``silu``)."""
    if kind not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {', '.join(ACTIVATIONS)}, got {kind!r}")
    if kind == "silu":
        return 0
    layers = list(model.model)  # ultralytics' sequential layer list
    if kind == "hybrid":
        layers, kind = layers[:HYBRID_LAYERS], "relu"
    count = 0
    for layer in layers:
        for module in layer.modules():
            if isinstance(getattr(module, "act", None), nn.SiLU):
                module.act = _make(kind)
                count += 1
    return count


def activation_names(model: nn.Module) -> dict[str, int]:
    """How many conv blocks of ``model`` use each activation type (ultralytics' convs share
    one SiLU instance, so blocks are counted, not modules)."""
    found: dict[str, int] = {}
    for m in model.modules():
        act = getattr(m, "act", None)
        if isinstance(act, nn.Module) and not isinstance(act, nn.Identity):
            found[type(act).__name__] = found.get(type(act).__name__, 0) + 1
    return found
