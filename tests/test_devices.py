"""One device for a module: example inputs follow the model, ONNX work stays on the CPU.

CPU-only CI cannot see a CUDA module being fed a CPU tensor, but torch's ``meta`` device fails
the same way ("Tensor on device meta is not on the expected device cpu"), so the helpers are
run here on modules that live on ``meta``.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
import torch
from torch import nn

from tests.conftest import CODE_ROOT
from yeo.devices import example_input, module_device
from yeo.optimize.prune import PruneConfig, footprint, make_pruner

FACTORIES = {"zeros", "ones", "randn", "rand", "randint", "empty", "full", "arange", "tensor"}


def _toy() -> nn.Module:
    return nn.Sequential(nn.Conv2d(3, 16, 3), nn.BatchNorm2d(16), nn.SiLU(), nn.Conv2d(16, 8, 1))


def test_a_cpu_tensor_fed_to_a_meta_module_fails_like_cuda() -> None:
    model = _toy().to("meta")
    with pytest.raises(RuntimeError, match="device"):
        model(torch.zeros(1, 3, 16, 16))  # what footprint() used to do after CUDA fine-tuning


def test_example_input_lives_on_the_module_device() -> None:
    model = _toy().to("meta")
    assert module_device(model) == torch.device("meta")
    x = example_input(model, 32, batch=2, random=True)
    assert x.device == torch.device("meta") and tuple(x.shape) == (2, 3, 32, 32)
    assert model(x).device == torch.device("meta")
    assert module_device(nn.Sequential()) == torch.device("cpu")


def test_footprint_and_pruner_run_where_the_model_lives() -> None:
    cpu = footprint(_toy(), 32)
    meta = _toy().to("meta")
    assert footprint(meta, 32) == cpu  # counted on meta, no CPU tensor involved
    assert cpu.params == sum(p.numel() for p in _toy().parameters())
    make_pruner(meta, PruneConfig(ratio=0.5, steps=1, round_to=1), 32)  # traces on meta


def test_no_stray_tensor_factories_in_the_library() -> None:
    """Every tensor made in yeo/ or steps/ names its device or comes from yeo.devices."""
    offenders = []
    for path in [*(CODE_ROOT / "yeo").rglob("*.py"), *(CODE_ROOT / "steps").rglob("*.py")]:
        if path.name == "devices.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr in FACTORIES
                and isinstance(node.func.value, ast.Name)
                and node.func.value.id == "torch"
                and not any(k.arg == "device" for k in node.keywords)
            ):
                offenders.append(f"{path.relative_to(CODE_ROOT)}:{node.lineno}")
    assert not offenders, f"tensor factories without device=: {offenders}"


def test_onnx_is_scored_on_the_cpu_whatever_the_training_device(
    onnx_model: Path, tiny_data: Path
) -> None:
    from yeo.evaluation import EvalSettings, evaluate

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA: the point is a device that does not exist here")
    res = evaluate(onnx_model, tiny_data, EvalSettings(imgsz=128, device="cuda:0"))
    assert res.n_images > 0 and res.format == "onnx"


@pytest.mark.slow
def test_gpu_check_script_dry_run_on_cpu(tmp_path: Path) -> None:
    """The prepared GPU script runs end to end (on the CPU here) and refuses without CUDA."""
    import json
    import subprocess
    import sys

    script = [sys.executable, str(CODE_ROOT / "benchmarks" / "gpu_check.py")]
    if not torch.cuda.is_available():
        out = subprocess.run(script, capture_output=True, text=True, cwd=tmp_path, timeout=120)
        assert out.returncode == 2 and "no CUDA device" in out.stderr
    report = tmp_path / "gpu.json"
    out = subprocess.run(
        [*script, "--allow-cpu", "--epochs", "1", "--images", "16", "--out", str(report)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=600,
    )
    assert out.returncode == 0, (out.stdout + out.stderr)[-3000:]
    rep = json.loads(report.read_text())
    assert rep["params"][1] < rep["params"][0]  # pruned, and the checkpoint kept it
    assert set(rep["mAP50-95"]) == {"base_pt", "pruned_pt", "pruned_onnx_cpu"}
