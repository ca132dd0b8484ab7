"""Building requests from arguments: every check happens before any I/O."""

from __future__ import annotations

import io

import msgspec
import pytest

from aioudata import ArgumentError
from aioudata._arguments import prepare
from aioudata._endpoint import Endpoint, Kind, Param

LIST = Endpoint(
    operation_id="list_things",
    method="GET",
    path="/things/",
    response=None,
    params=(
        Param("page", "page", "query", Kind.INTEGER, minimum=1),
        Param("tag", "tag", "query", Kind.STRING_LIST),
        Param("featured", "featured", "query", Kind.BOOLEAN),
        Param("x_fields", "X-Fields", "header", Kind.STRING),
    ),
)
GET = Endpoint(
    operation_id="get_thing",
    method="GET",
    path="/things/{thing}/",
    response=None,
    params=(Param("thing", "thing", "path", Kind.STRING, required=True),),
)
PUT = Endpoint(
    operation_id="update_thing",
    method="PUT",
    path="/things/{thing}/",
    response=None,
    params=(
        Param("thing", "thing", "path", Kind.STRING, required=True),
        Param("body", "payload", "body", Kind.BODY, required=True),
    ),
)
UPLOAD = Endpoint(
    operation_id="upload",
    method="POST",
    path="/up/",
    response=None,
    params=(Param("file", "file", "form", Kind.FILE, required=True),),
)


class Body(msgspec.Struct, kw_only=True, omit_defaults=True):
    title: str
    note: str | None = None


def test_query_lists_repeat_and_booleans_are_lowercase() -> None:
    request = prepare(LIST, {"page": 2, "tag": ["a b", "c"], "featured": False, "x_fields": None})
    assert request.query == [("page", "2"), ("tag", "a b"), ("tag", "c"), ("featured", "false")]
    assert request.headers == {}


def test_a_single_string_for_a_list_parameter_is_one_value() -> None:
    assert prepare(LIST, {"tag": "abc"}).query == [("tag", "abc")]


def test_headers_are_sent_by_wire_name() -> None:
    assert prepare(LIST, {"x_fields": "data{id},total"}).headers == {"X-Fields": "data{id},total"}


def test_path_parameters_are_escaped_as_one_segment() -> None:
    assert prepare(GET, {"thing": "a/b c?d"}).path == "/things/a%2Fb%20c%3Fd/"
    assert prepare(GET, {"thing": "éte"}).path == "/things/%C3%A9te/"


def test_missing_required_argument_is_a_type_error() -> None:
    with pytest.raises(TypeError, match=r"get_thing\(\) missing required argument: 'thing'"):
        prepare(GET, {"thing": None})


@pytest.mark.parametrize("value", ["", "   "])
def test_empty_identifier_is_refused(value: str) -> None:
    with pytest.raises(ArgumentError, match="thing must not be empty"):
        prepare(GET, {"thing": value})


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({"page": "2"}, "page must be an int, not str"),
        ({"page": True}, "page must be an int, not bool"),
        ({"featured": "yes"}, "featured must be a bool, not str"),
        ({"tag": 3}, "tag must be a str or a sequence of str, not int"),
        ({"tag": [1.5]}, "tag must be a str, not float"),
    ],
)
def test_wrongly_typed_arguments_are_type_errors(args: dict[str, object], message: str) -> None:
    with pytest.raises(TypeError, match=message):
        prepare(LIST, args)


def test_values_below_the_minimum_are_refused() -> None:
    with pytest.raises(ArgumentError, match="page must be >= 1, got 0"):
        prepare(LIST, {"page": 0})


def test_unexpected_argument_is_refused() -> None:
    with pytest.raises(TypeError, match="unexpected arguments: pages"):
        prepare(LIST, {"pages": 1})


def test_json_bodies_from_models_or_mappings() -> None:
    assert prepare(PUT, {"thing": "t", "body": Body(title="x")}).json == b'{"title":"x"}'
    assert prepare(PUT, {"thing": "t", "body": {"title": None}}).json == b'{"title":null}'
    with pytest.raises(TypeError, match="body must be a model or a mapping, not str"):
        prepare(PUT, {"thing": "t", "body": "title=x"})


def test_form_files_accept_bytes_and_binary_files() -> None:
    assert prepare(UPLOAD, {"file": b"abc"}).form == [("file", b"abc")]
    handle = io.BytesIO(b"abc")
    assert prepare(UPLOAD, {"file": handle}).form == [("file", handle)]
    with pytest.raises(TypeError, match="file must be bytes or a binary file"):
        prepare(UPLOAD, {"file": "abc"})
