"""report.json, report.md and a self-contained report.html (plots embedded as base64 PNG)."""

from __future__ import annotations

import base64
import datetime
import html
import importlib.metadata
from pathlib import Path
from typing import Any

import yaml

from edge import device
from yeo.io import atomic_write_text, write_json
from yeo.optimize.variants import Selection, markdown_table, table_cells
from yeo.report import plots

SCHEMA = "yeo-optimize-report/1"
LIBRARIES = ("torch", "ultralytics", "torch-pruning", "onnx", "onnxruntime", "zenml", "mlflow")
PLOT_TITLES = {
    "accuracy_vs_latency": "Accuracy vs latency (budget drawn, selected circled)",
    "size_macs": "File size and compute per variant",
    "per_class_ap": "Per-class AP: base vs selected",
}


def environment() -> dict[str, Any]:
    env = device.describe()
    for lib in LIBRARIES:
        try:
            env["runtimes"][lib] = importlib.metadata.version(lib)  # type: ignore[index]
        except importlib.metadata.PackageNotFoundError:
            continue
    return env


def make_plots(sel: Selection, folder: Path) -> dict[str, Path]:
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
    return out


def report_data(
    sel: Selection,
    run: str,
    data: dict[str, Any],
    config: dict[str, Any],
    plot_files: dict[str, Path],
) -> dict[str, Any]:
    return {
        "schema": SCHEMA,
        "run": run,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "selected": sel.selected,
        "reason": sel.reason,
        "base_map50_95": sel.base_map50_95,
        "max_map_drop": sel.max_map_drop,
        "variants": [v.model_dump() for v in sel.variants],
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
        f"Selected: **{rep['selected'] or 'none'}**: {rep['reason']}",
        "",
        markdown_table(sel),
        "",
        "Latency: onnxruntime, batch 1, CPU; speed-up vs base_fp32. mAP on the val split by the "
        "one evaluator.",
        "",
        "## Plots",
        "",
    ]
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


def _html_table(sel: Selection) -> str:
    rows = table_cells(sel)
    head = "<tr>" + "".join(f"<th>{html.escape(c)}</th>" for c in rows[0]) + "</tr>"
    body = "".join(
        ('<tr class="selected">' if cells["variant"] == sel.selected else "<tr>")
        + "".join(f"<td>{html.escape(c)}</td>" for c in cells.values())
        + "</tr>"
        for cells in rows
    )
    return f'<table id="variants">{head}{body}</table>'


def html_page(rep: dict[str, Any], sel: Selection, plot_files: dict[str, Path]) -> str:
    """One file with no external assets: CSS inline, PNGs as data URIs."""
    imgs = "".join(
        f'<h3>{html.escape(PLOT_TITLES[k])}</h3><img alt="{k}" src="data:image/png;base64,'
        f'{base64.b64encode(p.read_bytes()).decode()}">'
        for k, p in plot_files.items()
    )
    data = rep["data"]
    env = rep["environment"]
    return (
        f'<!doctype html><html><head><meta charset="utf-8"><title>Optimize report '
        f"{html.escape(rep['run'])}</title><style>{CSS}</style></head><body>"
        f"<h1>Optimize report</h1><p>Run <code>{html.escape(rep['run'])}</code>, "
        f"{html.escape(rep['created'])}</p>"
        f"<p>Selected: <b>{html.escape(str(rep['selected']))}</b>: {html.escape(rep['reason'])}</p>"
        f"<h2>Variants</h2>{_html_table(sel)}<p>Latency: onnxruntime, batch 1, CPU; speed-up vs "
        f"base_fp32.</p><h2>Plots</h2>{imgs}"
        f"<h2>Data</h2><p>{html.escape(str(data.get('name')))}: {data.get('n_images')} images, "
        f"{data.get('n_boxes')} boxes, DVC <code>{html.escape(str(data.get('dvc_hash')))}</code>"
        f"</p><h2>Environment</h2><p>{html.escape(_md_env(env))}</p>"
        f"<h2>Config</h2><pre>{html.escape(yaml.safe_dump(rep['config'], sort_keys=False))}</pre>"
        "</body></html>"
    )


def write_report(
    folder: Path, sel: Selection, run: str, data: dict[str, Any], config: dict[str, Any]
) -> dict[str, Path]:
    """Plots, report.json, report.md and report.html in ``folder``; their paths by kind."""
    plot_files = make_plots(sel, folder / "plots")
    rep = report_data(sel, run, data, config, plot_files)
    return {
        "json": write_json(folder / "report.json", rep),
        "md": atomic_write_text(folder / "report.md", markdown(rep, sel)),
        "html": atomic_write_text(folder / "report.html", html_page(rep, sel, plot_files)),
        **plot_files,
    }
