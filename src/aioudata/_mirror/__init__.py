"""The mirror job: a whole udata catalog into SQLite (or JSON Lines), resumable and incremental."""

from .config import EntitySummary, MirrorConfig, MirrorError, MirrorSummary
from .entities import DEFAULT_ENTITIES, ENTITIES
from .job import run_mirror
from .progress import Progress

__all__ = [
    "DEFAULT_ENTITIES",
    "ENTITIES",
    "EntitySummary",
    "MirrorConfig",
    "MirrorError",
    "MirrorSummary",
    "Progress",
    "run_mirror",
]
