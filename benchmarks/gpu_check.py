"""GPU check: train (``train=full``), prune + fine-tune, export and evaluate on CUDA.

    python benchmarks/gpu_check.py [--epochs 2] [--images 80] [--out gpu_check.json]

Pruning once crashed on CUDA (a CPU example tensor fed to the fine-tuned module). CPU-only CI
cannot see that, so this script is what a machine with a GPU runs: the library functions the
pipeline steps wrap, with the ``full`` train profile (640 px, AMP), 1 prune step with 1
fine-tune epoch, ONNX export (CPU) and the one evaluator (.pt on CUDA, ONNX on CPU). It needs
no ZenML/MLflow/DVC, only the training stack, and exits 1 if any stage fails or the pruned
checkpoint is not the pruned architecture. Without CUDA it says so and exits 2.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--images", type=int, default=80)
    p.add_argument("--out", type=Path, default=Path("gpu_check.json"))
    p.add_argument("--allow-cpu", action="store_true", help="run on the CPU (a dry run)")
    args = p.parse_args(argv)

    import torch

    if not torch.cuda.is_available() and not args.allow_cpu:
        print("gpu_check: no CUDA device here (pass --allow-cpu for a dry run)", file=sys.stderr)
        return 2
    import yaml

    from yeo import env

    env.configure()
    from yeo.data import etl, sources, synthetic
    from yeo.evaluation import EvalSettings, evaluate
    from yeo.optimize.export import export_onnx
    from yeo.optimize.finetune import load_module
    from yeo.optimize.prune import PruneConfig, footprint, prune_and_finetune
    from yeo.train import trainer
    from yeo.train.config import ModelConfig, TrainConfig, resolve_device

    full = yaml.safe_load((ROOT / "conf" / "train" / "full.yaml").read_text())
    quick = yaml.safe_load((ROOT / "conf" / "train" / "quick.yaml").read_text())
    cfg = TrainConfig.from_dict({**quick, **{k: v for k, v in full.items() if k != "defaults"}})
    device = "cpu" if args.allow_cpu and not torch.cuda.is_available() else "auto"
    cfg = cfg.with_overrides(epochs=args.epochs, device=device)
    if device == "cpu":
        cfg = cfg.with_overrides(imgsz=128, batch=8, amp=False)
    report: dict[str, object] = {"device": resolve_device(cfg.device), "imgsz": cfg.imgsz}
    if torch.cuda.is_available():
        report["gpu"] = torch.cuda.get_device_name(0)
    with tempfile.TemporaryDirectory(prefix="yeo-gpu-") as tmp:
        root = Path(tmp)
        spec = synthetic.SyntheticSpec(num_images=args.images, imgsz=cfg.imgsz, seed=0)
        raw = synthetic.generate(root / "raw", spec)
        ds = sources.convert(sources.RawSource(name="gpu", kind="yolo", root=str(raw)))
        split = {"train": 0.8, "val": 0.2}
        staged = etl.stage(ds, root / "data", root / "unused", etl.EtlConfig(split=split, seed=0))
        data_yaml = staged.staging / "data.yaml"

        t = time.perf_counter()
        trained = trainer.train(data_yaml, cfg, ModelConfig(), root / "train")
        report["train_s"] = round(time.perf_counter() - t, 1)
        prune = PruneConfig(ratio=0.3, steps=1, finetune_epochs=1)
        res = prune_and_finetune(trained.best, data_yaml, prune, cfg, root / "prune")
        report |= {
            "prune_s": round(res.seconds, 1),
            "params": [res.before.params, res.after.params],
            "macs": [res.before.macs, res.after.macs],
        }
        kept = footprint(load_module(res.weights), cfg.imgsz).params
        if kept != res.after.params:
            print(
                f"gpu_check: FAIL pruned checkpoint has {kept} params, expected {res.after.params}",
                file=sys.stderr,
            )
            return 1
        onnx = export_onnx(res.weights, root / "pruned.onnx", cfg.imgsz).path
        settings = EvalSettings(imgsz=cfg.imgsz, device=resolve_device(cfg.device))
        report["mAP50-95"] = {
            "base_pt": evaluate(trained.best, data_yaml, settings).map50_95,
            "pruned_pt": evaluate(res.weights, data_yaml, settings).map50_95,
            "pruned_onnx_cpu": evaluate(onnx, data_yaml, settings).map50_95,
        }
    args.out.write_text(json.dumps(report, indent=2))
    print(json.dumps(report, indent=2))
    print(f"gpu_check: OK on {report['device']} ({report.get('gpu', 'no GPU')})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
