"""Held-out test split, bootstrap intervals, the budget verdict and interleaved timing."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import yaml_dump, yaml_load
from yeo.errors import ConfigError
from yeo.evaluation import EvalSettings, ImageStats, evaluate_images
from yeo.optimize.heldout import (
    bootstrap,
    control,
    floor,
    held_out_split,
    score_held_out,
    verdict,
)
from yeo.optimize.variants import (
    HeldOut,
    HeldOutScore,
    Selection,
    VariantScore,
    time_interleaved,
)


def _with_test_split(tiny_data: Path, tmp_path: Path) -> Path:
    """The tiny set's data.yaml with its val images also named as the test split."""
    data = yaml_load(tiny_data) | {"path": str(tiny_data.parent)}
    data["test"] = data["val"]
    out = tmp_path / "data.yaml"
    out.write_text(yaml_dump(data))
    return out


def _variant(name: str, path: Path, fmt: str) -> VariantScore:
    return VariantScore(
        name=name,
        file=path.name,
        format=fmt,
        precision="fp32",
        pruned=False,
        map50=0.0,
        map50_95=0.3,
        precision_=0.0,
        recall=0.0,
        per_class_ap50_95={},
        size_bytes=path.stat().st_size,
    )


def test_per_image_stats_reproduce_the_evaluators_map(trained_model: Path, tiny_data: Path):
    """The bootstrap resamples exactly what the evaluator scored: all images give its mAP."""
    res, stats = evaluate_images(trained_model, tiny_data, EvalSettings(imgsz=128))
    assert len(stats.images) == res.n_images == 6
    assert res.map50_95 > 0.01  # the session model detects something
    assert stats.map50_95() == pytest.approx(res.map50_95, abs=1e-9)
    # a resample that repeats one image scores that image alone
    one = ImageStats(
        stats.images[:1], stats.tp[:1], stats.conf[:1], stats.pred_cls[:1], stats.target_cls[:1]
    )
    assert stats.map50_95(np.array([0, 0, 0])) == pytest.approx(one.map50_95(), abs=1e-9)


def _matched_stats(rng: np.random.Generator, n: int, classes: int = 6) -> ImageStats:
    """Per-image matching as the evaluator makes it: a true positive only where a label of its
    class is left in its image, strict IoU thresholds hit less (distinct scores: the order of
    equal scores is arbitrary in both computations)."""
    tp, conf, pred_cls, target_cls = [], [], [], []
    for _ in range(n):
        labels = rng.integers(0, classes, rng.integers(0, 8))
        k = int(rng.integers(0, 60))
        cls = rng.integers(0, classes, k)
        score = rng.random(k)
        hits, left = np.zeros((k, 10), bool), np.bincount(labels, minlength=classes)
        for j in np.argsort(-score, kind="stable"):
            if left[cls[j]] and rng.random() < 0.6:
                left[cls[j]] -= 1
                hits[j] = np.arange(10) < rng.integers(1, 11)
        tp.append(hits)
        conf.append(score.astype(np.float32))
        pred_cls.append(cls.astype(float))
        target_cls.append(labels.astype(float))
    return ImageStats([str(i) for i in range(n)], tp, conf, pred_cls, target_cls)


def test_all_resamples_at_once_equal_one_resample_at_a_time(
    trained_model: Path, tiny_data: Path
) -> None:
    """The vectorised bootstrap gives each resample's mAP as concatenating its images would:
    on the session model's matching and on generated matchings (absent classes, repeated and
    missing images)."""
    from yeo.evaluation import map50_95_resamples

    rng = np.random.default_rng(0)
    _, real = evaluate_images(trained_model, tiny_data, EvalSettings(imgsz=128))
    for stats in (real, *(_matched_stats(rng, n) for n in (1, 5, 60, 400))):
        n = len(stats.images)
        draws = rng.integers(0, n, size=(64, n))
        expected = np.array([stats.map50_95(d) for d in draws])
        got = map50_95_resamples(stats, draws, cells=5000)  # small chunks: the seams too
        assert np.allclose(got, expected, rtol=0, atol=1e-12), (n, got - expected)
    assert map50_95_resamples(real, np.zeros((3, 0), int)).tolist() == [0.0, 0.0, 0.0]


