# mypy: disable-error-code="import-not-found"
# (udata and flask-restx exist only in the udata venv this script runs in.)
"""Check the spec against what a real udata app sends: the evidence behind openapi/overlay.json.

Runs INSIDE the udata venv (like dump_swagger.py): ``python probe.py [--api 2] SPEC`` where SPEC
is either a full OpenAPI document (build.py --raw-out, i.e. before the overlay) or a folder of
fragments (after it: openapi/, or openapi/v2/ with ``--api 2``). It seeds a mongomock database
with the udata factories (users, an organization with members, datasets with resources, spatial
and temporal coverage, reuses, dataservices, discussions, harvest sources and jobs, posts,
a topic with elements...), calls every GET operation it can fill the path of, plus a few
writes, and decodes each JSON answer against the documented response schema. It prints one line
per disagreement kind and place, with an example value.

What counts as a disagreement: the wrong JSON type, a date-time sent as a date (or the reverse),
a required property missing, a required property sent as null, an answer whose status code
is not documented. Optional properties sent as null are NOT reported: the client decodes
every optional field as nullable. Unknown enum values and undocumented properties are listed
separately (informational: enums stay open in the client, extra keys are ignored).
"""

from __future__ import annotations

import json
import os
import re
import sys
import tempfile
from collections import defaultdict
from datetime import date, datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote

JSON = dict[str, Any]
SCHEMA_REF = "#/components/schemas/"
FULL_OBJECTS = "X-Get-Datasets-Full-Objects"
PROBE_SETTINGS = """
CELERY_TASK_ALWAYS_EAGER = True
CELERY_TASK_EAGER_PROPAGATES = False
SEARCH_SERVICE_API_URL = None
METRICS_API = None
HARVESTER_BACKENDS = ["*"]  # every backend udata ships, as on data.gouv.fr
SECURITY_EMAIL_VALIDATOR_ARGS = {"check_deliverability": False}  # no DNS here
from udata.settings import Defaults as _Defaults
URLS_ALLOWED_TLDS = _Defaults.URLS_ALLOWED_TLDS | {"invalid"}  # never resolves (RFC 2606)
"""


# --- the spec ------------------------------------------------------------------------------


def load_spec(source: Path) -> JSON:
    """A full document, or the merge of a folder of fragments (they agree by construction)."""
    if source.is_file():
        document: JSON = json.loads(source.read_text(encoding="utf-8"))
        return document
    merged: JSON = {"paths": {}, "components": {"schemas": {}}}
    for path in sorted(source.glob("*/*.json")):
        if re.fullmatch(r"v\d+", path.parent.name):
            continue  # openapi/v2/ is the other API's folder, probed on its own
        fragment = json.loads(path.read_text(encoding="utf-8"))
        for route, item in fragment["paths"].items():
            merged["paths"].setdefault(route, {}).update(item)
        merged["components"]["schemas"].update(fragment.get("components", {}).get("schemas", {}))
    return merged


