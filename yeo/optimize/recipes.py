"""INT8 recipes: what one quantization tries (calibration, per-channel or per-tensor, which
nodes stay FP32, activation type, weight range), the default fallback list and the opt-in ones.

Weight ranges (why, in :mod:`yeo.optimize.portability`); every default recipe is portable:

- ``pairsafe`` (default): per channel, the scale is set so that the two largest |w| together
  quantize to at most 128 (``scale = (t1 + t2) / 127``): any pair of that channel fits int16.
  Channels whose largest weight stands out keep more than 7 bits of resolution.
- ``7bit``: onnxruntime's ``reduce_range`` (weights in [-64, 64]), the textbook answer.
- ``full``: 8-bit weights, fastest to reason about on VNNI but CPU-dependent; opt-in only.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

from yeo.errors import ConfigError

Exclude = Literal["none", "tail", "head"]
WEIGHT_RANGES = ("pairsafe", "7bit", "full")


@dataclass(frozen=True)
class QuantRecipe:
    """One quantization configuration; the fallback list tries several in order."""

    name: str
    calibrate: str = "percentile"  # minmax | percentile | entropy
    per_channel: bool = True
    exclude: Exclude = "tail"  # none | tail (Detect decode) | head (all of Detect)
    activation: str = "u8"  # u8 | s8
    percentile: float = 99.999
    weights: str = "pairsafe"  # pairsafe | 7bit | full (see the module docstring)

    @property
    def portable(self) -> bool:
        """Outputs identical on every x86 CPU kind (no int16 saturation possible)."""
        return self.weights != "full"

    def __post_init__(self) -> None:
        if self.calibrate not in ("minmax", "percentile", "entropy"):
            raise ConfigError(f"quant recipe {self.name}: unknown calibration {self.calibrate!r}")
        if self.exclude not in ("none", "tail", "head"):
            raise ConfigError(f"quant recipe {self.name}: exclude must be none, tail or head")
        if self.weights not in WEIGHT_RANGES:
            raise ConfigError(f"quant recipe {self.name}: weights must be one of {WEIGHT_RANGES}")

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


DEFAULT_RECIPES: tuple[QuantRecipe, ...] = (
    QuantRecipe("u8-percentile-perchannel-tail"),
    QuantRecipe("u8-minmax-perchannel-tail", calibrate="minmax"),
    QuantRecipe("u8-entropy-perchannel-tail", calibrate="entropy"),
    QuantRecipe("u8-percentile-perchannel-head", exclude="head"),
    QuantRecipe("u8-minmax-pertensor-head", calibrate="minmax", per_channel=False, exclude="head"),
)
# opt-in variants of the first recipe, by weight range (``full`` is CPU-dependent)
EXTRA_RECIPES: tuple[QuantRecipe, ...] = (
    QuantRecipe("u8-percentile-perchannel-tail-7bit", weights="7bit"),
    QuantRecipe("u8-percentile-perchannel-tail-w8full", weights="full"),
)
