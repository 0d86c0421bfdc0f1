"""What the benchmark scripts share: the optimize run they measure (``--run``, default the
newest) with its report and its dataset (refused when the data moved on since), the CPU line
that heads every table, and the JSON and Markdown they publish (written atomically under
``outputs/benchmarks/<run>/``, the text printed too)."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edge.device import describe
from yeo.benchmark import run_dataset, run_report
from yeo.env import workspace
from yeo.io import atomic_write_text, write_json


def parser(doc: str | None, runs: int = 30, rounds: int | None = 5) -> argparse.ArgumentParser:
    """The script's command line with ``--run``, ``--runs`` and (unless None) ``--rounds``."""
    ap = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument(
        "--run", type=Path, default=None, help="outputs/optimize/<run> (default: the newest)"
    )
    if rounds is not None:
        ap.add_argument("--rounds", type=int, default=rounds, help="interleaved rounds")
    ap.add_argument("--runs", type=int, default=runs, help="timed calls per round")
    return ap


@dataclass(frozen=True)
class Run:
    """One optimize run: its folder and its report."""

    path: Path
    report: dict[str, Any]

    @property
    def name(self) -> str:
        return self.path.name

    def dataset(self) -> Path:
        """The processed dataset the run used (refused if another version is on disk)."""
        return run_dataset(self.report)

    def out(self, *parts: str) -> Path:
        """``outputs/benchmarks/<run>/<parts>``, created."""
        folder = workspace().outputs / "benchmarks" / self.name / Path(*parts)
        folder.mkdir(parents=True, exist_ok=True)
        return folder


def open_run(path: Path | None) -> Run:
    """``path`` (default: the newest optimize run), refused without its report."""
    return Run(*run_report(path))


def cpu_line(device: dict[str, Any] | None = None) -> str:
    """``CPU: <model>, <n> cores, flags <isa>``: what every figure is read next to."""
    d = device or describe()
    return f"CPU: {d['cpu']}, {d['usable_cores']} cores, flags {' '.join(d['isa'])}"


def publish(folder: Path, stem: str, data: dict[str, Any], text: str) -> str:
    """``<stem>.json`` and ``<stem>.md`` in ``folder``; the text printed and returned."""
    write_json(folder / f"{stem}.json", data)
    atomic_write_text(folder / f"{stem}.md", text + "\n")
    print(text)
    return text