def test_lean_map_equals_ultralytics_ap_per_class() -> None:
    """The bootstrap's mAP is ultralytics' AP table without its curves: equal, ties included."""
    from ultralytics.utils.metrics import ap_per_class

    from yeo.evaluation import map50_95

    rng = np.random.default_rng(0)
    for n in (0, 1, 50, 400):
        tp = rng.random((n, 10)) < np.linspace(0.8, 0.2, 10)  # fewer hits at stricter IoU
        conf = rng.choice([0.9, 0.5, 0.5, 0.3, 0.01], n) if n % 2 else rng.random(n)
        pred_cls = rng.integers(0, 4, n).astype(float)
        target_cls = rng.integers(0, 5, 30).astype(float)  # class 4: labels, no predictions
        expected = ap_per_class(tp, conf, pred_cls, target_cls)[5].mean()
        assert map50_95(tp, conf, pred_cls, target_cls) == expected
    assert map50_95(tp, conf, pred_cls, target_cls[:0]) == 0.0


def test_bootstrap_intervals_are_paired_and_contain_the_estimate(
    trained_model: Path, onnx_model: Path, tiny_data: Path
) -> None:
    ev = EvalSettings(imgsz=128)
    pt_res, pt = evaluate_images(trained_model, tiny_data, ev)
    _, onnx = evaluate_images(onnx_model, tiny_data, ev)
    out = bootstrap({"base_pt": pt, "base_fp32": onnx}, "base_pt", 200, seed=1)
    (lo, hi), drop = out["base_pt"]
    assert lo <= pt_res.map50_95 <= hi and hi - lo > 0  # 6 images: a wide interval
    assert drop == (0.0, 0.0)  # paired: the base against itself never differs
    (_, _), (dlo, dhi) = out["base_fp32"]
    assert dhi - dlo < hi - lo  # the paired difference is far tighter than either mAP
    assert out == bootstrap({"base_pt": pt, "base_fp32": onnx}, "base_pt", 200, seed=1)
    shuffled = ImageStats(pt.images[::-1], pt.tp, pt.conf, pt.pred_cls, pt.target_cls)
    with pytest.raises(ValueError, match="other images"):
        bootstrap({"base_pt": pt, "x": shuffled}, "base_pt", 10)


@pytest.mark.parametrize(
    ("drop", "ci", "within", "noisy", "words"),
    [
        (0.002, (-0.004, 0.008), True, False, "within the budget, and so is the whole interval"),
        (0.004, (-0.010, 0.020), True, True, "within the budget by its point estimate, but inside"),
        (0.015, (0.005, 0.030), False, True, "over the budget by its point estimate, but inside"),
        (0.030, (0.020, 0.040), False, False, "over the budget, and so is the whole interval"),
    ],
)
def test_budget_verdict_says_when_it_is_inside_the_noise(drop, ci, within, noisy, words):
    score = HeldOutScore(
        map50=0.5, map50_95=0.3, ci95=(0.2, 0.4), drop=drop, drop_ci95=ci, per_class_ap50_95={}
    )
    text, w, n = verdict("pruned_int8", score, 0.01, "test")
    assert (w, n) == (within, noisy) and words in text and "pruned_int8 on test" in text
    # only a confirmed breach stops the run before the bundle (optimize.allow_over_budget),
    # and not when the base is under the floor (that verdict means nothing either way)
    held = HeldOut(
        split="test", independent=True, n_images=1060, n_instances=2872, resamples=1000,
        verdict=text, within_budget=w, inside_noise=n,
    )  # fmt: skip
    assert held.breached == (drop == 0.030)
    assert not held.model_copy(update={"floor": "base_pt scored 0.0"}).breached


@pytest.mark.parametrize(
    ("m", "ci", "min_map", "words"),
    [
        (0.0, (0.0, 0.0), 0.0, "its interval reaches the 0.01 budget"),  # COCO128 from scratch
        (0.03, (0.008, 0.05), 0.0, "its interval reaches the 0.01 budget"),
        (0.03, (0.02, 0.05), 0.05, "under the 0.05 floor (optimize.min_base_map)"),
        (0.2058, (0.184, 0.245), 0.0, None),  # the default run's base: a verdict means something
    ],
)
def test_a_base_that_learned_nothing_makes_the_verdict_vacuous(m, ci, min_map, words):
    base = HeldOutScore(
        map50=m, map50_95=m, ci95=ci, drop=0.0, drop_ci95=(0.0, 0.0), per_class_ap50_95={}
    )
    why = floor(base, 0.01, min_map, "test")
    assert why is None if words is None else words in why


