"""Typed views of the ``optimize`` config group."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from edge.engine import installed
from yeo.errors import ConfigError
from yeo.group import Group
from yeo.optimize.recipes import DEFAULT_RECIPES, EXTRA_RECIPES, QuantRecipe

RECIPES = {r.name: r for r in (*DEFAULT_RECIPES, *EXTRA_RECIPES)}


# INT8-friendly activations of the pruned model (yeo.optimize.activation); hybrid: ReLU in the
# high-resolution stages only
ACTIVATIONS = ("silu", "relu", "relu6", "leakyrelu", "hybrid")
# Taylor importance was offered with gradients of a made-up loss on a noise batch, in train
# mode (BatchNorm absorbed the noise): a placeholder, so it is gone until it uses the
# detection loss on real train images.
IMPORTANCE = ("magnitude", "bn_scale")


class PruneConfig(Group):
    """``optimize.prune``: the pruned variants' architecture and their recovery fine-tune."""

    enabled: bool = True
    ratio: float = 0.5  # target fraction of channels removed (after all steps)
    steps: int = 2  # iterative: prune a little, fine-tune, repeat
    finetune_epochs: int = 10  # epochs of fine-tuning after each step
    importance: str = "magnitude"  # magnitude | bn_scale
    round_to: int = 8  # channel counts become multiples of this (SIMD-friendly)
    lr0: float = 0.002  # fine-tuning learning rate (cosine schedule)
    activation: str = "relu"  # swapped before pruning, recovered by the fine-tune
    distill: float = 0.0  # >0: fine-tune with distillation from the unpruned model (weight)
    control: bool = True  # base_ft: the unpruned base fine-tuned on the same schedule
    # score each fine-tuned step on val: the last step within optimize.max_map_drop of the
    # base is the pruned variant (the final step when none is)
    keep_within_budget: bool = True
    # uniform: every layer loses ``ratio`` of its channels; sensitivity: per-block ratios from
    # a scan (each block pruned alone at each of scan_ratios, scored on val, no fine-tune)
    # that spend uniform pruning's MACs saving where val loses the least
    schedule: Literal["uniform", "sensitivity"] = "uniform"
    scan_ratios: list[float] = Field(default_factory=lambda: [0.25, 0.5, 0.75])

    def model_post_init(self, _: Any) -> None:
        if not self.scan_ratios or not all(0 < r < 0.95 for r in self.scan_ratios):
            raise ConfigError(
                f"optimize.prune.scan_ratios must be values in (0, 0.95), got {self.scan_ratios}"
            )
        if not 0 < self.ratio < 0.95:
            raise ConfigError(f"optimize.prune.ratio must be in (0, 0.95), got {self.ratio}")
        if self.steps < 1 or self.finetune_epochs < 0:
            raise ConfigError("optimize.prune.steps >= 1 and finetune_epochs >= 0 required")
        if self.distill < 0:
            raise ConfigError(f"optimize.prune.distill must be >= 0, got {self.distill}")
        if self.importance not in IMPORTANCE:
            raise ConfigError(
                f"optimize.prune.importance must be one of {IMPORTANCE}, got {self.importance!r}"
            )
        if self.activation not in ACTIVATIONS:
            raise ConfigError(
                f"optimize.prune.activation must be one of {', '.join(ACTIVATIONS)}, "
                f"got {self.activation!r}"
            )


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
    # a ``_w8`` twin of every FP32 variant on OpenVINO: int8 Conv weights, float activations
    # (yeo.optimize.quantize.quantize_weights); only where the backend axis has OpenVINO
    weights_only: bool = True
    # a ``_nncf`` twin of every FP32 variant on OpenVINO: NNCF's INT8 for OpenVINO's CPU plugin
    # (yeo.optimize.quantize.quantize_nncf); auto: where the backend axis has OpenVINO and NNCF
    # is installed
    nncf: Literal["auto", "on", "off"] = "auto"

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
    # the bundle verified on an emulated Arm64 CPU (yeo.arm64), its deviation in golden.json:
    # auto when the aarch64 environment is built, on (build it; fail without), off
    arm64: Literal["auto", "on", "off"] = "auto"


