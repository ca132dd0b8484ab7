"""Create (or reuse) the virtualenv that runs the real udata server for tests.

Standard library only; run with the host Python (3.11+, as udata 17 requires)::

    python tests/udata_server/venv.py [--dir DIR]

The venv (default ``.cache/udata-venv`` at the repository root) is built from
``requirements.txt`` next to this file, a full freeze, only when it is missing or when that
file (or the host Python's minor version) changed since the last build; a stamp file inside
the venv records the hash. The path of the venv's python is printed on stdout.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import importlib
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parent.parent
REQUIREMENTS = HERE / "requirements.txt"
DEFAULT_DIR = REPO_ROOT / ".cache" / "udata-venv"
STAMP_NAME = "aioudata-requirements.sha256"
MIN_PYTHON = (3, 11)
# A venv to use instead of building one (its python must already have the pinned packages).
PYTHON_ENV = "AIOUDATA_UDATA_PYTHON"
DIR_ENV = "AIOUDATA_UDATA_VENV"


class VenvError(RuntimeError):
    """Raised when the udata venv cannot be created (no Python 3.11+, pip failed...)."""


def _stdlib_venv() -> ModuleType:
    """The standard library's ``venv``, which this file shadows when run as a script."""
    module = sys.modules.get("venv")
    if module is None or not hasattr(module, "EnvBuilder"):
        sys.modules.pop("venv", None)
        saved = sys.path[:]
        sys.path[:] = [entry for entry in sys.path if Path(entry or os.curdir).resolve() != HERE]
        try:
            module = importlib.import_module("venv")
        finally:
            sys.path[:] = saved
    if not hasattr(module, "EnvBuilder"):
        raise VenvError("cannot import the standard library's venv module")
    return module


def venv_python(directory: Path) -> Path:
    if os.name == "nt":
        return directory / "Scripts" / "python.exe"
    return directory / "bin" / "python"


def requirements_digest(requirements: Path = REQUIREMENTS) -> str:
    digest = hashlib.sha256(requirements.read_bytes())
    digest.update(f"python{sys.version_info.major}.{sys.version_info.minor}".encode())
    return digest.hexdigest()


def _tail(path: Path, lines: int = 12) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


@contextlib.contextmanager
def _build_lock(directory: Path) -> Iterator[None]:
    """Serialize builds of the same venv (parallel test workers, two shells)."""
    directory.parent.mkdir(parents=True, exist_ok=True)
    lock_path = directory.parent / f".{directory.name}.lock"
    with open(lock_path, "w") as lock_file:
        try:
            import fcntl
        except ImportError:  # Windows: no locking, builds are rare enough
            yield
            return
        fcntl.flock(lock_file, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock_file, fcntl.LOCK_UN)


def _is_current(directory: Path, digest: str) -> bool:
    stamp = directory / STAMP_NAME
    try:
        return venv_python(directory).exists() and stamp.read_text().strip() == digest
    except OSError:
        return False


def _run(command: list[str], log_path: Path, what: str) -> None:
    with open(log_path, "a") as log:
        log.write(f"$ {' '.join(command)}\n")
        log.flush()
        result = subprocess.run(command, stdout=log, stderr=subprocess.STDOUT, check=False)
    if result.returncode:
        raise VenvError(
            f"{what} failed (exit {result.returncode}); log: {log_path}\n{_tail(log_path)}"
        )


def ensure_venv(directory: Path | None = None, *, quiet: bool = True) -> Path:
    """Return the python of an up-to-date udata venv, building it if needed.

    Raises VenvError when it cannot be built (host Python too old, package index
    unreachable...). ``AIOUDATA_UDATA_PYTHON`` short-circuits everything: that python is
    returned as is. ``AIOUDATA_UDATA_VENV`` changes the default directory.
    """
    override = os.environ.get(PYTHON_ENV)
    if override:
        python = Path(override)
        if not python.exists():
            raise VenvError(f"{PYTHON_ENV}={override} does not exist")
        return python
    if sys.version_info < MIN_PYTHON:
        needed = ".".join(map(str, MIN_PYTHON))
        raise VenvError(f"udata needs Python {needed}+, this is {sys.version.split()[0]}")
    directory = Path(directory or os.environ.get(DIR_ENV) or DEFAULT_DIR).resolve()
    digest = requirements_digest()
    if _is_current(directory, digest):
        return venv_python(directory)
    with _build_lock(directory):
        if _is_current(directory, digest):  # built by someone else meanwhile
            return venv_python(directory)
        log_path = directory.parent / f"{directory.name}-build.log"
        log_path.write_text("")
        if not quiet:
            print(f"building the udata venv in {directory} (log: {log_path})", file=sys.stderr)
        shutil.rmtree(directory, ignore_errors=True)
        try:
            _stdlib_venv().EnvBuilder(with_pip=True, clear=True).create(directory)
        except (OSError, subprocess.CalledProcessError) as error:
            raise VenvError(f"cannot create a venv in {directory}: {error}") from error
        executable = str(venv_python(directory))
        _run(
            [
                executable,
                "-m",
                "pip",
                "install",
                "--no-input",
                "--disable-pip-version-check",
                "-r",
                str(REQUIREMENTS),
            ],
            log_path,
            "pip install -r requirements.txt",
        )
        _run([executable, "-c", "import udata, mongomock, waitress"], log_path, "import check")
        (directory / STAMP_NAME).write_text(digest + "\n")
    return venv_python(directory)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Create or update the udata test venv.")
    parser.add_argument("--dir", type=Path, help=f"venv directory (default {DEFAULT_DIR})")
    args = parser.parse_args(argv)
    try:
        python = ensure_venv(args.dir, quiet=False)
    except VenvError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(python)
    return 0


if __name__ == "__main__":
    sys.exit(main())
