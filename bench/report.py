"""Turning per-run values into the JSON document and the human table.

A figure is the median of the runs with their min and max. The ratio is always
Pillarbox / reference of the medians; whether above 1 is good depends on the metric
(``higher_is_better``), which the table states in words.

Pure functions over plain dicts: no I/O, no clock, so tests can pin the formatting.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence
from typing import Any

PILLARBOX = "pillarbox"
REFERENCE = "reference"


def summarise(values: Sequence[float]) -> dict[str, Any]:
    """``{"median", "min", "max", "runs", "values"}`` of the finite *values*."""
    finite = [v for v in values if not math.isnan(v)]
    if not finite:
        return {"median": None, "min": None, "max": None, "runs": 0, "values": []}
    return {
        "median": statistics.median(finite),
        "min": min(finite),
        "max": max(finite),
        "runs": len(finite),
        "values": [round(v, 4) for v in finite],
    }


def ratio(pillarbox: float | None, reference: float | None) -> float | None:
    if pillarbox is None or reference is None or reference == 0:
        return None
    return pillarbox / reference


def compute_ratios(document: Mapping[str, Any]) -> dict[str, dict[str, float | None]]:
    """``{workload: {metric: pillarbox median / reference median}}`` where both exist."""
    sides = document.get("sides", {})
    ours = sides.get(PILLARBOX, {}).get("workloads", {})
    theirs = sides.get(REFERENCE, {}).get("workloads", {})
    out: dict[str, dict[str, float | None]] = {}
    for workload, result in ours.items():
        other = theirs.get(workload)
        if other is None:
            continue
        metrics: dict[str, float | None] = {}
        for name, figure in result.get("metrics", {}).items():
            peer = other.get("metrics", {}).get(name)
            if peer is not None:
                metrics[name] = ratio(figure.get("median"), peer.get("median"))
        out[workload] = metrics
    return out


def _number(value: float | None) -> str:
    if value is None:
        return "-"
    magnitude = abs(value)
    if magnitude >= 1000:
        return f"{value:,.0f}"
    if magnitude >= 100:
        return f"{value:.0f}"
    if magnitude >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def _figure(figure: Mapping[str, Any] | None) -> str:
    if not figure or figure.get("median") is None:
        return "-"
    text = _number(figure["median"])
    if figure.get("runs", 0) > 1:
        text += f" [{_number(figure['min'])}–{_number(figure['max'])}]"
    return text


def verdict(value: float | None, higher_is_better: bool) -> str:
    """A few words on whether *value* (P/R) favours Pillarbox."""
    if value is None:
        return ""
    if 0.95 <= value <= 1.05:
        return "on par"
    better = value > 1 if higher_is_better else value < 1
    factor = value if value > 1 else (1 / value if value else math.inf)
    return f"P {factor:.2f}x {'better' if better else 'worse'}"


def format_table(document: Mapping[str, Any]) -> str:
    """The human summary: one row per metric, errors as their own rows."""
    sides = document.get("sides", {})
    ours = sides.get(PILLARBOX, {})
    theirs = sides.get(REFERENCE, {})
    ratios = document.get("ratios", {})
    header = ("workload", "metric", "unit", "pillarbox", "reference", "P/R", "")
    rows: list[tuple[str, ...]] = []
    notes: list[str] = []
    setup: list[str] = []
    notes_skipped: list[str] = []
    for side_name, side in ((PILLARBOX, ours), (REFERENCE, theirs)):
        if side.get("error"):
            notes.append(f"{side_name}: {side['error']}")
    for workload in document.get("workloads", []):
        name = workload["name"]
        mine = ours.get("workloads", {}).get(name, {})
        other = theirs.get("workloads", {}).get(name, {})
        for side_name, result in ((PILLARBOX, mine), (REFERENCE, other)):
            if result.get("skipped"):
                notes_skipped.append(f"{name} not run on {side_name}: {result['skipped']}")
            if result.get("error"):
                notes.append(f"{name} on {side_name}: {result['error']}")
            if result.get("setup"):
                facts = ", ".join(f"{k}={v}" for k, v in result["setup"].items())
                setup.append(f"{name} set-up on {side_name}: {facts}")
        for metric in workload["metrics"]:
            mname = metric["name"]
            ours_fig = mine.get("metrics", {}).get(mname)
            theirs_fig = other.get("metrics", {}).get(mname)
            if ours_fig is None and theirs_fig is None:
                continue
            r = ratios.get(name, {}).get(mname)
            rows.append(
                (
                    name,
                    mname,
                    metric["unit"] + (" ↑" if metric["higher_is_better"] else " ↓"),
                    "not run" if mine.get("skipped") else _figure(ours_fig),
                    "not run" if other.get("skipped") else _figure(theirs_fig),
                    "-" if r is None else f"{r:.2f}",
                    verdict(r, metric["higher_is_better"]),
                )
            )
    widths = [
        max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(header)
    ]
    lines = ["  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)).rstrip()]
    lines.append("  ".join("-" * w for w in widths).rstrip())
    previous = ""
    for row in rows:
        shown = ("" if row[0] == previous else row[0], *row[1:])
        previous = row[0]
        lines.append("  ".join(c.ljust(w) for c, w in zip(shown, widths, strict=True)).rstrip())
    runs = document.get("runs")
    lines.append("")
    lines.append(
        f"median [min–max] over {runs} run(s) per figure; ↑ higher is better, ↓ lower is"
        " better; P/R = Pillarbox median / reference median."
    )
    if document.get("quick"):
        lines.append("QUICK mode: scaled-down sizes; figures are indicative only.")
    if any(w.get("name") == "login_heavy" for w in document.get("workloads", [])) and theirs:
        scheme = theirs.get("server", {}).get("login_heavy_password_scheme", "?")
        theirs_are = (
            "plain-text ({PLAIN}, Dovecot's fastest case)"
            if scheme == "PLAIN"
            else f"{scheme} hashes"
        )
        lines.append(
            f"login_heavy: the reference's accounts have {theirs_are} passwords;"
            " Pillarbox's are argon2id (64 MiB, t=3, p=4)."
        )
    if runs is not None and runs < 3:
        lines.append(f"Only {runs} run(s) per figure: fewer than the 3 a comparison needs.")
    lines.extend(notes_skipped)
    lines.extend(setup)
    load = document.get("host", {}).get("loadavg_at_start")
    if load and load[0] >= 1.0:
        lines.append(
            f"warning: the machine was already busy at the start (load {load[0]:.1f}):"
            " other work competed for the CPUs, so figures are skewed."
        )
    for note in notes:
        lines.append(f"ERROR {note}")
    return "\n".join(lines)
