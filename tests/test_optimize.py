"""Pruning, export, INT8 and selection on the session's small trained model."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.conftest import TINY_TRAIN
from yeo.evaluation import EvalSettings, evaluate
from yeo.optimize.blocks import C2fSplitFree, replace_c2f
from yeo.optimize.finetune import load_module
from yeo.optimize.prune import PruneConfig, footprint, prune_and_finetune
from yeo.optimize.variants import VariantScore, pareto, select
from yeo.train.config import TrainConfig


def test_split_free_c2f_gives_identical_outputs() -> None:
    from ultralytics import YOLO
    from ultralytics.nn.modules import C2f

    model = YOLO("yolov8n.yaml").model.eval()
    x = torch.rand(1, 3, 128, 128)
    with torch.no_grad():
        before = model(x)[0]
        n = replace_c2f(model)
        after = model(x)[0]
    assert n == 8
    assert not any(type(m) is C2f for m in model.modules())
    assert sum(isinstance(m, C2fSplitFree) for m in model.modules()) == 8
    assert torch.equal(before, after)


def _score(name: str, m: float, p50: float | None, pruned: bool = False) -> VariantScore:
    return VariantScore(
        name=name,
        file=f"{name}.onnx",
        format="onnx" if p50 else "pt",
        precision="fp32",
        pruned=pruned,
        map50=m,
        map50_95=m,
        precision_=0.5,
        recall=0.5,
        per_class_ap50_95={},
        p50_ms=p50,
        size_bytes=1,
    )


def test_selection_picks_the_fastest_within_budget() -> None:
    variants = [
        _score("base_pt", 0.500, None),
        _score("base_fp32", 0.500, 8.0),
        _score("base_int8", 0.495, 6.0),
        _score("pruned_fp32", 0.492, 5.0, True),
        _score("pruned_int8", 0.480, 3.0, True),  # fastest, but 0.02 below: out of budget
    ]
    sel = select(variants, "base_pt", 0.01)
    assert sel.selected == "pruned_fp32"
    assert select(variants, "base_pt", 0.03).selected == "pruned_int8"
    none = select(variants, "base_pt", 0.001)
    assert none.selected == "base_fp32"  # only the lossless export qualifies
    assert select(variants, "base_pt", -0.1).selected is None
    # the latency/accuracy front: base_int8 (6 ms, 0.495) is beaten by pruned_fp32 on neither
    assert [v.name for v in pareto(variants)] == [
        "pruned_int8",
        "pruned_fp32",
        "base_int8",
        "base_fp32",
    ]
    variants[2].map50_95 = 0.490  # now pruned_fp32 is faster and more accurate
    assert [v.name for v in pareto(variants)] == ["pruned_int8", "pruned_fp32", "base_fp32"]
    # a tie the timing cannot split (inside the fastest's p25-p75): the smaller file wins
    w8 = _score("pruned_w8_ov", 0.491, 5.1, True).model_copy(update={"size_bytes": 0})
    variants[3].p75_ms, w8.p25_ms = 5.2, 4.9
    sel = select([*variants, w8], "base_pt", 0.01)
    assert sel.selected == "pruned_w8_ov" and sel.reason.endswith(
        "p50 5.10 ms; the smallest file of those tied with pruned_fp32 at 5.00 ms (each p50 "
        "inside the other's p25-p75))"
    )
    w8.p25_ms = 5.02  # the fastest's p50 outside its spread: not a tie
    assert select([*variants, w8], "base_pt", 0.01).selected == "pruned_fp32"


def test_pruning_shrinks_keeps_architecture_and_exports(
    trained_model: Path, tiny_data: Path, tmp_path: Path
) -> None:
    from yeo.optimize.export import export_onnx
    from yeo.optimize.finetune import load_module

    cfg = PruneConfig(ratio=0.5, steps=2, finetune_epochs=1, round_to=8)
    train = TrainConfig.from_dict(TINY_TRAIN | {"imgsz": 128, "batch": 4})
    res = prune_and_finetune(trained_model, tiny_data, cfg, train, tmp_path / "p")
    assert res.after.params < 0.5 * res.before.params  # both in and out channels shrink
    assert res.after.macs < 0.5 * res.before.macs
    assert [s["step"] for s in res.steps] == [1, 2]
    assert res.steps[0]["params"] > res.steps[1]["params"]  # iterative
    # the fine-tuned checkpoint holds the pruned architecture (not rebuilt from yaml)
    assert footprint(load_module(res.weights), 128).params == res.after.params
    onnx = export_onnx(res.weights, tmp_path / "pruned.onnx", 128)
    assert onnx.path.is_file() and onnx.size_bytes < 0.5 * 12e6
    # a known value, not a bound any number meets: the export scores as its fine-tuned .pt
    out = evaluate(onnx.path, tiny_data, EvalSettings(imgsz=128))
    ref = evaluate(res.weights, tiny_data, EvalSettings(imgsz=128))
    assert abs(out.map50_95 - ref.map50_95) < 0.01 and abs(out.map50 - ref.map50) < 0.01


@pytest.fixture(scope="module")
def fp32_onnx(trained_model: Path, tiny_data: Path, tmp_path_factory) -> Path:
    from yeo.optimize.dataset import split_images
    from yeo.optimize.export import export_onnx

    images = split_images(tiny_data.parent, "val")
    res = export_onnx(
        trained_model, tmp_path_factory.mktemp("onnx") / "m.onnx", 128, check_images=images
    )
    assert res.simplified and res.max_abs_diff is not None and res.max_abs_diff <= 1e-4
    return res.path


def test_pruning_keeps_the_last_step_within_the_budget(
    trained_model: Path, tiny_data: Path, tmp_path: Path
) -> None:
    """The judge's val scores decide: every step runs (a later fine-tune may recover), the
    last step within the budget is the result, the final step when none is."""
    cfg = PruneConfig(ratio=0.6, steps=3, finetune_epochs=1, round_to=8)
    train = TrainConfig.from_dict(TINY_TRAIN | {"imgsz": 128, "batch": 4})
    scores = {"base": 0.500, "step1": 0.480, "step2": 0.495, "step3": 0.460}

    def judge(weights: Path) -> float:  # by the step folder the checkpoint is in
        return scores[next((p.name for p in weights.parents if p.name in scores), "base")]

    res = prune_and_finetune(
        trained_model, tiny_data, cfg, train, tmp_path / "p", judge=judge, budget=0.01
    )
    assert [s["step"] for s in res.steps] == [1, 2, 3] and res.kept == 2
    assert res.weights.parent.parent.name == "step2"
    assert res.after.params == res.steps[1]["params"] > res.steps[2]["params"]
    assert [s["within_budget"] for s in res.steps] == [False, True, False]
    assert res.steps[2]["drop"] == pytest.approx(0.04)
    assert res.kept_why == (
        "kept step 2, the last within the 0.01 budget on val: step 3 is 0.0400 below the base "
        "(0.4600 vs 0.5000)"
    )
    assert footprint(load_module(res.weights), 128).params == res.after.params


def test_a_monitor_subset_only_proposes_the_fine_tunes_checkpoint(
    trained_model: Path, tmp_path: Path
) -> None:
    """Where epochs validate on a few val images, best.pt and last.pt are both scored on all
    of val and the higher is kept; identical weights or no last.pt cost no evaluation."""
    import shutil

    import torch

    from yeo.optimize.finetune import save_checkpoint
    from yeo.optimize.prune import pick_checkpoint

    scores, calls = {"best.pt": 0.30, "last.pt": 0.31}, []

    def judge(weights: Path) -> float:
        calls.append(weights.name)
        return scores[weights.name]

    best = Path(shutil.copy(trained_model, tmp_path / "best.pt"))
    same = Path(shutil.copy(trained_model, tmp_path / "same.pt"))
    assert pick_checkpoint(best, same, judge) == (best, {"checkpoint": "best"}) and not calls
    assert pick_checkpoint(best, tmp_path / "none.pt", judge)[0] == best and not calls
    model = load_module(trained_model)
    with torch.no_grad():
        next(model.parameters()).mul_(0.5)
    last = save_checkpoint(model, tmp_path / "last.pt", {})
    got, record = pick_checkpoint(best, last, judge)
    assert got == last and calls == ["best.pt", "last.pt"]
    assert record == {
        "checkpoint": "last",
        "val_mAP50-95": 0.31,
        "checkpoint_val": {"best": 0.30, "last": 0.31},
    }
    scores["last.pt"] = 0.30  # a tie keeps best.pt
    assert pick_checkpoint(best, last, judge)[0] == best


def test_export_keeps_ultralytics_metadata(fp32_onnx: Path) -> None:
    import onnx

    meta = {p.key: p.value for p in onnx.load(str(fp32_onnx)).metadata_props}
    assert meta["imgsz"] == "[128, 128]" and meta["stride"] == "32"
    assert "scratch" in meta["names"]


def test_int8_keeps_accuracy_with_tail_fp32_and_collapses_without(
    fp32_onnx: Path, tiny_data: Path, tmp_path: Path
) -> None:
    from yeo.optimize.dataset import split_images
    from yeo.optimize.quantize import calibration_images, quantize
    from yeo.optimize.recipes import QuantRecipe

    settings = EvalSettings(imgsz=128)
    ref = evaluate(fp32_onnx, tiny_data, settings).map50_95
    assert ref > 0.01
    calib = calibration_images(split_images(tiny_data.parent, "train"), 16, seed=0)
    assert not set(calib) & set(split_images(tiny_data.parent, "val"))  # never val images
    good = quantize(fp32_onnx, tmp_path / "tail.onnx", QuantRecipe("t"), calib, 128)
    bad = quantize(fp32_onnx, tmp_path / "none.onnx", QuantRecipe("n", exclude="none"), calib, 128)
    m_good = evaluate(good, tiny_data, settings).map50_95
    m_bad = evaluate(bad, tiny_data, settings).map50_95
    assert ref - m_good <= 0.02, (ref, m_good)
    assert m_bad < 0.5 * ref, (ref, m_bad)  # the evaluator sees the collapse
    assert good.stat().st_size < 0.5 * fp32_onnx.stat().st_size


def test_weights_only_int8_quarters_the_file_and_keeps_the_arithmetic(
    fp32_onnx: Path, tiny_data: Path, tmp_path: Path
) -> None:
    """Every Conv's weights as int8 behind a DequantizeLinear (onnxruntime's symmetric
    per-channel values), activations untouched: the file about 4x smaller, each weight within
    half a step of the original, and the same detections on OpenVINO, which runs it."""
    import onnx
    from onnx import numpy_helper

    from yeo.optimize.export import onnx_metadata
    from yeo.optimize.quantize import quantize_weights

    w8 = quantize_weights(fp32_onnx, tmp_path / "w8.onnx")
    assert w8.stat().st_size < 0.3 * fp32_onnx.stat().st_size
    model, ref = onnx.load(str(w8)), onnx.load(str(fp32_onnx))
    ops = [n.op_type for n in model.graph.node]
    assert "QuantizeLinear" not in ops and ops.count("DequantizeLinear") == ops.count("Conv")
    inits = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    original = {i.name: numpy_helper.to_array(i) for i in ref.graph.initializer}
    for dq in (n for n in model.graph.node if n.op_type == "DequantizeLinear"):
        q, scale, zero = (inits[i] for i in dq.input)
        assert q.dtype == np.int8 and not zero.any() and scale.shape == (q.shape[0],)
        w = original[dq.output[0]]
        err = np.abs(q * scale.reshape(-1, *[1] * (q.ndim - 1)) - w).max(axis=(1, 2, 3))
        assert (err <= scale / 2 + 1e-7).all()
    assert onnx_metadata(w8)[0]["quantization"]["weights_only"] is True
    settings = EvalSettings(imgsz=128)
    on_ov = evaluate(w8, tiny_data, settings, "openvino").map50_95
    assert abs(on_ov - evaluate(fp32_onnx, tiny_data, settings, "openvino").map50_95) <= 0.01
    no_conv = tmp_path / "no_conv.onnx"
    graph = onnx.helper.make_graph(
        [onnx.helper.make_node("Relu", ["x"], ["y"])],
        "g",
        [onnx.helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1])],
        [onnx.helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1])],
    )
    onnx.save(onnx.helper.make_model(graph), str(no_conv))
    with pytest.raises(ValueError, match=r"no_conv\.onnx: no Conv with its own weights"):
        quantize_weights(no_conv, tmp_path / "out.onnx")
    assert not (tmp_path / "out.onnx").exists()


def test_nncf_int8_for_openvino_keeps_the_head_float_and_the_detections(
    fp32_onnx: Path, tiny_data: Path, tmp_path: Path
) -> None:
    """NNCF's INT8 of the FP32 file: QDQ on the backbone, the Detect head's and the stem's
    activations float and their Conv weights int8, the recipe and NNCF's version in the
    metadata, the file about 4x smaller, and on OpenVINO (which runs it) mAP50-95 close to the
    FP32 file's."""
    import nncf
    import onnx

    from yeo.optimize.dataset import split_images
    from yeo.optimize.export import onnx_metadata
    from yeo.optimize.portability import pair_overflows
    from yeo.optimize.quantize import (
        calibration_images,
        detect_prefix,
        quantize_nncf,
        stem_convs,
    )

    images = calibration_images(split_images(tiny_data.parent, "train"), 16, 0)
    q = quantize_nncf(fp32_onnx, tmp_path / "nncf.onnx", images, 128)
    assert q.stat().st_size < 0.35 * fp32_onnx.stat().st_size
    model = onnx.load(str(q))
    head = detect_prefix(model)
    assert sum(n.op_type == "QuantizeLinear" for n in model.graph.node) > 20
    dequantized = {o for n in model.graph.node if n.op_type == "DequantizeLinear" for o in n.output}
    head_nodes = [n for n in model.graph.node if n.name.startswith(head)]
    convs = [n for n in head_nodes if n.op_type == "Conv"]
    assert len(convs) >= 12 and all(n.input[1] in dequantized for n in convs)  # int8 weights
    assert not [n.name for n in head_nodes if n.input and n.input[0] in dequantized]  # float
    (stem,) = stem_convs(model)  # the image's first conv: float input, int8 weights
    stem_node = next(n for n in model.graph.node if n.name == stem)
    assert stem_node.input[0] == model.graph.input[0].name and stem_node.input[1] in dequantized
    recipe = onnx_metadata(q)[0]["quantization"]
    assert recipe["backend"] == "nncf" and recipe["nncf"] == nncf.__version__
    # 7-bit weights (NNCF's overflow fix): the same outputs on CPUs without VNNI, bundleable
    assert recipe["portable"] and not pair_overflows(model)
    # the edge runtime's OpenVINO computes it as onnxruntime does (OpenVINO's read_model alone
    # does not, for NNCF's INT8 of a SiLU model: edge.engine.openvino_model)
    from edge.compare import output_errors
    from edge.engine import load
    from yeo.optimize.export import image_batch

    for x in image_batch(sorted(split_images(tiny_data.parent, "val"))[:2], 128):
        ref, got = load(q, "onnxruntime").run(x), load(q, "openvino").run(x)
        box, score = output_errors(ref, got, 0.05)
        assert box <= 3.0 and score <= 0.08, (box, score)
    settings = EvalSettings(imgsz=128)
    on_ov = evaluate(q, tiny_data, settings, "openvino").map50_95
    ref = evaluate(fp32_onnx, tiny_data, settings, "openvino").map50_95
    assert ref > 0.05 and abs(on_ov - ref) <= 0.03, (on_ov, ref)


