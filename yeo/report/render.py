"""report.json, report.md and a self-contained report.html (plots embedded as base64 PNG)."""

from __future__ import annotations

import base64
import datetime
import html
import importlib.metadata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from edge import device
from yeo.io import atomic_write_text, write_json
from yeo.optimize.model import PruneSummary, QuantSummary
from yeo.optimize.variants import Selection, markdown_table, table_cells, table_notes
from yeo.report import plots

SCHEMA = "yeo-optimize-report/1"
LIBRARIES = ("torch", "ultralytics", "torch-pruning", "onnx", "onnxruntime", "zenml", "mlflow")
PLOT_TITLES = {
    "accuracy_vs_latency": "Accuracy vs latency (budget drawn, selected circled)",
    "size_macs": "File size and compute per variant",
    "per_class_ap": "Per-class AP: base vs selected",
    "finetune": "Prune + fine-tune: val mAP per epoch of each step",
    "sensitivity": "Pruning sensitivity per block (the scan behind the per-block ratios)",
    "detections": "Detections on held-out images: ground truth, base, selected",
}


def environment() -> dict[str, Any]:
    env = device.describe()
    for lib in LIBRARIES:
        try:
            env["runtimes"][lib] = importlib.metadata.version(lib)  # type: ignore[index]
        except importlib.metadata.PackageNotFoundError:
            continue
    return env


@dataclass
class HowChosen:
    """What the choice went through, for the report: INT8 trials, prune steps, the bundle's
    conf for the drawn detections."""

    int8: list[QuantSummary] = field(default_factory=list)
    prune: PruneSummary | None = None
    conf: float = 0.25


def detection_columns(sel: Selection, models: dict[str, Path]) -> list[tuple[str, Path | None]]:
    """Ground truth, base_fp32 and the selected variant (or, when none, the most accurate)."""
    onnx = {v.name: models[v.name] for v in sel.variants if v.format == "onnx" and v.name in models}
    others = [v for v in sel.variants if v.name in onnx and v.name != "base_fp32"]
    best = max(others, key=lambda v: v.map50_95).name if others else None
    names = dict.fromkeys(("base_fp32", sel.selected or best))
    return [("ground truth", None), *((n, onnx[n]) for n in names if n in onnx)]


def make_plots(
    sel: Selection,
    folder: Path,
    how: HowChosen,
    data: dict[str, Any],
    models: dict[str, Path] | None = None,
    dataset: Path | None = None,
) -> dict[str, Path]:
    """The report's plots; detections drawn only when ``models`` (local files by variant)
    and ``dataset`` (the processed folder) are given."""
    from yeo.optimize.dataset import busiest_images

    folder.mkdir(parents=True, exist_ok=True)
    out = {
        "accuracy_vs_latency": plots.accuracy_vs_latency(sel, folder / "accuracy_vs_latency.png"),
        "size_macs": plots.size_and_macs(sel, folder / "size_macs.png"),
    }
    by = {v.name: v for v in sel.variants}
    if sel.selected and "base_pt" in by:
        out["per_class_ap"] = plots.per_class_ap(
            by["base_pt"], by[sel.selected], folder / "per_class_ap.png"
        )
    if how.prune and any(s.get("curve") for s in how.prune.steps):
        out["finetune"] = plots.finetune_curves(
            how.prune.steps, sel.base_map50_95, sel.max_map_drop, folder / "finetune.png"
        )
    if how.prune and how.prune.scan:
        out["sensitivity"] = plots.sensitivity(
            how.prune.scan, how.prune.ratios or {}, folder / "sensitivity.png"
        )
    processed = Path(dataset or "")
    split = sel.held_out.split if sel.held_out else "val"
    if models and (processed / "images.parquet").is_file():
        images = busiest_images(processed, split, 3)
        labels = [processed / "labels" / split / f"{p.stem}.txt" for p in images]
        if images:
            out["detections"] = plots.detections(
                detection_columns(sel, models),
                images,
                labels,
                list(data.get("names") or []),
                how.conf,
                folder / "detections.png",
            )
    return out


