"""``make bench``: every benchmark against its baselines, side by side in one run.

    python benchmarks/run.py [--out benchmarks/RESULTS.md] [--quick] [--only NAME ...]

Writes the table to ``--out`` and every sample to the same name with ``.json``. ``--quick``
shrinks every benchmark to seconds (CI keeps them working with it; its numbers mean nothing).
``--only`` runs some benchmarks and keeps the other rows of an existing results file;
``--render`` rewrites the table from the JSON file (after editing FINDINGS.md) without running.

Benchmarks (each a ``bench_<name>.py`` module with ``run(settings) -> rows``):

- decode: a 100-dataset page into aioudata's models vs json.loads, orjson, pydantic v2;
- overhead: GET + decode through aioudata vs raw aiohttp (issue 4);
- pagination: concurrency 1/4/16/64 at 100 ms vs the ideal and a sequential walker, peak RSS
  with a slow consumer (issue 5);
- catalog: 74,000 datasets at 150 ms and concurrency 8 vs the ideal; 10% injected faults;
- mirror: the mirror vs a sequential walker storing the same rows, peak RSS 100k vs 10k
  datasets (issue 6).
- resources: the resource checker vs the ideal schedule of its limits, hydra's batches and a
  naive gather, politeness from the servers' counts, peak RSS 1M vs 100k URLs (issue 15);
- downloads: 1,000 files with checksums, some corrupted or cut (every fault found, every cut
  file resumed or fetched again), throughput vs a plain aiohttp download (issue 15).
- postgres: the same 10,000-dataset mirror into PostgreSQL and into SQLite, time and peak RSS
  (issue 16).

Every server is ``benchmarks/_server.py``'s synthetic catalog, in a child process on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks._common import Settings, machine  # noqa: E402

BENCHMARKS = (
    "decode",
    "overhead",
    "pagination",
    "catalog",
    "mirror",
    "resources",
    "downloads",
    "postgres",
)
NOTES = ROOT / "benchmarks" / "FINDINGS.md"
RATIO_NAMES = {"speedup": "speed-up", "fraction": "of ideal", "cost": "cost"}


def fmt(value: float, unit: str) -> str:
    if unit == "s":
        return f"{value * 1000:.2f} ms" if value < 1 else f"{value:.2f} s"
    return f"{value:.1f} {unit}"


def fmt_measure(r: dict[str, Any], side: str) -> str:
    value, spread, unit = r[side], r[f"{side}_spread"], r["unit"]
    text = fmt(value, unit)
    if spread[0] != spread[1]:
        text += f" ({fmt(spread[0], unit).split()[0]}–{fmt(spread[1], unit)})"
    return text


def table_row(r: dict[str, Any]) -> str:
    met = {True: "yes", False: "**NO**", None: "–"}[r["met"]]
    if r["direction"] == "check":
        target = r.get("target_text", "0 lost, 0 duplicated")
        cells = [r["benchmark"], r["check"], "–", "–", target, met]
    else:
        ratio = f"{r['ratio']:.2f} {RATIO_NAMES[r['direction']]}"
        if r.get("ratio_spread"):
            low, high = r["ratio_spread"]
            ratio += f" ({low:.2f}–{high:.2f})"
        target = "–"
        if r["target"] is not None:
            target = f"{'≤' if r['direction'] == 'cost' else '≥'} {r['target']:g}"
        baseline = f"{fmt_measure(r, 'baseline')}: {r['baseline_name']}"
        cells = [r["benchmark"], fmt_measure(r, "aioudata"), baseline, ratio, target, met]
    if r.get("note"):
        cells[0] += f" <br><sub>{r['note']}</sub>"
    return "| " + " | ".join([*cells, r["machine"], r["date"]]) + " |"


def write(rows: list[dict[str, Any]], out: Path, elapsed: float, quick: bool) -> None:
    lines = [
        "# Benchmark results",
        "",
        "Written by `make bench` (`benchmarks/run.py`"
        + (" --quick: sizes shrunk to check the code runs, numbers meaningless" if quick else "")
        + f"); this run took {elapsed / 60:.1f} min.",
        "",
        "Every ratio is made within one run, both sides measured in that run with their order",
        "alternating between repeats. Where the sides ran in pairs (decode, overhead), the ratio",
        "is the median of the per-pair ratios, spread in brackets; elsewhere it is the ratio of",
        "the two medians. Times and sizes are medians with the spread (min–max) of the repeats;",
        "every sample is in the JSON file beside this one. How to read the ratio column:",
        "",
        "- **speed-up** = baseline ÷ aioudata: how many times faster aioudata is"
        " (higher is better);",
        "- **of ideal** = ideal ÷ aioudata: the share of the ideal speed reached (1 is perfect);",
        "- **cost** = aioudata ÷ baseline: aioudata's time or memory for one of the"
        " baseline's (lower is better).",
        "",
        "Targets are reported, not asserted. Servers are `benchmarks/_server.py`: a synthetic",
        "catalog made from responses recorded from the real udata server, paginated as udata",
        "does, in a child process on 127.0.0.1 with the stated latency per request.",
        "",
        "| benchmark | aioudata | baseline | ratio | target | met | machine | date |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    group = None
    for r in rows:
        if r["group"] != group:
            group = r["group"]
            lines.append(f"| **{group}** | | | | | | | |")
        lines.append(table_row(r))
    if NOTES.exists():
        lines += ["", NOTES.read_text(encoding="utf-8").strip()]
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    data = {"run": {"seconds": round(elapsed, 1), "quick": quick}, "rows": rows}
    out.with_suffix(".json").write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")


def read(path: Path) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The run's facts and rows from a JSON file that :func:`write` made."""
    data = json.loads(path.read_text(encoding="utf-8"))
    return data["run"], data["rows"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "RESULTS.md")
    parser.add_argument("--quick", action="store_true", help="tiny sizes: checks it runs")
    parser.add_argument("--only", action="append", choices=BENCHMARKS, help="run only these")
    parser.add_argument(
        "--render", action="store_true", help="rewrite --out from its JSON (after editing notes)"
    )
    args = parser.parse_args()
    previous = args.out.with_suffix(".json")
    if args.render:
        run, rows = read(previous)
        write(rows, args.out, run["seconds"], run["quick"])
        print(f"wrote {args.out}")
        return 0
    settings = Settings(quick=args.quick)
    chosen = args.only or list(BENCHMARKS)
    date = datetime.now(UTC).strftime("%Y-%m-%d")
    here = machine()
    kept: dict[str, list[dict[str, Any]]] = {}
    if args.only and previous.exists():
        for r in read(previous)[1]:
            kept.setdefault(r.get("bench", ""), []).append(r)
    started = time.perf_counter()
    for name in BENCHMARKS:
        if name not in chosen:
            continue
        began = time.perf_counter()
        module = importlib.import_module(f"benchmarks.bench_{name}")
        rows = module.run(settings)
        for r in rows:
            r.update(bench=name, machine=here, date=date)
            if r["direction"] == "check":
                print(f"{r['benchmark']}: {r['check']} met={r['met']}", flush=True)
            else:
                print(
                    f"{r['benchmark']}: ratio {r['ratio']:.3f} "
                    f"(target {r['target']}) met={r['met']}",
                    flush=True,
                )
        kept[name] = rows
        print(f"-- {name}: {time.perf_counter() - began:.0f} s", flush=True)
    elapsed = time.perf_counter() - started
    rows = [r for name in BENCHMARKS for r in kept.get(name, [])]
    write(rows, args.out, elapsed, args.quick)
    print(f"wrote {args.out} ({elapsed:.0f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