def _kernel_vs_reference(model: Path, images: list[Path]) -> tuple[float, float]:
    """Fused int8 kernels vs the unfused QDQ graph, on anchors scoring >= 0.01 in either."""
    from edge.compare import fused_vs_unfused
    from yeo.optimize.export import image_batch

    return fused_vs_unfused(model, image_batch(images, 128), 0.01)


def test_default_int8_is_saturation_free_on_any_x86_cpu(
    fp32_onnx: Path, tiny_data: Path, tmp_path: Path
) -> None:
    """Every default recipe is portable; the static check passes them and catches full-range
    weights; on this CPU the fused int8 kernels agree with the exact reference."""
    import onnx

    from edge.device import describe
    from yeo.optimize.dataset import split_images
    from yeo.optimize.export import onnx_metadata
    from yeo.optimize.portability import pair_overflows
    from yeo.optimize.quantize import calibration_images, quantize
    from yeo.optimize.recipes import DEFAULT_RECIPES, EXTRA_RECIPES

    assert all(r.portable for r in DEFAULT_RECIPES)
    calib = calibration_images(split_images(tiny_data.parent, "train"), 16, seed=0)
    probe = sorted(split_images(tiny_data.parent, "val"))[:4]
    by = {r.weights: r for r in EXTRA_RECIPES} | {"pairsafe": DEFAULT_RECIPES[0]}
    models = {k: quantize(fp32_onnx, tmp_path / f"{k}.onnx", r, calib, 128) for k, r in by.items()}
    pertensor = quantize(fp32_onnx, tmp_path / "pt.onnx", DEFAULT_RECIPES[-1], calib, 128)
    for path in (models["pairsafe"], models["7bit"], pertensor):
        assert pair_overflows(onnx.load(str(path))) == [], path.name
    assert pair_overflows(onnx.load(str(models["full"])))  # the check can fail
    recipe = onnx_metadata(models["pairsafe"])[0]["quantization"]
    assert recipe["weights"] == "pairsafe" and recipe["portable"] is True
    assert onnx_metadata(models["full"])[0]["quantization"]["portable"] is False

    def weights(path: Path) -> np.ndarray:
        from onnx import TensorProto, numpy_helper

        m = onnx.load(str(path))
        ts = [t for t in m.graph.initializer if t.data_type == TensorProto.INT8 and t.dims[1:]]
        return np.concatenate([np.abs(numpy_helper.to_array(t)).ravel() for t in ts])

    assert weights(models["7bit"]).max() <= 64 < weights(models["pairsafe"]).max()
    # more resolution than 7 bits: larger integer weights on average
    assert weights(models["pairsafe"]).mean() > weights(models["7bit"]).mean()

    tol = {"box": 2.0, "score": 0.05}  # the bundle's INT8 golden tolerance
    box, score = _kernel_vs_reference(models["pairsafe"], probe)
    assert box <= tol["box"] and score <= tol["score"], (box, score)
    if not any("VNNI" in f for f in describe()["isa"]):  # AVX2 / AVX512BW: int16 pair sums
        box, score = _kernel_vs_reference(models["full"], probe)
        assert box > tol["box"] or score > tol["score"], (box, score)


