"""The reported numbers: every variant scored once on the held-out split, after the choice.

Everything that chooses (``best.pt``, the fine-tune checkpoint, the INT8 recipe, the variant)
uses the val split; the numbers in the report, the model card, the bundle metadata and the
budget verdict come from the test split, which chose nothing. Each mAP gets a 95% bootstrap
interval over images, and each variant's drop vs the base ``.pt`` a paired interval from the
same resamples, so a 0.01 budget can be read against the noise of a small test split.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import yaml

from yeo.evaluation import EvalSettings, ImageStats, evaluate_images, map50_95_resamples
from yeo.optimize.variants import HeldOut, HeldOutScore, Selection, VariantScore

BASE = "base_pt"
CONTROL = "base_ft"


def held_out_split(data_yaml: Path, wanted: str) -> str:
    """``wanted`` (test) when the dataset has it; otherwise val, which then also chose."""
    data = yaml.safe_load(Path(data_yaml).read_text()) or {}
    return wanted if data.get(wanted) else "val"


def bootstrap(
    stats: dict[str, ImageStats], base: str, resamples: int, seed: int = 0
) -> dict[str, tuple[tuple[float, float], tuple[float, float]]]:
    """Per model: the 95% interval of its mAP50-95, and of ``base``'s minus its, over the same
    ``resamples`` image resamples (with replacement) for every model."""
    images = stats[base].images
    for name, s in stats.items():
        if s.images != images:
            raise ValueError(f"{name} was scored on other images than {base}")
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, len(images), size=(resamples, len(images)))
    maps = {name: map50_95_resamples(s, draws) for name, s in stats.items()}

    def ci(x: np.ndarray) -> tuple[float, float]:
        lo, hi = np.percentile(x, [2.5, 97.5])
        return float(lo), float(hi)

    return {name: (ci(m), ci(maps[base] - m)) for name, m in maps.items()}


def verdict(name: str, score: HeldOutScore, budget: float, split: str) -> tuple[str, bool, bool]:
    """The budget verdict on the held-out split: text, within (point estimate), inside noise."""
    lo, hi = score.drop_ci95
    within = score.drop <= budget + 1e-9
    noisy = lo <= budget < hi
    head = (
        f"{name} on {split}: {score.map50_95:.4f} [{score.ci95[0]:.3f}, {score.ci95[1]:.3f}], "
        f"drop vs {BASE} {score.drop:+.4f} [{lo:+.3f}, {hi:+.3f}] against a {budget} budget: "
    )
    if within and not noisy:
        return head + "within the budget, and so is the whole interval", True, False
    if not within and not noisy:
        return head + "over the budget, and so is the whole interval", False, False
    side = "within" if within else "over"
    return (
        head + f"{side} the budget by its point estimate, but inside the noise: the interval "
        "straddles the budget, so this test split cannot confirm it (more test images would)",
        within,
        True,
    )


def floor(base: HeldOutScore, budget: float, min_map: float, split: str) -> str | None:
    """Why no budget verdict against ``base`` means anything, or None: its mAP50-95 is under
    ``min_map``, or its interval reaches down to ``budget``, so that a model that detects
    nothing could be "within the budget" (the COCO128-from-scratch case: every variant 0.0)."""
    lo = base.ci95[0]
    if base.map50_95 < min_map:
        return (
            f"{BASE} scored {base.map50_95:.4f} on {split}, under the {min_map} floor "
            "(optimize.min_base_map)"
        )
    if lo <= budget + 1e-9:
        return (
            f"{BASE} on {split}: {base.map50_95:.4f} [{lo:.3f}, {base.ci95[1]:.3f}]; its interval "
            f"reaches the {budget} budget, so a model that detects nothing could pass"
        )
    return None


def control(variants: list[VariantScore], budget: float, split: str) -> str | None:
    """What the fair control says, or None without one: how much ``base_ft`` (the base
    fine-tuned, unpruned, on the pruned copy's schedule) gains over the base, so how much of a
    fine-tuned variant's score is extra training; each pruned variant against it (the cost of
    pruning alone); and "the base was not converged" when the gain is over the budget."""
    by = {v.name: v.held_out for v in variants if v.held_out}
    ft = by.get(CONTROL)
    if ft is None:
        return None
    lo, hi = ft.drop_ci95
    meaning = (
        "that much of a fine-tuned variant's score is extra training, not the optimization"
        if ft.drop <= 0
        else "the fine-tune itself costs the base that much, apart from any optimization"
    )
    text = (
        f"{CONTROL} (the base fine-tuned, unpruned, on the pruned copy's schedule) scores "
        f"{-ft.drop:+.4f} [{-hi:+.3f}, {-lo:+.3f}] against {BASE} on {split}: {meaning}"
    )
    pruned = [(v.name, by[v.name]) for v in variants if v.pruned and v.name in by]
    if pruned:
        text += f"; against {CONTROL}: " + ", ".join(
            f"{name} {ft.drop - h.drop:+.4f}" for name, h in pruned
        )
    if -ft.drop > budget + 1e-9:
        text += (
            f". The base was not converged: fine-tuning alone added more than the {budget} "
            "budget, so train it longer (or bring a converged model) before judging the cost "
            "of pruning"
        )
    return text


def score_held_out(
    sel: Selection,
    models: dict[str, Path],
    data_yaml: Path,
    settings: EvalSettings,
    seed: int = 0,
) -> Selection:
    """A copy of ``sel`` with every variant (its local file in ``models``) scored on the
    held-out split, and the verdict."""
    split = held_out_split(data_yaml, settings.held_out)
    ev = settings.model_copy(update={"split": split})
    results, stats = {}, {}
    for v in sel.variants:  # each at the size it was judged at (the size axis)
        at = ev.model_copy(update={"imgsz": v.imgsz}) if v.imgsz else ev
        # each on what runs it (the _ov twins on OpenVINO)
        results[v.name], stats[v.name] = evaluate_images(models[v.name], data_yaml, at, v.backend)
    intervals = bootstrap(stats, BASE, settings.bootstrap, seed)
    base_map = results[BASE].map50_95
    out = sel.model_copy(deep=True)
    for v in out.variants:
        r = results[v.name]
        ci, drop_ci = intervals[v.name]
        v.held_out = HeldOutScore(
            map50=r.map50,
            map50_95=r.map50_95,
            ci95=ci,
            drop=base_map - r.map50_95,
            drop_ci95=drop_ci,
            per_class_ap50_95=r.per_class_ap50_95,
        )
    chosen = next((v for v in out.variants if v.name == sel.selected), None)
    confirms = None
    if chosen and chosen.held_out:
        text, within, noisy = verdict(chosen.name, chosen.held_out, sel.max_map_drop, split)
        confirms = max(0.0, chosen.held_out.drop_ci95[1])
        text += (
            f". The {results[BASE].n_images} {split} images confirm a budget of {confirms:.3f} "
            f"or more for {chosen.name} (the upper end of its paired interval)"
        )
    else:
        text, within, noisy = f"no variant selected on val ({sel.reason})", None, None
    base = next(v for v in out.variants if v.name == BASE).held_out
    why = floor(base, sel.max_map_drop, sel.min_base_map, split) if base else None
    if why:
        text = (
            f"vacuous: the base did not learn enough for a budget to mean anything ({why}). {text}"
        )
    first = results[BASE]
    out.held_out = HeldOut(
        split=split,
        independent=split != settings.split,
        n_images=first.n_images,
        n_instances=first.n_instances,
        resamples=settings.bootstrap,
        verdict=text,
        within_budget=within,
        inside_noise=noisy,
        floor=why,
        confirms_budget=confirms,
        control=control(out.variants, sel.max_map_drop, split),
    )
    return out
