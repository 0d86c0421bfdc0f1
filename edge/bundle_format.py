"""The bundle format, read and written by the builder, the verifier and the benchmark alike:
the manifest and the file list it covers, golden outputs on disk, unpacking an archive, and its
JSON files. The layout is described in :mod:`edge.bundle`."""

from __future__ import annotations

import json
import tarfile
from pathlib import Path, PurePosixPath

import numpy as np

from edge.fileio import sha256, write_text

FORMAT = "yeo-edge-bundle/1"
MANIFEST = "MANIFEST.sha256"
IGNORED = ("__pycache__", ".pyc")  # written by Python when the bundle's own code runs


def bundle_files(root: Path) -> list[str]:
    """Every file of the bundle (relative, sorted), without the manifest and Python caches."""
    return sorted(
        p.relative_to(root).as_posix()
        for p in root.rglob("*")
        if p.is_file() and p.name != MANIFEST and not any(i in p.as_posix() for i in IGNORED)
    )


def write_manifest(root: Path) -> Path:
    """``MANIFEST.sha256`` in ``sha256sum`` format (``sha256sum -c`` checks it too)."""
    lines = [f"{sha256(root / rel)}  {rel}" for rel in bundle_files(root)]
    return write_text(root / MANIFEST, "\n".join(lines) + "\n")


def save_output(stem: Path, out: np.ndarray | list[np.ndarray]) -> Path:
    """``<stem>.output.npy`` for one output, ``<stem>.output.npz`` (arr_0, arr_1, ...) for
    a raw head's outputs."""
    if isinstance(out, list):
        path = stem.with_name(f"{stem.name}.output.npz")
        np.savez(path, *out)
    else:
        path = stem.with_name(f"{stem.name}.output.npy")
        np.save(path, out)
    return path


def load_output(stem: Path) -> np.ndarray | list[np.ndarray]:
    """What :func:`save_output` wrote (FileNotFoundError naming the .npy when neither is)."""
    npz = stem.with_name(f"{stem.name}.output.npz")
    if npz.is_file():
        with np.load(npz) as z:
            return [z[f"arr_{i}"] for i in range(len(z.files))]
    return np.load(stem.with_name(f"{stem.name}.output.npy"))


def extract(archive: Path, into: Path) -> Path:
    """Unpack a bundle .tar.gz (refusing paths that leave the folder); its top folder."""
    with tarfile.open(archive) as tar:
        for m in tar.getmembers():
            p = PurePosixPath(m.name)
            if p.is_absolute() or ".." in p.parts or not (m.isfile() or m.isdir()):
                raise ValueError(f"{archive}: unsafe member {m.name!r}")
        tar.extractall(into)
    (top,) = [p for p in into.iterdir() if p.is_dir()]
    return top


def read_json(path: Path) -> dict:
    return json.loads(Path(path).read_text())
