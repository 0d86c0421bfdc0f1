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
        path=f"/m/{name}",
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
