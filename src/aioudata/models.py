"""Every model of the uData API, v1 and v2 (msgspec Structs), e.g. ``aioudata.models.Dataset``.

Generated from openapi/ into ``aioudata._generated.models``; this module is their public home.
"""

from ._generated.models import *  # noqa: F403
from ._generated.models import __all__ as __all__
