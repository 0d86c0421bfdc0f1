"""INT8 post-training quantization with onnxruntime (QDQ), with an accuracy-aware fallback.

Defaults follow what was measured on this CPU: uint8 activations with per-channel int8 weights
(signed int8 activations ran ~2x slower than FP32 here), and the Detect tail (decode, concat,
DFL, sigmoid) kept FP32 - quantizing its final Concat shares one scale between box pixels and
0-1 scores, and mAP collapses to 0. Calibration images come from the train split only.

Portability: onnxruntime's u8 x s8 kernels on x86 CPUs without VNNI (AVX2, AVX512BW) multiply
with ``vpmaddubsw``, which adds each pair of adjacent products into a *saturating* int16. A
pair saturates when ``255 * (|w0| + |w1|) > 32767``, i.e. ``|w0| + |w1| > 128``; CPUs with VNNI
accumulate in int32 and never do. A model with such pairs therefore gives other outputs (and
another mAP) on an AVX2 machine than on a VNNI one. Every default recipe is saturation-free:

- ``pairsafe`` (default): per channel, the scale is set so that the two largest |w| together
  quantize to at most 128 (``scale = (t1 + t2) / 127``): any pair of that channel fits int16.
  Channels whose largest weight stands out keep more than 7 bits of resolution.
- ``7bit``: onnxruntime's ``reduce_range`` (weights in [-64, 64]), the textbook answer.
- ``full``: 8-bit weights, fastest to reason about on VNNI but CPU-dependent; opt-in only.

:func:`pair_overflows` checks a quantized model statically (every channel's top-two |q| sum).
"""

from __future__ import annotations

import logging
import random
import shutil
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
from PIL import Image

from edge.preprocess import preprocess
from yeo.errors import ConfigError
from yeo.optimize.export import onnx_metadata

log = logging.getLogger(__name__)
Exclude = Literal["none", "tail", "head"]
WEIGHT_RANGES = ("pairsafe", "7bit", "full")
PAIR_LIMIT = 128  # 255 * 128 = 32640 <= 32767: the largest |w0| + |w1| that cannot saturate


@dataclass(frozen=True)
class QuantRecipe:
    """One quantization configuration; the fallback list tries several in order."""

    name: str
    calibrate: str = "percentile"  # minmax | percentile | entropy
    per_channel: bool = True
    exclude: Exclude = "tail"  # none | tail (Detect decode) | head (all of Detect)
    activation: str = "u8"  # u8 | s8
    percentile: float = 99.999
    weights: str = "pairsafe"  # pairsafe | 7bit | full (see the module docstring)

    @property
    def portable(self) -> bool:
        """Outputs identical on every x86 CPU kind (no int16 saturation possible)."""
        return self.weights != "full"

    def __post_init__(self) -> None:
        if self.calibrate not in ("minmax", "percentile", "entropy"):
            raise ConfigError(f"quant recipe {self.name}: unknown calibration {self.calibrate!r}")
        if self.exclude not in ("none", "tail", "head"):
            raise ConfigError(f"quant recipe {self.name}: exclude must be none, tail or head")
        if self.weights not in WEIGHT_RANGES:
            raise ConfigError(f"quant recipe {self.name}: weights must be one of {WEIGHT_RANGES}")

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


DEFAULT_RECIPES: tuple[QuantRecipe, ...] = (
    QuantRecipe("u8-percentile-perchannel-tail"),
    QuantRecipe("u8-minmax-perchannel-tail", calibrate="minmax"),
    QuantRecipe("u8-entropy-perchannel-tail", calibrate="entropy"),
    QuantRecipe("u8-percentile-perchannel-head", exclude="head"),
    QuantRecipe("u8-minmax-pertensor-head", calibrate="minmax", per_channel=False, exclude="head"),
)
# opt-in variants of the first recipe, by weight range (``full`` is CPU-dependent)
EXTRA_RECIPES: tuple[QuantRecipe, ...] = (
    QuantRecipe("u8-percentile-perchannel-tail-7bit", weights="7bit"),
    QuantRecipe("u8-percentile-perchannel-tail-w8full", weights="full"),
)