class Checker:
    """Decodes values against the spec's schemas and collects what does not fit."""

    def __init__(self, spec: JSON) -> None:
        self.schemas: JSON = spec["components"]["schemas"]
        self.problems: dict[tuple[str, str], list[str]] = defaultdict(list)
        self.notes: dict[tuple[str, str], list[str]] = defaultdict(list)
        self.context = ""  # the request being decoded, quoted in the examples

    def report(self, kind: str, where: str, example: Any, note: bool = False) -> None:
        bucket = self.notes if note else self.problems
        examples = bucket[(kind, where)]
        if len(examples) < 2:
            examples.append(f"{self.context} → {json.dumps(example, default=str)[:120]}")

    def resolve(self, schema: JSON) -> tuple[JSON, str | None]:
        ref = schema.get("$ref")
        if not ref:
            return schema, None
        name = unquote(ref[len(SCHEMA_REF) :])
        return self.schemas[name], name

    def properties(self, schema: JSON) -> dict[str, Any] | None:
        """Every property an object may have, allOf parts included; None when any is allowed."""
        schema, _ = self.resolve(schema)
        found: dict[str, Any] = dict(schema.get("properties", {}))
        if not found and not schema.get("allOf"):
            return None
        for part in schema.get("allOf", []):
            more = self.properties(part)
            if more is None:
                return None
            found.update(more)
        return found

    def fits(self, schema: JSON, value: Any) -> bool:
        """Whether ``value`` decodes against ``schema`` without any problem (for anyOf)."""
        probe = Checker({"components": {"schemas": self.schemas}})
        probe.check(schema, value, "")
        return not probe.problems

    def check(self, schema: JSON, value: Any, where: str, part: bool = False) -> None:
        """Decode ``value``; ``part`` for an allOf member (the whole judges extra keys)."""
        schema, name = self.resolve(schema)
        where = name or where
        for member in schema.get("allOf", []):
            self.check(member, value, where, part=True)
        options = schema.get("anyOf") or schema.get("oneOf")
        if options and not any(self.fits(option, value) for option in options):
            self.report("no anyOf/oneOf member fits", where, value)
        if "type" in schema and not _type_ok(schema["type"], value):
            self.report(f"type {schema['type']} but got {type(value).__name__}", where, value)
            return
        self._format(schema, value, where)
        if "enum" in schema and value is not None and value not in schema["enum"]:
            self.report("value outside enum", where, value, note=True)
        if isinstance(value, dict):
            self._object(schema, value, where)
            if not part:
                self._undocumented(schema, value, where)
        elif isinstance(value, list) and "items" in schema:
            for item in value:
                self.check(schema["items"], item, f"{where}[]")

    def _format(self, schema: JSON, value: Any, where: str) -> None:
        if not isinstance(value, str):
            return
        fmt = schema.get("format")
        if fmt == "date-time" and not _is_datetime(value):
            self.report("format date-time but got", where, value)
        elif fmt == "date" and not _is_date(value):
            self.report("format date but got", where, value)

    def _object(self, schema: JSON, value: JSON, where: str) -> None:
        properties = schema.get("properties", {})
        for key in schema.get("required", []):
            if key not in value:
                self.report("required property missing", f"{where}.{key}", sorted(value)[:6])
            elif value[key] is None:
                self.report("required property is null", f"{where}.{key}", None)
        for key, item in value.items():
            if key in properties and item is not None:
                self.check(properties[key], item, f"{where}.{key}")
        extra = schema.get("additionalProperties")
        if isinstance(extra, dict) and extra:
            for key, item in value.items():
                if key not in properties and item is not None:
                    self.check(extra, item, f"{where}.*")

    def _undocumented(self, schema: JSON, value: JSON, where: str) -> None:
        known = self.properties(schema)
        if known is None or schema.get("additionalProperties"):
            return
        for key in value:
            if key not in known:
                self.report("undocumented property", f"{where}.{key}", value[key], note=True)


def _has_composition(schema: JSON) -> bool:
    return any(k in schema for k in ("allOf", "anyOf", "oneOf"))


_TYPES: dict[str, tuple[type, ...]] = {
    "object": (dict,),
    "array": (list,),
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
}


def _type_ok(kind: str | list[str], value: Any) -> bool:
    kinds = [kind] if isinstance(kind, str) else kind
    if value is None:
        return True  # nullability is judged by the caller (required or not)
    for name in kinds:
        if name == "null":
            continue
        if isinstance(value, bool) and name in ("integer", "number"):
            continue
        if isinstance(value, _TYPES.get(name, (object,))):
            return True
    return False


def _is_datetime(value: str) -> bool:
    if "T" not in value:
        return False
    try:
        datetime.fromisoformat(value)
    except ValueError:
        return False
    return True


