"""Model latency: batch 1, warm-up, fixed threads, percentiles; interleaved comparisons.

Imports numpy and the runtimes only, so it runs on any box with the edge dependencies.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from edge.engine import load


@dataclass(frozen=True)
class Latency:
    p50_ms: float
    p90_ms: float
    p99_ms: float
    p25_ms: float  # the spread: p25-p75
    p75_ms: float
    min_ms: float
    mean_ms: float
    std_ms: float
    runs: int
    threads: int
    provider: str

    def as_dict(self) -> dict[str, float | int | str]:
        return asdict(self)


def summarize(times_ms: list[float], threads: int, provider: str) -> Latency:
    """Percentiles, mean and spread of per-call times."""
    q = np.percentile(times_ms, [50, 90, 99, 25, 75])
    return Latency(
        p50_ms=float(q[0]),
        p90_ms=float(q[1]),
        p99_ms=float(q[2]),
        p25_ms=float(q[3]),
        p75_ms=float(q[4]),
        min_ms=float(min(times_ms)),
        mean_ms=statistics.fmean(times_ms),
        std_ms=statistics.pstdev(times_ms),
        runs=len(times_ms),
        threads=threads,
        provider=provider,
    )


Runner = Callable[[], object]


def time_calls(
    run: Runner,
    warmup: int = 10,
    runs: int = 50,
    min_seconds: float = 1.0,
    progress: Callable[[int], None] | None = None,
) -> list[float]:
    """Milliseconds of ``runs`` calls (more if under ``min_seconds``) after ``warmup`` untimed."""
    for _ in range(warmup):
        run()
    times: list[float] = []
    start = time.perf_counter()
    while len(times) < runs or time.perf_counter() - start < min_seconds:
        t = time.perf_counter()
        run()
        times.append((time.perf_counter() - t) * 1000)
        if progress:
            progress(len(times))
    return times


def measure(
    model: Path,
    threads: int = 2,
    warmup: int = 10,
    runs: int = 50,
    min_seconds: float = 1.0,
    inputs: np.ndarray | None = None,
) -> Latency:
    """onnxruntime latency of ``model`` on ``inputs`` (or noise)."""
    times = time_calls(ort_runner(model, threads, inputs), warmup, runs, min_seconds)
    return summarize(times, threads, "CPUExecutionProvider")


def _runner(
    model: Path, backend: str, threads: int, precision: str | None, inputs: np.ndarray | None
) -> Runner:
    engine = load(model, backend, threads, precision)
    x = (
        inputs
        if inputs is not None
        else np.random.default_rng(0).random(engine.input_shape, np.float32)
    )
    return lambda: engine.run(x)


def detect_runner(
    model: Path,
    threads: int = 2,
    backend: str = "onnxruntime",
    precision: str | None = None,
    image: Path | None = None,
    conf: float = 0.25,
) -> Runner:
    """One end-to-end detection per call on a letterboxed ``image`` (noise if None): the
    model, then decode + NMS at ``conf``; a model cut at its head is decoded on the host.
    Every model does the same work, whatever its head, so ratios compare like with like."""
    from edge.postprocess import decode, decode_raw_head, raw_head_strides
    from edge.preprocess import load_image, preprocess

    engine = load(model, backend, threads, precision)
    meta = engine.metadata
    if not meta and Path(model).suffix == ".onnx":  # OpenVINO does not expose ONNX metadata
        meta = load(model, "onnxruntime", 1).metadata
    strides = raw_head_strides(meta)
    x = (
        preprocess(load_image(image), engine.input_shape[-1])[0]
        if image is not None
        else np.random.default_rng(0).random(engine.input_shape, np.float32)
    )
    if strides:
        return lambda: decode_raw_head(engine.run_all(x), strides, conf)
    return lambda: decode(engine.run(x), conf)


def ort_runner(model: Path, threads: int = 2, inputs: np.ndarray | None = None) -> Runner:
    """A no-argument callable running ``model`` once (onnxruntime) on ``inputs`` or noise."""
    return _runner(model, "onnxruntime", threads, None, inputs)


def interleaved(
    runners: dict[str, Runner],
    rounds: int = 5,
    runs: int = 30,
    warmup: int = 10,
    threads: int = 2,
    on_round: Callable[[int], None] | None = None,
) -> dict[str, Latency]:
    """Time several models in alternating rounds, so drift on a noisy machine hits all alike.

    ``runners`` maps a name to a no-argument callable (see :func:`ort_runner`); each gets
    ``rounds`` x ``runs`` timed calls, and percentiles pool every call. ``on_round(i)`` is
    called after each round (progress).
    """
    for run in runners.values():
        for _ in range(warmup):
            run()
    times: dict[str, list[float]] = {name: [] for name in runners}
    for i in range(rounds):
        for name, run in runners.items():
            times[name] += time_calls(run, warmup=0, runs=runs, min_seconds=0)
        if on_round:
            on_round(i + 1)
    return {name: summarize(ts, threads, name) for name, ts in times.items()}