def _conv_weights(model: Any) -> dict[str, tuple[np.ndarray, int]]:
    """Float weight initializers of Conv/MatMul/Gemm nodes (the ones quantized to int8), each
    with its output-channel axis (see :func:`channel_axis`)."""
    from onnx import numpy_helper

    inits = {t.name: t for t in model.graph.initializer}
    return {
        n.input[1]: (numpy_helper.to_array(inits[n.input[1]]), channel_axis(n))
        for n in model.graph.node
        if n.op_type in ("Conv", "MatMul", "Gemm") and len(n.input) > 1 and n.input[1] in inits
    }


# where each op takes its int8 weight, among its inputs
WEIGHT_INPUT = {
    "Conv": 1, "MatMul": 1, "Gemm": 1, "ConvInteger": 1, "MatMulInteger": 1,
    "QLinearConv": 3, "QLinearMatMul": 3,
}  # fmt: skip


def channel_axis(node: Any) -> int:
    """The output-channel axis of ``node``'s weight; the other axes are summed over. Conv
    weights are ``[M, C, kh, kw]`` (axis 0); a MatMul's ``B[K, N]`` sums over K (axis 1 is
    the channel); Gemm's B is ``[N, K]`` with ``transB=1``, else ``[K, N]``."""
    if node.op_type in ("MatMul", "MatMulInteger", "QLinearMatMul"):
        return 1
    if node.op_type == "Gemm":
        trans = next((a.i for a in node.attribute if a.name == "transB"), 0)
        return 0 if trans else 1
    return 0


def channel_rows(w: np.ndarray, axis: int) -> np.ndarray:
    """``w`` as (channels, everything a channel's dot products sum over)."""
    return np.moveaxis(w, axis, 0).reshape(w.shape[axis], -1) if w.ndim > 1 else w[None]


def _top_two_sum(w: np.ndarray) -> float:
    """Sum of the two largest magnitudes of ``w`` (the worst pair it can form)."""
    flat = np.sort(np.abs(w.astype(np.float64)).ravel())
    return float(flat[-2:].sum()) if flat.size > 1 else float(flat.sum())


def pairsafe_overrides(model: Any, per_channel: bool) -> dict[str, list[dict[str, Any]]]:
    """TensorQuantOverrides giving each weight channel (or tensor) ``rmax = t1 + t2``.

    With symmetric int8 weights the scale becomes ``(t1 + t2) / 127``, so the two largest
    weights quantize to at most ``round(a) + round(b) <= 128`` where ``a + b = 127``.
    """
    overrides: dict[str, list[dict[str, Any]]] = {}
    for name, (w, axis) in _conv_weights(model).items():
        if per_channel and w.ndim > 1:
            sums = [_top_two_sum(row) or 1e-8 for row in channel_rows(w, axis)]
            overrides[name] = [{"axis": axis, "rmin": -s, "rmax": s} for s in sums]
        else:
            s = _top_two_sum(w) or 1e-8
            overrides[name] = [{"rmin": -s, "rmax": s}]
    return overrides


