"""Producer factory and topic creation."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError

from shared.config import KafkaSettings
from shared.logging import get_logger

log = get_logger(__name__)


def make_producer(settings: KafkaSettings, *, client_id: str) -> AIOKafkaProducer:
    return AIOKafkaProducer(
        bootstrap_servers=settings.bootstrap_servers,
        client_id=f"{settings.client_id_prefix}.{client_id}",
        acks="all",
        enable_idempotence=settings.enable_idempotence,
        linger_ms=settings.linger_ms,
        request_timeout_ms=settings.request_timeout_ms,
    )


async def ensure_topics(settings: KafkaSettings, topics: Iterable[str], *, client_id: str) -> None:
    """Create missing topics with the configured partition count; existing topics are left alone."""
    wanted = sorted(set(topics))
    admin = AIOKafkaAdminClient(
        bootstrap_servers=settings.bootstrap_servers,
        client_id=f"{settings.client_id_prefix}.{client_id}.admin",
        request_timeout_ms=settings.request_timeout_ms,
    )
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [t for t in wanted if t not in existing]
        if not missing:
            return
        try:
            await admin.create_topics(
                [
                    NewTopic(
                        name=t,
                        num_partitions=settings.topic_partitions,
                        replication_factor=settings.topic_replication_factor,
                    )
                    for t in missing
                ]
            )
        except KafkaError as exc:  # a concurrent creator won the race: fine if the topics now exist
            await asyncio.sleep(0.2)
            still = [t for t in missing if t not in set(await admin.list_topics())]
            if still:
                raise RuntimeError(f"could not create topics {still}") from exc
        log.info("topics_created", topics=missing, partitions=settings.topic_partitions)
    finally:
        await admin.close()