def trial_rows(how: HowChosen) -> list[dict[str, str]]:
    """One row per INT8 trial: what was tried, in order, and what the budget said."""
    return [
        {
            "model": q.variant,
            "recipe": str(t["recipe"].get("name", "?")),
            "val mAP50-95": f"{t['map50_95']:.4f}",
            "drop vs FP32 ONNX": f"{t['drop']:+.4f}",
            "p50 ms (alone)": f"{t['p50_ms']:.2f}",
            "passed": "yes" if t["passed"] else "no",
            "kept": "yes" if t["recipe"].get("name") == q.chosen else "",
        }
        for q in how.int8
        for t in q.trials
    ]


def report_data(
    sel: Selection,
    run: str,
    data: dict[str, Any],
    config: dict[str, Any],
    plot_files: dict[str, Path],
    how: HowChosen | None = None,
) -> dict[str, Any]:
    how = how or HowChosen()
    return {
        "schema": SCHEMA,
        "run": run,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "selected": sel.selected,
        "reason": sel.reason,
        "base_map50_95": sel.base_map50_95,
        "max_map_drop": sel.max_map_drop,
        "held_out": sel.held_out.model_dump() if sel.held_out else None,
        "timing": sel.timing,
        "backends": sel.backends,
        "variants": [v.model_dump() for v in sel.variants],
        "int8_trials": trial_rows(how),
        "prune_steps": how.prune.steps if how.prune else [],
        "prune_kept": how.prune.kept_why if how.prune else None,
        "prune_ratios": how.prune.ratios if how.prune else None,
        "data": data,
        "config": config,
        "environment": environment(),
        "plots": {k: p.name for k, p in plot_files.items()},
    }


def _md_env(env: dict[str, Any]) -> str:
    libs = ", ".join(f"{k} {v}" for k, v in env["runtimes"].items())
    return (
        f"{env['cpu']} ({env['arch']}, {env['usable_cores']} cores, {' '.join(env['isa'])}), "
        f"{env['os']}; {libs}"
    )


def markdown(rep: dict[str, Any], sel: Selection) -> str:
    data = rep["data"]
    lines = [
        f"# Optimize report: {rep['run']}",
        "",
        f"Selected on val: **{rep['selected'] or 'none'}**: {rep['reason']}",
        "",
        f"Held out: {_verdict(sel)}",
        "",
        markdown_table(sel),
        "",
        table_notes(sel),
        "",
    ]
    if rep.get("prune_kept"):
        lines += [f"Pruning: {rep['prune_kept']}.", ""]
    if rep.get("prune_ratios") is not None:
        given = ", ".join(f"{b} {r:.0%}" for b, r in rep["prune_ratios"].items()) or "none"
        lines += [
            "Per-block pruning ratios from the sensitivity scan on val (each block pruned alone, "
            f"no fine-tune; the rest keep their channels): {given}.",
            "",
        ]
    if rep["int8_trials"]:
        lines += ["## INT8 trials", "", _md_rows(rep["int8_trials"]), "", TRIALS_NOTE, ""]
    lines += ["## Plots", ""]
    lines += [f"![{PLOT_TITLES[k]}](plots/{name})" for k, name in rep["plots"].items()]
    lines += [
        "",
        "## Data",
        "",
        f"{data.get('name')}: {data.get('n_images')} images, {data.get('n_boxes')} boxes, "
        f"DVC {data.get('dvc_hash')} ({data.get('tracked_by')})",
        "",
        "## Environment",
        "",
        _md_env(rep["environment"]),
        "",
        "## Config",
        "",
        "```yaml",
        yaml.safe_dump(rep["config"], sort_keys=False).strip(),
        "```",
    ]
    return "\n".join(lines) + "\n"


CSS = """body{font-family:system-ui,sans-serif;max-width:1000px;margin:2em auto;color:#222}
table{border-collapse:collapse;font-size:14px}td,th{border:1px solid #ccc;padding:4px 8px;
text-align:right}th{background:#f3f3f3}td:first-child,th:first-child{text-align:left}
tr.selected{background:#fff3cd;font-weight:600}img{max-width:100%;display:block;margin:1em 0}
pre{background:#f7f7f7;padding:1em;overflow:auto;font-size:12px}"""