def pair_overflows(model: Any) -> list[str]:
    """Int8 weight tensors in which some pair could saturate onnxruntime's int16 sums on a CPU
    without VNNI: any output channel whose two largest |q| add up to more than 128. Reads QDQ
    models (DequantizeLinear into Conv/MatMul/Gemm) and QOperator ones (QLinearConv,
    QLinearMatMul, ConvInteger, MatMulInteger), each weight along its own reduction axes; an
    int8 weight it cannot place is reported, never passed unchecked."""
    from onnx import TensorProto, numpy_helper

    inits = {t.name: t for t in model.graph.initializer}
    consumers: dict[str, list[Any]] = {}
    for node in model.graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)

    def weight_use(node: Any) -> tuple[str, Any] | None:
        """(int8 weight initializer, the node that multiplies it) for a weight-bearing node."""
        if node.op_type == "DequantizeLinear":
            users = [u for u in consumers.get(node.output[0], []) if u.op_type in WEIGHT_INPUT]
            return (node.input[0], users[0] if users else None)
        if node.op_type in WEIGHT_INPUT and node.op_type not in ("Conv", "MatMul", "Gemm"):
            i = WEIGHT_INPUT[node.op_type]
            return (node.input[i], node) if len(node.input) > i else None
        return None

    bad = []
    for node in model.graph.node:
        use = weight_use(node)
        if use is None or use[0] not in inits:
            continue
        tensor, user = inits[use[0]], use[1]
        if tensor.data_type != TensorProto.INT8 or len(tensor.dims) < 2:
            continue  # int32 biases and u8 activations are not multiplied pairwise
        if user is None or (
            user.op_type in ("Conv", "MatMul", "Gemm")
            and user.input[WEIGHT_INPUT[user.op_type]] != node.output[0]
        ):
            bad.append(f"{tensor.name}: int8, not a weight this check can place (not checked)")
            continue  # fmt: skip
        q = numpy_helper.to_array(tensor).astype(np.int32)
        worst = max(_top_two_sum(row) for row in channel_rows(q, channel_axis(user)))
        if worst > PAIR_LIMIT:
            bad.append(f"{tensor.name}: |q0| + |q1| up to {worst:.0f} > {PAIR_LIMIT}")
    return bad


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


@dataclass
class QuantTrial:
    recipe: dict[str, Any]
    path: str
    map50_95: float
    drop: float
    p50_ms: float
    passed: bool


def quantize_within_budget(
    fp32: Path,
    out_dir: Path,
    recipes: list[QuantRecipe],
    images: list[Path],
    imgsz: int,
    score: Any,
    latency: Any,
    reference_map: float,
    max_drop: float,
) -> tuple[Path, list[QuantTrial]]:
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
        log.info(
            "INT8 %s: mAP50-95 %.4f (drop %+.4f), p50 %.2f ms -> %s",
            recipe.name,
            m,
            drop,
            trial.p50_ms,
            "pass" if trial.passed else "over budget",
        )
        if trial.passed:
            return path, trials
    best = max(trials, key=lambda t: t.map50_95)
    return Path(best.path), trials


@dataclass(frozen=True)
class Int8Search:
    """What an INT8 search tries and how it judges: ``recipes`` in order, calibrated on
    ``images`` at ``imgsz``; ``score(path) -> mAP50-95`` (the project's evaluator) and
    ``latency(path) -> p50 ms``; a trial passes within ``max_drop`` of the FP32 model."""

    recipes: list[QuantRecipe]
    images: list[Path]
    imgsz: int
    score: Any
    latency: Any
    max_drop: float
    backend: str = "ort"  # ort | inc (INC's autotune first)


def int8_within_budget(
    fp32: Path, work: Path, search: Int8Search
) -> tuple[Path, list[QuantTrial], float]:
    """INT8 ``fp32`` within ``max_drop`` of its own mAP50-95: INC's autotune first when
    ``backend == "inc"`` (its pick re-scored by ``score``: passed only if our own number says
    so), else or then onnxruntime's recipes in order. Returns the chosen model, every trial,
    and the FP32 reference mAP."""
    recipes, images, imgsz = search.recipes, search.images, search.imgsz
    score, latency, max_drop = search.score, search.latency, search.max_drop
    backend = search.backend
    reference = score(fp32)
    trials: list[QuantTrial] = []
    if backend == "inc":
        chosen, records, recipe = autotune_inc(
            fp32, work / "inc.onnx", recipes, images, imgsz, score, reference, max_drop
        )
        if chosen is not None and recipe is not None:
            m = score(chosen)
            portable = onnx_metadata(chosen)[0]["quantization"]["portable"]
            ok = reference - m <= max_drop and (portable or not recipe.portable)
            trial = QuantTrial(
                recipe.as_dict()
                | {"backend": "inc-autotune", "portable": portable, "evaluations": records},
                str(chosen),
                m,
                reference - m,
                latency(chosen),
                ok,
            )
            trials.append(trial)
            verdict = "pass" if ok else "over budget" if portable else "not saturation-free"
            verdict += "" if ok else ": onnxruntime recipes next"
            log.info(
                "INC picked %s: mAP50-95 %.4f (drop %+.4f) -> %s",
                recipe.name,
                m,
                trial.drop,
                verdict,
            )
            if trial.passed:
                return chosen, trials, reference
        else:
            log.info("INC found no INT8 model within the budget: onnxruntime recipes next")
    chosen, ort_trials = quantize_within_budget(
        fp32,
        work / "trials",
        recipes,
        images,
        imgsz,
        score,
        latency,
        reference_map=reference,
        max_drop=max_drop,
    )
    return chosen, trials + ort_trials, reference