def test_budget_loop_falls_back_and_records_every_trial(fp32_onnx: Path, tmp_path: Path) -> None:
    from yeo.optimize.int8_search import quantize_within_budget
    from yeo.optimize.recipes import QuantRecipe

    recipes = [QuantRecipe("collapse", exclude="none"), QuantRecipe("ok")]
    maps = iter([0.0, 0.4])  # a scripted evaluator: the first recipe fails the budget
    images = [fp32_onnx.parent / "x.jpg"]
    from PIL import Image

    Image.new("RGB", (128, 128), (100, 100, 100)).save(images[0])
    chosen, trials = quantize_within_budget(
        fp32_onnx,
        tmp_path,
        recipes,
        images,
        128,
        score=lambda p: next(maps),
        latency=lambda p: 1.0,
        reference_map=0.4,
        max_drop=0.01,
    )
    assert [t.passed for t in trials] == [False, True]
    assert chosen.name == "ok.onnx"
    shutil.rmtree(tmp_path)


def test_inc_autotune_uses_our_evaluator_and_budget(
    fp32_onnx: Path, tiny_data: Path, tmp_path: Path
) -> None:
    pytest.importorskip("onnx_neural_compressor")
    import onnx

    from yeo.optimize.dataset import split_images
    from yeo.optimize.export import onnx_metadata
    from yeo.optimize.inc import autotune_inc
    from yeo.optimize.quantize import calibration_images
    from yeo.optimize.recipes import QuantRecipe

    settings = EvalSettings(imgsz=128)
    ref = evaluate(fp32_onnx, tiny_data, settings).map50_95
    calib = calibration_images(split_images(tiny_data.parent, "train"), 8, seed=0)
    recipes = [QuantRecipe("collapse", exclude="none"), QuantRecipe("tail")]
    out, records, recipe = autotune_inc(
        fp32_onnx,
        tmp_path / "inc.onnx",
        recipes,
        calib,
        128,
        score=lambda p: evaluate(p, tiny_data, settings).map50_95,
        reference_map=ref,
        max_drop=0.02,
    )
    assert records[0]["map50_95"] == pytest.approx(ref, abs=1e-6)  # INC's FP32 baseline
    assert [r["recipe"] for r in records[:2]] == ["fp32 baseline", "collapse"]
    assert out is not None and out.is_file() and recipe is not None
    assert recipe.name == records[-1]["recipe"]  # the model INC returned: its last trial
    assert ref - evaluate(out, tiny_data, settings).map50_95 <= 0.02
    meta = {p.key for p in onnx.load(str(out)).metadata_props}
    assert {"names", "imgsz", "quantization"} <= meta
    from yeo.optimize.portability import pair_overflows

    q = onnx_metadata(out)[0]["quantization"]
    assert q["name"] == recipe.name and q["backend"] == "inc-autotune"
    assert q["portable"] is (not pair_overflows(onnx.load(str(out))))  # read off the model
    assert any(n.op_type == "QuantizeLinear" for n in onnx.load(str(out)).graph.node)


