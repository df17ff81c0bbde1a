"""Helpers shared by tests that need a database of their own tables (not a service's migrations)."""

from __future__ import annotations

from sqlalchemy import MetaData

from shared.db import Database
from tests.conftest import DatabaseTarget


async def database_with_tables(target: DatabaseTarget, metadata: MetaData, *, name: str = "test") -> Database:
    """A ``Database`` on ``target`` (its schema created on PostgreSQL) with ``metadata``'s tables; the caller
    disposes of it."""
    db = Database(target.url, schema=target.schema, name=name)
    async with db.engine.begin() as conn:
        if db.schema:
            await conn.exec_driver_sql(f'CREATE SCHEMA IF NOT EXISTS "{db.schema}"')
        await conn.run_sync(metadata.create_all)
    return db
