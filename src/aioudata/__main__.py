"""``python -m aioudata``: the ``aioudata`` command."""

from ._cli import main

raise SystemExit(main())