class OptimizeConfig(Group):
    """The ``optimize`` group."""

    base_model: str | None = None
    # the size every variant is judged, pruned, exported and bundled at; None: the imported
    # base model's own training size (its checkpoint's train_args), else train.imgsz
    imgsz: int | None = Field(None, ge=32, multiple_of=32)
    # the input size axis: smaller sizes each FP32 and INT8 variant is also exported (INT8:
    # calibrated) and judged at (no retraining); the bundle declares the size it was chosen at
    sizes: list[int] = Field(default_factory=list)
    max_map_drop: float = Field(0.01, ge=0, le=1)  # absolute mAP50-95 below the base .pt
    # the floor under the budget: a base whose held-out mAP50-95 is under this, or whose
    # interval reaches down to the budget (a model detecting nothing would pass), gives a
    # vacuous verdict; the run then stops before the bundle unless allow_vacuous
    min_base_map: float = Field(0.0, ge=0, le=1)
    allow_vacuous: bool = False
    # the held-out split confirms the selected variant over the budget (its whole paired
    # interval): the run stops before the bundle unless allow_over_budget
    allow_over_budget: bool = False
    opset: int = Field(17, ge=11, le=21)
    dynamic: bool = False
    simplify: bool = True
    threads: int = Field(2, ge=1)
    head: Literal["raw", "graph"] = "raw"
    # the backend axis: every ONNX variant also scored, timed and selectable on OpenVINO (its
    # ``_ov`` twin: the same file, in the precision the CPU gives it); auto: when installed
    openvino: Literal["auto", "on", "off"] = "auto"
    latency: LatencyConfig = LatencyConfig()
    prune: PruneConfig = PruneConfig()
    quant: QuantConfig = QuantConfig()
    bundle: BundleConfig = BundleConfig()

    def model_post_init(self, _: Any) -> None:
        bad = [s for s in self.sizes if s < 32 or s % 32]
        if bad or len(set(self.sizes)) != len(self.sizes):
            raise ConfigError(
                f"optimize.sizes: {self.sizes}: distinct multiples of 32 (the model's largest "
                f"stride), at least 32, required{f'; not {bad}' if bad else ''}"
            )

    def sizes_below(self, imgsz: int) -> list[int]:
        """The size axis at ``imgsz``: the ``sizes`` under it, largest first; a size at or over
        it is a config error (the variants are judged at ``imgsz``, and no larger)."""
        over = [s for s in self.sizes if s >= imgsz]
        if over:
            raise ConfigError(
                f"optimize.sizes={self.sizes}: {over} not below the {imgsz} px the base is "
                "judged at (the axis tries smaller inputs)"
            )
        return sorted(self.sizes, reverse=True)


def openvino_version() -> str | None:
    """The installed OpenVINO's version, or None."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("openvino")
    except PackageNotFoundError:
        return None


def use_openvino(cfg: OptimizeConfig) -> bool:
    """Whether the backend axis includes OpenVINO (``optimize.openvino``)."""
    return cfg.openvino == "on" or (cfg.openvino == "auto" and openvino_version() is not None)


def use_w8(cfg: OptimizeConfig) -> bool:
    """Whether every FP32 variant gets an int8-weights twin on OpenVINO
    (``optimize.quant.weights_only``)."""
    return cfg.quant.weights_only and cfg.quant.enabled and use_openvino(cfg)


def use_nncf(cfg: OptimizeConfig) -> bool:
    """Whether every FP32 variant gets an NNCF INT8 twin on OpenVINO (``optimize.quant.nncf``)."""
    q = cfg.quant
    wanted = q.nncf == "on" or (q.nncf == "auto" and installed("nncf"))
    return wanted and q.enabled and use_openvino(cfg)


def backends_tried(cfg: OptimizeConfig, openvino_runs: str | None = None) -> dict[str, str]:
    """Each backend with its version, or why it was not tried: for the report."""
    import onnxruntime

    ov = openvino_version()
    if use_openvino(cfg):
        ran = f", runs {openvino_runs}" if openvino_runs else ""
        why = f"{ov} (the _ov variants{ran})"
    elif ov is None:
        why = "not tried: not installed (pip install openvino)"
    else:
        why = f"not tried: optimize.openvino=off ({ov} is installed)"
    return {"onnxruntime": onnxruntime.__version__, "openvino": why}


def check(cfg: OptimizeConfig) -> None:
    """What a valid config still needs from this machine."""
    if cfg.openvino == "on" and openvino_version() is None:
        raise ConfigError("optimize.openvino=on needs OpenVINO: pip install openvino")
    if cfg.quant.nncf == "on" and not installed("nncf"):
        raise ConfigError("optimize.quant.nncf=on needs NNCF: pip install nncf (make install does)")
    if cfg.quant.nncf == "on" and not use_openvino(cfg):
        raise ConfigError(
            "optimize.quant.nncf=on needs OpenVINO on the backend axis (optimize.openvino)"
        )
    if cfg.quant.backend == "inc":
        try:
            import onnx_neural_compressor  # noqa: F401
        except ImportError:
            raise ConfigError(
                "optimize.quant.backend=inc needs onnx-neural-compressor: "
                "pip install --no-deps onnx-neural-compressor==1.0 (make install does)"
            ) from None
