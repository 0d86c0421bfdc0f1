"""A thin onnxruntime detector over an ultralytics YOLOv8 ONNX file.

Reads image size and class names from the model's own metadata, so it needs no side files.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from edge.latency import session
from edge.postprocess import decode, to_original
from edge.preprocess import preprocess


@dataclass(frozen=True)
class Detection:
    box: tuple[float, float, float, float]  # x1, y1, x2, y2 in original image pixels
    score: float
    class_id: int
    class_name: str


class Detector:
    def __init__(self, model: Path, threads: int = 2, conf: float = 0.25, iou: float = 0.7):
        self.session = session(Path(model), threads)
        meta = self.session.get_modelmeta().custom_metadata_map
        self.imgsz = int(ast.literal_eval(meta["imgsz"])[0])
        self.names = {int(k): v for k, v in ast.literal_eval(meta["names"]).items()}
        self.input = self.session.get_inputs()[0].name
        self.conf, self.iou = conf, iou

    def __call__(self, image: Image.Image) -> list[Detection]:
        x, box = preprocess(image, self.imgsz)
        (out,) = self.session.run(None, {self.input: x})
        boxes, scores, cls = decode(out, self.conf, self.iou)
        boxes = to_original(boxes, box, image.width, image.height)
        return [
            Detection(tuple(float(v) for v in b), float(s), int(c), self.names[int(c)])
            for b, s, c in zip(boxes, scores, cls, strict=True)
        ]
