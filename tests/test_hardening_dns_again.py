"""The mirror's first check waits out a DNS server that does not answer for now (EAI_AGAIN).

A name that does not exist (NXDOMAIN, ``EAI_NONAME``) still fails at once: the URL is wrong.
A temporary resolver failure (``EAI_AGAIN``) is a :class:`NameResolutionError`, waited out like
a portal failing for now; when the name never resolves, the last error names the host. The
answers are injected at aiohttp's resolver: no name is ever looked up for real.
"""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from aioudata import HostNotFoundError, MirrorConfig, NameResolutionError, RetryPolicy, run_mirror
from aioudata._cli import EXIT_CONNECT, _failure
from aioudata._mirror import job
from tests.faults import Action, FaultServer
from tests.test_retry_permanent import NOWHERE, SITE, resolver_failing

AGAIN = socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")
NXDOMAIN = socket.gaierror(socket.EAI_NONAME, "Name or service not known")


def _config(server: FaultServer, tmp_path: Path) -> MirrorConfig:
    base_url = f"http://{NOWHERE}:{server.port}/api/1"
    return MirrorConfig(base_url=base_url, db=tmp_path / "m.db", rate=None, entities=("posts",))


@pytest.fixture
def quick_patience(monkeypatch: pytest.MonkeyPatch) -> RetryPolicy:
    """The check's patient phase with short waits (4 attempts at most): seconds, not a minute."""
    policy = RetryPolicy(max_attempts=4, max_time=5.0, backoff=0.01, max_backoff=0.02)
    monkeypatch.setattr(job, "_PREFLIGHT_RETRY", policy)
    monkeypatch.setattr(job, "PREFLIGHT_PATIENCE", 5.0)
    return policy


async def test_a_dns_server_failing_for_now_is_waited_out(
    monkeypatch: pytest.MonkeyPatch, faults: FaultServer, tmp_path: Path, quick_patience: object
) -> None:
    asked = resolver_failing(monkeypatch, AGAIN, AGAIN, AGAIN)
    faults.script("/site/", Action(200, SITE))
    await job._preflight(_config(faults, tmp_path))  # raises if the check gives up
    # Three lookups failed (the first attempt, then two retries), the fourth passed.
    assert asked == [NOWHERE] * 4 and len(faults.hits("/site/")) == 1


async def test_a_name_that_never_resolves_gives_up_naming_the_host(
    monkeypatch: pytest.MonkeyPatch,
    faults: FaultServer,
    tmp_path: Path,
    quick_patience: RetryPolicy,
) -> None:
    asked = resolver_failing(monkeypatch, *[AGAIN] * 50)
    config = _config(faults, tmp_path)
    with pytest.raises(NameResolutionError) as info:
        await run_mirror(config)
    assert info.value.host == NOWHERE
    # One first attempt, then the patient phase's own attempts: bounded, and more than one.
    assert len(asked) == 1 + quick_patience.max_attempts
    assert faults.seen == [] and not config.db.exists()
    code, line = _failure(info.value)
    assert code == EXIT_CONNECT
    assert f"the host name {NOWHERE} could not be resolved" in line
    assert "Temporary failure in name resolution" in line


async def test_a_name_that_does_not_exist_still_fails_at_once(
    monkeypatch: pytest.MonkeyPatch,
    faults: FaultServer,
    tmp_path: Path,
    quick_patience: RetryPolicy,
) -> None:
    asked = resolver_failing(monkeypatch, *[NXDOMAIN] * 5)
    config = _config(faults, tmp_path)
    with pytest.raises(HostNotFoundError, match=f"the host name {NOWHERE} does not exist"):
        await run_mirror(config)
    assert asked == [NOWHERE] and not config.db.exists()