def int8_into_folder(
    fp32: Path, file: str, search: Int8Search
) -> tuple[Path, list[QuantTrial], str]:
    """:func:`int8_within_budget` in a scratch folder that is removed after: the chosen model
    alone in a new folder as ``file``, every trial, and the chosen recipe's name."""
    work = Path(tempfile.mkdtemp(prefix="yeo-int8-"))
    try:
        chosen, trials, _ = int8_within_budget(fp32, work, search)
        out = Path(tempfile.mkdtemp(prefix="yeo-int8-chosen-"))
        shutil.copy(chosen, out / file)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    recipe = next((t.recipe.get("name") for t in trials if t.path == str(chosen)), None)
    return out, trials, recipe or Path(chosen).stem


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


def autotune_inc(
    fp32: Path,
    out: Path,
    recipes: list[QuantRecipe],
    images: list[Path],
    imgsz: int,
    score: Any,
    reference_map: float,
    max_drop: float,
) -> tuple[Path | None, list[dict[str, Any]], QuantRecipe | None]:
    """Intel Neural Compressor's (ONNX line) accuracy-aware ``autotune`` over ``recipes``.

    Its eval function is ``score`` (the project's evaluator); its criterion is the absolute
    ``max_drop`` expressed as INC's relative ``tolerable_loss``. Returns the model it returns
    (None if it found none), one record per evaluation, and the recipe of that model.

    INC's verdict is not trusted: its tuning monitor also stops on the last trial whatever the
    accuracy, and it calls ``exit(0)`` when nothing meets the budget (caught here). Callers
    re-score the model (:func:`quantize_int8`).
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
            reduce_range=r.portable,  # asked for; INC 1.0's autotune does not apply it (below)
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
            # evaluation 0 is INC's FP32 baseline; evaluation i > 0 is configs[i - 1]
            recipe = recipes[len(records) - 1].name if records else "fp32 baseline"
            records.append({"evaluation": len(records), "recipe": recipe, "map50_95": m})
            return m

        tolerable = max_drop / reference_map if reference_map > 0 else 0.0
        try:
            best = tuning.autotune(
                str(fp32),
                tuning.TuningConfig(
                    config_set=configs, tolerable_loss=tolerable, max_trials=len(configs)
                ),
                eval_fn=eval_fn,
                calibration_data_reader=reader,
                optimization_level=ort.GraphOptimizationLevel.ORT_DISABLE_ALL,  # node names
            )
        except SystemExit:  # INC's "found nothing" (and failed baseline) path calls exit(0)
            log.warning("INC autotune found no model within the budget (it called exit)")
            best = None
        if best is None or len(records) < 2:
            return None, records, None
        chosen = next(r for r in recipes if r.name == records[-1]["recipe"])  # last evaluated
        # INC 1.0's autotune does not apply reduce_range to the weights (seen: up to +-127),
        # so whether its model is portable is read off the model, not the recipe
        portable = not pair_overflows(best)
        raw = Path(tmp) / "best.onnx"
        onnx.save(best, str(raw))
        finish(
            raw, source, out, chosen.as_dict() | {"backend": "inc-autotune", "portable": portable}
        )
    return out, records, chosen
