"""Ingest and convert: find a source's raw files and read its annotations into one form.

Six kinds of source: ``synthetic`` (generated here), ``yolo`` (a data.yaml, or images/ +
labels/), ``voc`` (images + Pascal VOC XML), ``coco`` (COCO JSON, as Roboflow, CVAT and Label
Studio export), ``coco128`` (fetched as ultralytics does when online, else a local copy) and
``custom`` (a user's own reader function, ``data.reader=package.module:function``).
Each format's reader is a module of :mod:`yeo.data.readers`. Label problems become
:class:`Fault` records, not exceptions, so validation can report every
bad file at once; only a source that cannot be read at all raises.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path

import yaml

from yeo.data import synthetic
from yeo.data.model import RawSource, SourceDataset
from yeo.data.readers.coco import read_coco
from yeo.data.readers.custom import read_custom
from yeo.data.readers.voc import read_voc
from yeo.data.readers.yolo import names_list, read_yolo
from yeo.env import configure_ultralytics
from yeo.errors import DataError

COCO128_YAML = "coco128.yaml"


@dataclass(frozen=True)
class SourceConfig:
    """The ``data`` config group, as plain values."""

    source: str
    name: str
    path: str | None = None
    images: str | None = None
    names: list[str] | None = None
    reader: str | None = None
    synthetic: synthetic.SyntheticSpec | None = None


# --------------------------------------------------------------------------- ingest


def ingest(cfg: SourceConfig, raw_root: Path, offline: bool) -> RawSource:
    """Locate (or generate, or download) the raw files of the configured source."""
    kind = cfg.source
    if kind == "synthetic":
        spec = cfg.synthetic or synthetic.SyntheticSpec()
        out = raw_root / cfg.name
        synthetic.generate(out, spec)
        # the spec is what the generated files are: it keys the cached steps after this one
        # (without it, data.synthetic.val_images=540 reused the conversion made without them)
        key = hashlib.sha256(json.dumps(asdict(spec), sort_keys=True).encode()).hexdigest()
        return RawSource(
            name=cfg.name,
            kind="synthetic",
            root=str(out),
            generated=True,
            fingerprint=f"synthetic:{key}",
        )
    if kind == "coco128":
        return RawSource(
            name=cfg.name, kind="coco128", root=str(_coco128_root(cfg.path, offline)), names=None
        )
    if kind in ("yolo", "voc", "coco", "custom"):
        if not cfg.path:
            raise DataError(f"data.source={kind} needs data.path=<folder>")
        root = Path(cfg.path).expanduser().resolve()
        if not root.exists():
            raise DataError(f"{root}: no such file or folder (data.path)")
        images = Path(cfg.images).expanduser().resolve() if cfg.images else None
        if images is not None and not images.is_dir():
            raise DataError(f"{images}: no such folder (data.images)")
        return RawSource(
            name=cfg.name,
            kind=kind,
            root=str(root),
            names=cfg.names,
            images=str(images) if images else None,
            reader=cfg.reader,
        )
    raise DataError(
        f"unknown data.source {kind!r}: use synthetic, yolo, voc, coco, coco128 or custom"
    )


def _coco128_root(path: str | None, offline: bool) -> Path:
    if path:
        root = Path(path).expanduser().resolve()
        if not (root / "images").is_dir():
            raise DataError(f"{root}: not a COCO128 folder (no images/ inside)")
        return root
    if offline:
        raise DataError(
            "coco128: offline, cannot download; point at a local copy with "
            "data.path=/path/to/coco128 (e.g. ../shared/datasets/coco128), or set YEO_OFFLINE=0"
        )
    configure_ultralytics()
    from ultralytics.data.utils import check_det_dataset  # downloads as ultralytics does

    info = check_det_dataset(COCO128_YAML, autodownload=True)
    return Path(info["path"])


def coco_names() -> list[str]:
    """The 80 COCO class names, from the dataset yaml that ships inside ultralytics."""
    configure_ultralytics()
    from ultralytics.utils import ROOT

    data = yaml.safe_load((ROOT / "cfg" / "datasets" / COCO128_YAML).read_text())
    return names_list(data["names"], "coco128.yaml")


# --------------------------------------------------------------------------- convert


def convert(raw: RawSource) -> SourceDataset:
    """Read annotations of any source kind into a :class:`SourceDataset`."""
    root = Path(raw.root)
    if raw.kind == "voc":
        return read_voc(raw.name, root, raw.names)
    if raw.kind == "coco":
        return read_coco(raw.name, root, Path(raw.images) if raw.images else None)
    if raw.kind == "custom":
        return read_custom(raw.name, root, raw.reader or "")
    names = coco_names() if raw.kind == "coco128" else raw.names
    ds = read_yolo(raw.name, root, names)
    return synthetic.test_split_hints(ds) if raw.kind == "synthetic" else ds


def fingerprint(path: str | None, images: str | None = None) -> str:
    """What a source's raw files are now, cheaply (no file is read): sha256 over each file's
    relative name, size and modification time under ``data.path`` (and ``data.images``). The
    data steps take it as a parameter, so the cached ones of the train and optimize pipelines
    read an edited dataset again (a fixed label has a new time) and skip an unchanged one; ""
    for generated or downloaded sources (:func:`ingest` gives a generated one its spec's
    digest)."""

    digest = hashlib.sha256()
    for root in (Path(p).expanduser() for p in (path, images) if p):
        if not root.exists():
            continue  # ingest names the missing path
        files = [root] if root.is_file() else sorted(f for f in root.rglob("*") if f.is_file())
        for f in files:
            rel = f.name if root.is_file() else f.relative_to(root).as_posix()
            st = f.stat()
            digest.update(f"{rel}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return digest.hexdigest() if path or images else ""
