"""ONNX export through ultralytics (metadata kept), simplified with onnxsim and checked.

The simplified graph replaces the exported one only if its outputs on real images match
within ``tol`` (relative and absolute); otherwise the unsimplified model is kept, with a warning.
"""

from __future__ import annotations

import ast
import json
import logging
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from edge.preprocess import preprocess
from yeo.env import configure_ultralytics
from yeo.optimize.settings import OptimizeConfig

log = logging.getLogger(__name__)
MODEL_FILE = "model.onnx"  # the ONNX file in a model folder that steps hand on


@dataclass(frozen=True)
class ExportResult:
    path: Path
    simplified: bool
    max_abs_diff: float | None
    opset: int
    size_bytes: int


def onnx_metadata(path: Path) -> tuple[dict[str, Any], int | None]:
    """The ``metadata_props`` of an ONNX file, values parsed as Python literals where they are
    (ultralytics writes ``imgsz``, ``names``, ...; quantization adds its recipe), and its
    default-domain opset."""
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    meta: dict[str, Any] = {}
    for prop in model.metadata_props:
        try:
            meta[prop.key] = ast.literal_eval(prop.value)
        except (ValueError, SyntaxError):
            meta[prop.key] = prop.value
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), None)
    return meta, opset


def image_batch(images: list[Path], imgsz: int) -> list[np.ndarray]:
    return [preprocess(Image.open(p), imgsz)[0] for p in images]


def run_onnx(path: Path, inputs: list[np.ndarray]) -> list[np.ndarray]:
    from edge.engine import session

    sess = session(path, threads=2)
    name = sess.get_inputs()[0].name
    return [sess.run(None, {name: x})[0] for x in inputs]


def export_onnx(
    weights: Path,
    out: Path,
    imgsz: int,
    opset: int = 17,
    dynamic: bool = False,
    simplify: bool = True,
    check_images: list[Path] | None = None,
    tol: float = 1e-4,
) -> ExportResult:
    """Export ``weights`` to ``out`` (ultralytics metadata in ``metadata_props``)."""

    configure_ultralytics()
    from ultralytics import YOLO

    exported = Path(
        YOLO(str(weights), task="detect").export(
            format="onnx",
            imgsz=imgsz,
            opset=opset,
            dynamic=dynamic,
            simplify=False,
            batch=1,
            device="cpu",
            verbose=False,
        )
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp")
    shutil.move(exported, tmp)
    simplified, diff = False, None
    if simplify:
        simplified, diff = _simplify(tmp, check_images or [], imgsz, tol)
    tmp.replace(out)
    return ExportResult(out, simplified, diff, opset, out.stat().st_size)


def export_variant(
    weights: Path, out: Path, imgsz: int, optimize: OptimizeConfig, dataset: Path
) -> ExportResult:
    """The optimize pipeline's export, wherever a variant is (re)built: the run's opset,
    dynamic axis and simplify, the simplified graph kept only if it matches on 4 val images."""
    from yeo.optimize.dataset import split_images

    return export_onnx(
        weights,
        out,
        imgsz,
        opset=optimize.opset,
        dynamic=optimize.dynamic,
        simplify=optimize.simplify,
        check_images=split_images(Path(dataset), "val")[:4],
    )


def _simplify(path: Path, images: list[Path], imgsz: int, tol: float) -> tuple[bool, float | None]:
    """Simplify ``path`` in place if outputs agree on ``images``; returns (kept, max diff)."""
    import onnx
    from onnxsim import simplify

    model = onnx.load(str(path))
    try:
        simple, ok = simplify(model)
    except Exception as e:  # onnxsim raises many types on graphs it cannot handle
        log.warning("onnxsim failed (%s): keeping the unsimplified model", e)
        return False, None
    if not ok:
        log.warning("onnxsim could not validate the simplified model: keeping the original")
        return False, None
    del simple.metadata_props[:]
    simple.metadata_props.extend(model.metadata_props)
    candidate = path.with_name(path.name + ".sim")
    onnx.save(simple, str(candidate))
    inputs = (
        image_batch(images, imgsz)
        if images
        else [np.random.default_rng(0).random((1, 3, imgsz, imgsz), np.float32)]
    )
    diffs = [
        np.abs(a - b).max() / max(1.0, float(np.abs(a).max()))
        for a, b in zip(run_onnx(path, inputs), run_onnx(candidate, inputs), strict=True)
    ]
    worst = float(max(diffs))
    if worst > tol:
        log.warning("simplified outputs differ by %.2e (> %.0e): keeping the original", worst, tol)
        candidate.unlink()
        return False, worst
    candidate.replace(path)
    return True, worst


HEAD_CONV = re.compile(r"^/model\.\d+/cv([23])\.(\d+)/cv\1\.\2\.2/Conv$")


def cut_head(src: Path, dst: Path) -> dict[str, Any]:
    """``src`` (an ultralytics Detect export, FP32 or QDQ) cut at the head's output convs:
    per level a box-distribution map then a class-logit map, for :func:`edge.postprocess.
    decode_raw_head`. Metadata is kept, plus ``raw_head`` (output names) and ``strides``."""
    import onnx

    model = onnx.load(str(src))
    consumers: dict[str, list[Any]] = {}
    for node in model.graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)

    def through_qdq(tensor: str) -> str:
        """In a QDQ model the conv's output is quantized then dequantized: cut after that
        pair, so the int8 conv stays fused and the values are the ones the in-graph tail
        decodes."""
        q = [n for n in consumers.get(tensor, []) if n.op_type == "QuantizeLinear"]
        if not q:
            return tensor
        dq = [n for n in consumers.get(q[0].output[0], []) if n.op_type == "DequantizeLinear"]
        return dq[0].output[0] if dq else tensor

    found = {}
    for node in model.graph.node:
        m = HEAD_CONV.match(node.name)
        if m:
            found[(int(m.group(2)), m.group(1))] = through_qdq(node.output[0])
    levels = sorted({lv for lv, _ in found})
    if not levels or any((lv, k) not in found for lv in levels for k in "23"):
        raise ValueError(f"{src}: no YOLOv8 Detect head convs (cv2/cv3) found to cut at")
    outputs = [found[(lv, k)] for lv in levels for k in "23"]
    typed = onnx.shape_inference.infer_shapes(model)  # the extractor needs every tensor typed
    cut = onnx.utils.Extractor(typed).extract_model([model.graph.input[0].name], outputs)
    meta, _ = onnx_metadata(src)
    imgsz = int(meta["imgsz"][0])
    shapes = onnx.shape_inference.infer_shapes(cut).graph
    dims = {v.name: [d.dim_value for d in v.type.tensor_type.shape.dim] for v in shapes.output}
    strides = [imgsz // dims[found[(lv, "3")]][2] for lv in levels]
    del cut.metadata_props[:]
    for prop in model.metadata_props:
        cut.metadata_props.add(key=prop.key, value=prop.value)
    cut.metadata_props.add(key="raw_head", value=json.dumps(outputs))
    cut.metadata_props.add(key="strides", value=json.dumps(strides))
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_name(f".{dst.name}.tmp")
    onnx.save(cut, str(tmp))
    tmp.replace(dst)
    return {"outputs": outputs, "strides": strides, "imgsz": imgsz}
