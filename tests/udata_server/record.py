"""Record real udata responses into ``tests/fixtures/responses/*.json``.

Host side, standard library only. From the repository root::

    python -m tests.udata_server.record                 # starts a server, records, stops it
    python -m tests.udata_server.record --base-url http://127.0.0.1:7000/api/1 \\
        --manifest /path/to/manifest.json               # records from a running server

Each file is ``{"request": {"method", "path", "query", "keyed"}, "status", "headers",
"body"}``: ``headers`` holds only ``content-type``, ``body`` is the parsed JSON as received,
with the server's ``http://127.0.0.1:PORT`` replaced by ``http://127.0.0.1:7000`` so that
re-recording gives small diffs. A request that sends a JSON body also has ``request.json``.
API keys are never written (``keyed`` only says whether one was sent).
"""

from __future__ import annotations

import argparse
import json
import sys
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

if not __package__:  # run as a file: make the ``tests`` package importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.udata_server.launcher import UdataServer

STABLE_ROOT = "http://127.0.0.1:7000"
DEFAULT_OUT = Path(__file__).resolve().parents[1] / "fixtures" / "responses"
UNKNOWN_ID = "000000000000000000000000"


@dataclass(frozen=True)
class Call:
    name: str
    path: str  # absolute path, /api/1/... or /api/2/...
    query: dict[str, str] = field(default_factory=dict)
    key: str | None = None  # manifest api_keys name
    method: str = "GET"
    json: Any = None


def calls(manifest: dict[str, Any]) -> list[Call]:
    """What to record. Anonymous calls come first: keyed ones update the key's user."""
    v1 = "/api/1"
    datasets = manifest["datasets"]
    showcase = datasets["showcase"]
    resource = manifest["resources"][showcase][2]
    organization = manifest["organizations"]["user_member_of"][0]
    reuse = manifest["reuses"]["public"][0]
    jobs = manifest["harvest"]["jobs"]
    source = max(jobs, key=lambda source_id: len(jobs[source_id]))
    job = jobs[source][-1]
    topic = manifest["topics"]["public"][0]
    post = manifest["posts"]["published"][0]
    discussion = manifest["discussions"][-1]
    user = manifest["users"]["user"]
    return [
        Call("datasets_page", f"{v1}/datasets/", {"page": "2", "page_size": "3"}),
        Call("dataset", f"{v1}/datasets/{showcase}/"),
        Call("dataset_harvested", f"{v1}/datasets/{datasets['harvested'][0]}/"),
        Call("dataset_resource", f"{v1}/datasets/{showcase}/resources/{resource}/"),
        Call("community_resources_page", f"{v1}/datasets/community_resources/"),
        Call("dataset_frequencies", f"{v1}/datasets/frequencies/"),
        Call("dataset_licenses", f"{v1}/datasets/licenses/"),
        Call("organizations_page", f"{v1}/organizations/", {"page_size": "2"}),
        Call("organization", f"{v1}/organizations/{organization}/"),
        Call("reuses_page", f"{v1}/reuses/", {"page_size": "2"}),
        Call("reuse", f"{v1}/reuses/{reuse}/"),
        Call("user", f"{v1}/users/{user}/"),
        Call("harvest_sources_page", f"{v1}/harvest/sources/"),
        Call("harvest_source", f"{v1}/harvest/source/{source}/"),
        Call("harvest_jobs_page", f"{v1}/harvest/source/{source}/jobs/"),
        Call("harvest_job", f"{v1}/harvest/job/{job}/"),
        Call("harvest_job_items_page", f"{v1}/harvest/job/{job}/items/", {"page_size": "3"}),
        Call("site", f"{v1}/site/"),
        # udata 17.18 has no v1 topics endpoint: topics are served by API v2 only
        Call("topics_page", "/api/2/topics/"),
        Call("topic", f"/api/2/topics/{topic}/"),
        Call("posts_page", f"{v1}/posts/"),
        Call("post", f"{v1}/posts/{post}/"),
        Call("discussions_page", f"{v1}/discussions/", {"page_size": "2"}),
        Call("discussion", f"{v1}/discussions/{discussion}/"),
        Call("tags_suggest", f"{v1}/tags/suggest/", {"q": "tra"}),
        Call("spatial_levels", f"{v1}/spatial/levels/"),
        Call("error_404_unknown_id", f"{v1}/datasets/{UNKNOWN_ID}/"),
        Call("error_404_page_past_end", f"{v1}/datasets/", {"page": "1000"}),
        Call("error_400_bad_page_size", f"{v1}/datasets/", {"page_size": "0"}),
        Call("error_410_deleted_dataset", f"{v1}/datasets/{datasets['deleted'][0]}/"),
        Call("error_404_unknown_route", f"{v1}/nope/"),
        Call("error_401_bad_key", f"{v1}/me/", key="invalid"),
        Call(
            "error_400_validation",
            f"{v1}/datasets/",
            key="user",
            method="POST",
            json={"description": "A dataset without a title."},
        ),
        Call("me", f"{v1}/me/", key="user"),
        Call("users_page", f"{v1}/users/", {"page_size": "3"}, key="admin"),
    ]


