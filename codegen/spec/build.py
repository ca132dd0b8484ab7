"""``make spec``: vendor udata's API v1 and v2 as OpenAPI 3.1 fragments under openapi/.

    python3 codegen/spec/build.py [--venv DIR] [--swagger FILE [--swagger-v2 FILE]]
                                  [--save-swagger FILE] [--save-swagger-v2 FILE]
                                  [--raw-out FILE] [--raw-out-v2 FILE] [--probe]

1. Get the Swagger 2.0 documents a real udata serves at /api/1/swagger.json and
   /api/2/swagger.json: install the pinned server (tests/udata_server/requirements.txt) in a
   throwaway venv and run dump_swagger.py in it; ``--venv DIR`` keeps (or reuses) that venv,
   ``--swagger FILE`` (and ``--swagger-v2 FILE``) skips it for saved dumps.
2. API v1: convert it to OpenAPI 3.1 (convert.py), apply openapi/overlay.json (overlay.py),
   then make the fields openapi/required.json lists required (required.py).
3. API v2: convert it, replace the schemas it shares with v1 by v1's final ones
   (openapi/v2/shared.json, share.py), then its own overlay and required table
   (openapi/v2/overlay.json, openapi/v2/required.json).
4. Write one self-contained fragment per operation, openapi/<tag>/<operationId>.json and
   openapi/v2/<tag>/<operationId>.json (split.py), each version's manifest.json, and the
   generated sections of openapi/SOURCE.md and openapi/v2/SOURCE.md.
5. ``--probe``: decode what the real app sends against both results (probe.py); must be clean.

Host side: Python 3.11 standard library only. Output is deterministic; stale fragments go.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:  # run as a script: make the codegen package importable
    sys.path.insert(0, str(REPO))

from codegen.spec import convert, overlay, required, share, split  # noqa: E402
from codegen.spec_loader import VERSION_FOLDER  # noqa: E402

JSON = dict[str, Any]
REQUIREMENTS = REPO / "tests" / "udata_server" / "requirements.txt"
OUT = REPO / "openapi"
OVERLAY = OUT / "overlay.json"
REQUIRED = OUT / "required.json"
SOURCE_MD = OUT / "SOURCE.md"
OUT_V2 = OUT / "v2"
OVERLAY_V2 = OUT_V2 / "overlay.json"
REQUIRED_V2 = OUT_V2 / "required.json"
SHARED_V2 = OUT_V2 / "shared.json"
SOURCE_MD_V2 = OUT_V2 / "SOURCE.md"
DUMP_SCRIPT = Path(__file__).resolve().parent / "dump_swagger.py"
PROBE_SCRIPT = Path(__file__).resolve().parent / "probe.py"
DUMP_KEY = convert.DUMP_KEY
PACKAGE = "udata"

# Enums udata builds in an unstable order (see convert.sort_enums), as JSONPaths in the
# Swagger document.
UNORDERED_ENUMS = [
    "$.definitions.Task.properties.status",
    "$.definitions['PeriodicTask (read)', 'PeriodicTask (write)'].properties.task",
]


# --- getting the Swagger document ----------------------------------------------------------


def pinned_version(requirements: Path) -> str:
    """The ``udata==X`` pin of the server requirements."""
    for line in requirements.read_text(encoding="utf-8").splitlines():
        match = re.fullmatch(r"\s*udata\s*==\s*([^\s#;]+).*", line, flags=re.IGNORECASE)
        if match:
            return match.group(1)
    raise SystemExit(f"{requirements}: no udata==<version> pin")


def _run(command: list[str], **kwargs: Any) -> None:
    print("+", " ".join(command), file=sys.stderr)
    subprocess.run(command, check=True, **kwargs)


def ensure_venv(venv: Path) -> Path:
    """The venv's python, creating the venv and installing the pinned server if needed."""
    python = venv / "bin" / "python"
    if python.exists():
        return python  # reused as is: --venv is for fast iteration
    _run([sys.executable, "-m", "venv", str(venv)])
    pip = [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    _run([*pip, "-r", str(REQUIREMENTS)])
    return python


def dump_swagger(python: Path, workdir: Path) -> tuple[JSON, JSON]:
    """Run dump_swagger.py in the udata venv: the API v1 and v2 documents. PYTHONHASHSEED pins
    what set order remains."""
    targets = [workdir / "swagger.json", workdir / "swagger-v2.json"]
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    env.pop("UDATA_SETTINGS", None)  # dump_swagger writes its own
    _run([str(python), str(DUMP_SCRIPT), *map(str, targets)], cwd=workdir, env=env)
    v1, v2 = (json.loads(target.read_text(encoding="utf-8")) for target in targets)
    return v1, v2


def run_probe(python: Path, workdir: Path) -> None:
    """probe.py against the written fragments of both versions: any disagreement left fails."""
    env = {**os.environ}
    env.pop("UDATA_SETTINGS", None)
    _run([str(python), str(PROBE_SCRIPT), str(OUT)], cwd=workdir, env=env)
    _run([str(python), str(PROBE_SCRIPT), "--api", "2", str(OUT_V2)], cwd=workdir, env=env)


def check_source(swagger: JSON, pinned: str) -> None:
    """The dump must come from the pinned udata, and say which operations are secured."""
    record = swagger.get(DUMP_KEY)
    if record is None:
        print(
            f"warning: no {DUMP_KEY} record (a plain served swagger?): no operation will carry "
            "`security`",
            file=sys.stderr,
        )
        return
    if record.get("udata") != pinned:
        raise SystemExit(f"the dump comes from udata {record.get('udata')}, the pin is {pinned}")


# --- writing -------------------------------------------------------------------------------


def dumps(value: Any) -> str:
    """The one JSON style of openapi/: 2-space indent, key order as built, final newline."""
    return json.dumps(value, indent=2, ensure_ascii=False) + "\n"


def write_if_changed(path: Path, text: str) -> bool:
    if path.exists() and path.read_text(encoding="utf-8") == text:
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return True


def write_fragments(out: Path, fragments: dict[str, JSON]) -> tuple[int, int]:
    """Write every fragment, delete fragments of operations that are gone; (written, removed)."""
    written = sum(write_if_changed(out / name, dumps(doc)) for name, doc in fragments.items())
    removed = 0
    for stale in sorted(out.glob("*/*.json")):
        if VERSION_FOLDER.fullmatch(stale.parent.name):
            continue  # openapi/v2/ is the other API's: written on its own
        if stale.relative_to(out).as_posix() not in fragments:
            stale.unlink()
            removed += 1
    for folder in sorted(p for p in out.iterdir() if p.is_dir()):
        if not any(folder.iterdir()):
            folder.rmdir()
    return written, removed


def counts_section(manifest: JSON) -> str:
    lines = [
        f"- udata {manifest['source']['version']}: **{manifest['paths']} paths, "
        f"{manifest['operations']} operations**, {len(manifest['operations_by_tag'])} tags.",
        "",
        "| tag | operations |",
        "| --- | ---: |",
    ]
    lines += [f"| {tag} | {n} |" for tag, n in manifest["operations_by_tag"].items()]
    return "\n".join(lines)


def overlay_section(document: JSON) -> str:
    lines = ["| # | target | why |", "| ---: | --- | --- |"]
    for number, action in enumerate(document["actions"], 1):
        verb = "remove" if action.get("remove") else "update"
        why = action["description"].replace("|", "\\|").replace("\n", " ")
        lines.append(f"| {number} | {verb} `{action['target']}` | {why} |")
    return "\n".join(lines)


def fill_section(text: str, name: str, body: str, where: Path = SOURCE_MD) -> str:
    """Replace what lies between the BEGIN/END markers of section ``name``."""
    begin, end = f"<!-- BEGIN GENERATED {name} -->", f"<!-- END GENERATED {name} -->"
    pattern = re.compile(re.escape(begin) + r".*?" + re.escape(end), flags=re.DOTALL)
    if not pattern.search(text):
        raise SystemExit(f"{where}: missing the {name} markers")
    return pattern.sub(lambda _: f"{begin}\n{body}\n{end}", text)


def required_section(table: JSON, promotions: list[required.Promotion]) -> str:
    lines = [
        f"**{len(promotions)} fields** made required in "
        f"{len({p.schema for p in promotions})} schemas.",
        "",
        "| schemas | field | sent since | never null because | where (udata) |",
        "| --- | --- | --- | --- | --- |",
    ]
    for entry in table["entries"]:
        schemas = ", ".join(entry["schemas"])
        source = entry["source"].replace("|", "\\|")
        for name, evidence in entry["fields"].items():
            why = evidence["why"].replace("|", "\\|")
            lines.append(f"| {schemas} | `{name}` | {evidence['since']} | {why} | {source} |")
            source = ""
    kept_optional = table.get("kept_optional", [])
    if kept_optional:
        lines += ["", "Kept optional although udata 17.18.0 always sends them:", ""]
    for kept in kept_optional:
        names = ", ".join(f"`{name}`" for name in kept["fields"])
        lines.append(f"- {kept['schema']} {names}: {kept['why']}")
    return "\n".join(lines)


def shared_section(decisions: list[share.Decision]) -> str:
    shared = [d for d in decisions if d.shared]
    lines = [
        f"**{len(shared)} schemas** shared with the API v1 (its definitions, fixes included), "
        f"**{len(decisions) - len(shared)}** distinct.",
        "",
        "| schemas | shared | why | where (udata) |",
        "| --- | --- | --- | --- |",
    ]
    groups: dict[tuple[bool, str, str], list[str]] = {}
    for decision in decisions:
        groups.setdefault((decision.shared, decision.why, decision.source), []).append(
            decision.schema
        )
    for (is_shared, why, source), names in groups.items():
        cells = [", ".join(names), "yes" if is_shared else "no", why, source]
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(lines)


def update_source_md(
    manifest: JSON,
    overlay_document: JSON,
    table: JSON,
    promotions: list[required.Promotion],
    where: Path = SOURCE_MD,
    decisions: list[share.Decision] | None = None,
) -> None:
    text = where.read_text(encoding="utf-8")
    text = fill_section(text, "counts", counts_section(manifest), where)
    text = fill_section(text, "overlay", overlay_section(overlay_document), where)
    if decisions is not None:
        text = fill_section(text, "shared", shared_section(decisions), where)
    text = fill_section(text, "required", required_section(table, promotions), where)
    write_if_changed(where, text)


# --- main ----------------------------------------------------------------------------------


def build(
    swagger: JSON,
    pinned: str,
    raw_out: Path | None = None,
    swagger_v2: JSON | None = None,
    raw_out_v2: Path | None = None,
) -> None:
    """Vendor the API v1 (and the v2, when its document is given) into openapi/."""
    document = convert.convert_document(convert.sort_enums(swagger, UNORDERED_ENUMS))
    if raw_out:
        raw_out.write_text(dumps(document), encoding="utf-8")  # for probe.py: before the overlay
    overlay_document = json.loads(OVERLAY.read_text(encoding="utf-8"))
    document, applied = overlay.apply(document, overlay_document)
    table = json.loads(REQUIRED.read_text(encoding="utf-8"))
    document, promotions = required.apply(document, table)
    fragments = split.split(document)
    manifest = split.manifest(document, PACKAGE, pinned)
    if manifest["operations"] != len(fragments):
        raise SystemExit(f"{len(fragments)} fragments for {manifest['operations']} operations")
    written, removed = write_fragments(OUT, fragments)
    write_if_changed(OUT / "manifest.json", dumps(manifest))
    update_source_md(manifest, overlay_document, table, promotions)
    print(
        f"udata {pinned} API v1: {manifest['paths']} paths, {manifest['operations']} operations, "
        f"{len(applied)} overlay actions ({sum(a.matched for a in applied)} nodes), "
        f"{len(promotions)} fields made required; "
        f"{written} fragments written, {removed} stale removed",
        file=sys.stderr,
    )
    if swagger_v2 is None:
        print("API v2 not rebuilt (no v2 document given)", file=sys.stderr)
        return
    build_v2(swagger_v2, document, pinned, raw_out_v2)


def build_v2(swagger: JSON, v1: JSON, pinned: str, raw_out: Path | None = None) -> None:
    """The API v2 into openapi/v2/: ``v1`` is the final v1 document (overlay and required)."""
    document = convert.convert_document(swagger)
    if raw_out:
        raw_out.write_text(dumps(document), encoding="utf-8")
    table_shared = json.loads(SHARED_V2.read_text(encoding="utf-8"))
    document, decisions = share.apply(document, v1, table_shared)
    overlay_document = json.loads(OVERLAY_V2.read_text(encoding="utf-8"))
    document, applied = overlay.apply(document, overlay_document)
    table = json.loads(REQUIRED_V2.read_text(encoding="utf-8"))
    document, promotions = required.apply(document, table)
    share.check_kept(document, v1, decisions)
    fragments = split.split(document)
    manifest = split.manifest(document, PACKAGE, pinned, "/api/2/swagger.json")
    if manifest["operations"] != len(fragments):
        raise SystemExit(f"{len(fragments)} fragments for {manifest['operations']} operations")
    written, removed = write_fragments(OUT_V2, fragments)
    write_if_changed(OUT_V2 / "manifest.json", dumps(manifest))
    update_source_md(
        manifest, overlay_document, table, promotions, SOURCE_MD_V2, decisions=decisions
    )
    print(
        f"udata {pinned} API v2: {manifest['paths']} paths, {manifest['operations']} operations, "
        f"{sum(d.shared for d in decisions)} schemas shared with v1, "
        f"{len(applied)} overlay actions ({sum(a.matched for a in applied)} nodes), "
        f"{len(promotions)} fields made required; "
        f"{written} fragments written, {removed} stale removed",
        file=sys.stderr,
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--venv", help="create (or reuse) the udata venv here instead of a temp one"
    )
    parser.add_argument("--swagger", help="use this saved v1 dump instead of running udata")
    parser.add_argument("--swagger-v2", help="with --swagger: the saved v2 dump (else v2 stays)")
    parser.add_argument("--save-swagger", help="also write the Swagger 2.0 v1 dump here")
    parser.add_argument("--save-swagger-v2", help="also write the Swagger 2.0 v2 dump here")
    parser.add_argument("--raw-out", help="also write the converted document before the overlay")
    parser.add_argument("--raw-out-v2", help="the same for the API v2 (before shared, overlay)")
    parser.add_argument(
        "--probe", action="store_true", help="then check openapi/ against the real app (probe.py)"
    )
    args = parser.parse_args(argv)
    if args.swagger_v2 and not args.swagger:
        parser.error("--swagger-v2 goes with --swagger")
    if args.probe and args.swagger and not args.venv:
        parser.error("--probe runs udata: drop --swagger or give --venv")
    pinned = pinned_version(REQUIREMENTS)
    with tempfile.TemporaryDirectory(prefix="udata-spec-") as tmp:
        python = None
        if not args.swagger or args.probe:
            python = ensure_venv(Path(args.venv).resolve() if args.venv else Path(tmp) / "venv")
        swagger_v2: JSON | None = None
        if args.swagger:
            swagger = json.loads(Path(args.swagger).read_text(encoding="utf-8"))
            if args.swagger_v2:
                swagger_v2 = json.loads(Path(args.swagger_v2).read_text(encoding="utf-8"))
        else:
            assert python is not None
            swagger, swagger_v2 = dump_swagger(python, Path(tmp))
        check_source(swagger, pinned)
        if swagger_v2 is not None:
            check_source(swagger_v2, pinned)
        for document, target in ((swagger, args.save_swagger), (swagger_v2, args.save_swagger_v2)):
            if target and document is not None:
                Path(target).write_text(dumps(document), encoding="utf-8")
        build(
            swagger,
            pinned,
            Path(args.raw_out) if args.raw_out else None,
            swagger_v2,
            Path(args.raw_out_v2) if args.raw_out_v2 else None,
        )
        if args.probe and python is not None:
            run_probe(python, Path(tmp))


if __name__ == "__main__":
    main()
