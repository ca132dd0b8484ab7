"""The reference pages of the docs site, written from the code at build time (mkdocs hook).

Nothing here repeats what the code says: the namespaces and their operations (method and route
from each operation's ``Endpoint``), the models, the errors and the public names come from the
package, the command line from ``aioudata._cli.build_parser()``. mkdocstrings renders the
docstrings; :class:`ReSTRoles` (a griffe extension) turns their reST roles into links.
``tests/test_docs.py`` checks the pages name every operation, model, error and option.
"""

from __future__ import annotations

import argparse
import importlib
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import griffe

import aioudata
from aioudata import models
from aioudata._endpoint import Endpoint

if TYPE_CHECKING:
    from mkdocs.config.defaults import MkDocsConfig
    from mkdocs.structure.files import Files

#: Where each API version's operations live, and the root their routes are below.
APIS = {
    1: ("aioudata._generated.operations", "/api/1"),
    2: ("aioudata._generated.v2.operations", "/api/2"),
}
SRC = Path(__file__).resolve().parent.parent / "src"
#: Public names that are no reference entry of their own.
NOT_ENTRIES = frozenset({"__version__", "models"})


@dataclass(frozen=True)
class Namespace:
    """One tag of one API version: ``client.datasets``, ``client.v2.topics``..."""

    api: int
    tag: str
    path: str  # of its class: aioudata._generated.operations.datasets.DatasetsOperations...
    endpoints: tuple[Endpoint[Any], ...]  # one per operation, by operation id

    @property
    def attribute(self) -> str:
        return f"client.{self.tag}" if self.api == 1 else f"client.v2.{self.tag}"

    @property
    def page(self) -> str:
        return f"reference/v{self.api}/{self.tag}.md"


def namespaces(api: int) -> list[Namespace]:
    """Every namespace of API ``api``, from the generated ``OPERATIONS`` table."""
    package, _ = APIS[api]
    table = importlib.import_module(package.rsplit(".", 1)[0] + ".namespaces").OPERATIONS
    found = []
    for tag, operation_ids in sorted(table.items()):
        module = importlib.import_module(f"{package}.{tag}")
        classes = [name for name in module.__all__ if name.endswith("Operations")]
        endpoints = {
            value.operation_id: value
            for value in vars(module).values()
            if isinstance(value, Endpoint)
        }
        path = f"{module.__name__}.{classes[0]}"
        found.append(
            Namespace(api, tag, path, tuple(endpoints[op] for op in sorted(operation_ids)))
        )
    return found


def namespace_page(namespace: Namespace) -> str:
    """A namespace: a table of its operations (method, route), then each one's documentation."""
    _, root = APIS[namespace.api]
    rows = [
        f"| `{endpoint.method}` | [`{endpoint.operation_id}`]"
        f"[{namespace.path}.{endpoint.operation_id}] | `{endpoint.path}` |"
        for endpoint in namespace.endpoints
    ]
    return "\n".join(
        [
            f"# `{namespace.attribute}`",
            "",
            f"The `{namespace.tag}` operations of the API v{namespace.api}, as methods of"
            f" `{namespace.attribute}`. Routes are below the API v{namespace.api} root"
            f" (`{root}`, e.g. `https://www.data.gouv.fr{root}`).",
            "",
            "| method | operation | route |",
            "| --- | --- | --- |",
            *rows,
            "",
            f"::: {namespace.path}",
            "    options:",
            "      show_root_heading: false",
            "",
        ]
    )


def api_index_page(api: int) -> str:
    """An API version's namespaces, with their number of operations."""
    _, root = APIS[api]
    lines = [
        f"# API v{api}",
        "",
        f"Every operation of the API v{api} (`{root}`), by namespace.",
        "",
        "| namespace | operations |",
        "| --- | --- |",
    ]
    for namespace in namespaces(api):
        lines.append(
            f"| [`{namespace.attribute}`]({namespace.tag}.md) | {len(namespace.endpoints)} |"
        )
    if api != 1:  # what client.v2 is (client.datasets... are the Client's own: on its page)
        lines += ["", f"::: aioudata._generated.v{api}.namespaces.NamespacesV{api}"]
    return "\n".join([*lines, ""])


def _entries(title: str, intro: str, paths: list[str], *options: str) -> str:
    block_options = ["    options:", *(f"      {option}" for option in options)] if options else []
    blocks = ["\n".join([f"::: {path}", *block_options]) for path in paths]
    return "\n\n".join([f"# {title}", intro, *blocks]) + "\n"


def model_names(partial: bool) -> list[str]:
    """The public models (``aioudata.models``): the partial twins, or every other one."""
    return sorted(name for name in models.__all__ if name.endswith("Partial") == partial)