def _is_date(value: str) -> bool:
    try:
        date.fromisoformat(value)
    except ValueError:
        return False
    return re.fullmatch(r"\d{4}-\d{2}-\d{2}", value) is not None


# --- the server ----------------------------------------------------------------------------


def make_app() -> Any:
    sys.path.insert(0, str(Path(__file__).parent))
    from dump_swagger import SETTINGS
    from udata.app import create_app, standalone

    with tempfile.TemporaryDirectory(prefix="udata-probe-") as tmp:
        settings = Path(tmp) / "udata.cfg"  # read once, by create_app
        settings.write_text(SETTINGS + PROBE_SETTINGS, encoding="utf-8")
        os.environ["UDATA_SETTINGS"] = str(settings)
        app = standalone(create_app())
    app.logger.disabled = True  # the 500s we provoke are reported below, without tracebacks
    return app


def seed() -> dict[str, str]:
    """Objects for every kind of path parameter; returns name → value for the URL templates."""
    from udata.core.api_token.models import ApiToken
    from udata.core.contact_point.factories import ContactPointFactory
    from udata.core.dataservices.factories import DataserviceFactory
    from udata.core.dataset.factories import (
        CommunityResourceFactory,
        DatasetFactory,
        LicenseFactory,
        ResourceFactory,
    )
    from udata.core.discussions.factories import DiscussionFactory
    from udata.core.followers.models import Follow
    from udata.core.organization.factories import OrganizationFactory
    from udata.core.organization.models import Member
    from udata.core.post.factories import PostFactory
    from udata.core.reuse.factories import ReuseFactory
    from udata.core.spatial.factories import SAMPLE_GEOM, GeoLevelFactory, GeoZoneFactory
    from udata.core.spatial.models import SpatialCoverage
    from udata.core.topic.factories import TopicElementFactory, TopicFactory
    from udata.core.user.factories import AdminFactory, UserFactory
    from udata.core.visualizations.factories import ChartFactory
    from udata.harvest.models import HarvestItem, HarvestJob, HarvestSource
    from udata.mongo.datetime_fields import DateRange

    # Names contain "probe": the suggest endpoints are called with q=probe.
    admin = AdminFactory(first_name="Probe", last_name="Admin")
    editor = UserFactory(first_name="Probe", last_name="Editor")
    LicenseFactory(id="lov2", title="Licence Ouverte")
    _, key = ApiToken.generate(admin, name="probe")
    org = OrganizationFactory(
        members=[Member(user=admin, role="admin"), Member(user=editor, role="editor")]
    )
    GeoLevelFactory(id="fr:region", name="Région", admin_level=40)
    zone = GeoZoneFactory(id="fr:region:11", level="fr:region", code="11", name="IdF")
    dataset = DatasetFactory(
        organization=org,
        resources=[ResourceFactory(), ResourceFactory(type="main", filetype="remote")],
        spatial=SpatialCoverage(zones=[zone], granularity="fr:region"),
        temporal_coverage=DateRange(start=date(2003, 1, 1), end=date(2010, 12, 31)),
        tags=["probe", "spec"],
    )
    # Zones and a geometry exclude each other: the second dataset carries the geometry.
    owned = DatasetFactory(
        owner=admin, resources=[ResourceFactory()], spatial=SpatialCoverage(geom=SAMPLE_GEOM)
    )
    community = CommunityResourceFactory(dataset=dataset, owner=admin)
    reuse = ReuseFactory(title="Probe reuse", organization=org, datasets=[dataset])
    dataservice = DataserviceFactory(title="Probe API", organization=org, datasets=[dataset])
    chart = ChartFactory(owner=admin)
    discussion = DiscussionFactory(subject=dataset, user=admin)
    # udata's harvest factories live in its test package (they need pytest): build by hand.
    # URLs use the reserved .invalid TLD: a preview tries to fetch the catalog, and must fail.
    source = HarvestSource(
        name="Probe source",
        url="https://probe.example.invalid/catalog",
        backend="dcat",
        organization=org,
    ).save()
    job = HarvestJob(
        source=source,
        status="done",
        items=[HarvestItem(remote_id="r1", dataset=dataset, status="done")],
    ).save()
    post = PostFactory(owner=admin)
    contact = ContactPointFactory(organization=org)
    topic = TopicFactory(organization=org, spatial=SpatialCoverage(zones=[zone]))
    element = TopicElementFactory(topic=topic, element=dataset)
    TopicElementFactory(topic=topic, element=None, title="An element without its object")
    for subject in (reuse, org, editor, dataservice):
        Follow(follower=admin, following=subject).save()
    return {
        "key": key,
        "dataset": str(dataset.id),
        "owned": str(owned.id),
        "rid": str(dataset.resources[0].id),
        "community": str(community.id),
        "org": str(org.id),
        "reuse": str(reuse.id),
        "dataservice": str(dataservice.id),
        "discussion": str(discussion.id),
        "source": str(source.id),
        "job": str(job.id),
        "post": str(post.id),
        "user": str(editor.id),
        "contact_point": str(contact.id),
        "visualization": str(chart.id),
        "topic": str(topic.id),
        "element_id": str(element.id),
        "level": "fr:region",
        "ids": zone.id,
        "zone": zone.id,
    }