TRIALS_NOTE = (
    "Recipes are tried in order on the val split; the first within the INT8 budget of its own "
    "FP32 ONNX is kept (the most accurate when none is). p50 here is each trial timed alone; "
    "the variants table's latency is the interleaved one."
)


def _md_rows(rows: list[dict[str, str]]) -> str:
    cols = list(rows[0])
    out = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    out += ["| " + " | ".join(r[c] for c in cols) + " |" for r in rows]
    return "\n".join(out)


def _html_rows(rows: list[dict[str, str]], table_id: str, marked: str | None = None) -> str:
    """An HTML table of formatted rows; the row whose first cell is ``marked`` highlighted."""
    head = "<tr>" + "".join(f"<th>{html.escape(c)}</th>" for c in rows[0]) + "</tr>"
    body = "".join(
        ('<tr class="selected">' if next(iter(cells.values())) == marked else "<tr>")
        + "".join(f"<td>{html.escape(c)}</td>" for c in cells.values())
        + "</tr>"
        for cells in rows
    )
    return f'<table id="{table_id}">{head}{body}</table>'


def _verdict(sel: Selection) -> str:
    return sel.held_out.verdict if sel.held_out else "not scored"


def html_page(rep: dict[str, Any], sel: Selection, plot_files: dict[str, Path]) -> str:
    """One file with no external assets: CSS inline, PNGs as data URIs."""
    imgs = "".join(
        f'<h3>{html.escape(PLOT_TITLES[k])}</h3><img alt="{k}" src="data:image/png;base64,'
        f'{base64.b64encode(p.read_bytes()).decode()}">'
        for k, p in plot_files.items()
    )
    data = rep["data"]
    env = rep["environment"]
    trials = (
        f"<h2>INT8 trials</h2>{_html_rows(rep['int8_trials'], 'int8_trials')}"
        f"<p>{html.escape(TRIALS_NOTE)}</p>"
        if rep["int8_trials"]
        else ""
    )
    why = rep.get("prune_kept")
    kept = f"<p>Pruning: {html.escape(why)}.</p>" if why else ""
    return (
        f'<!doctype html><html><head><meta charset="utf-8"><title>Optimize report '
        f"{html.escape(rep['run'])}</title><style>{CSS}</style></head><body>"
        f"<h1>Optimize report</h1><p>Run <code>{html.escape(rep['run'])}</code>, "
        f"{html.escape(rep['created'])}</p>"
        f"<p>Selected on val: <b>{html.escape(str(rep['selected']))}</b>: "
        f"{html.escape(rep['reason'])}</p><p>Held out: <b>{html.escape(_verdict(sel))}</b></p>"
        f"<h2>Variants</h2>{_html_rows(table_cells(sel), 'variants', sel.selected)}"
        f"<p>{html.escape(table_notes(sel))}</p>{kept}{trials}<h2>Plots</h2>{imgs}"
        f"<h2>Data</h2><p>{html.escape(str(data.get('name')))}: {data.get('n_images')} images, "
        f"{data.get('n_boxes')} boxes, DVC <code>{html.escape(str(data.get('dvc_hash')))}</code>"
        f"</p><h2>Environment</h2><p>{html.escape(_md_env(env))}</p>"
        f"<h2>Config</h2><pre>{html.escape(yaml.safe_dump(rep['config'], sort_keys=False))}</pre>"
        "</body></html>"
    )


def write_report(
    folder: Path,
    sel: Selection,
    run: str,
    data: dict[str, Any],
    config: dict[str, Any],
    how: HowChosen | None = None,
    models: dict[str, Path] | None = None,
    dataset: Path | None = None,
) -> dict[str, Path]:
    """Plots, report.json, report.md and report.html in ``folder``; their paths by kind."""
    how = how or HowChosen()
    plot_files = make_plots(sel, folder / "plots", how, data, models, dataset)
    rep = report_data(sel, run, data, config, plot_files, how)
    return {
        "json": write_json(folder / "report.json", rep),
        "md": atomic_write_text(folder / "report.md", markdown(rep, sel)),
        "html": atomic_write_text(folder / "report.html", html_page(rep, sel, plot_files)),
        **plot_files,
    }
