"""Pre-processing exactly as ultralytics does for inference: letterbox, RGB, 0-1, NCHW.

Hand-written (not cv2/torch) because edge/ may import numpy, onnxruntime and pillow only;
``tests/test_edge_preprocess.py`` checks it against ultralytics' LetterBox.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image


@dataclass(frozen=True)
class Letterbox:
    """How an image was fitted into the square input: scale, then padding (left, top)."""

    scale: float
    pad_x: float
    pad_y: float


def letterbox(image: Image.Image, size: int, color: int = 114) -> tuple[np.ndarray, Letterbox]:
    """Resize keeping aspect ratio, pad to ``size`` x ``size`` (centered), return HWC uint8."""
    rgb = image.convert("RGB")
    w, h = rgb.size
    scale = min(size / w, size / h)
    nw, nh = round(w * scale), round(h * scale)
    if (nw, nh) != (w, h):
        rgb = rgb.resize((nw, nh), Image.Resampling.BILINEAR)
    dw, dh = (size - nw) / 2, (size - nh) / 2
    left, top = round(dw - 0.1), round(dh - 0.1)
    canvas = np.full((size, size, 3), color, dtype=np.uint8)
    canvas[top : top + nh, left : left + nw] = np.asarray(rgb)
    return canvas, Letterbox(scale=scale, pad_x=left, pad_y=top)


def to_tensor(hwc: np.ndarray) -> np.ndarray:
    """HWC uint8 RGB -> 1x3xHxW float32 in [0, 1]."""
    return np.ascontiguousarray(hwc.transpose(2, 0, 1)[None], dtype=np.float32) / 255.0


def preprocess(image: Image.Image, size: int) -> tuple[np.ndarray, Letterbox]:
    """The model input tensor for ``image`` and the letterbox to map boxes back."""
    hwc, box = letterbox(image, size)
    return to_tensor(hwc), box