# CSV/RDF/Atom exports stream their body and the OAuth routes redirect: nothing to decode.
_NOT_JSON = re.compile(
    r"\.csv$|\.atom$|/rdf|/catalog|\{_format\}|context\.jsonld|/(auth|login|logout)"
)

# Path parameters called ``id`` mean a different object on each route.
_ID_OWNERS = {
    "/dataservices/": "dataservice",
    "/datasets/r/": "rid",
    "/datasets/": "dataset",
    "/discussions/": "discussion",
    "/organizations/": "org",
    "/reuses/": "reuse",
    "/spatial/zone/": "zone",
    "/users/": "user",
    "/transfer/": "transfer",
    "/workers/jobs/": "periodic_task",
}

# Query strings for operations that refuse to answer without one.
_QUERIES = {
    "/transfer/": "recipient={org}",
    "/notifications/resolved/": "scope=Dataset:{dataset}",
    "/spatial/zones/suggest/": "q=idf",
}


def fill(route: str, ids: dict[str, str]) -> str | None:
    """``route`` with its parameters replaced, or None when we have nothing to put there."""

    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        if name == "id":
            owner = next((o for p, o in _ID_OWNERS.items() if route.startswith(p)), None)
            if owner and owner in ids:
                return ids[owner]
        if name in ids:
            return ids[name]
        raise KeyError(name)

    try:
        url = re.sub(r"\{(\w+)\}", value, route)
    except KeyError:
        return None
    query = _QUERIES.get(route, "q=probe" if "/suggest/" in route else "")
    return f"{url}?{query.format(**ids)}" if query else url


#: The API version probed (``--api``): its root prefixes every route.
API_ROOT = ["/api/1"]


def call(
    client: Any,
    method: str,
    url: str,
    ids: dict[str, str],
    headers: JSON | None = None,
    payload: Any = None,
) -> Any:
    return client.open(
        API_ROOT[0] + url,
        method=method,
        json=payload,
        headers={"X-API-KEY": ids["key"], **(headers or {})},
        base_url="https://www.data.gouv.fr",
    )


def check_response(checker: Checker, operation: JSON, label: str, response: Any) -> list[str]:
    """Decode one answer against its documented response; returns what went unchecked."""
    code = str(response.status_code)
    documented = operation.get("responses", {})
    checker.context = label
    if code.startswith("2") and code not in documented:
        checker.report(f"answered {code}, documents {sorted(documented)}", label, None)
        return []
    if code not in documented:
        return [f"{label}: answered {code}"]
    content = documented[code].get("content", {}).get("application/json")
    if content is None:
        if code.startswith("2") and response.get_data():
            # Undocumented, not contradicted: the client hands such bodies over undecoded.
            body = response.get_data()[:80].decode()
            checker.report("body sent, none documented", label, body, note=True)
        return []
    if code == "204" or not response.get_data():
        checker.report("no body sent, one documented", label, None)
        return []
    checker.check(content["schema"], response.get_json(), operation["operationId"])
    return []


