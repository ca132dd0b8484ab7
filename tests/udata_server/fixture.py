"""The ``udata_server`` pytest fixture: one real udata server per test session.

Import it from ``tests/conftest.py``::

    from tests.udata_server.fixture import udata_server  # noqa: F401

When the udata venv cannot be built (typically: no package index reachable), tests using the
fixture are skipped, unless ``AIOUDATA_REQUIRE_UDATA=1`` (set in CI), which fails them.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from .launcher import UdataServer, UdataServerError
from .venv import VenvError, ensure_venv

__all__ = ["REQUIRE_ENV", "UdataServer", "UdataServerError", "running_server", "udata_server"]

REQUIRE_ENV = "AIOUDATA_REQUIRE_UDATA"


def _required() -> bool:
    return os.environ.get(REQUIRE_ENV, "").strip() not in ("", "0", "false", "no")


def running_server(**options: int) -> Iterator[UdataServer]:
    """Start a seeded udata server (``options`` go to UdataServer), yield it, stop it.

    Skips the test when the venv cannot be built, or fails it when ``REQUIRE_ENV`` is set.
    """
    try:
        python = ensure_venv()
    except VenvError as error:
        reason = f"cannot build the udata venv: {error}"
        if _required():
            pytest.fail(f"{reason} ({REQUIRE_ENV} is set)", pytrace=False)
        pytest.skip(f"{reason} (set {REQUIRE_ENV}=1 to fail instead)")
    server = UdataServer(python=python, **options)
    try:
        server.start()
    except UdataServerError as error:
        pytest.fail(str(error), pytrace=False)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def udata_server() -> Iterator[UdataServer]:
    """A running, seeded udata server; see tests/udata_server/README.md for the manifest."""
    yield from running_server()