def test_the_control_separates_extra_training_from_pruning(tmp_path: Path) -> None:
    """The VOC run's case: the pruned copy beat the base by 0.023, all of it (and more) extra
    training: base_ft gains 0.030, so pruning itself cost 0.007, and the base was not
    converged."""
    weights = tmp_path / "w.pt"
    weights.write_bytes(b"x")
    variants = [_variant(n, weights, "pt") for n in ("base_pt", "base_ft", "pruned_int8")]
    variants[2].pruned = True
    drops = (0.0, -0.030, -0.023)
    cis = ((0.0, 0.0), (-0.045, -0.016), (-0.04, -0.006))
    for v, drop, ci in zip(variants, drops, cis, strict=True):
        v.held_out = HeldOutScore(
            map50=0.5,
            map50_95=0.3 - drop,
            ci95=(0.2, 0.4),
            drop=drop,
            drop_ci95=ci,
            per_class_ap50_95={},
        )
    text = control(variants, 0.01, "test")
    assert text.startswith("base_ft (the base fine-tuned, unpruned, on the pruned copy's")
    assert "+0.0300 [+0.016, +0.045] against base_pt on test" in text
    assert "against base_ft: pruned_int8 -0.0070" in text
    assert "The base was not converged" in text
    variants[1].held_out = variants[1].held_out.model_copy(update={"drop": -0.004})
    assert "not converged" not in control(variants, 0.01, "test")  # within the budget
    # the converged fixture's case: the same fine-tune costs the unpruned base 0.023
    variants[1].held_out = variants[1].held_out.model_copy(update={"drop": 0.023})
    assert "the fine-tune itself costs the base that much" in control(variants, 0.01, "test")
    assert control(variants[:1] + variants[2:], 0.01, "test") is None  # no control: no note


def test_held_out_scoring_uses_test_and_falls_back_to_val_by_name(
    trained_model: Path, onnx_model: Path, tiny_data: Path, tmp_path: Path
) -> None:
    with_test = _with_test_split(tiny_data, tmp_path)
    assert held_out_split(with_test, "test") == "test"
    assert held_out_split(tiny_data, "test") == "val"  # the tiny set has no test split
    variants = [_variant("base_pt", trained_model, "pt"), _variant("base_fp32", onnx_model, "onnx")]
    variants[1].p50_ms = 1.0
    sel = Selection(
        selected="base_fp32", base_map50_95=0.3, max_map_drop=0.01, reason="r", variants=variants
    )
    settings = EvalSettings(imgsz=128, bootstrap=50)
    models = {"base_pt": trained_model, "base_fp32": onnx_model}
    out = score_held_out(sel, models, with_test, settings)
    assert out.held_out.split == "test" and out.held_out.independent
    assert out.held_out.resamples == 50 and out.held_out.n_images == 6
    assert sel.held_out is None  # the input selection is left as it was
    chosen = out.variants[1].held_out
    assert chosen.ci95[0] <= chosen.map50_95 <= chosen.ci95[1]
    assert abs(chosen.drop) < 0.02  # the ONNX export scores like its .pt
    assert out.held_out.verdict.startswith("base_fp32 on test: ")
    # the smallest budget these 6 images confirm: the upper end of the paired interval
    assert out.held_out.confirms_budget == max(0.0, chosen.drop_ci95[1])
    assert f"The 6 test images confirm a budget of {out.held_out.confirms_budget:.3f}" in (
        out.held_out.verdict
    )
    fallback = score_held_out(sel, models, tiny_data, settings).held_out
    assert fallback.split == "val" and not fallback.independent


def test_interleaved_timing_fills_every_onnx_variant_and_its_spread(
    trained_model: Path, onnx_model: Path, tiny_data: Path, tmp_path: Path
) -> None:
    from yeo.optimize.export import cut_head

    cut_head(onnx_model, tmp_path / "raw.onnx")
    variants = [
        _variant("base_pt", trained_model, "pt"),
        _variant("base_fp32", onnx_model, "onnx"),
        _variant("raw_fp32", tmp_path / "raw.onnx", "onnx"),
    ]
    image = sorted((tiny_data.parent / "images" / "val").glob("*.jpg"))[0]
    models = {"base_fp32": onnx_model, "raw_fp32": tmp_path / "raw.onnx"}
    timing = time_interleaved(
        variants, models, image, threads=1, warmup=1, rounds=2, runs=3, conf=0.25
    )
    assert timing["image"] == image.name  # a name: no local path travels in the selection
    assert timing["interleaved"] and timing["rounds"] == 2
    assert timing["end_to_end"] == f"model + decode + NMS at conf 0.25, on {image.name}"
    pt, *onnx = variants
    assert pt.p50_ms is None
    for v in onnx:  # the raw head's host decode runs inside its timed calls
        assert 0 < v.p25_ms <= v.p50_ms <= v.p75_ms <= v.p99_ms


