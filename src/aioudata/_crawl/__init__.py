"""The resource checker: every file URL of a catalog, checked politely, results in SQLite.

``run_checks(CheckConfig(...))`` and ``run_downloads(DownloadConfig(...))`` in Python,
``aioudata resources check`` and ``aioudata resources download`` on the command line
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
from .download_config import (
    DiskSpaceError,
    DownloadConfig,
    DownloadProgress,
    DownloadProgressCallback,
    DownloadSummary,
)
from .download_run import run_downloads
from .run import run_checks

__all__ = [
    "CheckConfig",
    "CheckError",
    "CheckProgress",
    "CheckProgressCallback",
    "CheckSummary",
    "DiskSpaceError",
    "DownloadConfig",
    "DownloadProgress",
    "DownloadProgressCallback",
    "DownloadSummary",
    "HostLimits",
    "add_commands",
    "run_checks",
    "run_command",
    "run_downloads",
]
