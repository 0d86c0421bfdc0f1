"""Validate a staged dataset: a Great Expectations 1.x suite over the metadata tables plus the
file-level faults GX cannot see (undecodable images, unparsable label lines).

GX runs in an ephemeral context (ZenML's GX integration only supports GX < 1.0) with a
filesystem Data Docs site in the report folder. Every failed row is traced back to its image
file, so the report lists each bad file with its fault. With ``on_error=skip`` the images at
fault are dropped from the staging folder instead of failing the run; dataset-level faults
(an empty split, no rows) always fail.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from yeo.data.etl import read_tables, relative_source, write_data_yaml, write_tables
from yeo.data.model import Fault, SourceDataset, StagedDataset, ValidationReport
from yeo.io import atomic_write_text, write_json

if TYPE_CHECKING:
    import pandas as pd

log = logging.getLogger(__name__)
_EPS = 1e-6  # tolerance for boxes touching the image border after float round-trips


@dataclass(frozen=True)
class Limits:
    """Dataset-wide limits from ``conf/data``."""

    min_side: int = 8
    max_side: int = 20000
    min_images_per_split: int = 1
    required_splits: tuple[str, ...] = ("train", "val")


def _box_frame(boxes: pd.DataFrame) -> pd.DataFrame:
    """Box table plus its corner coordinates, which the in-image expectations read."""
    out = boxes.copy()
    out["x_min"], out["x_max"] = out["cx"] - out["w"] / 2, out["cx"] + out["w"] / 2
    out["y_min"], out["y_max"] = out["cy"] - out["h"] / 2, out["cy"] + out["h"] / 2
    return out


def _image_frame(images: pd.DataFrame) -> pd.DataFrame:
    """Image table plus, per image, how many splits hold an identical file (1 = no leak)."""
    out = images.copy()
    out["splits_sharing_hash"] = out.groupby("sha256")["split"].transform("nunique")
    return out


def _suites(n_classes: int, limits: Limits) -> dict[str, list[Any]]:
    import great_expectations.expectations as gxe

    box_cols = ["image", "split", "class_id", "cx", "cy", "w", "h", "sha256"]
    img_cols = ["image", "split", "width", "height", "channels", "sha256"]
    boxes = [gxe.ExpectColumnValuesToNotBeNull(column=c) for c in box_cols] + [
        gxe.ExpectColumnValuesToBeBetween(column="class_id", min_value=0, max_value=n_classes - 1),
        gxe.ExpectColumnValuesToBeBetween(column="w", min_value=0, max_value=1, strict_min=True),
        gxe.ExpectColumnValuesToBeBetween(column="h", min_value=0, max_value=1, strict_min=True),
        gxe.ExpectColumnValuesToBeBetween(column="x_min", min_value=-_EPS, max_value=1 + _EPS),
        gxe.ExpectColumnValuesToBeBetween(column="x_max", min_value=-_EPS, max_value=1 + _EPS),
        gxe.ExpectColumnValuesToBeBetween(column="y_min", min_value=-_EPS, max_value=1 + _EPS),
        gxe.ExpectColumnValuesToBeBetween(column="y_max", min_value=-_EPS, max_value=1 + _EPS),
    ]
    images = [gxe.ExpectColumnValuesToNotBeNull(column=c) for c in img_cols] + [
        gxe.ExpectTableRowCountToBeBetween(min_value=1),
        gxe.ExpectColumnValuesToBeUnique(column="image"),
        gxe.ExpectColumnValuesToBeInSet(column="split", value_set=["train", "val", "test"]),
        gxe.ExpectColumnDistinctValuesToContainSet(
            column="split", value_set=list(limits.required_splits)
        ),
        gxe.ExpectColumnValuesToBeBetween(
            column="width", min_value=limits.min_side, max_value=limits.max_side
        ),
        gxe.ExpectColumnValuesToBeBetween(
            column="height", min_value=limits.min_side, max_value=limits.max_side
        ),
        gxe.ExpectColumnValuesToBeInSet(column="channels", value_set=[1, 2, 3, 4]),
        gxe.ExpectColumnValuesToBeBetween(column="splits_sharing_hash", min_value=1, max_value=1),
    ]
    return {"boxes": boxes, "images": images}


def run_gx(
    images: pd.DataFrame, boxes: pd.DataFrame, n_classes: int, limits: Limits, docs_dir: Path
) -> list[dict[str, Any]]:
    """Run the suites; one dict per expectation with its result and the images at fault."""
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    ctx = gx.get_context(mode="ephemeral")
    ctx.variables.progress_bars = ProgressBarsConfig(globally=False)
    ctx.add_data_docs_site(
        site_name="local",
        site_config={
            "class_name": "SiteBuilder",
            "store_backend": {
                "class_name": "TupleFilesystemStoreBackend",
                "base_directory": str(docs_dir),
            },
            "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
        },
    )
    source = ctx.data_sources.add_pandas("metadata")
    frames = {"boxes": _box_frame(boxes), "images": _image_frame(images)}
    definitions = []
    for table, expectations in _suites(n_classes, limits).items():
        batch = source.add_dataframe_asset(table).add_batch_definition_whole_dataframe("all")
        suite = ctx.suites.add(gx.ExpectationSuite(name=f"{table}_suite"))
        for e in expectations:
            suite.add_expectation(e)
        definitions.append(
            ctx.validation_definitions.add(
                gx.ValidationDefinition(name=table, data=batch, suite=suite)
            )
        )
    results: list[dict[str, Any]] = []
    for vd, table in zip(definitions, frames, strict=True):
        checkpoint = ctx.checkpoints.add(
            gx.Checkpoint(
                name=f"{table}_checkpoint",
                validation_definitions=[vd],
                actions=[gx.checkpoint.UpdateDataDocsAction(name="docs")],
                result_format={
                    "result_format": "COMPLETE",
                    "unexpected_index_column_names": ["image"],
                },
            )
        )
        outcome = checkpoint.run(batch_parameters={"dataframe": frames[table]})
        for run in outcome.run_results.values():
            for r in run.results:
                cfg = r.expectation_config
                column = cfg.kwargs.get("column")
                bad = r.result.get("unexpected_index_list") or []
                results.append(
                    {
                        "table": table,
                        "expectation": cfg.type,
                        "column": column,
                        "kwargs": {k: v for k, v in cfg.kwargs.items() if k != "batch_id"},
                        "success": bool(r.success),
                        "unexpected_count": r.result.get("unexpected_count", 0),
                        "observed_value": r.result.get("observed_value"),
                        "bad_rows": [
                            {"image": row.get("image"), "value": row.get(column)}
                            for row in bad
                            if isinstance(row, dict)
                        ],
                        "exception": (r.exception_info or {}).get("exception_message"),
                    }
                )
    return results


def _describe(result: dict[str, Any], value: Any) -> str:
    kw = result["kwargs"]
    column = result["column"]
    if result["expectation"] == "expect_column_values_to_be_between":
        if column == "splits_sharing_hash":
            return "identical image in more than one split (train/val leak)"
        if column == "class_id":
            return f"class id {value} outside 0..{kw['max_value']}"
        if column in ("w", "h"):
            return f"box {column}={value:.6g} must be in (0, 1]"
        if column in ("x_min", "x_max", "y_min", "y_max"):
            return f"box outside the image ({column}={value:.6g})"
        return f"{column}={value} outside [{kw.get('min_value')}, {kw.get('max_value')}]"
    if result["expectation"] == "expect_column_values_to_not_be_null":
        return f"missing value in column {column}"
    if result["expectation"] == "expect_column_values_to_be_in_set":
        return f"{column}={value!r} not in {kw.get('value_set')}"
    return f"{result['expectation']} failed on {column}"


def faults_from_gx(results: list[dict[str, Any]], images: pd.DataFrame) -> list[Fault]:
    """Turn failed row-level expectations into per-file faults; table-level ones name the set."""
    source_of = dict(zip(images["image"], images["source"], strict=True))
    faults: list[Fault] = []
    for r in results:
        if r["success"]:
            continue
        if r["exception"]:
            faults.append(Fault(file="<metadata>", fault=f"{r['expectation']}: {r['exception']}"))
        elif r["bad_rows"]:
            seen: set[tuple[str, str]] = set()
            for row in r["bad_rows"]:
                src = source_of.get(row["image"], row["image"])
                msg = _describe(r, row["value"])
                if (src, msg) not in seen:
                    seen.add((src, msg))
                    faults.append(Fault(file=src, fault=msg, image=src))
        else:
            faults.append(Fault(file="<dataset>", fault=_dataset_fault(r, images)))
    return faults


def _dataset_fault(r: dict[str, Any], images: pd.DataFrame) -> str:
    if r["expectation"] == "expect_table_row_count_to_be_between":
        return "no usable images (empty dataset)"
    if r["expectation"] == "expect_column_distinct_values_to_contain_set":
        missing = sorted(set(r["kwargs"]["value_set"]) - set(images["split"]))
        return f"split(s) {missing} are empty; add images or change data.split"
    return f"{r['expectation']} failed on {r['column']}: observed {r['observed_value']}"


def drop_images(staging: Path, names: list[str], sources: set[str]) -> list[str]:
    """Remove the images at fault (files and table rows) from a staging folder."""
    images, boxes = read_tables(staging)
    gone = images[images["source"].isin(sources)]
    for rel in gone["image"]:
        (staging / rel).unlink(missing_ok=True)
        (staging / rel.replace("images/", "labels/", 1)).with_suffix(".txt").unlink(missing_ok=True)
    images = images[~images["source"].isin(sources)].reset_index(drop=True)
    boxes = boxes[~boxes["source"].isin(sources)].reset_index(drop=True)
    write_tables(staging, images, boxes)
    write_data_yaml(staging, names, images)
    return sorted(gone["source"])


def validate(
    staged: StagedDataset, report_dir: Path, on_error: str = "fail", limits: Limits = Limits()
) -> ValidationReport:
    """Validate the staged dataset, write the report, drop bad images if ``on_error=skip``."""
    if on_error not in ("fail", "skip"):
        raise ValueError(f"data.on_error must be 'fail' or 'skip', got {on_error!r}")
    staging = staged.staging
    images, boxes = read_tables(staging)
    docs_dir = report_dir / "gx_data_docs"
    shutil.rmtree(docs_dir, ignore_errors=True)
    results = run_gx(images, boxes, len(staged.names), limits, docs_dir)
    root = Path(staged.source_root) if staged.source_root else None

    def named(table: pd.DataFrame) -> pd.DataFrame:
        """The tables record sources relative to the source root; faults name the files."""
        if root is None:
            return table
        return table.assign(source=[os.path.normpath(root / s) for s in table["source"]])

    faults = list(staged.faults) + faults_from_gx(results, named(images))
    dropped: list[str] = []
    if on_error == "skip":
        file_errors = {f.image for f in faults if f.severity == "error" and f.image}
        if file_errors:
            dropped = sorted(file_errors)
            drop_images(
                staging,
                staged.names,
                {relative_source(f, root) if root else f for f in file_errors},
            )
            images, boxes = read_tables(staging)
            results = run_gx(images, boxes, len(staged.names), limits, docs_dir)
            skipped = [
                f.model_copy(update={"severity": "warning", "fault": f"{f.fault} (skipped)"})
                for f in faults
                if f.severity == "error" and f.image
            ]
            faults = [f for f in faults if not (f.severity == "error" and f.image)] + skipped
            faults += [f for f in faults_from_gx(results, named(images)) if f not in faults]
    index = docs_dir / "index.html"
    report = ValidationReport(
        name=staged.name,
        success=not any(f.severity == "error" for f in faults),
        on_error=on_error,
        faults=sorted(faults, key=lambda f: (f.severity != "error", f.file, f.fault)),
        dropped_images=dropped,
        expectations=results,
        report_dir=str(report_dir),
        data_docs=str(index) if index.exists() else None,
        n_images=len(images),
        n_boxes=len(boxes),
        class_counts={
            name: int((boxes["class_id"] == i).sum()) for i, name in enumerate(staged.names)
        },
        split_counts={str(k): int(v) for k, v in images["split"].value_counts().items()},
    )
    write_report(report)
    return report


def write_report(report: ValidationReport) -> None:
    """``validation.json`` (machine) and ``validation.md`` (people) in the report folder."""
    folder = Path(report.report_dir)
    write_json(folder / "validation.json", report.model_dump())
    lines = [
        f"# Data validation: {report.name}",
        "",
        f"**{'PASSED' if report.success else 'FAILED'}** (on_error={report.on_error}): "
        f"{report.n_images} images, {report.n_boxes} boxes, "
        f"{len(report.errors)} errors, {len(report.warnings)} warnings.",
        "",
        f"Splits: {report.split_counts}  ",
        f"Boxes per class: {report.class_counts}  ",
        f"GX Data Docs: {report.data_docs or 'not written'}",
        "",
        "## Expectations",
        "",
        "| table | expectation | column | result | unexpected |",
        "|---|---|---|---|---|",
    ]
    lines += [
        f"| {r['table']} | {r['expectation']} | {r['column'] or ''} | "
        f"{'ok' if r['success'] else 'FAILED'} | {r['unexpected_count'] or 0} |"
        for r in report.expectations
    ]
    lines += ["", "## Files at fault", ""]
    lines += [f"- {f.severity}: `{f.file}`: {f.fault}" for f in report.faults] or ["none"]
    atomic_write_text(folder / "validation.md", "\n".join(lines) + "\n")


def _reason(fault: str) -> str:
    """A fault's kind, without the particulars (ids, numbers, quoted names, boxes)."""
    text = re.sub(r"\[[^\]]*\]|'[^']*'|\"[^\"]*\"|\([^)]*\)|\S*/\S*|-?\d+(\.\d+)?", "…", fault)
    text = re.sub(r"^(annotation|image id|line)( …)+: ", "", text)
    return " ".join(text.split())


