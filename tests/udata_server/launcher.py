"""Start and stop ``serve.py`` in a subprocess (host side, standard library only)."""

from __future__ import annotations

import atexit
import json
import os
import queue
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from types import TracebackType
from typing import IO, Any

from .venv import ensure_venv

HERE = Path(__file__).resolve().parent
SERVE_SCRIPT = HERE / "serve.py"
READY_PREFIX = "UDATA_SERVER_READY"
DEFAULT_STARTUP_TIMEOUT = 180.0


class UdataServerError(RuntimeError):
    """Raised when the udata server does not start (the message ends with its log tail)."""


class UdataServer:
    """A real udata server on 127.0.0.1, seeded deterministically, in a subprocess.

    Use as a context manager, or call ``start()`` and ``stop()``. After ``start()``:
    ``base_url`` (``http://127.0.0.1:PORT/api/1``), ``root_url``, ``manifest`` (the parsed
    manifest, see README.md), ``manifest_path``, ``ready_line``, ``log_path`` and ``pid``.
    """

    def __init__(
        self,
        *,
        python: Path | str | None = None,
        datasets: int = 30,
        port: int = 0,
        startup_timeout: float = DEFAULT_STARTUP_TIMEOUT,
        extra_args: tuple[str, ...] = (),
        workdir: Path | None = None,
    ) -> None:
        self.python = Path(python) if python else None
        self.datasets = datasets
        self.port = port
        self.startup_timeout = startup_timeout
        self.extra_args = extra_args
        self._own_workdir = workdir is None
        self.workdir = workdir
        self.process: subprocess.Popen[str] | None = None
        self.ready_line = ""
        self.base_url = ""
        self.root_url = ""
        self.manifest: dict[str, Any] = {}
        self.manifest_path: Path | None = None
        self.log_path: Path | None = None
        self._log_file: IO[str] | None = None
        self._lines: queue.Queue[str | None] = queue.Queue()

    # --- lifecycle -------------------------------------------------------------------

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    def start(self) -> UdataServer:
        if self.process is not None:
            raise UdataServerError("already started")
        python = self.python or ensure_venv()
        if self.workdir is None:
            self.workdir = Path(tempfile.mkdtemp(prefix="aioudata-udata-server-"))
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.log_path = self.workdir / "server.log"
        manifest_path = self.workdir / "manifest.json"
        self._log_file = open(self.log_path, "w")  # noqa: SIM115 (closed in stop())
        command = [
            str(python),
            str(SERVE_SCRIPT),
            "--port",
            str(self.port),
            "--datasets",
            str(self.datasets),
            "--manifest",
            str(manifest_path),
            "--exit-with-parent",
            *self.extra_args,
        ]
        self.process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=self._log_file,
            text=True,
            bufsize=1,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
            start_new_session=True,  # a Ctrl-C in the terminal goes to pytest, not here
        )
        atexit.register(self.stop)  # don't leave a server behind if the caller forgets
        threading.Thread(target=self._pump_stdout, name="udata-server-stdout", daemon=True).start()
        try:
            self._wait_ready()
        except BaseException:
            self.stop(keep_logs=True)
            raise
        return self

    def _pump_stdout(self) -> None:
        assert self.process is not None
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self._lines.put(line.rstrip("\n"))
        self._lines.put(None)

    def _wait_ready(self) -> None:
        assert self.process is not None
        deadline = time.monotonic() + self.startup_timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise UdataServerError(
                    self._failure(f"not ready after {self.startup_timeout:.0f}s")
                )
            try:
                line = self._lines.get(timeout=min(remaining, 1.0))
            except queue.Empty:
                continue
            if line is None:
                code = self.process.wait()
                raise UdataServerError(self._failure(f"exited with code {code} before READY"))
            if line.startswith(READY_PREFIX + " "):
                self.ready_line = line
                _, self.base_url, manifest = line.split(" ", 2)
                self.root_url = self.base_url.rsplit("/api/", 1)[0]
                self.manifest_path = Path(manifest)
                self.manifest = json.loads(self.manifest_path.read_text())
                return

    def _failure(self, what: str) -> str:
        return f"udata server {what}; log {self.log_path}:\n{self.log_tail()}"

    def log_tail(self, lines: int = 40) -> str:
        if self.log_path is None:
            return ""
        if self._log_file is not None:
            self._log_file.flush()
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def stop(self, grace: float = 10.0, *, keep_logs: bool = False) -> None:
        """SIGTERM the server, SIGKILL it after ``grace`` seconds; remove its files."""
        atexit.unregister(self.stop)
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            try:
                os.kill(process.pid, signal.SIGTERM)
                process.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                os.kill(process.pid, signal.SIGKILL)
                process.wait()
            except ProcessLookupError:
                pass
        if process is not None and process.stdout is not None:
            process.stdout.close()
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None
        if self._own_workdir and self.workdir is not None and not keep_logs:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> UdataServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    # --- helpers ---------------------------------------------------------------------

    @property
    def api_keys(self) -> dict[str, str]:
        return dict(self.manifest.get("api_keys", {}))

    def url(self, path: str) -> str:
        """``/datasets/`` → ``http://127.0.0.1:PORT/api/1/datasets/``; ``/api/2/...`` kept."""
        if path.startswith("/api/"):
            return self.root_url + path
        return self.base_url + "/" + path.lstrip("/")
