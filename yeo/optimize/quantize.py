"""INT8 post-training quantization with onnxruntime (QDQ) following one recipe.

Defaults follow what was measured on this CPU: uint8 activations with per-channel int8 weights
(signed int8 activations ran ~2x slower than FP32 here), and the Detect tail (decode, concat,
DFL, sigmoid) kept FP32 - quantizing its final Concat shares one scale between box pixels and
0-1 scores, and mAP collapses to 0. Calibration images come from the train split only. The
recipes are in :mod:`yeo.optimize.recipes`; a portable recipe's model is checked with
:func:`yeo.optimize.portability.pair_overflows` before it is written.
"""

from __future__ import annotations

import logging
import random
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from edge.preprocess import preprocess
from yeo.errors import ConfigError
from yeo.optimize.portability import pair_overflows, pairsafe_overrides
from yeo.optimize.recipes import Exclude, QuantRecipe

log = logging.getLogger(__name__)


def detect_prefix(model: Any) -> str:
    """Name prefix of the Detect module's nodes (``/model.22/`` for YOLOv8n)."""
    for node in model.graph.node:
        if "/dfl/" in node.name:
            return node.name.split("/dfl/")[0] + "/"
    raise ConfigError("no DFL node found: not an ultralytics YOLOv8 detection export")


def excluded_nodes(model: Any, exclude: Exclude) -> list[str]:
    """Nodes kept FP32: none, the Detect tail (all but its conv branches), or all of Detect."""
    if exclude == "none":
        return []
    prefix = detect_prefix(model)
    nodes = [n.name for n in model.graph.node if n.name.startswith(prefix)]
    if exclude == "head":
        return nodes
    return [n for n in nodes if "/cv2." not in n and "/cv3." not in n]


class ImageCalibrationReader:
    """A re-iterable onnxruntime CalibrationDataReader over letterboxed images."""

    def __init__(self, images: list[Path], imgsz: int, input_name: str) -> None:
        self.images, self.imgsz, self.input_name = images, imgsz, input_name
        self._it = iter(self.images)

    def get_next(self) -> dict[str, np.ndarray] | None:
        path = next(self._it, None)
        if path is None:
            return None
        return {self.input_name: preprocess(Image.open(path), self.imgsz)[0]}

    def rewind(self) -> None:
        self._it = iter(self.images)


def calibration_images(train_images: list[Path], count: int, seed: int) -> list[Path]:
    """``count`` images drawn (seeded) from the train split."""
    if not train_images:
        raise ConfigError("calibration needs train images; the train split is empty")
    pool = sorted(train_images)
    random.Random(seed).shuffle(pool)
    return pool[: min(count, len(pool))]


def quantize(fp32: Path, out: Path, recipe: QuantRecipe, images: list[Path], imgsz: int) -> Path:
    """Static QDQ quantization of ``fp32`` into ``out`` following ``recipe``."""
    import onnx
    from onnxruntime.quantization import (
        QuantFormat,
        QuantType,
        quant_pre_process,
        quantize_static,
    )

    model = onnx.load(str(fp32))
    exclude = excluded_nodes(model, recipe.exclude)
    method = calibration_method(recipe.calibrate)
    act = QuantType.QUInt8 if recipe.activation == "u8" else QuantType.QInt8
    extra: dict[str, Any] = {"CalibPercentile": recipe.percentile}
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="yeo-quant-") as tmp:
        prepped = Path(tmp) / "prepped.onnx"
        try:
            quant_pre_process(str(fp32), str(prepped), skip_symbolic_shape=True)
        except Exception as e:  # pre-processing is an optimization; quantize the raw model
            log.warning("quant_pre_process failed (%s); quantizing the model as exported", e)
            prepped = fp32
        if recipe.weights == "pairsafe":
            extra["TensorQuantOverrides"] = pairsafe_overrides(
                onnx.load(str(prepped)), recipe.per_channel
            )
        reader = ImageCalibrationReader(images, imgsz, model.graph.input[0].name)
        tmp_out = Path(tmp) / "int8.onnx"
        quantize_static(
            str(prepped),
            str(tmp_out),
            reader,
            quant_format=QuantFormat.QDQ,
            activation_type=act,
            weight_type=QuantType.QInt8,
            per_channel=recipe.per_channel,
            reduce_range=recipe.weights == "7bit",
            calibrate_method=method,
            nodes_to_exclude=exclude,
            extra_options=extra,
        )
        if recipe.portable and (overflows := pair_overflows(onnx.load(str(tmp_out)))):
            raise RuntimeError(f"INT8 recipe {recipe.name} is not saturation-free: {overflows[0]}")
        finish(tmp_out, model, out, recipe.as_dict() | {"portable": recipe.portable})
    return out