def test_inc_is_not_trusted_when_every_recipe_fails(
    fp32_onnx: Path, tiny_data: Path, tmp_path: Path
) -> None:
    """INC returns its last trial (or calls exit) when nothing meets the budget: our own
    re-score (and the saturation check) marks it failed, onnxruntime's recipes are tried, and
    the outcome says so. A zero budget: nothing may lose anything."""
    pytest.importorskip("onnx_neural_compressor")
    from yeo.optimize.dataset import split_images
    from yeo.optimize.int8_search import Int8Search, int8_within_budget
    from yeo.optimize.quantize import calibration_images
    from yeo.optimize.recipes import QuantRecipe

    settings = EvalSettings(imgsz=128)
    calib = calibration_images(split_images(tiny_data.parent, "train"), 8, seed=0)
    recipes = [QuantRecipe("collapse", exclude="none")]
    search = Int8Search(
        recipes,
        calib,
        128,
        score=lambda p: evaluate(p, tiny_data, settings).map50_95,
        latency=lambda p: 1.0,
        max_drop=0.0,
        backend="inc",
    )
    chosen, trials, ref = int8_within_budget(fp32_onnx, tmp_path, search)
    assert ref > 0.05 and chosen.is_file()
    assert trials and not any(t.passed for t in trials)  # nobody claims a pass
    assert trials[-1].recipe["name"] == "collapse" and trials[-1].drop > 0.0
    inc = [t for t in trials if t.recipe.get("backend") == "inc-autotune"]
    assert all(not t.passed for t in inc)


