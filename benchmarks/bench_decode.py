"""Decode: a 100-dataset page into aioudata's msgspec models vs json.loads, orjson, pydantic v2.

The page is built from datasets recorded from the real udata server (tests/fixtures/responses/),
each with its own id. The pydantic v2 models are generated now by datamodel-code-generator
from the same prepared openapi/ fragments as aioudata's, so both decode the same schema; the
row names the versions of both libraries (pydantic is pinned in pyproject.toml: its releases
change its speed).
Each side is timed in turn within a repeat, the order alternating between repeats.
"""

from __future__ import annotations

import copy
import gc
import importlib.util
import json
import sys
import tempfile
from collections.abc import Callable
from importlib.metadata import version as _version
from pathlib import Path
from typing import Any

import msgspec

import aioudata
from aioudata.models import DatasetPage

from ._common import RECORDED, ROOT, Settings, abba, row, timed

GROUP = "decode (issue 7)"
TARGETS = {"json.loads": 2.5, "orjson.loads": 1.0, "pydantic v2 models": 5.0}


def page_of(size: int) -> bytes:
    """A page of ``size`` datasets made from the recorded ones, each with its own id."""
    recorded = json.loads((RECORDED / "datasets_page.json").read_text(encoding="utf-8"))["body"]
    items = []
    for i in range(size):
        item = copy.deepcopy(recorded["data"][i % len(recorded["data"])])
        item["id"] = f"{i:024x}"
        items.append(item)
    body = {**recorded, "data": items, "page_size": size, "total": size * 10}
    return json.dumps(body).encode()


def pydantic_page() -> Any:
    """pydantic v2 models of the same prepared schema, generated now into a temp module."""
    sys.path.insert(0, str(ROOT))
    from datamodel_code_generator.__main__ import main as dmcg

    from codegen.prepare import prepare
    from codegen.spec_loader import merge_fragments

    prepared = prepare(merge_fragments(ROOT / "openapi"))
    with tempfile.TemporaryDirectory() as tmp:
        spec = Path(tmp) / "spec.json"
        out = Path(tmp) / "pyd_models.py"
        spec.write_text(json.dumps(prepared.document))
        code = dmcg(
            [
                "--input", str(spec), "--input-file-type", "openapi", "--output", str(out),
                "--output-model-type", "pydantic_v2.BaseModel", "--target-python-version",
                "3.11", "--disable-timestamp", "--formatters", "builtin",
            ]
        )  # fmt: skip
        if code not in (0, None):
            raise RuntimeError("datamodel-codegen failed for the pydantic baseline")
        spec_obj = importlib.util.spec_from_file_location("pyd_models", out)
        assert spec_obj is not None and spec_obj.loader is not None
        module = importlib.util.module_from_spec(spec_obj)
        sys.modules["pyd_models"] = module
        spec_obj.loader.exec_module(module)
    page = module.DatasetPage
    page.model_rebuild()
    return page


def run(settings: Settings) -> list[dict[str, Any]]:
    # Many short pairs: a burst of load from another process spoils few of them.
    repeat, number = settings.pick((80, 5), (2, 3))
    body = page_of(100)
    size_kb = len(body) / 1024

    def ours() -> object:
        return aioudata.decode(body, DatasetPage)

    baselines: dict[str, Callable[[], object]] = {"json.loads": lambda: json.loads(body)}
    import orjson

    baselines["orjson.loads"] = lambda: orjson.loads(body)
    try:
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = pydantic_page()
        model.model_validate_json(body)
        baselines["pydantic v2 models"] = lambda: model.model_validate_json(body)
    except Exception as error:  # report, do not hide, a baseline that fails
        print(f"pydantic baseline unavailable: {error}", file=sys.stderr)
    for fn in (ours, *baselines.values()):
        fn()  # warm up: msgspec compiles its decoder, pydantic its validator
    # The code generation above leaves millions of objects that every full collection would
    # scan during the timings: set them aside (the collector stays on for both sides).
    gc.collect()
    gc.freeze()
    rows = []
    versions = f"pydantic {_version('pydantic')}, msgspec {msgspec.__version__}"
    notes = {"pydantic v2 models": versions}
    for name, theirs_fn in baselines.items():
        mine: list[float] = []
        theirs: list[float] = []
        for ours_first in abba(repeat):
            if ours_first:
                mine += timed(ours, 1, number)
                theirs += timed(theirs_fn, 1, number)
            else:
                theirs += timed(theirs_fn, 1, number)
                mine += timed(ours, 1, number)
        rows.append(
            row(
                f"decode a 100-dataset page ({size_kb:.0f} KB) vs {name}",
                ours=mine,
                theirs=theirs,
                baseline=name,
                unit="s",
                direction="speedup",
                target=TARGETS[name],
                group=GROUP,
                note=notes.get(name, ""),
                ratios=[b / a for a, b in zip(mine, theirs, strict=True)],
            )
        )
    return rows
