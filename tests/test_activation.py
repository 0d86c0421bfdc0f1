"""Speed lever 2: INT8-friendly activations, recovered with distillation from the SiLU model."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import TINY_TRAIN
from yeo.optimize.activation import activation_names, swap_activation


def test_swap_replaces_every_conv_silu_and_hybrid_only_the_early_stages(
    trained_model: Path,
) -> None:
    from yeo.optimize.finetune import load_module

    model = load_module(trained_model)
    silu = activation_names(model)["SiLU"]
    assert swap_activation(model, "silu") == 0
    hybrid = load_module(trained_model)
    n_hybrid = swap_activation(hybrid, "hybrid")
    assert 0 < n_hybrid < silu and activation_names(hybrid)["ReLU"] == n_hybrid
    assert swap_activation(model, "relu") == silu
    assert activation_names(model) == {"ReLU": silu}
    with pytest.raises(ValueError, match="activation must be one of"):
        swap_activation(model, "gelu")


def test_relu_student_distills_exports_and_quantizes_without_activation_passes(
    trained_model: Path, onnx_model: Path, tiny_data: Path, tmp_path: Path
) -> None:
    """The swapped model trains with the distillation loss wired in (non-zero, falling),
    exports and quantizes, and onnxruntime's optimized INT8 graph has no standalone
    Relu/Sigmoid/Mul left: the ReLUs are folded into the quantized convs."""
    from edge.engine import session
    from yeo.optimize.export import export_onnx
    from yeo.optimize.finetune import finetune, load_module
    from yeo.optimize.quantize import calibration_images, quantize
    from yeo.optimize.recipes import DEFAULT_RECIPES
    from yeo.train.config import TrainConfig

    model = load_module(trained_model)
    swap_activation(model, "relu")
    cfg = TrainConfig.from_dict(TINY_TRAIN | {"imgsz": 128, "epochs": 6, "batch": 4, "lr0": 0.01})
    out = finetune(model, tiny_data, cfg, tmp_path / "ft", teacher=trained_model, distill=6.0)
    dis = [h["train/dis_loss"] for h in out.history]
    # deterministic seed; per-epoch averages are noisy on 18 images, so compare halves
    assert len(dis) == 6 and min(dis) > 0 and sum(dis[3:]) < sum(dis[:3]), dis
    assert not any(m._forward_hooks for m in model.modules())  # no distillation hooks left
    copy.deepcopy(model)  # what torch-pruning's footprint count does next
    student = load_module(out.best)
    assert set(activation_names(student)) == {"ReLU"}  # best.pt is the student, no teacher
    onnx_path = export_onnx(out.best, tmp_path / "relu.onnx", 128).path
    calib = calibration_images(
        sorted((tiny_data.parent / "images" / "train").glob("*.jpg")), 8, seed=0
    )
    silu_int8 = quantize(onnx_model, tmp_path / "silu8.onnx", DEFAULT_RECIPES[0], calib, 128)
    int8 = quantize(onnx_path, tmp_path / "int8.onnx", DEFAULT_RECIPES[0], calib, 128)
    activation_ops = {"Relu", "Sigmoid", "Mul", "QLinearSigmoid", "QLinearMul", "QLinearLeakyRelu"}
    silu_ops = [n.op_type for n in _optimized(silu_int8, tmp_path).node]
    body = _optimized(int8, tmp_path).node
    # SiLU: a sigmoid pass and a multiply pass per conv block (57 in YOLOv8n's body)
    assert silu_ops.count("QLinearSigmoid") >= 57 and silu_ops.count("QLinearMul") >= 57
    assert "QLinearConv" in {n.op_type for n in body}
    # ReLU: nothing left but the decode tail's one Sigmoid and one Mul (folded into the convs)
    leftover = [n.name for n in body if n.op_type in activation_ops]
    assert all(name.startswith("/model.22/") for name in leftover) and len(leftover) <= 2, leftover
    sess = session(int8, 1)
    x = np.zeros((1, 3, 128, 128), np.float32)
    assert sess.run(None, {sess.get_inputs()[0].name: x})[0].shape == (1, 8, 336)


def _optimized(model: Path, tmp_path: Path):
    """The graph onnxruntime actually runs for ``model`` (all CPU optimizations applied)."""
    import onnx
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.optimized_model_filepath = str(tmp_path / f"{model.stem}.optimized.onnx")
    ort.InferenceSession(str(model), opts, providers=["CPUExecutionProvider"])
    return onnx.load(opts.optimized_model_filepath).graph
