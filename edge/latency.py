"""Model latency with onnxruntime: batch 1, warm-up, fixed threads, percentiles.

Imports numpy and onnxruntime only, so it runs on any box with the edge dependencies.
"""

from __future__ import annotations

import statistics
import time
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


def measure(
    model: Path, threads: int = 2, warmup: int = 10, runs: int = 50, min_seconds: float = 1.0,
    inputs: np.ndarray | None = None,
) -> Latency:  # fmt: skip
    """Time ``runs`` inferences (more if under ``min_seconds``) after ``warmup`` untimed ones."""
    sess = session(model, threads)
    inp = sess.get_inputs()[0]
    shape = [d if isinstance(d, int) else 1 for d in inp.shape]
    x = inputs if inputs is not None else np.random.default_rng(0).random(shape, np.float32)
    feed = {inp.name: x}
    for _ in range(warmup):
        sess.run(None, feed)
    times: list[float] = []
    start = time.perf_counter()
    while len(times) < runs or time.perf_counter() - start < min_seconds:
        t = time.perf_counter()
        sess.run(None, feed)
        times.append((time.perf_counter() - t) * 1000)
    q = np.percentile(times, [50, 90, 99])
    return Latency(
        p50_ms=float(q[0]), p90_ms=float(q[1]), p99_ms=float(q[2]),
        mean_ms=statistics.fmean(times), std_ms=statistics.pstdev(times), runs=len(times),
        threads=threads, provider=sess.get_providers()[0],
    )  # fmt: skip


def interleaved(
    models: dict[str, Path], threads: int = 2, rounds: int = 5, runs: int = 30, warmup: int = 10
) -> dict[str, Latency]:
    """Time several models in alternating rounds, so drift on a noisy machine hits all alike.

    Each model gets ``rounds`` x ``runs`` timed inferences; percentiles pool every run.
    """
    sessions = {name: session(path, threads) for name, path in models.items()}
    feeds = {}
    for name, sess in sessions.items():
        inp = sess.get_inputs()[0]
        shape = [d if isinstance(d, int) else 1 for d in inp.shape]
        feeds[name] = {inp.name: np.random.default_rng(0).random(shape, np.float32)}
        for _ in range(warmup):
            sess.run(None, feeds[name])
    times: dict[str, list[float]] = {name: [] for name in models}
    for _ in range(rounds):
        for name, sess in sessions.items():
            for _ in range(runs):
                t = time.perf_counter()
                sess.run(None, feeds[name])
                times[name].append((time.perf_counter() - t) * 1000)
    out = {}
    for name, ts in times.items():
        q = np.percentile(ts, [50, 90, 99])
        out[name] = Latency(
            p50_ms=float(q[0]), p90_ms=float(q[1]), p99_ms=float(q[2]),
            mean_ms=statistics.fmean(ts), std_ms=statistics.pstdev(ts), runs=len(ts),
            threads=threads, provider=sessions[name].get_providers()[0],
        )  # fmt: skip
    return out
