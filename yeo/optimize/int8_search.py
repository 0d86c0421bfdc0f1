"""The INT8 search within an accuracy budget: recipes tried in order (INC's autotune first when
asked), each scored by the project's evaluator; the first within budget wins."""

from __future__ import annotations

import logging
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from yeo.optimize.export import onnx_metadata
from yeo.optimize.inc import autotune_inc
from yeo.optimize.quantize import quantize
from yeo.optimize.recipes import QuantRecipe

log = logging.getLogger(__name__)


@dataclass
class QuantTrial:
    recipe: dict[str, Any]
    path: str
    map50_95: float
    drop: float
    p50_ms: float
    passed: bool


def quantize_within_budget(
    fp32: Path,
    out_dir: Path,
    recipes: list[QuantRecipe],
    images: list[Path],
    imgsz: int,
    score: Any,
    latency: Any,
    reference_map: float,
    max_drop: float,
) -> tuple[Path, list[QuantTrial]]:
    """Try ``recipes`` in order until one keeps mAP50-95 within ``max_drop`` of the reference.

    ``score(path) -> mAP50-95`` is the project's evaluator and ``latency(path) -> p50 ms`` its
    latency harness. Returns the first passing model, or the most accurate one if none passes
    (every trial is returned for the record).
    """
    trials: list[QuantTrial] = []
    for recipe in recipes:
        path = quantize(fp32, out_dir / f"{recipe.name}.onnx", recipe, images, imgsz)
        m = score(path)
        drop = reference_map - m
        trial = QuantTrial(recipe.as_dict(), str(path), m, drop, latency(path), drop <= max_drop)
        trials.append(trial)
        log.info(
            "INT8 %s: mAP50-95 %.4f (drop %+.4f), p50 %.2f ms -> %s",
            recipe.name,
            m,
            drop,
            trial.p50_ms,
            "pass" if trial.passed else "over budget",
        )
        if trial.passed:
            return path, trials
    best = max(trials, key=lambda t: t.map50_95)
    return Path(best.path), trials


@dataclass(frozen=True)
class Int8Search:
    """What an INT8 search tries and how it judges: ``recipes`` in order, calibrated on
    ``images`` at ``imgsz``; ``score(path) -> mAP50-95`` (the project's evaluator) and
    ``latency(path) -> p50 ms``; a trial passes within ``max_drop`` of the FP32 model."""

    recipes: list[QuantRecipe]
    images: list[Path]
    imgsz: int
    score: Any
    latency: Any
    max_drop: float
    backend: str = "ort"  # ort | inc (INC's autotune first)


def int8_within_budget(
    fp32: Path, work: Path, search: Int8Search
) -> tuple[Path, list[QuantTrial], float]:
    """INT8 ``fp32`` within ``max_drop`` of its own mAP50-95: INC's autotune first when
    ``backend == "inc"`` (its pick re-scored by ``score``: passed only if our own number says
    so), else or then onnxruntime's recipes in order. Returns the chosen model, every trial,
    and the FP32 reference mAP."""
    recipes, images, imgsz = search.recipes, search.images, search.imgsz
    score, latency, max_drop = search.score, search.latency, search.max_drop
    backend = search.backend
    reference = score(fp32)
    trials: list[QuantTrial] = []
    if backend == "inc":
        chosen, records, recipe = autotune_inc(
            fp32, work / "inc.onnx", recipes, images, imgsz, score, reference, max_drop
        )
        if chosen is not None and recipe is not None:
            m = score(chosen)
            portable = onnx_metadata(chosen)[0]["quantization"]["portable"]
            ok = reference - m <= max_drop and (portable or not recipe.portable)
            trial = QuantTrial(
                recipe.as_dict()
                | {"backend": "inc-autotune", "portable": portable, "evaluations": records},
                str(chosen),
                m,
                reference - m,
                latency(chosen),
                ok,
            )
            trials.append(trial)
            verdict = "pass" if ok else "over budget" if portable else "not saturation-free"
            verdict += "" if ok else ": onnxruntime recipes next"
            log.info(
                "INC picked %s: mAP50-95 %.4f (drop %+.4f) -> %s",
                recipe.name,
                m,
                trial.drop,
                verdict,
            )
            if trial.passed:
                return chosen, trials, reference
        else:
            log.info("INC found no INT8 model within the budget: onnxruntime recipes next")
    chosen, ort_trials = quantize_within_budget(
        fp32,
        work / "trials",
        recipes,
        images,
        imgsz,
        score,
        latency,
        reference_map=reference,
        max_drop=max_drop,
    )
    return chosen, trials + ort_trials, reference


def int8_into_folder(fp32: Path, dest: Path, search: Int8Search) -> tuple[list[QuantTrial], str]:
    """:func:`int8_within_budget` in a scratch folder that is removed after: the chosen model
    copied to ``dest``; every trial, and the chosen recipe's name."""
    work = Path(tempfile.mkdtemp(prefix="yeo-int8-"))
    try:
        chosen, trials, _ = int8_within_budget(fp32, work, search)
        shutil.copy(chosen, dest)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    recipe = next((t.recipe.get("name") for t in trials if t.path == str(chosen)), None)
    return trials, recipe or Path(chosen).stem