def _one_op_model(op: str, w: np.ndarray, float_input: bool = False, **attrs: int):
    """A one-node ONNX graph whose int8 weight ``w`` feeds ``op`` (QDQ: through a
    DequantizeLinear, the input quantized too unless ``float_input``; QOperator: directly)."""
    from onnx import TensorProto, helper, numpy_helper

    inits = [
        numpy_helper.from_array(w.astype(np.int8), "w"),
        numpy_helper.from_array(np.array(0.01, np.float32), "s"),
        numpy_helper.from_array(np.array(0, np.int8), "z"),
        numpy_helper.from_array(np.array(0, np.uint8), "xz"),
    ]
    if op.startswith("QLinear"):
        nodes = [helper.make_node(op, ["x", "s", "xz", "w", "s", "z", "s", "xz"], ["y"], **attrs)]
    else:
        qdq = [
            helper.make_node("QuantizeLinear", ["x", "s", "xz"], ["xq"]),
            helper.make_node("DequantizeLinear", ["xq", "s", "xz"], ["xd"]),
        ]
        nodes = [
            *([] if float_input else qdq),
            helper.make_node("DequantizeLinear", ["w", "s", "z"], ["wf"]),
            helper.make_node(op, ["x" if float_input else "xd", "wf"], ["y"], **attrs),
        ]
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, None)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], inits,
    )  # fmt: skip
    return helper.make_model(graph)


