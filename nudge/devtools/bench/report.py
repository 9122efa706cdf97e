"""The results table (Markdown) printed after a run and pasted into BENCHMARKS.md."""

from __future__ import annotations

from typing import Any


def _number(value: Any, digits: int = 2) -> str:
    if value is None:
        return "-"
    if isinstance(value, int):
        return f"{value:,}"
    return f"{value:,.{digits}f}"


def results_table(results: dict[str, Any]) -> str:
    lines = [
        "| stage | seconds | floor seconds | ratio | peak RSS MB | rows |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name, stage in results["stages"].items():
        lines.append(
            f"| {name} | {_number(stage['seconds'])} | {_number(stage['floor_seconds'])} "
            f"| {_number(stage['ratio'])} | {_number(stage['peak_rss_mb'], 0)} "
            f"| {_number(stage['rows'])} |"
        )
    return "\n".join(lines)