def models_page(partial: bool) -> str:
    if partial:
        title = "Partial models"
        intro = (
            "What a call with an `X-Fields` mask returns: each model's partial twin, with the same"
            " fields, every one optional. In `aioudata.models`."
        )
    else:
        title = "Models"
        intro = (
            "Every model of the API v1 and v2 (msgspec Structs), and the known values of fields"
            " with a fixed set of them, in `aioudata.models` (partial twins:"
            " [Partial models](models-partial.md))."
        )
    paths = [f"aioudata.models.{name}" for name in model_names(partial)]
    return _entries(title, intro, paths, "members: false")  # fields: a table (ModelFields)


def error_names() -> list[str]:
    """Every public error, parents before children (depth first, by name)."""
    errors = {
        name: value
        for name in aioudata.__all__
        if isinstance(value := getattr(aioudata, name), type) and issubclass(value, BaseException)
    }

    def below(parent: type | None) -> Iterator[str]:
        for name, error in sorted(errors.items()):
            # The nearest public ancestor: a private base in between is not on the page.
            parents = [base for base in error.__mro__[1:] if base in errors.values()]
            if (parents[0] if parents else None) is parent:
                yield name
                yield from below(error)

    return list(below(None))


@cache
def _defining_modules() -> dict[str, str]:
    """Each public name and the module that defines it (griffe: type aliases too)."""
    package = griffe.load("aioudata", search_paths=[SRC], resolve_aliases=False)
    return {
        name: (member.target_path if member.is_alias else member.path).rsplit(".", 1)[0]
        for name, member in package.members.items()
        if name in aioudata.__all__
    }


def library_names(mirror: bool) -> list[str]:
    """The public names that are no error: the mirror's and checker's, or the client's."""
    errors = set(error_names())
    names = [name for name in aioudata.__all__ if name not in errors and name not in NOT_ENTRIES]
    modules = _defining_modules()
    of_mirror = [n for n in names if modules[n].startswith(("aioudata._mirror", "aioudata._crawl"))]
    if mirror:  # the mirror's, then the checker's: each run_* function, its config, the rest
        return sorted(
            of_mirror,
            key=lambda n: (modules[n].startswith("aioudata._crawl"), not n.startswith("run_"), n),
        )
    rest = [name for name in names if name not in of_mirror]
    return sorted(rest, key=lambda name: name != "Client")  # the client first


def library_page(mirror: bool) -> str:
    names = [f"aioudata.{name}" for name in library_names(mirror)]
    if mirror:
        return _entries(
            "Mirror and resource checks",
            "`run_mirror` copies a catalog into SQLite, `run_checks` checks its resources' URLs;"
            " what they take and return. The database: [Mirror database](../schema.md).",
            names,
        )
    client, *others = names
    page = _entries(
        "Client",
        "The client, its options, and what its calls return or take. Its namespaces:"
        " [API v1](v1/index.md), [API v2](v2/index.md).",
        [client],
        "inherited_members: true",  # the namespaces: client.datasets, client.v2...
    )
    return page + "\n".join(f"\n::: {name}" for name in others) + "\n"


def errors_page() -> str:
    return _entries(
        "Errors",
        "Every error aioudata raises, parents first: catch `UdataError` for all of them.",
        [f"aioudata.{name}" for name in error_names()],
    )


def reference_pages() -> dict[str, str]:
    """Every generated page, by its path below docs/."""
    pages = {
        "reference/client.md": library_page(mirror=False),
        "reference/mirror.md": library_page(mirror=True),
        "reference/errors.md": errors_page(),
        "reference/models.md": models_page(partial=False),
        "reference/models-partial.md": models_page(partial=True),
        "cli.md": cli_page(_build_parser()),
    }
    for api in APIS:
        pages[f"reference/v{api}/index.md"] = api_index_page(api)
        pages.update({namespace.page: namespace_page(namespace) for namespace in namespaces(api)})
    return pages


def _build_parser() -> argparse.ArgumentParser:
    from aioudata._cli import build_parser

    return build_parser()


# The command line ---------------------------------------------------------------------------


def _subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def _option_rows(parser: argparse.ArgumentParser) -> list[str]:
    formatter = parser._get_formatter()
    rows = []
    for action in parser._actions:
        if action.help == argparse.SUPPRESS or isinstance(action, argparse._SubParsersAction):
            continue
        names = (
            ", ".join(f"`{name}`" for name in action.option_strings)
            or f"`{action.metavar or action.dest}`"
        )
        value = ""
        if action.nargs != 0 and action.option_strings:
            value = f"`{formatter._format_args(action, action.dest.upper())}`"
        help_text = formatter._expand_help(action) if action.help else ""
        rows.append(f"| {names} | {value} | {_cell(help_text)} |")
    return rows


