"""``python -m aioudata``: the ``aioudata`` command."""

from ._entry import main

raise SystemExit(main())
