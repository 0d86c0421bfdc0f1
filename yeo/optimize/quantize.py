"""INT8 post-training quantization with onnxruntime (QDQ), with an accuracy-aware fallback.

Defaults follow what was measured on this CPU: uint8 activations with per-channel int8 weights
(signed int8 activations ran ~2x slower than FP32 here), and the Detect tail (decode, concat,
DFL, sigmoid) kept FP32 - quantizing its final Concat shares one scale between box pixels and
0-1 scores, and mAP collapses to 0. Calibration images come from the train split only.
"""

from __future__ import annotations

import logging
import random
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
from PIL import Image

from edge.preprocess import preprocess
from yeo.errors import ConfigError

log = logging.getLogger(__name__)
Exclude = Literal["none", "tail", "head"]


@dataclass(frozen=True)
class QuantRecipe:
    """One quantization configuration; the fallback list tries several in order."""

    name: str
    calibrate: str = "percentile"  # minmax | percentile | entropy
    per_channel: bool = True
    exclude: Exclude = "tail"  # none | tail (Detect decode) | head (all of Detect)
    activation: str = "u8"  # u8 | s8
    percentile: float = 99.999

    def __post_init__(self) -> None:
        if self.calibrate not in ("minmax", "percentile", "entropy"):
            raise ConfigError(f"quant recipe {self.name}: unknown calibration {self.calibrate!r}")
        if self.exclude not in ("none", "tail", "head"):
            raise ConfigError(f"quant recipe {self.name}: exclude must be none, tail or head")

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


DEFAULT_RECIPES: tuple[QuantRecipe, ...] = (
    QuantRecipe("u8-percentile-perchannel-tail"),
    QuantRecipe("u8-minmax-perchannel-tail", calibrate="minmax"),
    QuantRecipe("u8-entropy-perchannel-tail", calibrate="entropy"),
    QuantRecipe("u8-percentile-perchannel-head", exclude="head"),
    QuantRecipe("u8-minmax-pertensor-head", calibrate="minmax", per_channel=False, exclude="head"),
)


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
    )  # fmt: skip

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
        reader = ImageCalibrationReader(images, imgsz, model.graph.input[0].name)
        tmp_out = Path(tmp) / "int8.onnx"
        quantize_static(
            str(prepped), str(tmp_out), reader, quant_format=QuantFormat.QDQ,
            activation_type=act, weight_type=QuantType.QInt8, per_channel=recipe.per_channel,
            calibrate_method=method, nodes_to_exclude=exclude, extra_options=extra,
        )  # fmt: skip
        finish(tmp_out, model, out, recipe.as_dict())
    return out


@dataclass
class QuantTrial:
    recipe: dict[str, Any]
    path: str
    map50_95: float
    drop: float
    p50_ms: float
    passed: bool


def quantize_within_budget(
    fp32: Path, out_dir: Path, recipes: list[QuantRecipe], images: list[Path], imgsz: int,
    score: Any, latency: Any, reference_map: float, max_drop: float,
) -> tuple[Path, list[QuantTrial]]:  # fmt: skip
    """Try ``recipes`` in order until one keeps mAP50-95 within ``max_drop`` of the reference.

    ``score(path) -> mAP50-95`` is the project's evaluator and ``latency(path) -> p50 ms`` its
    latency harness. Returns the first passing model, or the most accurate one if none passes
    (every trial is returned for the record).
    """
    trials: list[QuantTrial] = []
    for recipe in recipes:
        path = quantize(fp32, out_dir / f"{recipe.name}.onnx", recipe, images, imgsz)
        m = score(path)
        drop = reference_map - m
        trial = QuantTrial(recipe.as_dict(), str(path), m, drop, latency(path), drop <= max_drop)
        trials.append(trial)
        log.info("INT8 %s: mAP50-95 %.4f (drop %+.4f), p50 %.2f ms -> %s", recipe.name, m, drop,
                 trial.p50_ms, "pass" if trial.passed else "over budget")  # fmt: skip
        if trial.passed:
            return path, trials
    best = max(trials, key=lambda t: t.map50_95)
    return Path(best.path), trials


def calibration_method(name: str) -> Any:
    """onnxruntime's CalibrationMethod for a recipe's ``calibrate`` name."""
    from onnxruntime.quantization import CalibrationMethod

    return {"minmax": CalibrationMethod.MinMax, "percentile": CalibrationMethod.Percentile,
            "entropy": CalibrationMethod.Entropy}[name]  # fmt: skip


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


def autotune_inc(
    fp32: Path, out: Path, recipes: list[QuantRecipe], images: list[Path], imgsz: int,
    score: Any, reference_map: float, max_drop: float,
) -> tuple[Path | None, list[dict[str, Any]]]:  # fmt: skip
    """Intel Neural Compressor's (ONNX line) accuracy-aware ``autotune`` over ``recipes``.

    Its eval function is ``score`` (the project's evaluator); its criterion is the absolute
    ``max_drop`` expressed as INC's relative ``tolerable_loss``. Returns the model it picks
    (None if no recipe met the budget) and one record per evaluation.
    """
    import onnx
    import onnxruntime as ort
    from onnx_neural_compressor import data_reader
    from onnx_neural_compressor.quantization import config, tuning
    from onnxruntime.quantization import QuantFormat, QuantType

    source = onnx.load(str(fp32))
    base_reader = ImageCalibrationReader(images, imgsz, source.graph.input[0].name)

    class Reader(data_reader.CalibrationDataReader):
        def get_next(self) -> dict[str, np.ndarray] | None:
            return base_reader.get_next()

        def rewind(self) -> None:
            base_reader.rewind()

    reader = Reader()
    configs = [
        config.StaticQuantConfig(
            calibration_data_reader=reader,
            calibrate_method=calibration_method(r.calibrate),
            quant_format=QuantFormat.QDQ,
            activation_type=QuantType.QUInt8 if r.activation == "u8" else QuantType.QInt8,
            weight_type=QuantType.QInt8,
            per_channel=r.per_channel,
            nodes_to_exclude=excluded_nodes(source, r.exclude),
            extra_options={"CalibPercentile": r.percentile},
            execution_provider="CPUExecutionProvider",
        )
        for r in recipes
    ]
    records: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="yeo-inc-") as tmp:

        def eval_fn(model_path: str) -> float:
            candidate = finish(Path(model_path), source, Path(tmp) / "candidate.onnx", None)
            m = score(candidate)
            records.append({"evaluation": len(records), "map50_95": m})
            return m

        tolerable = max_drop / reference_map if reference_map > 0 else 0.0
        best = tuning.autotune(
            str(fp32), tuning.TuningConfig(config_set=configs, tolerable_loss=tolerable,
                                           max_trials=len(configs)),
            eval_fn=eval_fn, calibration_data_reader=reader,
            optimization_level=ort.GraphOptimizationLevel.ORT_DISABLE_ALL,  # keep node names
        )  # fmt: skip
        if best is None:
            return None, records
        raw = Path(tmp) / "best.onnx"
        onnx.save(best, str(raw))
        finish(raw, source, out, {"backend": "inc-autotune"})
    return out, records