def stabilize(value: Any, root_url: str) -> Any:
    """Replace the server's root URL by ``STABLE_ROOT`` in every string of a JSON value."""
    if isinstance(value, str):
        return value.replace(root_url, STABLE_ROOT)
    if isinstance(value, list):
        return [stabilize(item, root_url) for item in value]
    if isinstance(value, dict):
        return {key: stabilize(item, root_url) for key, item in value.items()}
    return value


def perform(call: Call, root_url: str, api_keys: dict[str, str]) -> tuple[int, str, Any]:
    url = root_url + call.path
    if call.query:
        url += "?" + urllib.parse.urlencode(call.query)
    data = None if call.json is None else json.dumps(call.json).encode()
    request = urllib.request.Request(url, data=data, method=call.method)
    request.add_header("Accept", "application/json")
    if data is not None:
        request.add_header("Content-Type", "application/json")
    if call.key is not None:
        # an unknown name sends a well-formed key that does not exist
        request.add_header("X-API-KEY", api_keys.get(call.key, "udata_" + "0" * 64))
    try:
        response = urllib.request.urlopen(request, timeout=120)
    except urllib.error.HTTPError as error:
        response = error
    with response:
        raw = response.read()
        content_type = response.headers.get("Content-Type", "")
        status = response.status
    body = json.loads(raw) if raw else None
    return status, content_type, body


def record(root_url: str, manifest: dict[str, Any], out: Path) -> list[Path]:
    api_keys: dict[str, str] = manifest["api_keys"]
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for call in calls(manifest):
        status, content_type, body = perform(call, root_url, api_keys)
        request: dict[str, Any] = {
            "method": call.method,
            "path": call.path,
            "query": dict(call.query),
            "keyed": call.key is not None,
        }
        if call.json is not None:
            request["json"] = call.json
        fixture = {
            "request": request,
            "status": status,
            "headers": {"content-type": content_type},
            "body": stabilize(body, root_url),
        }
        text = json.dumps(fixture, indent=2, ensure_ascii=False) + "\n"
        leaked = [name for name, key in api_keys.items() if key in text]
        if leaked:
            raise RuntimeError(f"{call.name}: the response contains the {leaked} API key")
        path = out / f"{call.name}.json"
        path.write_text(text)
        written.append(path)
        print(f"{status} {call.method} {call.path} -> {path.name}", file=sys.stderr)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Record udata responses as test fixtures.")
    parser.add_argument("--base-url", help="a running server's base URL (…/api/1)")
    parser.add_argument("--manifest", type=Path, help="that server's manifest")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"default {DEFAULT_OUT}")
    args = parser.parse_args(argv)
    if bool(args.base_url) != bool(args.manifest):
        parser.error("--base-url and --manifest go together")
    if args.base_url:
        manifest = json.loads(args.manifest.read_text())
        record(args.base_url.rsplit("/api/", 1)[0], manifest, args.out)
        return 0
    with UdataServer() as server:
        record(server.root_url, server.manifest, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
