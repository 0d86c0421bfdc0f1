"""Deterministic generator of a surface-defect detection dataset (YOLO layout).

Brushed-metal backgrounds with lighting gradients and sensor noise; four defect classes drawn
at varied size and contrast, several per image, plus some defect-free images. Each image is
rendered from its own ``numpy`` generator seeded by ``(seed, index)``, so the same seed gives
byte-identical labels (and images, for a given Pillow build) whatever the image count.

``test_images`` more images (their own index range, so independent of ``num_images``) go to
``images/test/``: the source names them test, and only the ``num_images`` are split. Test images
cost no training, and a budget of 0.01 mAP50-95 needs hundreds of them to be confirmed.
``val_images`` do the same for the val split (``images/val/``): the split that chooses needs
as many to resolve the budget, at the cost of every variant's val scoring and every training
epoch's validation.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter
from tqdm import tqdm

from yeo.data.model import SourceDataset
from yeo.io import atomic_dir, write_yaml

CLASS_NAMES: tuple[str, ...] = ("scratch", "pits", "stain", "crack")


@dataclass(frozen=True)
class SyntheticSpec:
    """What to generate; every field comes from ``conf/data/synthetic.yaml``."""

    num_images: int = 400
    imgsz: int = 256
    seed: int = 0
    clean_fraction: float = 0.1
    max_defects: int = 5
    jpeg_quality: int = 92
    contrast: float = 1.0  # multiplies every defect's contrast: >1 easier, <1 harder
    test_images: int = 0  # more images, all in the test split (images/test/)
    val_images: int = 0  # more images, all in the val split (images/val/)


TEST_DIR = "test"  # images/test/, labels/test/: the extra test images
TEST_INDEX = 1_000_000  # their render indices start here: apart from any num_images
VAL_DIR, VAL_INDEX = "val", 2_000_000  # the extra val images, likewise


Box = tuple[int, float, float, float, float]  # class id, cx, cy, w, h (normalized)


def _background(rng: np.random.Generator, size: int) -> np.ndarray:
    """Brushed metal: streaks along one axis, a lighting ramp, a vignette and sensor noise."""
    base = rng.uniform(85, 170)
    streak_len = int(rng.integers(size // 8, size // 2))
    noise = rng.normal(0.0, 1.0, (size, size + streak_len))
    kernel = np.ones(streak_len) / streak_len
    streaks = np.apply_along_axis(lambda r: np.convolve(r, kernel, mode="valid"), 1, noise)
    streaks = streaks[:, :size] * rng.uniform(8, 22) * np.sqrt(streak_len / 8)
    if rng.random() < 0.5:
        streaks = streaks.T
    yy, xx = np.mgrid[0:size, 0:size] / size
    angle = rng.uniform(0, 2 * np.pi)
    ramp = (np.cos(angle) * xx + np.sin(angle) * yy) * rng.uniform(-40, 40)
    cx, cy = rng.uniform(0.2, 0.8, 2)
    vignette = -rng.uniform(0, 35) * ((xx - cx) ** 2 + (yy - cy) ** 2)
    grain = rng.normal(0, rng.uniform(2, 7), (size, size))
    return base + streaks + ramp + vignette + grain


def _scratch(rng: np.random.Generator, size: int, draw: ImageDraw.ImageDraw) -> None:
    length = rng.uniform(0.2, 0.7) * size
    angle = rng.uniform(0, np.pi)
    x0, y0 = rng.uniform(0.1, 0.9, 2) * size
    bend = rng.uniform(-0.08, 0.08) * length
    pts = []
    for t in np.linspace(0, 1, 12):
        off = bend * 4 * t * (1 - t)
        pts.append(
            (
                x0 + t * length * np.cos(angle) - off * np.sin(angle),
                y0 + t * length * np.sin(angle) + off * np.cos(angle),
            )
        )
    draw.line(pts, fill=255, width=int(rng.integers(1, 4)))


def _pits(rng: np.random.Generator, size: int, draw: ImageDraw.ImageDraw) -> None:
    cx, cy = rng.uniform(0.1, 0.9, 2) * size
    spread = rng.uniform(0.03, 0.1) * size
    for _ in range(int(rng.integers(6, 22))):
        px, py = rng.normal(cx, spread), rng.normal(cy, spread)
        r = rng.uniform(0.8, 2.8)
        draw.ellipse((px - r, py - r, px + r, py + r), fill=255)


def _stain(rng: np.random.Generator, size: int, draw: ImageDraw.ImageDraw) -> None:
    cx, cy = rng.uniform(0.15, 0.85, 2) * size
    n = 14
    radius = rng.uniform(0.06, 0.17) * size
    angles = np.linspace(0, 2 * np.pi, n, endpoint=False)
    radii = radius * rng.uniform(0.6, 1.3, n)
    aspect = rng.uniform(0.5, 1.5)
    pts = [
        (cx + r * np.cos(a) * aspect, cy + r * np.sin(a) / aspect)
        for a, r in zip(angles, radii, strict=True)
    ]
    draw.polygon(pts, fill=255)


def _crack(rng: np.random.Generator, size: int, draw: ImageDraw.ImageDraw) -> None:
    x, y = rng.uniform(0.15, 0.85, 2) * size
    heading = rng.uniform(0, 2 * np.pi)
    steps = int(rng.integers(8, 20))
    step_len = rng.uniform(0.015, 0.035) * size
    pts = [(x, y)]
    for i in range(steps):
        heading += rng.normal(0, 0.6)
        x, y = x + step_len * np.cos(heading), y + step_len * np.sin(heading)
        pts.append((x, y))
        if i > 2 and rng.random() < 0.15:  # a short branch
            h = heading + rng.choice([-1, 1]) * rng.uniform(0.5, 1.2)
            bx, by = x, y
            branch = [(bx, by)]
            for _ in range(int(rng.integers(2, 6))):
                h += rng.normal(0, 0.5)
                bx, by = bx + step_len * np.cos(h), by + step_len * np.sin(h)
                branch.append((bx, by))
            draw.line(branch, fill=255, width=1)
    draw.line(pts, fill=255, width=int(rng.integers(1, 3)))


_DRAWERS: tuple[Callable[[np.random.Generator, int, ImageDraw.ImageDraw], None], ...] = (
    _scratch,
    _pits,
    _stain,
    _crack,
)
# Sign and range of intensity change per class: scratches may be bright, the rest darken.
_BLUR = (0.6, 0.5, 3.0, 0.4)


def _iou(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> float:
    ix = max(0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union else 0.0


def render(spec: SyntheticSpec, index: int) -> tuple[Image.Image, list[Box]]:
    """Render image ``index``: the picture and its YOLO boxes."""
    rng = np.random.default_rng([spec.seed, index])
    size = spec.imgsz
    img = _background(rng, size)
    boxes: list[Box] = []
    taken: list[tuple[int, int, int, int]] = []
    n = 0 if rng.random() < spec.clean_fraction else int(rng.integers(1, spec.max_defects + 1))
    for _ in range(n * 4):  # rejection sampling against heavy overlap
        if len(boxes) == n:
            break
        cls = int(rng.integers(0, len(CLASS_NAMES)))
        layer = Image.new("L", (size, size), 0)
        _DRAWERS[cls](rng, size, ImageDraw.Draw(layer))
        mask = np.asarray(layer.filter(ImageFilter.GaussianBlur(_BLUR[cls])), np.float32) / 255
        ys, xs = np.nonzero(mask > 0.15)
        if len(xs) == 0:
            continue
        box = (int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1)
        if box[2] - box[0] < 3 or box[3] - box[1] < 3 or any(_iou(box, t) > 0.3 for t in taken):
            continue
        contrast = rng.uniform(18, 70) * spec.contrast
        sign = 1.0 if (cls == 0 and rng.random() < 0.4) else -1.0
        img += sign * contrast * mask
        taken.append(box)
        x0, y0, x1, y1 = box
        boxes.append(
            (cls, (x0 + x1) / 2 / size, (y0 + y1) / 2 / size, (x1 - x0) / size, (y1 - y0) / size)
        )
    tint = np.array([1.0, 1.01, 1.04]) * rng.uniform(0.97, 1.03, 3)
    rgb = np.clip(img[..., None] * tint, 0, 255).astype(np.uint8)
    return Image.fromarray(rgb, "RGB"), boxes


def format_label(boxes: list[Box]) -> str:
    """YOLO label text, fixed precision so output is byte-stable."""
    return "".join(f"{c} {x:.6f} {y:.6f} {w:.6f} {h:.6f}\n" for c, x, y, w, h in boxes)


def generate(out_dir: Path, spec: SyntheticSpec) -> Path:
    """Write ``images/``, ``labels/`` and ``data.yaml`` under ``out_dir``, atomically."""
    if spec.num_images < 1 or spec.imgsz < 32 or min(spec.test_images, spec.val_images) < 0:
        raise ValueError(
            "synthetic: need num_images >= 1, test_images >= 0, val_images >= 0 and imgsz >= "
            f"32, got {spec}"
        )
    work = [(i, "", f"surface_{i:05d}") for i in range(spec.num_images)]
    work += [(TEST_INDEX + j, TEST_DIR, f"surface_test_{j:05d}") for j in range(spec.test_images)]
    work += [(VAL_INDEX + j, VAL_DIR, f"surface_val_{j:05d}") for j in range(spec.val_images)]
    with atomic_dir(out_dir) as tmp:
        for sub in {w[1] for w in work}:
            (tmp / "images" / sub).mkdir(parents=True, exist_ok=True)
            (tmp / "labels" / sub).mkdir(parents=True, exist_ok=True)
        for i, sub, stem in tqdm(work, desc="synthetic", unit="img", leave=False):
            img, boxes = render(spec, i)
            img.save(tmp / "images" / sub / f"{stem}.jpg", quality=spec.jpeg_quality)
            (tmp / "labels" / sub / f"{stem}.txt").write_text(format_label(boxes))
        write_yaml(tmp / "data.yaml", {"names": dict(enumerate(CLASS_NAMES))})
    return out_dir


def test_split_hints(ds: SourceDataset) -> SourceDataset:
    """``ds`` (read from :func:`generate`'s folder) with the images under ``images/test/`` and
    ``images/val/`` named test and val by the source; the rest stay free for the seeded split."""
    named = {Path(ds.root) / "images" / d: d for d in (TEST_DIR, VAL_DIR)}
    images = [
        i.model_copy(update={"split": named[Path(i.path).parent]})
        if Path(i.path).parent in named
        else i
        for i in ds.images
    ]
    return ds.model_copy(update={"images": images})
