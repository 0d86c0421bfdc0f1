"""edge/: letterbox against ultralytics' LetterBox, and only light imports."""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from edge.preprocess import letterbox, preprocess

EDGE = Path(__file__).resolve().parent.parent / "edge"
FORBIDDEN = {"torch", "torchvision", "ultralytics", "zenml", "mlflow", "hydra", "optuna", "yeo"}


@pytest.mark.parametrize("size", [(200, 120), (97, 311), (256, 256), (640, 480)])
def test_letterbox_matches_ultralytics(size: tuple[int, int]) -> None:
    from ultralytics.data.augment import LetterBox

    rng = np.random.default_rng(0)
    w, h = size
    # smooth content, so PIL's and OpenCV's bilinear kernels differ only by rounding
    base = rng.integers(0, 255, (8, 8, 3), dtype=np.uint8)
    rgb = np.asarray(Image.fromarray(base).resize((w, h), Image.Resampling.BILINEAR))
    ours, box = letterbox(Image.fromarray(rgb), 128)
    theirs = LetterBox(new_shape=(128, 128), auto=False, scale_fill=False, scaleup=True)(
        image=rgb[..., ::-1].copy()  # ultralytics works in BGR
    )[..., ::-1]
    assert ours.shape == theirs.shape == (128, 128, 3)
    pad = (ours == 114).all(axis=2)
    assert np.array_equal(pad, (theirs == 114).all(axis=2))  # identical padding geometry
    inside = ~pad
    assert np.abs(ours[inside].astype(int) - theirs[inside].astype(int)).mean() < 3.0
    assert box.scale == pytest.approx(min(128 / w, 128 / h))


def test_preprocess_gives_nchw_float_in_unit_range() -> None:
    x, box = preprocess(Image.new("L", (64, 32), 255), 64)
    assert x.shape == (1, 3, 64, 64) and x.dtype == np.float32
    assert x.max() == 1.0 and x.min() == pytest.approx(114 / 255)
    assert (box.pad_x, box.pad_y) == (0, 16)


def test_edge_imports_only_light_packages() -> None:
    for path in EDGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                names = [node.module]
            for name in names:
                assert name.split(".")[0] not in FORBIDDEN, f"{path.name} imports {name}"
