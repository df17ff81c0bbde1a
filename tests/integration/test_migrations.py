"""Each service's migrations build exactly the tables its models describe (``alembic check`` in CI)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import MetaData
from sqlalchemy.engine import Connection

import services.ingest.main as ingest_main
import services.metrics.main as metrics_main
import services.policy.main as policy_main
import services.routing.main as routing_main
from services.ingest.models import Base as IngestBase
from services.metrics.models import Base as MetricsBase
from services.policy.models import Base as PolicyBase
from services.routing.models import Base as RoutingBase
from shared.db.engine import Database
from shared.db.migrations import upgrade_to_head
from tests.conftest import DatabaseTarget

SERVICES: dict[str, tuple[Path, MetaData]] = {
    "ingest": (ingest_main.MIGRATIONS, IngestBase.metadata),
    "policy": (policy_main.MIGRATIONS, PolicyBase.metadata),
    "routing": (routing_main.MIGRATIONS, RoutingBase.metadata),
    "metrics": (metrics_main.MIGRATIONS, MetricsBase.metadata),
}


def _diff(connection: Connection, metadata: MetaData) -> list[Any]:
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    return list(compare_metadata(context, metadata))


@pytest.mark.parametrize("service", list(SERVICES))
async def test_migrations_match_the_models(service: str, db_factory: Callable[[str], DatabaseTarget]) -> None:
    migrations, metadata = SERVICES[service]
    target = db_factory(service)
    db = Database(target.url, schema=target.schema, name="migration-check")
    try:
        await upgrade_to_head(db, migrations)
        await upgrade_to_head(db, migrations)  # idempotent: a second start changes nothing
        async with db.engine.connect() as conn:
            diff = await conn.run_sync(_diff, metadata)
    finally:
        await db.dispose()
    assert diff == [], f"models and migrations of {service} differ: {diff}"
