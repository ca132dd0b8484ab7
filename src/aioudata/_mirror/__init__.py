"""The mirror job: a whole udata catalog into SQLite, PostgreSQL (or JSON Lines), resumable and
incremental."""

from .config import (
    EntitySummary,
    MirrorConfig,
    MirrorDatabaseError,
    MirrorError,
    MirrorSummary,
)
from .entities import DEFAULT_ENTITIES, ENTITIES
from .job import run_mirror
from .progress import Progress

__all__ = [
    "DEFAULT_ENTITIES",
    "ENTITIES",
    "EntitySummary",
    "MirrorConfig",
    "MirrorDatabaseError",
    "MirrorError",
    "MirrorSummary",
    "Progress",
    "run_mirror",
]