def _counted(faults: list[Fault], top: int = 3) -> str:
    counts = Counter(_reason(f.fault) for f in faults).most_common()
    shown = [f"{n}x {why}" for why, n in counts[:top]]
    rest = sum(n for _, n in counts[top:])
    return "; ".join(shown + ([f"{rest} more"] if rest else []))


def intake_lines(source: SourceDataset, report: ValidationReport) -> list[str]:
    """What the source contributed (per source split or annotation file, when it has more
    than one), what was skipped and why, and the warnings, counted by kind."""
    by: dict[str, list[int]] = {}
    for img in source.images:
        key = img.split or "all"
        by.setdefault(key, [0, 0])
        by[key][0] += 1
        by[key][1] += len(img.boxes)
    n_img, n_box = len(source.images), sum(n for _, n in by.values())
    parts = ", ".join(f"{k} {i}/{b}" for k, (i, b) in by.items()) if len(by) > 1 else ""
    lines = [
        f"read         {n_img} images, {n_box} boxes from {source.root}"
        + (f" (images/boxes by source split: {parts})" if parts else "")
    ]
    skipped = [f for f in report.faults if f.fault.endswith("(skipped)")]
    if skipped or report.dropped_images:
        lines.append(
            f"skipped      {len(report.dropped_images)} (on_error={report.on_error}): "
            + _counted(skipped)
        )
    warned = [f for f in report.warnings if f not in skipped]
    if warned:
        lines.append(f"warnings     {len(warned)}: {_counted(warned)}")
    return lines