def calibration_method(name: str) -> Any:
    """onnxruntime's CalibrationMethod for a recipe's ``calibrate`` name."""
    from onnxruntime.quantization import CalibrationMethod

    return {
        "minmax": CalibrationMethod.MinMax,
        "percentile": CalibrationMethod.Percentile,
        "entropy": CalibrationMethod.Entropy,
    }[name]


def finish(model_path: Path, source: Any, out: Path, quantization: dict[str, Any] | None) -> Path:
    """Save ``model_path`` as one file at ``out`` carrying ``source``'s metadata_props (the
    ultralytics names/imgsz/stride) plus, if given, the quantization recipe."""
    import onnx

    m = onnx.load(str(model_path))  # pulls external data stored beside it
    del m.metadata_props[:]
    m.metadata_props.extend(source.metadata_props)
    if quantization is not None:
        entry = m.metadata_props.add()
        entry.key, entry.value = "quantization", str(quantization)
    out.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(m, str(out))
    return out


# the weight-only recipe's record in the model's metadata (its ``quantization`` entry)
WEIGHTS_ONLY = {"name": "w8-perchannel-weights", "weights_only": True, "weights": "s8"}


def quantize_weights(fp32: Path, out: Path) -> Path:
    """``fp32`` with every Conv's weights stored as symmetric per-output-channel int8 behind a
    DequantizeLinear, activations left in float: the file about 4x smaller, the arithmetic
    unchanged. OpenVINO folds the dequantization in at compile time and runs the model as fast
    as the FP32 file (in bf16 on AMX CPUs); onnxruntime dequantizes at every run (measured
    slower than FP32), so this variant is scored and timed on OpenVINO only.

    Hand-wired because onnxruntime.quantization's weight-only path (MatMulNBits) covers MatMul
    only; the scales and int8 values are onnxruntime's own (``quantize_data``)."""
    import onnx

    model = onnx.load(str(fp32))
    if not int8_conv_weights(model):
        raise ValueError(f"{fp32}: no Conv with its own weights to quantize")
    onnx.checker.check_model(model)
    with tempfile.TemporaryDirectory(prefix="yeo-w8-") as tmp:
        tmp_out = Path(tmp) / "w8.onnx"
        onnx.save(model, str(tmp_out))
        finish(tmp_out, model, out, WEIGHTS_ONLY)
    return out


def stem_convs(model: Any) -> list[str]:
    """The Conv nodes that read the graph's input (the image) directly."""
    inputs = {i.name for i in model.graph.input}
    return [n.name for n in model.graph.node if n.op_type == "Conv" and n.input[0] in inputs]


