"""Typed views of the ``optimize`` config group."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field

from edge.latency import Latency, measure
from yeo.config import Group
from yeo.errors import ConfigError
from yeo.optimize.activation import ACTIVATIONS
from yeo.optimize.prune import PruneConfig
from yeo.optimize.quantize import DEFAULT_RECIPES, EXTRA_RECIPES, QuantRecipe

RECIPES = {r.name: r for r in (*DEFAULT_RECIPES, *EXTRA_RECIPES)}


class LatencyConfig(Group):
    """``optimize.latency``: the interleaved timing of all ONNX variants."""

    warmup: int = Field(10, ge=0)
    rounds: int = Field(5, ge=1)
    runs: int = Field(20, ge=1)


class QuantConfig(Group):
    """``optimize.quant``: INT8 recipes tried in order within a per-model budget."""

    enabled: bool = True
    backend: Literal["ort", "inc"] = "ort"
    calib_images: int = Field(64, ge=1)
    seed: int = 0
    max_map_drop: float = Field(0.01, ge=0, le=1)
    recipes: list[str] = Field(default_factory=lambda: [r.name for r in DEFAULT_RECIPES])

    def model_post_init(self, _: Any) -> None:
        unknown = [n for n in self.recipes if n not in RECIPES]
        if unknown or not self.recipes:
            raise ConfigError(
                f"optimize.quant.recipes: unknown {unknown}; known: {sorted(RECIPES)}"
            )

    def recipe_list(self) -> list[QuantRecipe]:
        return [RECIPES[n] for n in self.recipes]


class BundleConfig(Group):
    """``optimize.bundle``: the edge bundle of the selected variant."""

    enabled: bool = True
    name: str | None = None  # default: yolov8n-<data.name>
    conf: float = Field(0.25, ge=0, le=1)
    iou: float = Field(0.7, gt=0, le=1)
    golden_images: int = Field(4, ge=1)
    benchmark_runs: int = Field(100, ge=1)


class OptimizeConfig(Group):
    """The ``optimize`` group."""

    base_model: str | None = None
    max_map_drop: float = Field(0.01, ge=0, le=1)  # absolute mAP50-95 below the base .pt
    opset: int = Field(17, ge=11, le=21)
    dynamic: bool = False
    simplify: bool = True
    threads: int = Field(2, ge=1)
    head: Literal["raw", "graph"] = "raw"
    latency: LatencyConfig = LatencyConfig()
    activation: str = "silu"
    prune: PruneConfig = PruneConfig()
    quant: QuantConfig = QuantConfig()
    bundle: BundleConfig = BundleConfig()

    def model_post_init(self, _: Any) -> None:
        if self.activation not in ACTIVATIONS:
            raise ConfigError(
                f"optimize.activation must be one of {', '.join(ACTIVATIONS)}, "
                f"got {self.activation!r}"
            )
        if self.activation != "silu" and not self.prune.enabled:
            raise ConfigError(
                "optimize.activation applies to the pruned model (swapped, then fine-tuned): "
                "it needs optimize.prune.enabled=true"
            )

    def measure_latency(self, model: Path) -> Latency:
        """onnxruntime latency of one ``model`` alone (INT8 trials) with this group's threads
        and as many timed runs as the interleaved timing gives each model."""
        lat = self.latency
        return measure(model, self.threads, lat.warmup, lat.rounds * lat.runs, 0)


def check(cfg: OptimizeConfig) -> None:
    """What a valid config still needs from this machine."""
    if cfg.quant.backend == "inc":
        try:
            import onnx_neural_compressor  # noqa: F401
        except ImportError:
            raise ConfigError(
                "optimize.quant.backend=inc needs onnx-neural-compressor: "
                "pip install --no-deps onnx-neural-compressor==1.0 (make install does)"
            ) from None
