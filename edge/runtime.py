"""A detector over an ultralytics YOLOv8 ONNX file or an edge bundle.

Image size, class names and (for a bundle) thresholds come from the model's own metadata
or the bundle's ``metadata.json``, so it needs no other side files.
"""

from __future__ import annotations

import ast
import json
import time
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from edge.engine import BACKENDS, installed, load
from edge.metadata import read_metadata
from edge.postprocess import decode, decode_raw_head, in_graph_layout, raw_head_strides, to_original
from edge.preprocess import Letterbox, load_image, preprocess

DEFAULT_CONF, DEFAULT_IOU = 0.25, 0.7
Output = np.ndarray | list[np.ndarray]


@dataclass(frozen=True)
class Detection:
    box: tuple[float, float, float, float]  # x1, y1, x2, y2 in original image pixels
    score: float
    class_id: int
    class_name: str

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def model_info(path: Path, onnx_meta: dict[str, str]) -> dict[str, object]:
    """imgsz, names and thresholds: a bundle's metadata.json first, then the ONNX metadata."""
    info: dict[str, object] = {"conf": DEFAULT_CONF, "iou": DEFAULT_IOU}
    if "imgsz" in onnx_meta and "names" in onnx_meta:
        info["imgsz"] = int(ast.literal_eval(onnx_meta["imgsz"])[0])
        info["names"] = {int(k): v for k, v in ast.literal_eval(onnx_meta["names"]).items()}
    bundle_meta = Path(path) / "metadata.json"
    if bundle_meta.is_file():
        meta = read_metadata(Path(path))
        info["names"] = {int(k): v for k, v in meta["classes"].items()}
        info["conf"] = float(meta["thresholds"]["conf"])
        info["iou"] = float(meta["thresholds"]["iou"])
        if "input" in meta:
            info["imgsz"] = int(meta["input"]["shape"][-1])
    if "imgsz" not in info or "names" not in info:
        raise ValueError(f"{path}: no imgsz/names in the ONNX metadata (not an ultralytics export)")
    return info


def declared_backend(path: Path) -> str:
    """The backend a bundle directory declares (``metadata.json`` ``runtime.backend``: what
    it was chosen on); onnxruntime for a model file or a bundle that declares none."""
    try:
        meta = json.loads((Path(path) / "metadata.json").read_text())
        return meta.get("runtime", {}).get("backend", "onnxruntime")
    except (OSError, ValueError, AttributeError):
        return "onnxruntime"  # a model file, or a metadata.json model_info reports on


def bundle_backend(path: Path) -> str:
    """:func:`declared_backend` when installed here; else onnxruntime, with a warning."""
    wanted = declared_backend(path)
    if wanted not in BACKENDS or wanted == "onnxruntime":
        return "onnxruntime"
    if not installed(wanted):
        meta = Path(path) / "metadata.json"
        warnings.warn(
            f"{meta}: the bundle was chosen on {wanted}, not installed here (pip install "
            f"{wanted}): running it on onnxruntime, whose outputs the golden files hold",
            stacklevel=3,
        )
        return "onnxruntime"
    return wanted


class Detector:
    """``Detector(path)(image)`` -> detections in original pixels. ``path``: a bundle
    directory (its model.onnx and metadata.json) or an ONNX file; ``conf``/``iou`` override
    the thresholds the bundle was built with; ``backend``: None runs a bundle on the backend
    it declares (when installed), anything else on onnxruntime."""

    def __init__(
        self,
        model: Path,
        threads: int = 2,
        conf: float | None = None,
        iou: float | None = None,
        backend: str | None = None,
        precision: str | None = None,
    ):
        path = Path(model)
        onnx_file = path / "model.onnx" if path.is_dir() else path
        self.model_path = onnx_file
        backend = backend or bundle_backend(path)
        self.engine = load(onnx_file, backend, threads, precision)
        meta = self.engine.metadata
        if not meta:  # OpenVINO does not expose ONNX metadata
            meta = load(onnx_file, "onnxruntime", 1).metadata
        info = model_info(path, meta)
        self.imgsz: int = info["imgsz"]  # type: ignore[assignment]
        self.names: dict[int, str] = info["names"]  # type: ignore[assignment]
        self.conf = float(info["conf"] if conf is None else conf)  # type: ignore[arg-type]
        self.iou = float(info["iou"] if iou is None else iou)  # type: ignore[arg-type]
        # a model cut at its head (six outputs) is decoded here, on the host, candidates only
        self.strides = raw_head_strides(meta)

    def raw(self, x: np.ndarray) -> Output:
        """The model's raw output for an input tensor: (1, 4+nc, anchors), or for a model cut
        at its head the per-level box-distribution and class-logit maps."""
        return self.engine.run_all(x) if self.strides else self.engine.run(x)

    def dense(self, out: Output) -> np.ndarray:
        """A raw output in the in-graph layout (1, 4+nc, anchors), for comparisons."""
        return in_graph_layout(out, self.strides)

    def __call__(
        self, image: Image.Image | Path | str, conf: float | None = None, iou: float | None = None
    ) -> list[Detection]:
        if not isinstance(image, Image.Image):
            image = load_image(image)
        return self.timed(image, conf, iou)[0]

    def timed(
        self, image: Image.Image, conf: float | None = None, iou: float | None = None
    ) -> tuple[list[Detection], dict[str, float]]:
        """Detections and the milliseconds of each stage: preprocess, inference, postprocess."""
        t0 = time.perf_counter()
        x, box = preprocess(image, self.imgsz)
        t1 = time.perf_counter()
        out = self.raw(x)
        t2 = time.perf_counter()
        dets = self.detections(out, box, image.width, image.height, conf, iou)
        t3 = time.perf_counter()
        ms = {"preprocess": t1 - t0, "inference": t2 - t1, "postprocess": t3 - t2}
        return dets, {k: v * 1000 for k, v in ms.items()}

    def detections(
        self,
        out: Output,
        box: Letterbox,
        width: int,
        height: int,
        conf: float | None = None,
        iou: float | None = None,
    ) -> list[Detection]:
        """Decode + NMS a raw output and map its boxes back to a ``width`` x ``height`` image."""
        conf = self.conf if conf is None else conf
        iou = self.iou if iou is None else iou
        if self.strides:
            boxes, scores, cls = decode_raw_head(out, self.strides, conf, iou)
        else:
            boxes, scores, cls = decode(out, conf, iou)
        boxes = to_original(boxes, box, width, height)
        return [
            Detection(tuple(float(v) for v in b), float(s), int(c), self.names[int(c)])
            for b, s, c in zip(boxes, scores, cls, strict=True)
        ]