def test_pair_check_reads_each_weight_along_its_reduction_axis() -> None:
    """A MatMul's B[K, N] sums over K: a column, not a row, makes a pair; Gemm's transB flips
    it; QOperator weights (QLinearConv) are checked too, not passed as empty; weights into a
    float input run in float and are not flagged."""
    from yeo.optimize.portability import pair_overflows

    b = np.zeros((4, 2))
    b[0, 0] = b[1, 0] = 100  # column 0: 100 + 100 along K; every row's pair stays <= 128
    assert pair_overflows(_one_op_model("MatMul", b)) == ["w: |q0| + |q1| up to 200 > 128"]
    assert pair_overflows(_one_op_model("Gemm", b.T, transB=1))
    assert not pair_overflows(_one_op_model("Gemm", b.T))  # [K=2, N=4]: K pairs are 100 + 0
    # int8 weights into a float input (the w8 files, NNCF's float head): no integer kernel
    assert not pair_overflows(_one_op_model("MatMul", b, float_input=True))
    conv = np.zeros((2, 2, 1, 1))
    conv[0, :, 0, 0] = 100  # output channel 0: two inputs at 100
    assert pair_overflows(_one_op_model("QLinearConv", conv))
    assert not pair_overflows(_one_op_model("QLinearConv", conv / 2))


