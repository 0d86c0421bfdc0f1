"""Decode YOLOv8 ONNX output and apply class-aware NMS, in numpy.

Hand-written because edge/ may not import torch/torchvision (whose ``batched_nms``
ultralytics uses); ``tests/test_edge_runtime.py`` checks the result against ultralytics'
``predict`` on the same ONNX file.
"""

from __future__ import annotations

import numpy as np

from edge.preprocess import Letterbox


def xywh2xyxy(b: np.ndarray) -> np.ndarray:
    out = np.empty_like(b)
    out[:, 0] = b[:, 0] - b[:, 2] / 2
    out[:, 1] = b[:, 1] - b[:, 3] / 2
    out[:, 2] = b[:, 0] + b[:, 2] / 2
    out[:, 3] = b[:, 1] + b[:, 3] / 2
    return out


def iou_one_to_many(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    x1 = np.maximum(box[0], boxes[:, 0])
    y1 = np.maximum(box[1], boxes[:, 1])
    x2 = np.minimum(box[2], boxes[:, 2])
    y2 = np.minimum(box[3], boxes[:, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    area = (box[2] - box[0]) * (box[3] - box[1])
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    return inter / np.maximum(area + areas - inter, 1e-9)


def nms(boxes: np.ndarray, scores: np.ndarray, iou: float) -> np.ndarray:
    """Greedy NMS; indices of kept boxes, highest score first."""
    order = np.argsort(-scores, kind="stable")
    keep: list[int] = []
    while order.size:
        i = int(order[0])
        keep.append(i)
        if order.size == 1:
            break
        rest = order[1:]
        order = rest[iou_one_to_many(boxes[i], boxes[rest]) <= iou]
    return np.asarray(keep, dtype=np.int64)


MAX_DET = 300  # detections kept per image after NMS (ultralytics' default)
CLASS_OFFSET = 7680.0  # ultralytics' max_wh: boxes of class c shift by c * this before NMS
NMS_MODE = "class-aware greedy NMS (boxes offset by class id * 7680), score > conf, IoU > iou"


def decode(
    output: np.ndarray, conf: float = 0.25, iou: float = 0.7, max_det: int = MAX_DET
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(1, 4+nc, anchors) -> boxes xyxy (input pixels), scores, class ids; class-aware NMS.

    Like ultralytics: best class per anchor, confidence filter, then NMS with boxes offset
    per class so that different classes never suppress each other.
    """
    pred = output[0].T  # anchors x (4 + nc)
    cls_scores = pred[:, 4:]
    cls = cls_scores.argmax(axis=1)
    scores = cls_scores[np.arange(len(cls)), cls]
    mask = scores > conf
    boxes, scores, cls = xywh2xyxy(pred[mask, :4]), scores[mask], cls[mask]
    if not len(scores):
        return np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros(0, np.int64)
    offset = cls[:, None].astype(np.float32) * CLASS_OFFSET
    keep = nms(boxes + offset, scores, iou)[:max_det]
    return boxes[keep], scores[keep], cls[keep]


def to_original(boxes: np.ndarray, box: Letterbox, width: int, height: int) -> np.ndarray:
    """Undo the letterbox: input-pixel boxes to original-image pixels, clipped."""
    out = boxes.copy()
    out[:, [0, 2]] = (out[:, [0, 2]] - box.pad_x) / box.scale_x
    out[:, [1, 3]] = (out[:, [1, 3]] - box.pad_y) / box.scale_y
    out[:, [0, 2]] = out[:, [0, 2]].clip(0, width)
    out[:, [1, 3]] = out[:, [1, 3]].clip(0, height)
    return out
