"""Helpers shared by the benchmark scripts: timing, aligned tables, machine facts, JSON.

The scripts import this module by name; Python puts the script's folder on ``sys.path``, so
``python benchmarks/bench_metrics.py`` works from any working directory.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import sys
import time
from collections.abc import Callable, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

_PACKAGES = ("niseg", "numpy", "scipy", "scikit-learn", "tifffile", "h5py", "zarr", "dask")


def parser(description: str) -> argparse.ArgumentParser:
    """Command-line parser with the flags every benchmark takes (--quick, --json OUT)."""
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--quick", action="store_true", help="small inputs, finishes in well under 20 s")
    p.add_argument("--json", metavar="OUT", type=Path, help="also write the numbers to OUT")
    return p


def best_time(
    func: Callable[[], Any],
    *,
    setup: Callable[[], Any] | None = None,
    repeats: int = 5,
    budget: float = 1.0,
) -> tuple[float, Any]:
    """Fastest of up to ``repeats`` runs of ``func`` (seconds) and the last run's result.

    Runs stop early once their total passes ``budget`` seconds, so a slow reference call runs
    once and a fast one gets the minimum of several runs (the least disturbed by the machine).
    ``setup`` runs untimed before every run.
    """
    times: list[float] = []
    result = None
    for _ in range(max(repeats, 1)):
        if setup is not None:
            setup()
        start = time.perf_counter()
        result = func()
        times.append(time.perf_counter() - start)
        if sum(times) > budget:
            break
    return min(times), result


def fmt_time(seconds: float) -> str:
    """Seconds as a short human string with three significant digits ('12.3 ms', '1.52 s')."""
    if seconds < 1e-3:
        return f"{seconds * 1e6:.0f} us"
    if seconds < 1.0:
        value, unit = seconds * 1e3, "ms"
    else:
        value, unit = seconds, "s"
    digits = 2 if value < 10 else 1 if value < 100 else 0
    return f"{value:.{digits}f} {unit}"


def fmt_ratio(ratio: float) -> str:
    return f"{ratio:.1f}x" if ratio < 100 else f"{ratio:.0f}x"


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]], right: Sequence[bool]) -> str:
    """Rows as an aligned plain-text table (also valid Markdown)."""
    cells = [[str(c) for c in headers]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]

    def line(row: Sequence[str]) -> str:
        parts = [c.rjust(w) if r else c.ljust(w) for c, w, r in zip(row, widths, right)]
        return "| " + " | ".join(parts) + " |"

    rule = (
        "|"
        + "|".join(("-" * (w + 1) + ":") if r else ("-" * (w + 2)) for w, r in zip(widths, right))
        + "|"
    )
    return "\n".join([line(cells[0]), rule, *(line(row) for row in cells[1:])])


#: Columns of the verdict table most benchmarks print (niseg's figure, the figure it is
#: compared with, the target, PASS/FAIL and the load average during the row).
VERDICT_HEADERS = ("row", "figure", "niseg", "compared with", "target", "result", "load")


def verdict_table(rows: Sequence[Sequence[Any]], compared_right: bool = False) -> str:
    """:func:`table` with :data:`VERDICT_HEADERS`; figures (and the load) right-aligned,
    the "compared with" column too when ``compared_right``."""
    return table(VERDICT_HEADERS, rows, [False, False, True, compared_right, False, False, True])


def machine() -> dict[str, Any]:
    """Facts about the machine and library versions, for the JSON output and the header."""
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        usable = os.cpu_count()
    versions = {}
    for name in _PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    memory = None
    if hasattr(os, "sysconf") and "SC_PHYS_PAGES" in os.sysconf_names:
        memory = round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)
    return {
        "date": datetime.date.today().isoformat(),
        "cpus": usable,
        "memory_gib": memory,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "versions": versions,
    }


def header(title: str, info: dict[str, Any]) -> str:
    v = info["versions"]
    libs = ", ".join(f"{k} {val}" for k, val in v.items() if val)
    return (
        f"{title}\n{info['date']}, {info['cpus']} CPUs, {info['memory_gib']} GiB, "
        f"Python {info['python']}\n{libs}\n"
    )


def write_json(path: Path | None, payload: dict[str, Any]) -> None:
    if path is None:
        return
    payload = {"command": " ".join([Path(sys.executable).name, *sys.argv]), **payload}
    Path(path).write_text(json.dumps(payload, indent=2) + "\n")
