"""Typed views of the ``optimize`` config group."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from edge.latency import Latency, measure
from yeo.errors import ConfigError
from yeo.optimize.activation import ACTIVATIONS
from yeo.optimize.prune import PruneConfig
from yeo.optimize.quantize import DEFAULT_RECIPES, EXTRA_RECIPES, QuantRecipe

HEADS = ("raw", "graph")  # ONNX variants cut at the head's convs (host decode) or whole
RECIPES = {r.name: r for r in (*DEFAULT_RECIPES, *EXTRA_RECIPES)}


def measure_latency(model: Path, cfg: dict[str, Any]) -> Latency:
    """onnxruntime latency of one ``model`` alone (INT8 trials) with the optimize group's
    threads and as many timed runs as the interleaved timing gives each model."""
    lat = cfg["latency"]
    return measure(model, cfg["threads"], lat["warmup"], lat["rounds"] * lat["runs"], 0)


def prune_config(cfg: dict[str, Any]) -> PruneConfig:
    return PruneConfig(**cfg["prune"])


def recipes(cfg: dict[str, Any]) -> list[QuantRecipe]:
    names = cfg["quant"]["recipes"]
    unknown = [n for n in names if n not in RECIPES]
    if unknown or not names:
        raise ConfigError(f"optimize.quant.recipes: unknown {unknown}; known: {sorted(RECIPES)}")
    return [RECIPES[n] for n in names]


def check(cfg: dict[str, Any]) -> None:
    try:
        prune_config(cfg)
    except TypeError as e:
        raise ConfigError(f"optimize.prune: {e}") from None
    recipes(cfg)
    backend = cfg["quant"].get("backend")
    if backend not in ("ort", "inc"):
        raise ConfigError(f"optimize.quant.backend must be ort or inc, got {backend!r}")
    if backend == "inc":
        try:
            import onnx_neural_compressor  # noqa: F401
        except ImportError:
            raise ConfigError(
                "optimize.quant.backend=inc needs onnx-neural-compressor: "
                "pip install --no-deps onnx-neural-compressor==1.0 (make install does)"
            ) from None
    if cfg["threads"] < 1 or cfg["quant"]["calib_images"] < 1:
        raise ConfigError("optimize.threads and optimize.quant.calib_images must be >= 1")
    for key, value in (
        ("max_map_drop", cfg["max_map_drop"]),
        ("quant.max_map_drop", cfg["quant"]["max_map_drop"]),
    ):
        if not isinstance(value, int | float) or not 0 <= value <= 1:
            raise ConfigError(
                f"optimize.{key} must be a number in [0, 1] (mAP50-95), got {value!r}"
            )
    if cfg.get("activation") not in ACTIVATIONS:
        raise ConfigError(
            f"optimize.activation must be one of {', '.join(ACTIVATIONS)}, "
            f"got {cfg.get('activation')!r}"
        )
    if cfg["activation"] != "silu" and not cfg["prune"]["enabled"]:
        raise ConfigError(
            "optimize.activation applies to the pruned model (swapped, then fine-tuned): "
            "it needs optimize.prune.enabled=true"
        )
    if cfg.get("head") not in HEADS:
        raise ConfigError(
            f"optimize.head must be one of {', '.join(HEADS)}, got {cfg.get('head')!r}"
        )
    lat = cfg["latency"]
    if lat["runs"] < 1 or lat["rounds"] < 1 or lat["warmup"] < 0:
        raise ConfigError(f"optimize.latency: runs and rounds must be >= 1, warmup >= 0, got {lat}")
    if not 11 <= cfg["opset"] <= 21:
        raise ConfigError(f"optimize.opset must be in 11..21, got {cfg['opset']}")
    bundle = cfg["bundle"]
    if not (0 <= bundle["conf"] <= 1 and 0 < bundle["iou"] <= 1):
        raise ConfigError("optimize.bundle: conf must be in [0, 1], iou in (0, 1]")
    if bundle["golden_images"] < 1 or bundle["benchmark_runs"] < 1:
        raise ConfigError("optimize.bundle.golden_images and benchmark_runs must be >= 1")


def check_eval(cfg: dict[str, Any]) -> None:
    """The ``eval`` group: the split that chooses and the one that reports must differ."""
    if cfg["split"] != "val" or cfg["held_out"] not in ("test", "val"):
        raise ConfigError(
            f"eval: split must be val and held_out test (or val), got {cfg['split']!r}, "
            f"{cfg['held_out']!r}"
        )
    if cfg["bootstrap"] < 1:
        raise ConfigError(f"eval.bootstrap must be >= 1 resamples, got {cfg['bootstrap']}")
