"""Comparisons of a model's outputs: which anchors decoding can keep, the largest box and score
differences over them, and a model's fused (optimized) session against its unfused graph."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np

from edge.postprocess import in_graph_layout, raw_head_strides


def kept_anchors(expected: np.ndarray, produced: np.ndarray, conf: float) -> np.ndarray:
    """Mask of the anchors decoding can keep: best class score >= ``conf`` in either output
    (layout ``(1, 4 + classes, anchors)``)."""
    return (expected[0, 4:].max(axis=0) >= conf) | (produced[0, 4:].max(axis=0) >= conf)


def output_errors(expected: np.ndarray, produced: np.ndarray, conf: float) -> tuple[float, float]:
    """Largest box (px) and score differences over the anchors decoding can keep."""
    mask = kept_anchors(expected, produced, conf)
    if not mask.any():
        return 0.0, 0.0
    diff = np.abs(produced[0][:, mask] - expected[0][:, mask])
    return float(diff[:4].max()), float(diff[4:].max())


def fused_vs_unfused(
    model: Path, inputs: Iterable[np.ndarray], conf: float, threads: int = 1
) -> tuple[float, float]:
    """Largest box (px) and score differences between onnxruntime's optimized session (fused
    int8 kernels) and the same graph run unfused (an INT8 QDQ model then computes
    DequantizeLinear -> float Conv -> QuantizeLinear, as a CPU without int16 saturation
    does), over the anchors decoding can keep, for ``inputs``."""
    from edge.engine import session

    fused, plain = session(model, threads), session(model, threads, optimize=False)
    name = fused.get_inputs()[0].name
    strides = raw_head_strides(dict(fused.get_modelmeta().custom_metadata_map))

    def dense(sess, x: np.ndarray) -> np.ndarray:
        return in_graph_layout(sess.run(None, {name: x}), strides)

    errs = [output_errors(dense(plain, x), dense(fused, x), conf) for x in inputs]
    return max((e[0] for e in errs), default=0.0), max((e[1] for e in errs), default=0.0)
