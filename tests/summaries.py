"""Reading the mirror's summary table (``MirrorSummary.lines``) back in tests."""

from __future__ import annotations

COLUMNS = ("stored", "new", "updated", "deleted", "errors", "pages")


def summary_rows(text: str) -> dict[str, dict[str, str]]:
    """entity → {column: value, "mode": the pass's mode} from a printed summary."""
    lines = text.splitlines()
    at = next(i for i, line in enumerate(lines) if line.split() == list(COLUMNS))
    rows: dict[str, dict[str, str]] = {}
    last: dict[str, str] | None = None
    for line in lines[at + 1 :]:
        fields = line.split()
        if len(fields) > len(COLUMNS) and fields[1].isdigit():
            last = dict(zip(COLUMNS, fields[1 : len(COLUMNS) + 1], strict=True))
            last["mode"] = " ".join(fields[len(COLUMNS) + 1 :])
            rows[fields[0]] = last
        elif last is not None and line.startswith("    ") and not last["mode"]:
            last["mode"] = line.strip()  # a long mode, on a line of its own
        else:
            last = None
    return rows
