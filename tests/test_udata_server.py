"""The local real udata server (tests/udata_server/) answers as the manifest says."""

from __future__ import annotations

import json as _json
import re
import urllib.error
import urllib.request
from typing import Any

import pytest

from tests.udata_server.fixture import UdataServer

pytestmark = pytest.mark.udata_server

SWAGGER_PATHS_UDATA_17_18 = 178


def fetch(
    server: UdataServer,
    path: str,
    *,
    key: str | None = None,
    method: str = "GET",
    json: Any = None,
) -> tuple[int, Any]:
    """(status, parsed JSON body or None) of one request, errors included."""
    data = None if json is None else _json.dumps(json).encode()
    request = urllib.request.Request(server.url(path), data=data, method=method)
    request.add_header("Accept", "application/json")
    if data is not None:
        request.add_header("Content-Type", "application/json")
    if key is not None:
        request.add_header("X-API-KEY", server.api_keys[key])
    try:
        response = urllib.request.urlopen(request, timeout=60)
    except urllib.error.HTTPError as error:
        response = error
    with response:
        raw = response.read()
        return response.status, _json.loads(raw) if raw else None


def listing(server: UdataServer, path: str, *, key: str | None = None) -> list[str]:
    """Every id of a paginated listing, following next_page."""
    ids: list[str] = []
    status, page = fetch(server, path, key=key)
    while True:
        assert status == 200, page
        ids.extend(item["id"] for item in page["data"])
        if not page["next_page"]:
            return ids
        assert page["next_page"].startswith(server.base_url)
        status, page = fetch(server, page["next_page"][len(server.base_url) :], key=key)


def test_ready_line_and_manifest_shape(udata_server: UdataServer) -> None:
    assert re.fullmatch(
        r"UDATA_SERVER_READY http://127\.0\.0\.1:\d+/api/1 \S+manifest\.json",
        udata_server.ready_line,
    )
    manifest = udata_server.manifest
    assert manifest["base_url"] == udata_server.base_url
    assert manifest["udata_version"] == "17.18.0"
    assert set(manifest["api_keys"]) == {"admin", "user", "other", "revoked", "expired"}
    assert all(re.fullmatch(r"udata_[\w-]{64}", key) for key in manifest["api_keys"].values())
    datasets = manifest["datasets"]
    assert len(datasets["public"]) == 30
    for kind in ("private", "archived", "deleted"):
        assert len(datasets[kind]) == 3
    all_ids = [i for kind in ("public", "private", "archived", "deleted") for i in datasets[kind]]
    assert len(set(all_ids)) == len(all_ids)
    assert all(re.fullmatch(r"[0-9a-f]{24}", i) for i in all_ids)
    assert set(manifest["resources"]) == set(datasets["public"])
    assert datasets["harvested"]
    assert set(datasets["harvested"]) <= set(datasets["public"])
    assert datasets["showcase"] in datasets["public"]
    for kind in ("listed", "public", "private", "deleted", "archived"):
        assert manifest["reuses"][kind]
    for items in (
        manifest["organizations"]["deleted"],
        manifest["harvest"]["sources"],
        manifest["harvest"]["jobs"],
        manifest["topics"]["public"],
        manifest["posts"]["published"],
        manifest["discussions"],
    ):
        assert items


def test_anonymous_listing_is_exactly_the_public_datasets(udata_server: UdataServer) -> None:
    ids = listing(udata_server, "/datasets/?page_size=7")
    assert ids == udata_server.manifest["datasets"]["public"]


def test_keyed_listing_adds_the_hidden_datasets_of_the_key_owner(
    udata_server: UdataServer,
) -> None:
    manifest = udata_server.manifest["datasets"]
    ids = listing(udata_server, "/datasets/?page_size=50", key="user")
    hidden = set(manifest["private"] + manifest["archived"] + manifest["deleted"])
    owned_hidden = hidden & set(manifest["owned_by_user"])
    assert owned_hidden
    assert owned_hidden != hidden  # some hidden datasets belong to others
    assert set(ids) == set(manifest["public"]) | owned_hidden


def test_private_dataset_is_404_anonymously_and_200_for_its_owner(
    udata_server: UdataServer,
) -> None:
    manifest = udata_server.manifest["datasets"]
    private = next(i for i in manifest["private"] if i in manifest["owned_by_user"])
    status, body = fetch(udata_server, f"/datasets/{private}/")
    assert status == 404
    assert body["message"].startswith("The requested URL was not found on the server.")
    assert fetch(udata_server, f"/datasets/{private}/", key="other")[0] == 404
    status, body = fetch(udata_server, f"/datasets/{private}/", key="user")
    assert (status, body["id"], body["private"]) == (200, private, True)
    assert fetch(udata_server, f"/datasets/{private}/", key="admin")[0] == 200


def test_deleted_dataset_is_410(udata_server: UdataServer) -> None:
    deleted = udata_server.manifest["datasets"]["deleted"][0]
    assert fetch(udata_server, f"/datasets/{deleted}/") == (
        410,
        {"message": "Dataset has been deleted"},
    )


def test_revoked_and_expired_keys_are_401(udata_server: UdataServer) -> None:
    assert fetch(udata_server, "/me/", key="revoked") == (401, {"message": "Revoked API token"})
    assert fetch(udata_server, "/me/", key="expired") == (401, {"message": "Expired API token"})
    status, me = fetch(udata_server, "/me/", key="user")
    assert (status, me["id"]) == (200, udata_server.manifest["users"]["user"])


def test_text_search_is_an_accent_insensitive_and_match(udata_server: UdataServer) -> None:
    status, page = fetch(udata_server, "/datasets/?q=energie&page_size=100")
    assert status == 200
    assert page["total"] > 0
    assert all("énergie" in item["title"].lower() for item in page["data"])
    status, page = fetch(udata_server, "/datasets/?q=qualit%C3%A9%20AIR%20mesures&page_size=100")
    assert status == 200
    assert page["total"] > 0
    for item in page["data"]:
        assert {"qualité", "air", "mesures"} <= set(re.findall(r"\w+", item["title"].lower()))


def test_swagger_is_served_with_every_v1_path(udata_server: UdataServer) -> None:
    status, swagger = fetch(udata_server, "/swagger.json")
    assert status == 200
    assert swagger["swagger"] == "2.0"
    assert len(swagger["paths"]) == SWAGGER_PATHS_UDATA_17_18


def test_writes_are_seen_by_the_next_reads(udata_server: UdataServer) -> None:
    """Create then delete a dataset with the `other` key (it owns nothing seeded)."""
    status, created = fetch(
        udata_server,
        "/datasets/",
        key="other",
        method="POST",
        json={"title": "Jeu de test éphémère", "description": "Créé puis supprimé."},
    )
    assert status == 201
    dataset = created["id"]
    assert created["owner"]["id"] == udata_server.manifest["users"]["other"]
    status, page = fetch(udata_server, "/datasets/?q=ephemere")
    assert status == 200
    assert [item["id"] for item in page["data"]] == [dataset]
    assert fetch(udata_server, f"/datasets/{dataset}/", key="other", method="DELETE")[0] == 204
    assert fetch(udata_server, f"/datasets/{dataset}/")[0] == 410
    assert fetch(udata_server, "/datasets/?q=ephemere")[1]["total"] == 0