def test_default_split_is_three_way_and_data_yaml_names_test(tmp_path: Path) -> None:
    from yeo.data import etl, sources, synthetic

    assert etl.EtlConfig().split == {"train": 0.7, "val": 0.15, "test": 0.15}
    raw = synthetic.generate(tmp_path / "raw", synthetic.SyntheticSpec(num_images=20, imgsz=64))
    ds = sources.convert(sources.RawSource(name="s", kind="yolo", root=str(raw)))
    staged = etl.stage(ds, tmp_path / "staging", tmp_path / "processed", etl.EtlConfig())
    data = yaml_load(staged.staging / "data.yaml")
    assert data["test"] == "images/test" and data["val"] == "images/val"
    assert len(list((staged.staging / "images" / "test").glob("*.jpg"))) == 3


def test_extra_synthetic_test_images_go_to_test_and_leave_the_split_as_it_was(
    tmp_path: Path,
) -> None:
    """``data.synthetic.test_images``: more images, all in the test split, drawn apart from
    the others; train and val hold exactly the images they hold without them (and
    ``val_images`` likewise into val)."""
    from yeo.data import etl, sources, synthetic

    def staged(extra: int, val: int = 0) -> dict[str, set[str]]:
        spec = synthetic.SyntheticSpec(num_images=20, imgsz=64, test_images=extra, val_images=val)
        raw = synthetic.generate(tmp_path / f"raw{extra}_{val}", spec)
        ds = sources.convert(sources.RawSource(name="s", kind="synthetic", root=str(raw)))
        tag = f"{extra}_{val}"
        out = etl.stage(ds, tmp_path / f"st{tag}", tmp_path / f"p{tag}", etl.EtlConfig())
        return {
            s: {p.name for p in (out.staging / "images" / s).glob("*.jpg")}
            for s in ("train", "val", "test")
        }

    plain, more = staged(0), staged(12)
    assert more["train"] == plain["train"] and more["val"] == plain["val"]
    both = staged(12, 5)  # data.synthetic.val_images: likewise, into val
    assert both["train"] == plain["train"] and both["test"] == more["test"]
    added = both["val"] - plain["val"]
    assert len(added) == 5 and all(n.startswith("surface_val_") for n in added)
    assert plain["val"] < both["val"]
    extra = more["test"] - plain["test"]
    assert len(extra) == 12 and all(n.startswith("surface_test_") for n in extra)
    assert len(plain["test"]) == 3 and plain["test"] < more["test"]
    # the extra images are others than the first ones: test_images=12 of 20 + 12 are distinct
    first, _ = synthetic.render(synthetic.SyntheticSpec(imgsz=64), 0)
    other, _ = synthetic.render(synthetic.SyntheticSpec(imgsz=64), synthetic.TEST_INDEX)
    assert np.asarray(first).tobytes() != np.asarray(other).tobytes()


@pytest.mark.parametrize(
    ("override", "message"),
    [
        (
            "optimize.max_map_drop=-1",
            "optimize.max_map_drop: Input should be greater than or equal to 0",
        ),
        (
            "optimize.quant.max_map_drop=-0.01",
            "optimize.quant.max_map_drop: Input should be greater",
        ),
        ("eval.bootstrap=0", "eval.bootstrap: Input should be greater than or equal to 1"),
        ("eval.held_out=train", "eval.held_out: Input should be 'test' or 'val' (got 'train')"),
    ],
)
def test_budget_and_eval_mistakes_are_refused(override: str, message: str) -> None:
    from yeo.cli import check_optimize, compose_config
    from yeo.config import RunConfig

    with pytest.raises(ConfigError, match=re.escape(message)):
        check_optimize(RunConfig.parse(compose_config([override])))


def test_a_generated_sources_fingerprint_is_its_spec(tmp_path: Path) -> None:
    """The cached steps after ingest key on the raw source: a generated one carries its spec's
    digest, so data.synthetic.val_images=540 is not served the conversion made without them."""
    from yeo.data import sources, synthetic

    def raw(**spec: int) -> str:
        cfg = sources.SourceConfig(
            source="synthetic",
            name="s",
            synthetic=synthetic.SyntheticSpec(num_images=4, imgsz=32, **spec),
        )
        return sources.ingest(cfg, tmp_path, offline=True).fingerprint

    plain = raw()
    assert plain.startswith("synthetic:") and plain == raw()
    assert raw(val_images=2) != plain and raw(test_images=2) != plain
