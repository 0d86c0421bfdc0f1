"""Decode YOLOv8 ONNX output and apply class-aware NMS, in numpy.

Hand-written because edge/ may not import torch/torchvision (whose ``batched_nms``
ultralytics uses); ``tests/test_edge_runtime.py`` checks the result against ultralytics'
``predict`` on the same ONNX file.
"""

from __future__ import annotations

import json

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
    return _nms(xywh2xyxy(pred[mask, :4]), scores[mask], cls[mask], iou, max_det)


def _nms(
    boxes: np.ndarray, scores: np.ndarray, cls: np.ndarray, iou: float, max_det: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Class-aware NMS of candidates above the threshold (boxes xyxy in input pixels)."""
    if not len(scores):
        return np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros(0, np.int64)
    offset = cls[:, None].astype(np.float32) * CLASS_OFFSET
    keep = nms(boxes + offset, scores, iou)[:max_det]
    return boxes[keep], scores[keep], cls[keep]


def decode_raw_head(
    outputs: list[np.ndarray],
    strides: list[int],
    conf: float = 0.25,
    iou: float = 0.7,
    max_det: int = MAX_DET,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The Detect head's decode on the host, for a graph cut at its output convs.

    ``outputs`` holds per level a box-distribution map (1, 4*16, H, W) then a class-logit
    map (1, nc, H, W), level by level (strides 8, 16, 32 for YOLOv8). Class logits are
    thresholded first (sigmoid is monotonic: score > conf iff logit > log(conf / (1 - conf))),
    so the DFL softmax and the box decode run only for candidates, not for every anchor.
    Boxes are ultralytics' ``dist2bbox`` over anchor centres (cell + 0.5) times the stride.
    """
    boxes, scores, cls = raw_head_candidates(outputs, strides, conf)
    return _nms(boxes, scores, cls, iou, max_det)


def raw_head_candidates(
    outputs: list[np.ndarray], strides: list[int], conf: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Anchors whose best class scores above ``conf``: boxes xyxy (input pixels), scores,
    class ids, level by level in row-major anchor order (the in-graph output's order)."""
    boxes, scores, classes = [], [], []
    logit = np.log(conf / (1 - conf)) if 0 < conf < 1 else (-np.inf if conf <= 0 else np.inf)
    for level, stride in enumerate(strides):
        dist, logits = outputs[2 * level][0], outputs[2 * level + 1][0]  # (64,H,W), (nc,H,W)
        flat = logits.reshape(logits.shape[0], -1)
        best = flat.max(axis=0)
        idx = np.flatnonzero(best > logit)
        if not len(idx):
            continue
        boxes.append(_dfl_xyxy(dist, idx, stride))
        scores.append(1 / (1 + np.exp(-best[idx])))
        classes.append(flat[:, idx].argmax(axis=0))
    if not boxes:
        return np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros(0, np.int64)
    return (
        np.concatenate(boxes),
        np.concatenate(scores).astype(np.float32),
        np.concatenate(classes).astype(np.int64),
    )


def _dfl_xyxy(dist: np.ndarray, idx: np.ndarray, stride: int) -> np.ndarray:
    """Boxes xyxy (input pixels) of the anchors ``idx`` (row-major) of one level's
    box-distribution map ``dist`` (4 * reg_max, H, W): the expectation of each side's softmax
    over reg_max bins (DFL), as distances from the anchor centre (cell + 0.5), times stride."""
    width = dist.shape[2]
    bins = dist.reshape(4, -1, dist.shape[1] * width)[:, :, idx]  # (4, reg_max, k)
    e = np.exp(bins - bins.max(axis=1, keepdims=True))
    ltrb = (e * np.arange(bins.shape[1], dtype=np.float32)[None, :, None]).sum(1) / e.sum(1)
    cx, cy = idx % width + 0.5, idx // width + 0.5
    xyxy = np.stack([cx - ltrb[0], cy - ltrb[1], cx + ltrb[2], cy + ltrb[3]], axis=1)
    return xyxy.astype(np.float32) * stride


def raw_head_dense(outputs: list[np.ndarray], strides: list[int]) -> np.ndarray:
    """A raw head's outputs in the in-graph layout (1, 4 + nc, anchors): cx, cy, w, h in input
    pixels, then a sigmoid score per class, for every anchor (what :func:`decode` takes).
    For evaluation at a near-zero threshold and for comparing outputs; detection at a working
    threshold uses :func:`decode_raw_head`, which decodes only candidates."""
    levels = []
    for level, stride in enumerate(strides):
        dist, logits = outputs[2 * level][0], outputs[2 * level + 1][0]
        xyxy = _dfl_xyxy(dist, np.arange(dist.shape[1] * dist.shape[2]), stride)
        xywh = np.concatenate([(xyxy[:, :2] + xyxy[:, 2:]) / 2, xyxy[:, 2:] - xyxy[:, :2]], 1)
        scores = 1 / (1 + np.exp(-logits.reshape(logits.shape[0], -1)))
        levels.append(np.concatenate([xywh.T, scores], 0))
    return np.concatenate(levels, 1)[None].astype(np.float32)


def raw_head_strides(meta: dict[str, str]) -> list[int] | None:
    """The level strides of a model cut at its head (``raw_head`` in its ONNX metadata, written
    by ``yeo.optimize.export.cut_head``); None for a model that decodes in the graph."""
    if "raw_head" not in meta:
        return None
    return [int(s) for s in json.loads(meta["strides"])]


def in_graph_layout(out: np.ndarray | list[np.ndarray], strides: list[int] | None) -> np.ndarray:
    """Any model's output as (1, 4 + nc, anchors): as it is, or a raw head made dense."""
    if strides is None:
        return out[0] if isinstance(out, list) else out
    return raw_head_dense(out, strides)


def to_original(boxes: np.ndarray, box: Letterbox, width: int, height: int) -> np.ndarray:
    """Undo the letterbox: input-pixel boxes to original-image pixels, clipped."""
    out = boxes.copy()
    out[:, [0, 2]] = (out[:, [0, 2]] - box.pad_x) / box.scale_x
    out[:, [1, 3]] = (out[:, [1, 3]] - box.pad_y) / box.scale_y
    out[:, [0, 2]] = out[:, [0, 2]].clip(0, width)
    out[:, [1, 3]] = out[:, [1, 3]].clip(0, height)
    return out
