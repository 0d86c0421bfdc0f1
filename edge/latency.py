"""Model latency with onnxruntime: batch 1, warm-up, fixed threads, percentiles.

Imports numpy and onnxruntime only, so it runs on any box with the edge dependencies.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np


@dataclass(frozen=True)
class Latency:
    p50_ms: float
    p90_ms: float
    p99_ms: float
    mean_ms: float
    std_ms: float
    runs: int
    threads: int
    provider: str

    def as_dict(self) -> dict[str, float | int | str]:
        return asdict(self)


def session(model: Path, threads: int = 2, provider: str = "CPUExecutionProvider"):
    """An onnxruntime session with a fixed thread count (intra-op) and sequential execution."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(str(model), opts, providers=[provider])


def summarize(times_ms: list[float], threads: int, provider: str) -> Latency:
    """Percentiles, mean and spread of per-call times."""
    q = np.percentile(times_ms, [50, 90, 99])
    return Latency(
        p50_ms=float(q[0]), p90_ms=float(q[1]), p99_ms=float(q[2]),
        mean_ms=statistics.fmean(times_ms), std_ms=statistics.pstdev(times_ms),
        runs=len(times_ms), threads=threads, provider=provider,
    )  # fmt: skip


def measure(
    model: Path, threads: int = 2, warmup: int = 10, runs: int = 50, min_seconds: float = 1.0,
    inputs: np.ndarray | None = None,
) -> Latency:  # fmt: skip
    """Time ``runs`` inferences (more if under ``min_seconds``) after ``warmup`` untimed ones."""
    run = ort_runner(model, threads, inputs)
    for _ in range(warmup):
        run()
    times: list[float] = []
    start = time.perf_counter()
    while len(times) < runs or time.perf_counter() - start < min_seconds:
        t = time.perf_counter()
        run()
        times.append((time.perf_counter() - t) * 1000)
    return summarize(times, threads, "CPUExecutionProvider")


Runner = Callable[[], object]


def ort_runner(model: Path, threads: int = 2, inputs: np.ndarray | None = None) -> Runner:
    """A no-argument callable running ``model`` once (onnxruntime) on ``inputs`` or noise."""
    sess = session(model, threads)
    inp = sess.get_inputs()[0]
    shape = [d if isinstance(d, int) else 1 for d in inp.shape]
    x = inputs if inputs is not None else np.random.default_rng(0).random(shape, np.float32)
    feed = {inp.name: x}
    return lambda: sess.run(None, feed)


def openvino_runner(model: Path, threads: int = 2, precision: str | None = None) -> Runner:
    """The same with OpenVINO (reads .onnx or .xml). ``precision``: None (device default, bf16
    on AMX CPUs), ``f32`` for true FP32. Needs the optional ``openvino`` package."""
    import openvino as ov

    core = ov.Core()
    config = {"INFERENCE_NUM_THREADS": threads, "PERFORMANCE_HINT": "LATENCY"}
    if precision:
        config["INFERENCE_PRECISION_HINT"] = precision
    compiled = core.compile_model(str(model), "CPU", config)
    shape = [d.get_length() for d in compiled.input(0).get_partial_shape()]
    request = compiled.create_infer_request()
    x = np.random.default_rng(0).random(shape, np.float32)
    return lambda: request.infer({0: x})


def interleaved(runners: dict[str, Runner], rounds: int = 5, runs: int = 30, warmup: int = 10,
                threads: int = 2) -> dict[str, Latency]:  # fmt: skip
    """Time several models in alternating rounds, so drift on a noisy machine hits all alike.

    ``runners`` maps a name to a no-argument callable (see :func:`ort_runner`); each gets
    ``rounds`` x ``runs`` timed calls, and percentiles pool every call.
    """
    for run in runners.values():
        for _ in range(warmup):
            run()
    times: dict[str, list[float]] = {name: [] for name in runners}
    for _ in range(rounds):
        for name, run in runners.items():
            for _ in range(runs):
                t = time.perf_counter()
                run()
                times[name].append((time.perf_counter() - t) * 1000)
    return {name: summarize(ts, threads, name) for name, ts in times.items()}
