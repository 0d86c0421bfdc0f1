"""The regime users bring: a base model trained to its plateau, then the optimize pipeline on it.

    python benchmarks/converged.py [--base PATH_OR_MODELS_URI] [KEY=VALUE ...]

Without ``--base`` the default synthetic base is trained first with the converged profile
(``python run.py --pipeline train train=converged``: up to 100 epochs, cosine, stopped by val
patience; 15 min on 2 Xeon cores, longer on an AVX2 EPYC, minutes on a GPU). With ``--base``
(for example ``../shared/fixtures/converged/yolov8n-synthetic-100ep.pt``) only the optimize run
is made. Either way the optimize run is ``python run.py --pipeline optimize
optimize.base_model=...`` plus any ``KEY=VALUE`` overrides, as a user would type it.

Writes ``outputs/benchmarks/<run>/converged/converged.{json,md}``: the CPU line, the wall time
of each stage, the variants table (val chose; test with 95% intervals and the paired drop;
latency interleaved in the pipeline's own step), the verdict and what the ``base_ft`` control
says. Exits 1 when a target is short: the selected variant >= 3x faster than the base FP32
ONNX end to end, >= 6x smaller, and its whole paired test interval within the budget.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from yeo import env

env.configure()

from benchmarks.common import cpu_line, open_run, publish  # noqa: E402
from yeo.benchmark import latest_run  # noqa: E402
from yeo.optimize.variants import Selection, markdown_table, table_notes  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def run_py(*args: str) -> float:
    """``python run.py ARGS`` in the project root, its output passed through; its wall time."""
    start = time.perf_counter()
    done = subprocess.run([sys.executable, str(ROOT / "run.py"), *args], cwd=ROOT)
    if done.returncode not in (0, 1):  # 1: the run's own verdict (report written): judged below
        sys.exit(f"converged: run.py {' '.join(args)} failed with exit code {done.returncode}")
    return time.perf_counter() - start


def targets(sel: Selection) -> dict[str, bool]:
    """The issue's targets on the selected variant, from the run's own table."""
    by = {v.name: v for v in sel.variants}
    s, ref = by.get(sel.selected or ""), by["base_fp32"]
    h = sel.held_out
    if s is None or h is None or s.p50_ms is None or ref.p50_ms is None:
        return {"a variant was selected": False}
    return {
        "latency >= 3x vs base_fp32": ref.p50_ms / s.p50_ms >= 3,
        "size >= 6x smaller": ref.size_bytes / s.size_bytes >= 6,
        "the whole paired test interval within the budget": bool(
            h.within_budget and not h.inside_noise and not h.vacuous
        ),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--base", default=None, help="a trained .pt (or models:/ URI); default: train")
    ap.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="for both run.py calls")
    args = ap.parse_args()
    bad = [o for o in args.overrides if "=" not in o]
    if bad:
        ap.error(f"overrides are KEY=VALUE, got {bad}")
    stages: dict[str, float] = {}
    base = args.base
    if base is None:
        train = ("--pipeline", "train", "train=converged", *args.overrides)
        stages["train (train=converged)"] = run_py(*train)
        found = (env.workspace().outputs / "train").rglob("best.pt")
        base = str(max(found, key=lambda p: p.stat().st_mtime))
    optimize = ("--pipeline", "optimize", f"optimize.base_model={base}", *args.overrides)
    stages["optimize"] = run_py(*optimize)
    opened = open_run(latest_run())
    sel = Selection.model_validate_json((opened.path / "variants.json").read_text())
    found = targets(sel)
    lines = [
        cpu_line(),
        f"base: {base}; wall time: "
        + ", ".join(f"{k} {v / 60:.1f} min" for k, v in stages.items()),
        "",
        markdown_table(sel),
        "",
        table_notes(sel),
        "",
        f"Verdict: {sel.held_out.verdict if sel.held_out else 'not scored'}",
        "",
        "Targets: " + ", ".join(f"{k}: {'PASS' if ok else 'SHORT'}" for k, ok in found.items()),
    ]
    data = {"run": opened.name, "base": base, "stages_s": stages, "targets": found}
    publish(opened.out("converged"), "converged", data, "\n".join(lines))
    return 0 if all(found.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
