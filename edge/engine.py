"""Inference engines over one ONNX file: onnxruntime (default) and OpenVINO (when installed).

Both take a 1x3xHxW float32 tensor; ``run`` returns the model's first output, ``run_all``
every output in graph order (a model cut at its head has six).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

BACKENDS = ("onnxruntime", "openvino")


def session(
    model: Path, threads: int = 2, provider: str = "CPUExecutionProvider", optimize: bool = True
):
    """An onnxruntime session with a fixed thread count (intra-op) and sequential execution.

    ``optimize=False`` runs the graph as written: a QDQ model then executes as
    DequantizeLinear -> float Conv -> QuantizeLinear, the exact-arithmetic reference that
    onnxruntime's fused int8 kernels must match (and do not, where int16 sums saturate).
    """
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.graph_optimization_level = (
        ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if optimize
        else ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    )
    return ort.InferenceSession(str(model), opts, providers=[provider])


@dataclass
class Engine:
    """A loaded model: ``run(x)`` -> first output, ``run_all(x)`` -> all; what ran it."""

    run: Callable[[np.ndarray], np.ndarray]
    run_all: Callable[[np.ndarray], list[np.ndarray]]
    input_shape: tuple[int, ...]
    backend: str
    precision_hint: str  # what the backend was asked for ("default" = its own choice)
    metadata: dict[str, str]  # the ONNX model's metadata_props (onnxruntime only)
    input_name: str = "images"
    outputs: dict[str, tuple[int, ...]] = field(default_factory=dict)  # name -> shape
    runs: str = "as stored"  # what it computes in (OpenVINO: bf16 or f32, the device's choice)

    @property
    def output_name(self) -> str:
        return next(iter(self.outputs), "output0")

    @property
    def output_shape(self) -> tuple[int, ...]:
        return next(iter(self.outputs.values()), ())


def installed(backend: str) -> bool:
    """Whether ``backend``'s Python package is importable here."""
    import importlib.util

    return importlib.util.find_spec(backend) is not None


class ModelLoadError(ValueError):
    """The runtime refused the model file (corrupt, wrong format, bad option): one line."""


def load(
    model: Path, backend: str = "onnxruntime", threads: int = 2, precision: str | None = None
) -> Engine:
    """Load ``model`` with ``backend``. ``precision`` (OpenVINO only): None lets the device
    choose (bf16 on CPUs with AMX/AVX512-BF16, even for an FP32 model); ``f32`` forces FP32.
    Raises :class:`ModelLoadError` naming the file and the runtime's reason."""
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; choose from {', '.join(BACKENDS)}")
    try:
        return _load(Path(model), backend, threads, precision)
    except ImportError:
        raise
    except Exception as e:  # the runtimes raise their own types, often with multi-line text
        lines = [line.strip() for line in str(e).splitlines() if line.strip()]
        reason = lines[-1] if lines else type(e).__name__
        raise ModelLoadError(f"{model}: {backend} cannot load it: {reason}") from None


def _load(model: Path, backend: str, threads: int, precision: str | None) -> Engine:
    if backend == "onnxruntime":
        sess = session(model, threads)
        inp = sess.get_inputs()[0]
        name = inp.name
        shape = tuple(d if isinstance(d, int) else 1 for d in inp.shape)
        meta = dict(sess.get_modelmeta().custom_metadata_map)
        outputs = {
            o.name: tuple(d if isinstance(d, int) else -1 for d in o.shape)
            for o in sess.get_outputs()
        }
        return Engine(
            lambda x: sess.run(None, {name: x})[0],
            lambda x: sess.run(None, {name: x}),
            shape,
            backend,
            "fp32/int8 as stored",
            meta,
            name,
            outputs,
        )
    try:  # openvino
        import openvino as ov
    except ImportError:
        raise ImportError("backend openvino needs: pip install openvino") from None
    config: dict[str, object] = {"INFERENCE_NUM_THREADS": threads, "PERFORMANCE_HINT": "LATENCY"}
    if precision:
        config["INFERENCE_PRECISION_HINT"] = precision
    core = ov.Core()
    compiled = core.compile_model(openvino_model(core, model), "CPU", config)
    local = threading.local()  # an infer request is not thread-safe: one per thread (serving)

    def infer(x: np.ndarray) -> dict:
        if not hasattr(local, "request"):
            local.request = compiled.create_infer_request()
        return local.request.infer({0: x})

    shape = tuple(d.get_length() for d in compiled.input(0).get_partial_shape())
    hint = compiled.get_property("INFERENCE_PRECISION_HINT")
    hint = hint.get_type_name() if hasattr(hint, "get_type_name") else str(hint)
    return Engine(
        lambda x: infer(x)[0],
        lambda x: list(infer(x).values()),
        shape,
        backend,
        f"{precision or 'default'} (runs {hint})",
        {},
        runs=hint,
    )


def openvino_model(core, model: Path):
    """``model`` read as OpenVINO's converter reads it (``ovc``, ``openvino.convert_model``,
    which ultralytics' export and the evaluator use): the ONNX frontend, then the converter's
    offline (MOC) transformations, without the converter's usage telemetry. ``read_model``
    alone hands the CPU plugin a graph it computes wrong for NNCF's INT8 of SiLU models
    (OpenVINO 2026.4.1: top score 0.60 against 0.88 on onnxruntime and after the converter,
    in bf16 and f32 alike; tests/test_optimize.py); our QDQ and int8-weights files read the
    same either way."""
    graph = core.read_model(str(model))
    if Path(model).suffix == ".onnx":
        from openvino._offline_transformations import apply_moc_transformations

        apply_moc_transformations(graph, cf=False, smart_reshape=True)
    return graph
