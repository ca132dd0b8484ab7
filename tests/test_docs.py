"""The docs site's generated pages (docs/hooks.py) name everything the package has.

Fast: the page generators only, no site build (CI's ``make docs`` builds it, strict). Each
check starts from the package itself (the client's namespaces, ``aioudata.models``, the
exceptions, the argparse parser), so an operation, model, error or option the pages lose fails.
"""

from __future__ import annotations

import argparse
import importlib.util
import inspect
import sys
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import Any

import griffe
import pytest
import yaml

import aioudata
from aioudata import models
from aioudata._cli import build_parser
from aioudata._endpoint import Endpoint
from aioudata._generated.namespaces import Namespaces

ROOT = Path(__file__).resolve().parent.parent


def _load_hooks() -> ModuleType:
    spec = importlib.util.spec_from_file_location("aioudata_docs_hooks", ROOT / "docs" / "hooks.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


hooks = _load_hooks()


@pytest.fixture(scope="module")
def pages() -> dict[str, str]:
    generated: dict[str, str] = hooks.reference_pages()
    return generated


def _operations() -> list[tuple[int, str, type, str]]:
    """(api, tag, operations class, operation) for every method of every client namespace."""
    found = []
    top = Namespaces(None)  # type: ignore[arg-type]  # no request is made
    for api, holder in ((1, top), (2, top.v2)):
        for tag in (name for name in dir(type(holder)) if not name.startswith("_")):
            if tag == "v2":
                continue
            operations = type(getattr(holder, tag))
            for name, _ in inspect.getmembers(operations, inspect.isfunction):
                if not name.startswith("_"):
                    found.append((api, tag, operations, name))
    return found


def test_every_operation_has_its_method_and_route_on_its_namespace_page(
    pages: dict[str, str],
) -> None:
    operations = _operations()
    assert len(operations) == 247 + 36
    for api, tag, cls, name in operations:
        page = pages[f"reference/v{api}/{tag}.md"]
        module = sys.modules[cls.__module__]
        endpoint = next(
            value
            for value in vars(module).values()
            if isinstance(value, Endpoint) and value.operation_id == name
        )
        path = f"{cls.__module__}.{cls.__name__}"
        row = f"| `{endpoint.method}` | [`{name}`][{path}.{name}] | `{endpoint.path}` |"
        assert row in page, (tag, name)
        assert f"::: {path}\n" in page
        index = pages[f"reference/v{api}/index.md"]
        assert f"]({tag}.md) |" in index


def test_every_model_is_documented_with_all_its_fields(pages: dict[str, str]) -> None:
    documented = pages["reference/models.md"] + pages["reference/models-partial.md"]
    assert len(models.__all__) > 400
    for name in models.__all__:
        assert f"::: aioudata.models.{name}\n" in documented, name
    loaded = griffe.load("aioudata._generated.models", search_paths=[str(ROOT / "src")])
    for name in ("Dataset", "DatasetPartial", "DatasetV2", "Resource"):
        section = hooks.fields_section(loaded[name])
        fields = getattr(models, name).__struct_fields__
        assert [line.split(":")[0].strip() for line in section.splitlines()[1:]] == list(fields)
    enum = hooks.fields_section(loaded["DatasetFrequency"])
    assert "    CONTINUOUS: `'continuous'`" in enum.splitlines()


def test_every_error_is_on_the_errors_page_parents_first(pages: dict[str, str]) -> None:
    errors = [
        value
        for value in vars(aioudata).values()
        if isinstance(value, type) and issubclass(value, Exception)
    ]
    assert aioudata.UdataError in errors and aioudata.SearchCapError in errors
    page = pages["reference/errors.md"]
    for error in errors:
        assert f"::: aioudata.{error.__name__}\n" in page, error
        for parent in error.__mro__[1:]:
            if parent in errors:
                assert page.index(f"aioudata.{parent.__name__}\n") < page.index(
                    f"aioudata.{error.__name__}\n"
                )


def test_every_public_name_has_an_entry(pages: dict[str, str]) -> None:
    everything = "".join(pages.values())
    for name in set(aioudata.__all__) - {"__version__", "models"}:
        assert f"::: aioudata.{name}\n" in everything, name
    assert pages["reference/client.md"].index("::: aioudata.Client\n") < pages[
        "reference/client.md"
    ].index("::: aioudata.RetryPolicy")
    for name in ("run_mirror", "MirrorConfig", "run_checks", "CheckConfig", "ProgressCallback"):
        assert f"::: aioudata.{name}\n" in pages["reference/mirror.md"], name


def _commands(parser: argparse.ArgumentParser, path: str) -> list[tuple[str, Any]]:
    found = [(path, parser)]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                found += _commands(sub, f"{path} {name}")
    return found


def test_the_cli_page_has_every_command_and_option(pages: dict[str, str]) -> None:
    page = pages["cli.md"]
    commands = _commands(build_parser(), "aioudata")
    assert {path for path, _ in commands} >= {
        "aioudata mirror",
        "aioudata get",
        "aioudata ls",
        "aioudata resources check",
    }
    for path, parser in commands:
        section = page.split(f"`{path}`\n", 1)[1]
        for action in parser._actions:
            for option in action.option_strings:
                assert f"`{option}`" in section, (path, option)
    assert "--sort" in page and "(default 4)" in page  # help text, %(default)s expanded


def test_every_generated_page_is_in_the_nav(pages: dict[str, str]) -> None:
    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text())
    expanded = hooks.on_config(SimpleNamespace(nav=config["nav"]))

    def paths(item: Any) -> list[str]:
        if isinstance(item, str):
            return [item]
        if isinstance(item, dict):
            return [path for value in item.values() for path in paths(value)]
        return [path for value in item for path in paths(value)]

    in_nav = paths(expanded.nav)
    assert set(pages) <= set(in_nav)
    assert {"index.md", "schema.md"} <= set(in_nav)
    assert "client.v2.topics" in str(expanded.nav)


def test_the_guide_is_the_readme_included() -> None:
    assert (ROOT / "docs" / "index.md").read_text().splitlines()[-1] == '--8<-- "README.md"'


def test_rest_roles_become_links_to_documented_names_or_code() -> None:
    targets = {"Client": "aioudata.Client", "DatasetFrequency": "aioudata.models.DatasetFrequency"}
    text = (
        "See :class:`Client`, :class:`~aioudata.Client`, :meth:`close` and"
        " :class:`DatasetFrequency`; :func:`aioudata._endpoint.api_root` for example::"
    )
    assert hooks.rest_to_markdown(text, targets) == (
        "See [`Client`][aioudata.Client], [`Client`][aioudata.Client], `close` and"
        " [`DatasetFrequency`][aioudata.models.DatasetFrequency];"
        " `aioudata._endpoint.api_root` for example:"
    )


def test_the_build_fetches_nothing_and_fails_on_warnings() -> None:
    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text())
    assert config["strict"] is True
    assert config["theme"]["font"] is False  # no web fonts
    plugins = {
        name
        for plugin in config["plugins"]
        for name in ([plugin] if isinstance(plugin, str) else plugin)
    }
    assert plugins == {
        "search",
        "autorefs",
        "mkdocstrings",
    }  # none that downloads (social, privacy)
    python = config["plugins"][2]["mkdocstrings"]["handlers"]["python"]
    assert "inventories" not in python and "import" not in python  # no remote inventory
    assert (
        "NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict" in (ROOT / "Makefile").read_text()
    )
