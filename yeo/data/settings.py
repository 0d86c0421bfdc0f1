"""Typed views of the ``data`` config group (plain dicts travel as ZenML step parameters)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from yeo.data.etl import EtlConfig
from yeo.data.sources import SourceConfig
from yeo.data.synthetic import SyntheticSpec
from yeo.data.validation import Limits
from yeo.env import Workspace
from yeo.errors import ConfigError, DataError


def check(cfg: dict[str, Any]) -> None:
    """Build every typed view once so that a bad value fails before any pipeline starts."""
    try:
        source_config(cfg)
        etl_config(cfg)
        limits(cfg)
    except (TypeError, ValueError, DataError) as e:
        raise ConfigError(f"data: {e}") from None
    if cfg.get("on_error") not in ("fail", "skip"):
        raise ConfigError(f"data.on_error must be 'fail' or 'skip', got {cfg.get('on_error')!r}")
    if cfg["source"] not in ("synthetic", "yolo", "voc", "coco128", "coco", "custom"):
        raise ConfigError(
            f"data.source {cfg['source']!r}: use synthetic, yolo, voc, coco, coco128 or custom"
        )
    if cfg["source"] == "custom":
        from yeo.data.sources import load_reader

        load_reader(cfg.get("reader") or "")  # importable before anything starts
    if str(cfg.get("use_source_splits", "auto")).lower() not in ("auto", "true", "false"):
        raise ConfigError("data.use_source_splits must be auto, true or false")


def source_config(cfg: dict[str, Any]) -> SourceConfig:
    syn = cfg.get("synthetic") or {}
    return SourceConfig(
        source=cfg["source"],
        name=cfg["name"],
        path=cfg.get("path"),
        images=cfg.get("images"),
        reader=cfg.get("reader"),
        names=list(cfg["names"]) if cfg.get("names") else None,
        synthetic=SyntheticSpec(**syn) if cfg["source"] == "synthetic" else None,
    )


def etl_config(cfg: dict[str, Any]) -> EtlConfig:
    return EtlConfig(
        max_side=cfg.get("max_side"),
        jpeg_quality=int(cfg.get("jpeg_quality", 95)),
        split={k: float(v) for k, v in cfg["split"].items()},
        seed=int(cfg.get("seed", 0)),
    )


def limits(cfg: dict[str, Any]) -> Limits:
    return Limits(**(cfg.get("limits") or {}))


def staging_dir(ws: Workspace, name: str) -> Path:
    """Staging lives beside data/processed (same filesystem: publishing is one rename)."""
    return ws.data / ".staging" / name


def processed_dir(ws: Workspace, name: str) -> Path:
    return ws.data / "processed" / name


def raw_dir(ws: Workspace, name: str) -> Path:
    return ws.data / "raw" / name


def report_dir(ws: Workspace, name: str) -> Path:
    return ws.outputs / "reports" / "data" / name