def int8_conv_weights(model: Any) -> int:
    """In place: each Conv whose weights are its own float initializer gets them as symmetric
    per-output-channel int8 behind a DequantizeLinear (onnxruntime's ``quantize_data``
    values); how many Convs it changed."""
    from onnx import TensorProto, helper, numpy_helper
    from onnxruntime.quantization.quant_utils import quantize_data

    graph = model.graph
    weights = {i.name: i for i in graph.initializer}
    users = Counter(name for node in graph.node for name in node.input)
    nodes = []
    for node in graph.node:
        name = node.input[1] if node.op_type == "Conv" else None
        if name in weights and users[name] == 1:
            w = numpy_helper.to_array(weights[name])
            per_channel = [quantize_data(c.ravel(), TensorProto.INT8, True) for c in w]
            q = np.stack([np.asarray(v, np.int8) for _, _, v in per_channel]).reshape(w.shape)
            scale = np.array([float(s) for _, s, _ in per_channel], np.float32)
            graph.initializer.remove(weights[name])
            graph.initializer.extend(
                [
                    numpy_helper.from_array(q, f"{name}_int8"),
                    numpy_helper.from_array(scale, f"{name}_scale"),
                    numpy_helper.from_array(np.zeros(len(scale), np.int8), f"{name}_zero"),
                ]
            )
            dq = [f"{name}_int8", f"{name}_scale", f"{name}_zero"]
            nodes.append(helper.make_node("DequantizeLinear", dq, [name], f"{name}_dq", axis=0))
        nodes.append(node)
    changed = len(nodes) - len(graph.node)
    del graph.node[:]
    graph.node.extend(nodes)
    return changed


# the NNCF recipe's record in the model's metadata (its ``quantization`` entry); the preset is
# ultralytics' own for its OpenVINO INT8 export (symmetric weights, asymmetric activations)
NNCF_INT8 = {
    "name": "nncf-mixed-minmax",
    "backend": "nncf",
    "activation": "u8",
    "weights": "nncf",
    "per_channel": True,
    "calibrate": "minmax",
    "exclude": "head+stem",
    "head_weights": "s8",
    "overflow_fix": "enable",
    "portable": True,
}


def quantize_nncf(fp32: Path, out: Path, images: list[Path], imgsz: int) -> Path:
    """INT8 of ``fp32`` by NNCF's post-training quantization (its ONNX backend, CPU target):
    QDQ placed and parameterized the way OpenVINO's CPU plugin fuses it, calibrated on
    ``images`` (the train images our recipes use). The Detect head's activations stay float
    (on the converged base's pruned model, val -0.0068 below its FP32 file with this recipe,
    against -0.0089 with only the decode tail float; no measurable speed cost on OpenVINO),
    and so do the stem's (:func:`stem_convs`, the convs that read the image: on the converged
    base, val -0.0055 / -0.0059 below the FP32 files of the base / pruned model with the stem
    INT8, +0.0002 / -0.0004 with it float, at the same speed); their Conv weights are int8
    (:func:`int8_conv_weights`, as the ``_w8`` files), so the file stays about 4x smaller.
    OpenVINO runs it as INT8; onnxruntime runs it slower than the FP32 file (its pattern is
    not onnxruntime's), so it is scored and timed on OpenVINO only."""
    import nncf
    import onnx
    from nncf.quantization.advanced_parameters import AdvancedQuantizationParameters, OverflowFix

    logging.getLogger("nncf").setLevel(logging.WARNING)  # not a line per node it leaves alone
    model = onnx.load(str(fp32))
    reader = ImageCalibrationReader(images, imgsz, model.graph.input[0].name)
    quantized = nncf.quantize(
        model,
        nncf.Dataset(list(iter(reader.get_next, None))),
        preset=nncf.QuantizationPreset.MIXED,
        target_device=nncf.TargetDevice.CPU,
        subset_size=len(images),
        ignored_scope=nncf.IgnoredScope(
            names=excluded_nodes(model, "head") + stem_convs(model), validate=False
        ),
        # 7-bit weights in every layer: no int16 saturation on CPUs without VNNI, so the file
        # gives the same outputs on every x86 CPU (the bundle refuses one that would not)
        advanced_parameters=AdvancedQuantizationParameters(overflow_fix=OverflowFix.ENABLE),
    )
    int8_conv_weights(quantized)  # the head's, which NNCF left float
    with tempfile.TemporaryDirectory(prefix="yeo-nncf-") as tmp:
        tmp_out = Path(tmp) / "nncf.onnx"
        onnx.save(quantized, str(tmp_out))
        finish(tmp_out, model, out, NNCF_INT8 | {"nncf": nncf.__version__})
    return out