def test_allocation_spends_the_saving_where_val_loses_least(caplog) -> None:
    """Greedy on drop per MAC saved: free blocks go deepest first, a costly block is left
    alone, noise cannot make more pruning cheaper than less, and overlapping savings are
    measured, not summed."""
    from yeo.optimize.pruner import Footprint
    from yeo.optimize.sensitivity import Probe, allocate

    def probes(block: str, drops: list[float], macs: list[int]) -> list[Probe]:
        return [
            Probe(block, r, d, m, 0) for r, d, m in zip((0.25, 0.5, 0.75), drops, macs, strict=True)
        ]

    scan = [
        *probes("model.1", [0.000, 0.001, 0.002], [10, 20, 30]),  # nearly free
        *probes("model.2", [0.050, 0.080, 0.200], [40, 80, 120]),  # costly, big
        *probes("model.3", [0.004, -0.003, 0.010], [10, 20, 30]),  # noisy: 0.5 costs 0.004
    ]
    stem = probes("model.0", [0.001, 0.001, 0.0], [10, 10, 0])
    alike = probes("model.4", [0.000, 0.000, 0.001], [10, 10, 25])
    before = Footprint(params=0, macs=1000)
    measured: list[dict[str, float]] = []

    def additive(ratios: dict[str, float]) -> Footprint:
        measured.append(dict(ratios))
        every = (*scan, *stem, *alike)
        gains = {p.block: p.macs_saved for p in every if ratios.get(p.block) == p.ratio}
        return Footprint(params=0, macs=before.macs - sum(gains.values()))

    assert allocate(scan, 55, additive, before) == {"model.1": 0.75, "model.3": 0.75}
    # model.3 at 0.5 was not taken before model.1 was spent: its envelope cost is 0.004
    assert measured == [{"model.1": 0.75, "model.3": 0.75}]

    def overlapping(ratios: dict[str, float]) -> Footprint:  # savings overlap: 10 fewer
        return Footprint(params=0, macs=additive(ratios).macs + 10)

    assert allocate(scan, 55, overlapping, before) == {
        "model.1": 0.75,
        "model.3": 0.75,
        "model.2": 0.25,
    }
    assert allocate(scan, 10_000, additive, before) == {
        "model.1": 0.75,
        "model.2": 0.75,
        "model.3": 0.75,
    }
    assert "short of target" in caplog.text
    # round_to can make two ratios prune alike (a 16-channel stem): the climb skips the level
    # that saves nothing more, and a level that prunes nothing is never taken
    assert allocate(stem, 10, additive, before) == {"model.0": 0.25}
    assert allocate(stem, 11, additive, before) == {"model.0": 0.25}  # short: no level saves more
    assert allocate(alike, 20, additive, before) == {"model.4": 0.75}
    assert measured[-1] == {"model.4": 0.75}


