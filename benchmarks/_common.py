"""What every benchmark shares: settings, timing, result rows, peak RSS of a child process."""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RECORDED = ROOT / "tests" / "fixtures" / "responses"


@dataclass(frozen=True)
class Settings:
    """How big and how often: ``quick`` keeps every benchmark working in seconds."""

    quick: bool = False

    def pick(self, full: Any, quick: Any) -> Any:
        return quick if self.quick else full


def machine() -> str:
    cores = os.cpu_count() or 0
    return (
        f"{platform.machine()} {cores} cores, "
        f"{platform.python_implementation()} {platform.python_version()}"
    )


def timed(fn: Callable[[], object], repeat: int, number: int) -> list[float]:
    """Seconds per call of ``fn``, one value per repeat."""
    results = []
    for _ in range(repeat):
        started = time.perf_counter()
        for _ in range(number):
            fn()
        results.append((time.perf_counter() - started) / number)
    return results


def spread(values: Sequence[float]) -> list[float]:
    return [min(values), max(values)]


def row(
    benchmark: str,
    *,
    ours: Sequence[float],
    theirs: Sequence[float],
    baseline: str,
    unit: str,
    direction: str,
    target: float | None,
    group: str,
    note: str = "",
    ratios: Sequence[float] | None = None,
) -> dict[str, Any]:
    """One line of the table.

    ``direction`` says how the ratio is made and read:

    - ``"speedup"``: baseline / aioudata, higher is better, target is a minimum;
    - ``"fraction"``: baseline (the ideal) / aioudata, higher is better, at most 1;
    - ``"cost"``: aioudata / baseline, lower is better, target is a maximum.

    ``ratios``: per-repeat ratios when the two sides were measured in pairs, one right after
    the other: the ratio is then their median (robust to the machine's speed drifting between
    repeats), else the ratio of the two medians.
    """
    mine, base = statistics.median(ours), statistics.median(theirs)
    value = mine / base if direction == "cost" else base / mine
    if ratios:
        value = statistics.median(ratios)
    met = None
    if target is not None:
        met = value <= target if direction == "cost" else value >= target
    return {
        "benchmark": benchmark,
        "group": group,
        "unit": unit,
        "aioudata": mine,
        "aioudata_spread": spread(ours),
        "aioudata_samples": list(ours),
        "baseline_name": baseline,
        "baseline": base,
        "baseline_spread": spread(theirs),
        "baseline_samples": list(theirs),
        "direction": direction,
        "ratio": value,
        "ratio_spread": spread(ratios) if ratios else None,
        "target": target,
        "met": met,
        "note": note,
    }


def check_row(
    benchmark: str,
    *,
    ok: bool,
    detail: str,
    group: str,
    note: str = "",
    target: str = "0 lost, 0 duplicated",
) -> dict[str, Any]:
    """A row whose target is a fact, not a ratio (``target``, e.g. "0 lost, 0 duplicated")."""
    return {
        "benchmark": benchmark,
        "group": group,
        "unit": "",
        "check": detail,
        "direction": "check",
        "met": ok,
        "note": note,
        "target_text": target,
    }


def child(module: str, args: dict[str, Any], timeout: float = 600) -> dict[str, Any]:
    """Run ``benchmarks/<module>.py`` in a fresh interpreter; return the JSON it prints last.

    One process per measurement, so peak RSS (``VmHWM``) belongs to that measurement only.
    """
    command = [sys.executable, str(ROOT / "benchmarks" / f"{module}.py"), json.dumps(args)]
    done = subprocess.run(
        command, capture_output=True, text=True, timeout=timeout, cwd=ROOT, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"{module} {args} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def peak_rss_mb() -> float:
    """Peak resident set of this process so far, in MB (VmHWM, else ru_maxrss)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    import resource

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


def abba(repeat: int) -> list[bool]:
    """Which side goes first in each repeat: A B B A A B B A ... (True: aioudata first)."""
    return [(r % 4) in (0, 3) for r in range(repeat)]
