"""Database kit: declarative base factory, engine/session factory, repository base, migrations runner."""

from shared.db.base import TYPE_ANNOTATION_MAP, TimestampedMixin, new_metadata, utcnow
from shared.db.engine import Database, create_engine_for

__all__ = [
    "TYPE_ANNOTATION_MAP",
    "Database",
    "TimestampedMixin",
    "create_engine_for",
    "new_metadata",
    "utcnow",
]
