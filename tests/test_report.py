"""The optimize report: plots, JSON/Markdown, and a self-contained HTML that renders."""

from __future__ import annotations

import json
from pathlib import Path

from tests.chromium import render
from yeo.optimize.variants import VariantScore, select
from yeo.report.render import write_report


def _variant(name: str, map_: float, p50: float | None, size: int, precision: str = "fp32"):
    return VariantScore(
        name=name,
        file=f"{name}.onnx",
        format="pt" if p50 is None else "onnx",
        precision=precision,
        pruned=name.startswith("pruned"),
        map50=map_ + 0.2,
        map50_95=map_,
        precision_=0.6,
        recall=0.5,
        p50_ms=p50,
        p90_ms=p50 and p50 * 1.1,
        size_bytes=size,
        per_class_ap50_95={"scratch": map_, "pits": map_ - 0.05},
        params=3_000_000,
        macs=650_000_000,
    )


def test_report_files_and_html_render_in_chromium(tmp_path: Path) -> None:
    variants = [
        _variant("base_pt", 0.34, None, 6_000_000),
        _variant("base_fp32", 0.34, 6.8, 12_000_000),
        _variant("base_int8", 0.345, 4.9, 3_300_000, "int8"),
        _variant("pruned_int8", 0.30, 3.6, 1_600_000, "int8"),  # fastest, but out of budget
    ]
    sel = select(variants, "base_pt", 0.01)
    assert sel.selected == "base_int8"
    files = write_report(
        tmp_path,
        sel,
        "run-1",
        {"name": "tiny", "dvc_hash": "abc"},
        {"optimize": {"max_map_drop": 0.01}},
    )
    rep = json.loads(files["json"].read_text())
    assert rep["schema"] == "yeo-optimize-report/1" and rep["selected"] == "base_int8"
    assert set(rep["plots"]) == {"accuracy_vs_latency", "size_macs", "per_class_ap"}
    assert rep["environment"]["runtimes"]["onnxruntime"]
    md = files["md"].read_text()
    assert "| base_int8 **(selected)** |" in md and "plots/accuracy_vs_latency.png" in md
    for key in rep["plots"]:
        assert files[key].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    page = render(files["html"])
    assert page["title"] == "Optimize report run-1"
    assert len(page["rows"]) == 1 + len(variants)  # header + one row per variant
    assert any(r.startswith("base_int8") for r in page["rows"])
    assert len(page["images"]) == 3
    assert all(complete and width > 300 for _, complete, width in page["images"]), page["images"]
    assert page["external_requests"] == []  # self-contained: nothing fetched


def test_report_shows_how_the_choice_was_made(
    onnx_model: Path, tiny_data: Path, tmp_path: Path
) -> None:
    """INT8 trials, fine-tune curves and detections drawn on held-out images by the real
    session model (ground truth beside base and selected), held-out intervals in the table."""
    from yeo.optimize.model import PruneSummary, QuantSummary
    from yeo.optimize.variants import HeldOut, HeldOutScore
    from yeo.report.render import HowChosen

    variants = [
        _variant("base_pt", 0.34, None, 6_000_000),
        _variant("base_fp32", 0.34, 6.8, 12_000_000),
        _variant("base_int8", 0.345, 4.9, 3_300_000, "int8"),
    ]
    for v in variants:
        v.held_out = HeldOutScore(
            map50=0.5,
            map50_95=0.31,
            ci95=(0.2, 0.4),
            drop=0.004,
            drop_ci95=(-0.01, 0.02),
            per_class_ap50_95={"scratch": 0.3},
        )
    sel = select(variants, "base_pt", 0.01)
    sel.held_out = HeldOut(
        split="val",
        independent=False,
        n_images=6,
        n_instances=20,
        resamples=100,
        verdict="base_int8 on test: inside the noise",
        within_budget=True,
        inside_noise=True,
    )
    trials = [
        {
            "recipe": {"name": "u8-a"},
            "map50_95": 0.30,
            "drop": 0.04,
            "p50_ms": 5.0,
            "passed": False,
        },
        {
            "recipe": {"name": "u8-b"},
            "map50_95": 0.339,
            "drop": 0.001,
            "p50_ms": 4.9,
            "passed": True,
        },
    ]
    how = HowChosen(
        int8=[QuantSummary(variant="base", chosen="u8-b", passed=True, trials=trials)],
        prune=PruneSummary(
            enabled=True,
            ratio=0.3,
            params_before=3,
            params_after=2,
            macs_before=3,
            macs_after=2,
            seconds=1.0,
            imgsz=128,
            steps=[
                {"step": 1, "params": 2_500_000, "curve": [0.2, 0.3]},
                {"step": 2, "params": 2_000_000, "curve": [0.25, 0.33]},
            ],
            schedule="sensitivity",
            ratios={"model.7": 0.5, "model.1": 0.25},
            scan=[
                {"block": b, "ratio": r, "drop": d, "macs_saved": 1, "params_saved": 1}
                for b, d0 in (("model.0", 0.3), ("model.1", 0.01), ("model.7", 0.0))
                for r, d in ((0.25, d0), (0.5, 2 * d0))
            ],
        ),
        conf=0.01,
    )
    data = {
        "name": "tiny",
        "names": ["scratch", "pits", "stain", "crack"],
    }
    models = {v.name: onnx_model for v in variants}
    files = write_report(
        tmp_path, sel, "run-2", data, {"optimize": {}}, how, models, tiny_data.parent
    )
    rep = json.loads(files["json"].read_text())
    assert set(rep["plots"]) == {
        "accuracy_vs_latency",
        "size_macs",
        "per_class_ap",
        "finetune",
        "sensitivity",
        "detections",
    }
    assert [t["kept"] for t in rep["int8_trials"]] == ["", "yes"]
    md = files["md"].read_text()
    assert "## INT8 trials" in md and "| base | u8-a | 0.3000 | +0.0400 | 5.00 | no |" in md
    assert "0.3100 [0.200, 0.400]" in md and "Held out: base_int8 on test" in md
    assert "val mAP (6 images, 20 boxes) is the same split" in md
    assert (
        "(each block pruned alone, no fine-tune; the rest keep their channels): model.7 50%" in md
    )
    from PIL import Image

    with Image.open(files["detections"]) as im:  # 3 images x 3 columns
        assert im.width > 600 and im.height > 600
    page = render(files["html"])
    assert len(page["images"]) == 6 and all(c and w > 300 for _, c, w in page["images"])


def test_model_card_facts_come_from_the_data_and_the_recipe(tiny_data: Path) -> None:
    """The card's data line is read off the processed dataset (not one sentence for every
    dataset); an INC pick is described as what it is (INC does not apply reduce_range)."""
    import pandas as pd

    from yeo.bundle import int8_limits, training_data_facts

    rows = pd.read_parquet(tiny_data.parent / "metadata.parquet")
    train = rows[rows["split"] == "train"]
    facts = training_data_facts(tiny_data.parent, 128)
    n_boxes = int(train["class_id"].notna().sum())
    assert facts.startswith(f"- Trained on {train['image'].nunique()} images with {n_boxes} boxes")
    assert "Fewer than 1,000 training images" in facts and "small or low-contrast" not in facts
    inc = int8_limits({"backend": "inc-autotune", "portable": True, "weights": "7bit"})
    assert "INC does not apply reduce_range" in inc and "[-64, 64]" not in inc
