"""``python -m codegen``: regenerate aioudata/_generated/ from openapi/ (or check it is current).

python -m codegen                  # write src/aioudata/_generated/
python -m codegen --check          # regenerate into a temp dir, fail on any difference
python -m codegen --spec DIR --out DIR
"""

from __future__ import annotations

import argparse
import difflib
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from .models import generate_models
from .operations import generate_operations
from .prepare import prepare
from .render import render
from .spec_loader import fragment_paths, merge_versions

ROOT = Path(__file__).resolve().parent.parent
SPEC = ROOT / "openapi"
OUT = ROOT / "src" / "aioudata" / "_generated"


def generate(spec_dir: Path) -> dict[str, str]:
    """Relative path -> source of every generated file, formatted.

    ``spec_dir`` holds the API v1's fragments, and the v2's in ``spec_dir/v2`` if any: one
    models module for both, one operations package per version.
    """
    if not fragment_paths(spec_dir):
        raise SystemExit(f"no OpenAPI fragments under {spec_dir}")
    prepared = prepare(merge_versions(spec_dir))
    files = {"models.py": generate_models(prepared), **generate_operations(prepared)}
    files["__init__.py"] = render("package_init.py.jinja")
    return _format(files)


def _format(files: dict[str, str]) -> dict[str, str]:
    """Run the pinned ruff formatter and import sorter over the files (in a scratch dir)."""
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        for name, text in files.items():
            target = base / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text, encoding="utf-8")
        ruff = [sys.executable, "-m", "ruff"]
        config = ["--config", str(ROOT / "pyproject.toml")]
        for command in (
            [*ruff, "check", "--select", "I,F401,RUF022", "--fix", "--quiet", *config, "."],
            [*ruff, "format", "--quiet", *config, "."],
        ):
            subprocess.run(command, cwd=base, check=True)
        return {name: (base / name).read_text(encoding="utf-8") for name in files}


def write(files: dict[str, str], out: Path) -> None:
    """Replace ``out`` with exactly ``files``."""
    if out.exists():
        shutil.rmtree(out)
    for name, text in files.items():
        target = out / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")


def diff(files: dict[str, str], out: Path) -> list[str]:
    """Unified diff lines between ``files`` and what is in ``out``."""
    current = {
        str(p.relative_to(out)): p.read_text(encoding="utf-8")
        for p in sorted(out.rglob("*.py"))
        if "__pycache__" not in p.parts
    }
    lines: list[str] = []
    for name in sorted(set(files) | set(current)):
        old = current.get(name, "").splitlines(keepends=True)
        new = files.get(name, "").splitlines(keepends=True)
        lines += difflib.unified_diff(old, new, f"committed/{name}", f"generated/{name}")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m codegen", description=__doc__)
    parser.add_argument("--spec", type=Path, default=SPEC, help="folder of OpenAPI fragments")
    parser.add_argument("--out", type=Path, default=OUT, help="generated package folder")
    parser.add_argument("--check", action="store_true", help="fail if --out is not current")
    args = parser.parse_args(argv)
    files = generate(args.spec)
    if args.check:
        lines = diff(files, args.out)
        if lines:
            sys.stdout.writelines(lines[:400])
            print(f"\n{args.out} differs from what {args.spec} generates: run `make codegen`.")
            return 1
        print(f"{args.out}: up to date ({len(files)} files)")
        return 0
    write(files, args.out)
    print(f"wrote {len(files)} files to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
