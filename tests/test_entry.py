"""Ctrl-C while the ``aioudata`` command is still importing: status 130, one line, no traceback.

A ``sitecustomize`` in a temporary directory (on PYTHONPATH) blocks the import of
``aioudata._client`` and says so; the test then sends SIGINT to the process, as Ctrl-C would.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from aioudata._entry import is_command

BLOCKER = """
import os, sys, time

class _BlockClient:
    def find_spec(self, name, path=None, target=None):
        if name == "aioudata._client":
            os.write(1, b"importing\\n")
            time.sleep(60)  # SIGINT comes first
        return None

sys.meta_path.insert(0, _BlockClient())
"""
SCRIPT = Path(sys.executable).with_name("aioudata")


def _interrupt_while_importing(command: list[str], tmp_path: Path) -> tuple[int, str]:
    """Run ``command`` until it blocks importing, send SIGINT; its status and stderr."""
    (tmp_path / "sitecustomize.py").write_text(BLOCKER)
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    env.pop("PYTHONDEVMODE", None)
    process = subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=tmp_path
    )
    try:
        assert process.stdout is not None
        assert process.stdout.readline() == b"importing\n"  # at the import, not yet killed
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    return process.returncode, stderr.decode()


@pytest.mark.parametrize(
    "command",
    [[str(SCRIPT), "ls", "datasets"], [sys.executable, "-m", "aioudata", "ls", "datasets"]],
    ids=["script", "python -m"],
)
def test_ctrl_c_while_importing_exits_130_without_traceback(
    command: list[str], tmp_path: Path
) -> None:
    status, stderr = _interrupt_while_importing(command, tmp_path)
    assert status == 130, stderr
    assert stderr == "aioudata: interrupted\n"


def test_other_programs_importing_aioudata_keep_keyboard_interrupt(tmp_path: Path) -> None:
    status, stderr = _interrupt_while_importing([sys.executable, "-c", "import aioudata"], tmp_path)
    assert status == -signal.SIGINT
    assert "KeyboardInterrupt" in stderr


@pytest.mark.parametrize(
    ("argv", "orig_argv", "expected"),
    [
        (["/venv/bin/aioudata"], ["/venv/bin/python", "/venv/bin/aioudata", "ls"], True),
        (["C:\\venv\\Scripts\\aioudata.exe"], ["python", "aioudata.exe"], True),
        (["-m"], ["python", "-X", "dev", "-m", "aioudata", "get"], True),
        (["-m"], ["python", "-maioudata"], True),
        (["-m"], ["python", "-m", "pytest"], False),
        (["-m"], ["python", "-m"], False),
        (["-c"], ["python", "-c", "import aioudata"], False),
        (["/srv/app.py"], ["python", "/srv/app.py", "-m", "aioudata"], False),
        ([], ["python"], False),
    ],
)
def test_is_command(argv: list[str], orig_argv: list[str], expected: bool) -> None:
    assert is_command(argv, orig_argv) is expected
