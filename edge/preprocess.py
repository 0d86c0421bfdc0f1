"""Pre-processing exactly as ultralytics does for inference: letterbox, RGB, 0-1, NCHW.

Hand-written (not cv2/torch) because edge/ may import numpy, onnxruntime and pillow only;
``tests/test_edge_preprocess.py`` checks it against ultralytics' LetterBox and cv2.resize.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageOps


@dataclass(frozen=True)
class Letterbox:
    """How an image was fitted into the square input: per-axis scale (resized / original
    size, as ultralytics' ``scale_boxes`` uses), then padding (left, top)."""

    scale_x: float
    scale_y: float
    pad_x: float
    pad_y: float

    @property
    def scale(self) -> float:
        return min(self.scale_x, self.scale_y)


def _taps(n_out: int, n_in: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Source indices and 11-bit fixed-point weights along one axis, computed as cv2's
    INTER_LINEAR does: half-pixel centres (float32), clamped at the edges."""
    s = ((np.arange(n_out, dtype=np.float64) + 0.5) * (n_in / n_out) - 0.5).astype(np.float32)
    i0 = np.floor(s).astype(np.int64)
    f = (s - i0).astype(np.float32)
    f[s < 0], i0[s < 0] = 0.0, 0
    w1 = np.round(f * 2048).astype(np.int32)
    return np.minimum(i0, n_in - 1), np.minimum(i0 + 1, n_in - 1), 2048 - w1, w1


def resize_bilinear(hwc: np.ndarray, width: int, height: int) -> np.ndarray:
    """``cv2.resize(..., INTER_LINEAR)`` for uint8 HWC images, in cv2's own fixed-point
    arithmetic: bit-exact when shrinking, within one grey level when enlarging.

    Not PIL's resize: PIL's bilinear filter widens (antialiases) when shrinking, cv2's does
    not, and ultralytics letterboxes with cv2.
    """
    y0, y1, b0, b1 = _taps(height, hwc.shape[0])
    x0, x1, a0, a1 = _taps(width, hwc.shape[1])
    a0, a1 = a0[None, :, None], a1[None, :, None]

    def row_pass(rows: np.ndarray, beta: np.ndarray) -> np.ndarray:
        """Horizontal pass (x 2048) over the needed rows, then that row's vertical share.
        Gathers stay uint8; the arithmetic is in place, as few int32 temporaries as possible."""
        src = np.take(hwc, rows, axis=0)
        s = np.take(src, x0, axis=1).astype(np.int32)
        s *= a0
        t = np.take(src, x1, axis=1).astype(np.int32)
        t *= a1
        s += t
        s >>= 4
        s *= beta[:, None, None]
        s >>= 16
        return s

    out = row_pass(y0, b0)  # cv2's vertical pass: ((b0*(S0>>4))>>16 + (b1*(S1>>4))>>16 + 2)>>2
    out += row_pass(y1, b1)
    out += 2
    out >>= 2
    np.clip(out, 0, 255, out=out)
    return out.astype(np.uint8)


def letterbox(image: Image.Image, size: int, color: int = 114) -> tuple[np.ndarray, Letterbox]:
    """Resize keeping aspect ratio, pad to ``size`` x ``size`` (centered), return HWC uint8."""
    rgb = image if image.mode == "RGB" else image.convert("RGB")
    w, h = rgb.size
    scale = min(size / w, size / h)
    nw, nh = round(w * scale), round(h * scale)
    pixels = np.asarray(rgb)
    if (nw, nh) != (w, h):
        pixels = resize_bilinear(pixels, nw, nh)
    dw, dh = (size - nw) / 2, (size - nh) / 2
    left, top = round(dw - 0.1), round(dh - 0.1)
    canvas = np.full((size, size, 3), color, dtype=np.uint8)
    canvas[top : top + nh, left : left + nw] = pixels
    return canvas, Letterbox(scale_x=nw / w, scale_y=nh / h, pad_x=left, pad_y=top)


class ImageTooLarge(ValueError):
    """The image has more pixels than the caller allows (checked before decoding)."""


def load_image(source, max_pixels: int | None = None) -> Image.Image:
    """Open an image file or file object as upright 8-bit RGB, like ``cv2.imread`` does.

    EXIF orientation is applied; palette, grey, 16-bit, CMYK and alpha images become RGB
    (alpha dropped). Raises PIL's errors for files that are not images or are truncated, and
    :class:`ImageTooLarge` above ``max_pixels`` before any pixel is decoded.
    """
    with Image.open(source) as img:
        if max_pixels is not None and img.width * img.height > max_pixels:
            raise ImageTooLarge(
                f"{img.width}x{img.height} image is over the limit of {max_pixels} pixels"
            )
        img.load()  # decode now, so a truncated file fails here, not mid-inference
        img = ImageOps.exif_transpose(img)
        if img.mode in {"I;16", "I;16B", "I;16L", "I"}:  # 16/32-bit grey: scale to 8 bit
            arr = np.asarray(img, dtype=np.float32)
            top = 65535.0 if img.mode.startswith("I;16") or arr.max() > 255 else 255.0
            img = Image.fromarray((arr * (255.0 / top)).clip(0, 255).astype(np.uint8))
        return img.convert("RGB")


def to_tensor(hwc: np.ndarray) -> np.ndarray:
    """HWC uint8 RGB -> 1x3xHxW float32 in [0, 1]."""
    return np.ascontiguousarray(hwc.transpose(2, 0, 1)[None], dtype=np.float32) / 255.0


def preprocess(image: Image.Image, size: int) -> tuple[np.ndarray, Letterbox]:
    """The model input tensor for ``image`` and the letterbox to map boxes back."""
    hwc, box = letterbox(image, size)
    return to_tensor(hwc), box
