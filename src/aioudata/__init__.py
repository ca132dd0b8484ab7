"""aioudata: async client and bulk mirroring tool for the uData API, v1 and v2.

The API of data.gouv.fr and of every portal running udata (the API v2 is ``client.v2``)::

    async with aioudata.Client() as client:
        dataset = await client.datasets.get_dataset("slug-or-id")
        async for reuse in client.reuses.list_reuses(q="transport"):
            print(reuse.title)
        page = await client.v2.datasets.search_datasets(q="transport")
"""

# First, before the slow imports below: when this process is the ``aioudata`` command, Ctrl-C
# during them ends it with status 130 and no traceback (see _entry.py).
from ._entry import guard_imports as _guard_imports

_guard_imports()

# isort: split
from . import models
from ._client import DEFAULT_BASE_URL, Client
from ._crawl import (
    CheckConfig,
    CheckError,
    CheckProgress,
    CheckProgressCallback,
    CheckSummary,
    DiskSpaceError,
    DownloadConfig,
    DownloadProgress,
    DownloadProgressCallback,
    DownloadSummary,
    HostLimits,
    run_checks,
    run_downloads,
)
from ._decoding import decode, unknown_fields
from ._endpoint import Endpoint, Kind, Param, Requester
from ._errors import (
    APIError,
    ArgumentError,
    AuthenticationError,
    BadRequestError,
    ClientClosedError,
    ConflictError,
    ConnectError,
    ConnectionLostError,
    DecodeError,
    GoneError,
    HostNotFoundError,
    LockedError,
    MalformedResponseError,
    NameResolutionError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitedError,
    RequestTimeoutError,
    ResponseTooLargeError,
    SearchCapError,
    ServerError,
    StrictDecodeError,
    TLSCertificateError,
    TransportError,
    TruncatedBodyError,
    UdataError,
)
from ._hooks import EventHooks, RequestEvent, ResponseEvent
from ._limits import RateLimiter
from ._mirror import (
    EntitySummary,
    MirrorConfig,
    MirrorDatabaseError,
    MirrorError,
    MirrorSummary,
    run_mirror,
)
from ._mirror.progress import EntityStatus, ProgressCallback, ProgressUpdate
from ._pagination import SEARCH_CAP, PaginationStats, Paginator
from ._response import Response
from ._retry import ClientStats, RetryPolicy
from ._version import __version__

__all__ = [
    "DEFAULT_BASE_URL",
    "SEARCH_CAP",
    "APIError",
    "ArgumentError",
    "AuthenticationError",
    "BadRequestError",
    "CheckConfig",
    "CheckError",
    "CheckProgress",
    "CheckProgressCallback",
    "CheckSummary",
    "Client",
    "ClientClosedError",
    "ClientStats",
    "ConflictError",
    "ConnectError",
    "ConnectionLostError",
    "DecodeError",
    "DiskSpaceError",
    "DownloadConfig",
    "DownloadProgress",
    "DownloadProgressCallback",
    "DownloadSummary",
    "Endpoint",
    "EntityStatus",
    "EntitySummary",
    "EventHooks",
    "GoneError",
    "HostLimits",
    "HostNotFoundError",
    "Kind",
    "LockedError",
    "MalformedResponseError",
    "MirrorConfig",
    "MirrorDatabaseError",
    "MirrorError",
    "MirrorSummary",
    "NameResolutionError",
    "NotFoundError",
    "PaginationStats",
    "Paginator",
    "Param",
    "PermissionDeniedError",
    "ProgressCallback",
    "ProgressUpdate",
    "RateLimitedError",
    "RateLimiter",
    "RequestEvent",
    "RequestTimeoutError",
    "Requester",
    "Response",
    "ResponseEvent",
    "ResponseTooLargeError",
    "RetryPolicy",
    "SearchCapError",
    "ServerError",
    "StrictDecodeError",
    "TLSCertificateError",
    "TransportError",
    "TruncatedBodyError",
    "UdataError",
    "__version__",
    "decode",
    "models",
    "run_checks",
    "run_downloads",
    "run_mirror",
    "unknown_fields",
]
