"""The walkthrough notebooks run top to bottom, offline, on their tiny config (nbclient)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.conftest import CODE_ROOT

pytestmark = pytest.mark.slow
NOTEBOOKS = sorted((CODE_ROOT / "notebooks").glob("*.ipynb"))


def test_notebooks_are_committed_without_outputs() -> None:
    assert [p.name for p in NOTEBOOKS] == [
        "01_data.ipynb",
        "02_training.ipynb",
        "03_optimization.ipynb",
    ]
    for path in NOTEBOOKS:
        for cell in json.loads(path.read_text())["cells"]:
            if cell["cell_type"] == "code":
                assert not cell["outputs"] and cell["execution_count"] is None, path.name


# After each notebook's setup cell, as papermill injects parameters: the same cells on a
# shorter training (30 epochs -> 4), so that 02 and 03 check the path, not the fit
PARAMETERS = (
    "TINY_TRAIN = [o for o in TINY_TRAIN if not o.startswith('train.epochs=')] + ['train.epochs=4']"
)


def test_notebooks_run_in_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """One workspace, as a user would: 02 reuses 01's data, 03 reuses 02's training."""
    import nbformat
    from nbclient import NotebookClient

    ws = tmp_path / "ws"
    ws.mkdir()
    subprocess.run(["git", "init", "-q", str(ws)], check=True)
    log = tmp_path / "net.log"
    monkeypatch.setenv("YEO_HOME", str(ws))
    for path in NOTEBOOKS:
        book = nbformat.read(path, as_version=4)
        # the network audit hook, in the kernel, before the notebook's own first cell
        guard = f"from tests.netguard import install\ninstall({str(log)!r})"
        book.cells.insert(0, nbformat.v4.new_code_cell(guard))
        setup = next(i for i, c in enumerate(book.cells) if "TINY_TRAIN = [" in c.source)
        book.cells.insert(setup + 1, nbformat.v4.new_code_cell(PARAMETERS))
        NotebookClient(
            book,
            timeout=600,
            kernel_name="python3",
            resources={"metadata": {"path": str(CODE_ROOT)}},
        ).execute()
        errors = [
            o for c in book.cells for o in c.get("outputs", []) if o["output_type"] == "error"
        ]
        assert not errors, (path.name, errors)
    assert not log.exists() or log.read_text() == "", log.read_text()
    assert any((ws / "edge" / "bundles").glob("yolov8n-notebook-v1"))