def command_section(path: str, parser: argparse.ArgumentParser, level: int) -> list[str]:
    """One command's heading, description, usage and options, then its subcommands'."""
    lines = [f"{'#' * level} `{path}`", ""]
    if parser.description:
        lines += [_cell(parser.description), ""]
    lines += ["```text", parser.format_usage().strip(), "```", ""]
    rows = _option_rows(parser)
    if rows:
        lines += ["| argument | value | what |", "| --- | --- | --- |", *rows, ""]
    for name, sub in _subcommands(parser).items():
        lines += command_section(f"{path} {name}", sub, min(level + 1, 4))
    return lines


def cli_page(parser: argparse.ArgumentParser) -> str:
    """Every command of ``parser`` and its options, from the parser itself."""
    intro = (
        "The `aioudata` command (also `python -m aioudata`), written from its argparse parser."
        " How to use it: the guide's [Mirror](index.md#mirror) section."
    )
    columns = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = "80"  # usage lines wrapped the same on every machine
    try:
        sections = command_section("aioudata", parser, 2)
    finally:
        if columns is None:
            del os.environ["COLUMNS"]
        else:
            os.environ["COLUMNS"] = columns
    return "\n".join(["# Command line", "", intro, "", *sections])


# Docstrings ---------------------------------------------------------------------------------

_ROLE = re.compile(r":(?:class|meth|attr|func|mod|data|exc|obj):`~?\.?([^`]+)`")
_LITERAL_BLOCK = re.compile(r"(\S)::$", re.MULTILINE)


def _public_targets() -> dict[str, str]:
    targets = {name: f"aioudata.models.{name}" for name in models.__all__}
    targets.update(
        {name: f"aioudata.{name}" for name in aioudata.__all__ if name not in NOT_ENTRIES}
    )
    return targets


def rest_to_markdown(text: str, targets: dict[str, str]) -> str:
    """reST roles as links to the documented public names (else code), ``x::`` as ``x:``."""

    def role(match: re.Match[str]) -> str:
        name = match.group(1).removeprefix("aioudata.").removeprefix("models.")
        target = targets.get(name)
        return f"[`{name}`][{target}]" if target else f"`{match.group(1)}`"

    return _LITERAL_BLOCK.sub(r"\1:", _ROLE.sub(role, text))


class ReSTRoles(griffe.Extension):
    """griffe extension: docstrings' reST roles (``:class:`X```) as Markdown links or code."""

    def __init__(self) -> None:
        self.targets = _public_targets()

    def on_instance(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        if obj.docstring is not None:
            obj.docstring.value = rest_to_markdown(obj.docstring.value, self.targets)


_MODELS_MODULE = "aioudata._generated.models"


def fields_section(cls: griffe.Class) -> str:
    """A model's fields (an enum's values) as a Google-style ``Attributes`` section."""
    lines = ["Attributes:"]
    for name, member in cls.members.items():
        if name.startswith("_") or not member.is_attribute:
            continue
        if member.docstring is not None:
            description = " ".join(member.docstring.value.split())
        else:
            description = f"`{member.value}`" if cls.is_class and _is_enum(cls) else ""
        lines.append(f"    {name}: {description}".rstrip())
    return "\n".join(lines) if len(lines) > 1 else ""


def _is_enum(cls: griffe.Class) -> bool:
    return any(str(base).endswith("Enum") for base in cls.bases)


class ModelFields(griffe.Extension):
    """griffe extension: each model's fields as a table of its own docstring.

    The models page then shows each model as one table (name, type, description) instead
    of a heading per field: thousands of them otherwise.
    """

    def on_class_members(self, *, cls: griffe.Class, **kwargs: Any) -> None:
        if cls.module.path != _MODELS_MODULE or not (section := fields_section(cls)):
            return
        if cls.docstring is None:
            cls.docstring = griffe.Docstring(section, parent=cls)
        else:
            cls.docstring.value = f"{cls.docstring.value}\n\n{section}"


# mkdocs -------------------------------------------------------------------------------------


def on_config(config: MkDocsConfig) -> MkDocsConfig:
    """Expand the nav's ``reference/vN/`` entries into the index and each namespace's page."""
    for index, item in enumerate(config.nav or []):
        ((title, target),) = item.items()
        if isinstance(target, str) and (match := re.fullmatch(r"reference/v(\d)/", target)):
            api = int(match.group(1))
            pages = [{"Namespaces": f"reference/v{api}/index.md"}]
            pages += [{namespace.attribute: namespace.page} for namespace in namespaces(api)]
            config.nav[index] = {title: pages}
    return config


def on_files(files: Files, config: MkDocsConfig) -> Files:
    """Add the generated pages."""
    from mkdocs.structure.files import File

    for path, content in reference_pages().items():
        files.append(File.generated(config, path, content=content))
    return files
