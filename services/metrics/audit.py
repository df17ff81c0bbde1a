"""The metrics service's audit trail (shared.audit): dead-letter replays (ops re-publishing a parked message
to its original topic), appended in the transaction that writes the replay to the outbox.

Details carry the dead letter's ids, topic, consumer group and the operator's reason; never the message
itself (it may hold a post's text).
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from services.metrics.models import AuditEntry, AuditHead, DeadLetter
from shared.audit import AuditTrail

trail = AuditTrail(AuditEntry, AuditHead)


def dead_letter_replayed(
    session: AsyncSession, dead: DeadLetter, *, replay_id: str, actor: str, reason: str, replay_count: int
) -> None:
    trail.record(
        session,
        actor=actor,
        action="dead_letter.replayed",
        object_type="dead_letter",
        object_id=str(dead.id),
        details={
            "replay_id": replay_id,
            "replay_count": replay_count,
            "event_id": dead.event_id,
            "event_type": dead.event_type,
            "original_topic": dead.original_topic,
            "original_partition": dead.original_partition,
            "original_offset": dead.original_offset,
            "consumer_group": dead.consumer_group,
            "dlq_topic": dead.dlq_topic,
            "reason": reason,
        },
    )
