"""The life of one service process: database, migrations, producer, topics, outbox relay, consumers.

Each service's ``main.py`` describes what it owns (settings, tables, migrations, handlers, routers) and hands
it to ``ServiceRuntime``; start-up and shutdown order are the same everywhere:
start: logging -> database + migrations -> topics -> producer -> relay -> consumers;
stop (SIGTERM): consumers finish and commit their batch -> relay flushes -> producer -> database.
"""

from __future__ import annotations

import asyncio
import gc
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from aiokafka import AIOKafkaProducer
from fastapi import APIRouter, FastAPI

from shared.auth import TokenVerifier
from shared.config import BaseServiceSettings
from shared.contracts.topics import ALL_TOPICS
from shared.db.engine import Database
from shared.db.migrations import upgrade_to_head
from shared.http import ReadinessCheck, create_service_app
from shared.kafka.consumer import ConsumerRunner, EventRouter
from shared.kafka.outbox import OutboxRelay, OutboxWriter
from shared.kafka.producer import ensure_topics, make_producer
from shared.kafka.tables import InboxMixin, OutboxMixin
from shared.logging import configure_logging, get_logger

log = get_logger(__name__)


@dataclass(frozen=True)
class ConsumerSpec:
    group_id: str
    router: EventRouter


class ServiceRuntime:
    def __init__(
        self,
        *,
        name: str,
        settings: BaseServiceSettings,
        migrations_dir: Path,
        outbox_model: type[OutboxMixin],
        inbox_model: type[InboxMixin],
        consumers: Sequence[ConsumerSpec] = (),
    ) -> None:
        self.name = name
        self.settings = settings
        self.migrations_dir = migrations_dir
        self.outbox = OutboxWriter(outbox_model)
        self.outbox_model = outbox_model
        self.inbox_model = inbox_model
        self.consumer_specs = consumers
        self.db: Database | None = None
        self.producer: AIOKafkaProducer | None = None
        self.relay: OutboxRelay | None = None
        self.consumers: list[ConsumerRunner] = []

    @property
    def database(self) -> Database:
        if self.db is None:
            raise RuntimeError("the service has not started")
        return self.db

    async def start(self) -> None:
        s = self.settings
        self.db = Database(s.database_url, schema=s.database_schema, name=self.name)
        if s.migrate_on_start:
            await upgrade_to_head(self.db, self.migrations_dir)
        runners = [
            ConsumerRunner(
                group_id=spec.group_id,
                router=spec.router,
                db=self.db,
                inbox_model=self.inbox_model,
                outbox=self.outbox,
                settings=s.kafka,
                client_id=f"{self.name}.{spec.group_id}",
                replay_from_beginning=s.kafka.replay_from_beginning,
            )
            for spec in self.consumer_specs
        ]
        if s.kafka.create_topics:
            topics = set(ALL_TOPICS)
            for runner in runners:
                topics.update(runner.dead_letter_topics)
            await ensure_topics(s.kafka, topics, client_id=self.name)
        self.producer = make_producer(s.kafka, client_id=self.name)
        await self.producer.start()
        self.relay = OutboxRelay(
            db=self.db,
            model=self.outbox_model,
            producer=self.producer,
            lock_name=self.name,
            batch_size=s.kafka.outbox_batch_size,
            poll_interval=s.kafka.outbox_poll_interval_ms / 1000,
        )
        self.relay.start()
        if s.consumers_enabled:
            for runner in runners:
                await runner.start()
                self.consumers.append(runner)
        log.info("service_started", consumers=[r.group_id for r in self.consumers])

    async def stop(self) -> None:
        await asyncio.gather(*(c.stop() for c in self.consumers), return_exceptions=True)
        self.consumers.clear()
        if self.relay is not None:
            await self.relay.stop()
        if self.producer is not None:
            await self.producer.stop()
        if self.db is not None:
            await self.db.dispose()
        log.info("service_stopped")

    def readiness_checks(self) -> dict[str, ReadinessCheck]:
        async def database() -> None:
            await asyncio.wait_for(self.database.ping(), 2.0)

        async def broker() -> None:
            if self.producer is None:
                raise RuntimeError("producer not started")
            await asyncio.wait_for(self.producer.client.fetch_all_metadata(), 2.0)
            if self.relay is not None and not self.relay.healthy:
                raise RuntimeError("outbox relay cannot publish")

        async def consumers() -> None:
            unhealthy = [c.group_id for c in self.consumers if not c.healthy]
            if unhealthy:
                raise RuntimeError(f"consumers failing: {unhealthy}")

        return {"database": database, "broker": broker, "consumers": consumers}


#: The collector's first generation threshold once a service has started (CPython 3.11's default is 700). A
#: service allocates many short-lived container objects per event (envelopes, rows, log records): with the
#: default, a young collection runs every 700 net allocations and older ones follow, the full ones walking
#: every live object. 100,000 lowered the platform's CPU per post by about 15 % in a side run
#: (docs/benchmarks.md); cyclic garbage waits longer, the rest is freed by reference counting as before.
GC_GEN0_THRESHOLD = 100_000


def settle_garbage_collector(app: FastAPI) -> None:
    """After start-up of a served process (``shared.serve`` sets ``app.state.settle_gc``): collect start-up's
    garbage, freeze what is left (modules, models, compiled packs, the app: objects that live as long as the
    process, so full collections stop traversing them), and raise the first generation's threshold.
    ``gc.unfreeze()`` at shutdown. Not for applications run in-process by tests: a full collection of a
    test process at every application start costs more than the tests."""
    if not getattr(app.state, "settle_gc", False):
        return
    gc.collect()
    gc.freeze()
    _, gen1, gen2 = gc.get_threshold()
    gc.set_threshold(GC_GEN0_THRESHOLD, gen1, gen2)


def build_app(
    *,
    runtime: ServiceRuntime,
    title: str,
    description: str,
    routers: Sequence[APIRouter],
) -> FastAPI:
    settings = runtime.settings

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        configure_logging(
            service=runtime.name, level=settings.log.level, json_output=settings.log.json_output
        )
        app.state.token_verifier = TokenVerifier(settings.auth)
        await runtime.start()
        settle_garbage_collector(app)
        try:
            yield
        finally:
            if getattr(app.state, "settle_gc", False):
                gc.unfreeze()
            await runtime.stop()

    app = create_service_app(
        title=title,
        description=description,
        lifespan=lifespan,
        routers=routers,
        readiness=lambda _app: runtime.readiness_checks(),
        max_body_bytes=settings.max_body_bytes,
        rate_limit=settings.rate_limit,
    )
    app.state.runtime = runtime
    app.state.settings = settings
    return app
