"""aioudata: async client and bulk mirroring tool for the uData API v1.

The API of data.gouv.fr and of every portal running udata::

    async with aioudata.Client() as client:
        dataset = await client.datasets.get_dataset("slug-or-id")
        async for reuse in client.reuses.list_reuses(q="transport"):
            print(reuse.title)
"""

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
    LockedError,
    MalformedResponseError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitedError,
    RequestTimeoutError,
    ResponseTooLargeError,
    SearchCapError,
    ServerError,
    StrictDecodeError,
    TransportError,
    TruncatedBodyError,
    UdataError,
)
from ._hooks import EventHooks, RequestEvent, ResponseEvent
from ._limits import RateLimiter
from ._mirror import EntitySummary, MirrorConfig, MirrorError, MirrorSummary, run_mirror
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
    "Kind",
    "LockedError",
    "MalformedResponseError",
    "MirrorConfig",
    "MirrorError",
    "MirrorSummary",
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
