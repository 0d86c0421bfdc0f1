"""Whether an INT8 model gives the same outputs on every x86 CPU kind, read off its weights.

onnxruntime's u8 x s8 kernels on x86 CPUs without VNNI (AVX2, AVX512BW) multiply with
``vpmaddubsw``, which adds each pair of adjacent products into a *saturating* int16. A pair
saturates when ``255 * (|w0| + |w1|) > 32767``, i.e. ``|w0| + |w1| > 128``; CPUs with VNNI
accumulate in int32 and never do. A model with such pairs therefore gives other outputs (and
another mAP) on an AVX2 machine than on a VNNI one.

:func:`pairsafe_overrides` sets per-channel scales so that no pair can saturate (the
``pairsafe`` weight range); :func:`pair_overflows` checks a quantized model statically (every
channel's top-two |q| sum, along the axis the kernel reduces over).
"""

from __future__ import annotations

from typing import Any

import numpy as np

PAIR_LIMIT = 128  # 255 * 128 = 32640 <= 32767: the largest |w0| + |w1| that cannot saturate


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
    dequantized = set()  # outputs of a DequantizeLinear: what an integer kernel can fuse
    for node in model.graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
        if node.op_type == "DequantizeLinear":
            dequantized.update(node.output)

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
        if user.op_type in ("Conv", "MatMul", "Gemm") and user.input[0] not in dequantized:
            continue  # int8 weights into a float activation (w8): computed in float, no int16 sums
        q = numpy_helper.to_array(tensor).astype(np.int32)
        worst = max(_top_two_sum(row) for row in channel_rows(q, channel_axis(user)))
        if worst > PAIR_LIMIT:
            bad.append(f"{tensor.name}: |q0| + |q1| up to {worst:.0f} > {PAIR_LIMIT}")
    return bad
