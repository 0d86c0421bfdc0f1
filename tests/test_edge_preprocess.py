"""edge/: letterbox against ultralytics' LetterBox, and only light imports."""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from edge.preprocess import letterbox, preprocess, resize_bilinear

EDGE = Path(__file__).resolve().parent.parent / "edge"
FORBIDDEN = {"torch", "torchvision", "ultralytics", "zenml", "mlflow", "hydra", "optuna", "yeo"}


@pytest.mark.parametrize(
    "size", [(200, 120), (97, 311), (256, 256), (640, 480), (60, 50), (256, 5), (256, 7)]
)
def test_letterbox_matches_ultralytics(size: tuple[int, int]) -> None:
    from ultralytics.data.augment import LetterBox

    w, h = size
    rgb = np.random.default_rng(0).integers(0, 256, (h, w, 3), dtype=np.uint8)  # worst case: noise
    ours, box = letterbox(Image.fromarray(rgb), 128)
    theirs = LetterBox(new_shape=(128, 128), auto=False, scale_fill=False, scaleup=True)(
        image=rgb[..., ::-1].copy()  # ultralytics works in BGR
    )[..., ::-1]
    assert ours.shape == theirs.shape == (128, 128, 3)
    pad = (ours == 114).all(axis=2)
    assert np.array_equal(pad, (theirs == 114).all(axis=2))  # identical padding geometry
    diff = np.abs(ours.astype(int) - theirs.astype(int)).max()
    assert diff == 0 if box.scale < 1 else diff <= 1  # exact unless enlarging
    # the long side's scale is the nominal one (a 5 px side rounds far from it)
    long_side = box.scale_x if w >= h else box.scale_y
    assert long_side == pytest.approx(min(128 / w, 128 / h), rel=0.02)


def test_letterbox_rounds_half_to_even_as_porting_md_says() -> None:
    """5 px at scale 0.5 is 2.5: Python's round (and ultralytics, above) gives 2, C's round()
    would give 3; 7 px gives 3.5 -> 4 either way. edge/PORTING.md tells ports to use rint."""
    _, box = letterbox(Image.new("RGB", (256, 5)), 128)
    assert box.scale_y == 2 / 5 and box.pad_y == 63
    _, box = letterbox(Image.new("RGB", (256, 7)), 128)
    assert box.scale_y == 4 / 7 and box.pad_y == 62


@pytest.mark.parametrize("shape", [(480, 640, 96, 128), (97, 311, 40, 128), (50, 60, 128, 154)])
def test_resize_matches_cv2_inter_linear(shape: tuple[int, int, int, int]) -> None:
    import cv2

    h, w, nh, nw = shape
    img = np.random.default_rng(1).integers(0, 256, (h, w, 3), dtype=np.uint8)
    theirs = cv2.resize(img, (nw, nh), interpolation=cv2.INTER_LINEAR)
    diff = np.abs(resize_bilinear(img, nw, nh).astype(int) - theirs).max()
    assert diff == 0 if nh < h else diff <= 1  # exact when shrinking


def test_preprocess_gives_nchw_float_in_unit_range() -> None:
    x, box = preprocess(Image.new("L", (64, 32), 255), 64)
    assert x.shape == (1, 3, 64, 64) and x.dtype == np.float32
    assert x.max() == 1.0 and x.min() == pytest.approx(114 / 255)
    assert (box.pad_x, box.pad_y) == (0, 16)


def test_edge_imports_only_light_packages() -> None:
    for path in EDGE.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                names = [node.module]
            for name in names:
                assert name.split(".")[0] not in FORBIDDEN, f"{path.name} imports {name}"
