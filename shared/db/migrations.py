"""Run each service's own Alembic tree against its own database (and schema, on PostgreSQL).

Used at start-up (``migrate_on_start``) and by ``alembic`` itself through each service's ``env.py``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import MetaData, text
from sqlalchemy.engine import Connection

from shared.db.engine import Database


def alembic_config(migrations_dir: Path, *, url: str, schema: str | None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(migrations_dir))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    cfg.attributes["schema"] = schema
    return cfg


def configure_context(context: Any, connection: Connection, metadata: MetaData) -> None:
    """Shared body of every service's ``env.py``."""
    schema = context.config.attributes.get("schema")
    is_sqlite = connection.dialect.name == "sqlite"
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=is_sqlite,
        compare_type=True,
        version_table_schema=None if is_sqlite else schema,
    )


def _upgrade(connection: Connection, cfg: Config) -> None:
    cfg.attributes["connection"] = connection
    command.upgrade(cfg, "head")


async def upgrade_to_head(db: Database, migrations_dir: Path) -> None:
    """Create the service's schema if needed and apply every migration."""
    cfg = alembic_config(migrations_dir, url=db.url, schema=db.schema)
    async with db.engine.begin() as conn:
        if db.schema:
            await conn.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{db.schema}"'))
        await conn.run_sync(_upgrade, cfg)


def run_env(context: Any, metadata: MetaData) -> None:
    """Entry point for ``env.py``: reuse the connection given by ``upgrade_to_head`` or open one."""
    connection: Any = context.config.attributes.get("connection")
    if connection is not None:
        configure_context(context, connection, metadata)
        with context.begin_transaction():
            context.run_migrations()
        return

    import asyncio

    from shared.db.engine import create_engine_for

    url = context.config.get_main_option("sqlalchemy.url") or ""
    schema = context.config.attributes.get("schema")
    engine = create_engine_for(url, schema=schema, name="alembic")

    def _run(sync_conn: Connection) -> None:
        configure_context(context, sync_conn, metadata)
        with context.begin_transaction():
            context.run_migrations()

    async def _main() -> None:
        async with engine.begin() as conn:
            if schema and conn.dialect.name != "sqlite":
                await conn.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{schema}"'))
            await conn.run_sync(_run)
        await engine.dispose()

    asyncio.run(_main())


FILE_TEMPLATE = "%%(year)d_%%(month).2d_%%(day).2d_%%(hour).2d%%(minute).2d-%%(rev)s_%%(slug)s"


def main() -> None:
    """``python -m shared.db.migrations DIR upgrade|check|revision -m MSG`` with DATABASE_URL/_SCHEMA env."""
    import argparse
    import os

    parser = argparse.ArgumentParser(description="Run one service's Alembic migrations.")
    parser.add_argument("directory", help="the service's migrations folder, e.g. services/ingest/migrations")
    parser.add_argument("action", choices=["upgrade", "check", "revision", "current"])
    parser.add_argument("-m", "--message", default="change")
    parser.add_argument(
        "--url", default=os.environ.get("DATABASE_URL", "sqlite+aiosqlite:///./var/alembic.db")
    )
    parser.add_argument("--schema", default=os.environ.get("DATABASE_SCHEMA") or None)
    args = parser.parse_args()
    cfg = alembic_config(Path(args.directory), url=args.url, schema=args.schema)
    cfg.set_main_option("file_template", FILE_TEMPLATE)
    if args.action == "upgrade":
        command.upgrade(cfg, "head")
    elif args.action == "check":
        command.check(cfg)
    elif args.action == "current":
        command.current(cfg)
    else:
        command.upgrade(cfg, "head")
        command.revision(cfg, message=args.message, autogenerate=True)


if __name__ == "__main__":
    main()
