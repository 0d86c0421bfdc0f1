"""A user's own reader (``data=custom data.reader=module:function``): the example in docs/data.md,
run as a user would (a module in the working directory), through ``--pipeline data`` (the
optimize pipeline starts with the same data steps and reads only the processed dataset after
them); readers that cannot be imported, raise or return the wrong thing stop with one line
naming the reader and exit code 2."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from tests.conftest import CODE_ROOT, make_yolo
from yeo.data.readers import custom
from yeo.errors import ReaderError

pytestmark = pytest.mark.slow


def readme_reader() -> str:
    text = (CODE_ROOT / "docs" / "data.md").read_text()
    (block,) = re.findall(r"```python\n(# my_reader\.py\n.*?)```", text, re.S)
    return block


def pixel_dataset(root: Path) -> Path:
    """The synthetic set in the reader's layout: ``x1 y1 x2 y2 class_name`` beside each jpg."""
    from yeo.data.synthetic import CLASS_NAMES

    yolo = make_yolo(root / "yolo", n=24, imgsz=96, splits=False)
    out = root / "mine"
    out.mkdir()
    (out / "classes.txt").write_text("\n".join(CLASS_NAMES) + "\n")
    for img in sorted((yolo / "images").glob("*.jpg")):
        with Image.open(img) as im:
            w, h = im.size
        lines = []
        for line in (yolo / "labels" / f"{img.stem}.txt").read_text().splitlines():
            c, cx, cy, bw, bh = (float(v) for v in line.split())
            x1, y1 = (cx - bw / 2) * w, (cy - bh / 2) * h
            lines.append(f"{x1:.2f} {y1:.2f} {x1 + bw * w:.2f} {y1 + bh * h:.2f} ")
            lines[-1] += CLASS_NAMES[int(c)]
        (out / img.name).write_bytes(img.read_bytes())
        (out / f"{img.stem}.txt").write_text("\n".join(lines) + "\n")
    return out


def user_run(cwd: Path, home: Path, *args: str) -> subprocess.CompletedProcess:
    """``python run.py ...`` typed in ``cwd`` (where the reader module lies)."""
    return subprocess.run(
        [sys.executable, str(CODE_ROOT / "run.py"), *args],
        cwd=cwd,
        env={**os.environ, "YEO_HOME": str(home)},
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_readme_reader_through_the_data_pipeline(tmp_path: Path) -> None:
    home = tmp_path / "ws"
    home.mkdir()
    subprocess.run(["git", "init", "-q", str(home)], check=True)
    (tmp_path / "my_reader.py").write_text(readme_reader())
    data = pixel_dataset(tmp_path)
    args = ["data=custom", "data.reader=my_reader:read", f"data.path={data}", "data.name=mine"]
    out = user_run(tmp_path, home, "--pipeline", "data", *args)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "mine: 24 images" in out.stdout
    labels = [t for t in data.glob("*.txt") if t.name != "classes.txt"]
    boxes = sum(1 for t in labels for line in t.read_text().splitlines() if line.strip())
    assert f"{boxes} boxes" in out.stdout
    processed = home / "data" / "processed" / "mine"
    assert len(list(processed.glob("images/*/*.jpg"))) == 24
    assert (home / "data" / "processed" / "mine.dvc").is_file()


def test_a_reader_that_returns_something_else_is_named(tmp_path: Path, monkeypatch) -> None:
    """The plain function under the step; run.py's one line and exit 2 for a reader error are
    checked through the pipeline below."""
    (tmp_path / "list_reader.py").write_text("def read(root):\n    return [1, 2]\n")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ReaderError, match="list_reader:read returned list, not a SourceDataset"):
        custom.read_custom("x", tmp_path, "list_reader:read")


@pytest.mark.parametrize(
    ("module", "message"),
    [
        (None, "data.reader nowhere:read: cannot import: ModuleNotFoundError"),
        ("def read(root):\n    raise KeyError('camera')\n", "raised KeyError: 'camera'"),
    ],
)
def test_a_bad_reader_is_one_line_and_exit_2(tmp_path: Path, module, message) -> None:
    home = tmp_path / "ws"
    home.mkdir()
    subprocess.run(["git", "init", "-q", str(home)], check=True)
    spec = "nowhere:read"
    if module:
        (tmp_path / "bad_reader.py").write_text(module)
        spec = "bad_reader:read"
    args = ["data=custom", f"data.reader={spec}", f"data.path={tmp_path}"]
    out = user_run(tmp_path, home, "--pipeline", "data", *args)
    assert out.returncode == 2, out.stderr[-3000:]
    lines = out.stderr.strip().splitlines()
    assert lines[-1].startswith("run.py: error: data") and message in lines[-1], lines[-3:]
    assert "Traceback" not in out.stderr
    assert not (home / "data" / "processed").exists() or not any(
        (home / "data" / "processed").iterdir()
    )
