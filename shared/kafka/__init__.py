"""Thin layer over aiokafka: producer, topic admin, transactional outbox relay, inbox-guarded consumer."""

from shared.kafka.consumer import ConsumerRunner, EventRouter, HandlerContext
from shared.kafka.outbox import OutboxRelay, OutboxWriter
from shared.kafka.producer import ensure_topics, make_producer
from shared.kafka.tables import InboxMixin, OutboxMixin

__all__ = [
    "ConsumerRunner",
    "EventRouter",
    "HandlerContext",
    "InboxMixin",
    "OutboxMixin",
    "OutboxRelay",
    "OutboxWriter",
    "ensure_topics",
    "make_producer",
]
