"""Shared fixtures: the real udata server (session) and a fault-injecting server (per test)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.faults import FaultServer, fault_server
from tests.postgres_fixture import postgres
from tests.udata_server.fixture import udata_server

__all__ = ["faults", "postgres", "udata_server"]


@pytest.fixture
async def faults() -> AsyncIterator[FaultServer]:
    """A fault-injecting server on 127.0.0.1 for this test only."""
    async for server in fault_server():
        yield server
