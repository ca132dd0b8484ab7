# mypy: disable-error-code="import-not-found"
# (udata and flask-restx exist only in the udata venv this script runs in.)
"""Dump the Swagger 2.0 documents a real udata app serves at /api/1/ and /api/2/swagger.json.

Runs INSIDE a venv that has udata installed (see build.py), not in the project's environment:
``python dump_swagger.py OUT.json [OUT_V2.json]`` (the API v1 document, and the API v2 one when a
second file is named). No MongoDB, broker or network is needed: mongomock stands in for the
database and the documents are fetched with Flask's test client.

Adds one vendor key to each served document, ``x-aioudata-dump``:
- ``udata``: the udata version that produced it (build.py checks it against the pin);
- ``secured_operations``: the operationIds guarded by ``@api.secure``. udata means to publish
  them (``UDataApi._apply_secure`` calls ``self._build_doc(func, {"security": "apikey"})``) but
  drops the result, so the served document has no ``security`` at all. We record the guarded
  view functions while udata registers them and map them to operationIds afterwards.
Everything else is byte-for-byte what the server sends (re-serialised with the same order).
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

SERVER_NAME = "www.data.gouv.fr"
SETTINGS = f"""
import mongomock
MONGODB_SETTINGS = {{"host": "mongodb://localhost:27017/udata",
                    "mongo_client_class": mongomock.MongoClient}}
SERVER_NAME = {SERVER_NAME!r}
CACHE_TYPE = "NullCache"
SECRET_KEY = "spec-dump"
API_TOKEN_SECRET = "spec-dump-token-secret"
SECURITY_PASSWORD_SALT = "spec-dump-salt"
"""


def _record_secured() -> set[int]:
    """Wrap ``UDataApi._apply_secure`` so that every guarded view function is remembered."""
    from udata.api import UDataApi

    guarded: set[int] = set()
    original = UDataApi._apply_secure

    def recording(self: Any, func: Any, permission: Any = None) -> Any:
        wrapper = original(self, func, permission)
        guarded.add(id(wrapper))
        return wrapper

    UDataApi._apply_secure = recording
    return guarded


def _is_guarded(func: Any, guarded: set[int]) -> bool:
    """Whether ``func`` or anything it wraps (functools.wraps chain) went through @api.secure."""
    seen = 0
    while func is not None and seen < 50:
        if id(func) in guarded:
            return True
        func, seen = getattr(func, "__wrapped__", None), seen + 1
    return False


def _secured_operations(swagger: dict[str, Any], guarded: set[int], api: Any) -> list[str]:
    """operationIds of the guarded methods of ``api`` (udata's ``api`` or ``apiv2``), found the
    way flask-restx lays out its paths."""
    from flask_restx.swagger import extract_path

    secured = set()
    for ns in api.namespaces:
        for resource, urls, _doc, _kwargs in ns.resources:
            for url in api.ns_urls(ns, urls):
                item = swagger["paths"].get(extract_path(url), {})
                for method in resource.methods or []:
                    operation = item.get(method.lower())
                    view = getattr(resource, method.lower(), None)
                    if operation and _is_guarded(view, guarded):
                        secured.add(operation["operationId"])
    return sorted(secured)


def dump(versions: tuple[int, ...] = (1,)) -> dict[int, dict[str, Any]]:
    """API version -> the served document plus the ``x-aioudata-dump`` record."""
    guarded = _record_secured()  # before any udata API module registers its views
    from importlib.metadata import version

    from udata.api import api, apiv2
    from udata.app import create_app, standalone

    with tempfile.TemporaryDirectory(prefix="udata-spec-") as tmp:
        settings = Path(tmp) / "udata.cfg"  # read once, by create_app
        settings.write_text(SETTINGS, encoding="utf-8")
        os.environ["UDATA_SETTINGS"] = str(settings)
        app = standalone(create_app())
    documents: dict[int, dict[str, Any]] = {}
    for number in versions:
        url = f"/api/{number}/swagger.json"
        with app.test_client() as client:
            response = client.get(url, base_url=f"https://{SERVER_NAME}")
        if response.status_code != 200:
            raise SystemExit(f"{url} answered {response.status_code}")
        swagger: dict[str, Any] = json.loads(response.data)
        with app.app_context():
            secured = _secured_operations(swagger, guarded, api if number == 1 else apiv2)
        if not secured:
            raise SystemExit(f"{url}: no @api.secure operation found: did udata change how?")
        swagger["x-aioudata-dump"] = {"udata": version("udata"), "secured_operations": secured}
        documents[number] = swagger
    return documents


def main() -> None:
    if len(sys.argv) not in (2, 3):
        raise SystemExit("usage: dump_swagger.py OUT.json [OUT_V2.json]")
    targets = sys.argv[1:]
    documents = dump(tuple(range(1, len(targets) + 1)))
    for (number, document), target in zip(documents.items(), targets, strict=True):
        Path(target).write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
        print(
            f"udata {document['x-aioudata-dump']['udata']} API v{number}: "
            f"{len(document['paths'])} paths, "
            f"{len(document['x-aioudata-dump']['secured_operations'])} secured operations",
            file=sys.stderr,
        )


if __name__ == "__main__":
    main()