def test_sensitivity_schedule_prunes_the_blocks_val_can_spare(
    trained_model: Path, tiny_data: Path, tmp_path: Path
) -> None:
    """The scan prunes each block alone (real pruned checkpoints, scored by the judge), and
    the per-block ratios reach uniform pruning's MACs saving without the blocks that cost."""
    from yeo.optimize.pruner import detect_tail
    from yeo.optimize.sensitivity import blocks

    cfg = PruneConfig(
        ratio=0.3, steps=1, finetune_epochs=0, schedule="sensitivity", scan_ratios=[0.5]
    )
    train = TrainConfig.from_dict(TINY_TRAIN | {"imgsz": 128, "batch": 4})
    base = load_module(trained_model)
    replace_c2f(base)
    names = blocks(base)
    assert names[0] == "model.0" and names[-1] == "model.22"  # Detect: its inner convs
    assert len(detect_tail(base)) == 7
    full = footprint(base, 128)
    seen: dict[str, int] = {}
    costly = {"model.0", "model.2", "model.21"}

    def judge(weights: Path) -> float:
        if weights == trained_model:
            return 0.5
        block = weights.stem.rsplit("-", 1)[0]
        seen[weights.stem] = footprint(load_module(weights), 128).macs
        return 0.5 - (0.1 if block in costly else 0.0)

    res = prune_and_finetune(trained_model, tiny_data, cfg, train, tmp_path / "p", judge=judge)
    assert len(seen) == len(names) and all(m < full.macs for m in seen.values())
    assert res.scan is not None and len(res.scan) == len(seen)
    assert {p["block"] for p in res.scan if p["drop"] > 0} == costly
    assert res.ratios and not costly & set(res.ratios)
    uniform = prune_and_finetune(
        trained_model,
        tiny_data,
        cfg.model_copy(update={"schedule": "uniform"}),
        train,
        tmp_path / "u",
    )
    assert res.after.macs <= uniform.after.macs
    assert footprint(load_module(res.weights), 128) == res.after
