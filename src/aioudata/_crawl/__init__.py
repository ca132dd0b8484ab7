"""The resource checker: every file URL of a catalog, checked politely, results in SQLite.

``run_checks(CheckConfig(...))`` in Python, ``aioudata resources check`` on the command line
(registered by :func:`add_commands`).
"""

from .cli import add_commands, run_command
from .config import (
    CheckConfig,
    CheckError,
    CheckProgress,
    CheckProgressCallback,
    CheckSummary,
    HostLimits,
)
from .run import run_checks

__all__ = [
    "CheckConfig",
    "CheckError",
    "CheckProgress",
    "CheckProgressCallback",
    "CheckSummary",
    "HostLimits",
    "add_commands",
    "run_checks",
    "run_command",
]
