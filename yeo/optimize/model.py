"""Typed records of the optimize pipeline."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class PruneSummary(BaseModel):
    enabled: bool
    ratio: float
    steps: list[dict[str, Any]] = Field(default_factory=list)
    params_before: int
    params_after: int
    macs_before: int
    macs_after: int
    seconds: float
    imgsz: int
    activation: str = "silu"  # of the pruned model (swapped before pruning)
    distill: float = 0.0  # distillation weight from the unpruned model in fine-tuning (0: off)
    kept: int | None = None  # the step whose model is the pruned variant (the last within budget)
    kept_why: str | None = None  # why an earlier step than the final one was kept
    schedule: str = "uniform"  # uniform | sensitivity (per-block ratios from a scan on val)
    ratios: dict[str, float] | None = None  # per-block ratios (sensitivity)
    scan: list[dict[str, Any]] | None = None  # the scan: block, ratio, drop, macs/params saved


class ExportSummary(BaseModel):
    variant: str
    simplified: bool
    max_abs_diff: float | None
    opset: int
    size_bytes: int


class QuantSummary(BaseModel):
    variant: str
    chosen: str
    passed: bool
    trials: list[dict[str, Any]]
