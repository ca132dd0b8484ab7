"""Where the ``aioudata`` command starts: Ctrl-C ends it quietly (status 130), imports included.

Importing aioudata takes a noticeable time (aiohttp, msgspec, rich...), before the command's
own handler of Ctrl-C exists. So the package imports this module first (standard library only):
when the process is the ``aioudata`` command, it makes SIGINT end the process with status 130
and one line until :func:`main` takes over; any other program importing aioudata keeps its
own handling of Ctrl-C.
"""

from __future__ import annotations

import re
import signal
import sys
from types import FrameType

__all__ = ["guard_imports", "main"]

EXIT_INTERRUPTED = 130
#: The console script (``aioudata``, ``aioudata.exe``, ``aioudata-script.py``) and the module.
_SCRIPT = re.compile(r"aioudata(-script)?")
_MODULE = "aioudata"
#: Python's options whose value is the next argument (``-X dev``, ``-W error``).
_WITH_VALUE = frozenset({"-X", "-W", "--check-hash-based-pycs"})


def _module_run(orig_argv: list[str]) -> str | None:
    """The module name of ``python [options] -m NAME``, or None."""
    args = iter(orig_argv[1:])
    for arg in args:
        if arg == "-m":
            return next(args, None)
        if arg.startswith("-m"):
            return arg[2:]
        if arg in _WITH_VALUE:
            next(args, None)
        elif not arg.startswith("-"):
            return None  # a script: what follows are its arguments
    return None


def is_command(argv: list[str], orig_argv: list[str]) -> bool:
    """True when this process runs the ``aioudata`` command (script or ``python -m``).

    ``argv`` as it is while the package imports: the script's path, or ``-m`` while
    ``python -m`` locates its module.
    """
    if not argv:
        return False
    if argv[0] == "-m":
        return _module_run(orig_argv) == _MODULE
    name = argv[0].replace("\\", "/").rsplit("/", 1)[-1]  # a Windows path too
    return _SCRIPT.fullmatch(name.split(".", 1)[0]) is not None


def _interrupted_while_importing(signum: int, frame: FrameType | None) -> None:
    print("aioudata: interrupted", file=sys.stderr)
    raise SystemExit(EXIT_INTERRUPTED)


def guard_imports() -> None:
    """For the command only: Ctrl-C until :func:`main` runs exits 130 without a traceback.

    Left alone where SIGINT is not Python's default (ignored by a shell's ``&``, or a
    handler of the program's own), and outside the main thread.
    """
    if not is_command(sys.argv, sys.orig_argv):
        return
    try:
        if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
            signal.signal(signal.SIGINT, _interrupted_while_importing)
    except ValueError:  # not the main thread
        return


def _release_guard() -> None:
    """Python's own SIGINT handling back (asyncio.run and the command rely on it)."""
    try:
        if signal.getsignal(signal.SIGINT) is _interrupted_while_importing:
            signal.signal(signal.SIGINT, signal.default_int_handler)
    except ValueError:
        return


def main() -> int:
    """Entry point of the ``aioudata`` command (and ``python -m aioudata``); the exit status."""
    try:
        try:
            from ._cli import main as run_command
        finally:
            _release_guard()
        return run_command()
    except KeyboardInterrupt:  # before the command's own handling of it (parsing the options)
        print("aioudata: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