def probe_gets(app: Any, spec: JSON, checker: Checker, ids: dict[str, str]) -> list[str]:
    """GET every operation we can address; returns what could not be checked and why."""
    skipped = []
    with app.test_client() as client:
        for route, item in spec["paths"].items():
            operation = item.get("get")
            if operation is None:
                continue
            if _NOT_JSON.search(route):
                skipped.append(f"GET {route}: not a JSON endpoint (export, feed or OAuth)")
                continue
            url = fill(route, ids)
            if url is None:
                skipped.append(f"GET {route}: no value for its path parameters")
                continue
            variants: list[JSON] = [{}]
            if route.startswith(("/datasets/", "/organizations/{org}/datasets/")):
                variants.append({FULL_OBJECTS: "True"})
            for headers in variants:
                label = f"GET {route}" + "".join(f" +{h}" for h in headers)
                response = call(client, "GET", url, ids, headers)
                skipped += check_response(checker, operation, label, response)
                response.close()
    return skipped


# Writes whose answers we decode; {name} in payloads comes from the seeded ids. Each may store
# the created object's id for later steps (the "keep" name).
WRITES: list[tuple[str, str, Any, str]] = [
    ("POST", "/datasets/", {"title": "Probe", "description": "d", "frequency": "daily"}, "ds2"),
    (
        "POST",
        "/datasets/{dataset}/resources/",
        {
            "title": "r",
            "url": "https://probe.example.invalid/r.csv",
            "filetype": "remote",
            "type": "main",
        },
        "rid3",
    ),
    (
        "POST",
        "/reuses/",
        {
            "title": "R",
            "description": "d",
            "url": "https://probe.example.invalid/r",
            "type": "api",
            "topic": "others",
        },
        "",
    ),
    ("POST", "/organizations/", {"name": "Probe org", "description": "d"}, ""),
    (
        "POST",
        "/discussions/",
        {"title": "t", "comment": "c", "subject": {"class": "Dataset", "id": "{dataset}"}},
        "",
    ),
    (
        "POST",
        "/reports/",
        {"subject": {"class": "Dataset", "id": "{dataset}"}, "reason": "spam"},
        "report",
    ),
    (
        "POST",
        "/transfer/",
        {
            "subject": {"class": "Dataset", "id": "{owned}"},
            "recipient": {"class": "Organization", "id": "{org}"},
            "comment": "c",
        },
        "transfer",
    ),
    ("POST", "/posts/", {"name": "Probe post", "headline": "h", "content": "c"}, ""),
    (
        "POST",
        "/contacts/",
        {"name": "c", "email": "probe@example.com", "role": "contact", "organization": "{org}"},
        "",
    ),
    ("POST", "/datasets/{id}/followers/", None, ""),
    ("POST", "/dataservices/{dataservice}/datasets/", [{"id": "{owned}"}], ""),
    (
        "POST",
        "/harvest/sources/",
        {
            "name": "Probe 2",
            "url": "https://probe.example.invalid/dcat",
            "backend": "dcat",
            "organization": "{org}",
        },
        "",
    ),
    ("POST", "/harvest/source/{source}/schedule/", "0 0 * * *", ""),
]
# Run after the GETs, which need the objects these delete.
DELETES: list[tuple[str, str, Any, str]] = [
    ("DELETE", "/harvest/source/{source}/schedule/", None, ""),
    ("DELETE", "/harvest/source/{source}/", None, ""),
    ("DELETE", "/datasets/{dataset}/resources/{rid}/", None, ""),
    ("DELETE", "/datasets/community_resources/{community}/", None, ""),
]


