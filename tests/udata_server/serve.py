"""Serve the real udata app on 127.0.0.1, on an in-memory (mongomock) store, seeded.

Run with the udata venv's python (see ``venv.py``)::

    .cache/udata-venv/bin/python tests/udata_server/serve.py --port 7000 --datasets 30

When the server answers requests, one line is printed on stdout:
``UDATA_SERVER_READY <base_url> <manifest_path>``. Everything else goes to stderr.
SIGTERM or SIGINT stops it.
"""

from __future__ import annotations

import argparse
import gc
import importlib.metadata
import json
import logging
import os
import random
import shutil
import signal
import socket
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from types import FrameType
from typing import Any

HOST = "127.0.0.1"
READY_PREFIX = "UDATA_SERVER_READY"

SETTINGS_TEMPLATE = """\
import mongomock

MONGODB_HOST = "mongodb://localhost:27017/udata"
MONGODB_SETTINGS = {{
    "host": MONGODB_HOST,
    "mongo_client_class": mongomock.MongoClient,
}}
SERVER_NAME = "{host}:{port}"
DEBUG = False
TESTING = False
CACHE_TYPE = "NullCache"
CACHE_NO_NULL_WARNING = True
SECRET_KEY = "aioudata-test-secret-key"
API_TOKEN_SECRET = "aioudata-test-api-token-secret"
SECURITY_PASSWORD_SALT = "aioudata-test-password-salt"
SITE_ID = "aioudata-test"
SITE_TITLE = "udata (aioudata test server)"
# Celery tasks run in-process, and a failing task does not fail the request (no Redis).
CELERY_TASK_ALWAYS_EAGER = True
CELERY_TASK_EAGER_PROPAGATES = False
CELERY_BROKER_URL = "memory://"
CELERY_RESULT_BACKEND = "cache+memory://"
# No Elasticsearch: udata answers the search endpoints from MongoDB queries.
ELASTICSEARCH_URL = None
SEND_MAIL = False
HARVESTER_BACKENDS = ["dcat", "ckan"]
# udata resolves the host of every URL it validates (5 retries when it fails): offline, each
# resource URL would cost seconds. Syntax, scheme and TLD checks still apply.
URLS_RESOLVE_HOSTNAME = False
FS_ROOT = {fs_root!r}
"""


def log(message: str) -> None:
    print(f"[udata-server] {message}", file=sys.stderr, flush=True)


def bind_socket(port: int) -> socket.socket:
    """Bind now (port 0 = any free port) and keep the socket, so no one can take the port."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((HOST, port))
    return sock


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port (default)")
    parser.add_argument("--datasets", type=int, default=30, help="public datasets (default 30)")
    parser.add_argument("--manifest", type=Path, help="where to write the manifest JSON")
    parser.add_argument("--threads", type=int, default=8, help="waitress threads (default 8)")
    parser.add_argument(
        "--no-write-lock", action="store_true", help="do not serialize requests that can write"
    )
    parser.add_argument(
        "--no-query-cache", action="store_true", help="do not memoize query results"
    )
    parser.add_argument(
        "--verify",
        action="store_true",
        help="before READY, check that the anonymous /datasets/ listing matches the manifest",
    )
    parser.add_argument(
        "--exit-with-parent",
        action="store_true",
        help="stop when the process that started this one goes away",
    )
    parser.add_argument("--log-level", default="WARNING")
    args = parser.parse_args(argv)
    if args.datasets < 2:
        parser.error("--datasets must be at least 2")
    return args


def create_app(settings: Path) -> Any:
    os.environ["UDATA_SETTINGS"] = str(settings)
    from udata.app import create_app as udata_create_app
    from udata.app import standalone

    return standalone(udata_create_app())


def http_get_json(url: str, timeout: float = 30) -> Any:
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return json.load(response)


def verify_listing(base_url: str, expected: list[str]) -> None:
    seen: list[str] = []
    url: str | None = f"{base_url}/datasets/?page_size=100"
    while url:
        page = http_get_json(url)
        seen.extend(item["id"] for item in page["data"])
        url = page["next_page"]
    if seen != expected:
        raise RuntimeError(
            f"anonymous listing ({len(seen)} ids) differs from the manifest ({len(expected)} ids)"
        )


def watch_parent() -> None:
    """SIGTERM this process once its parent is gone (it gets re-parented)."""
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1)
        log("parent process gone")
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, name="watch-parent", daemon=True).start()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.monotonic()
    # stdout carries the READY line only: whatever udata or its libraries print goes to stderr
    ready_out, sys.stdout = sys.stdout, sys.stderr
    if args.exit_with_parent:
        watch_parent()
    workdir = Path(tempfile.mkdtemp(prefix="udata-server-"))
    sock = bind_socket(args.port)
    port = sock.getsockname()[1]
    root_url = f"http://{HOST}:{port}"
    base_url = f"{root_url}/api/1"
    manifest_path: Path = args.manifest or workdir / "manifest.json"

    stopping = threading.Event()
    self_check_failed = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        if not stopping.is_set():
            stopping.set()
            raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    server = None
    try:
        settings = workdir / "udata_settings.py"
        settings.write_text(
            SETTINGS_TEMPLATE.format(host=HOST, port=port, fs_root=str(workdir / "fs"))
        )
        random.seed(0)
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        import mongomock_shims
        import seed

        mongomock_shims.install(cache_queries=not args.no_query_cache)
        app = create_app(settings)
        logging.getLogger().setLevel(args.log_level)
        booted = time.monotonic()
        log(f"app created in {booted - started:.1f}s")

        with app.app_context():
            store = seed.seed(seed.SeedOptions(datasets=args.datasets))
            manifest = seed.manifest(store, base_url)
        udata_version = importlib.metadata.version("udata")
        manifest = {"udata_version": udata_version, "root_url": root_url, **manifest}
        seeded = time.monotonic()
        log(f"seeded {args.datasets} public datasets in {seeded - booted:.1f}s")
        gc.collect()
        gc.freeze()  # the seeded store lives until exit: keep it out of GC passes

        from waitress import create_server

        wsgi_app = app if args.no_write_lock else mongomock_shims.write_lock_middleware(app)
        server = create_server(wsgi_app, sockets=[sock], threads=args.threads, ident="udata-test")

        def announce() -> None:
            try:
                http_get_json(f"{base_url}/site/")
                if args.verify:
                    verify_listing(base_url, manifest["datasets"]["public"])
                ready = time.monotonic()
                manifest["timings"] = {
                    "boot_s": round(booted - started, 2),
                    "seed_s": round(seeded - booted, 2),
                    "ready_s": round(ready - started, 2),
                }
                tmp = manifest_path.with_suffix(".tmp")
                tmp.write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n")
                tmp.replace(manifest_path)
                log(f"ready in {ready - started:.1f}s at {base_url}")
                print(f"{READY_PREFIX} {base_url} {manifest_path}", file=ready_out, flush=True)
            except Exception as error:
                log(f"self-check failed: {error!r}")
                self_check_failed.set()
                os.kill(os.getpid(), signal.SIGTERM)

        threading.Thread(target=announce, name="announce", daemon=True).start()
        server.run()
    except KeyboardInterrupt:
        pass
    finally:
        log("stopping")
        if server is not None:
            server.close()
            server.task_dispatcher.shutdown(timeout=5)
        sock.close()
        shutil.rmtree(workdir, ignore_errors=True)
    return 1 if self_check_failed.is_set() else 0


if __name__ == "__main__":
    sys.exit(main())
