"""A throwaway PostgreSQL server for the tests and the benchmarks: initdb into a temporary
directory, started on a unix socket there and on 127.0.0.1 (a free port), stopped by pid.

PostgreSQL refuses to run as root: as root, the directory is given to an unprivileged user
(``postgres`` when it exists, else ``nobody``) and the server runs as that user (``setpriv``,
which execs, so the pid started is the server's). The superuser ``aioudata`` logs in with a
password over TCP and without one over the socket.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

__all__ = ["PostgresServer", "PostgresUnavailable", "find_bindir"]

USER = "aioudata"
PASSWORD = "test-only-pw"
#: Seconds the server may take to start, or to stop.
START_TIMEOUT = 60.0


class PostgresUnavailable(Exception):
    """No PostgreSQL server can be started here (no binaries, or they fail)."""


def find_bindir() -> Path | None:
    """The directory of ``initdb`` and ``postgres``: ``$PG_BINDIR``, the PATH, or the
    distribution's versioned directory (the newest)."""
    named = os.environ.get("PG_BINDIR")
    if named and (Path(named) / "initdb").exists():
        return Path(named)
    found = shutil.which("initdb")
    if found:  # the real directory: links on the PATH may lack pg_isready
        found = os.path.realpath(found)
        if (Path(found).parent / "pg_isready").exists():
            return Path(found).parent
    candidates = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"),
        key=lambda path: int(Path(path).parent.parent.name.split(".")[0] or 0),
    )
    return Path(candidates[-1]).parent if candidates else None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _unprivileged() -> pwd.struct_passwd | None:
    """The user to run as (None: this one, when it is not root)."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        with contextlib.suppress(KeyError):
            return pwd.getpwnam(name)
    raise PostgresUnavailable("running as root and no unprivileged user to run PostgreSQL as")


class PostgresServer:
    """``with PostgresServer() as server:`` — ``server.url(dbname)`` names a database on it."""

    def __init__(self, *, fsync: bool = False) -> None:
        #: False for the tests (nothing to keep); the benchmarks sync as a real server does.
        self.fsync = fsync
        bindir = find_bindir()
        if bindir is None or not (bindir / "pg_isready").exists():
            raise PostgresUnavailable("no PostgreSQL server binaries (initdb) found")
        self.bindir = bindir
        self.user = _unprivileged()
        # As root, in /tmp: the server's user must reach it (TMPDIR may be below /root).
        where = "/tmp" if self.user is not None and os.path.isdir("/tmp") else None
        self.dir = Path(tempfile.mkdtemp(prefix="aioudata-pg-", dir=where))
        self.port = _free_port()
        self.process: subprocess.Popen[bytes] | None = None

    def _as_user(self, *argv: str) -> list[str]:
        if self.user is None:
            return list(argv)
        user = self.user
        return [
            "setpriv",
            f"--reuid={user.pw_uid}",
            f"--regid={user.pw_gid}",
            "--clear-groups",
            "--",
            *argv,
        ]

    def _initdb(self) -> None:
        """A new cluster in the temporary directory, owned by the user the server runs as."""
        if self.user is not None:
            os.chown(self.dir, self.user.pw_uid, self.user.pw_gid)
        self.dir.chmod(0o700)
        pwfile = self.dir / "pw"
        pwfile.write_text(PASSWORD + "\n")
        if self.user is not None:
            os.chown(pwfile, self.user.pw_uid, self.user.pw_gid)
        initdb = self._as_user(
            str(self.bindir / "initdb"),
            "-D",
            str(self.dir / "data"),
            "-U",
            USER,
            f"--pwfile={pwfile}",
            "--auth-local=trust",
            "--auth-host=scram-sha-256",
            "-E",
            "UTF8",
            "--locale=C",
        )
        done = subprocess.run(initdb, capture_output=True, timeout=START_TIMEOUT, check=False)
        if done.returncode != 0:
            raise PostgresUnavailable(f"initdb failed: {done.stderr.decode()[-500:]}")

    def start(self) -> PostgresServer:
        """initdb, then start the server and wait until it answers."""
        self._initdb()
        log = (self.dir / "server.log").open("wb")
        self.process = subprocess.Popen(
            self._as_user(
                str(self.bindir / "postgres"),
                "-D",
                str(self.dir / "data"),
                "-k",
                str(self.dir),
                "-p",
                str(self.port),
                "-c",
                "listen_addresses=127.0.0.1",
                "-c",
                f"fsync={'on' if self.fsync else 'off'}",
            ),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                tail = (self.dir / "server.log").read_text(errors="replace")[-800:]
                raise PostgresUnavailable(f"the PostgreSQL server exited: {tail}")
            ready = subprocess.run(
                [str(self.bindir / "pg_isready"), "-h", "127.0.0.1", "-p", str(self.port)],
                capture_output=True,
                check=False,
            )
            if ready.returncode == 0:
                return
            time.sleep(0.2)
        raise PostgresUnavailable("the PostgreSQL server did not start in time")

    @property
    def version(self) -> str:
        """The server's version, as ``postgres --version`` says it (``15.14``...)."""
        out = subprocess.run(
            [str(self.bindir / "postgres"), "--version"], capture_output=True, check=False
        )
        words = out.stdout.decode().split()  # postgres (PostgreSQL) 15.14 (Debian ...)
        return words[2] if out.returncode == 0 and len(words) > 2 else "?"

    def url(self, dbname: str = "postgres", *, password: str | None = PASSWORD) -> str:
        """A ``postgresql://`` URL of ``dbname`` over TCP (with the password)."""
        auth = f"{USER}:{password}" if password is not None else USER
        return f"postgresql://{auth}@127.0.0.1:{self.port}/{dbname}"

    def socket_url(self, dbname: str = "postgres") -> str:
        """The URL of ``dbname`` over the unix socket (no password)."""
        return f"postgresql://{USER}@/{dbname}?host={self.dir}&port={self.port}"

    def psql(self, sql: str, dbname: str = "postgres") -> None:
        """Run ``sql`` as the superuser over the socket (``CREATE DATABASE``...)."""
        import psycopg

        with psycopg.connect(self.socket_url(dbname), autocommit=True) as conn:
            conn.execute(sql)  # type: ignore[arg-type]

    def terminate(self, application_name: str) -> None:
        """End the server's sessions whose ``application_name`` is LIKE the one given."""
        self.psql(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            f" WHERE application_name LIKE '{application_name}'"
        )

    def create_database(self, name: str) -> str:
        """A new empty database; its URL."""
        self.psql(f"CREATE DATABASE {name}")
        return self.url(name)

    def stop(self) -> None:
        """Stop the server (fast shutdown, by its pid) and remove its directory."""
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=START_TIMEOUT)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> PostgresServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