# The API v2's writes: topics and their elements (the extras endpoints answer no body).
WRITES_V2: list[tuple[str, str, Any, str]] = [
    (
        "POST",
        "/topics/",
        {
            "name": "Probe topic",
            "description": "d",
            "tags": ["probe"],
            "organization": "{org}",
            "elements": [{"title": "e", "element": {"class": "Dataset", "id": "{dataset}"}}],
        },
        "topic2",
    ),
    ("PUT", "/topics/{topic2}/", {"name": "Probe topic, renamed"}, ""),
    (
        "POST",
        "/topics/{topic2}/elements/",
        [{"title": "r", "element": {"class": "Reuse", "id": "{reuse}"}}],
        "",
    ),
    ("PUT", "/topics/{topic}/elements/{element_id}/", {"title": "renamed"}, ""),
    ("POST", "/topics/{topic}/featured/", None, ""),
    ("PUT", "/datasets/{dataset}/extras/", {"probe": "x"}, ""),
]
DELETES_V2: list[tuple[str, str, Any, str]] = [
    ("DELETE", "/topics/{topic}/featured/", None, ""),
    ("DELETE", "/topics/{topic2}/", None, ""),
]


def _fill_payload(payload: Any, ids: dict[str, str]) -> Any:
    if isinstance(payload, str):
        return payload.format(**ids) if payload.startswith("{") else payload
    if isinstance(payload, list):
        return [_fill_payload(item, ids) for item in payload]
    if isinstance(payload, dict):
        return {key: _fill_payload(value, ids) for key, value in payload.items()}
    return payload


def probe_writes(
    app: Any, spec: JSON, checker: Checker, ids: dict[str, str], writes: list[Any]
) -> list[str]:
    """``writes`` in order: their status codes and response models."""
    skipped = []
    with app.test_client() as client:
        for method, route, payload, keep in writes:
            documented = route.replace("{topic2}", "{topic}")  # a second topic, same route
            operation = spec["paths"].get(documented, {}).get(method.lower())
            url = fill(route, ids)
            if operation is None or url is None:
                skipped.append(f"{method} {route}: not in the spec or no ids")
                continue
            response = call(client, method, url, ids, payload=_fill_payload(payload, ids))
            skipped += check_response(checker, operation, f"{method} {route}", response)
            if keep and response.is_json and isinstance(response.get_json(), dict):
                ids[keep] = str(response.get_json().get("id"))
    return skipped


def main() -> None:
    args = sys.argv[1:]
    version = "1"
    if args[:1] == ["--api"] and len(args) == 3:
        version, args = args[1], args[2:]
    if len(args) != 1 or version not in ("1", "2"):
        raise SystemExit("usage: probe.py [--api 2] SPEC (full OpenAPI JSON or a fragment folder)")
    API_ROOT[0] = f"/api/{version}"
    spec = load_spec(Path(args[0]))
    app = make_app()
    checker = Checker(spec)
    writes, deletes = (WRITES, DELETES) if version == "1" else (WRITES_V2, DELETES_V2)
    with app.app_context():
        with app.test_request_context():  # signal handlers look at current_user
            ids = seed()
        skipped = probe_writes(app, spec, checker, ids, writes)
        skipped += probe_gets(app, spec, checker, ids)
        skipped += probe_writes(app, spec, checker, ids, deletes)
    for title, bucket in (("DISAGREEMENTS", checker.problems), ("NOTES", checker.notes)):
        print(f"== {title} ({len(bucket)})")
        for (kind, where), examples in sorted(bucket.items(), key=lambda e: (e[0][1], e[0][0])):
            print(f"{where}: {kind}:\n    " + "\n    ".join(examples))
    print(f"== NOT CHECKED ({len(set(skipped))})")
    print("\n".join(sorted(set(skipped))))
    sys.exit(1 if checker.problems else 0)


if __name__ == "__main__":
    main()
